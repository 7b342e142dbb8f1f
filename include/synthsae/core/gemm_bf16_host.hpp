#pragma once
// Host GEMM in BF16 arithmetic with FP32 accumulation: GemmMath::bf16 on the CPU, the same
// contract as cuBLAS's CUBLAS_COMPUTE_32F_FAST_16BF on a GPU (each operand rounded to bfloat16,
// to nearest even; products exact in FP32; sums in FP32).
//
// Which unit runs it is decided once per process, the fastest this processor has:
// - the AMX tile unit (Intel Xeon from Sapphire Rapids on, where Linux grants the tile state):
//   gemm_bf16_amx.hpp;
// - AVX-512 BF16's dot product VDPBF16PS (AMD Zen 4 and later, Intel Cooper Lake):
//   gemm_bf16_avx512.hpp;
// - else an emulation: the operands rounded to BF16 and multiplied by the FP32 host GEMM, which
//   is exact arithmetic on the same rounded values and differs from the units only in the order
//   (and so the last bits) of its sums.
// SYNTHSAE_HOST_BF16 = avx512 or emulated caps the choice (to compare them, or to test).
// Either way each entry's sum runs in an order fixed by the shape, so the bits do not depend on
// the thread count. The units flush FP32 values below BF16's normal range to zero (and read
// denormal BF16 as zero); the emulation keeps them.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "synthsae/core/error.hpp"
#include "synthsae/core/float16.hpp"
#include "synthsae/core/gemm_host.hpp"

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__CUDACC__)
#define SYNTHSAE_X86_BF16_CODE 1
#include "synthsae/core/gemm_bf16_amx.hpp"
#include "synthsae/core/gemm_bf16_avx512.hpp"
#endif

namespace synthsae::gemm_impl {
// The two variants (with the x86 units, and emulation only, as nvcc's translation units get it)
// live in inline namespaces of their own, so one program may link both without two bodies
// under one name.
#if defined(SYNTHSAE_X86_BF16_CODE)
inline namespace bf16_with_units {
#else
inline namespace bf16_emulated_only {
#endif

/// Rounds op(X) (rows x cols of the stored matrix, or its transpose) to BF16 values held in FP32,
/// into a dense row-major copy.
inline void round_operand_to_bf16(bool trans, const RowMajorOperand<float>& x, std::vector<float>& out,
                                  std::size_t rows, std::size_t cols) {
  out.resize(rows * cols);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) {
      const float v = trans ? x.data[c * x.ld + r] : x.data[r * x.ld + c];
      out[r * cols + c] = bf16_to_float(float_to_bf16(v));
    }
}

/// BF16 GEMM by emulation: both operands rounded to BF16, then the FP32 host GEMM.
inline void host_gemm_bf16_emulated(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k,
                                    float alpha, const RowMajorOperand<float>& a, const RowMajorOperand<float>& b,
                                    float beta, const RowMajorOperand<float>& c, const float* row_init = nullptr) {
  std::vector<float> ra, rb;
  round_operand_to_bf16(trans_a, a, ra, m, k);
  round_operand_to_bf16(trans_b, b, rb, k, n);
  const RowMajorOperand<float> ar{ra.data(), m, k, std::max<std::size_t>(k, 1)};
  const RowMajorOperand<float> br{rb.data(), k, n, n};
  host_gemm<float>(false, false, m, n, k, alpha, ar, br, beta, c, row_init);
}

/// The units GemmMath::bf16 can run on, fastest first.
enum class HostBf16Unit { amx_tiles, avx512_bf16, emulated };

inline const char* host_bf16_unit_name(HostBf16Unit unit) {
  switch (unit) {
    case HostBf16Unit::amx_tiles: return "AMX tiles";
    case HostBf16Unit::avx512_bf16: return "AVX-512 BF16";
    default: return "emulated";
  }
}

/// Whether this processor has `unit` and the OS lets this process use it (whatever
/// SYNTHSAE_HOST_BF16 says: the tests run every unit there is).
inline bool host_bf16_unit_available(HostBf16Unit unit) {
  if (unit == HostBf16Unit::emulated) return true;
#if defined(SYNTHSAE_X86_BF16_CODE)
  static const x86_bf16::CpuBf16 cpu = x86_bf16::read_cpu_bf16();
  if (unit == HostBf16Unit::avx512_bf16) return cpu.avx512_bf16;
  static const bool tiles = cpu.amx_bf16 && x86_bf16::linux_grants_tiles();
  return tiles;
#else
  return false;
#endif
}

/// The fastest unit this processor has and the OS lets this process use, capped by
/// SYNTHSAE_HOST_BF16 (amx, avx512 or emulated; a value outside these is an error).
inline HostBf16Unit detect_host_bf16_unit() {
  HostBf16Unit cap = HostBf16Unit::amx_tiles;
  if (const char* v = std::getenv("SYNTHSAE_HOST_BF16"); v && *v) {
    const std::string_view text(v);
    if (text == "avx512")
      cap = HostBf16Unit::avx512_bf16;
    else if (text == "emulated")
      cap = HostBf16Unit::emulated;
    else if (text != "amx")
      throw ConfigError("SYNTHSAE_HOST_BF16", text, "choose amx, avx512 or emulated");
  }
  for (const HostBf16Unit unit : {HostBf16Unit::amx_tiles, HostBf16Unit::avx512_bf16})
    if (unit >= cap && host_bf16_unit_available(unit)) return unit;
  return HostBf16Unit::emulated;
}

/// Where this process's GemmMath::bf16 products run (decided on the first call).
inline HostBf16Unit host_bf16_unit() {
  static const HostBf16Unit unit = detect_host_bf16_unit();
  return unit;
}

/// C = alpha op(A) op(B) + beta C on one unit (the caller checked that it is available).
inline void host_gemm_bf16_on(HostBf16Unit unit, bool trans_a, bool trans_b, std::size_t m, std::size_t n,
                              std::size_t k, float alpha, const RowMajorOperand<float>& a,
                              const RowMajorOperand<float>& b, float beta, const RowMajorOperand<float>& c,
                              const float* row_init = nullptr) {
#if defined(SYNTHSAE_X86_BF16_CODE)
  if (k > 0 && unit == HostBf16Unit::amx_tiles)
    return x86_bf16::amx::gemm(trans_a, trans_b, m, n, k, alpha, a, b, beta, c, row_init);
  if (k > 0 && unit == HostBf16Unit::avx512_bf16)
    return x86_bf16::avx512::gemm(trans_a, trans_b, m, n, k, alpha, a, b, beta, c, row_init);
#endif
  (void)unit;
  host_gemm_bf16_emulated(trans_a, trans_b, m, n, k, alpha, a, b, beta, c, row_init);
}

/// C = alpha op(A) op(B) + beta C in BF16 arithmetic with FP32 accumulation (see the top of this file).
/// With row_init (n entries, not aliasing C), every row of C starts as row_init instead of beta C:
/// the bits of a fill of C then beta = 1 (gemm_onto_rows). The tile unit and the AVX-512 kernel take
/// it in place of C's start (adding it last in blocks they scale or clip), so C is only written;
/// the emulation fills each panel just before its FP32 product.
inline void host_gemm_bf16(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                           const RowMajorOperand<float>& a, const RowMajorOperand<float>& b, float beta,
                           const RowMajorOperand<float>& c, const float* row_init = nullptr) {
  host_gemm_bf16_on(host_bf16_unit(), trans_a, trans_b, m, n, k, alpha, a, b, beta, c, row_init);
}

}  // inline namespace
}  // namespace synthsae::gemm_impl

#if defined(SYNTHSAE_X86_BF16_CODE)
#undef SYNTHSAE_AVX512BF16_TARGET
#endif
#undef SYNTHSAE_X86_BF16_CODE
