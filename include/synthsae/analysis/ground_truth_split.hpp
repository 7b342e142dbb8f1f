#pragma once
// Ground truth the paper could not have (reference dark-matter.md §2.7): which true features an
// SAE captured, and the part of each sample made of the others. With L the captured set,
//   Absent(x) = Σ_{i∉L} c_i d_i,   Introduced(x) = Sae(x) - Σ_{i∈L} c_i d_i - b_world,
// so SaeError = Absent + Dense - Introduced exactly (Dense = 0 in worlds without dense parts).
#include <cstdint>
#include <vector>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/metrics/assignment.hpp"
#include "synthsae/metrics/decoder_similarity.hpp"
#include "synthsae/world/activation_sampler.hpp"

namespace synthsae::analysis {

struct CapturedFeatures {
  std::vector<std::uint8_t> captured;  ///< [N] 1 if a latent captures the feature
  std::size_t count = 0;
  double threshold = 0;
  double mcc = 0;  ///< mean |cos| of the assignment (the metrics' MCC)
};

/// The MCC assignment of latents to features (metrics/assignment.hpp); a feature counts as
/// captured when its assigned latent's decoder row has |cos| ≥ threshold with it.
inline CapturedFeatures captured_features(const Matrix<float>& w_dec, const Matrix<float>& w_feat, double threshold) {
  const auto sim = decoder_similarity(w_dec, w_feat);
  const std::size_t s = sim.num_latents, n = sim.num_features;
  CapturedFeatures out{std::vector<std::uint8_t>(n, 0), 0, threshold, 0};
  if (s == 0 || n == 0) return out;
  double total = 0;
  if (s <= n) {
    const auto a = solve_assignment_max(sim.abs_cos, s, n);
    for (std::size_t j = 0; j < s; ++j) {
      const auto f = static_cast<std::size_t>(a.column_of_row[j]);
      const double c = sim.abs_cos[j * n + f];
      total += c;
      if (c >= threshold) out.captured[f] = 1;
    }
    out.mcc = total / double(s);
  } else {
    std::vector<double> t(s * n);
    for (std::size_t j = 0; j < s; ++j)
      for (std::size_t i = 0; i < n; ++i) t[i * s + j] = sim.abs_cos[j * n + i];
    const auto a = solve_assignment_max(t, n, s);
    for (std::size_t i = 0; i < n; ++i) {
      const double c = t[i * s + static_cast<std::size_t>(a.column_of_row[i])];
      total += c;
      if (c >= threshold) out.captured[i] = 1;
    }
    out.mcc = total / double(n);
  }
  for (auto c : out.captured) out.count += c;
  return out;
}

/// absent(b, :) = Σ over the sample's firing features not captured of value · W_feat[id]
/// (host: a row at a time, contiguous feature rows; GPU: a thread per entry).
inline void absent_part(const SparseBatch<float>& truth, const Matrix<float>& features,
                        const Vector<std::uint8_t>& captured, const Matrix<float>& absent) {
  const auto t = truth;
  const auto f = features;
  const auto cap = captured;
  const auto out = absent;
  const int d = static_cast<int>(absent.extent(1));
  if constexpr (host_execution_v) {
    Kokkos::parallel_for(
        "synthsae::absent_part", Kokkos::RangePolicy<ExecSpace>(0, absent.extent(0)), KOKKOS_LAMBDA(int b) {
          for (int k = 0; k < d; ++k) out(b, k) = 0.0f;
          const int n = t.counts(b);
          for (int u = 0; u < n; ++u) {
            const int id = t.ids(b, u);
            if (cap(id)) continue;
            const float v = t.values(b, u);
            for (int k = 0; k < d; ++k) out(b, k) += v * f(id, k);
          }
        });
  } else {
    for_each_entry(
        "synthsae::absent_part", absent.extent(0), absent.extent(1), KOKKOS_LAMBDA(int b, int k) {
          float acc = 0;
          const int n = t.counts(b);
          for (int u = 0; u < n; ++u) {
            const int id = t.ids(b, u);
            if (!cap(id)) acc += t.values(b, u) * f(id, k);
          }
          out(b, k) = acc;
        });
  }
}

}  // namespace synthsae::analysis
