// Correlation builders and statistics: brute force against the dense matrix, hand-worked cases,
// sampling checks with tolerances from the number of pairs, and every bad value named.
#include <catch2/catch.hpp>

#include <cmath>

#include <Eigen/Eigenvalues>

#include "synthsae/world/correlation_builders.hpp"

using namespace synthsae;

namespace {
double min_eigenvalue(const std::vector<double>& m, std::size_t n) {
  Eigen::MatrixXd c(n, n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) c(i, j) = m[i * n + j];
  return Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(c).eigenvalues().minCoeff();
}
}  // namespace

TEST_CASE("correlation statistics: hand-worked and brute force over the dense matrix", "[world][correlation]") {
  // Two features, rank 1, F = [0.6, 0.5]: the one off-diagonal entry is 0.3.
  CorrelationFactors two{2, 1, {0.6f, 0.5f}, {0.64f, 0.75f}, 0};
  const auto s2 = correlation_statistics(two);  // 1e-6: the factors are float (0.6f)
  CHECK(s2.rms_off_diagonal == Approx(0.3).epsilon(1e-6));
  CHECK(s2.mean_off_diagonal == Approx(0.3).epsilon(1e-6));

  for (const int rank : {1, 4, 25}) {
    const std::size_t n = 60;
    const auto f = LowRankCorrelation{rank, 0.3, {}}.generate(n, 11);
    double sum = 0, sum_sq = 0;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        if (i == j) continue;
        double c = 0;
        for (int k = 0; k < rank; ++k) c += double(f.factor[i * rank + k]) * f.factor[j * rank + k];
        sum += c;
        sum_sq += c * c;
      }
    const double pairs = double(n) * (n - 1);
    // Both sides sum the same float products in double: only summation order differs (~1e-15).
    const auto s = correlation_statistics(f);
    CHECK(s.rms_off_diagonal == Approx(std::sqrt(sum_sq / pairs)).epsilon(1e-9));
    CHECK(s.mean_off_diagonal == Approx(sum / pairs).margin(1e-12));
    CHECK(s.rms_off_diagonal > 0.01);  // scale 0.3: a correlated world
  }
  // The Cholesky factors of a full matrix give that matrix's statistics.
  const std::vector<double> m{1, 0.2, -0.4, 0.2, 1, 0.1, -0.4, 0.1, 1};
  // 1e-7 / 1e-6: the Cholesky factor is stored in float.
  const auto s3 = correlation_statistics(full_correlation_factors(m, 3));
  CHECK(s3.mean_off_diagonal == Approx((0.2 - 0.4 + 0.1) / 3).margin(1e-7));
  CHECK(s3.rms_off_diagonal == Approx(std::sqrt((0.04 + 0.16 + 0.01) / 3)).epsilon(1e-6));
  CHECK_THROWS_AS(correlation_statistics(CorrelationFactors{3, 2, {1, 2}, {}, 0}), ShapeError);
}

TEST_CASE("correlation_matrix_from_correlations keeps a valid matrix and repairs an invalid one",
          "[world][correlation]") {
  const auto ok = correlation_matrix_from_correlations(3, {{0, 2, 0.5}}, 0.1);
  const std::vector<double> expected{1, 0.1, 0.5, 0.1, 1, 0.1, 0.5, 0.1, 1};
  CHECK(ok == expected);  // positive definite: returned untouched, bit for bit

  // rho01 = rho02 = 0.9, rho12 = -0.9 is impossible (det = 1 - 3(0.81) - 2(0.729) < 0).
  const auto fixed = correlation_matrix_from_correlations(3, {{0, 1, 0.9}, {0, 2, 0.9}, {1, 2, -0.9}});
  REQUIRE(min_eigenvalue({1, 0.9, 0.9, 0.9, 1, -0.9, 0.9, -0.9, 1}, 3) < -1e-6);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(fixed[i * 3 + i] == 1.0);
    for (std::size_t j = 0; j < 3; ++j) CHECK(fixed[i * 3 + j] == fixed[j * 3 + i]);
  }
  CHECK(min_eigenvalue(fixed, 3) > -1e-9);
  CHECK(fixed[1] > 0);  // signs survive the repair
  CHECK(fixed[2] > 0);
  CHECK(fixed[5] < 0);
  CHECK(std::fabs(fixed[1]) < 0.9);  // and the impossible entries shrink
  CHECK_NOTHROW(full_correlation_factors(fixed, 3));

  CHECK_THROWS_WITH(correlation_matrix_from_correlations(3, {{0, 3, 0.2}}), Catch::Contains("correlations[0]"));
  CHECK_THROWS_WITH(correlation_matrix_from_correlations(3, {{0, 1, 0.2}, {1, 1, 0.2}}),
                    Catch::Contains("correlations[1]"));
  CHECK_THROWS_WITH(correlation_matrix_from_correlations(3, {{0, 1, 1.5}}), Catch::Contains("correlations[0].value"));
  CHECK_THROWS_WITH(correlation_matrix_from_correlations(3, {}, -2), Catch::Contains("default_correlation"));
}

TEST_CASE("random correlations follow their options, and their matrix is a valid correlation matrix",
          "[world][correlation]") {
  const std::size_t n = 200;  // 19,900 pairs
  const RandomCorrelationOptions o{};
  const auto pairs = random_correlations(n, o, 5);
  const double total = double(n) * (n - 1) / 2;
  // Binomial shares: 5 standard errors sqrt(p(1-p)/count).
  const double correlated_share = pairs.size() / total;
  CHECK(std::fabs(correlated_share - 0.7) < 5 * std::sqrt(0.7 * 0.3 / total));
  double positives = 0, strength_sum = 0;
  for (const auto& p : pairs) {
    REQUIRE(p.i < p.j);
    REQUIRE(std::fabs(p.value) >= 0.1);
    REQUIRE(std::fabs(p.value) <= 0.8);
    positives += p.value > 0;
    strength_sum += std::fabs(p.value);
  }
  const double m = double(pairs.size());
  CHECK(std::fabs(positives / m - 0.5) < 5 * std::sqrt(0.25 / m));
  // U(0.1, 0.8): mean 0.45, standard deviation 0.7 / sqrt(12).
  CHECK(std::fabs(strength_sum / m - 0.45) < 5 * (0.7 / std::sqrt(12.0)) / std::sqrt(m));
  CHECK(random_correlations(n, o, 5).size() == pairs.size());  // deterministic in the seed
  CHECK(random_correlations(n, o, 6)[0].value != pairs[0].value);

  const auto c = random_correlation_matrix(40, o, 5);
  CHECK(min_eigenvalue(c, 40) > -1e-9);
  for (std::size_t i = 0; i < 40; ++i) CHECK(c[i * 40 + i] == 1.0);
  CHECK_NOTHROW(full_correlation_factors(c, 40));

  CHECK_THROWS_WITH(random_correlations(3, RandomCorrelationOptions{.positive_ratio = 1.5}, 0),
                    Catch::Contains("positive_ratio"));
  CHECK_THROWS_WITH(random_correlations(3, RandomCorrelationOptions{.min_correlation_strength = 0.9}, 0),
                    Catch::Contains("min_correlation_strength"));
}
