#pragma once
// Decoder-only metrics (reference §6): MCC, the mean |cos| over an optimal assignment of every
// latent to a distinct feature; uniqueness, the fraction of distinct argmax features.
#include <unordered_set>

#include "synthsae/metrics/assignment.hpp"
#include "synthsae/metrics/decoder_similarity.hpp"

namespace synthsae {

/// Mean matched |cos| of the optimal assignment matching min(S, N) latent-feature pairs, each
/// latent and each feature at most once (SAELens: linear_sum_assignment on 1 - |cos|).
inline double mean_correlation_coefficient(const DecoderSimilarity& sim) {
  const std::size_t s = sim.num_latents, n = sim.num_features;
  if (s == 0 || n == 0) return 0.0;
  if (s <= n) return solve_assignment_max(sim.abs_cos, s, n).total / double(s);
  std::vector<double> transposed(s * n);  // more latents than features: match every feature
  for (std::size_t j = 0; j < s; ++j)
    for (std::size_t i = 0; i < n; ++i) transposed[i * s + j] = sim.abs_cos[j * n + i];
  return solve_assignment_max(transposed, n, s).total / double(n);
}

/// |unique argmax features| / S; 0 for S = 0. Uses argmax collisions, not the assignment.
inline double uniqueness(const DecoderSimilarity& sim) {
  if (sim.num_latents == 0) return 0.0;
  const std::unordered_set<std::int32_t> distinct(sim.best_feature.begin(), sim.best_feature.end());
  return double(distinct.size()) / double(sim.num_latents);
}

}  // namespace synthsae
