#pragma once
// Vocabulary of synthsae::gemm, shared by its host and CUDA backends.
namespace synthsae {

enum class Op { N, T };  ///< use the matrix as stored, or its transpose

/// Arithmetic for float GEMM on CUDA (host GEMM is always exact FP32/FP64).
enum class GemmMath {
  fp32,  ///< full FP32
  tf32,  ///< TF32 tensor cores, FP32 accumulation
  bf16,  ///< BF16 tensor cores, FP32 accumulation
};

}  // namespace synthsae
