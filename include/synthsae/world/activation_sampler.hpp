#pragma once
// The ground-truth activation sampler (reference §3.3 + §4.4), sparse and lazy.
//
// Every random number of sample s is addressed by a Philox counter of stream s:
//   feature f fires?          the uniform v_f (or the copula's eta) has 64 bits: its high word is
//                             word f % 4 of the block at counter 2^32 + f / 4 (the "fire word",
//                             shared by four features), its low word word 0 of counter 2f
//   feature f's magnitude     counter 2f + 1
//   winner of sibling group g  counter group_counter(g): 2N + f for feature f's own children,
//                              4N + k for the k-th organisational group (hierarchy.hpp)
//   copula factors eps        counters from 3N on (ceil(rank / 2) of them, so below 4N)
// So a draw does not depend on which other draws were made. The fire word alone rejects almost
// every feature (v_f >= word / 2^32), so the low word is computed only for the few that may fire,
// and one Philox block decides four features. The lazy sampler evaluates
// only features that can fire — top-level features (roots and features outside the forest)
// and the children of active parents — and gives *exactly* the values of the plain sampler
// that draws everything and then applies the hierarchy level by level (tests/world check
// this bit for bit). Children of inactive parents are zeroed by the gate anyway.
//
// Per active anchor P (its value final; "none" first), for each sibling group of P, in the
// reference's order gate(L) -> ME(L) -> gate(L+1):
//   raw_c = fires(c) ? max(0, mu_c + sigma_c n) : 0 for each member c;
//   if the group is mutually exclusive and > 1 raw_c > 0: keep one, uniformly at random (unless
//   the sample skips the group's exclusion, with its co-activation probability: the second word
//   of the winner's Philox block decides; synthsae's extension, 0 in SAELens's worlds);
//   c's value = raw_c * (the group scales ? v_P / mu_P : 1).
#include <cstdint>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/float16.hpp"
#include "synthsae/core/host_parallel.hpp"
#include "synthsae/core/normal_distribution.hpp"
#include "synthsae/core/philox_lanes.hpp"

#if defined(SYNTHSAE_PHILOX_AVX2) && defined(__FMA__)
#define SYNTHSAE_SAMPLER_AVX2 1  // the host sampler's copula dots in AVX2 registers
#endif

namespace synthsae {

/// Sparse ground-truth activations: for sample b, ids(b, 0..counts(b)) ascending with values.
template <class T = float>
struct SparseBatch {
  Kokkos::View<std::int32_t**, Kokkos::LayoutRight, MemSpace> ids;
  Kokkos::View<T**, Kokkos::LayoutRight, MemSpace> values;
  Kokkos::View<std::int32_t*, MemSpace> counts;
  std::size_t batch_size() const { return counts.extent(0); }
  std::size_t capacity() const { return ids.extent(1); }
};

/// Device copies of everything the sampler reads.
struct SamplerTables {
  Vector<float> probability;   ///< [N] compensated firing probabilities (independent firing)
  Vector<float> threshold;     ///< [N] Phi^-1(1 - p) (copula firing)
  Vector<float> mean, stddev;  ///< [N] magnitude parameters
  Matrix<float> factor;        ///< [N, r] copula factor (r = 0: independent firing)
  Vector<float> sqrt_diag;     ///< [N]
  /// Sibling groups (HierarchyTables): CSR per anchor feature (anchor N: no parent), members.
  Vector<std::int32_t> group_offsets, member_offsets, members, top_level;
  Vector<std::uint8_t> group_exclusive, group_scaled;
  Vector<float> group_coactivation;  ///< [G] probability that a sample skips the exclusion
  Vector<std::uint64_t> group_counter;
  /// The top-level features' parameters in top_level order, padded to a multiple of
  /// kTopLevelChunk with features that never fire, 1 / sqrt_diag (0 where sqrt_diag is 0), and
  /// the factor block-major and feature-minor [padded / kTopLevelBlock, r * kTopLevelBlock]: the
  /// host kernel decides a block of them at once, one SIMD lane per feature.
  Vector<std::int32_t> top_ids;
  Vector<float> top_probability, top_threshold, top_inv_sqrt_diag;
  Matrix<float> top_factor;
  /// The fire words of each chunk of kTopLevelChunk top-level features: the distinct fire-word
  /// counters (low words, at most kTopLevelChunk, padded with 0) and their number, and per
  /// feature the slot of its word, (word index) * kTopLevelChunk + (counter's position).
  Vector<std::uint32_t> top_chunk_counters;
  Vector<std::int32_t> top_chunk_counts;
  Vector<std::uint8_t> top_word_slot;
  /// Per chunk, 1 where its slots are the plain interleave (ids consecutive from a multiple of
  /// four, as the forest numbers its roots): feature j of the chunk reads word j % 4 of the j / 4-th
  /// counter, so the words are put in feature order by a register transpose, not by slot.
  Vector<std::uint8_t> top_chunk_interleaved;
  int num_features = 0;
  int rank = 0;
};

/// Top-level features per block of the host sampler's lane loops.
inline constexpr int kTopLevelBlock = 16;
/// Top-level features whose fire words the host sampler draws together (a multiple of the block;
/// slots of its words fit a byte).
inline constexpr int kTopLevelChunk = 64;
static_assert(kTopLevelChunk % kTopLevelBlock == 0 && 4 * kTopLevelChunk <= 256);

/// The counter plane of the fire words: feature f's is word f % 4 of block kFireWordPlane + f / 4.
inline constexpr std::uint64_t kFireWordPlane = std::uint64_t(1) << 32;
SYNTHSAE_HD constexpr std::uint32_t fire_word_counter(int f) { return static_cast<std::uint32_t>(f) >> 2; }

/// Row b of a LayoutRight matrix by pointer: no View copy, so no reference counting when host
/// threads run the loop (host_rows).
template <class T>
struct RowRef {
  T* p;
  SYNTHSAE_HD T& operator()(int k) const { return p[k]; }
};

namespace detail {

/// N(0, 1) from two 32-bit words of the first and one of the second uniform (Box-Muller, cos
/// branch); u1 has 52 random bits so the tail reaches about 8.5 standard deviations.
SYNTHSAE_HD float box_muller(std::uint32_t a, std::uint32_t b, std::uint32_t c) {
  const double u1 = u64_to_open01_double((static_cast<std::uint64_t>(b) << 32) | a);
  const double u2 = u32_to_open01_float(c);
  return static_cast<float>(kmath::sqrt(-2.0 * kmath::log(u1)) * kmath::cos(6.283185307179586 * u2));
}

}  // namespace detail

/// Per-sample evaluation of raw feature values; shared by the lazy kernel and the plain
/// reference sampler in the tests.
struct FeatureDraw {
  SamplerTables t;
  std::uint64_t seed;

  /// Feature f's fire word: the high 32 bits of its uniform v_f.
  SYNTHSAE_HD std::uint32_t fire_word(std::uint64_t sample, int f) const {
    return philox_block(seed, sample, kFireWordPlane + fire_word_counter(f))[f & 3];
  }

  /// A block of fire words kept across calls: siblings with neighbouring ids share one.
  struct FireWordCache {
    std::uint64_t counter = ~std::uint64_t(0);
    U32x4 block{};
  };
  SYNTHSAE_HD std::uint32_t fire_word(std::uint64_t sample, int f, FireWordCache& cache) const {
    const std::uint64_t counter = kFireWordPlane + fire_word_counter(f);
    if (counter != cache.counter) cache.counter = counter, cache.block = philox_block(seed, sample, counter);
    return cache.block[f & 3];
  }

  /// v_f in (0, 1) from its fire word (high) and word 0 of counter 2f (low).
  SYNTHSAE_HD double fire_uniform(std::uint64_t sample, int f, std::uint32_t high) const {
    return uniform_from_words(high, low_word(sample, f));
  }
  /// Word 0 of counter 2f: the low word of feature f's uniform.
  SYNTHSAE_HD std::uint32_t low_word(std::uint64_t sample, int f) const {
    return philox_block(seed, sample, 2 * static_cast<std::uint64_t>(f))[0];
  }
  static SYNTHSAE_HD double uniform_from_words(std::uint32_t high, std::uint32_t low) {
    return u64_to_open01_double((static_cast<std::uint64_t>(high) << 32) | low);
  }
  /// high / 2^32: exact, and <= the uniform whose high word it is.
  static SYNTHSAE_HD double fire_floor(std::uint32_t high) { return static_cast<double>(high) * (1.0 / 4294967296.0); }

  /// The copula latent z_f = F_f . eps + sqrt(diag_f) eta_f of feature f (rank > 0), where
  /// eta_f = -Phi^-1(v_f) for the feature's uniform v_f (inverse-CDF sampling).
  template <class EpsRow>
  SYNTHSAE_HD float latent(std::uint64_t sample, int f, const EpsRow& eps) const {
    const double v = fire_uniform(sample, f, fire_word(sample, f));
    return static_cast<float>(factor_dot(f, eps) - double(t.sqrt_diag(f)) * normal_quantile(v));
  }

  /// Whether feature f fires: z_f > t_f, i.e. v_f < Q((t_f - F_f . eps) / sqrt(diag_f)).
  template <class EpsRow>
  SYNTHSAE_HD bool fires(std::uint64_t sample, int f, const EpsRow& eps) const {
    return fires_with(sample, f, fire_word(sample, f), t.rank == 0 ? 0.0 : factor_dot(f, eps));
  }

  /// The decision of fires() from the feature's fire word and its copula dot F_f . eps. Most
  /// features are decided without the low word and without a transcendental function:
  /// v_f >= high / 2^32, and normal_tail_bound(|s|) >= Q(|s|) bounds Q(s) for s >= 0 (and 1 - Q(s)
  /// for s < 0); only a v_f inside the bounds needs erfc. The decision is exact.
  SYNTHSAE_HD bool fires_with(std::uint64_t sample, int f, std::uint32_t high, double dot) const {
    return fires_with(f, high, dot, [&]() { return low_word(sample, f); });
  }
  /// fires_with() with the low word from `low()`, called only where the decision needs it.
  template <class LowWord>
  SYNTHSAE_HD bool fires_with(int f, std::uint32_t high, double dot, const LowWord& low) const {
    if (t.rank == 0) {
      const double p = t.probability(f);
      return fire_floor(high) < p && uniform_from_words(high, low()) < p;
    }
    const double sd = t.sqrt_diag(f);
    const double gap = double(t.threshold(f)) - dot;
    if (sd == 0) return gap < 0;  // full-rank factor: no idiosyncratic noise
    const double s = gap / sd;
    return fires_given_bound(high, s, normal_tail_bound(s >= 0 ? s : -s), low);
  }
  /// The copula decision from s = (t_f - F_f . eps) / sqrt(diag_f) and bound =
  /// normal_tail_bound(|s|) >= Q(|s|).
  template <class LowWord>
  static SYNTHSAE_HD bool fires_given_bound(std::uint32_t high, double s, double bound, const LowWord& low) {
    if (s >= 0 && fire_floor(high) >= bound) return false;
    const double v = uniform_from_words(high, low());
    if (s >= 0) {
      if (v >= bound) return false;
    } else if (v < 1 - bound) {
      return true;
    }
    return v < normal_tail(s);
  }

  /// Raw value of feature f in sample `sample` (0 if it does not fire); eps: the sample's
  /// copula factors (ignored when rank is 0).
  template <class EpsRow>
  SYNTHSAE_HD float raw(std::uint64_t sample, int f, const EpsRow& eps) const {
    if (!fires(sample, f, eps)) return 0.0f;
    return magnitude(sample, f);
  }
  /// raw() with the fire words' block cached.
  template <class EpsRow>
  SYNTHSAE_HD float raw(std::uint64_t sample, int f, const EpsRow& eps, FireWordCache& cache) const {
    if (!fires_with(sample, f, fire_word(sample, f, cache), t.rank == 0 ? 0.0 : factor_dot(f, eps))) return 0.0f;
    return magnitude(sample, f);
  }

  /// The magnitude of a feature that fires: max(0, mu + sigma n), with one rounding (an explicit
  /// FMA: the same bits at every optimisation level and on a GPU).
  SYNTHSAE_HD float magnitude(std::uint64_t sample, int f) const {
    return magnitude_from(magnitude_block(sample, f), t.mean(f), t.stddev(f));
  }
  /// The Philox block a magnitude is drawn from, and the magnitude from it (clipped at 0).
  SYNTHSAE_HD U32x4 magnitude_block(std::uint64_t sample, int f) const {
    return philox_block(seed, sample, 2 * static_cast<std::uint64_t>(f) + 1);
  }
  static SYNTHSAE_HD float magnitude_from(const U32x4& m, float mean, float sd) {
    const float v = fused_multiply_add(sd, detail::box_muller(m[0], m[1], m[2]), mean);
    return v > 0.0f ? v : 0.0f;
  }

  /// Stands for a magnitude proven positive but not computed (magnitude() is never negative).
  static constexpr float kPositiveMagnitude = -1.0f;

  /// magnitude(), or kPositiveMagnitude when the first uniform alone proves it positive: with
  /// u1 >= top / 2^24 (its top 24 bits), |n| <= R = sqrt(-2 ln u1) and R^2 <= 2 ln 2 (24 - L),
  /// L = float(top)'s bits read as an integer (<= log2 top); then mean - sd R > 0 needs no log or
  /// cos. An exclusive group's losers are only counted, so they never pay for the rest.
  SYNTHSAE_HD float magnitude_unless_positive(std::uint64_t sample, int f) const {
    return magnitude_unless_positive(magnitude_block(sample, f), f);
  }
  /// The same from feature f's magnitude block m.
  SYNTHSAE_HD float magnitude_unless_positive(const U32x4& m, int f) const {
    const float mean = t.mean(f), sd = t.stddev(f);
    const std::uint32_t top = m[1] >> 8;
    if (mean > 1e-30f && top != 0) {
      const double log2_floor = double(float_bits(static_cast<float>(top))) * (1.0 / 8388608.0) - 127;
      const double radius_sq = 2 * 0.6931471805599453 * (24 - log2_floor);
      // 0.1 % margin: far above the rounding of R and of n's cast to float (relative 1e-7).
      if (double(sd) * double(sd) * radius_sq * 1.001 < double(mean) * double(mean)) return kPositiveMagnitude;
    }
    return magnitude_from(m, mean, sd);
  }

  /// For each of S consecutive samples first + s (s < count <= S, eps[s] their factors):
  /// emit(s, f, raw(first + s, f, eps[s])) for every top-level feature that fires, in top_level
  /// order (host). Per chunk of kTopLevelChunk features, each sample's distinct blocks of fire
  /// words (AVX2 lanes: contiguous ids need a quarter of a block each); then per block of
  /// kTopLevelBlock features the S samples' copula dots in one pass over the block's factor
  /// (stored block-major, so one contiguous stream: the factor of SynthSAEBench-16k is 0.56 MB,
  /// beyond a core's L2, and S samples read it once), then per sample a float form of
  /// fires_with()'s first test as lane loops (kept_lanes: a margin far above its rounding), so
  /// every lane it rejects is one that fires_with rejects too; the others (a few dozen per sample)
  /// go through fires_with. The same values as raw(), bit for bit.
  template <int S, class EpsRow, class Emit>
  SYNTHSAE_HD void top_level_blocked(std::uint64_t first, int count, const EpsRow* eps, const Emit& emit) const {
    constexpr int L = kTopLevelBlock, C = kTopLevelChunk;
    const int padded = static_cast<int>(t.top_ids.extent(0));
    // Blocks past the real top-level features hold only padding, which never fires: not scanned
    // (cpu-1k's 352 top-level features fill 22 of its 24 blocks: a twelfth of the dots saved).
    const int real = static_cast<int>(t.top_level.extent(0));
    const int r = t.rank;
    const std::int32_t* ids = t.top_ids.data();
    const float* probability = t.top_probability.data();
    const float* threshold = t.top_threshold.data();
    const float* inv_sd = t.top_inv_sqrt_diag.data();
    const float* factor = r > 0 ? t.top_factor.data() : nullptr;
    const std::uint32_t* chunk_counters = t.top_chunk_counters.data();
    const std::uint8_t* slot = t.top_word_slot.data();
    constexpr int kLocalRank = 64;  // the samples' factors on the stack; larger ranks read eps
    float e[S][kLocalRank];
    const bool local_eps = r <= kLocalRank;
    for (int q = 0; q < S; ++q)
      for (int k = 0; k < r && local_eps; ++k) e[q][k] = q < count ? float(eps[q](k)) : 0.0f;
    std::uint32_t words[S][4 * C];  // each sample's blocks of fire words, [word][counter position]
    std::uint32_t lane_words[S][C];  // each feature's fire word, in the chunk's feature order
    for (int c0 = 0; c0 < padded; c0 += C) {
      const int chunk = c0 / C;
      const int counters = t.top_chunk_counts(chunk);
      fire_word_blocks<S>(first, count, chunk_counters + chunk * C, counters, words);
#if defined(SYNTHSAE_SAMPLER_AVX2)
      if (t.top_chunk_interleaved(chunk)) {
        for (int q = 0; q < count; ++q) interleave_words(words[q], lane_words[q]);
      } else
#endif
      {
        for (int q = 0; q < count; ++q)
          for (int i = 0; i < C; ++i) lane_words[q][i] = words[q][slot[c0 + i]];
      }
      for (int i0 = c0; i0 < c0 + C && i0 < real; i0 += L) {
        float dot[S][L];
        const float* block = r > 0 ? factor + static_cast<std::size_t>(i0) * r : nullptr;  // [r][L]
        // factor_dot's sum, lane by lane: the same FMAs in the same order.
#if defined(SYNTHSAE_SAMPLER_AVX2)
        if (local_eps) {  // S accumulators in registers per half block (GCC spills the plain form's)
          static_assert(L == 16, "two halves of eight lanes");
          for (int h = 0; h < L; h += 8) {
            __m256 acc[S];
            for (int q = 0; q < S; ++q) acc[q] = _mm256_setzero_ps();
            for (int k = 0; k < r; ++k) {
              const __m256 fk = _mm256_loadu_ps(block + k * L + h);
              for (int q = 0; q < S; ++q) acc[q] = _mm256_fmadd_ps(fk, _mm256_set1_ps(e[q][k]), acc[q]);
            }
            for (int q = 0; q < S; ++q) _mm256_storeu_ps(dot[q] + h, acc[q]);
          }
        } else
#endif
        {
          for (int q = 0; q < S; ++q)
            for (int l = 0; l < L; ++l) dot[q][l] = 0;
          for (int k = 0; k < r; ++k) {
            const float* row = block + k * L;
            for (int q = 0; q < S; ++q) {
              const float ek = local_eps ? e[q][k] : (q < count ? float(eps[q](k)) : 0.0f);
              for (int l = 0; l < L; ++l) dot[q][l] = fused_multiply_add(row[l], ek, dot[q][l]);
            }
          }
        }
        for (int q = 0; q < count; ++q) {
          const std::uint32_t* word = lane_words[q] + (i0 - c0);
          const std::uint32_t kept = kept_lanes(word, dot[q], threshold + i0, inv_sd + i0, probability + i0, r == 0);
          if (kept == 0) continue;  // most blocks
          const std::uint64_t sample = first + q;
          for (int l = 0; l < L; ++l) {
            if (!(kept >> l & 1u)) continue;
            const int f = ids[i0 + l];
            if (f < 0) continue;  // padding
            if (!fires_with(sample, f, word[l], double(dot[q][l]))) continue;
            const float value = magnitude(sample, f);
            if (value > 0.0f) emit(q, f, value);
          }
        }
      }
    }
  }

#if defined(SYNTHSAE_SAMPLER_AVX2)
  /// lane[4 j + w] = words[w * C + j] for the C / 4 counters of an interleaved chunk: a 4 x 8
  /// transpose per eight counters (unpacks within 128-bit halves, then the halves exchanged).
  static void interleave_words(const std::uint32_t* words, std::uint32_t* lane) {
    constexpr int C = kTopLevelChunk;
    static_assert(C % 32 == 0, "eight counters per transpose");
    for (int j = 0; j < C / 4; j += 8) {
      const auto row = [&](int w) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + w * C + j)); };
      const __m256i r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3);
      const __m256i t0 = _mm256_unpacklo_epi32(r0, r1), t1 = _mm256_unpackhi_epi32(r0, r1);
      const __m256i t2 = _mm256_unpacklo_epi32(r2, r3), t3 = _mm256_unpackhi_epi32(r2, r3);
      const __m256i b04 = _mm256_unpacklo_epi64(t0, t2), b15 = _mm256_unpackhi_epi64(t0, t2);  // counters j+0 | j+4 ...
      const __m256i b26 = _mm256_unpacklo_epi64(t1, t3), b37 = _mm256_unpackhi_epi64(t1, t3);
      __m256i* out = reinterpret_cast<__m256i*>(lane + 4 * j);
      _mm256_storeu_si256(out, _mm256_permute2x128_si256(b04, b15, 0x20));
      _mm256_storeu_si256(out + 1, _mm256_permute2x128_si256(b26, b37, 0x20));
      _mm256_storeu_si256(out + 2, _mm256_permute2x128_si256(b04, b15, 0x31));
      _mm256_storeu_si256(out + 3, _mm256_permute2x128_si256(b26, b37, 0x31));
    }
  }
#endif

  /// words[q][w * C + j] = word w of sample first + q's fire-word block at counter counters[j], for
  /// j < n <= C and q < count (entries up to the next multiple of 8 are written too; `counters`
  /// has C entries). With AVX2 four groups of eight blocks at a time, their rounds interleaved.
  template <int S>
  SYNTHSAE_HD void fire_word_blocks(std::uint64_t first, int count, const std::uint32_t* counters, int n,
                                    std::uint32_t (*words)[4 * kTopLevelChunk]) const {
    constexpr int C = kTopLevelChunk;
    constexpr std::uint32_t plane = static_cast<std::uint32_t>(kFireWordPlane >> 32);
#if defined(SYNTHSAE_PHILOX_AVX2)
    constexpr int G = 4;
    detail::PhiloxJob8 jobs[G];
    int pending = 0;
    for (int q = 0; q < count; ++q)
      for (int j = 0; j < n; j += 8) {
        std::uint32_t* w = words[q] + j;
        jobs[pending++] = detail::PhiloxJob8{first + q, counters + j, {w, w + C, w + 2 * C, w + 3 * C}};
        if (pending == G) detail::philox_x8_jobs<G>(seed, plane, jobs), pending = 0;
      }
    for (int g = 0; g < pending; ++g) detail::philox_x8_jobs<1>(seed, plane, jobs + g);
#else
    for (int q = 0; q < count; ++q)
      for (int j = 0; j < n; j += 8) {
        std::uint32_t* const rows[4] = {words[q] + j, words[q] + C + j, words[q] + 2 * C + j, words[q] + 3 * C + j};
        detail::philox_lanes<8>(seed, first + q, counters + j, plane, rows);
      }
#endif
  }

  // kept_lanes' constants. bits(float(n)) / 2^23 for n = the word's top 24 bits is
  // log2-floor-ish(n) + 127, i.e. (lower bound of log2 v) + 24 + 127; bits(mills) / 2^23 likewise
  // + 127. Rejected when their sum plus x log2 e, in units of 2^-23, reaches (24 + 254 + 2^-8) 2^23.
  static constexpr float kSlack = 1.0f + 1.0f / 1024;
  static constexpr float kUnit = 8388608.0f;                     // 2^23
  static constexpr float kXScale = 1.4426950408889634f * kUnit;  // log2 e, in bits' units
  static constexpr float kReject = (24.0f + 254.0f + 1.0f / 256) * kUnit;
  static constexpr float kRootTwoPi = 2.5066283f;

  /// Bit l set: lane l of a block of top_level_blocked may fire; clear: the float pre-test
  /// proves it does not. The fire word of lane l is words[l]; v >= v_low = its top 24 bits / 2^24.
  /// Without a copula: rejected when v_low >= p (1 + 2^-10). With one, for s = (t - dot) / sd > 0,
  /// Q(s) <= e^-x / max(s sqrt(2 pi), 2) (x = s^2 / 2, as in normal_tail_bound), so v >= Q(s) once
  /// log2 v + log2 max(s sqrt(2 pi), 2) + x log2 e >= 0. Both logarithms are bounded from below by
  /// a float's bits read as an integer, e + m <= log2(2^e (1 + m)): two conversions and an FMA,
  /// no polynomial (a zero word claims v >= 2^-151: true, v >= 2^-53). The test asks for a margin
  /// of 2^-8 (0.27 % in v); the sum's rounding and s's (relative 2^-22, times x up to about 104
  /// where a zero word can be rejected) stay under 1e-4.
  SYNTHSAE_HD static std::uint32_t kept_lanes(const std::uint32_t* words, const float* dot,
                                              const float* threshold, const float* inv_sd, const float* probability,
                                              bool independent) {
#if defined(SYNTHSAE_SAMPLER_AVX2)
    constexpr int L = kTopLevelBlock;
    std::uint32_t kept = 0;
    static_assert(L == 16, "two AVX2 registers per block");
    for (int h = 0; h < 2; ++h) {
      const __m256i high = _mm256_srli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + 8 * h)), 8);
      __m256 rejected;
      if (independent) {
        const __m256 v_low = _mm256_mul_ps(_mm256_cvtepi32_ps(high), _mm256_set1_ps(1.0f / 16777216.0f));
        rejected = _mm256_cmp_ps(v_low, _mm256_mul_ps(_mm256_loadu_ps(probability + 8 * h), _mm256_set1_ps(kSlack)),
                                 _CMP_GE_OQ);
      } else {
        const __m256 s = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(threshold + 8 * h), _mm256_loadu_ps(dot + 8 * h)),
                                       _mm256_loadu_ps(inv_sd + 8 * h));
        const __m256 mills = _mm256_max_ps(_mm256_mul_ps(s, _mm256_set1_ps(kRootTwoPi)), _mm256_set1_ps(2.0f));
        const __m256 log_v = _mm256_cvtepi32_ps(_mm256_castps_si256(_mm256_cvtepi32_ps(high)));
        const __m256 log_mills = _mm256_cvtepi32_ps(_mm256_castps_si256(mills));
        const __m256 sum = _mm256_fmadd_ps(_mm256_mul_ps(s, s), _mm256_set1_ps(0.5f * kXScale),
                                           _mm256_add_ps(log_v, log_mills));
        // s > 0 needs t > dot and sd > 0 (inverse 0 marks a full-rank factor: never rejected here).
        rejected = _mm256_and_ps(_mm256_cmp_ps(s, _mm256_setzero_ps(), _CMP_GT_OQ),
                                 _mm256_cmp_ps(sum, _mm256_set1_ps(kReject), _CMP_GE_OQ));
      }
      kept |= static_cast<std::uint32_t>(~_mm256_movemask_ps(rejected) & 0xFF) << (8 * h);
    }
    return kept;
#else
    return kept_lanes_portable(words, dot, threshold, inv_sd, probability, independent);
#endif
  }

  /// kept_lanes as lane loops: the form of builds without AVX2 (and of the GPU), the same
  /// operations per lane, so the same bits (a test compares both on AVX2 builds).
  SYNTHSAE_HD static std::uint32_t kept_lanes_portable(const std::uint32_t* words, const float* dot,
                                                       const float* threshold, const float* inv_sd,
                                                       const float* probability, bool independent) {
    constexpr int L = kTopLevelBlock;
    std::uint32_t kept = 0;
    for (int l = 0; l < L; ++l) {
      const std::int32_t high = static_cast<std::int32_t>(words[l] >> 8);
      bool rejected;
      if (independent) {
        rejected = static_cast<float>(high) * (1.0f / 16777216.0f) >= probability[l] * kSlack;
      } else {
        const float s = (threshold[l] - dot[l]) * inv_sd[l];
        const float mills = s * kRootTwoPi > 2.0f ? s * kRootTwoPi : 2.0f;
        const float log_v = static_cast<float>(float_bits(static_cast<float>(high)));
        const float log_mills = static_cast<float>(float_bits(mills));
        const float sum = fused_multiply_add(s * s, 0.5f * kXScale, log_v + log_mills);
        rejected = s > 0.0f && sum >= kReject;
      }
      kept |= static_cast<std::uint32_t>(!rejected) << l;
    }
    return kept;
  }

  /// F_f . eps in float, one explicit FMA per term in rank order (the same bits on every build).
  template <class EpsRow>
  SYNTHSAE_HD double factor_dot(int f, const EpsRow& eps) const {
    float acc = 0;
    for (int k = 0; k < t.rank; ++k) acc = fused_multiply_add(t.factor(f, k), float(eps(k)), acc);
    return acc;
  }

  /// Uniform choice among n active members of sibling group g.
  SYNTHSAE_HD std::uint32_t winner(std::uint64_t sample, int g, std::uint32_t n) const {
    const U32x4 w = philox_block(seed, sample, t.group_counter(g));
    return static_cast<std::uint32_t>((static_cast<std::uint64_t>(w[0]) * n) >> 32);
  }

  /// Whether the sample skips exclusive group g's exclusion (probability group_coactivation(g)):
  /// the second word of the winner's block, so no other draw moves.
  SYNTHSAE_HD bool coactive(std::uint64_t sample, int g) const {
    const float rho = t.group_coactivation(g);
    if (!(rho > 0.0f)) return false;
    const U32x4 w = philox_block(seed, sample, t.group_counter(g));
    return (static_cast<double>(w[1]) + 0.5) * (1.0 / 4294967296.0) < static_cast<double>(rho);
  }

  /// The draws of members c0 + 4q .. c0 + 4q + 3 of a sibling group that read two Philox blocks
  /// each: word 0 of counter 2f (the low word of the fire uniform) and counter 2f + 1 (the
  /// magnitude). On AVX2 + FMA hosts all eight blocks come from one eight-lane call, made when the
  /// first of them is needed: a member of an active parent's group usually needs its low word
  /// (its firing probability given the parent is high, so its fire word rarely decides alone),
  /// and one that fires its magnitude, so the call replaces about six scalar blocks. Elsewhere
  /// each block is drawn where it is needed. The same words either way.
  struct MemberDraws {
#if defined(SYNTHSAE_SAMPLER_AVX2)  // elsewhere empty: no 128 bytes per quad on a GPU thread's stack
    bool drawn = false;
    std::uint32_t w[4][8];  ///< word i of lane 2l (low word's block) and 2l + 1 (magnitude's block)
#endif
  };
  /// emit(c, value) for the members of anchor's sibling groups that survive mutual exclusion;
  /// `ratio` = the anchor's value / mean, applied to the groups that scale.
  template <class EpsRow, class Emit>
  SYNTHSAE_HD void emit_children(std::uint64_t sample, int anchor, float ratio, const EpsRow& eps,
                                 const Emit& emit) const {
    FireWordCache cache;  // siblings with neighbouring ids share a block of fire words
    constexpr int kKept = 16;  // members decided together (their copula dots interleaved)
    float kept[kKept];
    for (int g = t.group_offsets(anchor); g < t.group_offsets(anchor + 1); ++g) {
      MemberDraws draws[kKept / 4];  // the first kKept members' low words and magnitude blocks
      const int begin = t.member_offsets(g), end = t.member_offsets(g + 1);
      const float scale = t.group_scaled(g) ? ratio : 1.0f;
      if (t.group_exclusive(g)) {
        // First pass: every member's raw value (the first kKept kept for the second pass), a
        // magnitude proven positive left as kPositiveMagnitude until it wins.
        std::uint32_t active = 0;
        for (int c0 = begin; c0 < end; c0 += kKept) {
          float later_values[kKept];
          MemberDraws later[kKept / 4];
          float* v = c0 == begin ? kept : later_values;  // written in place: a copy was a `rep movs`
          const int n = raw_members(sample, c0, end - c0 < kKept ? end - c0 : kKept, eps, cache, v,
                                    c0 == begin ? draws : later, true);
          for (int j = 0; j < n; ++j) active += v[j] != 0.0f;
        }
        if (active == 0) continue;
        const bool all = active > 1 && coactive(sample, g);
        std::uint32_t keep = active > 1 && !all ? winner(sample, g, active) : 0;
        for (int c = begin; c < end; ++c) {
          const int f = t.members(c);
          float v = c - begin < kKept ? kept[c - begin] : raw(sample, f, eps, cache);
          if (v == 0.0f) continue;
          if (all || keep-- == 0) {
            // Only the kept members defer (raw() computes its magnitudes), so their draws are at hand.
            if (v == kPositiveMagnitude) v = member_magnitude(sample, begin, end, c - begin, draws);
            emit(f, v * scale);
            if (!all) break;
          }
        }
      } else {
        for (int c0 = begin; c0 < end; c0 += kKept) {
          MemberDraws chunk_draws[kKept / 4];
          const int n = raw_members(sample, c0, end - c0 < kKept ? end - c0 : kKept, eps, cache, kept, chunk_draws);
          for (int j = 0; j < n; ++j)
            if (kept[j] > 0.0f) emit(t.members(c0 + j), kept[j] * scale);
        }
      }
    }
  }

  /// v[j] = raw(sample, members(c0 + j), eps) for j < n <= 16 (magnitude_unless_positive's value
  /// with defer_positive); returns n. The members' copula dots are summed side by side (the same
  /// FMAs per member as factor_dot, but n independent chains instead of one at a time).
  template <class EpsRow>
  SYNTHSAE_HD int raw_members(std::uint64_t sample, int c0, int n, const EpsRow& eps, FireWordCache& cache,
                              float* v, MemberDraws* draws, bool defer_positive = false) const {
    float dot[16];
    // Four members' chains in registers at a time (a short group repeats its last member; the
    // copies are not read): the accumulators of the plain lane loop lived in memory.
    for (int j0 = 0; j0 < n; j0 += 4) {
      const float* row[4];
      for (int i = 0; i < 4; ++i) row[i] = t.rank > 0 ? &t.factor(t.members(c0 + (j0 + i < n ? j0 + i : n - 1)), 0) : nullptr;
      float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (int k = 0; k < t.rank; ++k) {
        const float ek = eps(k);
        a0 = fused_multiply_add(row[0][k], ek, a0);
        a1 = fused_multiply_add(row[1][k], ek, a1);
        a2 = fused_multiply_add(row[2][k], ek, a2);
        a3 = fused_multiply_add(row[3][k], ek, a3);
      }
      dot[j0] = a0, dot[j0 + 1] = a1, dot[j0 + 2] = a2, dot[j0 + 3] = a3;
    }
#if defined(SYNTHSAE_SAMPLER_AVX2)
    // Each member's s and bound, four at a time: one member's division, polynomial and division
    // are a chain of some 60 cycles, and its branch on the result (often mispredicted: these
    // members fire often) kept the next member's chain from starting early.
    double quotient[16], bound[16];
    const bool copula = t.rank > 0;
    if (copula) copula_bounds(c0, n, dot, quotient, bound);
#endif
    for (int j = 0; j < n; ++j) {
      const int f = t.members(c0 + j);
      const auto low = [&]() { return member_low_word(sample, c0, c0 + n, j, draws); };
      bool fires;
#if defined(SYNTHSAE_SAMPLER_AVX2)
      if (copula && t.sqrt_diag(f) != 0)
        fires = fires_given_bound(fire_word(sample, f, cache), quotient[j], bound[j], low);
      else
#endif
        fires = fires_with(f, fire_word(sample, f, cache), dot[j], low);
      if (!fires)
        v[j] = 0.0f;
      else if (defer_positive)
        v[j] = magnitude_unless_positive(member_magnitude_block(sample, c0, c0 + n, j, draws), f);
      else
        v[j] = member_magnitude(sample, c0, c0 + n, j, draws);
    }
    return n;
  }

  /// Word 0 of counter 2f for member c0 + j (members c0 .. end of the group in hand).
  SYNTHSAE_HD std::uint32_t member_low_word(std::uint64_t sample, int c0, int end, int j, MemberDraws* draws) const {
#if defined(SYNTHSAE_SAMPLER_AVX2)
    return drawn_quad(sample, c0, end, j, draws).w[0][2 * (j & 3)];
#else
    (void)end, (void)draws;
    return low_word(sample, t.members(c0 + j));
#endif
  }
  SYNTHSAE_HD U32x4 member_magnitude_block(std::uint64_t sample, int c0, int end, int j, MemberDraws* draws) const {
#if defined(SYNTHSAE_SAMPLER_AVX2)
    const MemberDraws& d = drawn_quad(sample, c0, end, j, draws);
    const int l = 2 * (j & 3) + 1;
    return U32x4{{d.w[0][l], d.w[1][l], d.w[2][l], d.w[3][l]}};
#else
    (void)end, (void)draws;
    return magnitude_block(sample, t.members(c0 + j));
#endif
  }
  /// magnitude() of member c0 + j.
  SYNTHSAE_HD float member_magnitude(std::uint64_t sample, int c0, int end, int j, MemberDraws* draws) const {
    const int f = t.members(c0 + j);
    return magnitude_from(member_magnitude_block(sample, c0, end, j, draws), t.mean(f), t.stddev(f));
  }
#if defined(SYNTHSAE_SAMPLER_AVX2)
  /// For members c0 + j, j < n: s_j = (t_f - dot_j) / sqrt(diag_f) and normal_tail_bound(|s_j|),
  /// four lanes at a time with fires_with()'s operations (the same bits; lanes whose sqrt_diag is
  /// 0 are not read).
  void copula_bounds(int c0, int n, const float* dot, double* quotient, double* bound) const {
    const __m256d sign = _mm256_set1_pd(-0.0), half = _mm256_set1_pd(0.5), two = _mm256_set1_pd(2.0);
    const __m256d root_two_pi = _mm256_set1_pd(kRootTwoPiDouble), one = _mm256_set1_pd(1.0);
    for (int j0 = 0; j0 < n; j0 += 4) {
      double thr[4], sd[4], d[4];
      for (int l = 0; l < 4; ++l) {
        const int j = j0 + l < n ? j0 + l : n - 1;
        const int f = t.members(c0 + j);
        thr[l] = t.threshold(f), sd[l] = t.sqrt_diag(f), d[l] = dot[j];
      }
      const __m256d s = _mm256_div_pd(_mm256_sub_pd(_mm256_loadu_pd(thr), _mm256_loadu_pd(d)), _mm256_loadu_pd(sd));
      const __m256d a = _mm256_andnot_pd(sign, s);
      const __m256d x = _mm256_mul_pd(_mm256_mul_pd(half, a), a);
      __m256d e = _mm256_fmadd_pd(x, _mm256_set1_pd(1.0 / 720), _mm256_set1_pd(1.0 / 120));
      e = _mm256_fmadd_pd(x, e, _mm256_set1_pd(1.0 / 24));
      e = _mm256_fmadd_pd(x, e, _mm256_set1_pd(1.0 / 6));
      e = _mm256_fmadd_pd(x, e, half);
      e = _mm256_fmadd_pd(x, e, one);
      e = _mm256_fmadd_pd(x, e, one);
      // mills > 2 ? mills : 2 (max_pd returns its second operand where mills is NaN, as the select does)
      const __m256d mills = _mm256_max_pd(_mm256_mul_pd(a, root_two_pi), two);
      const __m256d b = _mm256_div_pd(one, _mm256_mul_pd(e, mills));
      double sq[4], bq[4];
      _mm256_storeu_pd(sq, s), _mm256_storeu_pd(bq, b);
      for (int l = 0; l < 4 && j0 + l < n; ++l) quotient[j0 + l] = sq[l], bound[j0 + l] = bq[l];
    }
  }
  /// draws[j / 4], drawn on first use (a short quad repeats its last member in the spare lanes).
  const MemberDraws& drawn_quad(std::uint64_t sample, int c0, int end, int j, MemberDraws* draws) const {
    MemberDraws& d = draws[j >> 2];
    if (!d.drawn) {
      const int first = c0 + (j & ~3);
      std::uint32_t counters[8];
      for (int l = 0; l < 4; ++l) {
        const int f = t.members(first + l < end ? first + l : end - 1);
        counters[2 * l] = 2 * static_cast<std::uint32_t>(f), counters[2 * l + 1] = 2 * static_cast<std::uint32_t>(f) + 1;
      }
      std::uint32_t* const w[4] = {d.w[0], d.w[1], d.w[2], d.w[3]};
      detail::philox_x8(seed, sample, counters, 0, w, 0);
      d.drawn = true;
    }
    return d;
  }
#endif

  /// Fills eps(0..rank) for a sample.
  template <class EpsRow>
  SYNTHSAE_HD void copula_factors(std::uint64_t sample, const EpsRow& eps) const {
    RandomStream s(seed, sample, 3 * static_cast<std::uint64_t>(t.num_features));
    for (int k = 0; k < t.rank; ++k) eps(k) = s.normal<float>();
  }
};

namespace detail {

/// A sample's output row while it is being filled: emit() appends up to the capacity and
/// records an overflow beyond it.
struct SampleRow {
  const SparseBatch<float>& batch;
  int b, capacity, count = 0;
  bool overflow = false;
  SYNTHSAE_HD void emit(int f, float v) {
    if (count < capacity) {
      batch.ids(b, count) = f;
      batch.values(b, count) = v;
      ++count;
    } else {
      overflow = true;
    }
  }
};

/// The rest of a sample once its top-level features are in the row: the exclusive groups
/// without a parent (under root organisational nodes), then breadth-first over active parents,
/// using the output itself as the queue; then ascending feature ids (insertion sort: a few dozen
/// entries), so the row does not depend on the order the top-level pass emitted in.
template <class EpsRow>
SYNTHSAE_HD void finish_sample(const FeatureDraw& draw, std::uint64_t sample, const EpsRow& eps, SampleRow& row) {
  const auto& t = draw.t;
  const SparseBatch<float>& batch = row.batch;
  const int b = row.b;
  auto emit = [&](int f, float v) { row.emit(f, v); };
  draw.emit_children(sample, t.num_features, 1.0f, eps, emit);
  for (int q = 0; q < row.count; ++q) {
    const int parent = batch.ids(b, q);
    if (t.group_offsets(parent) == t.group_offsets(parent + 1)) continue;
    const float mean = t.mean(parent);  // > 0 wherever a group scales (checked at setup)
    draw.emit_children(sample, parent, mean > 0.0f ? batch.values(b, q) / mean : 0.0f, eps, emit);
  }
  for (int i = 1; i < row.count; ++i) {
    const int id = batch.ids(b, i);
    const float v = batch.values(b, i);
    int j = i - 1;
    while (j >= 0 && batch.ids(b, j) > id) {
      batch.ids(b, j + 1) = batch.ids(b, j);
      batch.values(b, j + 1) = batch.values(b, j);
      --j;
    }
    batch.ids(b, j + 1) = id;
    batch.values(b, j + 1) = v;
  }
  batch.counts(b) = row.count;
}

}  // namespace detail

/// sample_sparse with one team of threads per sample (the GPU's form; any execution space runs
/// it): the team's threads share the top-level features, each appending the ones that fire
/// through an atomic counter, then one thread adds the children and sorts the row. The same rows
/// as the one-thread-per-sample form, bit for bit (ids are unique and the row ends sorted);
/// tests/world/test_sampler.cpp checks that on the host.
template <class Space = ExecSpace>
int sample_sparse_by_teams(const FeatureDraw& draw, std::uint64_t first_sample, const SparseBatch<float>& batch,
                           const Matrix<float>& eps_scratch) {
  using Policy = Kokkos::TeamPolicy<Space>;
  using Member = typename Policy::member_type;
  const int capacity = static_cast<int>(batch.capacity());
  const int num_top = static_cast<int>(draw.t.top_level.extent(0));
  // 128 threads share ~5,600 top-level features at SynthSAEBench-16k: 44 each.
  const int team = host_accessible_v<Space> ? 1 : 128;  // a host space runs teams of one
  int overflowed = 0;
  Kokkos::parallel_reduce(
      "synthsae::sample_sparse_by_teams", Policy(static_cast<int>(batch.batch_size()), team),
      KOKKOS_LAMBDA(const Member& m, int& overflow_count) {
        const int b = m.league_rank();
        const std::uint64_t sample = first_sample + static_cast<std::uint64_t>(b);
        const RowRef<float> eps{eps_scratch.extent(1) > 0 ? &eps_scratch(b, 0) : nullptr};
        Kokkos::single(Kokkos::PerTeam(m), [&]() {
          draw.copula_factors(sample, eps);
          batch.counts(b) = 0;
        });
        m.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(m, num_top), [&](int i) {
          const int f = draw.t.top_level(i);
          const float v = draw.raw(sample, f, eps);
          if (v > 0.0f) {
            const int slot = Kokkos::atomic_fetch_add(&batch.counts(b), 1);
            if (slot < capacity) {
              batch.ids(b, slot) = f;
              batch.values(b, slot) = v;
            }
          }
        });
        m.team_barrier();
        int overflow = 0;
        Kokkos::single(
            Kokkos::PerTeam(m),
            [&](int& o) {
              const int emitted = batch.counts(b);
              detail::SampleRow row{batch, b, capacity, emitted < capacity ? emitted : capacity, emitted > capacity};
              detail::finish_sample(draw, sample, eps, row);
              o = row.overflow ? 1 : 0;
            },
            overflow);
        if (m.team_rank() == 0) overflow_count += overflow;
      },
      overflowed);
  return overflowed;
}

/// Samples per pass of the host sampler over the top-level features' factor.
inline constexpr int kSamplesPerPass = 8;

/// sample_sparse with one thread per kSamplesPerPass consecutive samples (the host's form): their
/// top-level features in blocks of SIMD lanes (FeatureDraw::top_level_blocked), threaded over the
/// groups of samples by host_rows_count, one group at a time (a group's cost follows how many of
/// its parents fire).
template <class Space = ExecSpace>
int sample_sparse_by_rows(const FeatureDraw& draw, std::uint64_t first_sample, const SparseBatch<float>& batch,
                          const Matrix<float>& eps_scratch) {
  static_assert(host_accessible_v<Space>, "sample_sparse_by_rows runs on the host");
  constexpr int S = kSamplesPerPass;
  const int capacity = static_cast<int>(batch.capacity());
  const int num_top = static_cast<int>(draw.t.top_level.extent(0));
  const int rows = static_cast<int>(batch.batch_size());
  // Per sample: every top-level feature's share of a Philox block and its copula dot.
  const std::int64_t group_cost = S * (40 * static_cast<std::int64_t>(num_top) + 1000);
  const std::int64_t overflowed = host_rows_count(
      "synthsae::sample_sparse", (rows + S - 1) / S, group_cost,
      KOKKOS_LAMBDA(int group, int& overflow_count) {
        const int b0 = group * S;
        const int count = rows - b0 < S ? rows - b0 : S;
        const std::uint64_t first = first_sample + static_cast<std::uint64_t>(b0);
        RowRef<float> eps[S] = {};  // entries past `count` are never read
        detail::SampleRow out[S] = {{batch, b0, capacity},     {batch, b0 + 1, capacity}, {batch, b0 + 2, capacity},
                                    {batch, b0 + 3, capacity}, {batch, b0 + 4, capacity}, {batch, b0 + 5, capacity},
                                    {batch, b0 + 6, capacity}, {batch, b0 + 7, capacity}};
        static_assert(S == 8, "one SampleRow per sample above");
        for (int q = 0; q < count; ++q) {
          eps[q] = RowRef<float>{eps_scratch.extent(1) > 0 ? &eps_scratch(b0 + q, 0) : nullptr};
          draw.copula_factors(first + q, eps[q]);
        }
        draw.top_level_blocked<S>(first, count, eps, [&](int q, int f, float v) { out[q].emit(f, v); });
        for (int q = 0; q < count; ++q) {
          detail::finish_sample(draw, first + q, eps[q], out[q]);
          overflow_count += out[q].overflow ? 1 : 0;
        }
      },
      /*uneven_rows=*/true);
  return static_cast<int>(overflowed);
}

/// Samples `batch.batch_size()` samples with global indices first_sample + b. Returns the
/// number of samples whose active set did not fit the capacity (then nothing is valid and the
/// caller retries with a larger capacity; the draws are deterministic). On the host one thread
/// per sample, on a GPU one team per sample: the same rows.
template <class Space = ExecSpace>
int sample_sparse(const FeatureDraw& draw, std::uint64_t first_sample, const SparseBatch<float>& batch,
                  const Matrix<float>& eps_scratch) {
  if constexpr (host_accessible_v<Space>) {
    return sample_sparse_by_rows<Space>(draw, first_sample, batch, eps_scratch);
  } else {
    return sample_sparse_by_teams<Space>(draw, first_sample, batch, eps_scratch);
  }
}

/// hidden(b, :) = bias + sum_k values(b, k) W_feat(ids(b, k), :). Host: one thread per sample,
/// adding whole feature rows (contiguous, vectorised); GPU: one thread per element. Each element
/// sums the same terms in the same order either way.
inline void hidden_from_sparse(const SparseBatch<float>& batch, const Matrix<float>& features,
                               const Vector<float>& bias, const Matrix<float>& hidden) {
  if constexpr (host_accessible_v<ExecSpace>) {
    const int d = static_cast<int>(hidden.extent(1));
    host_rows(
        "synthsae::hidden_from_sparse", static_cast<std::int64_t>(hidden.extent(0)),
        static_cast<std::int64_t>(d) * (1 + static_cast<std::int64_t>(batch.capacity()) / 2), KOKKOS_LAMBDA(int b) {
          float* __restrict out = &hidden(b, 0);
          for (int k = 0; k < d; ++k) out[k] = bias(k);
          const int n = batch.counts(b);
          for (int q = 0; q < n; ++q) {
            const float v = batch.values(b, q);
            const float* __restrict row = &features(batch.ids(b, q), 0);
            // The rows are scattered over the dictionary (50 MB at SynthSAEBench-16k): ask for the
            // next one while this one is added.
            if (q + 1 < n) prefetch_contiguous(&features(batch.ids(b, q + 1), 0), d);
            for (int k = 0; k < d; ++k) out[k] += v * row[k];
          }
        });
    return;
  }
  // d fastest: neighbouring threads read neighbouring feature-row entries and write neighbouring
  // hidden entries (the default order on a GPU would make b fastest).
  using Policy = Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2, Kokkos::Iterate::Right, Kokkos::Iterate::Right>>;
  Kokkos::parallel_for(
      "synthsae::hidden_from_sparse",
      Policy({0, 0}, {static_cast<std::int64_t>(hidden.extent(0)), static_cast<std::int64_t>(hidden.extent(1))}),
      KOKKOS_LAMBDA(int b, int d) {
        float acc = bias(d);
        const int n = batch.counts(b);
        for (int k = 0; k < n; ++k) acc += batch.values(b, k) * features(batch.ids(b, k), d);
        hidden(b, d) = acc;
      });
}

}  // namespace synthsae
