#pragma once
// C = alpha * op(A) * op(B) + beta * C on row-major (LayoutRight) rank-2 Views, in place,
// without copies. One entry point; the memory space of the Views chooses the backend:
// host-accessible memory goes to Eigen (threaded with OpenMP when built with it), or for float
// in GemmMath::bf16 to the host BF16 product (AMX tiles or AVX-512 BF16 where the processor has them), CUDA
// memory to cuBLAS. Row strides (leading dimensions) are honoured, so row-range subviews
// and LayoutStride views whose column stride is 1 are accepted.
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/core/gemm_bf16_host.hpp"
#include "synthsae/core/gemm_host.hpp"
#include "synthsae/core/gemm_types.hpp"
#include "synthsae/core/host_parallel.hpp"
#if defined(KOKKOS_ENABLE_CUDA)
#include "synthsae/core/gemm_cuda.hpp"
#endif

namespace synthsae {

namespace detail {

/// A rank-2 View as (pointer, rows, cols, leading dimension) of a row-major matrix.
template <class V>
gemm_impl::RowMajorOperand<std::remove_const_t<typename V::value_type>> row_major_operand(const V& view,
                                                                                          const char* name) {
  static_assert(V::rank == 2, "synthsae::gemm takes rank-2 Views");
  const std::size_t rows = view.extent(0);
  const std::size_t cols = view.extent(1);
  if (cols > 1 && view.stride(1) != 1) {
    throw ShapeError(std::string("gemm: operand ") + name + " has column stride " + show(view.stride(1)) +
                     "; rows must be contiguous (LayoutRight)");
  }
  const std::size_t ld = rows > 1 ? static_cast<std::size_t>(view.stride(0)) : (cols > 0 ? cols : 1);
  return {view.data(), rows, cols, ld < cols ? cols : ld};
}

inline std::string shape_text(std::size_t r, std::size_t c) {
  std::string text = "[";  // appended piecewise: GCC 12 misfires -Wrestrict on "[" + std::string
  text += show(r);
  text += " x ";
  text += show(c);
  text += "]";
  return text;
}

/// The operands as row-major matrices, and C [m, n] = op(A) [m, k] op(B) [k, n].
template <class T>
struct CheckedGemm {
  gemm_impl::RowMajorOperand<T> a, b, c;
  std::size_t m, n, k;
};

/// C [m, n] = op(A) [m, k] op(B) [k, n], or a ShapeError naming the three shapes (or the operand
/// whose rows are not contiguous). Nothing is written before it passes.
template <class AView, class BView, class CView>
CheckedGemm<typename CView::non_const_value_type> checked_gemm(Op op_a, Op op_b, const AView& A, const BView& B,
                                                             const CView& C) {
  using T = typename CView::non_const_value_type;
  static_assert(std::is_same_v<std::remove_const_t<typename AView::value_type>, T> &&
                    std::is_same_v<std::remove_const_t<typename BView::value_type>, T>,
                "synthsae::gemm: A, B and C must have the same scalar type");
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "synthsae::gemm supports float and double");
  static_assert(std::is_same_v<typename AView::memory_space, typename CView::memory_space> &&
                    std::is_same_v<typename BView::memory_space, typename CView::memory_space>,
                "synthsae::gemm: A, B and C must live in the same memory space");
  const auto a = row_major_operand(A, "A");
  const auto b = row_major_operand(B, "B");
  const auto c = row_major_operand(C, "C");
  const std::size_t m = op_a == Op::N ? a.rows : a.cols;
  const std::size_t k = op_a == Op::N ? a.cols : a.rows;
  const std::size_t kb = op_b == Op::N ? b.rows : b.cols;
  const std::size_t n = op_b == Op::N ? b.cols : b.rows;
  if (k != kb || c.rows != m || c.cols != n) {
    throw ShapeError("gemm: op(A) " + shape_text(m, k) + " * op(B) " + shape_text(kb, n) + " does not fit C " +
                     shape_text(c.rows, c.cols));
  }
  return {a, b, c, m, n, k};
}

/// gemm's body. row_init (host memory, n entries, not aliasing C; host products only): every row
/// of C starts as row_init instead of beta * C (gemm_onto_rows).
template <class Space, class AView, class BView, class CView>
void gemm_into(const Space& space, Op op_a, Op op_b, typename CView::non_const_value_type alpha, const AView& A,
               const BView& B, typename CView::non_const_value_type beta, const CView& C, GemmMath math,
               const typename CView::non_const_value_type* row_init) {
  using T = typename CView::non_const_value_type;
  const auto [a, b, c, m, n, k] = checked_gemm(op_a, op_b, A, B, C);
  if (m == 0 || n == 0) return;

  using Mem = typename CView::memory_space;
  if constexpr (host_accessible_v<Mem>) {
    space.fence();  // kernels that produced A, B or C may still be in flight
    if constexpr (std::is_same_v<T, float>) {
      if (math == GemmMath::bf16) {  // tf32 has no host arithmetic of its own: it runs as fp32
        gemm_impl::host_gemm_bf16(op_a == Op::T, op_b == Op::T, m, n, k, alpha, a, b, beta, c, row_init);
        return;
      }
    }
    gemm_impl::host_gemm<T>(op_a == Op::T, op_b == Op::T, m, n, k, alpha, a, b, beta, c, row_init);
  } else {
#if defined(KOKKOS_ENABLE_CUDA)
    static_assert(is_cuda_space_v<Mem>, "synthsae::gemm: no GEMM backend for this memory space");
    gemm_impl::cuda_gemm<T>(space, op_a == Op::T, op_b == Op::T, m, n, k, alpha, a, b, beta, c, math);
#else
    static_assert(host_accessible_v<Mem>, "synthsae::gemm: no GEMM backend for this memory space");
#endif
  }
  (void)math, (void)row_init;
}

}  // namespace detail

/// C = alpha * op(A) * op(B) + beta * C (shapes checked, with a ShapeError naming them).
template <class Space, class AView, class BView, class CView>
void gemm(const Space& space, Op op_a, Op op_b, typename CView::non_const_value_type alpha, const AView& A,
          const BView& B, typename CView::non_const_value_type beta, const CView& C,
          GemmMath math = default_gemm_math()) {
  detail::gemm_into(space, op_a, op_b, alpha, A, B, beta, C, math, nullptr);
}

/// gemm on the default execution space instance.
template <class AView, class BView, class CView>
void gemm(Op op_a, Op op_b, typename CView::non_const_value_type alpha, const AView& A, const BView& B,
          typename CView::non_const_value_type beta, const CView& C, GemmMath math = default_gemm_math()) {
  gemm(typename CView::execution_space(), op_a, op_b, alpha, A, B, beta, C, math);
}

/// C = v in every row + alpha * op(A) * op(B): a bias under a product (h = b_enc + xc W_enc).
/// Host products with a contiguous v never fill all of C first: fp32 / fp64 (and the BF16
/// emulation) write v into each panel of C just before the panel's product reads it, while the
/// panel is in the core's cache (a separate fill leaves C in memory for the product to read back);
/// the BF16 units take v in place of C's start. The same bits as the fill then gemm with beta = 1,
/// which is what every other backend runs. v must not alias C. Shapes are checked before anything
/// is written.
template <class AView, class BView, class VView, class CView>
void gemm_onto_rows(Op op_a, Op op_b, typename CView::non_const_value_type alpha, const AView& A, const BView& B,
                    const VView& v, const CView& C, GemmMath math = default_gemm_math()) {
  using T = typename CView::non_const_value_type;
  static_assert(VView::rank == 1, "gemm_onto_rows: v is a rank-1 View");
  static_assert(std::is_same_v<typename VView::memory_space, typename CView::memory_space>,
                "gemm_onto_rows: v and C must live in the same memory space");
  if (v.extent(0) != C.extent(1)) {
    throw ShapeError("gemm_onto_rows: v has " + show(v.extent(0)) + " entries, C " + show(C.extent(1)) + " columns");
  }
  using Mem = typename CView::memory_space;
  if constexpr (host_accessible_v<Mem>) {
    if (v.extent(0) <= 1 || v.stride(0) == 1) {
      detail::gemm_into(typename CView::execution_space(), op_a, op_b, alpha, A, B, T(1), C, math, v.data());
      return;
    }
  }
  detail::checked_gemm(op_a, op_b, A, B, C);  // before the fill overwrites C
  const int cols = static_cast<int>(C.extent(1));
  const auto fill_row = KOKKOS_LAMBDA(int i) {
    for (int j = 0; j < cols; ++j) C(i, j) = v(j);
  };
  using CSpace = typename CView::execution_space;
  if constexpr (std::is_same_v<CSpace, ExecSpace>)  // host_rows threads it on Debian's Serial Kokkos
    host_rows("synthsae::fill_rows", static_cast<std::int64_t>(C.extent(0)), cols, fill_row);
  else  // host Views in a GPU build: their own (host) execution space
    Kokkos::parallel_for("synthsae::fill_rows", Kokkos::RangePolicy<CSpace>(0, C.extent(0)), fill_row);
  gemm(op_a, op_b, alpha, A, B, T(1), C, math);
}

}  // namespace synthsae
