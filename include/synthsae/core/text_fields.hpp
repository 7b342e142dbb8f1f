#pragma once
// Parsing the small texts users write in flags and specs: comma-separated lists and numbers that
// must be whole ("1x" is not a number) and finite. Shared by the program's argument parser and
// the library's spec parsers (e.g. the dark-matter oracle's), which then only name the field.
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace synthsae {

/// The items of a comma-separated list; empty items are kept (the caller refuses them) unless
/// `skip_empty`.
inline std::vector<std::string> split_list(const std::string& text, bool skip_empty = false) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!(skip_empty && item.empty())) out.push_back(std::move(item));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

/// `text` as a finite number in [lo, hi] (all of it: "1x" is not a number), else nullopt.
inline std::optional<double> parse_number(const std::string& text, double lo, double hi) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (used == 0 || used != text.size() || !std::isfinite(v) || v < lo || v > hi) return std::nullopt;
  return v;
}

}  // namespace synthsae
