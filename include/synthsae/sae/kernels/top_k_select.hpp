#pragma once
// Selection kernels for the TopK family: per-row top-k (a bounded min-heap per row) and the
// batch-wide top-m of non-negative values (two-pass radix select on float bit patterns).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <type_traits>
#include <vector>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/host_parallel.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/core/float16.hpp"

#if defined(__AVX2__) && !defined(__CUDACC__)
#include <immintrin.h>
#define SYNTHSAE_LIST_AVX2 1
#endif
#if defined(__AVX512F__) && !defined(__CUDACC__)
#define SYNTHSAE_LIST_AVX512 1
#endif

namespace synthsae {

/// Largest k the per-row heap serves (it lives in registers/stack); a larger k goes to the
/// per-row radix selection, which has no limit (AuxK's k = d_in / 2 at d_in = 4,096 and more).
inline constexpr int kMaxHeapTopK = 1024;

namespace detail {

/// The float's (or double's) bit pattern mapped to an unsigned integer of the same order
/// (-0 and +0 equal, as the comparison operators have them).
template <class T>
SYNTHSAE_HD auto ordered_bits(T v) {
  if constexpr (sizeof(T) == 4) {
    std::uint32_t u = 0;
    const float f = v == T(0) ? 0.0f : static_cast<float>(v);
    std::memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  } else {
    std::uint64_t u = 0;
    const double d = v == T(0) ? 0.0 : static_cast<double>(v);
    std::memcpy(&u, &d, sizeof u);
    return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
  }
}

/// ordered_bits' inverse for float (of the two zeros, +0).
inline float float_from_ordered_bits(std::uint32_t u) {
  return bits_float((u & 0x80000000u) ? (u & 0x7fffffffu) : ~u);
}

/// One radix pass's digit of the k-th largest key: the highest bin whose count, with the counts
/// above it, reaches `need`; `need` becomes the number still to take from that bin.
SYNTHSAE_HD int kth_largest_digit(const int* hist, int& need) {
  int bin = 255;
  for (; bin > 0 && hist[bin] < need; --bin) need -= hist[bin];
  return bin;
}

/// Per-row top-k by radix selection on the ordered bit patterns, one 8-bit digit per pass
/// (256 bins on the stack): finds the k-th largest key of the row, keeps every key above it
/// and the ties at it from the lowest column on, which is the heap's rule. Any 0 <= k.
template <class T>
void row_top_k_radix(const Matrix<T>& key, int k, const Kokkos::View<std::uint8_t**, Kokkos::LayoutRight, MemSpace>& mask,
                     const Kokkos::View<const std::uint8_t*, MemSpace>& allowed) {
  const int s = static_cast<int>(key.extent(1));
  const bool filter = allowed.extent(0) > 0;
  using Bits = decltype(ordered_bits(T(0)));
  constexpr int kPasses = static_cast<int>(sizeof(Bits));
  host_rows(
      "synthsae::row_top_k_radix", static_cast<std::int64_t>(key.extent(0)), 8 * s, KOKKOS_LAMBDA(int i) {
        int candidates = 0;
        for (int j = 0; j < s; ++j) {
          mask(i, j) = 0;
          candidates += (!filter || allowed(j)) ? 1 : 0;
        }
        if (k == 0) return;
        if (candidates <= k) {
          for (int j = 0; j < s; ++j) mask(i, j) = (!filter || allowed(j)) ? 1 : 0;
          return;
        }
        // Invariant: the k-th largest has the digits fixed so far (prefix under prefix_mask),
        // and `need` of the keys with that prefix rank at or above it.
        Bits prefix = 0, prefix_mask = 0;
        int need = k;
        for (int pass = kPasses - 1; pass >= 0; --pass) {
          int hist[256];
          for (int b = 0; b < 256; ++b) hist[b] = 0;
          const int shift = 8 * pass;
          for (int j = 0; j < s; ++j) {
            if (filter && !allowed(j)) continue;
            const Bits u = ordered_bits(key(i, j));
            if ((u & prefix_mask) == prefix) ++hist[static_cast<int>((u >> shift) & Bits(0xFF))];
          }
          const int bin = kth_largest_digit(hist, need);
          prefix |= Bits(bin) << shift;
          prefix_mask |= Bits(0xFF) << shift;
        }
        // prefix is now the k-th largest key; `need` of its ties are kept, lowest columns first.
        for (int j = 0; j < s; ++j) {
          if (filter && !allowed(j)) continue;
          const Bits u = ordered_bits(key(i, j));
          if (u > prefix) {
            mask(i, j) = 1;
          } else if (u == prefix && need > 0) {
            mask(i, j) = 1;
            --need;
          }
        }
      });
}

/// The same radix selection with one team of threads per row (the GPU's form; any execution
/// space runs it, a host one with teams of one thread): each pass's 256-bin histogram in the
/// team's scratch memory, filled by all its threads, and the ties at the k-th key kept in
/// column order by a team scan. The same mask as row_top_k_radix.
template <class T, class Space = ExecSpace>
void row_top_k_by_teams(const Matrix<T>& key, int k, const Kokkos::View<std::uint8_t**, Kokkos::LayoutRight, MemSpace>& mask,
                        const Kokkos::View<const std::uint8_t*, MemSpace>& allowed) {
  const int s = static_cast<int>(key.extent(1));
  const bool filter = allowed.extent(0) > 0;
  using Bits = decltype(ordered_bits(T(0)));
  constexpr int kPasses = static_cast<int>(sizeof(Bits));
  using Policy = Kokkos::TeamPolicy<Space>;
  using Member = typename Policy::member_type;
  using Histogram = Kokkos::View<int*, typename Space::scratch_memory_space, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
  const int team = host_accessible_v<Space> ? 1 : 256;  // 4,096 columns: 16 per thread and pass
  const Policy policy = Policy(static_cast<int>(key.extent(0)), team)
                            .set_scratch_size(0, Kokkos::PerTeam(static_cast<int>(Histogram::shmem_size(256))));
  Kokkos::parallel_for(
      "synthsae::row_top_k_by_teams", policy, KOKKOS_LAMBDA(const Member& m) {
        const int i = m.league_rank();
        int candidates = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(m, s), [&](int j, int& c) { c += (!filter || allowed(j)) ? 1 : 0; }, candidates);
        if (k == 0 || candidates <= k) {
          Kokkos::parallel_for(Kokkos::TeamThreadRange(m, s),
                               [&](int j) { mask(i, j) = (k > 0 && (!filter || allowed(j))) ? 1 : 0; });
          return;
        }
        Histogram hist(m.team_scratch(0), 256);
        Bits prefix = 0, prefix_mask = 0;
        int need = k;
        for (int pass = kPasses - 1; pass >= 0; --pass) {
          const int shift = 8 * pass;
          Kokkos::parallel_for(Kokkos::TeamThreadRange(m, 256), [&](int b) { hist(b) = 0; });
          m.team_barrier();
          Kokkos::parallel_for(Kokkos::TeamThreadRange(m, s), [&](int j) {
            if (filter && !allowed(j)) return;
            const Bits u = ordered_bits(key(i, j));
            if ((u & prefix_mask) == prefix) Kokkos::atomic_add(&hist(static_cast<int>((u >> shift) & Bits(0xFF))), 1);
          });
          m.team_barrier();
          // Every thread walks the same 256 counts: all agree on the digit and on `need`.
          const int bin = kth_largest_digit(hist.data(), need);
          prefix |= Bits(bin) << shift;
          prefix_mask |= Bits(0xFF) << shift;
          m.team_barrier();  // before the next pass clears the counts
        }
        // prefix is the k-th largest key: keep every key above it and its first `need` ties.
        Kokkos::parallel_scan(Kokkos::TeamThreadRange(m, s), [&](int j, int& ties_before, const bool final) {
          const bool ok = !filter || allowed(j);
          const Bits u = ok ? ordered_bits(key(i, j)) : Bits(0);
          const bool tie = ok && u == prefix;
          if (final) mask(i, j) = (ok && (u > prefix || (tie && ties_before < need))) ? 1 : 0;
          ties_before += tie ? 1 : 0;
        });
      });
}

/// One row of the host's heap selection: the columns j < s with allowed(j) of the k largest
/// key_row[j] (0 <= k <= kMaxHeapTopK), ties to the lower column, into heap[0 .. returned size)
/// in heap order. A bounded min-heap (on the caller's stack; a GPU never instantiates it).
template <class T, class Allowed>
int heap_top_k_of_row(const T* key_row, int s, int k, const Allowed& allowed, int* heap) {
  int size = 0;
  auto less = [&](int a, int b) {  // "a ranks below b"
    const T ka = key_row[a], kb = key_row[b];
    return ka < kb || (ka == kb && a > b);
  };
  for (int j = 0; j < s; ++j) {
    if (!allowed(j)) continue;
    if (size < k) {
      int pos = size++;
      heap[pos] = j;
      while (pos > 0 && less(heap[pos], heap[(pos - 1) / 2])) {
        const int parent = (pos - 1) / 2;
        const int t = heap[pos];
        heap[pos] = heap[parent], heap[parent] = t, pos = parent;
      }
    } else if (k > 0 && less(heap[0], j)) {
      heap[0] = j;
      int pos = 0;
      for (;;) {
        const int l = 2 * pos + 1, r = l + 1;
        int smallest = pos;
        if (l < size && less(heap[l], heap[smallest])) smallest = l;
        if (r < size && less(heap[r], heap[smallest])) smallest = r;
        if (smallest == pos) break;
        const int t = heap[pos];
        heap[pos] = heap[smallest], heap[smallest] = t, pos = smallest;
      }
    }
  }
  return size;
}

/// The host's per-row top-k for k <= kMaxHeapTopK: heap_top_k_of_row per row, into the mask.
template <class T>
void row_top_k_heap(const Matrix<T>& key, int k, const Kokkos::View<std::uint8_t**, Kokkos::LayoutRight, MemSpace>& mask,
                    const Kokkos::View<const std::uint8_t*, MemSpace>& allowed) {
  const int s = static_cast<int>(key.extent(1));
  const bool filter = allowed.extent(0) > 0;
  host_rows(
      "synthsae::row_top_k", static_cast<std::int64_t>(key.extent(0)), 4 * s, KOKKOS_LAMBDA(int i) {
        int heap[kMaxHeapTopK];
        for (int j = 0; j < s; ++j) mask(i, j) = 0;
        const int size = heap_top_k_of_row(
            &key(i, 0), s, k, [&](int j) { return !filter || allowed(j) != 0; }, heap);
        for (int q = 0; q < size; ++q) mask(i, heap[q]) = 1;
      });
}

/// A key's ordered bits (ordered_bits' type: 32 bits for float, 64 for double).
template <class T>
using OrderedBits = decltype(ordered_bits(T(0)));

/// The k-th largest of v[0..n) (1 <= k <= n), by a binary search over the bits: the largest t
/// with at least k values >= t is that value. One branch-free count per bit, which compilers
/// vectorise, instead of nth_element's data-dependent branches (AuxK's rows hold a hundred or so
/// keys, where nth_element's mispredictions were most of the selection's time). Every value
/// shares the bits above the highest bit where the least and the greatest differ, so the search
/// starts below them; and once exactly k values reach a prefix, the answer is the least of those
/// (about ten counts for a short list of keys, instead of 32).
template <class Bits>
Bits kth_largest_bits(const Bits* v, int n, int k) {
  Bits lo = v[0], hi = v[0];
  for (int q = 1; q < n; ++q) lo = v[q] < lo ? v[q] : lo, hi = v[q] > hi ? v[q] : hi;
  if (lo == hi) return lo;
  constexpr int kBits = int(sizeof(Bits)) * 8;
  int top = kBits - 1;
  while (((lo ^ hi) >> top) == 0) --top;                                     // the highest bit they differ in
  Bits t = top == kBits - 1 ? Bits(0) : Bits(lo >> (top + 1)) << (top + 1);  // their common prefix
  for (int bit = top; bit >= 0; --bit) {
    const Bits c = t | (Bits(1) << bit);
    int count = 0;
    for (int q = 0; q < n; ++q) count += v[q] >= c ? 1 : 0;
    if (count == k) {  // the k largest are exactly the values >= c
      Bits least = hi;
      for (int q = 0; q < n; ++q) {  // a masked minimum (one select, then min: it vectorises)
        const Bits x = v[q] >= c ? v[q] : hi;
        least = x < least ? x : least;
      }
      return least;
    }
    if (count > k) t = c;
  }
  return t;
}

/// Keys sampled at a stride for a selection's pivot.
inline constexpr int kPivotSample = 64;

/// The rank among kPivotSample keys sampled at a stride from n that about k + 4 SD + 1 of the
/// sampled shares reach (so the keys at or above it hold the k largest in all but rare rows),
/// or 0 where a pivot does not pay (short rows, or k near n).
inline int sampled_pivot_rank(int n, int k) {
  if (n < 4 * kPivotSample) return 0;
  const double expect = double(kPivotSample) * k / n;  // sampled keys at or above the k-th largest
  const int rank = static_cast<int>(std::ceil(expect + 4.0 * std::sqrt(expect))) + 1;
  return rank < kPivotSample ? rank : 0;
}

/// The columns of the k largest of a list (1 <= k <= listed), ties at the k-th kept from the
/// lowest column on: scratch[q] is entry q's ordered bits, kept[q] its column, columns ascending;
/// writes the chosen columns to out in increasing order and returns k. Every entry of the row
/// that reaches the k-th largest must be on the list (a list of the keys at or above a pivot that
/// k of them reach). kept is overwritten.
template <class Bits>
int keep_k_largest(const Bits* scratch, int* kept, int listed, int k, int* out) {
  const Bits kth = kth_largest_bits(scratch, listed, k);  // every key above it, and the k-th itself, is listed
  int reach = 0;
  for (int q = 0; q < listed; ++q) reach += scratch[q] >= kth ? 1 : 0;
  int m = 0;
  if (reach == k) {  // no tie beyond the k-th (the usual case): exactly the keys reaching it
    for (int q = 0; q < listed; ++q) {  // compacted in place without branches (m <= q)
      kept[m] = kept[q];
      m += scratch[q] >= kth ? 1 : 0;
    }
  } else {
    int above = 0;
    for (int q = 0; q < listed; ++q) above += scratch[q] > kth ? 1 : 0;
    int need = k - above;  // the ties at kth that fit once every key above it is kept
    for (int q = 0; q < listed; ++q) {  // the same, with a count of the ties still to take (the
      const Bits v = scratch[q];        // branch per key was a third of the selection's time)
      const bool tie = v == kth;
      const bool take = (v > kth) | (tie & (need > 0));
      need -= take & tie;
      kept[m] = kept[q];
      m += take;
    }
  }
  std::copy(kept, kept + m, out);
  return m;
}

#ifdef SYNTHSAE_LIST_AVX512
/// ordered_bits of sixteen floats: either zero as +0, then a negative's bits inverted and a
/// positive's sign bit set.
inline __m512i ordered_bits16(__m512 v) {
  const __m512i u =
      _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ), _mm512_castps_si512(v));
  const __mmask16 negative = _mm512_cmplt_epi32_mask(u, _mm512_setzero_si512());
  return _mm512_mask_xor_epi32(_mm512_or_si512(u, _mm512_set1_epi32(static_cast<int>(0x80000000u))), negative, u,
                               _mm512_set1_epi32(-1));
}

/// Appends the lanes of `pass` (ascending) to bits and columns at count; returns the new count.
/// Compressed in registers and stored whole (a compressing store to memory is slow on AMD's
/// cores): the caller leaves room for sixteen more.
inline int append_lanes(__mmask16 pass, __m512i ordered, __m512i cols, std::uint32_t* bits, int* columns, int count) {
  _mm512_storeu_si512(bits + count, _mm512_maskz_compress_epi32(pass, ordered));
  _mm512_storeu_si512(columns + count, _mm512_maskz_compress_epi32(pass, cols));
  return count + __builtin_popcount(static_cast<unsigned>(pass));
}
#endif

/// Writes the ordered bits and columns of the candidates whose key_row[candidates[q]] has
/// ordered bits at or above pivot (NaNs too, by their bits, as the scalar loop compares them),
/// in list order, to bits and kept (room for n each); returns how many. On AVX-512
/// hosts sixteen candidates at a time (a gather, an unsigned compare of their ordered bits,
/// append_lanes); a listed count never passes the candidates scanned, so the whole stores stay
/// inside n.
template <class T>
int list_candidates_reaching(const T* key_row, const int* candidates, int n, OrderedBits<T> pivot, OrderedBits<T>* bits,
                             int* kept) {
  int listed = 0, q = 0;
#ifdef SYNTHSAE_LIST_AVX512
  if constexpr (std::is_same_v<T, float>) {
    const __m512i cut = _mm512_set1_epi32(static_cast<int>(pivot));
    for (; q + 16 <= n; q += 16) {
      const __m512i cols = _mm512_loadu_si512(candidates + q);
      const __m512i ordered = ordered_bits16(_mm512_mask_i32gather_ps(_mm512_setzero_ps(), 0xffff, cols, key_row, 4));
      listed = append_lanes(_mm512_cmpge_epu32_mask(ordered, cut), ordered, cols, bits, kept, listed);
    }
  }
#endif
  for (; q < n; ++q) {  // branch-free compaction: the write always, the advance if kept
    const OrderedBits<T> v = ordered_bits(key_row[candidates[q]]);
    bits[listed] = v, kept[listed] = candidates[q];
    listed += v >= pivot ? 1 : 0;
  }
  return listed;
}

/// The host's per-row top-k among a list of candidate columns (ascending): the k largest of
/// key_row[candidates[q]], the ties at the k-th key kept from the lowest column on (the heap's
/// rule; -0 and +0 tie), written to `out` in increasing column order; returns min(k, n).
/// `scratch` holds n keys' ordered bits, `kept` n columns. AuxK picks d_in / 2 of hundreds of
/// dead latents per row early in training, and a heap over every column with a rows x latents
/// mask cost a third of a training run. Here the r-th largest of 64 keys sampled at a stride is a
/// pivot that about k + 4 SD + 1 sampled shares of the keys reach; one pass keeps those (a short
/// list), and the k-th largest of the list is the answer whenever it holds k keys (otherwise the
/// list is every candidate).
template <class T>
int top_k_among(const T* key_row, const int* candidates, int n, int k, OrderedBits<T>* scratch, int* kept, int* out) {
  using Bits = OrderedBits<T>;
  if (k <= 0) return 0;
  if (n <= k) {
    std::copy(candidates, candidates + n, out);
    return n;
  }
  Bits pivot = 0;  // every key reaches it
  if (const int rank = sampled_pivot_rank(n, k); rank > 0) {
    for (int q = 0; q < kPivotSample; ++q)
      scratch[q] = ordered_bits(key_row[candidates[static_cast<std::int64_t>(q) * n / kPivotSample]]);
    pivot = kth_largest_bits(scratch, kPivotSample, rank);
  }
  int listed = list_candidates_reaching(key_row, candidates, n, pivot, scratch, kept);
  if (listed < k) {  // the pivot was too high: the list is every candidate
    for (int q = 0; q < n; ++q) scratch[q] = ordered_bits(key_row[candidates[q]]), kept[q] = candidates[q];
    listed = n;
  }
  return keep_k_largest(scratch, kept, listed, k, out);
}

}  // namespace detail

/// mask(i, j) = 1 for the k largest key(i, j) among columns with allowed(j) (all when
/// `allowed` is empty), ties to the lower column; 0 elsewhere. Any k >= 0: on the host a heap up
/// to kMaxHeapTopK, the radix selection above it; on a GPU the radix selection by teams (the same
/// mask).
template <class T>
void row_top_k(const Matrix<T>& key, int k, const Kokkos::View<std::uint8_t**, Kokkos::LayoutRight, MemSpace>& mask,
               const Kokkos::View<const std::uint8_t*, MemSpace>& allowed) {
  if (k < 0) throw ConfigError("k", show(k), "per-sample top-k needs k >= 0");
  if constexpr (!host_accessible_v<ExecSpace>) {
    detail::row_top_k_by_teams(key, k, mask, allowed);
  } else if (k > kMaxHeapTopK) {
    detail::row_top_k_radix(key, k, mask, allowed);
  } else {
    detail::row_top_k_heap(key, k, mask, allowed);
  }
}

/// Work arrays of batch_top_m_threshold, kept between calls (a training step selects every
/// batch): without it each call allocates and zero-fills half a megabyte or more, which on the
/// host costs fresh pages and on a GPU device allocations. Grown as needed, never shrunk.
struct BatchTopMWorkspace {
  Kokkos::View<std::int32_t**, Kokkos::LayoutRight, MemSpace> local_hist;  ///< host: per chunk
  Kokkos::View<std::int32_t*, MemSpace> device_hist;                         ///< GPU: one histogram
  std::vector<std::int64_t> high, low;                                      ///< the two passes' counts
  /// host: the listed candidates' float bits (positive floats: ordered as the values), and each
  /// candidate's flat position i * cols + j, in the same, row-major order.
  Kokkos::View<std::uint32_t*, MemSpace> candidate_bits;
  Kokkos::View<std::int64_t*, MemSpace> candidate_positions;
  /// host: how many candidates the last call listed, and the matrix they came from (null when
  /// the last call did not answer from candidates). Every entry >= that call's answer is one.
  std::size_t listed = 0;
  const void* listed_from = nullptr;
  std::vector<float> sample_positives;  ///< host: the sample's positive values
  /// host: one list per chunk of rows of the fused pass (threshold_from_candidates), appended
  /// to in row-major order and copied into candidate_bits and candidate_positions in chunk order.
  struct ChunkList {
    std::vector<std::uint32_t> bits;
    std::vector<std::int64_t> positions;
  };
  std::vector<ChunkList> chunk_lists;
  /// host: the previous call's answer; consecutive batches of a training run have nearly the
  /// same threshold, so the sample is first searched above half of it (exactness never rests on
  /// it: see threshold_from_candidates).
  float previous = 0.0f;
};

namespace detail {

/// The histogram bin of a value in one radix pass; false when the value does not take part.
struct RadixBin {
  bool low_half;
  std::uint32_t prefix;
  SYNTHSAE_HD bool operator()(float v, int& bin) const {
    if (!(v > 0.0f)) return false;
    const std::uint32_t bits = float_bits(v);
    if (low_half && (bits >> 16) != prefix) return false;
    bin = static_cast<int>(low_half ? (bits & 0xFFFFu) : (bits >> 16));
    return true;
  }
};

/// Counts of the positive entries of `values` (compared as float) whose bit pattern has
/// `(bits >> 16) == prefix` when `low_half`, by the selected 16 bits: the high half in the
/// first radix pass, the low half in the second. Host backends count into one private
/// histogram per chunk of rows (atomics on 65,536 shared bins cost more than the pass);
/// device backends use atomics.
template <class T>
void radix_histogram(const Matrix<T>& values, bool low_half, std::uint32_t prefix, BatchTopMWorkspace& ws,
                     std::vector<std::int64_t>& counts) {
  const int rows = static_cast<int>(values.extent(0)), cols = static_cast<int>(values.extent(1));
  counts.assign(65536, 0);
  const RadixBin bin_of{low_half, prefix};
  if constexpr (host_accessible_v<MemSpace>) {
    const int chunks = host_chunks(rows);
    if (ws.local_hist.extent(0) < static_cast<std::size_t>(chunks))
      ws.local_hist = decltype(ws.local_hist)("radix_local", chunks, 65536);
    const auto local = ws.local_hist;
    Kokkos::deep_copy(local, 0);
    host_rows(
        "synthsae::radix_histogram", static_cast<std::int64_t>(chunks), std::int64_t{rows} * cols / chunks, KOKKOS_LAMBDA(int c) {
          int r0 = 0, r1 = 0;
          chunk_range(rows, c, chunks, r0, r1);
          for (int i = r0; i < r1; ++i)
            for (int j = 0; j < cols; ++j) {
              int bin = 0;
              if (bin_of(static_cast<float>(values(i, j)), bin)) ++local(c, bin);
            }
        });
    Kokkos::fence();
    for (int c = 0; c < chunks; ++c)
      for (int b = 0; b < 65536; ++b) counts[b] += local(c, b);
  } else {
    // One thread per entry (coalesced reads, millions of threads), 32-bit counts: a batch has
    // far fewer than 2^31 entries.
    if (ws.device_hist.extent(0) != 65536) ws.device_hist = decltype(ws.device_hist)("radix_hist", 65536);
    const auto hist = ws.device_hist;
    Kokkos::deep_copy(hist, 0);
    const std::int64_t entries = std::int64_t{rows} * cols;
    Kokkos::parallel_for(
        "synthsae::radix_histogram", Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::int64_t>>(0, entries),
        KOKKOS_LAMBDA(std::int64_t e) {
          int bin = 0;
          if (bin_of(static_cast<float>(values(e / cols, e % cols)), bin)) Kokkos::atomic_add(&hist(bin), 1);
        });
    auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), hist);
    for (int b = 0; b < 65536; ++b) counts[b] = h(b);
  }
}

/// The two-pass radix selection over every entry: a 65,536-bin histogram of the high halves
/// of the float bit patterns (monotone for non-negative floats), then of the low halves within
/// the bin that holds the m-th largest.
template <class T>
float exact_batch_top_m_threshold(const Matrix<T>& values, std::size_t m, BatchTopMWorkspace& ws) {
  detail::radix_histogram(values, false, 0, ws, ws.high);
  const std::vector<std::int64_t>& h1 = ws.high;
  std::int64_t positives = 0;
  for (int b = 0; b < 65536; ++b) positives += h1[b];
  if (positives <= static_cast<std::int64_t>(m) || m == 0)
    return m == 0 ? std::numeric_limits<float>::infinity() : 0.0f;
  std::int64_t above = 0;
  int high = 65535;
  for (; high >= 0; --high) {
    if (above + h1[high] >= static_cast<std::int64_t>(m)) break;
    above += h1[high];
  }
  const std::int64_t need = static_cast<std::int64_t>(m) - above;
  const std::uint32_t prefix = static_cast<std::uint32_t>(high);
  detail::radix_histogram(values, true, prefix, ws, ws.low);
  const std::vector<std::int64_t>& h2 = ws.low;
  std::int64_t cum = 0;
  int low = 65535;
  for (; low > 0; --low) {
    if (cum + h2[low] >= need) break;
    cum += h2[low];
  }
  return bits_float((prefix << 16) | static_cast<std::uint32_t>(low));
}

/// The fused pass's row writer when the rows are already written (batch_top_m_threshold).
struct RowsAlreadyWritten {
  void operator()(int) const {}
};

/// body(j, float(row[j])) for every j < cols with float(row[j]) > cut (Strict) or >= cut, columns
/// ascending: for_each_selected (core/host_parallel.hpp) for a threshold on a row. With AVX2
/// (float rows) sixteen keys are compared at once and only the mask's set bits are visited: a
/// branch per key, taken at random where a block held a passing key, was most of BatchTopK's
/// candidate pass. NaN never passes (ordered comparisons, as the scalar tail).
template <bool Strict, class T, class Body>
void for_each_key_past(const T* row, int cols, float cut, const Body& body) {
  int j = 0;
#ifdef SYNTHSAE_LIST_AVX2
  if constexpr (std::is_same_v<T, float>) {
    constexpr int kPredicate = Strict ? _CMP_GT_OQ : _CMP_GE_OQ;
    const __m256 f = _mm256_set1_ps(cut);
    for (; j + 16 <= cols; j += 16) {
      const __m256 lo = _mm256_cmp_ps(_mm256_loadu_ps(row + j), f, kPredicate);
      const __m256 hi = _mm256_cmp_ps(_mm256_loadu_ps(row + j + 8), f, kPredicate);
      auto mask = static_cast<std::uint32_t>(_mm256_movemask_ps(lo)) |
                  (static_cast<std::uint32_t>(_mm256_movemask_ps(hi)) << 8);
      for (; mask != 0; mask &= mask - 1) {
        const int q = j + __builtin_ctz(mask);
        body(q, row[q]);
      }
    }
  }
#endif
  for (; j < cols; ++j) {
    const float v = static_cast<float>(row[j]);
    if (Strict ? v > cut : v >= cut) body(j, v);
  }
}

/// Writes the ordered bits (ordered_bits) and columns of every key of row[0 .. n) at or above
/// pivot (NaN never), columns ascending, to bits and listed (room for n each); returns how many.
/// Float rows on AVX-512 hosts sixteen keys at a time, their bits computed in one register and
/// the passing lanes appended whole (append_lanes; listed <= scanned, so a store never runs past
/// n); other float rows through for_each_key_past; double rows one key at a time.
template <class T>
int list_keys_at_least(const T* row, int n, T pivot, OrderedBits<T>* bits, int* listed) {
  int count = 0, j = 0;
  const auto take = [&](int q, T v) { bits[count] = ordered_bits(v), listed[count] = q, ++count; };
  if constexpr (std::is_same_v<T, float>) {
#ifdef SYNTHSAE_LIST_AVX512
    const __m512 cut = _mm512_set1_ps(pivot);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (; j + 16 <= n; j += 16) {
      const __m512 v = _mm512_loadu_ps(row + j);
      const __mmask16 pass = _mm512_cmp_ps_mask(v, cut, _CMP_GE_OQ);
      if (pass != 0)
        count =
            append_lanes(pass, ordered_bits16(v), _mm512_add_epi32(lane, _mm512_set1_epi32(j)), bits, listed, count);
    }
#else
    for_each_key_past<false>(row, n, pivot, take);
    return count;
#endif
  }
  for (; j < n; ++j)  // the AVX-512 tail, and every double row
    if (row[j] >= pivot) take(j, row[j]);
  return count;
}

/// Appends (base + j, float_bits(row[j])) for every j < cols with float(row[j]) >= floor, columns
/// ascending: the candidate pass's listing of one row (floor > 0: the bits of positive floats
/// order as the floats do).
template <class T>
void list_row_at_least(const T* row, int cols, float floor, std::int64_t base, std::vector<std::uint32_t>& bits,
                       std::vector<std::int64_t>& positions) {
  for_each_key_past<false>(row, cols, floor, [&](int j, float v) {
    positions.push_back(base + j);
    bits.push_back(float_bits(v));
  });
}

/// Writes a row of ranking keys, key_row[j] = h_row[j] * scale[j] (h_row[j] where scale is null),
/// and appends (base + j, float_bits(key)) for every key at or above floor > 0, columns
/// ascending: ranking_key_row then list_row_at_least, the same bits. On AVX-512 hosts (float
/// rows) in one loop: sixteen keys multiplied, stored and compared in registers and the passing
/// lanes compressed there (a row has a handful of candidates among a thousand keys, so the scan,
/// not the appends, is the work); elsewhere the two steps. bits and positions hold as many
/// entries on entry (the candidate pass's lists).
template <class T>
void write_keys_listing(const T* __restrict h_row, const T* __restrict scale, T* __restrict key_row, int cols,
                        float floor, std::int64_t base, std::vector<std::uint32_t>& bits,
                        std::vector<std::int64_t>& positions) {
  int j = 0;
#ifdef SYNTHSAE_LIST_AVX512
  if constexpr (std::is_same_v<T, float>) {
    const __m512 cut = _mm512_set1_ps(floor);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i start = _mm512_set1_epi64(base);
    std::size_t count = bits.size();
    for (; j + 16 <= cols; j += 16) {
      __m512 key = _mm512_loadu_ps(h_row + j);
      if (scale != nullptr) key = _mm512_mul_ps(key, _mm512_loadu_ps(scale + j));
      _mm512_storeu_ps(key_row + j, key);
      const __mmask16 pass = _mm512_cmp_ps_mask(key, cut, _CMP_GE_OQ);
      if (pass == 0) continue;
      if (bits.size() < count + 16) {  // room for whole stores of sixteen
        bits.resize(count + 16);
        positions.resize(count + 16);
      }
      _mm512_storeu_si512(bits.data() + count, _mm512_maskz_compress_epi32(pass, _mm512_castps_si512(key)));
      const __m512i cols16 = _mm512_maskz_compress_epi32(pass, _mm512_add_epi32(lane, _mm512_set1_epi32(j)));
      _mm512_storeu_si512(positions.data() + count,
                          _mm512_add_epi64(start, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(cols16))));
      _mm512_storeu_si512(positions.data() + count + 8,
                          _mm512_add_epi64(start, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(cols16, 1))));
      count += static_cast<std::size_t>(__builtin_popcount(static_cast<unsigned>(pass)));
    }
    bits.resize(count), positions.resize(count);
  }
#endif
  for (int q = j; q < cols; ++q) key_row[q] = scale != nullptr ? h_row[q] * scale[q] : h_row[q];
  list_row_at_least(key_row + j, cols - j, floor, base + j, bits, positions);
}

/// Appends float(row[j]) for every j < cols with float(row[j]) > cut, in column order: the
/// candidate pass's sample, scanned on one core.
template <class T>
void append_above(const T* row, int cols, float cut, std::vector<float>& out) {
  for_each_key_past<true>(row, cols, cut, [&](int, float v) { out.push_back(v); });
}

/// Host backends: the same threshold from a candidate set. The first rows (1/16 of the batch)
/// give a lower bound t_lo whose expected count over the batch is ~1.25 m plus four standard
/// deviations; one pass keeps the entries >= t_lo, and the m-th largest of those is the answer
/// whenever there are at least m of them (checked: otherwise nullopt and the exact selection
/// runs). About 1/8 of the radix passes' work for the same, exact result.
/// `write_row(i)` writes row i of `values` (the ranking keys) just before the pass reads it, so
/// the keys are listed while the row is still in the core's cache instead of in two more passes
/// over the whole matrix. A writer may also offer `write_and_list(i, floor, base, bits,
/// positions)`, which writes row i and appends its candidates as list_row_at_least would (the pass
/// then visits the row once). Exactly one of the two runs per row, whatever the answer, and both
/// write row i, so `values` is complete on return (the exact selection and later readers of the
/// keys need every row).
template <class T, class WriteRow = RowsAlreadyWritten>
std::optional<float> threshold_from_candidates(const Matrix<T>& values, std::size_t m, BatchTopMWorkspace& ws,
                                               const WriteRow& write_row = {}) {
  ws.listed = 0, ws.listed_from = nullptr;  // set again only when this call answers from its list
  const int rows = static_cast<int>(values.extent(0)), cols = static_cast<int>(values.extent(1));
  const int sample_rows = std::max(64, rows / 16);
  auto write_first_rows = [&](int n) {  // threaded like the pass below; nothing to do when written
    if constexpr (!std::is_same_v<WriteRow, RowsAlreadyWritten>)
      host_rows("synthsae::write_rows", n, cols, [&](int i) { write_row(i); });
  };
  if (m == 0 || sample_rows * 4 > rows) {  // small batches: the exact passes are cheap
    write_first_rows(rows);
    return std::nullopt;
  }
  write_first_rows(sample_rows);
  const double m_sample = double(m) * sample_rows / rows;
  const auto want = static_cast<std::size_t>(std::ceil(1.25 * m_sample + 4.0 * std::sqrt(m_sample) + 8.0));
  // The sample's want-th largest positive value by selection: a copy and nth_element cost less
  // than the two 65,536-bin passes over so few entries.
  // Any lower bound is exact in the end (a count below m falls back to the exact passes); this
  // one is the sample's want-th largest. The sample's values above half the previous answer hold
  // it in most calls; when they are too few, all its positive values are searched.
  auto& positives = ws.sample_positives;
  auto collect_sample_above = [&](float cut) {
    positives.clear();
    for (int i = 0; i < sample_rows; ++i) append_above(&values(i, 0), cols, cut, positives);
  };
  float cut = std::max(0.5f * ws.previous, 0.0f);
  collect_sample_above(cut);
  if (cut > 0.0f && positives.size() < want) collect_sample_above(cut = 0.0f);
  // Below a positive cut, want values are the sample's want largest; with no cut, at most want
  // positives make every positive entry a candidate.
  float lower = 0.0f;
  if (positives.size() > want || (cut > 0.0f && positives.size() == want)) {
    std::nth_element(positives.begin(), positives.begin() + (want - 1), positives.end(), std::greater<float>());
    lower = positives[want - 1];
  }
  // v >= floor <=> v > 0 && v >= lower; one comparison keeps the pass free of unpredictable
  // branches (half the keys are negative).
  const float floor = std::max(lower, std::numeric_limits<float>::denorm_min());
  // One pass: each chunk writes its rows and lists their candidates in row-major order. A chunk
  // stops listing (never writing) once its list alone passes the most the answer may use: the
  // call then gives up, and a bound far below the m-th value costs no more than that in memory.
  const std::size_t most = 16 * m + 65536;
  const int chunks = host_chunks(rows);
  if (ws.chunk_lists.size() < static_cast<std::size_t>(chunks)) ws.chunk_lists.resize(chunks);
  host_rows("synthsae::candidate_list", chunks, std::int64_t{rows} * cols / chunks, [&](int c) {
    int r0 = 0, r1 = 0;
    chunk_range(rows, c, chunks, r0, r1);
    auto& list = ws.chunk_lists[c];
    list.bits.clear(), list.positions.clear();
    for (int i = r0; i < r1; ++i) {
      const std::int64_t base = std::int64_t{i} * cols;
      if constexpr (requires { write_row.write_and_list(i, floor, base, list.bits, list.positions); }) {
        if (i >= sample_rows && list.bits.size() <= most) {  // written and listed in one visit
          write_row.write_and_list(i, floor, base, list.bits, list.positions);
          continue;
        }
      }
      if (i >= sample_rows) write_row(i);
      if (list.bits.size() > most) continue;
      list_row_at_least(&values(i, 0), cols, floor, base, list.bits, list.positions);
    }
  });
  std::size_t total = 0;
  for (int c = 0; c < chunks; ++c) total += ws.chunk_lists[c].bits.size();
  // (More than INT_MAX candidates would need m near 2^27: the exact passes answer then.)
  if (total < m || total > most || total > std::size_t(std::numeric_limits<int>::max())) return std::nullopt;
  if (ws.candidate_bits.extent(0) < total) {
    ws.candidate_bits = decltype(ws.candidate_bits)("candidate_bits", total + total / 4);
    ws.candidate_positions = decltype(ws.candidate_positions)("candidate_positions", total + total / 4);
  }
  std::uint32_t* bits = ws.candidate_bits.data();
  std::int64_t* position = ws.candidate_positions.data();
  for (int c = 0; c < chunks; ++c) {  // chunk order = row-major order
    const auto& list = ws.chunk_lists[c];
    std::copy(list.bits.begin(), list.bits.end(), bits);
    std::copy(list.positions.begin(), list.positions.end(), position);
    bits += list.bits.size(), position += list.positions.size();
  }
  // The m-th largest by the bit search (branch-free counts; nth_element's unpredictable branches
  // over tens of thousands of candidates ran on one core while the others waited).
  const float answer = bits_float(kth_largest_bits(ws.candidate_bits.data(), static_cast<int>(total), static_cast<int>(m)));
  ws.previous = answer;
  ws.listed = total, ws.listed_from = values.data();
  return answer;
}

}  // namespace detail

/// batch_top_m_threshold (below) on host backends for `values` not yet written: `write_row(i)`
/// writes row i, and the selection reads each row right after it is written (the ranking keys of
/// a training step are listed in the pass that computes them). Every row is written on return.
template <class T, class WriteRow, class Space = MemSpace>
float batch_top_m_threshold_writing(const Matrix<T>& values, std::size_t m, BatchTopMWorkspace& ws,
                                    const WriteRow& write_row) {
  static_assert(host_accessible_v<Space>, "batch_top_m_threshold_writing: host backends only");
  const std::optional<float> fast = detail::threshold_from_candidates(values, m, ws, write_row);
  if (fast) return *fast;
  return detail::exact_batch_top_m_threshold(values, m, ws);
}

/// The m-th largest of the positive entries of `values` (compared as float), or 0 when there
/// are at most m positive entries (infinity when m = 0). Keeping the entries >= the result
/// (> 0 when it is 0) selects the batch-wide top m, plus any exact ties at the threshold.
template <class T>
float batch_top_m_threshold(const Matrix<T>& values, std::size_t m, BatchTopMWorkspace& ws) {
  if constexpr (host_accessible_v<MemSpace>)
    return batch_top_m_threshold_writing(values, m, ws, detail::RowsAlreadyWritten{});
  else
    return detail::exact_batch_top_m_threshold(values, m, ws);
}

/// The same with work arrays of its own (one call).
template <class T>
float batch_top_m_threshold(const Matrix<T>& values, std::size_t m) {
  BatchTopMWorkspace ws;
  return batch_top_m_threshold(values, m, ws);
}

}  // namespace synthsae
