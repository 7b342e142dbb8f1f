#pragma once
// Shared by the SAE tests: random inputs, a tensor-by-tensor comparison of gradients, and a host
// copy of an SAE's parameters that computes pre-activations and decoder norms by hand.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "synthsae/core/counter_rng.hpp"
#include "synthsae/sae/parameters.hpp"
#include "synthsae/sae/step_interface.hpp"

namespace synthsae::test {

/// rows x d standard normal draws from stream (seed, stream), in T.
template <class T = double>
Matrix<T> random_input(int rows, int d, std::uint64_t seed, std::uint64_t stream = 0) {
  Matrix<T> x("x", rows, d);
  auto h = Kokkos::create_mirror_view(x);
  RandomStream s(seed, stream);
  for (int i = 0; i < rows; ++i)
    for (int k = 0; k < d; ++k) h(i, k) = s.normal<T>();
  Kokkos::deep_copy(x, h);
  return x;
}

/// A dead mask over `latents` marking j with j % stride == 1 (latents 1, 1 + stride, ...); `count`
/// gets how many.
inline DeadMask dead_every(int latents, int stride, std::size_t& count) {
  Kokkos::View<std::uint8_t*, MemSpace> dead("dead", latents);
  auto h = Kokkos::create_mirror_view(dead);
  count = 0;
  for (int j = 0; j < latents; ++j) h(j) = j % stride == 1, count += h(j);
  Kokkos::deep_copy(dead, h);
  return dead;
}

/// Every gradient tensor of got equals want's to tolerance x the tensor's largest entry, and
/// every tensor is nonzero (a gradient zero on both sides would test nothing) except the one
/// named zero, which must be all zero. Empty tensors (the Gated SAE's b_enc) are skipped.
inline void check_same_tensors(const SaeParameters<double>& got, const SaeParameters<double>& want,
                               double tolerance, const std::string& zero = "") {
  std::map<std::string, Vector<double>> got_tensors;
  got.for_each_flat([&](const std::string& name, const Vector<double>& v) { got_tensors[name] = v; });
  want.for_each_flat([&](const std::string& name, const Vector<double>& v) {
    if (v.extent(0) == 0) return;
    auto a = Kokkos::create_mirror_view_and_copy(HostSpace(), got_tensors.at(name));
    auto b = Kokkos::create_mirror_view_and_copy(HostSpace(), v);
    double largest = 0, worst = 0;
    for (std::size_t i = 0; i < b.extent(0); ++i) largest = std::max(largest, std::fabs(b(i)));
    for (std::size_t i = 0; i < b.extent(0); ++i) worst = std::max(worst, std::fabs(a(i) - b(i)));
    INFO(name);
    if (name == zero)
      CHECK(largest == 0);
    else
      CHECK(largest > 0);
    CHECK(worst <= tolerance * largest);
  });
}

/// max |x1 - x2| / max |x1| over every element of two views of the same shape (on any memory
/// space); x1 must not be all zero.
template <class View1, class View2>
double relative_worst_gap(const View1& x1, const View2& x2) {
  auto h1 = Kokkos::create_mirror_view_and_copy(HostSpace(), x1);
  auto h2 = Kokkos::create_mirror_view_and_copy(HostSpace(), x2);
  double largest = 0, worst = 0;
  for (std::size_t i = 0; i < h1.size(); ++i) largest = std::max(largest, std::fabs(double(h1.data()[i])));
  for (std::size_t i = 0; i < h1.size(); ++i) worst = std::max(worst, std::fabs(double(h1.data()[i] - h2.data()[i])));
  if (!(largest > 0)) throw std::logic_error("relative_worst_gap: the reference is all zero");
  return worst / largest;
}

/// Host copies of an input batch and an SAE's W_enc, b_enc, W_dec, b_dec (writable: tests
/// perturb them for finite differences of hand-written losses).
struct HostSae {
  typename Matrix<double>::HostMirror x, w_enc, w_dec;
  typename Vector<double>::HostMirror b_enc, b_dec;

  HostSae(const Matrix<double>& input, const SaeParameters<double>& p)
      : x(Kokkos::create_mirror_view_and_copy(HostSpace(), input)),
        w_enc(Kokkos::create_mirror_view_and_copy(HostSpace(), p.w_enc)),
        w_dec(Kokkos::create_mirror_view_and_copy(HostSpace(), p.w_dec)),
        b_enc(Kokkos::create_mirror_view_and_copy(HostSpace(), p.b_enc)),
        b_dec(Kokkos::create_mirror_view_and_copy(HostSpace(), p.b_dec)) {}

  /// h_ij = (x_i - b_dec) . W_enc[:, j] + b_enc_j
  double pre(int i, int j) const {
    double h = b_enc(j);
    for (std::size_t k = 0; k < x.extent(1); ++k) h += (x(i, k) - b_dec(k)) * w_enc(k, j);
    return h;
  }
  /// |W_dec_j|
  double norm(int j) const {
    double s = 0;
    for (std::size_t k = 0; k < w_dec.extent(1); ++k) s += w_dec(j, k) * w_dec(j, k);
    return std::sqrt(s);
  }
};

// Perturb the initial parameters so that biases are non-zero and W_enc differs from W_dec^T:
// every gradient path is exercised.
template <class S>
void scramble(S& sae, std::uint64_t seed) {
  RandomStream s(seed, 99);
  sae.parameters().for_each_flat([&](const std::string& name, const Vector<double>& v) {
    auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), v);
    for (std::size_t i = 0; i < h.extent(0); ++i) {
      if (name == "log_threshold")
        h(i) = std::log(0.05 + 0.1 * s.uniform<double>());
      else if (name == "threshold")
        h(i) = 0.05 + 0.1 * s.uniform<double>();
      else
        h(i) += 0.3 * s.normal<double>();
    }
    Kokkos::deep_copy(v, h);
  });
}

// Central differences (step 1e-6) against the analytic gradient for every entry of the named
// tensors. Double precision: truncation ~1e-12 * |L'''|, rounding ~1e-16 |L| / 1e-6 = 1e-10;
// a tolerance of 1e-6 (relative to |g| + 1) cannot hide a wrong factor or a missing term, and a
// selection flipping under the perturbation would show up as an error of order 1.
template <class S>
double worst_gradient_error(S& sae, const Matrix<double>& x, const std::vector<std::string>& tensors,
                            const DeadMask& dead = {}, std::size_t num_dead = 0, double lambda = 1.0) {
  SaeParameters<double> grads = sae.parameters().zeros_like();
  auto state = sae.activation_state();
  sae.forward_backward(x, grads, dead, num_dead, lambda);
  sae.activation_state() = state;
  double worst = 0;
  std::map<std::string, Vector<double>> analytic;
  grads.for_each_flat([&](const std::string& name, const Vector<double>& v) { analytic[name] = v; });
  sae.parameters().for_each_flat([&](const std::string& name, const Vector<double>& v) {
    if (std::find(tensors.begin(), tensors.end(), name) == tensors.end()) return;
    auto hv = Kokkos::create_mirror_view_and_copy(HostSpace(), v);
    auto ga = Kokkos::create_mirror_view_and_copy(HostSpace(), analytic.at(name));
    for (std::size_t i = 0; i < hv.extent(0); ++i) {
      const double saved = hv(i);
      const double step = 1e-6;
      hv(i) = saved + step;
      Kokkos::deep_copy(v, hv);
      const double up = sae.loss(x, dead, num_dead, lambda).total();
      hv(i) = saved - step;
      Kokkos::deep_copy(v, hv);
      const double down = sae.loss(x, dead, num_dead, lambda).total();
      hv(i) = saved;
      Kokkos::deep_copy(v, hv);
      const double fd = (up - down) / (2 * step);
      worst = std::max(worst, std::fabs(fd - ga(i)) / (std::fabs(ga(i)) + 1.0));
    }
  });
  return worst;
}

}  // namespace synthsae::test
