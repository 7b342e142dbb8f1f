#pragma once
// C++20 concepts naming what each policy kind must provide. A policy that misses a member
// fails with the concept's name instead of a template backtrace. docs/policies.md shows a
// worked example of writing each kind.
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace synthsae {

/// Per-feature firing probabilities (SAELens `FiringProbabilityConfig`): a deterministic or
/// seeded vector p[0..n) in [0, 1], its registry name, JSON round trip, validation.
template <class P>
concept FiringProbabilityPolicy = requires(const P& p, std::size_t n, std::uint64_t seed, const nlohmann::json& j) {
  { P::generator_name } -> std::convertible_to<std::string_view>;
  { p.generate(n, seed) } -> std::same_as<std::vector<double>>;
  { p.validate() } -> std::same_as<void>;
  { p.to_json() } -> std::same_as<nlohmann::json>;
  { P::from_json(j) } -> std::same_as<P>;
};

/// Per-feature magnitudes (used for both the means and the standard deviations).
template <class M>
concept MagnitudePolicy = requires(const M& m, std::size_t n, std::uint64_t seed, const nlohmann::json& j) {
  { M::generator_name } -> std::convertible_to<std::string_view>;
  { m.generate(n, seed) } -> std::same_as<std::vector<double>>;
  { m.validate() } -> std::same_as<void>;
  { m.to_json() } -> std::same_as<nlohmann::json>;
  { M::from_json(j) } -> std::same_as<M>;
};

}  // namespace synthsae
