#pragma once
// The host's per-row top-k of a training step (TopK, AbsTopK), straight to the active set: each
// row's ranking keys are written and its k largest listed in one visit to the row, while it is in
// the core's cache. The route through row_top_k's mask (the keys, a heap and a mask over every
// entry, then a gather counting and filling over every entry again) read and wrote the B x S
// arrays four times, which cost a TopK step a fifth of its time at 768 -> 4,096. The same entries
// either way: the heap's rule for ties, and for a row holding a NaN the heap's own answer (the
// radix selection's above k = 1,024, as row_top_k).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/host_parallel.hpp"
#include "synthsae/sae/kernels/active_set.hpp"
#include "synthsae/sae/kernels/selection.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/kernels/top_k_select.hpp"

namespace synthsae {

/// Work arrays of row_top_k_active, kept between steps (grown, never shrunk).
template <class T>
struct RowTopKLists {
  std::vector<int> columns;                  ///< rows x k: each row's chosen columns, ascending
  std::vector<int> counts;                   ///< rows: how many of them are kept
  std::vector<detail::OrderedBits<T>> bits;  ///< per chunk of rows, one row's listed keys
  std::vector<int> listed;                   ///< per chunk of rows, their columns
};

namespace detail {

/// Whether row[0 .. n) holds a NaN (branch-free, into an int: GCC 12 vectorises that, and left
/// a bool accumulator one scalar compare per key, a twentieth of a cpu-1k TopK run).
template <class T>
bool row_has_nan(const T* row, int n) {
  int nan = 0;
  for (int j = 0; j < n; ++j) nan |= row[j] != row[j];
  return nan != 0;
}

/// Lists (bits: ordered bits, listed: columns ascending) the keys of key_row[0 .. n) (1 <= k < n,
/// no NaN) at or above a pivot that k of them reach, and returns how many: every key that reaches
/// the row's k-th largest is listed. The pivot comes from keys sampled at a stride
/// (sampled_pivot_rank); one pass lists (float rows: list_keys_at_least, sixteen at a time);
/// when the sample put the pivot too high, the list is the whole row. `bits` and `listed` hold n.
template <class T>
int list_k_largest_reach(const T* key_row, int n, int k, OrderedBits<T>* bits, int* listed) {
  T pivot = -std::numeric_limits<T>::infinity();  // every key reaches it
  if (const int rank = sampled_pivot_rank(n, k); rank > 0) {
    // The sample's rank-th largest by the branch-free bit search (nth_element's unpredictable
    // branches were a third of this function's time at 1,024 latents), then the key with those
    // bits (either zero where the answer is a zero: they compare alike).
    T sample[kPivotSample];
    OrderedBits<T> sample_bits[kPivotSample];
    for (int q = 0; q < kPivotSample; ++q) {
      sample[q] = key_row[static_cast<std::int64_t>(q) * n / kPivotSample];
      sample_bits[q] = ordered_bits(sample[q]);
    }
    const OrderedBits<T> answer = kth_largest_bits(sample_bits, kPivotSample, rank);
    for (int q = 0; q < kPivotSample; ++q) pivot = sample_bits[q] == answer ? sample[q] : pivot;
  }
  int count = list_keys_at_least(key_row, n, pivot, bits, listed);
  if (count < k) {
    count = 0;
    for (int j = 0; j < n; ++j) bits[count] = ordered_bits(key_row[j]), listed[count] = j, ++count;
  }
  return count;
}

/// The columns of the k largest of key_row[0 .. n) (1 <= k < n, no NaN), ties at the k-th kept
/// from the lowest column on (the heap's rule; -0 and +0 tie), into out in increasing order;
/// returns k: the k largest of list_k_largest_reach's short list.
template <class T>
int top_k_of_row(const T* key_row, int n, int k, OrderedBits<T>* bits, int* listed, int* out) {
  return keep_k_largest(bits, listed, list_k_largest_reach(key_row, n, k, bits, listed), k, out);
}

/// The k-th largest of row[0 .. n) (1 <= k < n, no NaN), as its ordered bits.
template <class T>
OrderedBits<T> kth_largest_of_row(const T* row, int n, int k, OrderedBits<T>* bits, int* listed) {
  return kth_largest_bits(bits, list_k_largest_reach(row, n, k, bits, listed), k);
}

/// row_top_k's choice in one row (0 <= k <= s), its columns ascending into out; returns how many.
/// A row holding a NaN gets row_top_k's own answer, whatever NaN does to it: the heap's, or above
/// kMaxHeapTopK the radix selection's (the ordered bits of every key).
template <class T>
int row_top_k_columns(const T* key_row, int s, int k, OrderedBits<T>* bits, int* listed, int* out) {
  if (k == 0) return 0;
  if (k == s) {
    std::iota(out, out + s, 0);
    return s;
  }
  if (!row_has_nan(key_row, s)) return top_k_of_row(key_row, s, k, bits, listed, out);
  if (k <= kMaxHeapTopK) {
    const int m = heap_top_k_of_row(key_row, s, k, [](int) { return true; }, out);
    std::sort(out, out + m);
    return m;
  }
  for (int j = 0; j < s; ++j) bits[j] = ordered_bits(key_row[j]), listed[j] = j;
  return keep_k_largest(bits, listed, s, k, out);
}

}  // namespace detail

/// TopK's and AbsTopK's (`by_magnitude`: keys |h| or |h n|, every chosen entry kept with its sign)
/// sparse forward on the host: writes b.key (ranking_key's values, every entry, as AuxK reads
/// them), selects the k largest keys per row and fills `a` with their h (TopK: the chosen keys
/// above 0). The same set as row_top_k's mask and a gather over it.
template <class T>
void row_top_k_active(StepBuffers<T>& b, int k, bool rescale, bool by_magnitude, RowTopKLists<T>& ws, ActiveSet<T>& a) {
  const int rows = static_cast<int>(b.h.extent(0)), s = static_cast<int>(b.h.extent(1));
  k = std::clamp(k, 0, s);
  const int chunks = host_chunks(static_cast<std::size_t>(rows));
  const std::size_t stride = static_cast<std::size_t>(std::max(k, 1));
  if (ws.columns.size() < static_cast<std::size_t>(rows) * stride)
    ws.columns.resize(static_cast<std::size_t>(rows) * stride);
  if (ws.counts.size() < static_cast<std::size_t>(rows)) ws.counts.resize(rows);
  const std::size_t room = static_cast<std::size_t>(chunks) * static_cast<std::size_t>(s);
  if (ws.bits.size() < room) ws.bits.resize(room), ws.listed.resize(room);
  const auto h = b.h, key = b.key;
  const auto norms = b.norms;
  Kokkos::fence();
  // About eight operations per entry: the key's product and store, a compare, the short list.
  host_rows("synthsae::row_top_k_lists", chunks, std::int64_t{rows} / chunks * 8 * s, [&](int c) {
    int r0 = 0, r1 = 0;
    chunk_range(rows, c, chunks, r0, r1);
    detail::OrderedBits<T>* bits = ws.bits.data() + static_cast<std::size_t>(c) * s;
    int* listed = ws.listed.data() + static_cast<std::size_t>(c) * s;
    for (int i = r0; i < r1; ++i) {
      detail::ranking_key_row(h, norms, key, i, rescale, by_magnitude);
      const T* key_row = &key(i, 0);
      int* out = ws.columns.data() + static_cast<std::size_t>(i) * stride;
      int m = detail::row_top_k_columns(key_row, s, k, bits, listed, out);
      if (!by_magnitude) {  // TopK keeps the chosen keys above 0 (ReLU)
        int kept = 0;
        for (int q = 0; q < m; ++q) {
          out[kept] = out[q];
          kept += key_row[out[q]] > T(0) ? 1 : 0;
        }
        m = kept;
      }
      ws.counts[i] = m;
    }
  });
  a.gather_row_lists(rows, ws.columns.data(), static_cast<int>(stride), ws.counts.data(),
                     [&](int i, int j) { return h(i, j); });
}

}  // namespace synthsae
