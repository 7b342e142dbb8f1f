#pragma once
// GemmMath::bf16 on the AMX tile unit (Intel Xeon from Sapphire Rapids on): op(A) and op(B) are
// packed into BF16 (B in the pairwise layout the tile multiply reads, gemm_bf16_x86.hpp), and
// each 32 x 32 block of C is four 16 x 16 FP32 tiles summed over K in steps of 32, in an order
// fixed by the shape. The caller checks that the processor has the unit and Linux granted it
// (gemm_bf16_host.hpp). The tile multiply reads BF16 denormals as zero and flushes denormal sums.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "synthsae/core/gemm_bf16_x86.hpp"

namespace synthsae::gemm_impl::x86_bf16::amx {

#define SYNTHSAE_AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16,fma")))

inline constexpr std::size_t kBlock = 32;  // C block: 2 x 2 tiles of 16 x 16 FP32

struct alignas(64) TileConfig {
  std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
  std::uint16_t bytes_per_row[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  std::uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};

/// Tiles 0-3: the C block's four 16 x 16 FP32 tiles; 4, 5: two 16 x 32 BF16 slices of A;
/// 6, 7: two 16-pair x 16 BF16 slices of B. Every tile is 16 rows of 64 bytes. The
/// configuration is static: the compiler's ldtilecfg names only the first 8 bytes of its operand,
/// so a configuration built on the stack could lose its other stores.
SYNTHSAE_AMX_TARGET inline void configure_tiles() {
  static const TileConfig config;
  _tile_loadconfig(&config);
}

/// Where op(A)[r][j] sits in Ap: tile by tile, each tile (16 rows of 32 BF16, 1 KB) contiguous,
/// a row group's tiles in K order, so that each tile load reads 1 KB in sequence.
inline std::size_t a_offset(std::size_t r, std::size_t j, std::size_t padded_k) {
  return (((r / 16) * (padded_k / kStep) + j / kStep) * 16 + r % 16) * kStep + j % kStep;
}

/// Ap (padded_m x padded_k BF16 in a_offset's order, zero padding) = op(A) rows [first, last),
/// `first` a multiple of 16.
SYNTHSAE_AMX_TARGET inline void pack_a(bool trans, const RowMajorOperand<float>& a, std::size_t m, std::size_t k,
                                       std::size_t padded_k, std::uint16_t* ap, std::size_t first, std::size_t last) {
  for (std::size_t r = first; r < last; ++r) {
    if (r >= m || trans) {  // padding; or filled below, column by column
      for (std::size_t j = 0; j < padded_k; j += kStep) std::fill_n(ap + a_offset(r, j, padded_k), kStep, std::uint16_t(0));
      continue;
    }
    const float* src = a.data + r * a.ld;
    for (std::size_t j = 0; j < padded_k; j += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(ap + a_offset(r, j, padded_k)),
                          j < k ? bf16_lanes(src + j, k - j) : _mm256_setzero_si256());
  }
  if (!trans) return;
  // op(A) = A^T: A's row j holds op(A)'s column j; convert 16 of its entries at a time.
  alignas(32) std::uint16_t lanes[16];
  for (std::size_t j = 0; j < k; ++j) {
    const float* src = a.data + j * a.ld;
    for (std::size_t r = first; r < std::min(last, m); r += 16) {
      const std::size_t count = std::min<std::size_t>(16, std::min(last, m) - r);
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), bf16_lanes(src + r, count));
      for (std::size_t t = 0; t < count; ++t) ap[a_offset(r + t, j, padded_k)] = lanes[t];
    }
  }
}

/// C[r0:r0+32, c0:c0+32] (clipped to m x n) = alpha * (Ap's rows r0.. times Bp's columns c0..)
/// + beta * C, the sums over K in steps of 32 in order (after C's value where it is the start).
/// With row_init, every row of C starts as row_init instead (beta is then 1 and C is not read).
SYNTHSAE_AMX_TARGET inline void block_product(const std::uint16_t* ap, const std::uint32_t* bp, std::size_t padded_k,
                                              std::size_t r0, std::size_t c0, std::size_t m, std::size_t n, float alpha,
                                              float beta, const RowMajorOperand<float>& c, const float* row_init) {
  const std::size_t pairs = padded_k / 2, a_stride = kStep * sizeof(std::uint16_t);
  const std::uint16_t* a0 = ap + a_offset(r0, 0, padded_k);
  const std::uint16_t* a1 = ap + a_offset(r0 + 16, 0, padded_k);
  const std::uint32_t* b0 = bp + (c0 / 16) * pairs * 16;
  const std::uint32_t* b1 = b0 + pairs * 16;
  const std::size_t c_stride = c.ld * sizeof(float);
  float* out = c.data + r0 * c.ld + c0;
  // GCC's tile loads and stores are asm statements that name no memory: tell the compiler that
  // memory is read and written here (the packed operands, C).
  __asm__ volatile("" ::: "memory");
  // Whole blocks with alpha = 1 and beta 0 or 1 (the step's h = b_enc + x W_enc) start from zero
  // or from C and go straight back to C; the others through a 32 x 32 buffer. With beta = 1 a
  // whole block adds C first and a clipped one last, so an entry's last bits depend on whether
  // its block is whole (on the shape, never on the thread count).
  // row_init's tiles are loaded with a stride of 0 (every row from the same 64 bytes): the bits of
  // a fill of C then a load from it, without writing and reading C in between.
  if (row_init != nullptr) beta = 1.0f;
  const bool whole = r0 + kBlock <= m && c0 + kBlock <= n && alpha == 1.0f && (beta == 0.0f || beta == 1.0f);
  if (whole && row_init != nullptr) {
    _tile_loadd(0, row_init + c0, 0);
    _tile_loadd(1, row_init + c0 + 16, 0);
    _tile_loadd(2, row_init + c0, 0);
    _tile_loadd(3, row_init + c0 + 16, 0);
  } else if (whole && beta == 1.0f) {
    _tile_loadd(0, out, c_stride);
    _tile_loadd(1, out + 16, c_stride);
    _tile_loadd(2, out + 16 * c.ld, c_stride);
    _tile_loadd(3, out + 16 * c.ld + 16, c_stride);
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  for (std::size_t j = 0; j < padded_k; j += kStep) {
    // Each operand tile is loaded right after the last product that read its previous
    // contents: tile registers are not renamed, so a load waits for those products.
    _tile_loadd(4, a0 + j * 16, a_stride);
    _tile_loadd(6, b0 + (j / 2) * 16, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_loadd(7, b1 + (j / 2) * 16, 64);
    _tile_dpbf16ps(1, 4, 7);
    _tile_loadd(5, a1 + j * 16, a_stride);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  if (whole) {
    _tile_stored(0, out, c_stride);
    _tile_stored(1, out + 16, c_stride);
    _tile_stored(2, out + 16 * c.ld, c_stride);
    _tile_stored(3, out + 16 * c.ld + 16, c_stride);
    __asm__ volatile("" ::: "memory");
    return;
  }
  alignas(64) float block[kBlock * kBlock];
  _tile_stored(0, block, kBlock * sizeof(float));
  _tile_stored(1, block + 16, kBlock * sizeof(float));
  _tile_stored(2, block + 16 * kBlock, kBlock * sizeof(float));
  _tile_stored(3, block + 16 * kBlock + 16, kBlock * sizeof(float));
  __asm__ volatile("" ::: "memory");
  const std::size_t rows = std::min(kBlock, m - r0), cols = std::min(kBlock, n - c0);
  for (std::size_t r = 0; r < rows; ++r) {
    float* dst = out + r * c.ld;
    const float* src = block + r * kBlock;
    // One expression adds C or row_init (beta 1), so both round alike whatever the compiler fuses.
    const float* addend = row_init != nullptr ? row_init + c0 : dst;
    if (beta == 0.0f)  // beta == 0 never reads C (it may hold NaN)
      for (std::size_t j = 0; j < cols; ++j) dst[j] = alpha * src[j];
    else
      for (std::size_t j = 0; j < cols; ++j) dst[j] = alpha * src[j] + beta * addend[j];
  }
}

SYNTHSAE_AMX_TARGET inline void release_tiles() { _tile_release(); }

/// Rows and columns of C per work item (multiples of the 32 x 32 block). Slicing K further so
/// that a block's operands stay in L1 made no measurable difference at 1,024 x 768 x 4,096.
inline constexpr std::size_t kItemRows = 256, kItemColumns = 256;

inline void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                 const RowMajorOperand<float>& a, const RowMajorOperand<float>& b, float beta,
                 const RowMajorOperand<float>& c, const float* row_init) {
  const std::size_t pm = round_up(m, kBlock), pn = round_up(n, kBlock), pk = round_up(k, kStep);
  PackBuffers& buf = pack_buffers();
  std::uint16_t* ap = aligned_start(buf.a16, pm * pk);
  std::uint32_t* bp = aligned_start(buf.b, pn / 16 * (pk / 2) * 16);
  const std::size_t a_items = pm / kBlock, b_items = pn / 16;
  const ItemGrid grid{pm, pn, kItemRows, kItemColumns};
  auto pack = [&](long i) {
    if (i < static_cast<long>(a_items))
      pack_a(trans_a, a, m, k, pk, ap, std::size_t(i) * kBlock, std::size_t(i + 1) * kBlock);
    else
      pack_b_pairs(trans_b, b, k, n, pk, bp, std::size_t(i) - a_items, std::size_t(i) - a_items + 1);
  };
  auto compute = [&](long item) {
    const ItemGrid::Range at = grid.range(item);
    for (std::size_t r0 = at.r0; r0 < at.r_end; r0 += kBlock)  // a row of blocks reuses A's rows
      for (std::size_t c0 = at.c0; c0 < at.c_end; c0 += kBlock)
        block_product(ap, bp, pk, r0, c0, m, n, alpha, beta, c, row_init);
  };
  // The tile unit is ~5x the FP32 product, so a team pays off only from ~8x the FP32 threshold.
  pack_then_compute(double(m) * double(n) * double(k), 8 * gemm_parallel_min_work, static_cast<long>(a_items + b_items),
                    grid.count(), pack, compute, configure_tiles, release_tiles);
}

#undef SYNTHSAE_AMX_TARGET

}  // namespace synthsae::gemm_impl::x86_bf16::amx
