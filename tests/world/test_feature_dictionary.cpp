// Feature dictionary: unit rows, bias norm, the Gram-matrix orthogonality loss and gradient
// against the direct N x N form and finite differences, and the orthogonalisation effect.
#include <catch2/catch.hpp>

#include <cmath>

#include "synthsae/world/feature_dictionary.hpp"
#include "synthsae/world/statistics.hpp"

using namespace synthsae;

namespace {

// Direct form: sum_{i != j} (e_i . e_j)^2 + N sum_i (|e_i|^2 - 1)^2, on the host in long double.
template <class H>
long double direct_loss(const H& e) {
  const std::size_t n = e.extent(0), d = e.extent(1);
  long double off = 0, diag = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      long double dot = 0;
      for (std::size_t k = 0; k < d; ++k) dot += (long double)e(i, k) * e(j, k);
      if (i != j)
        off += dot * dot;
      else
        diag += (dot - 1) * (dot - 1);
    }
  return off + (long double)n * diag;
}

}  // namespace

TEST_CASE("random_unit_rows and random_bias have the requested norms", "[world][dictionary]") {
  auto e = random_unit_rows<float>(50, 16, 3);
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), e);
  for (int i = 0; i < 50; ++i) {
    double s = 0;
    for (int j = 0; j < 16; ++j) s += double(h(i, j)) * h(i, j);
    CHECK(std::sqrt(s) == Approx(1.0).epsilon(1e-6));
  }
  auto b = Kokkos::create_mirror_view_and_copy(HostSpace(), random_bias<float>(16, 0.5, 3));
  double s = 0;
  for (int j = 0; j < 16; ++j) s += double(b(j)) * b(j);
  CHECK(std::sqrt(s) == Approx(0.5).epsilon(1e-6));
  auto zero = Kokkos::create_mirror_view_and_copy(HostSpace(), random_bias<float>(16, 0.0, 3));
  CHECK(zero(5) == 0.0f);
}

TEST_CASE("the Gram-matrix loss equals the direct N x N form, and its gradient is exact", "[world][dictionary]") {
  const int n = 9, d = 4;
  Matrix<double> e("e", n, d), grad("grad", n, d), gram("gram", d, d);
  {
    auto h = Kokkos::create_mirror_view(e);
    RandomStream s(11, 0);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < d; ++j) h(i, j) = 0.6 * s.normal<double>();  // rows deliberately not unit
    Kokkos::deep_copy(e, h);
  }
  const double loss = orthogonality_loss_and_gradient(e, grad, gram);
  auto he = Kokkos::create_mirror_view_and_copy(HostSpace(), e);
  const long double direct = direct_loss(he);
  CHECK(loss == Approx((double)direct).epsilon(1e-12));

  // Central differences with h = 1e-6 on the direct form: truncation O(h^2 L''') ~ 1e-10,
  // rounding ~ 1e-16 * L / h ~ 1e-9 in long double; tolerance 1e-6 relative to |g| + 1.
  auto hg = Kokkos::create_mirror_view_and_copy(HostSpace(), grad);
  const double step = 1e-6;
  double worst = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) {
      const double saved = he(i, j);
      he(i, j) = saved + step;
      const long double up = direct_loss(he);
      he(i, j) = saved - step;
      const long double down = direct_loss(he);
      he(i, j) = saved;
      const double fd = double((up - down) / (2 * step));
      worst = std::max(worst, std::fabs(fd - hg(i, j)) / (std::fabs(hg(i, j)) + 1.0));
    }
  CHECK(worst < 1e-6);
}

TEST_CASE("orthogonalisation lowers the loss and the mean max |cos|", "[world][dictionary]") {
  auto e = random_unit_rows<float>(512, 64, 5);
  const double rho_before = superposition_stats(e).rho_mm;
  Matrix<float> grad("g", 512, 64), gram("G", 64, 64);
  const double loss_before = orthogonality_loss_and_gradient(e, grad, gram);
  const double loss_after = orthogonalize(e, OrthogonalizationConfig{100, 3e-3, 1024});
  const double rho_after = superposition_stats(e).rho_mm;
  INFO("loss " << loss_before << " -> " << loss_after << ", rho_mm " << rho_before << " -> " << rho_after);
  CHECK(loss_after < 0.95 * loss_before);
  CHECK(rho_after < rho_before - 0.01);
  // Rows are unit again after the final renormalisation.
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), e);
  double s = 0;
  for (int j = 0; j < 64; ++j) s += double(h(7, j)) * h(7, j);
  CHECK(std::sqrt(s) == Approx(1.0).epsilon(1e-5));
}

TEST_CASE("superposition statistics on a hand-built dictionary", "[world][statistics]") {
  // Rows e0, e1, (e0 + e1)/sqrt2 in R^2: |cos| pairs: 0, 1/sqrt2, 1/sqrt2.
  Matrix<float> e("e", 3, 2);
  auto h = Kokkos::create_mirror_view(e);
  const float r = 1.0f / std::sqrt(2.0f);
  h(0, 0) = 1, h(0, 1) = 0, h(1, 0) = 0, h(1, 1) = 2 /* not unit: normalised */, h(2, 0) = r, h(2, 1) = r;
  Kokkos::deep_copy(e, h);
  const auto s = superposition_stats(e, 2);    // chunk 2 exercises the chunk boundary
  CHECK(s.rho_mm == Approx(r).epsilon(1e-6));  // every feature's max is 1/sqrt2
  CHECK(s.mean_abs_cos == Approx(2 * r / 3).epsilon(1e-6));
  // Feature 0's others are {0, r}: 95th percentile 0 + 0.95 r; feature 2's are {r, r}.
  CHECK(s.mean_p95 == Approx((0.95 * r + 0.95 * r + r) / 3).epsilon(1e-6));
}
