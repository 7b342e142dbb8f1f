#pragma once
// The decoder-norm-weighted L1 of a [B, S] activation matrix and its gradient: shared by
// L1Penalty (on z) and the Gated SAE (on its gate path pi).
#include "synthsae/core/backend.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/core/kokkos_compat.hpp"
#include "synthsae/sae/kernels/active_set.hpp"

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
  for_each_column(
      "synthsae::l1_backward", std::size_t(rows), z.extent(1), KOKKOS_LAMBDA(int) { return T(0); },
      KOKKOS_LAMBDA(int i, int j, T& col) {
        dz(i, j) += scale * norms(j);
        col += z(i, j);
      },
      KOKKOS_LAMBDA(int j, T col) { dnorms(j) += scale * col; });
}

/// The same over an active set (z = value on its entries, zero elsewhere), float64, in the
/// dense loop's order: sum_e value(e) n_col(e).
template <class T>
double weighted_l1_active(const ActiveSet<T>& a, const Vector<T>& norms) {
  const auto starts = a.row_start;
  const auto cols = a.col;
  const auto vals = a.value;
  double sum = 0;
  Kokkos::parallel_reduce(
      "synthsae::l1_active", Kokkos::RangePolicy<ExecSpace>(0, a.rows()),
      KOKKOS_LAMBDA(int i, double& acc) {
        for (int e = starts(i); e < starts(i + 1); ++e) acc += double(vals(e)) * norms(cols(e));
      },
      sum);
  return sum;
}

/// Its gradient: grad(e) += scale n_col(e);  dnorms_j += scale sum over j's entries of value.
template <class T>
void weighted_l1_active_backward(const ActiveSet<T>& a, const Vector<T>& norms, const Vector<T>& dnorms, T scale) {
  const auto grad = a.grad, vals = a.value;
  for_each_active(a, KOKKOS_LAMBDA(int, int j, int e) { grad(e) += scale * norms(j); });
  sparse_column_sums(
      a, norms.extent(0), KOKKOS_LAMBDA(int, int, int e) { return vals(e); },
      KOKKOS_LAMBDA(int j, T col) { dnorms(j) += scale * col; });
}

/// sum_b |w_b|_p with w_bj = z_bj n_j (float64); the row norms go to `row_norms` when it is sized.
template <class T>
double weighted_lp(const Matrix<T>& z, const Vector<T>& norms, double p, const Vector<T>& row_norms) {
  const int s = static_cast<int>(z.extent(1));
  const bool keep = row_norms.extent(0) == z.extent(0);
  double sum = 0;
  Kokkos::parallel_reduce(
      "synthsae::lp", Kokkos::RangePolicy<ExecSpace>(0, z.extent(0)),
      KOKKOS_LAMBDA(int i, double& acc) {
        double row = 0;
        for (int j = 0; j < s; ++j) row += kmath::pow(kmath::fabs(double(z(i, j)) * norms(j)), p);
        const double norm = kmath::pow(row, 1.0 / p);
        if (keep) row_norms(i) = static_cast<T>(norm);
        acc += norm;
      },
      sum);
  return sum;
}

/// The gradient of scale * sum_b |w_b|_p: g_bj = scale sign(w) |w_bj|^(p-1) |w_b|_p^(1-p) (0 for a
/// zero row); dz_bj += g_bj n_j; dnorms_j += sum_b g_bj z_bj.
template <class T>
void weighted_lp_backward(const Matrix<T>& z, const Matrix<T>& dz, const Vector<T>& norms, const Vector<T>& dnorms,
                          T scale, double p) {
  const int rows = static_cast<int>(z.extent(0));
  Vector<T> row_norms("lp_row_norms", z.extent(0));
  weighted_lp(z, norms, p, row_norms);
  Kokkos::parallel_for(
      "synthsae::lp_backward", Kokkos::RangePolicy<ExecSpace>(0, z.extent(1)), KOKKOS_LAMBDA(int j) {
        T col = 0;
        for (int i = 0; i < rows; ++i) {
          const double w = double(z(i, j)) * norms(j);
          if (w == 0.0 || row_norms(i) == T(0)) continue;
          const double g = double(scale) * (w > 0 ? 1.0 : -1.0) * kmath::pow(kmath::fabs(w), p - 1.0) *
                           kmath::pow(double(row_norms(i)), 1.0 - p);
          dz(i, j) += static_cast<T>(g * norms(j));
          col += static_cast<T>(g * z(i, j));
        }
        dnorms(j) += col;
      });
}

}  // namespace kernels

}  // namespace synthsae
