// The SAE error inside tegum factors and its linear predictability (reference §2.12 (C)), on a
// hand-built case: inside factor 1 the error is an exact linear function of x, inside factor 2 it
// is independent noise plus x_2² - 1 (no linear part: E[x³] = 0 for Gaussian x).
#include <catch2/catch.hpp>

#include <random>

#include "synthsae/tegum/factor_dark_matter.hpp"

using namespace synthsae;
using namespace synthsae::tegum;

TEST_CASE("factor error split: linear error inside one factor, nonlinear inside another", "[tegum][dark_matter]") {
  const int d = 6, n = 20000;
  std::vector<Eigen::MatrixXd> q(2, Eigen::MatrixXd::Zero(d, 2));
  q[0](0, 0) = q[0](1, 1) = 1;  // span(e0, e1)
  q[1](2, 0) = q[1](3, 1) = 1;  // span(e2, e3)
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd x(n, d), err = Eigen::MatrixXd::Zero(n, d);
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < d; ++k) x(i, k) = normal(rng);
    err(i, 0) = 0.5 * x(i, 0) - 0.2 * x(i, 3) + 0.1;
    err(i, 1) = 0.3 * x(i, 1);
    err(i, 2) = 0.4 * normal(rng);
    err(i, 3) = x(i, 2) * x(i, 2) - 1;
  }
  std::vector<bool> train(n);
  for (int i = 0; i < n; ++i) train[i] = i % 5 < 3;
  FactorErrorSplit split(q, d);
  for (int first = 0; first < n; first += 4096) {  // in chunks, as a source gives them
    const int rows = std::min(4096, n - first);
    split.add(x.middleRows(first, rows), err.middleRows(first, rows),
              std::vector<bool>(train.begin() + first, train.begin() + first + rows));
  }
  CHECK(split.train_rows() == 12000);
  CHECK(split.test_rows() == 8000);
  const auto g = split.groups();
  REQUIRE(g.size() == 2);
  // Direct sums over the test rows.
  double e0 = 0, e1 = 0, total = 0, x1 = 0;
  Eigen::Vector2d mean_x = Eigen::Vector2d::Zero();
  for (int i = 0; i < n; ++i)
    if (!train[i]) mean_x += Eigen::Vector2d(x(i, 2), x(i, 3)) / 8000.0;
  for (int i = 0; i < n; ++i) {
    if (train[i]) continue;
    e0 += err(i, 0) * err(i, 0) + err(i, 1) * err(i, 1), e1 += err(i, 2) * err(i, 2) + err(i, 3) * err(i, 3);
    total += err.row(i).squaredNorm();
    x1 += (Eigen::Vector2d(x(i, 2), x(i, 3)) - mean_x).squaredNorm();
  }
  CHECK(g[0].error_share == Approx(e0 / total).epsilon(1e-10));
  CHECK(g[1].error_share == Approx(e1 / total).epsilon(1e-10));
  CHECK(g[0].linear_r2 == Approx(1.0).margin(1e-9));
  CHECK(g[0].fvu_nonlinear == Approx(0.0).margin(1e-9));
  CHECK(g[0].nonlinear_share == Approx(0.0).margin(1e-9));
  // Factor 2: nothing to predict linearly. A fit of 7 coefficients on 12,000 rows leaves a test R²
  // within a few times 7 / 12,000 of 0.
  CHECK(std::fabs(g[1].linear_r2) < 0.005);
  CHECK(g[1].fvu_nonlinear == Approx(e1 / x1).epsilon(0.01));
  CHECK(g[1].nonlinear_share == Approx(1.0).margin(1e-3));
  // Over the whole space: the linear part is factor 1's share of the centred error.
  CHECK(split.total_linear_r2() > 0.1);
  CHECK(split.total_linear_r2() < 0.3);
}

TEST_CASE("factor error split: a large common offset costs no digits", "[tegum][dark_matter]") {
  // x = 10⁴ + noise: unshifted moments would square the offset (10⁸) against unit variances.
  const int d = 4, n = 6000;
  std::vector<Eigen::MatrixXd> q(1, Eigen::MatrixXd::Zero(d, 2));
  q[0](0, 0) = q[0](1, 1) = 1;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd x(n, d), err = Eigen::MatrixXd::Zero(n, d);
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < d; ++k) x(i, k) = 1e4 + normal(rng);
    err(i, 0) = 0.5 * (x(i, 0) - 1e4) + 3.0;  // linear in x, with an offset of its own
    err(i, 1) = 0.25 * (x(i, 2) - 1e4);
  }
  std::vector<bool> train(n);
  for (int i = 0; i < n; ++i) train[i] = i % 2 == 0;
  FactorErrorSplit split(q, d);
  split.add(x, err, train);
  const auto g = split.groups();
  CHECK(g[0].linear_r2 == Approx(1.0).margin(1e-9));
  CHECK(g[0].fvu_nonlinear == Approx(0.0).margin(1e-9));
  CHECK(g[0].error_share == Approx(1.0).epsilon(1e-12));  // all of the error lies in the factor
}

TEST_CASE("factor error split: refuses mismatched shapes and empty sides", "[tegum][dark_matter]") {
  Eigen::MatrixXd skew = Eigen::MatrixXd::Zero(3, 1);
  skew(0, 0) = 2;  // not a unit column
  CHECK_THROWS_WITH(FactorErrorSplit({skew}, 3), Catch::Contains("subspace 0") && Catch::Contains("orthonormal"));
  CHECK_THROWS_WITH(FactorErrorSplit({Eigen::MatrixXd::Zero(5, 2)}, 6), Catch::Contains("5 rows, not 6"));
  FactorErrorSplit split({Eigen::MatrixXd::Identity(3, 1)}, 3);
  split.add(Eigen::MatrixXd::Ones(4, 3), Eigen::MatrixXd::Ones(4, 3), {true, true, true, true});
  CHECK_THROWS_WITH(split.groups(), Catch::Contains("0 test rows"));
  CHECK_THROWS_AS(split.add(Eigen::MatrixXd::Ones(4, 3), Eigen::MatrixXd::Ones(4, 2), {true, true, true, true}), ShapeError);
}
