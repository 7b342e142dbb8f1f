#pragma once
// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "string", ...}}
// then the tensor bytes, offsets relative to the end of the header. Every offset, shape
// and length is checked before any byte is read: a malformed file is a FormatError that
// names the file and the tensor, never an out-of-bounds read.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "synthsae/core/error.hpp"
#include "synthsae/core/float16.hpp"
#include "synthsae/io/atomic_file.hpp"
#include "synthsae/io/json.hpp"

namespace synthsae::io {

static_assert(std::endian::native == std::endian::little, "synthsae's safetensors code assumes a little-endian host");

enum class Dtype { BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64 };

inline constexpr std::pair<Dtype, std::string_view> kDtypeNames[] = {
    {Dtype::BOOL, "BOOL"}, {Dtype::U8, "U8"},     {Dtype::I8, "I8"},   {Dtype::I16, "I16"}, {Dtype::U16, "U16"},
    {Dtype::F16, "F16"},   {Dtype::BF16, "BF16"}, {Dtype::I32, "I32"}, {Dtype::U32, "U32"}, {Dtype::F32, "F32"},
    {Dtype::I64, "I64"},   {Dtype::U64, "U64"},   {Dtype::F64, "F64"}};

inline std::string_view dtype_name(Dtype d) {
  for (const auto& [dtype, name] : kDtypeNames)
    if (dtype == d) return name;
  return "?";
}

inline std::optional<Dtype> parse_dtype(std::string_view name) {
  for (const auto& [dtype, text] : kDtypeNames)
    if (text == name) return dtype;
  return std::nullopt;
}

inline std::size_t dtype_size(Dtype d) {
  switch (d) {
    case Dtype::BOOL:
    case Dtype::U8:
    case Dtype::I8:
      return 1;
    case Dtype::I16:
    case Dtype::U16:
    case Dtype::F16:
    case Dtype::BF16:
      return 2;
    case Dtype::I32:
    case Dtype::U32:
    case Dtype::F32:
      return 4;
    case Dtype::I64:
    case Dtype::U64:
    case Dtype::F64:
      return 8;
  }
  return 0;
}

/// One tensor: its element type, shape (any rank, rank 0 = scalar) and raw little-endian bytes.
struct Tensor {
  Dtype dtype = Dtype::F32;
  std::vector<std::int64_t> shape;
  std::vector<std::byte> bytes;

  std::size_t numel() const {
    std::size_t n = 1;
    for (auto s : shape) n *= static_cast<std::size_t>(s);
    return n;
  }
};

/// A whole safetensors file in memory.
struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;

  bool contains(const std::string& name) const { return tensors.count(name) != 0; }
  /// The named tensor; FormatError naming `source` when it is absent.
  const Tensor& at(const std::string& name, std::string_view source = "safetensors") const {
    const auto it = tensors.find(name);
    if (it == tensors.end()) throw FormatError(source, "has no tensor '" + name + "'");
    return it->second;
  }
};

namespace detail {

/// Largest header accepted (the reference implementation's limit is 100 MB).
inline constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

template <class T>
T load_le(const std::byte* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

inline std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

/// Reads element i of a tensor as double (exact for every dtype but 64-bit integers > 2^53).
inline double element_as_double(const Tensor& t, std::size_t i) {
  const std::byte* p = t.bytes.data() + i * dtype_size(t.dtype);
  switch (t.dtype) {
    case Dtype::BOOL:
      return static_cast<double>(load_le<std::uint8_t>(p));
    case Dtype::U8:
      return load_le<std::uint8_t>(p);
    case Dtype::I8:
      return load_le<std::int8_t>(p);
    case Dtype::I16:
      return load_le<std::int16_t>(p);
    case Dtype::U16:
      return load_le<std::uint16_t>(p);
    case Dtype::F16:
      return f16_to_float(load_le<std::uint16_t>(p));
    case Dtype::BF16:
      return bf16_to_float(load_le<std::uint16_t>(p));
    case Dtype::I32:
      return load_le<std::int32_t>(p);
    case Dtype::U32:
      return load_le<std::uint32_t>(p);
    case Dtype::F32:
      return load_le<float>(p);
    case Dtype::I64:
      return static_cast<double>(load_le<std::int64_t>(p));
    case Dtype::U64:
      return static_cast<double>(load_le<std::uint64_t>(p));
    case Dtype::F64:
      return load_le<double>(p);
  }
  return 0.0;
}

inline bool is_integer_dtype(Dtype d) {
  return d != Dtype::F16 && d != Dtype::BF16 && d != Dtype::F32 && d != Dtype::F64;
}

template <class T>
void store(std::byte* p, T value) {
  std::memcpy(p, &value, sizeof(T));
}

}  // namespace detail

/// Builds a tensor of `dtype` from values of type T. Float dtypes round (F16/BF16 to nearest
/// even); integer dtypes require each value to be an integer in range; BOOL requires 0 or 1.
template <class T>
Tensor make_tensor(Dtype dtype, std::vector<std::int64_t> shape, std::span<const T> values,
                   std::string_view name = "tensor") {
  static_assert(std::is_arithmetic_v<T>, "make_tensor takes arithmetic values");
  Tensor t{dtype, std::move(shape), {}};
  for (auto s : t.shape)
    if (s < 0) throw ShapeError(std::string(name) + ": negative dimension in shape " + detail::shape_text(t.shape));
  if (t.numel() != values.size()) {
    throw ShapeError(std::string(name) + ": shape " + detail::shape_text(t.shape) + " holds " +
                     std::to_string(t.numel()) + " elements but " + std::to_string(values.size()) + " were given");
  }
  const std::size_t width = dtype_size(dtype);
  t.bytes.resize(values.size() * width);
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double v = static_cast<double>(values[i]);
    std::byte* p = t.bytes.data() + i * width;
    if (detail::is_integer_dtype(dtype)) {
      double lo = 0, hi = 0;
      switch (dtype) {
        case Dtype::BOOL:
          lo = 0;
          hi = 1;
          break;
        case Dtype::U8:
          lo = 0;
          hi = 255;
          break;
        case Dtype::I8:
          lo = -128;
          hi = 127;
          break;
        case Dtype::I16:
          lo = -32768;
          hi = 32767;
          break;
        case Dtype::U16:
          lo = 0;
          hi = 65535;
          break;
        case Dtype::I32:
          lo = -2147483648.0;
          hi = 2147483647.0;
          break;
        case Dtype::U32:
          lo = 0;
          hi = 4294967295.0;
          break;
        case Dtype::I64:
          lo = -9223372036854775808.0;
          hi = 9223372036854775807.0;
          break;
        case Dtype::U64:
          lo = 0;
          hi = 18446744073709551615.0;
          break;
        default:
          break;
      }
      if (!(v >= lo && v <= hi) || std::floor(v) != v) {
        throw ShapeError(std::string(name) + ": value " + show(values[i]) + " at index " + std::to_string(i) +
                         " is not representable as " + std::string(dtype_name(dtype)));
      }
    }
    switch (dtype) {
      case Dtype::BOOL:
        detail::store<std::uint8_t>(p, static_cast<std::uint8_t>(v));
        break;
      case Dtype::U8:
        detail::store<std::uint8_t>(p, static_cast<std::uint8_t>(v));
        break;
      case Dtype::I8:
        detail::store<std::int8_t>(p, static_cast<std::int8_t>(v));
        break;
      case Dtype::I16:
        detail::store<std::int16_t>(p, static_cast<std::int16_t>(v));
        break;
      case Dtype::U16:
        detail::store<std::uint16_t>(p, static_cast<std::uint16_t>(v));
        break;
      case Dtype::F16:
        detail::store<std::uint16_t>(p, float_to_f16(static_cast<float>(values[i])));
        break;
      case Dtype::BF16:
        detail::store<std::uint16_t>(p, float_to_bf16(static_cast<float>(values[i])));
        break;
      case Dtype::I32:
        detail::store<std::int32_t>(p, static_cast<std::int32_t>(values[i]));
        break;
      case Dtype::U32:
        detail::store<std::uint32_t>(p, static_cast<std::uint32_t>(values[i]));
        break;
      case Dtype::F32:
        detail::store<float>(p, static_cast<float>(values[i]));
        break;
      case Dtype::I64:
        detail::store<std::int64_t>(p, static_cast<std::int64_t>(values[i]));
        break;
      case Dtype::U64:
        detail::store<std::uint64_t>(p, static_cast<std::uint64_t>(values[i]));
        break;
      case Dtype::F64:
        detail::store<double>(p, static_cast<double>(values[i]));
        break;
    }
  }
  return t;
}

template <class T>
Tensor make_tensor(Dtype dtype, std::vector<std::int64_t> shape, const std::vector<T>& values,
                   std::string_view name = "tensor") {
  return make_tensor<T>(dtype, std::move(shape), std::span<const T>(values), name);
}

/// The tensor's elements converted to T (row-major order). Integer T requires integral values
/// in range (a float tensor with 0.5 read as int is an error, not a truncation).
template <class T>
std::vector<T> tensor_values(const Tensor& t, std::string_view name = "tensor") {
  static_assert(std::is_arithmetic_v<T>, "tensor_values returns arithmetic values");
  const std::size_t n = t.numel();
  std::vector<T> out(n);
  const bool exact_copy = (std::is_same_v<T, float> && t.dtype == Dtype::F32) ||
                          (std::is_same_v<T, double> && t.dtype == Dtype::F64) ||
                          (std::is_same_v<T, std::int32_t> && t.dtype == Dtype::I32) ||
                          (std::is_same_v<T, std::int64_t> && t.dtype == Dtype::I64);
  if (exact_copy) {
    std::memcpy(out.data(), t.bytes.data(), n * sizeof(T));
    return out;
  }
  for (std::size_t i = 0; i < n; ++i) {
    if constexpr (std::is_integral_v<T>) {
      if (t.dtype == Dtype::I64 || t.dtype == Dtype::U64) {  // beyond double's exact range
        const std::byte* p = t.bytes.data() + i * 8;
        if (t.dtype == Dtype::I64) {
          const auto v = detail::load_le<std::int64_t>(p);
          if (!std::in_range<T>(v))
            throw FormatError(name, "I64 value " + std::to_string(v) + " does not fit the requested type");
          out[i] = static_cast<T>(v);
        } else {
          const auto v = detail::load_le<std::uint64_t>(p);
          if (!std::in_range<T>(v))
            throw FormatError(name, "U64 value " + std::to_string(v) + " does not fit the requested type");
          out[i] = static_cast<T>(v);
        }
        continue;
      }
      const double v = detail::element_as_double(t, i);
      if (std::floor(v) != v || v < static_cast<double>(std::numeric_limits<T>::lowest()) ||
          v > static_cast<double>(std::numeric_limits<T>::max())) {
        throw FormatError(name, "element " + std::to_string(i) + " = " + show(v) + " (" +
                                    std::string(dtype_name(t.dtype)) + ") is not an integer of the requested type");
      }
      out[i] = static_cast<T>(v);
    } else {
      out[i] = static_cast<T>(detail::element_as_double(t, i));
    }
  }
  return out;
}

/// Parses a complete safetensors file held in memory. `source` names it in errors.
inline SafetensorsFile parse_safetensors(std::span<const std::byte> file, std::string_view source) {
  if (file.size() < 8) {
    throw FormatError(source,
                      "file is " + std::to_string(file.size()) + " bytes, shorter than the 8-byte header length");
  }
  const auto header_len = detail::load_le<std::uint64_t>(file.data());
  if (header_len > file.size() - 8) {
    throw FormatError(source, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                                  std::to_string(file.size()) + " bytes)");
  }
  if (header_len > detail::kMaxHeaderBytes) {
    throw FormatError(source, "header length " + std::to_string(header_len) + " exceeds the limit of " +
                                  std::to_string(detail::kMaxHeaderBytes) + " bytes");
  }
  const auto* header_begin = reinterpret_cast<const char*>(file.data() + 8);
  const std::string_view header_text(header_begin, static_cast<std::size_t>(header_len));
  const std::span<const std::byte> data = file.subspan(8 + static_cast<std::size_t>(header_len));

  // Duplicate top-level keys would silently shadow each other in nlohmann::json: reject them.
  std::vector<std::string> top_keys;
  Json header;
  try {
    header =
        Json::parse(header_text.begin(), header_text.end(), [&](int depth, Json::parse_event_t event, Json& parsed) {
          if (depth == 1 && event == Json::parse_event_t::key) top_keys.push_back(parsed.get<std::string>());
          return true;
        });
  } catch (const Json::exception& e) {  // parse_error, and out_of_range for a number like 1e999
    throw FormatError(source, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) throw FormatError(source, "header is not a JSON object");
  std::sort(top_keys.begin(), top_keys.end());
  if (auto dup = std::adjacent_find(top_keys.begin(), top_keys.end()); dup != top_keys.end()) {
    throw FormatError(source, "header names '" + *dup + "' twice");
  }

  SafetensorsFile result;
  struct Span {
    std::uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw FormatError(source, "__metadata__ is not a JSON object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string())
          throw FormatError(source, "__metadata__['" + key + "'] is not a string: " + value.dump());
        result.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!entry.is_object()) throw FormatError(source, where + " is not a JSON object");
    const auto dtype_it = entry.find("dtype");
    const auto shape_it = entry.find("shape");
    const auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string()) throw FormatError(source, where + " has no string 'dtype'");
    if (shape_it == entry.end() || !shape_it->is_array()) throw FormatError(source, where + " has no array 'shape'");
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
      throw FormatError(source, where + " has no two-element 'data_offsets'");
    }
    const auto dtype = parse_dtype(dtype_it->get<std::string>());
    if (!dtype) throw FormatError(source, where + " has unknown dtype " + dtype_it->dump());

    Tensor tensor;
    tensor.dtype = *dtype;
    std::uint64_t count = 1;
    for (const auto& dim : *shape_it) {
      if (!dim.is_number_unsigned()) throw FormatError(source, where + " has an invalid dimension " + dim.dump());
      const std::uint64_t d = dim.get<std::uint64_t>();
      if (d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
          (d != 0 && count > std::numeric_limits<std::uint64_t>::max() / d)) {
        throw FormatError(source, where + " has a shape whose element count overflows");
      }
      count *= d;
      tensor.shape.push_back(static_cast<std::int64_t>(d));
    }
    for (const auto& off : *offsets_it) {
      if (!off.is_number_unsigned()) throw FormatError(source, where + " has an invalid data offset " + off.dump());
    }
    const std::uint64_t begin = (*offsets_it)[0].get<std::uint64_t>();
    const std::uint64_t end = (*offsets_it)[1].get<std::uint64_t>();
    if (begin > end)
      throw FormatError(source, where + " has data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                                    "] with begin after end");
    if (end > data.size()) {
      throw FormatError(source, where + " has data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                                    "] past the end of the data (" + std::to_string(data.size()) +
                                    " bytes; file truncated?)");
    }
    const std::uint64_t width = dtype_size(tensor.dtype);
    if (count > std::numeric_limits<std::uint64_t>::max() / width || count * width != end - begin) {
      throw FormatError(source, where + " has shape " + detail::shape_text(tensor.shape) + " of " +
                                    std::string(dtype_name(tensor.dtype)) + " (" + std::to_string(count) +
                                    " elements) but " + std::to_string(end - begin) + " data bytes");
    }
    spans.push_back({begin, end, name});
    tensor.bytes.resize(static_cast<std::size_t>(end - begin));
    if (end > begin) std::memcpy(tensor.bytes.data(), data.data() + begin, static_cast<std::size_t>(end - begin));
    if (tensor.dtype == Dtype::BOOL) {
      for (std::size_t i = 0; i < tensor.bytes.size(); ++i) {
        if (std::to_integer<unsigned>(tensor.bytes[i]) > 1u) {
          throw FormatError(source, where + " (BOOL) holds byte value " +
                                        std::to_string(std::to_integer<unsigned>(tensor.bytes[i])) + " at element " +
                                        std::to_string(i));
        }
      }
    }
    result.tensors.emplace(name, std::move(tensor));
  }

  // The data must be covered exactly: sorted spans, each starting where the previous ended.
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  std::uint64_t cursor = 0;
  const Span* previous = nullptr;
  for (const auto& s : spans) {
    if (s.begin < cursor) {
      throw FormatError(source, "tensor '" + s.name + "' overlaps tensor '" + previous->name + "' in the data section");
    }
    if (s.begin > cursor) {
      throw FormatError(source, "bytes [" + std::to_string(cursor) + ", " + std::to_string(s.begin) +
                                    ") of the data section belong to no tensor");
    }
    cursor = s.end;
    previous = &s;
  }
  if (cursor != data.size()) {
    throw FormatError(source, "the data section has " + std::to_string(data.size()) + " bytes but the tensors cover " +
                                  std::to_string(cursor));
  }
  return result;
}

inline SafetensorsFile read_safetensors(const std::filesystem::path& path) {
  const auto bytes = read_file_bytes(path);
  return parse_safetensors(std::as_bytes(std::span<const char>(bytes)), path.string());
}

/// Serialises like the Python writer: tensors ordered by decreasing element width, then by
/// name, so each tensor is aligned to its element width; the header is padded with spaces to
/// a multiple of 8 bytes.
inline std::vector<std::byte> serialize_safetensors(const SafetensorsFile& file) {
  std::vector<const std::pair<const std::string, Tensor>*> order;
  for (const auto& entry : file.tensors) {
    if (entry.first == "__metadata__")
      throw FormatError("safetensors writer", "'__metadata__' is not a valid tensor name");
    const Tensor& t = entry.second;
    std::uint64_t count = 1;
    for (auto d : t.shape) {
      if (d < 0) throw ShapeError("tensor '" + entry.first + "': negative dimension in " + detail::shape_text(t.shape));
      count *= static_cast<std::uint64_t>(d);
    }
    if (count * dtype_size(t.dtype) != t.bytes.size()) {
      throw ShapeError("tensor '" + entry.first + "': shape " + detail::shape_text(t.shape) + " of " +
                       std::string(dtype_name(t.dtype)) + " needs " + std::to_string(count * dtype_size(t.dtype)) +
                       " bytes but holds " + std::to_string(t.bytes.size()));
    }
    order.push_back(&entry);
  }
  std::stable_sort(order.begin(), order.end(),
                   [](auto* a, auto* b) { return dtype_size(a->second.dtype) > dtype_size(b->second.dtype); });

  Json header = Json::object();
  if (!file.metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [k, v] : file.metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  std::uint64_t offset = 0;
  for (const auto* entry : order) {
    const Tensor& t = entry->second;
    header[entry->first] = {{"dtype", std::string(dtype_name(t.dtype))},
                            {"shape", t.shape},
                            {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  std::vector<std::byte> out(8 + text.size() + offset);
  const std::uint64_t n = text.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, text.data(), text.size());
  std::size_t pos = 8 + text.size();
  for (const auto* entry : order) {
    const auto& bytes = entry->second.bytes;
    if (!bytes.empty()) std::memcpy(out.data() + pos, bytes.data(), bytes.size());
    pos += bytes.size();
  }
  return out;
}

/// Writes atomically (temporary file, then rename).
inline void write_safetensors(const std::filesystem::path& path, const SafetensorsFile& file) {
  const auto bytes = serialize_safetensors(file);
  write_file_atomically(path, [&](std::ostream& out) {
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  });
}

}  // namespace synthsae::io
