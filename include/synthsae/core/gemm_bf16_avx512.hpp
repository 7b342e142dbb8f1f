#pragma once
// GemmMath::bf16 on processors with AVX-512 BF16 but no tile unit (AMD Zen 4 and later, Intel
// Cooper Lake): VDPBF16PS multiplies 16 pairs of BF16 values and adds both exact products to 16
// FP32 sums, twice the multiply-adds of an FP32 FMA of the same width. op(A) is packed into
// panels of kRows rows, each K pair of a row one 32-bit word (broadcast to all lanes); op(B) into
// the pairwise layout (gemm_bf16_x86.hpp). Each kRows x 32 block of C is 2 * kRows registers
// of sums, over K in one order fixed by the shape: the bits do not depend on the thread count.
// The instruction reads BF16 denormals as zero and flushes denormal results, as the tile unit does.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "synthsae/core/gemm_bf16_x86.hpp"

namespace synthsae::gemm_impl::x86_bf16::avx512 {

inline constexpr std::size_t kRows = 12;     // rows of C per block: 24 of the 32 vector registers hold sums
inline constexpr std::size_t kColumns = 32;  // two groups of 16 in op(B)'s pairwise layout

/// Ap: for each panel of kRows rows of op(A), padded_k / 2 rows of kRows words, word (p, r) =
/// op(A)[r][2p] in its low half and op(A)[r][2p + 1] in its high half; zero past m and k.
/// Panels [first, last).
SYNTHSAE_AVX512BF16_TARGET inline void pack_a_pairs(bool trans, const RowMajorOperand<float>& a, std::size_t m,
                                                    std::size_t k, std::size_t padded_k, std::uint32_t* ap,
                                                    std::size_t first, std::size_t last) {
  const std::size_t pairs = padded_k / 2;
  for (std::size_t panel = first; panel < last; ++panel) {
    std::uint32_t* out = ap + panel * pairs * kRows;
    const std::size_t r0 = panel * kRows, rows = r0 < m ? std::min(kRows, m - r0) : 0;
    if (trans) {
      // op(A) = A^T: A's rows 2p and 2p + 1 hold the pair for every r; kRows of them per store.
      const __mmask16 keep = __mmask16((1u << kRows) - 1u);
      for (std::size_t p = 0; p < pairs; ++p) {
        const std::size_t j = 2 * p;
        const __m256i lo = rows && j < k ? bf16_lanes(a.data + j * a.ld + r0, rows) : _mm256_setzero_si256();
        const __m256i hi = rows && j + 1 < k ? bf16_lanes(a.data + (j + 1) * a.ld + r0, rows) : _mm256_setzero_si256();
        _mm512_mask_storeu_epi32(out + p * kRows, keep, bf16_pairs(lo, hi));
      }
      continue;
    }
    // op(A) = A: 16 consecutive values of a row are 8 pairs, stored kRows words apart.
    alignas(32) std::uint32_t words[8];
    for (std::size_t r = 0; r < kRows; ++r) {
      const float* src = r < rows ? a.data + (r0 + r) * a.ld : nullptr;
      for (std::size_t j = 0; j < padded_k; j += 16) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(words),
                           src && j < k ? bf16_lanes(src + j, k - j) : _mm256_setzero_si256());
        for (std::size_t t = 0; t < 8; ++t) out[(j / 2 + t) * kRows + r] = words[t];
      }
    }
  }
}

/// C[r0 : r0 + kRows, c0 : c0 + 32] (clipped to `rows` x `cols`) = alpha * (the panel times the two
/// column groups) + beta * C. With alpha = 1 and beta = 1 the sums start from C (the step's
/// h = b_enc + x W_enc); otherwise from zero, and beta = 0 never reads C (it may hold NaN).
/// With `init` (the block's `cols` entries of a row, up to 32), every row starts as init instead of
/// C (beta 1), or adds it last where alpha is not 1.
SYNTHSAE_AVX512BF16_TARGET inline void block_product(const std::uint32_t* a_panel, const std::uint32_t* b0,
                                                     const std::uint32_t* b1, std::size_t pairs, float* out,
                                                     std::size_t ldc, std::size_t rows, std::size_t cols, float alpha,
                                                     float beta, const float* init) {
  const __mmask16 m0 = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1u);
  const __mmask16 m1 = cols >= 32 ? __mmask16(0xFFFF) : cols > 16 ? __mmask16((1u << (cols - 16)) - 1u) : __mmask16(0);
  if (init != nullptr) beta = 1.0f;
  const bool from_c = alpha == 1.0f && beta == 1.0f;
  __m512 sum[kRows][2];
#pragma GCC unroll 12
  for (std::size_t r = 0; r < kRows; ++r) {
    const bool load = from_c && r < rows;
    const float* start = init != nullptr ? init : out + r * ldc;
    sum[r][0] = load ? _mm512_maskz_loadu_ps(m0, start) : _mm512_setzero_ps();
    sum[r][1] = load ? _mm512_maskz_loadu_ps(m1, start + 16) : _mm512_setzero_ps();
  }
  for (std::size_t p = 0; p < pairs; ++p) {
    const __m512bh x0 = (__m512bh)_mm512_load_si512(b0 + p * 16);
    const __m512bh x1 = (__m512bh)_mm512_load_si512(b1 + p * 16);
    const std::uint32_t* words = a_panel + p * kRows;
#pragma GCC unroll 12
    for (std::size_t r = 0; r < kRows; ++r) {
      const __m512bh w = (__m512bh)_mm512_set1_epi32(static_cast<int>(words[r]));
      sum[r][0] = _mm512_dpbf16_ps(sum[r][0], w, x0);
      sum[r][1] = _mm512_dpbf16_ps(sum[r][1], w, x1);
    }
  }
  const __m512 a_scale = _mm512_set1_ps(alpha), b_scale = _mm512_set1_ps(beta);
  // Unrolled over every row of the block (a loop to `rows` would index the sums at run time
  // and keep them in memory).
#pragma GCC unroll 12
  for (std::size_t r = 0; r < kRows; ++r) {
    if (r >= rows) break;
    float* dst = out + r * ldc;
    for (int half = 0; half < 2; ++half) {
      const __mmask16 mask = half ? m1 : m0;
      __m512 v = sum[r][half];
      if (!from_c) {
        v = _mm512_mul_ps(a_scale, v);
        const float* addend = init != nullptr ? init : dst;
        if (beta != 0.0f) v = _mm512_fmadd_ps(b_scale, _mm512_maskz_loadu_ps(mask, addend + 16 * half), v);
      }
      _mm512_mask_storeu_ps(dst + 16 * half, mask, v);
    }
  }
}

/// Rows and columns of C per work item (multiples of the block).
inline constexpr std::size_t kItemRows = 20 * kRows, kItemColumns = 8 * kColumns;

inline void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                 const RowMajorOperand<float>& a, const RowMajorOperand<float>& b, float beta,
                 const RowMajorOperand<float>& c, const float* row_init) {
  const std::size_t pm = round_up(m, kRows), pn = round_up(n, kColumns), pk = round_up(k, kStep), pairs = pk / 2;
  PackBuffers& buf = pack_buffers();
  std::uint32_t* ap = aligned_start(buf.a32, pm * pairs);
  std::uint32_t* bp = aligned_start(buf.b, pn * pairs);
  const std::size_t a_panels = pm / kRows, b_groups = pn / 16;
  const ItemGrid grid{pm, pn, kItemRows, kItemColumns};
  auto pack = [&](long i) {
    if (i < static_cast<long>(a_panels))
      pack_a_pairs(trans_a, a, m, k, pk, ap, std::size_t(i), std::size_t(i) + 1);
    else
      pack_b_pairs(trans_b, b, k, n, pk, bp, std::size_t(i) - a_panels, std::size_t(i) - a_panels + 1);
  };
  auto compute = [&](long item) {
    // Inside an item, each pair of B groups (48 KB at K = 768) serves every row panel.
    const ItemGrid::Range at = grid.range(item);
    for (std::size_t c0 = at.c0; c0 < at.c_end && c0 < n; c0 += kColumns) {
      const std::uint32_t* b0 = bp + (c0 / 16) * pairs * 16;
      for (std::size_t r0 = at.r0; r0 < at.r_end && r0 < m; r0 += kRows)
        block_product(ap + (r0 / kRows) * pairs * kRows, b0, b0 + pairs * 16, pairs, c.data + r0 * c.ld + c0, c.ld,
                      std::min(kRows, m - r0), std::min(kColumns, n - c0), alpha, beta,
                      row_init != nullptr ? row_init + c0 : nullptr);
    }
  };
  // About twice the FP32 product's multiply-adds per cycle, so a team from twice its threshold.
  const auto nothing = [] {};
  pack_then_compute(double(m) * double(n) * double(k), 2 * gemm_parallel_min_work,
                    static_cast<long>(a_panels + b_groups), grid.count(), pack, compute, nothing, nothing);
}

}  // namespace synthsae::gemm_impl::x86_bf16::avx512
