#pragma once
// One exception family. Every message names what was wrong and where: the config
// field and its value, the file and the part of it, the shapes that disagree.
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace synthsae {

/// Base of every error synthsae throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A configuration value (JSON key, preset field, CLI flag) that is out of its domain.
class ConfigError : public Error {
 public:
  ConfigError(std::string_view field, std::string_view value, std::string_view requirement)
      : Error(std::string(field) + " = " + std::string(value) + ": " + std::string(requirement)), field_(field) {}
  const std::string& field() const noexcept { return field_; }

 private:
  std::string field_;
};

/// A file whose contents are malformed (truncated, inconsistent, wrong type).
class FormatError : public Error {
 public:
  FormatError(std::string_view source, std::string_view what) : Error(std::string(source) + ": " + std::string(what)) {}
};

/// A file that cannot be opened, read, written or renamed.
class IoError : public Error {
 public:
  IoError(std::string_view path, std::string_view what) : Error(std::string(path) + ": " + std::string(what)) {}
};

/// Arrays whose shapes do not fit the operation.
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// A computation that cannot go on: a training run whose steps keep producing non-finite values.
class NumericalError : public Error {
 public:
  using Error::Error;
};

/// A failure reported by a backend library (cuBLAS, CUDA runtime).
class BackendError : public Error {
 public:
  using Error::Error;
};

/// Formats any streamable value for an error message.
template <class T>
std::string show(const T& value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

/// A loss coefficient must be finite and >= 0; ConfigError naming `field` otherwise.
inline void require_coefficient(const char* field, double value) {
  if (!(value >= 0) || !(value <= std::numeric_limits<double>::max()))
    throw ConfigError(field, show(value), "must be finite and >= 0");
}

}  // namespace synthsae
