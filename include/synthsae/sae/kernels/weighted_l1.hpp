#pragma once
// The decoder-norm-weighted L1 of a [B, S] activation matrix and its gradient: shared by
// L1Penalty (on z) and the Gated SAE (on its gate path pi).
#include "synthsae/core/backend.hpp"

namespace synthsae {

namespace kernels {

/// sum_b sum_j z_bj n_j (float64): the decoder-norm-weighted L1 of z.
template <class T>
double weighted_l1(const Matrix<T>& z, const Vector<T>& norms) {
  const int s = static_cast<int>(z.extent(1));
  double sum = 0;
  Kokkos::parallel_reduce(
      "synthsae::l1", Kokkos::RangePolicy<ExecSpace>(0, z.extent(0)),
      KOKKOS_LAMBDA(int i, double& acc) {
        for (int j = 0; j < s; ++j) acc += double(z(i, j)) * norms(j);
      },
      sum);
  return sum;
}

/// The gradient of scale * sum_bj z_bj n_j: dz += scale n_j; dnorms_j += scale sum_b z_bj.
template <class T>
void weighted_l1_backward(const Matrix<T>& z, const Matrix<T>& dz, const Vector<T>& norms, const Vector<T>& dnorms,
                          T scale) {
  const int rows = static_cast<int>(z.extent(0));
  Kokkos::parallel_for(
      "synthsae::l1_backward", Kokkos::RangePolicy<ExecSpace>(0, z.extent(1)), KOKKOS_LAMBDA(int j) {
        T col = 0;
        for (int i = 0; i < rows; ++i) {
          dz(i, j) += scale * norms(j);
          col += z(i, j);
        }
        dnorms(j) += scale * col;
      });
}

}  // namespace kernels

}  // namespace synthsae
