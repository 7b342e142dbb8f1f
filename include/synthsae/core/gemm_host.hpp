#pragma once
// Host GEMM through Eigen::Map over the caller's memory (no copies). C is split into panels
// (rows or columns) whose size depends only on the shape (never on the thread count), and the
// panels run in parallel (OpenMP when the translation unit has it), each through Eigen's
// single-threaded product: Eigen's own threaded GEMM picks its blocking from the number of
// threads, so its sums, and every weight trained through them, would differ between 1 and 2
// threads. With fixed panels the bits are the same at any thread count.
#include <algorithm>
#include <cstddef>

#include <Eigen/Core>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace synthsae::gemm_impl {

template <class T>
struct RowMajorOperand {
  T* data;
  std::size_t rows, cols, ld;  // ld: elements between the starts of consecutive rows
};

template <class T>
using RowMajorMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, Eigen::Unaligned,
                               Eigen::OuterStride<>>;

template <class T>
RowMajorMap<T> eigen_map(const RowMajorOperand<T>& x) {
  return RowMajorMap<T>(x.data, static_cast<Eigen::Index>(x.rows), static_cast<Eigen::Index>(x.cols),
                        Eigen::OuterStride<>(static_cast<Eigen::Index>(x.ld)));
}

template <class T, class OpA, class OpB, class OutMap>
void eigen_product(const OpA& a, const OpB& b, T alpha, T beta, OutMap& c, std::size_t k) {
  if (k == 0) {  // empty inner dimension: C = beta * C
    if (beta == T(0))
      c.setZero();
    else
      c *= beta;
    return;
  }
  if (beta == T(0)) {
    c.noalias() = alpha * (a * b);  // beta == 0 never reads C (it may hold NaN)
  } else {
    if (beta != T(1)) c *= beta;
    c.noalias() += alpha * (a * b);
  }
}

/// Rows (or columns) of C per panel: about 8 panels, at least 128, a multiple of 16 — a function
/// of the shape only, never of the thread count.
inline std::size_t gemm_panel_size(std::size_t extent) {
  const std::size_t per = (extent + 7) / 8;
  return std::max<std::size_t>(128, (per + 15) / 16 * 16);
}

/// C[r0:r0+rows, c0:c0+cols] = alpha op(A)[r0:r0+rows, :] op(B)[:, c0:c0+cols] + beta C[...].
template <class T>
void panel_product(bool trans_a, bool trans_b, std::size_t k, T alpha, const RowMajorOperand<T>& a,
                   const RowMajorOperand<T>& b, T beta, const RowMajorOperand<T>& c, std::size_t r0, std::size_t rows,
                   std::size_t c0, std::size_t cols) {
  using I = Eigen::Index;
  auto C = eigen_map(c).block(I(r0), I(c0), I(rows), I(cols));
  const auto A = eigen_map(a);
  const auto B = eigen_map(b);
  // op(A)'s rows r0.. are A's rows (N) or columns (T); op(B)'s columns c0.. are B's columns (N) or rows (T).
  if (!trans_a && !trans_b)
    eigen_product(A.middleRows(I(r0), I(rows)), B.middleCols(I(c0), I(cols)), alpha, beta, C, k);
  else if (!trans_a && trans_b)
    eigen_product(A.middleRows(I(r0), I(rows)), B.middleRows(I(c0), I(cols)).transpose(), alpha, beta, C, k);
  else if (trans_a && !trans_b)
    eigen_product(A.middleCols(I(r0), I(rows)).transpose(), B.middleCols(I(c0), I(cols)), alpha, beta, C, k);
  else
    eigen_product(A.middleCols(I(r0), I(rows)).transpose(), B.middleRows(I(c0), I(cols)).transpose(), alpha, beta, C, k);
}

/// Below this many multiply-adds (m n k) a product runs on one thread: a thread team costs more
/// than it saves there, and on a loaded machine (ctest -j2, a sweep) a waiting team member can
/// stall a short product for a whole scheduler slice (measured: the L0 autotuner test took 297 s
/// beside another test and 28 s alone, with products of 256 x 64 x 32).
inline constexpr double gemm_parallel_min_work = double(1 << 22);

/// Every row of C's block [r0, r0 + rows) x [c0, c0 + cols) set to row_init[c0, c0 + cols).
template <class T>
void fill_block_rows(const RowMajorOperand<T>& c, const T* row_init, std::size_t r0, std::size_t rows, std::size_t c0,
                     std::size_t cols) {
  for (std::size_t i = r0; i < r0 + rows; ++i) std::copy(row_init + c0, row_init + c0 + cols, c.data + i * c.ld + c0);
}

template <class T>
void host_gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
               const RowMajorOperand<T>& a, const RowMajorOperand<T>& b, T beta, const RowMajorOperand<T>& c,
               const T* row_init = nullptr) {
  // Split the longer side of C: each panel repacks the whole of the other operand, and that
  // operand (m x k when splitting columns, k x n when splitting rows) is then the smaller one.
  const bool by_rows = m >= n;
  const std::size_t extent = by_rows ? m : n, step = gemm_panel_size(extent);
  const auto panels = static_cast<long>((extent + step - 1) / step);
  auto run_panel = [&](long p) {
    const std::size_t first = static_cast<std::size_t>(p) * step, size = std::min(step, extent - first);
    const std::size_t r0 = by_rows ? first : 0, rows = by_rows ? size : m;
    const std::size_t c0 = by_rows ? 0 : first, cols = by_rows ? n : size;
    // With row_init, the panel of C is written just before its product reads it: still in this
    // core's cache, where a separate pass over all of C would have left it in memory.
    if (row_init != nullptr) fill_block_rows(c, row_init, r0, rows, c0, cols);
    panel_product(trans_a, trans_b, k, alpha, a, b, row_init != nullptr ? T(1) : beta, c, r0, rows, c0, cols);
  };
#ifdef _OPENMP
  const bool worth_a_team = panels > 1 && double(m) * double(n) * double(k) >= gemm_parallel_min_work;
  const int team = worth_a_team ? static_cast<int>(std::min<long>(panels, omp_get_max_threads())) : 1;
  // Eigen threads a product itself unless it sees a team of more than one thread; inside ours it
  // must not (its blocking depends on its thread count, so the bits would), so every member,
  // including a team of one, first limits its own nested regions to one thread. That setting
  // belongs to the region's tasks and ends with it.
#pragma omp parallel num_threads(team)
  {
    omp_set_num_threads(1);
#pragma omp for schedule(dynamic, 1)
    for (long p = 0; p < panels; ++p) run_panel(p);
  }
#else
  for (long p = 0; p < panels; ++p) run_panel(p);
#endif
}

}  // namespace synthsae::gemm_impl
