#pragma once
// A small command-line parser for the synthsae program: --flag VALUE and --switch forms,
// typed getters whose errors name the flag and the value, and UsageError for exit code 2.
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "synthsae/core/text_fields.hpp"

namespace synthsae::cli {

/// Bad command-line usage: printed with the command's usage line, exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using synthsae::parse_number;
using synthsae::split_list;

/// A list item or a spec's field as a number in [lo, hi]: UsageError "FLAG = TEXT: ..." otherwise.
inline double number_in(const std::string& flag, const std::string& text, double lo, double hi) {
  if (const auto v = parse_number(text, lo, hi)) return *v;
  if (!parse_number(text, -HUGE_VAL, HUGE_VAL)) throw UsageError(flag + " = " + text + ": not a number");
  throw UsageError(flag + " = " + text + ": must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

class Args {
 public:
  /// `valued`: flags that take a value; `switches`: flags that do not; `repeatable`: valued
  /// flags that may be given more than once (texts()). Anything else is an error.
  Args(const std::vector<std::string>& argv, const std::set<std::string>& valued,
       const std::set<std::string>& switches, const std::set<std::string>& repeatable = {}) {
    for (std::size_t i = 0; i < argv.size(); ++i) {
      const std::string& a = argv[i];
      if (a == "--help" || a == "-h") {
        help_ = true;
        continue;
      }
      std::string name = a, value;
      bool has_inline = false;
      if (const auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
        name = a.substr(0, eq), value = a.substr(eq + 1), has_inline = true;
      }
      if (valued.count(name) || repeatable.count(name)) {
        if (!has_inline) {
          if (i + 1 >= argv.size()) throw UsageError(name + " needs a value");
          value = argv[++i];
        }
        if (repeatable.count(name)) {
          if (value.empty()) throw UsageError(name + " = '': needs a non-empty value");
          repeated_[name].push_back(value);
          continue;
        }
        if (values_.count(name)) throw UsageError(name + " given twice");
        values_[name] = value;
      } else if (switches.count(name) && !has_inline) {
        switches_.insert(name);
      } else {
        throw UsageError("unknown argument '" + a + "'");
      }
    }
  }

  bool help() const { return help_; }
  bool has(const std::string& flag) const {
    return values_.count(flag) || switches_.count(flag) || repeated_.count(flag);
  }
  /// Every value of a repeatable flag, in the order given.
  std::vector<std::string> texts(const std::string& flag) const {
    const auto it = repeated_.find(flag);
    return it == repeated_.end() ? std::vector<std::string>{} : it->second;
  }

  std::optional<std::string> text(const std::string& flag) const {
    const auto it = values_.find(flag);
    if (it == values_.end()) return std::nullopt;
    if (it->second.empty()) throw UsageError(flag + " = '': needs a non-empty value");
    return it->second;
  }

  /// An integer in [lo, hi].
  std::optional<std::int64_t> integer(const std::string& flag, std::int64_t lo, std::int64_t hi) const {
    const auto t = text(flag);
    if (!t) return std::nullopt;
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(t->data(), t->data() + t->size(), v);
    if (ec != std::errc() || end != t->data() + t->size()) throw UsageError(flag + " = " + *t + ": not an integer");
    if (v < lo || v > hi)
      throw UsageError(flag + " = " + *t + ": must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return v;
  }

  /// A finite number in [lo, hi].
  std::optional<double> number(const std::string& flag, double lo, double hi) const {
    const auto t = text(flag);
    if (!t) return std::nullopt;
    return number_in(flag, *t, lo, hi);
  }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> switches_;
  std::map<std::string, std::vector<std::string>> repeated_;
  bool help_ = false;
};

}  // namespace synthsae::cli
