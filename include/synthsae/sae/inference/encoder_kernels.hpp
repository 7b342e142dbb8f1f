#pragma once
// Kernels the inference forms share: centring the input and the ReLU/JumpReLU gate on the
// encoder product. Elementwise, so they run as flat 2-D loops (core/row_loops.hpp).
#include "synthsae/core/backend.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/sae/parameters.hpp"

namespace synthsae::inference::kernels {

/// xc = x - b_dec (or x when the SAE does not subtract b_dec from its input).
inline void center(const Matrix<float>& x, const Vector<float>& b_dec, bool subtract, const Matrix<float>& xc) {
  const auto xx = x, out = xc;
  const auto bias = b_dec;
  for_each_entry(
      "synthsae::inference_center", x.extent(0), x.extent(1),
      KOKKOS_LAMBDA(int i, int q) { out(i, q) = xx(i, q) - (subtract ? bias(q) : 0.0f); });
}

/// z = (h > 0 && (!threshold || h > theta_j)) ? h : 0 with h = z + b_enc. One loop per case,
/// each without a branch: the short-circuit form compiled to a branch per entry, mispredicted on
/// about half of them (an eighth of an evaluation's time).
inline void relu_gate(const Matrix<float>& z, const Vector<float>& b_enc, const Vector<float>& theta,
                      bool use_threshold) {
  const auto zz = z;
  const auto b = b_enc, t = theta;
  if (use_threshold) {
    for_each_entry(
        "synthsae::inference_act", z.extent(0), z.extent(1), KOKKOS_LAMBDA(int i, int j) {
          const float h = zz(i, j) + b(j);
          zz(i, j) = ((h > 0.0f) & (h > t(j))) ? h : 0.0f;
        });
  } else {
    for_each_entry(
        "synthsae::inference_act", z.extent(0), z.extent(1), KOKKOS_LAMBDA(int i, int j) {
          const float h = zz(i, j) + b(j);
          zz(i, j) = h > 0.0f ? h : 0.0f;
        });
  }
}

}  // namespace synthsae::inference::kernels
