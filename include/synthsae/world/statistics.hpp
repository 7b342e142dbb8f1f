#pragma once
// World statistics: superposition of the dictionary (reference `stats.py`) and firing
// statistics measured from samples (true L0, per-depth sums, realised rates).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/gemm.hpp"
#include "synthsae/world/synthetic_model.hpp"

namespace synthsae {

struct SuperpositionStats {
  double rho_mm = 0;        ///< mean over features of the max |cos| to any other feature
  double mean_p95 = 0;      ///< mean over features of the 95th percentile of |cos| to the others
  double mean_p99 = 0;      ///< likewise, 99th
  double mean_abs_cos = 0;  ///< mean |cos| over unordered pairs
};

namespace detail {
/// torch.quantile's linear interpolation on sorted-by-selection data (values is modified).
inline double quantile_linear(std::vector<float>& values, double q) {
  const double pos = q * double(values.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, values.size() - 1);
  std::nth_element(values.begin(), values.begin() + lo, values.end());
  const double a = values[lo];
  const double b = hi == lo ? a : *std::min_element(values.begin() + lo + 1, values.end());
  return a + (b - a) * (pos - double(lo));
}
}  // namespace detail

/// |cos| between every pair of rows, in row chunks of `chunk` (chunk x N products on the device),
/// reduced per row on the host. Rows need not be unit norm (norms clamped at 1e-8).
inline SuperpositionStats superposition_stats(const Matrix<float>& features, std::size_t chunk = 512) {
  const std::size_t n = features.extent(0), d = features.extent(1);
  SuperpositionStats s;
  if (n < 2) return s;
  Matrix<float> unit("unit_features", n, d);
  Kokkos::deep_copy(unit, features);
  normalize_rows(unit);
  Matrix<float> block("cos_block", std::min(chunk, n), n);
  double sum_max = 0, sum_p95 = 0, sum_p99 = 0, sum_abs = 0;
  for (std::size_t start = 0; start < n; start += chunk) {
    const std::size_t rows = std::min(chunk, n - start);
    auto a = Kokkos::subview(unit, Kokkos::make_pair(start, start + rows), Kokkos::ALL());
    auto c = Kokkos::subview(block, Kokkos::make_pair(std::size_t(0), rows), Kokkos::ALL());
    gemm(Op::N, Op::T, 1.0f, a, unit, 0.0f, c);
    auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), c);
    std::vector<double> row_max(rows), row_p95(rows), row_p99(rows), row_abs(rows);
    Kokkos::parallel_for("synthsae::superposition_rows", Kokkos::RangePolicy<HostExecSpace>(0, rows),
                         [&](std::size_t r) {
                           std::vector<float> others;
                           others.reserve(n - 1);
                           double abs_sum = 0;
                           for (std::size_t j = 0; j < n; ++j) {
                             if (j == start + r) continue;
                             const float v = std::fabs(h(r, j));
                             others.push_back(v);
                             abs_sum += v;
                           }
                           row_max[r] = *std::max_element(others.begin(), others.end());
                           row_abs[r] = abs_sum;
                           row_p99[r] = detail::quantile_linear(others, 0.99);
                           row_p95[r] = detail::quantile_linear(others, 0.95);
                         });
    for (std::size_t r = 0; r < rows; ++r)
      sum_max += row_max[r], sum_p95 += row_p95[r], sum_p99 += row_p99[r], sum_abs += row_abs[r];
  }
  s.rho_mm = sum_max / double(n);
  s.mean_p95 = sum_p95 / double(n);
  s.mean_p99 = sum_p99 / double(n);
  s.mean_abs_cos = sum_abs / (double(n) * double(n - 1));  // each unordered pair counted twice
  return s;
}

struct FiringStats {
  std::size_t samples = 0;
  double true_l0 = 0;          ///< mean number of active features per sample
  double true_l0_first_k = 0;  ///< the same over features [0, first_k)
  std::size_t first_k = 0;
  std::vector<double>
      per_depth_sum;  ///< mean active features per sample at each forest depth (0 = roots and free features)
  std::vector<double> realised_rate;  ///< [N] fraction of samples where each feature is active
};

/// Measures firing over `samples` fresh samples starting at global index `first_sample`
/// (the model's own position is not moved).
inline FiringStats firing_stats(SyntheticModel& model, std::size_t samples, std::size_t first_k,
                                std::size_t batch = 1024, std::uint64_t first_sample = 0) {
  const std::size_t n = model.num_features();
  const auto& depth = model.hierarchy_tables().depth;
  FiringStats s;
  s.samples = samples;
  s.first_k = std::min(first_k, n);
  s.per_depth_sum.assign(model.hierarchy_tables().max_depth + 1, 0.0);
  std::vector<std::uint64_t> count(n, 0);
  SparseBatch<float> sb;
  std::uint64_t total = 0, total_first_k = 0;
  for (std::size_t done = 0; done < samples; done += batch) {
    const std::size_t b = std::min(batch, samples - done);
    model.sample_features_at(sb, first_sample + done, b);
    auto ids = Kokkos::create_mirror_view_and_copy(HostSpace(), sb.ids);
    auto counts = Kokkos::create_mirror_view_and_copy(HostSpace(), sb.counts);
    for (std::size_t i = 0; i < b; ++i) {
      for (int k = 0; k < counts(i); ++k) {
        const int f = ids(i, k);
        ++count[f];
        ++total;
        total_first_k += static_cast<std::size_t>(f) < s.first_k;
      }
    }
  }
  s.true_l0 = double(total) / double(samples);
  s.true_l0_first_k = double(total_first_k) / double(samples);
  s.realised_rate.resize(n);
  for (std::size_t f = 0; f < n; ++f) {
    s.realised_rate[f] = double(count[f]) / double(samples);
    s.per_depth_sum[depth[f]] += s.realised_rate[f];
  }
  return s;
}

}  // namespace synthsae
