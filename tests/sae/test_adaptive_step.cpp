// The density-adaptive step of the ReLU family (Standard L1, JumpReLU with the L0 step penalty,
// Gated): on a batch with few needed entries it takes the sparse products, above the crossover
// the dense ones, and both give the dense step's losses and gradients.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "sae_test_support.hpp"
#include "synthsae/core/counter_rng.hpp"
#include "synthsae/sae/gated_sae.hpp"
#include "synthsae/sae/sae.hpp"

using namespace synthsae;

namespace {

constexpr int kAdaptiveBatch = 32, kAdaptiveIn = 12, kAdaptiveLatents = 48;

void fill(const Vector<double>& v, double value) { Kokkos::deep_copy(v, value); }

/// One step through the adaptive path (crossover 1: sparse whenever gathered) and one through
/// the dense path on the same batch and parameters. Both sum the same products in different
/// orders: in float64 they agree to ~1e-15 relative; 1e-12 still catches any missing term.
template <class S>
void check_adaptive_equals_dense(S& sae, const Matrix<double>& x, double max_density, bool expect_sparse,
                                 PenaltyScale scale = {}) {
  SaeParameters<double> adaptive = sae.parameters().zeros_like(), dense = sae.parameters().zeros_like();
  sae.set_sparse_step(true);
  sae.set_sparse_step_max_density(max_density);
  const StepLosses la = sae.forward_backward(x, adaptive, {}, 0, scale);
  CHECK(sae.last_step_was_sparse() == expect_sparse);
  sae.set_sparse_step(false);
  const StepLosses ld = sae.forward_backward(x, dense, {}, 0, scale);
  CHECK_FALSE(sae.last_step_was_sparse());
  CHECK(la.mse == Approx(ld.mse).epsilon(1e-12));
  CHECK(la.penalty == Approx(ld.penalty).epsilon(1e-12).margin(1e-300));
  CHECK(la.aux == Approx(ld.aux).epsilon(1e-12).margin(1e-300));
  CHECK(la.penalty > 0);
  test::check_same_tensors(adaptive, dense, 1e-12);
  sae.set_sparse_step(true);
}

/// The fraction of (row, latent) entries with h > cut for the SAE's current parameters.
template <class S>
double fraction_above(const S& sae, const Matrix<double>& x, double cut) {
  const test::HostSae copies(x, sae.parameters());
  std::size_t n = 0;
  for (int i = 0; i < kAdaptiveBatch; ++i)
    for (int j = 0; j < kAdaptiveLatents; ++j) n += copies.pre(i, j) > cut;
  return double(n) / double(kAdaptiveBatch * kAdaptiveLatents);
}

}  // namespace

TEST_CASE("Adaptive step, Standard L1: sparse below the crossover, dense above, equal to the dense step",
          "[sae][sparse][adaptive]") {
  STATIC_REQUIRE(StandardSae<double>::has_adaptive_sparse_step);
  STATIC_REQUIRE(!StandardSae<double>::has_sparse_step);
  StandardSae<double> sae(kAdaptiveIn, kAdaptiveLatents, Relu{}, L1Penalty{0.7}, {}, {}, 0.5, 3);
  test::scramble(sae, 4);
  const auto x = test::random_input(kAdaptiveBatch, kAdaptiveIn, 5);
  // Pre-activations ~ N(b_enc, ~1.7^2) after scrambling: b_enc = -2.5 leaves ~7% firing.
  fill(sae.parameters().b_enc, -2.5);
  const double density = fraction_above(sae, x, 0.0);
  INFO("density " << density);
  REQUIRE(density > 0.02);
  REQUIRE(density < 0.2);
  check_adaptive_equals_dense(sae, x, 1.0, true, PenaltyScale{0.8});
  // Just below and just above the measured density: the crossover decides the path.
  check_adaptive_equals_dense(sae, x, density * 0.99, false);
  check_adaptive_equals_dense(sae, x, density * 1.01, true);
  check_adaptive_equals_dense(sae, x, 0.0, false);
  // The dense regime of early training: half the latents fire, the default crossover goes dense.
  fill(sae.parameters().b_enc, 0.0);
  check_adaptive_equals_dense(sae, x, StandardSae<double>::default_sparse_step_max_density, false);
  CHECK_THROWS_WITH(sae.set_sparse_step_max_density(1.5), Catch::Contains("sparse_step_max_density"));
}

TEST_CASE("Adaptive step: an lp_norm other than 1 keeps the dense step", "[sae][sparse][adaptive]") {
  StandardSae<double> sae(kAdaptiveIn, kAdaptiveLatents, Relu{}, L1Penalty{0.7, 2.0}, {}, {}, 0.5, 3);
  test::scramble(sae, 4);
  fill(sae.parameters().b_enc, -2.5);
  const auto x = test::random_input(kAdaptiveBatch, kAdaptiveIn, 5);
  check_adaptive_equals_dense(sae, x, 1.0, false);
}

TEST_CASE("Adaptive step, JumpReLU + L0 step: threshold window entries, both modes, both parameterisations",
          "[sae][sparse][adaptive]") {
  STATIC_REQUIRE(JumpReluSae<double>::has_adaptive_sparse_step);
  const auto x = test::random_input(kAdaptiveBatch, kAdaptiveIn, 6);
  for (const auto param : {ThresholdParameterisation::direct, ThresholdParameterisation::log}) {
    for (const bool ste : {false, true}) {
      for (const bool quadratic : {false, true}) {
        INFO("log " << (param == ThresholdParameterisation::log) << " ste " << ste << " quadratic " << quadratic);
        JumpRelu act{0.01, 0.4, param, ste};
        L0StepPenalty pen{0.3};
        if (quadratic) pen.mode = L0LossMode::quadratic, pen.target_l0 = 2.0;
        JumpReluSae<double> sae(kAdaptiveIn, kAdaptiveLatents, act, pen, {}, {}, 0.5, 7);
        test::scramble(sae, 8);
        // Thresholds 2.0..2.5 on N(0, ~1.7^2) pre-activations: a few percent active and about
        // as many more inside the window (theta - 0.2, theta + 0.2) without firing.
        const auto name = threshold_parameter_name(param);
        auto theta = Kokkos::create_mirror_view_and_copy(HostSpace(), sae.parameters().extra.at(name));
        for (int j = 0; j < kAdaptiveLatents; ++j) {
          const double t = 2.0 + 0.5 * j / kAdaptiveLatents;
          theta(j) = param == ThresholdParameterisation::log ? std::log(t) : t;
        }
        Kokkos::deep_copy(sae.parameters().extra.at(name), theta);
        const double active = fraction_above(sae, x, 2.5), window = fraction_above(sae, x, 1.8) - active;
        REQUIRE(active > 0.005);
        REQUIRE(window > 0.005);
        check_adaptive_equals_dense(sae, x, 1.0, true, PenaltyScale{1.3});
        check_adaptive_equals_dense(sae, x, 0.0, false);
      }
    }
  }
}

TEST_CASE("Adaptive step, Gated: sparse on the open gates, equal to the dense step", "[sae][sparse][adaptive]") {
  GatedSae<double> sae(kAdaptiveIn, kAdaptiveLatents, L1Penalty{0.6}, 0.5, 9);
  test::scramble(sae, 10);
  const auto x = test::random_input(kAdaptiveBatch, kAdaptiveIn, 11);
  fill(sae.parameters().extra.at("b_gate"), -2.5);  // a few percent of the gates open
  fill(sae.parameters().extra.at("b_mag"), 0.3);
  check_adaptive_equals_dense(sae, x, 1.0, true, PenaltyScale{0.9});
  check_adaptive_equals_dense(sae, x, 0.0, false);
  fill(sae.parameters().extra.at("b_gate"), 0.0);
  check_adaptive_equals_dense(sae, x, GatedSae<double>::default_sparse_step_max_density, false);
}

TEST_CASE("Per-latent sums over an active set: column index (host) = bisection (device), by hand",
          "[sae][sparse][adaptive]") {
  ActiveSet<double> a;
  a.gather(
      kAdaptiveBatch, kAdaptiveLatents, KOKKOS_LAMBDA(int i, int j, double& v) {
        v = 0.25 * i - 0.5 * j;
        return (i * 5 + j * 7) % 6 == 0;
      });
  REQUIRE(a.entries > std::size_t(kAdaptiveBatch));
  const auto vals = a.value;
  Vector<double> by_bisection("by_bisection", kAdaptiveLatents), by_index("by_index", kAdaptiveLatents);
  const auto term = KOKKOS_LAMBDA(int i, int, int e) { return vals(e) * (i + 1); };
  kernels::sparse_column_sums_by_bisection(a, kAdaptiveLatents, term, KOKKOS_LAMBDA(int j, double s) { by_bisection(j) = s; });
  auto hb = Kokkos::create_mirror_view_and_copy(HostSpace(), by_bisection);
  for (int j = 0; j < kAdaptiveLatents; ++j) {  // by hand: the selected (i, j) of the rule above
    double expected = 0;
    for (int i = 0; i < kAdaptiveBatch; ++i)
      if ((i * 5 + j * 7) % 6 == 0) expected += (0.25 * i - 0.5 * j) * (i + 1);
    CHECK(hb(j) == Approx(expected).epsilon(1e-14).margin(1e-14));
  }
  if constexpr (host_accessible_v<MemSpace>) {
    kernels::sparse_column_sums_by_index(a, kAdaptiveLatents, term, KOKKOS_LAMBDA(int j, double s) { by_index(j) = s; });
    auto hi = Kokkos::create_mirror_view_and_copy(HostSpace(), by_index);
    for (int j = 0; j < kAdaptiveLatents; ++j) CHECK(hi(j) == hb(j));  // the same terms in the same order
  }
  // Over the limit the gather stops after counting and leaves an empty set.
  CHECK_FALSE(a.gather(
      kAdaptiveBatch, kAdaptiveLatents, KOKKOS_LAMBDA(int, int, double& v) {
        v = 1;
        return true;
      },
      kAdaptiveBatch * kAdaptiveLatents - 1));
  CHECK(a.entries == 0);
}

namespace {

/// gather_active tests (h - theta) / eps > -1/2 alone; the dense backward tests h > theta and the
/// rectangle's two edges. Brute force over pre-activations a few ulps either side of
/// theta - eps / 2, theta and theta + eps / 2, for thresholds where eps is far below theta's ulp
/// too, negative ones (an unprojected direct threshold), infinite and NaN ones, with NaN, +-0 and
/// +-inf inputs: the set must be exactly the dense rule's entries, with the dense rule's values.
template <class T>
void check_gather_at_window_edges() {
  constexpr T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  const std::vector<T> thetas = {T(0), T(0.01), T(1), T(3.7), T(1.0e6), T(-1.5), inf, -inf, nan};
  const std::vector<T> bandwidths = {T(0.05), T(1.0e-3), T(1.0e-7)};
  for (const T eps : bandwidths) {
    JumpRelu act{0.01, static_cast<double>(eps)};
    SaeParameters<T> p;
    const int s = static_cast<int>(thetas.size());
    p.extra["threshold"] = Vector<T>("threshold", s);
    auto theta = Kokkos::create_mirror_view(p.extra["threshold"]);
    for (int j = 0; j < s; ++j) theta(j) = thetas[j];
    Kokkos::deep_copy(p.extra["threshold"], theta);
    // Rows: offsets around the three edges (k ulps away, k in -3..3), then NaN, +-inf and +-0.
    std::vector<std::vector<T>> rows;
    for (const T edge : {T(-0.5), T(0), T(0.5)})
      for (int k = -3; k <= 3; ++k) {
        std::vector<T> row(s);
        for (int j = 0; j < s; ++j) {
          T v = thetas[j] + edge * eps;
          for (int step = 0; step < std::abs(k); ++step) v = std::nextafter(v, k > 0 ? inf : -inf);
          row[j] = v;
        }
        rows.push_back(row);
      }
    for (const T special : {nan, inf, -inf, T(0), -T(0)}) rows.push_back(std::vector<T>(s, special));
    StepBuffers<T> b;
    b.h = Matrix<T>("h", rows.size(), s);
    auto h = Kokkos::create_mirror_view(b.h);
    for (std::size_t i = 0; i < rows.size(); ++i)
      for (int j = 0; j < s; ++j) h(i, j) = rows[i][j];
    Kokkos::deep_copy(b.h, h);
    ActiveSet<T> active;
    REQUIRE(act.gather_active(b, p, active, ~std::size_t(0)));
    auto starts = Kokkos::create_mirror_view_and_copy(HostSpace(), active.row_start);
    auto cols = Kokkos::create_mirror_view_and_copy(HostSpace(), active.col);
    auto vals = Kokkos::create_mirror_view_and_copy(HostSpace(), active.value);
    std::size_t expected_entries = 0, in_window_only = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      INFO("eps " << eps << " row " << i);
      std::vector<int> want;
      for (int j = 0; j < s; ++j) {
        const T x = rows[i][j], t = thetas[j];
        const bool on = x > t, window = rectangle((x - t) / eps) > T(0);
        if (on || window) want.push_back(j);
        in_window_only += !on && window;
      }
      std::vector<int> got;
      for (int e = starts(i); e < starts(i + 1); ++e) {
        got.push_back(cols(e));
        const T x = rows[i][cols(e)];
        CHECK(vals(e) == (x > thetas[cols(e)] ? x : T(0)));
      }
      CHECK(got == want);
      expected_entries += want.size();
    }
    CHECK(active.entries == expected_entries);
    CHECK(in_window_only > 0);  // the window's edge entries are among those tested
  }
}

}  // namespace

TEST_CASE("JumpReLU's gather is the dense step's rule entry by entry at the window's edges", "[sae][sparse][adaptive]") {
  check_gather_at_window_edges<float>();
  check_gather_at_window_edges<double>();
}
