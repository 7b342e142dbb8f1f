#pragma once
// Magnitude policies (reference §3.2), used for the per-feature means and standard
// deviations of firing magnitudes: Constant, Linear, Exponential, FoldedNormal. In JSON a
// plain number means Constant.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "synthsae/core/torch_cpu_generator.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/io/json.hpp"
#include "synthsae/world/concepts.hpp"

namespace synthsae {

struct ConstantMagnitude {
  static constexpr std::string_view generator_name = "constant";
  double value = 1.0;
  void validate() const {
    if (!std::isfinite(value)) throw ConfigError("magnitude.value", show(value), "must be finite");
  }
  std::vector<double> generate(std::size_t n, std::uint64_t) const { return std::vector<double>(n, value); }
  io::Json to_json() const { return {{"generator_name", generator_name}, {"value", value}}; }
  static ConstantMagnitude from_json(const io::Json& j) {
    io::require_known_keys(j, {"generator_name", "value"}, "magnitude");
    ConstantMagnitude c{io::json_field_or<double>(j, "value", "magnitude", 1.0)};
    c.validate();
    return c;
  }
};

namespace detail {

/// The parameters, validation and JSON shared by the (start, end) magnitude policies; Derived
/// adds generator_name and generate().
template <class Derived>
struct StartEndMagnitude {
  double start = 1.0;
  double end = 1.0;
  void validate() const {
    if (!(start > 0 && end > 0 && std::isfinite(start) && std::isfinite(end)))
      throw ConfigError("magnitude.start/end", show(start) + "/" + show(end), "must both be finite and > 0");
  }
  io::Json to_json() const { return {{"generator_name", Derived::generator_name}, {"start", start}, {"end", end}}; }
  static Derived from_json(const io::Json& j) {
    io::require_known_keys(j, {"generator_name", "start", "end"}, "magnitude");
    Derived d;
    d.start = io::json_field<double>(j, "start", "magnitude");
    d.end = io::json_field<double>(j, "end", "magnitude");
    d.validate();
    return d;
  }
};

}  // namespace detail

/// Evenly spaced from start (feature 0) to end (feature N-1); N = 1 gives [start].
struct LinearMagnitude : detail::StartEndMagnitude<LinearMagnitude> {
  static constexpr std::string_view generator_name = "linear";
  std::vector<double> generate(std::size_t n, std::uint64_t) const {
    validate();
    std::vector<double> v(n, start);
    for (std::size_t i = 0; n > 1 && i < n; ++i) v[i] = start + (end - start) * double(i) / double(n - 1);
    return v;
  }
};

/// start (end/start)^t_i with t evenly spaced in [0, 1].
struct ExponentialMagnitude : detail::StartEndMagnitude<ExponentialMagnitude> {
  static constexpr std::string_view generator_name = "exponential";
  std::vector<double> generate(std::size_t n, std::uint64_t) const {
    validate();
    std::vector<double> v(n, start);
    for (std::size_t i = 0; n > 1 && i < n; ++i) v[i] = start * std::pow(end / start, double(i) / double(n - 1));
    return v;
  }
};

/// |mean + std z_i|, z_i ~ N(0, 1) seeded, then optionally clamped to [min_value, max_value].
struct FoldedNormalMagnitude {
  static constexpr std::string_view generator_name = "folded_normal";
  double mean = 0.0;
  double std = 0.1;
  std::optional<double> min_value;
  std::optional<double> max_value;
  void validate() const {
    if (!std::isfinite(mean)) throw ConfigError("magnitude.mean", show(mean), "must be finite");
    if (!(std > 0 && std::isfinite(std))) throw ConfigError("magnitude.std", show(std), "must be finite and > 0");
    if (min_value && !(*min_value >= 0)) throw ConfigError("magnitude.min_value", show(*min_value), "must be >= 0");
    if (max_value && !(*max_value > 0)) throw ConfigError("magnitude.max_value", show(*max_value), "must be > 0");
    if (min_value && max_value && *min_value > *max_value) {
      throw ConfigError("magnitude.min_value/max_value", show(*min_value) + "/" + show(*max_value),
                        "min must not exceed max");
    }
  }
  /// SAELens's draw exactly: torch.randn(n, generator=Generator().manual_seed(seed)) in float32,
  /// then |mean + z std| and the clamp, all in float32 (core/torch_cpu_generator.hpp). SAELens
  /// redraws these at load time instead of storing them, so this is what makes a world directory
  /// mean the same world in both tools.
  std::vector<double> generate(std::size_t n, std::uint64_t seed) const {
    validate();
    torch_compat::CpuGenerator g(seed);
    const std::vector<float> z = g.randn(n);
    const float m = static_cast<float>(mean), sd = static_cast<float>(std);
    std::vector<double> v(n);
    for (std::size_t i = 0; i < n; ++i) {
      float x = std::fabs(m + z[i] * sd);
      if (min_value) x = std::max(x, static_cast<float>(*min_value));
      if (max_value) x = std::min(x, static_cast<float>(*max_value));
      v[i] = x;
    }
    return v;
  }
  io::Json to_json() const {
    return {{"generator_name", generator_name},
            {"mean", mean},
            {"std", std},
            {"min_value", min_value ? io::Json(*min_value) : io::Json(nullptr)},
            {"max_value", max_value ? io::Json(*max_value) : io::Json(nullptr)}};
  }
  static FoldedNormalMagnitude from_json(const io::Json& j) {
    io::require_known_keys(j, {"generator_name", "mean", "std", "min_value", "max_value"}, "magnitude");
    FoldedNormalMagnitude f;
    f.mean = io::json_field_or<double>(j, "mean", "magnitude", f.mean);
    f.std = io::json_field_or<double>(j, "std", "magnitude", f.std);
    if (j.contains("min_value") && !j["min_value"].is_null())
      f.min_value = io::json_field<double>(j, "min_value", "magnitude");
    if (j.contains("max_value") && !j["max_value"].is_null())
      f.max_value = io::json_field<double>(j, "max_value", "magnitude");
    f.validate();
    return f;
  }
};

static_assert(MagnitudePolicy<ConstantMagnitude> && MagnitudePolicy<LinearMagnitude> &&
              MagnitudePolicy<ExponentialMagnitude> && MagnitudePolicy<FoldedNormalMagnitude>);

using Magnitude = std::variant<ConstantMagnitude, LinearMagnitude, ExponentialMagnitude, FoldedNormalMagnitude>;

inline std::vector<double> generate(const Magnitude& m, std::size_t n, std::uint64_t seed) {
  return std::visit([&](const auto& g) { return g.generate(n, seed); }, m);
}
/// A constant serialises as a plain number, as SAELens writes a float field.
inline io::Json to_json(const Magnitude& m) {
  if (const auto* c = std::get_if<ConstantMagnitude>(&m)) return c->value;
  return std::visit([](const auto& g) { return g.to_json(); }, m);
}
inline Magnitude magnitude_from_json(const io::Json& j, std::string_view field) {
  if (j.is_number()) return ConstantMagnitude{j.get<double>()};
  if (!j.is_object()) throw ConfigError(field, j.dump(), "must be a number or a magnitude config object");
  const auto name = io::json_field<std::string>(j, "generator_name", field);
  try {
    if (name == ConstantMagnitude::generator_name) return ConstantMagnitude::from_json(j);
    if (name == LinearMagnitude::generator_name) return LinearMagnitude::from_json(j);
    if (name == ExponentialMagnitude::generator_name) return ExponentialMagnitude::from_json(j);
    if (name == FoldedNormalMagnitude::generator_name) return FoldedNormalMagnitude::from_json(j);
  } catch (const ConfigError& e) {  // say which config field this magnitude belongs to
    throw ConfigError(field, j.dump(), e.what());
  }
  throw ConfigError(std::string(field) + ".generator_name", "\"" + name + "\"",
                    "must be one of constant, linear, exponential, folded_normal");
}

}  // namespace synthsae
