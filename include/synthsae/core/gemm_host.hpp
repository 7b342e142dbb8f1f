#pragma once
// Host GEMM through Eigen::Map over the caller's memory (no copies). Eigen threads its
// GEMM with OpenMP when the translation unit is compiled with OpenMP.
#include <cstddef>

#include <Eigen/Core>

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

template <class T>
void host_gemm(bool trans_a, bool trans_b, std::size_t /*m*/, std::size_t /*n*/, std::size_t k, T alpha,
               const RowMajorOperand<T>& a, const RowMajorOperand<T>& b, T beta, const RowMajorOperand<T>& c) {
  const auto A = eigen_map(a);
  const auto B = eigen_map(b);
  auto C = eigen_map(c);
  if (!trans_a && !trans_b)
    eigen_product(A, B, alpha, beta, C, k);
  else if (!trans_a && trans_b)
    eigen_product(A, B.transpose(), alpha, beta, C, k);
  else if (trans_a && !trans_b)
    eigen_product(A.transpose(), B, alpha, beta, C, k);
  else
    eigen_product(A.transpose(), B.transpose(), alpha, beta, C, k);
}

}  // namespace synthsae::gemm_impl
