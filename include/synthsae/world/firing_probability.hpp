#pragma once
// Firing-probability policies (reference §3.1): Zipfian, Linear, Random, Constant, and
// FiringProbability, the closed set a JSON config can name through "generator_name".
#include <cmath>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/io/json.hpp"
#include "synthsae/world/concepts.hpp"

namespace synthsae {

/// p_i = pmin + (pmax - pmin) (q_i - q_min) / (1 - q_min), q_i = (i + 1)^-a, q_min = N^-a.
/// Feature 0 is the most frequent (pmax), feature N-1 has exactly pmin.
struct Zipfian {
  static constexpr std::string_view generator_name = "zipfian";
  double exponent = 1.0;
  double max_prob = 0.3;
  double min_prob = 0.01;

  void validate() const {
    if (!(exponent > 0 && std::isfinite(exponent)))
      throw ConfigError("firing_probability.exponent", show(exponent), "must be finite and > 0");
    if (!(min_prob > 0 && min_prob < max_prob && max_prob <= 1)) {
      throw ConfigError("firing_probability.min_prob/max_prob", show(min_prob) + "/" + show(max_prob),
                        "need 0 < min_prob < max_prob <= 1");
    }
  }
  std::vector<double> generate(std::size_t n, std::uint64_t /*seed*/) const {
    validate();
    std::vector<double> p(n);
    if (n == 1) return {max_prob};
    const double q_min = std::pow(static_cast<double>(n), -exponent);
    for (std::size_t i = 0; i < n; ++i) {
      const double q = std::pow(static_cast<double>(i + 1), -exponent);
      p[i] = min_prob + (max_prob - min_prob) * (q - q_min) / (1.0 - q_min);
    }
    return p;
  }
  io::Json to_json() const {
    return {{"generator_name", generator_name}, {"exponent", exponent}, {"max_prob", max_prob}, {"min_prob", min_prob}};
  }
  static Zipfian from_json(const io::Json& j) {
    io::require_known_keys(j, {"generator_name", "exponent", "max_prob", "min_prob"}, "firing_probability");
    Zipfian z;
    z.exponent = io::json_field_or<double>(j, "exponent", "firing_probability", z.exponent);
    z.max_prob = io::json_field_or<double>(j, "max_prob", "firing_probability", z.max_prob);
    z.min_prob = io::json_field_or<double>(j, "min_prob", "firing_probability", z.min_prob);
    z.validate();
    return z;
  }
};

/// Evenly spaced from max_prob (feature 0) to min_prob (feature N-1).
struct LinearFiring {
  static constexpr std::string_view generator_name = "linear";
  double max_prob = 0.3;
  double min_prob = 0.01;

  void validate() const {
    if (!(min_prob >= 0 && min_prob <= max_prob && max_prob <= 1)) {
      throw ConfigError("firing_probability.min_prob/max_prob", show(min_prob) + "/" + show(max_prob),
                        "need 0 <= min_prob <= max_prob <= 1");
    }
  }
  std::vector<double> generate(std::size_t n, std::uint64_t /*seed*/) const {
    validate();
    std::vector<double> p(n, max_prob);
    for (std::size_t i = 0; n > 1 && i < n; ++i) p[i] = max_prob + (min_prob - max_prob) * double(i) / double(n - 1);
    return p;
  }
  io::Json to_json() const {
    return {{"generator_name", generator_name}, {"max_prob", max_prob}, {"min_prob", min_prob}};
  }
  static LinearFiring from_json(const io::Json& j) {
    io::require_known_keys(j, {"generator_name", "max_prob", "min_prob"}, "firing_probability");
    LinearFiring l;
    l.max_prob = io::json_field_or<double>(j, "max_prob", "firing_probability", l.max_prob);
    l.min_prob = io::json_field_or<double>(j, "min_prob", "firing_probability", l.min_prob);
    l.validate();
    return l;
  }
};

/// pmin + (pmax - pmin) U(0, 1), seeded.
struct RandomFiring {
  static constexpr std::string_view generator_name = "random";
  double max_prob = 0.5;
  double min_prob = 0.01;

  void validate() const {
    if (!(min_prob >= 0 && min_prob <= max_prob && max_prob <= 1)) {
      throw ConfigError("firing_probability.min_prob/max_prob", show(min_prob) + "/" + show(max_prob),
                        "need 0 <= min_prob <= max_prob <= 1");
    }
  }
  std::vector<double> generate(std::size_t n, std::uint64_t seed) const {
    validate();
    std::vector<double> p(n);
    RandomStream s(seed, /*stream: firing probabilities*/ 0x46495245ull);
    for (auto& v : p) v = min_prob + (max_prob - min_prob) * s.uniform<double>();
    return p;
  }
  io::Json to_json() const {
    return {{"generator_name", generator_name}, {"max_prob", max_prob}, {"min_prob", min_prob}};
  }
  static RandomFiring from_json(const io::Json& j) {
    io::require_known_keys(j, {"generator_name", "max_prob", "min_prob"}, "firing_probability");
    RandomFiring r;
    r.max_prob = io::json_field_or<double>(j, "max_prob", "firing_probability", r.max_prob);
    r.min_prob = io::json_field_or<double>(j, "min_prob", "firing_probability", r.min_prob);
    r.validate();
    return r;
  }
};

struct ConstantFiring {
  static constexpr std::string_view generator_name = "constant";
  double probability = 0.1;

  void validate() const {
    // SAELens takes any value here; 0 would be a world in which nothing ever fires.
    if (!(probability > 0 && probability <= 1))
      throw ConfigError("firing_probability.probability", show(probability), "must be in (0, 1]");
  }
  std::vector<double> generate(std::size_t n, std::uint64_t /*seed*/) const {
    validate();
    return std::vector<double>(n, probability);
  }
  io::Json to_json() const { return {{"generator_name", generator_name}, {"probability", probability}}; }
  static ConstantFiring from_json(const io::Json& j) {
    io::require_known_keys(j, {"generator_name", "probability"}, "firing_probability");
    ConstantFiring c;
    c.probability = io::json_field_or<double>(j, "probability", "firing_probability", c.probability);
    c.validate();
    return c;
  }
};

static_assert(FiringProbabilityPolicy<Zipfian> && FiringProbabilityPolicy<LinearFiring> &&
              FiringProbabilityPolicy<RandomFiring> && FiringProbabilityPolicy<ConstantFiring>);

/// The policies a JSON config can name.
using FiringProbability = std::variant<Zipfian, LinearFiring, RandomFiring, ConstantFiring>;

inline std::vector<double> generate(const FiringProbability& f, std::size_t n, std::uint64_t seed) {
  return std::visit([&](const auto& p) { return p.generate(n, seed); }, f);
}
inline io::Json to_json(const FiringProbability& f) {
  return std::visit([](const auto& p) { return p.to_json(); }, f);
}
inline FiringProbability firing_probability_from_json(const io::Json& j) {
  const auto name = io::json_field<std::string>(j, "generator_name", "firing_probability");
  if (name == Zipfian::generator_name) return Zipfian::from_json(j);
  if (name == LinearFiring::generator_name) return LinearFiring::from_json(j);
  if (name == RandomFiring::generator_name) return RandomFiring::from_json(j);
  if (name == ConstantFiring::generator_name) return ConstantFiring::from_json(j);
  throw ConfigError("firing_probability.generator_name", "\"" + name + "\"",
                    "must be one of zipfian, linear, random, constant");
}

}  // namespace synthsae
