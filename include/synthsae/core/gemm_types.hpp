#pragma once
// Vocabulary of synthsae::gemm, shared by its host and CUDA backends.
#include <optional>
#include <string_view>

namespace synthsae {

enum class Op { N, T };  ///< use the matrix as stored, or its transpose

/// Arithmetic for float GEMM (double is always exact FP64).
enum class GemmMath {
  fp32,  ///< full FP32
  tf32,  ///< TF32 tensor cores, FP32 accumulation, on CUDA; FP32 on the host (no TF32 unit there)
  bf16,  ///< operands rounded to BF16, FP32 accumulation: tensor cores on CUDA, AMX tiles, AVX-512 BF16 (or emulated) on the host
};

inline constexpr std::string_view gemm_math_name(GemmMath m) {
  return m == GemmMath::fp32 ? "fp32" : m == GemmMath::tf32 ? "tf32" : "bf16";
}
inline std::optional<GemmMath> parse_gemm_math(std::string_view name) {
  for (GemmMath m : {GemmMath::fp32, GemmMath::tf32, GemmMath::bf16})
    if (name == gemm_math_name(m)) return m;
  return std::nullopt;
}

namespace detail {
inline GemmMath& default_gemm_math_slot() {
  static thread_local GemmMath math = GemmMath::fp32;
  return math;
}
}  // namespace detail

/// The arithmetic a gemm call without an explicit GemmMath uses on this thread (FP32 unless a
/// ScopedGemmMath is alive). The Trainer sets it from TrainerConfig::gemm_math for a run, so
/// every product of the step and of its policies follows one setting.
inline GemmMath default_gemm_math() { return detail::default_gemm_math_slot(); }

/// Sets the default GemmMath of this thread until the end of the scope.
class ScopedGemmMath {
 public:
  explicit ScopedGemmMath(GemmMath m) : previous_(detail::default_gemm_math_slot()) {
    detail::default_gemm_math_slot() = m;
  }
  ~ScopedGemmMath() { detail::default_gemm_math_slot() = previous_; }
  ScopedGemmMath(const ScopedGemmMath&) = delete;
  ScopedGemmMath& operator=(const ScopedGemmMath&) = delete;

 private:
  GemmMath previous_;
};

}  // namespace synthsae
