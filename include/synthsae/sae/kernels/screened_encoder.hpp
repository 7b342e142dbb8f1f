#pragma once
// BatchTopK's and TopK's encoder product in BF16, with FP32 values wherever a selection reads them.
//
// h = b_enc + xc W_enc is the one dense product of a sparse BatchTopK or TopK step, and few of
// its entries matter: the batch's top m = k B ranking keys (BatchTopK) or each row's top k
// (TopK), and the dead latents' columns, from which AuxK picks per row. The product runs in BF16
// (0.39 of the FP32 product's time at 768 -> 4,096 on AVX-512 BF16), and every entry carries a
// rigorous bound on its distance from the FP32 dot product (screening_kappa). The entries whose
// bound lets them reach the selection are recomputed as FP32 dots (kernels::dot_contiguous's
// fixed order), the dead columns by an FP32 product over those columns, both written over the
// BF16 values. Every other entry stays below the threshold (the batch's, or its row's k-th key;
// in a row with fewer than k positive keys it is at or below zero, and so not kept) whatever its
// FP32 value, so the kept set, the threshold and every value read are those of FP32 arithmetic.
// docs/policies.md ("The screened encoder") has the argument and where it pays.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <type_traits>
#include <vector>

#include "synthsae/core/gemm.hpp"
#include "synthsae/sae/kernels/active_set.hpp"
#include "synthsae/sae/kernels/row_top_k_lists.hpp"
#include "synthsae/sae/kernels/selection.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/kernels/top_k_select.hpp"
#include "synthsae/sae/parameters.hpp"
#include "synthsae/sae/step_interface.hpp"

namespace synthsae {

/// kappa with |h_bf16(i,j) - h_dot(i,j)| <= kappa (|xc_i| |W_enc col j| + |b_enc_j|) for a
/// product over k inputs: each operand's BF16 rounding (unit 2^-8) moves a product by at most
/// (2^-7 + 2^-16) |x w|; each of the two FP32 sums (the BF16 product's, over products up to
/// (1 + 2^-7) |x w|, and the dot's, bias included) by at most gamma_{k+2} = (k + 2) u / (1 - (k + 2) u)
/// of its sum of magnitudes (u = 2^-24; Cauchy-Schwarz bounds those sums by the norms); 2^-20
/// and the factor 1 + 2^-10 cover the float roundings of the bound's own arithmetic and of the
/// keys (each a few u of at most 2^8 times the bound). Inputs past 2^20 make gamma meaningless:
/// screening_supports refuses them.
inline double screening_kappa(std::size_t k) {
  const double u = std::ldexp(1.0, -24), n = double(k) + 2.0;
  const double gamma = n * u / (1.0 - n * u);
  return (std::ldexp(1.0, -7) + std::ldexp(1.0, -16) + (2.0 + std::ldexp(1.0, -6)) * gamma + std::ldexp(1.0, -20)) *
         (1.0 + std::ldexp(1.0, -10));
}
/// The input widths the bound covers (gamma_{k+2} well below 1).
inline bool screening_supports(std::size_t d_in) { return d_in <= (std::size_t{1} << 20); }

/// Added to every norm of the bound: kappa 2^-50 (1 + |xc_i| + |W_enc col j|) covers what flushing
/// subnormals to zero (the BF16 units do) can change, at most (k + 2) 2^-126 per entry.
inline constexpr double screening_norm_floor = 0x1p-50;

template <class T>
struct EncoderScreen {
  static_assert(std::is_same_v<T, float>, "EncoderScreen: float parameters only (BF16 products)");

  /// An entry of h: row and column.
  struct Entry {
    int row, col;
  };
  Matrix<T> w_enc_t;                        ///< [S, D]: W_enc's columns as rows, for the dots
  std::vector<float> row_scale;             ///< |xc_i| + floor
  std::vector<float> col_alpha, col_beta;   ///< bound in key units: row_scale_i alpha_j + beta_j
  std::vector<double> col_sq;               ///< |W_enc col j|^2
  std::vector<std::vector<Entry>> chunk_listed;    ///< per thread chunk: the batch part's short list
  std::vector<std::vector<Entry>> chunk_entries;   ///< per thread chunk: entries to recompute
  std::vector<float> sample_lower;
  std::vector<std::size_t> chunk_reaching;
  float last_lower_m = 0;  ///< the last step's L (the next step's guess starts just below it)
  std::vector<std::uint32_t> listed_lower_bits;
  std::vector<float> row_ends;          ///< per thread chunk: one row's lower and upper ends (TopK)
  std::vector<std::uint32_t> row_bits;  ///< per thread chunk: kth_largest_of_row's work space
  std::vector<int> row_listed;
  std::vector<char> chunk_failed;
  std::vector<int> dead_columns;
  Matrix<T> dead_w, dead_h;  ///< W_enc's and h's dead columns side by side: [D, room], [B, room]
  Vector<T> dead_bias;
  /// Tests: recompute every entry as an FP32 dot (the dead columns still come from their
  /// product), the reference a screened step must equal bit for bit.
  bool recompute_all = false;
  /// Recompute at most this fraction of B x S entries by the short list; above it (a bound far
  /// from tight, or a selection of most of the batch) every entry is recomputed.
  double max_recomputed_fraction = 0.125;
  std::size_t last_recomputed = 0;  ///< entries recomputed by the last run
  bool last_fell_back = false;      ///< the last run recomputed every entry, or ran the plain product

  /// b.h = b_enc + xc W_enc: the FP32 dots at every entry that can reach the selection (the
  /// batch's top m keys, or each row's top k with keep.per_row; keys are h * b.norms with
  /// `rescale`, else h), and an FP32 product over the columns `dead` marks when
  /// `dead_columns_read` (the aux loss selects among them); elsewhere BF16 values that no
  /// selection reaches. b.norms must hold |W_dec_j| already.
  void run(const Matrix<T>& xc, const SaeParameters<T>& p, StepBuffers<T>& b, ScreenedSelection keep, bool rescale,
           const DeadMask& dead, bool dead_columns_read) {
    const std::size_t m = keep.count;
    const int rows = static_cast<int>(xc.extent(0)), d = static_cast<int>(xc.extent(1));
    const int s = static_cast<int>(p.num_latents());
    last_recomputed = 0, last_fell_back = false;
    if (dead_columns_read) list_dead(dead, s);
    // Past an eighth of the latents dead, their columns' FP32 product (with its gather and
    // scatter) costs about what the BF16 product saves (bench_sae: 0.85-0.89 of the plain step
    // at a sixteenth, 0.98-1.16 at a quarter); early in training most latents are dead (they have
    // not fired within the dead window yet).
    const bool many_dead = dead_columns_read && 8 * dead_columns.size() > static_cast<std::size_t>(s);
    if ((many_dead && !recompute_all) || !screening_supports(static_cast<std::size_t>(d))) {
      last_fell_back = true;
      gemm_onto_rows(Op::N, Op::N, T(1), xc, p.w_enc, p.b_enc, b.h, GemmMath::fp32);
      return;
    }
    gemm_onto_rows(Op::N, Op::N, T(1), xc, p.w_enc, p.b_enc, b.h, GemmMath::bf16);
    const int chunks = host_chunks(static_cast<std::size_t>(rows));
    for (auto* lists : {&chunk_listed, &chunk_entries})
      if (lists->size() < static_cast<std::size_t>(chunks)) lists->resize(chunks);
    for (auto& list : chunk_entries) list.clear();
    const std::size_t most = static_cast<std::size_t>(max_recomputed_fraction * double(rows) * double(s));
    bool screened = true;
    transpose_w_enc(p);
    if (recompute_all) {
      list_everything(rows, s, chunks);
    } else {
      // A bound that is not finite (an input with inf or NaN) proves nothing: every entry then.
      screened = bounds(xc, p, b.norms, rescale);
      if (screened && m > 0)
        screened = keep.per_row
                       ? list_row_candidates(b, static_cast<int>(std::min<std::size_t>(m, s)), rescale, chunks, most)
                       : list_batch_candidates(b, m, rescale, chunks, most);
    }
    std::size_t total = 0;
    for (int c = 0; c < chunks; ++c) total += chunk_entries[c].size();
    if (!recompute_all && (!screened || total > most)) {
      // Every entry as an FP32 dot: slower than the plain product, but the values the step reads
      // are the ones a successful screen gives, so a run's bits never depend on which guesses
      // worked (a resumed run starts without the last step's guess).
      last_fell_back = true;
      for (auto& list : chunk_entries) list.clear();
      list_everything(rows, s, chunks);
      total = std::size_t(rows) * std::size_t(s);
    }
    last_recomputed = total;
    recompute(xc, p, b.h, chunks, d);
    if (dead_columns_read) exact_dead_columns(xc, p, b.h);  // after the dots: these columns' values are the product's
  }

 private:
  /// w_enc_t = W_enc^T, and each column's squared norm into col_sq: 16 columns at a time through
  /// registers, their norms from the same 16 columns of W_enc while those are in the cache.
  void transpose_w_enc(const SaeParameters<T>& p) {
    const int d = static_cast<int>(p.input_dim()), s = static_cast<int>(p.num_latents());
    if (w_enc_t.extent(0) != static_cast<std::size_t>(s) || w_enc_t.extent(1) != static_cast<std::size_t>(d))
      w_enc_t = Matrix<T>("screen_w_enc_t", s, d);
    col_sq.resize(s);
    const auto w = p.w_enc;
    const auto wt = w_enc_t;
    const int blocks = (s + 15) / 16;
    host_rows("synthsae::screen_transpose", blocks, 32 * d, [&](int blk) {
      const int j0 = blk * 16, j1 = std::min(s, j0 + 16);
      int k = 0;
#ifdef SYNTHSAE_TRANSPOSE_AVX
      if (j1 - j0 == 16)
        for (; k + 16 <= d; k += 16) {
          kernels::detail::store_transposed_16x8(&w(k, j0), s, &wt(j0, k), d, false, false);
          kernels::detail::store_transposed_16x8(&w(k, j0 + 8), s, &wt(j0 + 8, k), d, false, false);
        }
#endif
      for (; k < d; ++k)
        for (int j = j0; j < j1; ++j) wt(j, k) = w(k, j);
      // The 16 columns' sums side by side, each over its rows in order (the bits of one sum per
      // column): one chain of d dependent additions per column was half of this pass.
      double sq[16] = {};
      if (j1 - j0 == 16) {
        for (int q = 0; q < d; ++q)
          for (int u = 0; u < 16; ++u) sq[u] += double(w(q, j0 + u)) * double(w(q, j0 + u));
      } else {
        for (int q = 0; q < d; ++q)
          for (int u = 0; u < j1 - j0; ++u) sq[u] += double(w(q, j0 + u)) * double(w(q, j0 + u));
      }
      for (int j = j0; j < j1; ++j) col_sq[j] = sq[j - j0];
    });
  }

  /// row_scale, col_alpha and col_beta; false when one of them is not finite.
  bool bounds(const Matrix<T>& xc, const SaeParameters<T>& p, const Vector<T>& norms, bool rescale) {
    const int rows = static_cast<int>(xc.extent(0)), d = static_cast<int>(xc.extent(1));
    const int s = static_cast<int>(p.num_latents());
    const double kappa = screening_kappa(static_cast<std::size_t>(d));
    row_scale.resize(rows), col_alpha.resize(s), col_beta.resize(s);
    // Eight rows' sums side by side, each over its inputs in order (independent chains).
    constexpr int kRows = 8;
    host_rows("synthsae::screen_row_norms", (rows + kRows - 1) / kRows, kRows * d, [&](int g) {
      const int i0 = g * kRows, n = std::min(kRows, rows - i0);
      const T* row[kRows];
      for (int u = 0; u < kRows; ++u) row[u] = &xc(i0 + (u < n ? u : n - 1), 0);
      double sq[kRows] = {};
      for (int k = 0; k < d; ++k)
        for (int u = 0; u < kRows; ++u) sq[u] += double(row[u][k]) * double(row[u][k]);
      for (int u = 0; u < n; ++u) row_scale[i0 + u] = static_cast<float>(std::sqrt(sq[u]) + screening_norm_floor);
    });
    const auto bias = p.b_enc;
    for (int j = 0; j < s; ++j) {
      const double n = rescale ? double(norms(j)) : 1.0;
      col_alpha[j] = static_cast<float>(kappa * (std::sqrt(col_sq[j]) + screening_norm_floor) * n);
      col_beta[j] = static_cast<float>(kappa * (std::fabs(double(bias(j))) + screening_norm_floor) * n);
    }
    auto finite = [](const std::vector<float>& v) {
      return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
    };
    return finite(row_scale) && finite(col_alpha) && finite(col_beta);
  }

  /// The batch-wide part. With E_ij = row_scale_i alpha_j + beta_j, an entry's FP32 key lies in
  /// [key~ - E, key~ + E] around the BF16 one. For any g that at least m lower ends reach, the
  /// m-th largest FP32 key is >= g, so an entry whose upper end is below g can neither be kept
  /// nor move the threshold. One read-only pass lists the entries whose upper end reaches a guess
  /// g (the last step's answer, a little lower) and counts the lower ends that do; when at least m
  /// do, g is raised to L, the m-th largest of those lower ends (the tightest such bound), and the
  /// listed entries whose upper end reaches max(L, the smallest positive float) are the
  /// candidates. Otherwise a guess from the first rows' lower ends, then false (the caller
  /// recomputes every entry). Also false when the list passes `most` entries.
  bool list_batch_candidates(StepBuffers<T>& b, std::size_t m, bool rescale, int chunks, std::size_t most) {
    float guess = last_lower_m > 0 ? 0.97f * last_lower_m : guess_from_first_rows(b, m, rescale);
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!(guess > 0.0f)) break;  // at most m positive keys: most of the batch would be candidates
      const std::size_t reaching = list_upper_ends(b, guess, rescale, chunks, most / std::size_t(chunks) + 1);
      if (reaching == kOverflow) break;
      if (reaching >= m) return select_candidates(b, m, guess, rescale, chunks);
      if (attempt == 0) {
        const float from_rows = guess_from_first_rows(b, m, rescale);
        guess = from_rows < guess ? from_rows : 0.8f * guess;
      }
    }
    last_lower_m = 0;
    return false;
  }

  static constexpr std::size_t kOverflow = ~std::size_t{0};

  /// One row's ends: lower_j = key_j - e_j and upper_j = key_j + e_j with e_j = r alpha_j + beta_j
  /// (key = h n with `rescale`, else h); false when one of them is infinite or NaN. Eight columns
  /// at a time on AVX2 hosts (the scalar loop with its finiteness test stayed scalar).
  static bool row_ends_finite(const float* __restrict h, const float* __restrict n, const float* __restrict alpha,
                              const float* __restrict beta, float r, int s, bool rescale, float* __restrict lower,
                              float* __restrict upper) {
    int j = 0;
    bool finite = true;
#ifdef SYNTHSAE_LIST_AVX2
    const __m256 rv = _mm256_set1_ps(r), zero = _mm256_setzero_ps();
    __m256 all = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    for (; j + 8 <= s; j += 8) {
      __m256 k = _mm256_loadu_ps(h + j);
      if (rescale) k = _mm256_mul_ps(k, _mm256_loadu_ps(n + j));
      const __m256 e = _mm256_add_ps(_mm256_mul_ps(rv, _mm256_loadu_ps(alpha + j)), _mm256_loadu_ps(beta + j));
      const __m256 lo = _mm256_sub_ps(k, e), up = _mm256_add_ps(k, e);
      _mm256_storeu_ps(lower + j, lo);
      _mm256_storeu_ps(upper + j, up);
      // x - x is 0 for a finite x, NaN for an infinite or NaN one
      all = _mm256_and_ps(all, _mm256_cmp_ps(_mm256_sub_ps(lo, lo), zero, _CMP_EQ_OQ));
      all = _mm256_and_ps(all, _mm256_cmp_ps(_mm256_sub_ps(up, up), zero, _CMP_EQ_OQ));
    }
    finite = _mm256_movemask_ps(all) == 0xFF;
#endif
    for (; j < s; ++j) {  // (a compiler may fuse r * alpha + beta: either is a bound)
      const float key = rescale ? h[j] * n[j] : h[j];
      const float e = r * alpha[j] + beta[j];
      lower[j] = key - e, upper[j] = key + e;
      finite = finite && lower[j] - lower[j] == 0.0f && upper[j] - upper[j] == 0.0f;
    }
    return finite;
  }

  /// The per-row part (TopK). With the ends as above, row i's k-th largest FP32 key is at least
  /// L_i, the k-th largest of its lower ends, so an entry whose upper end is below L_i is not among
  /// the row's k largest, and one below the smallest positive float is not kept either (TopK keeps
  /// the positive keys): the candidates are the entries whose upper end reaches max(L_i, that
  /// float). Per row in the chunk's buffers: both ends, L_i by kth_largest_of_row, the listing.
  /// False when an end is not finite (nothing is proved) or the candidates pass `most`.
  bool list_row_candidates(StepBuffers<T>& b, int k, bool rescale, int chunks, std::size_t most) {
    const int rows = static_cast<int>(b.h.extent(0)), s = static_cast<int>(b.h.extent(1));
    if (k >= s) return false;  // every entry is selected
    const std::size_t room = most / std::size_t(chunks) + 1;
    const std::size_t per_chunk = std::size_t(s);
    if (row_ends.size() < 2 * per_chunk * chunks) row_ends.resize(2 * per_chunk * chunks);
    if (row_bits.size() < per_chunk * chunks)
      row_bits.resize(per_chunk * chunks), row_listed.resize(per_chunk * chunks);
    if (chunk_failed.size() < static_cast<std::size_t>(chunks)) chunk_failed.resize(chunks);
    const float* __restrict n = b.norms.data();
    const float* __restrict alpha = col_alpha.data();
    const float* __restrict beta = col_beta.data();
    host_rows("synthsae::screen_rows", chunks, std::int64_t{rows} / chunks * 12 * s, [&](int c) {
      int r0 = 0, r1 = 0;
      chunk_range(rows, c, chunks, r0, r1);
      float* __restrict lower = row_ends.data() + 2 * per_chunk * c;
      float* __restrict upper = lower + per_chunk;
      std::uint32_t* bits = row_bits.data() + per_chunk * c;
      int* listed = row_listed.data() + per_chunk * c;
      auto& out = chunk_entries[c];
      bool failed = false;
      for (int i = r0; i < r1 && !failed; ++i) {
        const float* __restrict h = &b.h(i, 0);
        const float r = row_scale[i];
        if (!row_ends_finite(h, n, alpha, beta, r, s, rescale, lower, upper)) {
          failed = true;
          break;
        }
        const float lower_k = detail::float_from_ordered_bits(detail::kth_largest_of_row(lower, s, k, bits, listed));
        const float cut = std::max(lower_k, std::numeric_limits<float>::denorm_min());
        detail::for_each_key_past<false>(upper, s, cut, [&](int j, float) { out.push_back({i, j}); });
        failed = out.size() > room;
      }
      chunk_failed[c] = failed;
    });
    for (int c = 0; c < chunks; ++c)
      if (chunk_failed[c]) return false;
    return true;
  }

  /// The want-th largest lower end among the first rows (1/16 of the batch, at least 64), with
  /// want about 1.25 times m's share plus four standard deviations.
  float guess_from_first_rows(const StepBuffers<T>& b, std::size_t m, bool rescale) {
    const int rows = static_cast<int>(b.h.extent(0)), s = static_cast<int>(b.h.extent(1));
    const int sample_rows = std::min(rows, std::max(64, rows / 16));
    const double m_sample = double(m) * sample_rows / rows;
    const auto want = static_cast<std::size_t>(std::ceil(1.25 * m_sample + 4.0 * std::sqrt(m_sample) + 8.0));
    sample_lower.resize(std::size_t(sample_rows) * s);
    for (int i = 0; i < sample_rows; ++i) {
      const float* h = &b.h(i, 0);
      const float* n = b.norms.data();
      float* out = sample_lower.data() + std::size_t(i) * s;
      for (int j = 0; j < s; ++j) out[j] = (rescale ? h[j] * n[j] : h[j]) - (row_scale[i] * col_alpha[j] + col_beta[j]);
    }
    // NaN breaks nth_element's ordering; the list pass then reports the NaN itself.
    sample_lower.erase(std::remove_if(sample_lower.begin(), sample_lower.end(), [](float v) { return std::isnan(v); }),
                       sample_lower.end());
    if (sample_lower.size() < want) return 0.0f;
    std::nth_element(sample_lower.begin(), sample_lower.begin() + (want - 1), sample_lower.end(), std::greater<float>());
    return sample_lower[want - 1];
  }

  /// Lists (chunk_listed) the entries whose upper end reaches g and returns how many lower ends
  /// do; kOverflow when a chunk's list passes `room`.
  std::size_t list_upper_ends(const StepBuffers<T>& b, float g, bool rescale, int chunks, std::size_t room) {
    const int rows = static_cast<int>(b.h.extent(0)), s = static_cast<int>(b.h.extent(1));
    if (chunk_reaching.size() < static_cast<std::size_t>(chunks)) chunk_reaching.resize(chunks);
    const float* __restrict n = b.norms.data();
    const float* __restrict alpha = col_alpha.data();
    const float* __restrict beta = col_beta.data();
    host_rows("synthsae::screen_list", chunks, std::int64_t{rows} / chunks * s, [&](int c) {
      int r0 = 0, r1 = 0;
      chunk_range(rows, c, chunks, r0, r1);
      auto& list = chunk_listed[c];
      list.clear();
      std::size_t reaching = 0;
      bool unordered = false;  // an upper end that is NaN (a BF16 operand rounded to inf) proves nothing
      for (int i = r0; i < r1 && list.size() <= room; ++i) {
        const float* __restrict h = &b.h(i, 0);
        const float r = row_scale[i];
        int j = 0;
#ifdef SYNTHSAE_LIST_AVX2
        // 8 columns at a time: the upper ends' mask lists (its set bits only: most blocks list
        // nothing), the lower ends' mask is counted.
        const __m256 gv = _mm256_set1_ps(g), rv = _mm256_set1_ps(r);
        for (; j + 8 <= s; j += 8) {
          __m256 k = _mm256_loadu_ps(h + j);
          if (rescale) k = _mm256_mul_ps(k, _mm256_loadu_ps(n + j));
          const __m256 e = _mm256_add_ps(_mm256_mul_ps(rv, _mm256_loadu_ps(alpha + j)), _mm256_loadu_ps(beta + j));
          const __m256 upper = _mm256_add_ps(k, e);
          auto up = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(upper, gv, _CMP_GE_OQ)));
          unordered = unordered || _mm256_movemask_ps(_mm256_cmp_ps(upper, upper, _CMP_UNORD_Q)) != 0;
          const auto low = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_sub_ps(k, e), gv, _CMP_GE_OQ)));
          reaching += static_cast<std::size_t>(__builtin_popcount(low));
          for (; up != 0; up &= up - 1) list.push_back({i, j + __builtin_ctz(up)});
        }
#endif
        for (; j < s; ++j) {  // one column at a time (a compiler may fuse r * alpha + beta here: either is a bound)
          const float k = rescale ? h[j] * n[j] : h[j];
          const float e = r * alpha[j] + beta[j];
          reaching += k - e >= g ? 1 : 0;
          unordered = unordered || std::isnan(k + e);
          if (k + e >= g) list.push_back({i, j});
        }
      }
      if (unordered) list.resize(room + 1);  // reported as an overflow: every entry is recomputed
      chunk_reaching[c] = reaching;
    });
    std::size_t reaching = 0;
    for (int c = 0; c < chunks; ++c) {
      if (chunk_listed[c].size() > room) return kOverflow;
      reaching += chunk_reaching[c];
    }
    return reaching;
  }

  /// From a list whose lower ends reach g at least m times: L, then the candidates.
  bool select_candidates(const StepBuffers<T>& b, std::size_t m, float g, bool rescale, int chunks) {
    auto key = [&](Entry e) { return rescale ? b.h(e.row, e.col) * b.norms(e.col) : b.h(e.row, e.col); };
    auto bound = [&](Entry e) { return row_scale[e.row] * col_alpha[e.col] + col_beta[e.col]; };
    listed_lower_bits.clear();
    for (int c = 0; c < chunks; ++c)
      for (const Entry e : chunk_listed[c]) {
        const float lower = key(e) - bound(e);
        if (lower >= g) listed_lower_bits.push_back(detail::ordered_bits(lower));
      }
    // (The pass's vector arithmetic may round an end differently from this scalar one: either is
    // a bound, but the count can come out below m here.)
    if (listed_lower_bits.size() < m) return false;
    const float lower_m = detail::float_from_ordered_bits(detail::kth_largest_bits(
        listed_lower_bits.data(), static_cast<int>(listed_lower_bits.size()), static_cast<int>(m)));
    last_lower_m = lower_m;
    const float cut = std::max(lower_m, std::numeric_limits<float>::denorm_min());
    for (int c = 0; c < chunks; ++c) {
      auto& out = chunk_entries[c];
      for (const Entry e : chunk_listed[c])
        if (key(e) + bound(e) >= cut) out.push_back(e);
    }
    return true;
  }

  /// dead_columns = the columns `dead` marks (every column when it is empty, as AuxK reads it).
  void list_dead(const DeadMask& dead, int s) {
    const auto on_host = Kokkos::create_mirror_view_and_copy(HostSpace(), dead);
    dead_columns.clear();
    for (int j = 0; j < s; ++j)
      if (on_host.extent(0) == 0 || on_host(j)) dead_columns.push_back(j);
  }

  /// The dead latents' columns, all of them, by an FP32 product over those columns: AuxK reads
  /// them whole when it takes every dead latent, and picks many per row otherwise (each row's
  /// picks would need most of its dead columns as candidates). With the gather and the scatter
  /// they cost more than their share of the plain product (hence run's limit of an eighth).
  void exact_dead_columns(const Matrix<T>& xc, const SaeParameters<T>& p, const Matrix<T>& h) {
    const int rows = static_cast<int>(xc.extent(0)), d = static_cast<int>(xc.extent(1));
    const int s = static_cast<int>(p.num_latents());
    const int n = static_cast<int>(dead_columns.size());
    if (n == 0) return;
    if (dead_w.extent(0) != std::size_t(d) || dead_w.extent(1) != std::size_t(s) || dead_h.extent(0) != std::size_t(rows)) {
      dead_w = Matrix<T>("screen_dead_w", d, s);  // room for every column: allocated once per shape
      dead_bias = Vector<T>("screen_dead_bias", s);
      dead_h = Matrix<T>("screen_dead_h", rows, s);
    }
    const int* cols = dead_columns.data();
    const auto w = p.w_enc;
    const auto wd = Kokkos::subview(dead_w, Kokkos::ALL, std::make_pair(0, n));
    const auto bd = Kokkos::subview(dead_bias, std::make_pair(0, n));
    const auto hd = Kokkos::subview(dead_h, Kokkos::ALL, std::make_pair(0, n));
    host_rows("synthsae::screen_dead_w", d, n, [&](int k) {
      for (int q = 0; q < n; ++q) wd(k, q) = w(k, cols[q]);
    });
    for (int q = 0; q < n; ++q) bd(q) = p.b_enc(cols[q]);
    gemm_onto_rows(Op::N, Op::N, T(1), xc, wd, bd, hd, GemmMath::fp32);
    host_rows("synthsae::screen_dead_h", rows, n, [&](int i) {
      for (int q = 0; q < n; ++q) h(i, cols[q]) = hd(i, q);
    });
  }

  void list_everything(int rows, int s, int chunks) {
    for (int c = 0; c < chunks; ++c) {
      int r0 = 0, r1 = 0;
      chunk_range(rows, c, chunks, r0, r1);
      for (int i = r0; i < r1; ++i)
        for (int j = 0; j < s; ++j) chunk_entries[c].push_back({i, j});
    }
  }

  /// h(i, j) = b_enc_j + xc_i . W_enc col j at every listed entry (an entry listed twice gets the
  /// same value twice).
  void recompute(const Matrix<T>& xc, const SaeParameters<T>& p, const Matrix<T>& h, int chunks, int d) {  // after transpose_w_enc
    const auto bias = p.b_enc;
    const auto wt = w_enc_t;
    std::int64_t most = 1;
    for (int c = 0; c < chunks; ++c) most = std::max<std::int64_t>(most, chunk_entries[c].size());
    host_rows("synthsae::screen_recompute", chunks, most * 2 * d, [&](int c) {
      for (const Entry e : chunk_entries[c])
        h(e.row, e.col) = bias(e.col) + kernels::dot_contiguous(&xc(e.row, 0), &wt(e.col, 0), d);
    });
  }
};

}  // namespace synthsae
