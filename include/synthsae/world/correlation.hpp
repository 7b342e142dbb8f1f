#pragma once
// Correlated firing through a Gaussian copula (reference §3.3, §5): latent z = F eps + sqrt(diag) eta
// with eps ~ N(0, I_r), eta ~ N(0, I_N); feature i fires iff z_i > Phi^-1(1 - p_i). Var z_i = 1,
// so every feature keeps exactly its marginal probability.
//
// LowRankCorrelation (the benchmark's): F = scale * N(0,1) [N, r], rows with 1 - |F_i|^2 < 0.01
// rescaled to |F_i|^2 = 0.99, diag = 1 - |F_i|^2.
// full_correlation_factors (small worlds): any correlation matrix C = L L^T as F = L, diag = 0.
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/io/json.hpp"

namespace synthsae {

/// C = F F^T + diag(diag), stored row-major: factor[i * rank + k].
struct CorrelationFactors {
  std::size_t num_features = 0;
  std::size_t rank = 0;
  std::vector<float> factor;
  std::vector<float> diag;
  std::size_t capped_rows = 0;  ///< rows rescaled so that diag >= 0.01
};

struct LowRankCorrelation {
  int rank = 32;
  double correlation_scale = 0.1;
  std::optional<std::int64_t> seed;  ///< kept for JSON round trips; ignored, as in the reference (seed + 4 is used)

  void validate() const {
    if (rank <= 0) throw ConfigError("correlation.rank", show(rank), "must be > 0");
    if (!(correlation_scale >= 0 && std::isfinite(correlation_scale)))
      throw ConfigError("correlation.correlation_scale", show(correlation_scale), "must be finite and >= 0");
  }

  CorrelationFactors generate(std::size_t n, std::uint64_t seed) const {
    validate();
    CorrelationFactors c{n, static_cast<std::size_t>(rank), std::vector<float>(n * rank), std::vector<float>(n), 0};
    for (std::size_t i = 0; i < n; ++i) {
      RandomStream s(seed, /*stream: correlation row*/ 0x434F525200000000ull + i);
      double sum_sq = 0;
      for (int k = 0; k < rank; ++k) {
        const float v = static_cast<float>(correlation_scale * s.normal<double>());
        c.factor[i * rank + k] = v;
        sum_sq += double(v) * v;
      }
      if (1.0 - sum_sq < 0.01) {
        const float scale = static_cast<float>(std::sqrt(0.99 / sum_sq));
        sum_sq = 0;
        for (int k = 0; k < rank; ++k) {
          c.factor[i * rank + k] *= scale;
          sum_sq += double(c.factor[i * rank + k]) * c.factor[i * rank + k];
        }
        ++c.capped_rows;
      }
      c.diag[i] = static_cast<float>(1.0 - sum_sq);
    }
    return c;
  }

  io::Json to_json() const {
    return {
        {"rank", rank}, {"correlation_scale", correlation_scale}, {"seed", seed ? io::Json(*seed) : io::Json(nullptr)}};
  }
  static LowRankCorrelation from_json(const io::Json& j) {
    io::require_known_keys(j, {"rank", "correlation_scale", "seed"}, "correlation");
    LowRankCorrelation c;
    c.rank = io::json_field_or<int>(j, "rank", "correlation", c.rank);
    c.correlation_scale = io::json_field_or<double>(j, "correlation_scale", "correlation", c.correlation_scale);
    if (j.contains("seed") && !j["seed"].is_null()) c.seed = io::json_field<std::int64_t>(j, "seed", "correlation");
    c.validate();
    return c;
  }
};

/// A full N x N correlation matrix (row-major) as copula factors: Cholesky C = L L^T, F = L,
/// diag = 0. Requires unit diagonal, symmetry and positive definiteness.
inline CorrelationFactors full_correlation_factors(const std::vector<double>& matrix, std::size_t n) {
  if (matrix.size() != n * n) {
    throw ShapeError("correlation matrix has " + show(matrix.size()) + " entries, expected " + show(n) + " x " +
                     show(n));
  }
  auto c = [&](std::size_t i, std::size_t j) { return matrix[i * n + j]; };
  for (std::size_t i = 0; i < n; ++i) {
    if (std::fabs(c(i, i) - 1.0) > 1e-6)
      throw ConfigError("correlation[" + show(i) + "][" + show(i) + "]", show(c(i, i)), "diagonal must be 1");
    for (std::size_t j = 0; j < i; ++j) {
      if (std::fabs(c(i, j) - c(j, i)) > 1e-9)
        throw ConfigError("correlation[" + show(i) + "][" + show(j) + "]", show(c(i, j)), "matrix must be symmetric");
    }
  }
  // Cholesky-Banachiewicz in double (small worlds: n^3 / 3 operations).
  std::vector<double> l(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j <= i; ++j) {
      double sum = c(i, j);
      for (std::size_t k = 0; k < j; ++k) sum -= l[i * n + k] * l[j * n + k];
      if (i == j) {
        if (!(sum > 0))
          throw ConfigError("correlation", "matrix",
                            "is not positive definite (Cholesky failed at row " + show(i) + ")");
        l[i * n + i] = std::sqrt(sum);
      } else {
        l[i * n + j] = sum / l[j * n + j];
      }
    }
  CorrelationFactors f{n, n, std::vector<float>(n * n), std::vector<float>(n, 0.0f), 0};
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t k = 0; k < n; ++k) f.factor[i * n + k] = static_cast<float>(l[i * n + k]);
  return f;
}

}  // namespace synthsae
