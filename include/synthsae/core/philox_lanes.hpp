#pragma once
// Philox-4x32-10 for many counters of one (seed, stream) at once, for the host sampler's
// blocks of features: the same rounds as philox4x32_10, lane by lane. With AVX2 (not under
// nvcc) eight lanes run in one register with vpmuludq; GCC does not vectorise the 32x32 -> 64
// products of the plain lane loop by itself (measured: scalar imul in the hot loop). A 16-lane
// AVX-512 form was tried and was not faster here (zmm integer multiplies lower the clock).
#include <cstdint>

#include "synthsae/core/backend.hpp"

#if defined(__AVX2__) && !defined(__CUDACC__)
#include <immintrin.h>
#define SYNTHSAE_PHILOX_AVX2 1
#endif

namespace synthsae {
namespace detail {

inline constexpr std::uint32_t kPhiloxMul0 = 0xD2511F53u, kPhiloxMul1 = 0xCD9E8D57u;
inline constexpr std::uint32_t kPhiloxWeyl0 = 0x9E3779B9u, kPhiloxWeyl1 = 0xBB67AE85u;

/// The four words of philox4x32_10({c[l], c_hi, stream_lo, stream_hi}, seed) for L lanes, word j
/// of lane l in w[j][l], as plain lane loops (the device path, and the host without AVX2).
template <int L>
SYNTHSAE_HD void philox_lanes_plain(std::uint64_t seed, std::uint64_t stream, const std::uint32_t* c,
                                    std::uint32_t c_hi, std::uint32_t* const w[4]) {
  std::uint32_t x0[L], x1[L], x2[L], x3[L];
  for (int l = 0; l < L; ++l) {
    x0[l] = c[l], x1[l] = c_hi;
    x2[l] = static_cast<std::uint32_t>(stream), x3[l] = static_cast<std::uint32_t>(stream >> 32);
  }
  std::uint32_t k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    if (round > 0) k0 += kPhiloxWeyl0, k1 += kPhiloxWeyl1;
    for (int l = 0; l < L; ++l) {
      const std::uint64_t p0 = static_cast<std::uint64_t>(kPhiloxMul0) * x0[l];
      const std::uint64_t p1 = static_cast<std::uint64_t>(kPhiloxMul1) * x2[l];
      const std::uint32_t n0 = static_cast<std::uint32_t>(p1 >> 32) ^ x1[l] ^ k0;
      const std::uint32_t n2 = static_cast<std::uint32_t>(p0 >> 32) ^ x3[l] ^ k1;
      x1[l] = static_cast<std::uint32_t>(p1), x3[l] = static_cast<std::uint32_t>(p0);
      x0[l] = n0, x2[l] = n2;
    }
  }
  for (int l = 0; l < L; ++l) w[0][l] = x0[l], w[1][l] = x1[l], w[2][l] = x2[l], w[3][l] = x3[l];
}

#if defined(SYNTHSAE_PHILOX_AVX2)
/// hi and lo 32-bit halves of m * x for the eight lanes of x (m in every even 32-bit slot).
inline void mulhilo_x8(__m256i m, __m256i x, __m256i& hi, __m256i& lo) {
  const __m256i even = _mm256_mul_epu32(x, m);                         // lanes 0, 2, 4, 6
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), m);  // lanes 1, 3, 5, 7
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

/// One job of philox_x8_jobs: eight counters (c_hi << 32) | c[l] of a stream, words into w[0..3][l].
struct PhiloxJob8 {
  std::uint64_t stream;
  const std::uint32_t* c;
  std::uint32_t* w[4];
};

/// G philox_x8 jobs with their rounds interleaved: one job's ten rounds are a chain of dependent
/// multiplies, so G independent chains keep the multiplier busy (measured on the host sampler).
template <int G>
inline void philox_x8_jobs(std::uint64_t seed, std::uint32_t c_hi, const PhiloxJob8* jobs) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kPhiloxMul0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(kPhiloxMul1));
  __m256i x0[G], x1[G], x2[G], x3[G];
  for (int g = 0; g < G; ++g) {
    x0[g] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(jobs[g].c));
    x1[g] = _mm256_set1_epi32(static_cast<int>(c_hi));
    x2[g] = _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(jobs[g].stream)));
    x3[g] = _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(jobs[g].stream >> 32)));
  }
  std::uint32_t k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    if (round > 0) k0 += kPhiloxWeyl0, k1 += kPhiloxWeyl1;
    const __m256i key0 = _mm256_set1_epi32(static_cast<int>(k0)), key1 = _mm256_set1_epi32(static_cast<int>(k1));
    for (int g = 0; g < G; ++g) {
      __m256i hi0, lo0, hi1, lo1;
      mulhilo_x8(m0, x0[g], hi0, lo0);
      mulhilo_x8(m1, x2[g], hi1, lo1);
      const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, x1[g]), key0);
      const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, x3[g]), key1);
      x1[g] = lo1, x3[g] = lo0, x0[g] = n0, x2[g] = n2;
    }
  }
  for (int g = 0; g < G; ++g) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(jobs[g].w[0]), x0[g]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(jobs[g].w[1]), x1[g]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(jobs[g].w[2]), x2[g]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(jobs[g].w[3]), x3[g]);
  }
}

/// philox_lanes_plain for the eight lanes at `offset`: one job.
inline void philox_x8(std::uint64_t seed, std::uint64_t stream, const std::uint32_t* c, std::uint32_t c_hi,
                      std::uint32_t* const w[4], int offset) {
  const PhiloxJob8 job{stream, c + offset, {w[0] + offset, w[1] + offset, w[2] + offset, w[3] + offset}};
  philox_x8_jobs<1>(seed, c_hi, &job);
}
#endif

/// The four words of philox_block(seed, stream, (c_hi << 32) | c[l]) for L lanes into w[0..3][l].
template <int L>
SYNTHSAE_HD void philox_lanes(std::uint64_t seed, std::uint64_t stream, const std::uint32_t* c, std::uint32_t c_hi,
                              std::uint32_t* const w[4]) {
#if defined(SYNTHSAE_PHILOX_AVX2)
  if constexpr (L % 8 == 0) {
    for (int l = 0; l < L; l += 8) philox_x8(seed, stream, c, c_hi, w, l);
    return;
  }
#endif
  philox_lanes_plain<L>(seed, stream, c, c_hi, w);
}

}  // namespace detail
}  // namespace synthsae
