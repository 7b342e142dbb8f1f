#pragma once
// Host GEMM in BF16 arithmetic with FP32 accumulation: GemmMath::bf16 on the CPU, the same
// contract as cuBLAS's CUBLAS_COMPUTE_32F_FAST_16BF on a GPU (each operand rounded to bfloat16,
// to nearest even; products exact in FP32; sums in FP32).
//
// Where the processor has AMX-BF16 (Intel Xeon from Sapphire Rapids on, and the Linux kernel
// grants the tile state), the product runs on its tile unit: op(A) and op(B) are packed into
// BF16 (B in the pairwise "VNNI" layout the tile multiply reads), and each 32 x 32 block of C is
// four 16 x 16 FP32 tiles summed over K in steps of 32. Elsewhere it is emulated: the operands
// are rounded to BF16 and multiplied by the FP32 host GEMM, which is exact arithmetic on the
// same rounded values and differs from the tile unit only in the order (and so the last bits)
// of its sums. Either way each entry's sum runs in an order fixed by the shape, so the bits do
// not depend on the thread count. The tile path's conversion flushes FP32 values below BF16's
// normal range to zero (and its products read denormal BF16 as zero); the emulation keeps them.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "synthsae/core/float16.hpp"
#include "synthsae/core/gemm_host.hpp"

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__CUDACC__)
#define SYNTHSAE_AMX_CODE 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace synthsae::gemm_impl {
// The two variants (with the tile path, and emulation only, as nvcc's translation units get it)
// live in inline namespaces of their own, so one program may link both without two bodies
// under one name.
#if defined(SYNTHSAE_AMX_CODE)
inline namespace bf16_with_tiles {
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
                                    float beta, const RowMajorOperand<float>& c) {
  std::vector<float> ra, rb;
  round_operand_to_bf16(trans_a, a, ra, m, k);
  round_operand_to_bf16(trans_b, b, rb, k, n);
  const RowMajorOperand<float> ar{ra.data(), m, k, std::max<std::size_t>(k, 1)};
  const RowMajorOperand<float> br{rb.data(), k, n, n};
  host_gemm<float>(false, false, m, n, k, alpha, ar, br, beta, c);
}

#if defined(SYNTHSAE_AMX_CODE)

namespace amx {

#define SYNTHSAE_AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16")))

inline constexpr std::size_t kBlock = 32;  // C block: 2 x 2 tiles of 16 x 16 FP32
inline constexpr std::size_t kStep = 32;   // K per tile multiply: 16 rows of BF16 pairs

inline std::size_t round_up(std::size_t x, std::size_t to) { return (x + to - 1) / to * to; }

/// Whether the processor has AMX-BF16 with AVX-512 BF16 conversions, the OS saves the tile
/// state (XCR0 bits 17, 18), and Linux lets this process use it (arch_prctl, once per process).
/// SYNTHSAE_NO_AMX set (to anything but 0) says no: the emulation runs instead.
inline bool detect() {
  if (const char* off = std::getenv("SYNTHSAE_NO_AMX"); off && *off && std::string_view(off) != "0") return false;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 0, a, b, c, d);
  const bool tile = (d >> 24) & 1u, bf16 = (d >> 22) & 1u, avx512f = (b >> 16) & 1u, avx512bw = (b >> 30) & 1u,
             avx512vl = (b >> 31) & 1u;
  if (a < 1) return false;  // no sub-leaf 1, so no AVX-512 BF16 conversions
  __cpuid_count(7, 1, a, b, c, d);
  const bool avx512bf16 = (a >> 5) & 1u;
  if (!(tile && bf16 && avx512f && avx512bw && avx512vl && avx512bf16)) return false;
  __cpuid(1, a, b, c, d);
  if (!((c >> 27) & 1u)) return false;  // OSXSAVE: XGETBV is usable
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 0x600e6u) != 0x600e6u) return false;  // SSE, AVX, AVX-512 and tile state all enabled
  constexpr long kRequestPermission = 0x1023, kTileData = 18;
  return syscall(SYS_arch_prctl, kRequestPermission, kTileData) == 0;
}

inline bool available() {
  static const bool yes = detect();
  return yes;
}

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

/// Up to 16 floats from p (the first `count`), rounded to BF16 to nearest even.
SYNTHSAE_AMX_TARGET inline __m256i bf16_lanes(const float* p, std::size_t count) {
  const __mmask16 mask = count >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << count) - 1u);
  return (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, p));
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

/// Bp = op(B) in pairs: for each group of 16 columns g, padded_k / 2 rows of 16 32-bit words,
/// word (p, c) = op(B)[2p][16g + c] in its low half and op(B)[2p + 1][16g + c] in its high half.
/// Groups [first_group, last_group).
SYNTHSAE_AMX_TARGET inline void pack_b(bool trans, const RowMajorOperand<float>& b, std::size_t k, std::size_t n,
                                       std::size_t padded_k, std::uint32_t* bp, std::size_t first_group,
                                       std::size_t last_group) {
  const std::size_t pairs = padded_k / 2;
  for (std::size_t g = first_group; g < last_group; ++g) {
    std::uint32_t* group = bp + g * pairs * 16;
    const std::size_t c0 = g * 16, count = c0 < n ? std::min<std::size_t>(16, n - c0) : 0;
    if (!trans) {
      for (std::size_t p = 0; p < pairs; ++p) {
        const std::size_t r = 2 * p;
        const __m256i lo = count && r < k ? bf16_lanes(b.data + r * b.ld + c0, count) : _mm256_setzero_si256();
        const __m256i hi = count && r + 1 < k ? bf16_lanes(b.data + (r + 1) * b.ld + c0, count) : _mm256_setzero_si256();
        const __m512i word = _mm512_or_si512(_mm512_cvtepu16_epi32(lo), _mm512_slli_epi32(_mm512_cvtepu16_epi32(hi), 16));
        _mm512_storeu_si512(group + p * 16, word);
      }
    } else {
      // op(B) = B^T: B's row c0 + c holds op(B)'s column; 32 of its entries make 16 pairs.
      std::fill(group, group + pairs * 16, 0u);
      alignas(64) std::uint32_t words[16];
      for (std::size_t c = 0; c < count; ++c) {
        const float* src = b.data + (c0 + c) * b.ld;
        for (std::size_t j = 0; j < k; j += 32) {
          const __m256i lo = bf16_lanes(src + j, k - j);
          const __m256i hi = j + 16 < k ? bf16_lanes(src + j + 16, k - j - 16) : _mm256_setzero_si256();
          // lo's 16 values are pairs 0..7 of this chunk, hi's pairs 8..15.
          _mm512_store_si512(words, _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
          for (std::size_t t = 0; t < 16; ++t) group[(j / 2 + t) * 16 + c] = words[t];
        }
      }
    }
  }
}

/// C[r0:r0+32, c0:c0+32] (clipped to m x n) = alpha * (Ap's rows r0.. times Bp's columns c0..)
/// + beta * C, the sums over K in steps of 32 in order (after C's value where it is the start).
SYNTHSAE_AMX_TARGET inline void block_product(const std::uint16_t* ap, const std::uint32_t* bp, std::size_t padded_k,
                                              std::size_t r0, std::size_t c0, std::size_t m, std::size_t n, float alpha,
                                              float beta, const RowMajorOperand<float>& c) {
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
  const bool whole = r0 + kBlock <= m && c0 + kBlock <= n && alpha == 1.0f && (beta == 0.0f || beta == 1.0f);
  if (whole && beta == 1.0f) {
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
    if (beta == 0.0f)  // beta == 0 never reads C (it may hold NaN)
      for (std::size_t j = 0; j < cols; ++j) dst[j] = alpha * src[j];
    else
      for (std::size_t j = 0; j < cols; ++j) dst[j] = alpha * src[j] + beta * dst[j];
  }
}

SYNTHSAE_AMX_TARGET inline void release_tiles() { _tile_release(); }

/// Packing buffers kept between calls (per calling thread; they keep the largest size asked).
struct Buffers {
  std::vector<std::uint16_t> a;
  std::vector<std::uint32_t> b;
};
inline Buffers& buffers() {
  static thread_local Buffers kept;
  return kept;
}

/// Rows and columns of C per work item (multiples of the 32 x 32 block). Slicing K further so
/// that a block's operands stay in L1 made no measurable difference at 1,024 x 768 x 4,096.
inline constexpr std::size_t kItemRows = 256, kItemColumns = 256;

/// The first 64-byte boundary in v after resizing it to hold `count` elements past it: a tile
/// row that straddles two cache lines halves the tile unit's speed (measured: 17 against 7 ns
/// per tile product with 16-byte-aligned operands).
template <class T>
T* aligned_start(std::vector<T>& v, std::size_t count) {
  v.resize(count + 64 / sizeof(T));
  const auto address = reinterpret_cast<std::uintptr_t>(v.data());
  return v.data() + ((64 - address % 64) % 64) / sizeof(T);
}

inline void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                 const RowMajorOperand<float>& a, const RowMajorOperand<float>& b, float beta,
                 const RowMajorOperand<float>& c) {
  const std::size_t pm = round_up(m, kBlock), pn = round_up(n, kBlock), pk = round_up(k, kStep);
  Buffers& buf = buffers();
  std::uint16_t* ap = aligned_start(buf.a, pm * pk);
  std::uint32_t* bp = aligned_start(buf.b, pn / 16 * (pk / 2) * 16);
  const std::size_t a_items = pm / kBlock, b_items = pn / 16;
  const std::size_t row_items = (pm + kItemRows - 1) / kItemRows, col_items = (pn + kItemColumns - 1) / kItemColumns;
  const long items = static_cast<long>(row_items * col_items);
  auto pack = [&](long i) {
    if (i < static_cast<long>(a_items))
      pack_a(trans_a, a, m, k, pk, ap, std::size_t(i) * kBlock, std::size_t(i + 1) * kBlock);
    else
      pack_b(trans_b, b, k, n, pk, bp, std::size_t(i) - a_items, std::size_t(i) - a_items + 1);
  };
  auto compute = [&](long item) {
    // Column-major over items: the items of one column panel (one slice of Bp) run together.
    const std::size_t col = std::size_t(item) / row_items, row = std::size_t(item) % row_items;
    const std::size_t first_r = row * kItemRows, first_c = col * kItemColumns;
    const std::size_t r_end = std::min(pm, first_r + kItemRows), c_end = std::min(pn, first_c + kItemColumns);
    for (std::size_t r0 = first_r; r0 < r_end; r0 += kBlock)  // a row of blocks reuses A's rows
      for (std::size_t c0 = first_c; c0 < c_end; c0 += kBlock) block_product(ap, bp, pk, r0, c0, m, n, alpha, beta, c);
  };
  const long pack_items = static_cast<long>(a_items + b_items);
#ifdef _OPENMP
  // The tile unit is ~5x the FP32 product, so a team pays off only from ~8x the FP32 threshold.
  const bool worth_a_team = double(m) * double(n) * double(k) >= 8 * gemm_parallel_min_work;
  const int team = worth_a_team ? static_cast<int>(std::min<long>(items, omp_get_max_threads())) : 1;
#pragma omp parallel num_threads(team)
  {
#pragma omp for schedule(dynamic, 8)
    for (long i = 0; i < pack_items; ++i) pack(i);
    configure_tiles();
#pragma omp for schedule(dynamic, 1)
    for (long i = 0; i < items; ++i) compute(i);
    release_tiles();
  }
#else
  for (long i = 0; i < pack_items; ++i) pack(i);
  configure_tiles();
  for (long i = 0; i < items; ++i) compute(i);
  release_tiles();
#endif
}

#undef SYNTHSAE_AMX_TARGET

}  // namespace amx

/// Whether GemmMath::bf16 runs on this processor's AMX tile unit (otherwise it is emulated).
inline bool host_bf16_tiles_available() { return amx::available(); }

#else

inline bool host_bf16_tiles_available() { return false; }

#endif

/// C = alpha op(A) op(B) + beta C in BF16 arithmetic with FP32 accumulation (see the top of this file).
inline void host_gemm_bf16(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                           const RowMajorOperand<float>& a, const RowMajorOperand<float>& b, float beta,
                           const RowMajorOperand<float>& c) {
#if defined(SYNTHSAE_AMX_CODE)
  if (k > 0 && amx::available()) {
    amx::gemm(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
    return;
  }
#endif
  host_gemm_bf16_emulated(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
}

}  // inline namespace
}  // namespace synthsae::gemm_impl

#undef SYNTHSAE_AMX_CODE
