#pragma once
// JSON files through nlohmann-json: reads that report the file and the parse position,
// atomic writes, and typed field access whose errors name the field and the value.
#include <cstdint>
#include <filesystem>
#include <limits>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "synthsae/core/error.hpp"
#include "synthsae/io/atomic_file.hpp"

namespace synthsae::io {

using Json = nlohmann::json;

/// Parses JSON text; FormatError naming `source` and the parser's position on bad input.
inline Json parse_json(std::string_view text, std::string_view source) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {  // parse_error, and out_of_range for a number like 1e999
    throw FormatError(source, std::string("invalid JSON: ") + e.what());
  }
}

inline Json read_json_file(const std::filesystem::path& path) {
  const auto bytes = read_file_bytes(path);
  return parse_json(std::string_view(bytes.data(), bytes.size()), path.string());
}

inline void write_json_file(const std::filesystem::path& path, const Json& value, int indent = 2) {
  const std::string text = value.dump(indent) + "\n";
  write_file_atomically(path,
                        [&](std::ostream& out) { out.write(text.data(), static_cast<std::streamsize>(text.size())); });
}

/// `object[key]` converted to T. Missing key or wrong type is a ConfigError naming
/// `context.key` and the offending value.
template <class T>
T json_field(const Json& object, std::string_view key, std::string_view context) {
  const std::string field = context.empty() ? std::string(key) : std::string(context) + "." + std::string(key);
  if (!object.is_object()) throw ConfigError(context, object.dump(), "expected a JSON object");
  const auto it = object.find(std::string(key));
  if (it == object.end()) throw ConfigError(field, "(missing)", "required field");
  const Json& v = *it;
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) throw ConfigError(field, v.dump(), "must be true or false");
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) throw ConfigError(field, v.dump(), "must be an integer");
    const bool negative = !v.is_number_unsigned() && v.get<std::int64_t>() < 0;
    const bool fits = negative ? std::in_range<T>(v.get<std::int64_t>()) : std::in_range<T>(v.get<std::uint64_t>());
    if (!fits)
      throw ConfigError(
          field, v.dump(),
          "is out of range for " + std::string(std::is_signed_v<T> ? "a signed" : "a non-negative") + " integer");
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) throw ConfigError(field, v.dump(), "must be a number");
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) throw ConfigError(field, v.dump(), "must be a string");
  }
  try {
    return v.template get<T>();
  } catch (const Json::exception&) {
    throw ConfigError(field, v.dump(), "has the wrong type");
  }
}

/// Like json_field, but `fallback` when the key is absent or null.
template <class T>
T json_field_or(const Json& object, std::string_view key, std::string_view context, T fallback) {
  if (!object.is_object()) throw ConfigError(context, object.dump(), "expected a JSON object");
  const auto it = object.find(std::string(key));
  if (it == object.end() || it->is_null()) return fallback;
  return json_field<T>(object, key, context);
}

/// ConfigError naming `context.key` for a key of `object` that is not in `known`: SAELens builds
/// its config dataclasses with cls(**d), which refuses an unknown key the same way, so a typo is
/// never silently a default.
/// An empty `context` is a top-level object: the field is the bare key, and `name` says what
/// the object is ("the synthetic model config").
inline void require_known_keys(const Json& object, std::initializer_list<std::string_view> known,
                               std::string_view context, std::string_view name = {}) {
  if (!object.is_object()) return;  // the field readers say what is wrong with it
  for (const auto& item : object.items()) {
    bool found = false;
    for (const auto k : known) found = found || item.key() == k;
    if (found) continue;
    std::string list;
    for (const auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    const std::string field = context.empty() ? item.key() : std::string(context) + "." + item.key();
    throw ConfigError(field, item.value().dump(),
                      "is not a key of " + std::string(name.empty() ? context : name) + " (its keys: " + list + ")");
  }
}

}  // namespace synthsae::io
