// Normal CDF, tail and quantile against published values (Abramowitz & Stegun, R's qnorm).
#include <catch2/catch.hpp>

#include <cmath>

#include "synthsae/core/normal_distribution.hpp"

using namespace synthsae;

TEST_CASE("normal_quantile and normal_tail match reference values", "[core][normal]") {
  CHECK(normal_quantile(0.5) == Approx(0.0).margin(1e-15));
  CHECK(normal_quantile(0.975) == Approx(1.959963984540054).epsilon(1e-13));
  CHECK(normal_quantile(0.025) == Approx(-1.959963984540054).epsilon(1e-13));
  CHECK(normal_quantile(1e-10) == Approx(-6.361340902404056).epsilon(1e-12));
  CHECK(normal_quantile(1 - 5e-4) == Approx(3.290526731491926).epsilon(1e-12));
  CHECK(normal_tail(3.0) == Approx(1.349898031630095e-3).epsilon(1e-13));
  CHECK(normal_cdf(-1.0) == Approx(0.1586552539314571).epsilon(1e-14));
  CHECK(std::isinf(normal_quantile(0.0)));
  CHECK(normal_quantile(1.0) > 0);
  // quantile inverts the CDF over the range thresholds use (p down to 1e-15). The upper half is
  // reached through the tail, as thresholds t = -Phi^-1(p) are: 1 - Phi(x) itself would round.
  double worst = 0;
  for (double x = -8; x <= 0; x += 0.01)
    worst = std::max(worst, std::fabs(normal_quantile(normal_cdf(x)) - x) / (1 + std::fabs(x)));
  for (double x = 0; x <= 8; x += 0.01)
    worst = std::max(worst, std::fabs(-normal_quantile(normal_tail(x)) - x) / (1 + x));
  CHECK(worst < 1e-9);
}
