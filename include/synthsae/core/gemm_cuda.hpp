#pragma once
// CUDA GEMM through cuBLAS. Row-major C = op(A) op(B) is computed as the column-major
// product C^T = op(B)^T op(A)^T, which reads the same memory without any copy.
#if defined(KOKKOS_ENABLE_CUDA)
#include <cstddef>
#include <string>

#include <cublas_v2.h>

#include "synthsae/core/error.hpp"
#include "synthsae/core/gemm_host.hpp"
#include "synthsae/core/gemm_types.hpp"

namespace synthsae::gemm_impl {

inline void check_cublas(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw BackendError(std::string("cuBLAS ") + call + " failed: " + cublasGetStatusString(status));
  }
}

/// One cuBLAS handle per process, destroyed at Kokkos::finalize (before the CUDA context goes).
inline cublasHandle_t cublas_handle() {
  static cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    check_cublas(cublasCreate(&h), "cublasCreate");
    Kokkos::push_finalize_hook([h] { cublasDestroy(h); });
    return h;
  }();
  return handle;
}

template <class T, class Space>
void cuda_gemm(const Space& space, bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
               const RowMajorOperand<T>& a, const RowMajorOperand<T>& b, T beta, const RowMajorOperand<T>& c,
               GemmMath math) {
  cublasHandle_t handle = cublas_handle();
  check_cublas(cublasSetStream(handle, space.cuda_stream()), "cublasSetStream");
  const cublasOperation_t op_first = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;   // applies to B
  const cublasOperation_t op_second = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;  // applies to A
  const int M = static_cast<int>(n), N = static_cast<int>(m), K = static_cast<int>(k);
  const int ldb = static_cast<int>(b.ld), lda = static_cast<int>(a.ld), ldc = static_cast<int>(c.ld);
  if constexpr (std::is_same_v<T, double>) {
    check_cublas(
        cublasDgemm(handle, op_first, op_second, M, N, K, &alpha, b.data, ldb, a.data, lda, &beta, c.data, ldc),
        "cublasDgemm");
  } else {
    const cublasComputeType_t compute = math == GemmMath::tf32   ? CUBLAS_COMPUTE_32F_FAST_TF32
                                        : math == GemmMath::bf16 ? CUBLAS_COMPUTE_32F_FAST_16BF
                                                                 : CUBLAS_COMPUTE_32F;
    check_cublas(cublasGemmEx(handle, op_first, op_second, M, N, K, &alpha, b.data, CUDA_R_32F, ldb, a.data, CUDA_R_32F,
                              lda, &beta, c.data, CUDA_R_32F, ldc, compute, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx");
  }
}

}  // namespace synthsae::gemm_impl
#endif
