#pragma once
// Shared by the SAE tests: random inputs and a host copy of an SAE's parameters that computes
// pre-activations and decoder norms by hand.
#include <cmath>
#include <cstdint>

#include "synthsae/core/counter_rng.hpp"
#include "synthsae/sae/parameters.hpp"

namespace synthsae::test {

/// rows x d standard normal draws from stream (seed, 0).
inline Matrix<double> random_input(int rows, int d, std::uint64_t seed) {
  Matrix<double> x("x", rows, d);
  auto h = Kokkos::create_mirror_view(x);
  RandomStream s(seed, 0);
  for (int i = 0; i < rows; ++i)
    for (int k = 0; k < d; ++k) h(i, k) = s.normal<double>();
  Kokkos::deep_copy(x, h);
  return x;
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

}  // namespace synthsae::test
