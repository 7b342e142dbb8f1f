#pragma once
// Correlation-matrix builders and statistics (reference §5.1 stats helper, §5.2), SAELens's
// `create_correlation_matrix_from_correlations`, `generate_random_correlation_matrix` and the
// off-diagonal statistics of `synthetic/stats.py`. The builders return a dense N x N matrix for
// small (toy) worlds; `full_correlation_factors` turns it into copula factors.
//
// The random builder draws from our counter-based RNG, not Python's or torch's: the same
// options give a matrix with SAELens's distribution, not its bits.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/world/correlation.hpp"

namespace synthsae {

/// Off-diagonal statistics of C = F F^T + diag(diag). Computed in O(N r^2) from the factors, so
/// they are cheap for the 16k world (r = 25) where C itself would be 16k x 16k.
struct CorrelationStatistics {
  double rms_off_diagonal = 0;   ///< sqrt(sum_{i != j} C_ij^2 / (N (N - 1)))
  double mean_off_diagonal = 0;  ///< sum_{i != j} C_ij / (N (N - 1))
};

inline CorrelationStatistics correlation_statistics(const CorrelationFactors& c) {
  const std::size_t n = c.num_features, r = c.rank;
  if (c.factor.size() != n * r)
    throw ShapeError("correlation factor has " + show(c.factor.size()) + " entries, expected " + show(n) + " x " +
                     show(r));
  if (n < 2) return {};
  // sum_{i != j} (F_i . F_j)^2 = ||F^T F||_F^2 - sum_i ||F_i||^4;
  // sum_{i != j} F_i . F_j     = ||sum_i F_i||^2 - sum_i ||F_i||^2.
  std::vector<double> gram(r * r, 0.0), column_sum(r, 0.0);
  double sum_norm_sq = 0, sum_norm_4 = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float* f = c.factor.data() + i * r;
    double norm_sq = 0;
    for (std::size_t a = 0; a < r; ++a) {
      norm_sq += double(f[a]) * f[a];
      column_sum[a] += f[a];
      for (std::size_t b = 0; b < r; ++b) gram[a * r + b] += double(f[a]) * f[b];
    }
    sum_norm_sq += norm_sq;
    sum_norm_4 += norm_sq * norm_sq;
  }
  double gram_sq = 0, total_sq = 0;
  for (double g : gram) gram_sq += g * g;
  for (double s : column_sum) total_sq += s * s;
  const double pairs = double(n) * double(n - 1);
  // Rounding can leave the difference a hair below zero for an uncorrelated world.
  return {std::sqrt(std::max(0.0, gram_sq - sum_norm_4) / pairs), (total_sq - sum_norm_sq) / pairs};
}

/// One off-diagonal entry C_ij = C_ji = value.
struct CorrelationPair {
  std::size_t i = 0, j = 0;
  double value = 0;
};

namespace detail {
inline std::vector<double> eigen_fix_correlation(std::vector<double> m, std::size_t n) {
  using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<Matrix> c(m.data(), Eigen::Index(n), Eigen::Index(n));
  Eigen::SelfAdjointEigenSolver<Matrix> eig(c);
  if (eig.info() != Eigen::Success) throw Error("correlation matrix: eigen-decomposition did not converge");
  if (eig.eigenvalues().minCoeff() >= -1e-6) return m;
  // Clamp the spectrum to >= 1e-6, rebuild, rescale to unit diagonal (D^-1/2 C D^-1/2).
  const Eigen::VectorXd clamped = eig.eigenvalues().cwiseMax(1e-6);
  const Matrix rebuilt = eig.eigenvectors() * clamped.asDiagonal() * eig.eigenvectors().transpose();
  const Eigen::VectorXd inv_sd = rebuilt.diagonal().cwiseSqrt().cwiseInverse();
  c = inv_sd.asDiagonal() * rebuilt * inv_sd.asDiagonal();
  c = (0.5 * (c + c.transpose())).eval();  // exact symmetry
  c.diagonal().setOnes();
  return m;
}
}  // namespace detail

/// SAELens's `create_correlation_matrix_from_correlations`: I with `default_correlation` off the
/// diagonal, each pair set symmetrically; a matrix with an eigenvalue below -1e-6 is repaired
/// (eigenvalues clamped to 1e-6, rescaled to unit diagonal). Row-major N x N.
inline std::vector<double> correlation_matrix_from_correlations(std::size_t n, const std::vector<CorrelationPair>& pairs,
                                                                double default_correlation = 0.0) {
  if (!(default_correlation >= -1 && default_correlation <= 1))
    throw ConfigError("default_correlation", show(default_correlation), "must be in [-1, 1]");
  std::vector<double> m(n * n, default_correlation);
  for (std::size_t i = 0; i < n; ++i) m[i * n + i] = 1.0;
  for (std::size_t p = 0; p < pairs.size(); ++p) {
    const auto& [i, j, v] = pairs[p];
    const std::string field = "correlations[" + show(p) + "]";
    if (i >= n || j >= n)
      throw ConfigError(field, "(" + show(i) + ", " + show(j) + ")", "feature index must be < " + show(n));
    if (i == j) throw ConfigError(field, "(" + show(i) + ", " + show(j) + ")", "a pair needs two different features");
    if (!(v >= -1 && v <= 1)) throw ConfigError(field + ".value", show(v), "must be in [-1, 1]");
    m[i * n + j] = m[j * n + i] = v;
  }
  return detail::eigen_fix_correlation(std::move(m), n);
}

/// Options of SAELens's `generate_random_correlation_matrix`.
struct RandomCorrelationOptions {
  double positive_ratio = 0.5;      ///< of the correlated pairs, the share with a positive sign
  double uncorrelated_ratio = 0.3;  ///< share of pairs left at 0
  double min_correlation_strength = 0.1;
  double max_correlation_strength = 0.8;

  void validate() const {
    auto ratio = [](const char* name, double v) {
      if (!(v >= 0 && v <= 1)) throw ConfigError(name, show(v), "must be in [0, 1]");
    };
    ratio("positive_ratio", positive_ratio);
    ratio("uncorrelated_ratio", uncorrelated_ratio);
    ratio("min_correlation_strength", min_correlation_strength);
    ratio("max_correlation_strength", max_correlation_strength);
    if (min_correlation_strength > max_correlation_strength)
      throw ConfigError("min_correlation_strength", show(min_correlation_strength),
                        "must be <= max_correlation_strength (" + show(max_correlation_strength) + ")");
  }
};

/// The random pairs before the positive-definiteness repair: each upper-triangle pair (i < j)
/// is correlated with probability 1 - uncorrelated_ratio, positive with probability
/// positive_ratio, strength U(min, max). Pair (i, j) draws from its own stream, so the result
/// does not depend on N's other pairs' order.
inline std::vector<CorrelationPair> random_correlations(std::size_t n, const RandomCorrelationOptions& o,
                                                        std::uint64_t seed) {
  o.validate();
  std::vector<CorrelationPair> pairs;
  for (std::size_t i = 0; i < n; ++i) {
    RandomStream s(seed, /*stream: random correlation row*/ 0x52434F5200000000ull + i);
    for (std::size_t j = i + 1; j < n; ++j) {
      const double correlated = s.uniform<double>(), sign = s.uniform<double>(), strength = s.uniform<double>();
      if (correlated < o.uncorrelated_ratio) continue;
      const double magnitude =
          o.min_correlation_strength + strength * (o.max_correlation_strength - o.min_correlation_strength);
      pairs.push_back({i, j, sign < o.positive_ratio ? magnitude : -magnitude});
    }
  }
  return pairs;
}

/// SAELens's `generate_random_correlation_matrix`: the pairs above, then the same repair as
/// `correlation_matrix_from_correlations`.
inline std::vector<double> random_correlation_matrix(std::size_t n, const RandomCorrelationOptions& o,
                                                     std::uint64_t seed) {
  return correlation_matrix_from_correlations(n, random_correlations(n, o, seed), 0.0);
}

}  // namespace synthsae
