#pragma once
// What the BF16 host kernels (gemm_bf16_amx.hpp, gemm_bf16_avx512.hpp) share: which BF16 units
// this x86-64 processor has and Linux lets a process use, and the packing of op(B) into the
// pairwise ("VNNI") layout that both the tile multiply and VDPBF16PS read. Only for x86-64 Linux
// with GCC or Clang, outside nvcc's translation units (gemm_bf16_host.hpp includes it there).
// Every function that uses AVX-512 carries a target attribute, so a generic build holds the code
// and runs it only where the processor says it has the instructions.
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "synthsae/core/gemm_host.hpp"

#define SYNTHSAE_AVX512BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))

namespace synthsae::gemm_impl::x86_bf16 {

inline constexpr std::size_t kStep = 32;  // K is padded to a multiple of this (16 BF16 pairs)

inline std::size_t round_up(std::size_t x, std::size_t to) { return (x + to - 1) / to * to; }

/// What CPUID and XCR0 say of the BF16 units.
struct CpuBf16 {
  bool avx512_bf16 = false;  ///< AVX-512 F/BW/VL and BF16 (VDPBF16PS, VCVTNEPS2BF16), ZMM state saved
  bool amx_bf16 = false;     ///< also the AMX tile unit with BF16, tile state saved by the OS
};

inline CpuBf16 read_cpu_bf16() {
  CpuBf16 cpu;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return cpu;
  __cpuid(1, a, b, c, d);
  if (!((c >> 27) & 1u) || !((c >> 12) & 1u)) return cpu;  // OSXSAVE (XGETBV is usable), FMA
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  __cpuid_count(7, 0, a, b, c, d);
  const unsigned sub_leaves = a;
  const bool avx512 = ((b >> 16) & 1u) && ((b >> 30) & 1u) && ((b >> 31) & 1u);  // F, BW, VL
  const bool tile = (d >> 24) & 1u, tile_bf16 = (d >> 22) & 1u;
  if (sub_leaves < 1) return cpu;  // no sub-leaf 1, so no AVX-512 BF16
  __cpuid_count(7, 1, a, b, c, d);
  cpu.avx512_bf16 = avx512 && ((a >> 5) & 1u) && (lo & 0xe6u) == 0xe6u;  // SSE, AVX, opmask, ZMM state
  cpu.amx_bf16 = cpu.avx512_bf16 && tile && tile_bf16 && (lo & 0x60000u) == 0x60000u;  // tile config and data
  return cpu;
}

/// Linux hands a process the AMX tile state only on request (once per process).
inline bool linux_grants_tiles() {
  constexpr long kRequestPermission = 0x1023, kTileData = 18;
  return syscall(SYS_arch_prctl, kRequestPermission, kTileData) == 0;
}

/// Up to 16 floats from p (the first `count`), rounded to BF16 to nearest even.
SYNTHSAE_AVX512BF16_TARGET inline __m256i bf16_lanes(const float* p, std::size_t count) {
  const __mmask16 mask = count >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << count) - 1u);
  return (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, p));
}

/// 16 words from two rows of 16 BF16 values: word i = lo[i] in its low half, hi[i] in its high half.
SYNTHSAE_AVX512BF16_TARGET inline __m512i bf16_pairs(__m256i lo, __m256i hi) {
  return _mm512_or_si512(_mm512_cvtepu16_epi32(lo), _mm512_slli_epi32(_mm512_cvtepu16_epi32(hi), 16));
}

/// Bp = op(B) in pairs: for each group of 16 columns g, padded_k / 2 rows of 16 32-bit words,
/// word (p, c) = op(B)[2p][16g + c] in its low half and op(B)[2p + 1][16g + c] in its high half;
/// zero past k and n. Groups [first_group, last_group); padded_k a multiple of kStep.
SYNTHSAE_AVX512BF16_TARGET inline void pack_b_pairs(bool trans, const RowMajorOperand<float>& b, std::size_t k,
                                                    std::size_t n, std::size_t padded_k, std::uint32_t* bp,
                                                    std::size_t first_group, std::size_t last_group) {
  const std::size_t pairs = padded_k / 2;
  for (std::size_t g = first_group; g < last_group; ++g) {
    std::uint32_t* group = bp + g * pairs * 16;
    const std::size_t c0 = g * 16, count = c0 < n ? std::min<std::size_t>(16, n - c0) : 0;
    if (!trans) {
      for (std::size_t p = 0; p < pairs; ++p) {
        const std::size_t r = 2 * p;
        const __m256i lo = count && r < k ? bf16_lanes(b.data + r * b.ld + c0, count) : _mm256_setzero_si256();
        const __m256i hi = count && r + 1 < k ? bf16_lanes(b.data + (r + 1) * b.ld + c0, count) : _mm256_setzero_si256();
        _mm512_storeu_si512(group + p * 16, bf16_pairs(lo, hi));
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

/// Packing buffers kept between calls (per calling thread; they keep the largest size asked).
struct PackBuffers {
  std::vector<std::uint16_t> a16;
  std::vector<std::uint32_t> a32, b;
};
inline PackBuffers& pack_buffers() {
  static thread_local PackBuffers kept;
  return kept;
}

/// The first 64-byte boundary in v after resizing it to hold `count` elements past it: an operand
/// row that straddles two cache lines halves the tile unit's speed (measured: 17 against 7 ns
/// per tile product with 16-byte-aligned operands), and aligned loads need it too.
template <class T>
T* aligned_start(std::vector<T>& v, std::size_t count) {
  v.resize(count + 64 / sizeof(T));
  const auto address = reinterpret_cast<std::uintptr_t>(v.data());
  return v.data() + ((64 - address % 64) % 64) / sizeof(T);
}

/// C's padded rows x cols cut into work items of item_rows x item_cols, numbered column-major: the
/// items of one column panel (one slice of the packed op(B)) run one after another.
struct ItemGrid {
  std::size_t rows, cols, item_rows, item_cols;
  std::size_t row_items() const { return (rows + item_rows - 1) / item_rows; }
  long count() const { return static_cast<long>(row_items() * ((cols + item_cols - 1) / item_cols)); }
  /// Item `item`'s rows [r0, r_end) and columns [c0, c_end).
  struct Range {
    std::size_t r0, r_end, c0, c_end;
  };
  Range range(long item) const {
    const std::size_t col = std::size_t(item) / row_items(), row = std::size_t(item) % row_items();
    const std::size_t r0 = row * item_rows, c0 = col * item_cols;
    return {r0, std::min(rows, r0 + item_rows), c0, std::min(cols, c0 + item_cols)};
  }
};

/// The driver both kernels share: pack(i) for i < pack_items, then compute(i) for i < items, each
/// loop shared by a team of threads once the product has at least min_work multiply-adds (one
/// thread below that: a team costs more than it saves). Every member runs enter() before its
/// first compute() and leave() after its last (the tile unit's configuration is per thread).
template <class Pack, class Compute, class Enter, class Leave>
void pack_then_compute(double multiply_adds, double min_work, long pack_items, long items, const Pack& pack,
                       const Compute& compute, const Enter& enter, const Leave& leave) {
#ifdef _OPENMP
  const int team = multiply_adds >= min_work ? static_cast<int>(std::min<long>(items, omp_get_max_threads())) : 1;
#pragma omp parallel num_threads(team)
  {
#pragma omp for schedule(dynamic, 8)
    for (long i = 0; i < pack_items; ++i) pack(i);
    enter();
#pragma omp for schedule(dynamic, 1)
    for (long i = 0; i < items; ++i) compute(i);
    leave();
  }
#else
  (void)multiply_adds, (void)min_work;
  for (long i = 0; i < pack_items; ++i) pack(i);
  enter();
  for (long i = 0; i < items; ++i) compute(i);
  leave();
#endif
}

}  // namespace synthsae::gemm_impl::x86_bf16
