#pragma once
// The active latents of one batch as compressed rows, and the kernels of the sparse training
// step that touch only them (TopK family: k of d_sae latents fire per sample).
//
// Entry e of row i: latent col(e), coefficient value(e), and grad(e), which holds dLoss/dc and
// then dLoss/dh. Within a row the entries are in increasing latent order, so a Matryoshka prefix
// [0, w) is a prefix of every row. Every kernel is deterministic: each output element is summed
// by one thread in a fixed order (bitwise-reproducible resumes need that).
//
// Costs with n active entries, D inputs: decode, decoder-row gradient, dLoss/dc and the encoder
// gradient are n * D multiply-adds each, against B * S * D for their dense GEMMs.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__AVX__) && !defined(__CUDACC__)
#include <immintrin.h>
#endif

#include "synthsae/core/backend.hpp"
#include "synthsae/core/host_parallel.hpp"
#include "synthsae/sae/kernels/bucket_index.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/parameters.hpp"

namespace synthsae {

template <class T>
struct ActiveSet {
  Kokkos::View<int*, MemSpace> row_start;  ///< [B + 1]
  Kokkos::View<int*, MemSpace> col;        ///< [capacity]
  Vector<T> value, grad;                   ///< [capacity]
  std::size_t entries = 0;
  // Column order (built on first use after each gather by index_columns): entries of latent j
  // are by_column[col_start(j) .. col_start(j+1)), in increasing row order; entry_row holds each
  // one's row.
  mutable Kokkos::View<int*, MemSpace> col_start, by_column, entry_row;
  mutable bool columns_indexed = false;
  mutable kernels::BucketIndex column_buckets;  ///< the device's builder of that order
  mutable Kokkos::View<int*, MemSpace> entry_position;  ///< its work space: each entry's place in that order
  mutable Matrix<T> scratch;  ///< kernels' work space (xc transposed, per-thread sums)
  mutable std::vector<int> column_cursors;  ///< the host's index: per chunk of rows, per latent
  std::vector<std::size_t> listed_chunks;   ///< gather_listed's work space: per chunk of rows

  std::size_t rows() const { return row_start.extent(0) == 0 ? 0 : row_start.extent(0) - 1; }

  /// Rough operations per row of a kernel that does `per_entry` work for each entry and
  /// `per_row` besides (host_rows decides from it whether to thread): with AuxK's d_in / 2
  /// entries per row a fixed estimate left the largest sparse kernels on one thread.
  std::int64_t row_cost(std::int64_t per_entry, std::int64_t per_row = 0) const {
    return per_item_cost(static_cast<std::int64_t>(rows()), per_entry, per_row);
  }
  /// The same estimate for a kernel that runs one item per latent column (of `columns`).
  std::int64_t column_cost(std::int64_t columns, std::int64_t per_entry, std::int64_t per_column = 0) const {
    return per_item_cost(columns, per_entry, per_column);
  }
  std::int64_t per_item_cost(std::int64_t items, std::int64_t per_entry, std::int64_t per_item) const {
    const std::int64_t n = std::max<std::int64_t>(items, 1);
    return per_item + per_entry * (static_cast<std::int64_t>(entries) + n - 1) / n;
  }

  /// Room for n entries in col, value and grad (contents kept only when no growth is needed).
  void reserve(std::size_t n) {
    if (col.extent(0) >= n) return;
    const std::size_t capacity = n + n / 4 + 16;  // headroom: the count varies per batch
    col = Kokkos::View<int*, MemSpace>("active_col", capacity);
    value = Vector<T>("active_value", capacity);
    grad = Vector<T>("active_grad", capacity);
  }

  /// Selects, for every row i < `rows` and column j < `cols`, the entries where
  /// `select(i, j, v)` returns true (writing the coefficient into v). Two passes: count, fill.
  /// With more than `max_entries` selected it stops after the count and returns false (the
  /// density-adaptive step then takes its dense path); the set is then empty.
  template <class Selector>
  bool gather(std::size_t num_rows, std::size_t num_cols, const Selector& select,
              std::size_t max_entries = ~std::size_t(0)) {
    if (row_start.extent(0) != num_rows + 1) row_start = Kokkos::View<int*, MemSpace>("active_row_start", num_rows + 1);
    const auto starts = row_start;
    const int s = static_cast<int>(num_cols);
    host_rows(
        "synthsae::active_count", static_cast<std::int64_t>(num_rows), s, KOKKOS_LAMBDA(int i) {
          int n = 0;
          T v{};
          for (int j = 0; j < s; ++j) n += select(i, j, v) ? 1 : 0;
          starts(i + 1) = n;
        });
    int total = 0;
    Kokkos::parallel_scan(
        "synthsae::active_offsets", Kokkos::RangePolicy<ExecSpace>(0, num_rows + 1),
        KOKKOS_LAMBDA(int i, int& partial, bool final) {
          const int n = i == 0 ? 0 : starts(i);
          partial += n;
          if (final) starts(i) = partial;
        },
        total);
    entries = static_cast<std::size_t>(total);
    columns_indexed = false;
    if (entries > max_entries) {
      entries = 0;
      Kokkos::deep_copy(row_start, 0);
      return false;
    }
    reserve(entries);
    const auto cols = col;
    const auto vals = value;
    host_rows(
        "synthsae::active_fill", static_cast<std::int64_t>(num_rows), s, KOKKOS_LAMBDA(int i) {
          int e = starts(i);
          for_each_selected(
              0, s,
              [&](int j) {
                T ignored{};
                return select(i, j, ignored);
              },
              [&](int j) {
                T v{};
                select(i, j, v);
                cols(e) = j, vals(e) = v, ++e;
              });
        });
    return true;
  }

  /// gather restricted to a list of flat positions i * num_cols + j in increasing order (host
  /// only): the same set as gather whenever `select` is false off the list. A batch-wide
  /// selection lists its few candidates while finding its threshold, and then needs no pass over
  /// the whole batch. Threaded by chunks of rows: each chunk finds its part of the list by
  /// bisection and writes its entries from its first listed place (there is room: at most one
  /// entry per listed position); the chunks are then moved down to close the gaps, in order.
  template <class Selector, class Space = MemSpace>
  void gather_listed(std::size_t num_rows, std::size_t num_cols, const std::int64_t* positions, std::size_t listed,
                     const Selector& select) {
    // Dependent on a template parameter: a CUDA build compiles the definition without calling it.
    static_assert(host_accessible_v<Space>, "gather_listed reads its list on the host");
    if (row_start.extent(0) != num_rows + 1) row_start = Kokkos::View<int*, MemSpace>("active_row_start", num_rows + 1);
    reserve(listed);
    Kokkos::fence();
    const auto width = static_cast<std::int64_t>(num_cols);
    const int n_rows = static_cast<int>(num_rows);
    const int chunks = host_chunks(num_rows);
    listed_chunks.assign(2 * static_cast<std::size_t>(chunks), 0);  // per chunk: first place, entries
    std::size_t* part = listed_chunks.data();
    const auto starts = row_start, cols = col, vals = value;
    // About 32 operations per listed place: two reads at scattered places of B x S arrays.
    host_rows("synthsae::active_gather_listed", chunks, 32 * static_cast<std::int64_t>(listed) / chunks, [&](int c) {
      int r0 = 0, r1 = 0;
      chunk_range(n_rows, c, chunks, r0, r1);
      const std::int64_t* first = std::lower_bound(positions, positions + listed, r0 * width);
      const std::int64_t* last = std::lower_bound(first, positions + listed, r1 * width);
      const std::size_t begin = static_cast<std::size_t>(first - positions);
      std::size_t e = begin;
      int row = r0;
      std::int64_t row_end = (r0 + 1) * width;  // positions ascend: the row advances by comparison
      if (r0 < r1) starts(r0) = static_cast<int>(e);
      for (const std::int64_t* q = first; q < last; ++q) {
        const std::int64_t position = *q;
        for (; position >= row_end; ++row, row_end += width) starts(row + 1) = static_cast<int>(e);
        const int j = static_cast<int>(position - (row_end - width));
        T v{};
        if (select(row, j, v)) cols(e) = j, vals(e) = v, ++e;
      }
      for (; row + 1 < r1; ++row) starts(row + 1) = static_cast<int>(e);
      part[2 * c] = begin, part[2 * c + 1] = e - begin;
    });
    std::size_t e = 0;
    for (int c = 0; c < chunks; ++c) {  // ascending: a chunk only moves down, onto places already read
      const std::size_t begin = part[2 * c], n = part[2 * c + 1];
      if (begin != e) {
        std::memmove(col.data() + e, col.data() + begin, n * sizeof(int));
        std::memmove(value.data() + e, value.data() + begin, n * sizeof(T));
        int r0 = 0, r1 = 0;
        chunk_range(n_rows, c, chunks, r0, r1);
        for (int r = r0; r < r1; ++r) row_start(r) -= static_cast<int>(begin - e);
      }
      e += n;
    }
    row_start(num_rows) = static_cast<int>(e);
    entries = e;
    columns_indexed = false;
  }

  /// The entries of per-row lists (host only): row i's are the columns
  /// lists[i * stride + q] for q < counts[i], in increasing order, with coefficients
  /// value_of(i, j). A per-row selection that lists its columns needs no pass over the batch.
  template <class ValueOf, class Space = MemSpace>
  void gather_row_lists(std::size_t num_rows, const int* lists, int stride, const int* counts,
                        const ValueOf& value_of) {
    static_assert(host_accessible_v<Space>, "gather_row_lists reads its lists on the host");
    if (row_start.extent(0) != num_rows + 1) row_start = Kokkos::View<int*, MemSpace>("active_row_start", num_rows + 1);
    Kokkos::fence();
    std::size_t e = 0;
    for (std::size_t i = 0; i < num_rows; ++i)
      row_start(i) = static_cast<int>(e), e += static_cast<std::size_t>(counts[i]);
    row_start(num_rows) = static_cast<int>(e);
    entries = e;
    columns_indexed = false;
    reserve(entries);
    const auto starts = row_start, cols = col;
    const auto vals = value;
    host_rows("synthsae::active_fill_lists", static_cast<std::int64_t>(num_rows), 4 * stride, [&](int i) {
      const int* list = lists + static_cast<std::size_t>(i) * stride;
      for (int q = 0, e0 = starts(i); q < counts[i]; ++q) cols(e0 + q) = list[q], vals(e0 + q) = value_of(i, list[q]);
    });
  }

  /// Rows of exactly `per_row` entries each (row i starts at i * per_row), left for the caller
  /// to fill in column order: a selection that knows its counts needs no counting pass.
  void assign_uniform_rows(std::size_t num_rows, int per_row) {
    if (row_start.extent(0) != num_rows + 1) row_start = Kokkos::View<int*, MemSpace>("active_row_start", num_rows + 1);
    const auto starts = row_start;
    Kokkos::parallel_for(
        "synthsae::active_uniform_rows", Kokkos::RangePolicy<ExecSpace>(0, num_rows + 1),
        KOKKOS_LAMBDA(int i) { starts(i) = i * per_row; });
    entries = num_rows * static_cast<std::size_t>(per_row);
    columns_indexed = false;
    reserve(entries);
  }

  /// The same rows and latents as `other`, with values of its own (the Gated SAE's second path);
  /// the row and column index views are shared, value and grad are not.
  void share_pattern(const ActiveSet& other) {
    row_start = other.row_start;
    col = other.col;
    entries = other.entries;
    if (value.extent(0) < col.extent(0)) {
      value = Vector<T>("active_value", col.extent(0));
      grad = Vector<T>("active_grad", col.extent(0));
    }
    columns_indexed = false;
  }

  /// Counting sort of the entries by latent, rows ascending within each: threaded by chunks of
  /// rows on the host, a stable bucket index on a GPU (the same order: entries ascend with their
  /// rows). Deterministic either way; a no-op when the index of this gather exists.
  void index_columns(std::size_t num_cols) const {
    if (columns_indexed && col_start.extent(0) == num_cols + 1) return;
    columns_indexed = true;
    if constexpr (!host_accessible_v<MemSpace>)
      index_columns_on_device(num_cols);
    else
      index_columns_on_host(num_cols);
  }

  /// The host's index_columns.
  template <class Space = MemSpace>
  void index_columns_on_host(std::size_t num_cols) const {
    // Dependent on a template parameter: a CUDA build compiles the definition without calling it.
    static_assert(host_accessible_v<Space>, "index_columns_on_host runs its loops on the host");
    Kokkos::fence();
    if (col_start.extent(0) != num_cols + 1) col_start = Kokkos::View<int*, MemSpace>("active_col_start", num_cols + 1);
    if (by_column.extent(0) < col.extent(0)) {
      by_column = Kokkos::View<int*, MemSpace>("active_by_column", col.extent(0));
      entry_row = Kokkos::View<int*, MemSpace>("active_entry_row", col.extent(0));
    }
    // Per chunk of rows, its count of entries per latent; the chunks' cursors start where the
    // chunks before them end, so each chunk places its rows by itself and every latent's entries
    // still ascend by row (the serial counting sort's order).
    const int n_rows = static_cast<int>(rows()), cols = static_cast<int>(num_cols);
    // Each chunk holds a count per latent: no more chunks than entries per latent, so that the
    // counts never outweigh the entries (many threads, a wide SAE, a sparse set).
    const int chunks = static_cast<int>(std::clamp<std::size_t>(entries / std::max<std::size_t>(num_cols, 1), 1,
                                                                static_cast<std::size_t>(host_chunks(n_rows))));
    column_cursors.assign(static_cast<std::size_t>(chunks) * cols, 0);
    int* cursors = column_cursors.data();
    const auto starts = row_start, entry_col = col, order = by_column, row_of = entry_row;
    const std::int64_t per_chunk = 8 * static_cast<std::int64_t>(entries) / chunks + cols;  // scattered counts
    host_rows("synthsae::index_columns_count", chunks, per_chunk, [&](int c) {
      int r0 = 0, r1 = 0;
      chunk_range(n_rows, c, chunks, r0, r1);
      if (r0 == r1) return;  // no rows: row_start may be empty
      int* count = cursors + std::size_t(c) * cols;
      for (int e = starts(r0); e < starts(r1); ++e) ++count[entry_col(e)];
    });
    int total = 0;
    for (int j = 0; j < cols; ++j) {
      col_start(j) = total;
      for (int c = 0; c < chunks; ++c) {
        const int n = cursors[std::size_t(c) * cols + j];
        cursors[std::size_t(c) * cols + j] = total;
        total += n;
      }
    }
    col_start(num_cols) = total;
    host_rows("synthsae::index_columns_place", chunks, per_chunk, [&](int c) {
      int r0 = 0, r1 = 0;
      chunk_range(n_rows, c, chunks, r0, r1);
      int* cursor = cursors + std::size_t(c) * cols;
      for (int i = r0; i < r1; ++i)
        for (int e = starts(i); e < starts(i + 1); ++e) {
          const int p = cursor[entry_col(e)]++;
          order(p) = e, row_of(p) = i;
        }
    });
  }

  /// index_columns on any execution space (public for the host test of the GPU's form): the
  /// bucket index of the entries by latent, then each position's row.
  void index_columns_on_device(std::size_t num_cols) const {
    const int n = static_cast<int>(entries);
    column_buckets.build(Kokkos::subview(col, Kokkos::make_pair(0, n)), entries, num_cols);
    col_start = column_buckets.offsets;
    by_column = column_buckets.order;
    if (entry_row.extent(0) < std::max<std::size_t>(entries, 1))
      entry_row = Kokkos::View<int*, MemSpace>("active_entry_row", std::max<std::size_t>(col.extent(0), 1));
    const auto starts = row_start, order = by_column, row_of = entry_row;
    if (entry_position.extent(0) < std::max<std::size_t>(entries, 1))
      entry_position = Kokkos::View<int*, MemSpace>("active_position", std::max<std::size_t>(col.extent(0), 1));
    const auto position = entry_position;
    Kokkos::parallel_for(
        "synthsae::active_positions", Kokkos::RangePolicy<ExecSpace>(0, n),
        KOKKOS_LAMBDA(int p) { position(order(p)) = p; });
    Kokkos::parallel_for(
        "synthsae::active_entry_rows", Kokkos::RangePolicy<ExecSpace>(0, rows()), KOKKOS_LAMBDA(int i) {
          for (int e = starts(i); e < starts(i + 1); ++e) row_of(position(e)) = i;
        });
  }
};

namespace kernels {

/// acc + v * w as the decodes add it: for floats on FMA hardware (and GPUs) one fused
/// multiply-add, rounded once, as decode_row's registers and a contracting compiler do; elsewhere
/// a plain product and sum (a libm fmaf per element would be slow and unvectorised).
template <class T>
SYNTHSAE_HD T decode_step(T v, T w, T acc) {
#if defined(__FMA__) || defined(__CUDACC__)
  if constexpr (std::is_same_v<T, float>) return fused_multiply_add(v, w, acc);
#endif
  return acc + v * w;
}

#if defined(__AVX2__) && defined(__FMA__) && !defined(__CUDACC__)
namespace detail {
/// One register of floats for sum_scaled_blocks: AVX2's eight lanes, AVX-512's sixteen.
struct FloatLanes256 {
  using Reg = __m256;
  static constexpr int kWidth = 8;
  static Reg load(const float* p) { return _mm256_loadu_ps(p); }
  static Reg zero() { return _mm256_setzero_ps(); }
  static Reg broadcast(float c) { return _mm256_set1_ps(c); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static void store(float* p, Reg v) { _mm256_storeu_ps(p, v); }
};
#if defined(__AVX512F__)
struct FloatLanes512 {
  using Reg = __m512;
  static constexpr int kWidth = 16;
  static Reg load(const float* p) { return _mm512_loadu_ps(p); }
  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg broadcast(float c) { return _mm512_set1_ps(c); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static void store(float* p, Reg v) { _mm512_storeu_ps(p, v); }
};
#endif

/// sum_scaled_rows over whole blocks of 8 registers from k0 on (each element one FMA per term,
/// in term order); returns where the blocks end.
template <class Lanes>
int sum_scaled_blocks(const float* init, const float* coef, const int* order, const int* row_of, const float* rows,
                      std::size_t stride, int begin, int end, float* out, int d, int k0) {
  constexpr int kRegs = 8, kBlock = kRegs * Lanes::kWidth;
  for (; k0 + kBlock <= d; k0 += kBlock) {
    typename Lanes::Reg acc[kRegs];
    for (int r = 0; r < kRegs; ++r) acc[r] = init ? Lanes::load(init + k0 + Lanes::kWidth * r) : Lanes::zero();
    for (int p = begin; p < end; ++p) {
      const float c = coef[order ? order[p] : p];
      if (c == 0.0f) continue;
      const auto v = Lanes::broadcast(c);
      const float* row = rows + static_cast<std::size_t>(row_of[p]) * stride + k0;
      for (int r = 0; r < kRegs; ++r) acc[r] = Lanes::fma(v, Lanes::load(row + Lanes::kWidth * r), acc[r]);
    }
    for (int r = 0; r < kRegs; ++r) Lanes::store(out + k0 + Lanes::kWidth * r, acc[r]);
  }
  return k0;
}
}  // namespace detail
#endif

/// out[k] = (init ? init[k] : 0) + sum over p in [begin, end) of c_p * row_p[k] for k < d, with
/// c_p = coef[order ? order[p] : p] and row_p = rows + row_of[p] * stride: each element summed in
/// p order by decode_step (for floats on FMA hardware one fused multiply-add per term: the bits
/// of a per-term axpy where the compiler contracts it, as GCC does at -O2), terms
/// with c_p = 0 skipped (adding 0 * row changes no finite sum, but for the sign of a -0 start).
/// AVX2 hosts (floats) keep 64 elements of out in eight registers across the terms (AVX-512
/// hosts 128), so each row is read once and out written once; an axpy per term loaded and
/// stored out every time, and the stores bound the loop. init may be out itself (accumulating). The host's sparse
/// decode and both weight gradients by latent are this sum; the GPU's team forms skip the same terms.
template <class T>
SYNTHSAE_HD void sum_scaled_rows(const T* init, const T* coef, const int* order, const int* row_of, const T* rows,
                                 std::size_t stride, int begin, int end, T* out, int d) {
  int k0 = 0;
#if defined(__AVX2__) && defined(__FMA__) && !defined(__CUDACC__)
  if constexpr (std::is_same_v<T, float>) {
#if defined(__AVX512F__)
    // 128 elements per pass: each term's order, coefficient, test and row address cost once per
    // 128 elements, not once per 64 (cpu-1k's rows are 128 long).
    k0 = detail::sum_scaled_blocks<detail::FloatLanes512>(init, coef, order, row_of, rows, stride, begin, end, out, d,
                                                          k0);
#endif
    k0 = detail::sum_scaled_blocks<detail::FloatLanes256>(init, coef, order, row_of, rows, stride, begin, end, out, d,
                                                          k0);
  }
#endif
  for (int k = k0; k < d; ++k) out[k] = init ? init[k] : T(0);
  for (int p = begin; p < end; ++p) {
    const T c = coef[order ? order[p] : p];
    if (c == T(0)) continue;
    const T* row = rows + static_cast<std::size_t>(row_of[p]) * stride;
    for (int k = k0; k < d; ++k) out[k] = decode_step(c, row[k], out[k]);
  }
}

/// out[k] = bias[k] + sum over e in [begin, end) of vals(e) * w(cols(e), k) for k < d: one row of
/// the sparse decode, summed as sum_scaled_rows sums (entries of value 0, a JumpReLU's window
/// kept for its gradient, are skipped).
template <class T, class Index, class Values, class Weights>
SYNTHSAE_HD void decode_row(const Index& cols, const Values& vals, const Weights& w, const T* bias, int begin, int end,
                            T* out, int d) {
  sum_scaled_rows<T>(bias, vals.data(), nullptr, cols.data(), w.data(), w.stride(0), begin, end, out, d);
}

/// Team size of the GPU's row kernels (one team per row, its threads over the D inputs); a host
/// space runs teams of one thread.
template <class Space>
constexpr int row_team_size() {
  return host_accessible_v<Space> ? 1 : 128;
}

/// The first entry of row i at or past latent `width` (rows ascend by latent, so the entries
/// below it are a prefix of the row).
template <class Index>
SYNTHSAE_HD int row_end_below(const Index& starts, const Index& cols, int i, int width) {
  int end = starts(i);
  while (end < starts(i + 1) && cols(end) < width) ++end;
  return end;
}

/// bias(k) + sum over entries [begin, end) of value(e) * w(col(e), k), in entry order: one
/// element of a decoded row, as the per-row form sums it.
template <class T, class Index>
SYNTHSAE_HD T decoded_element(const Index& cols, const Vector<T>& vals, const Matrix<T>& w, const Vector<T>& bias,
                              int begin, int end, int k) {
  T acc = bias(k);
  for (int e = begin; e < end; ++e)  // decode_row's rounding, and its zeros skipped
    if (vals(e) != T(0)) acc = decode_step(vals(e), w(cols(e), k), acc);
  return acc;
}

/// The entries of row i, one team: grad(e) (+)= g(i, :) . w(col(e), :) for e < live (a team
/// reduction over the inputs), grad(e) = 0 for the others unless accumulating. The calling team
/// must have finished writing g's row.
template <class Member, class T, class Index>
SYNTHSAE_HD void team_entry_dots(const Member& m, const Index& starts, const Index& cols, const Vector<T>& grad,
                                 const Matrix<T>& g, const Matrix<T>& w, int i, int live, bool accumulate) {
  const int d = static_cast<int>(w.extent(1));
  for (int e = starts(i); e < starts(i + 1); ++e) {
    T dot = 0;
    if (e < live) {
      const int j = cols(e);
      Kokkos::parallel_reduce(
          Kokkos::TeamThreadRange(m, d), [&](int k, T& acc) { acc += g(i, k) * w(j, k); }, dot);
    }
    Kokkos::single(Kokkos::PerTeam(m), [&]() {
      if (e < live)
        grad(e) = (accumulate ? grad(e) : T(0)) + dot;
      else if (!accumulate)
        grad(e) = T(0);
    });
  }
}

/// sparse_decode with one team per row, its threads over the inputs: the same sum per element,
/// in the same order, as the per-row form (the GPU's form; any execution space).
template <class T, class Space = ExecSpace>
void sparse_decode_by_teams(const ActiveSet<T>& a, const Matrix<T>& w, const Vector<T>& bias, const Matrix<T>& out,
                            int width) {
  const auto starts = a.row_start;
  const auto cols = a.col;
  const auto vals = a.value;
  const int d = static_cast<int>(w.extent(1));
  using Policy = Kokkos::TeamPolicy<Space>;
  Kokkos::parallel_for(
      "synthsae::sparse_decode_by_teams", Policy(static_cast<int>(a.rows()), row_team_size<Space>()),
      KOKKOS_LAMBDA(const typename Policy::member_type& m) {
        const int i = m.league_rank();
        const int begin = starts(i), end = row_end_below(starts, cols, i, width);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(m, d),
                             [&](int k) { out(i, k) = decoded_element(cols, vals, w, bias, begin, end, k); });
      });
}

/// sparse_row_dots with one team per row: each entry's dot product as a team reduction over the
/// inputs (another summation order than the per-row form: equal to rounding).
template <class T, class Space = ExecSpace>
void sparse_row_dots_by_teams(const ActiveSet<T>& a, const Matrix<T>& g, const Matrix<T>& w, bool accumulate,
                              int width) {
  const auto starts = a.row_start;
  const auto cols = a.col;
  const auto grad = a.grad;
  using Policy = Kokkos::TeamPolicy<Space>;
  Kokkos::parallel_for(
      "synthsae::sparse_row_dots_by_teams", Policy(static_cast<int>(a.rows()), row_team_size<Space>()),
      KOKKOS_LAMBDA(const typename Policy::member_type& m) {
        const int i = m.league_rank();
        team_entry_dots(m, starts, cols, grad, g, w, i, row_end_below(starts, cols, i, width), accumulate);
      });
}

/// out(i, :) = bias + sum over the entries of row i with col < width of value * w(col, :).
template <class T>
void sparse_decode(const ActiveSet<T>& a, const Matrix<T>& w, const Vector<T>& bias, const Matrix<T>& out, int width) {
  if constexpr (!host_accessible_v<ExecSpace>) {
    sparse_decode_by_teams(a, w, bias, out, width);
    return;
  }
  const auto starts = a.row_start;
  const auto cols = a.col;
  const auto vals = a.value;
  const int d = static_cast<int>(w.extent(1));
  host_rows(
      "synthsae::sparse_decode", static_cast<std::int64_t>(a.rows()), a.row_cost(2 * d, d), KOKKOS_LAMBDA(int i) {
        decode_row(cols, vals, w, &bias(0), starts(i), row_end_below(starts, cols, i, width), &out(i, 0), d);
      });
}

/// The fused reconstruction step of one level: x_hat = bias + sum over entries with col < width
/// of value * w(col, :); g = 2 (x_hat - x) / B (g may be x_hat's own view); grad(e) (+)= g(i, :)
/// . w(col(e), :) on those entries. Returns mean_b |x_hat_b - x_b|^2. One sweep over the active
/// decoder rows instead of three (they stay in cache within a row). An active output map compares
/// x_hat a_i + m_i with its target instead, as mse_and_gradient does.
template <class T, class Space = ExecSpace>
double sparse_reconstruct_by_teams(const ActiveSet<T>& a, const Matrix<T>& w, const Vector<T>& bias,
                                   const Matrix<T>& x, const Matrix<T>& x_hat, const Matrix<T>& g, int width,
                                   bool accumulate, const OutputMap<T>& map = {});

template <class T>
double sparse_reconstruct(const ActiveSet<T>& a, const Matrix<T>& w, const Vector<T>& bias, const Matrix<T>& x,
                          const Matrix<T>& x_hat, const Matrix<T>& g, int width, bool accumulate,
                          const OutputMap<T>& map = {}) {
  if constexpr (!host_accessible_v<ExecSpace>)
    return sparse_reconstruct_by_teams(a, w, bias, x, x_hat, g, width, accumulate, map);
  const auto starts = a.row_start;
  const auto cols = a.col;
  const auto vals = a.value, grad = a.grad;
  const int d = static_cast<int>(w.extent(1));
  const T factor = static_cast<T>(2.0 / double(x_hat.extent(0)));
  const bool mapped = map.active();
  const auto target = mapped ? map.target : x;
  const auto out_scale = map.scale, out_shift = map.shift;
  const double sq = host_rows_sum(
      "synthsae::sparse_reconstruct", static_cast<std::int64_t>(a.rows()), a.row_cost(4 * d, 4 * d),
      KOKKOS_LAMBDA(int i, double& acc) {
        const int end = row_end_below(starts, cols, i, width);
        decode_row(cols, vals, w, &bias(0), starts(i), end, &x_hat(i, 0), d);
        const T scale = mapped ? out_scale(i) : T(1), shift = mapped ? out_shift(i) : T(0);
        // Eight float64 partial sums of the squared error (one sum in order kept this loop
        // scalar), met in a fixed tree.
        constexpr int kSums = 8;
        double row[kSums] = {};
        for (int k0 = 0; k0 < d; k0 += kSums) {
          const int n = d - k0 < kSums ? d - k0 : kSums;
          for (int u = 0; u < n; ++u) {
            const int k = k0 + u;
            const T diff = mapped ? x_hat(i, k) * scale + shift - target(i, k) : x_hat(i, k) - target(i, k);
            row[u] += double(diff) * double(diff);
            g(i, k) = mapped ? factor * scale * diff : factor * diff;
          }
        }
        acc += sum_in_tree(row);
        for (int e = starts(i); e < starts(i + 1); ++e) {
          if (e >= end) {
            if (!accumulate) grad(e) = T(0);
            continue;
          }
          const T dot = dot_contiguous(&g(i, 0), &w(cols(e), 0), d);
          grad(e) = (accumulate ? grad(e) : T(0)) + dot;
        }
      });
  return sq / double(x_hat.extent(0));
}

/// sparse_reconstruct with one team per row (the GPU's form; any execution space): x_hat and g
/// per element as the per-row form computes them, the row's squared error and each entry's dot
/// product as team reductions (equal to rounding).
template <class T, class Space>
double sparse_reconstruct_by_teams(const ActiveSet<T>& a, const Matrix<T>& w, const Vector<T>& bias,
                                   const Matrix<T>& x, const Matrix<T>& x_hat, const Matrix<T>& g, int width,
                                   bool accumulate, const OutputMap<T>& map) {
  const auto starts = a.row_start;
  const auto cols = a.col;
  const auto vals = a.value, grad = a.grad;
  const int d = static_cast<int>(w.extent(1));
  const T factor = static_cast<T>(2.0 / double(x_hat.extent(0)));
  const bool mapped = map.active();
  const auto target = mapped ? map.target : x;
  const auto out_scale = map.scale, out_shift = map.shift;
  using Policy = Kokkos::TeamPolicy<Space>;
  double sq = 0;
  Kokkos::parallel_reduce(
      "synthsae::sparse_reconstruct_by_teams", Policy(static_cast<int>(a.rows()), row_team_size<Space>()),
      KOKKOS_LAMBDA(const typename Policy::member_type& m, double& total) {
        const int i = m.league_rank();
        const int begin = starts(i), end = row_end_below(starts, cols, i, width);
        const T scale = mapped ? out_scale(i) : T(1), shift = mapped ? out_shift(i) : T(0);
        double row = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(m, d),
            [&](int k, double& acc) {
              const T xh = decoded_element(cols, vals, w, bias, begin, end, k);
              x_hat(i, k) = xh;
              const T diff = mapped ? xh * scale + shift - target(i, k) : xh - target(i, k);
              acc += double(diff) * double(diff);
              g(i, k) = mapped ? factor * scale * diff : factor * diff;  // g may be x_hat: read first
            },
            row);
        m.team_barrier();  // g's row is complete before the dot products read it
        team_entry_dots(m, starts, cols, grad, g, w, i, end, accumulate);
        if (m.team_rank() == 0) total += row;
      },
      sq);
  return sq / double(x_hat.extent(0));
}

/// For every latent j: finish(j, sum over the entries e = (i, j) of term(i, j, e)), the sum in
/// increasing row order: the order of a dense column loop, so the same value as one that also
/// adds the zero terms. This version: one thread per latent, which finds its entry in each row
/// by bisection (rows are sorted by latent); any backend.
template <class T, class Term, class Finish>
void sparse_column_sums_by_bisection(const ActiveSet<T>& a, std::size_t num_cols, const Term& term,
                                     const Finish& finish) {
  const auto starts = a.row_start;
  const auto cols = a.col;
  const int rows = static_cast<int>(a.rows());
  Kokkos::parallel_for(
      "synthsae::sparse_column_sums", Kokkos::RangePolicy<ExecSpace>(0, num_cols), KOKKOS_LAMBDA(int j) {
        T acc = 0;
        for (int i = 0; i < rows; ++i) {
          int lo = starts(i), hi = starts(i + 1);
          while (lo < hi) {
            const int mid = (lo + hi) / 2;
            if (cols(mid) < j)
              lo = mid + 1;
            else
              hi = mid;
          }
          if (lo < starts(i + 1) && cols(lo) == j) acc += term(i, j, lo);
        }
        finish(j, acc);
      });
}

/// The same over the column index (host backends): each latent walks its own entries.
template <class T, class Term, class Finish>
void sparse_column_sums_by_index(const ActiveSet<T>& a, std::size_t num_cols, const Term& term, const Finish& finish) {
  a.index_columns(num_cols);
  const auto col_start = a.col_start, by_column = a.by_column, entry_row = a.entry_row;
  host_rows(
      "synthsae::sparse_column_sums", static_cast<std::int64_t>(num_cols), 16, KOKKOS_LAMBDA(int j) {
        T acc = 0;
        for (int p = col_start(j); p < col_start(j + 1); ++p) acc += term(entry_row(p), j, by_column(p));
        finish(j, acc);
      });
}

/// Per-latent sums over the set (see the two versions above).
template <class T, class Term, class Finish>
void sparse_column_sums(const ActiveSet<T>& a, std::size_t num_cols, const Term& term, const Finish& finish) {
  // Both backends walk the column index (built on the device there); the bisection form stays
  // as the index-free reference of the tests.
  sparse_column_sums_by_index(a, num_cols, term, finish);
}

/// For every entry e = (i, j): update(i, j, e) (one thread per row).
template <class T, class Update>
void for_each_active(const ActiveSet<T>& a, const Update& update) {
  const auto starts = a.row_start;
  const auto cols = a.col;
  host_rows(
      "synthsae::for_each_active", static_cast<std::int64_t>(a.rows()), 16, KOKKOS_LAMBDA(int i) {
        for (int e = starts(i); e < starts(i + 1); ++e) update(i, cols(e), e);
      });
}

/// z = 0 except z(i, col(e)) = value(e) (times norms(col) when rescaling): the reported feature
/// activations of the sparse step.
template <class T>
void scatter_feature_acts(const ActiveSet<T>& a, const Vector<T>& norms, bool rescale, const Matrix<T>& z) {
  const auto starts = a.row_start;
  const auto cols = a.col;
  const auto vals = a.value;
  const int s = static_cast<int>(z.extent(1));
  host_rows(
      "synthsae::scatter_feature_acts", static_cast<std::int64_t>(a.rows()), s, KOKKOS_LAMBDA(int i) {
        for (int j = 0; j < s; ++j) z(i, j) = T(0);
        for (int e = starts(i); e < starts(i + 1); ++e) z(i, cols(e)) = rescale ? vals(e) * norms(cols(e)) : vals(e);
      });
}

/// grad(e) (+)= g(i, :) . w(col(e), :) for the entries with col < width.
template <class T>
void sparse_row_dots(const ActiveSet<T>& a, const Matrix<T>& g, const Matrix<T>& w, bool accumulate, int width) {
  if constexpr (!host_accessible_v<ExecSpace>) {
    sparse_row_dots_by_teams(a, g, w, accumulate, width);
    return;
  }
  const auto starts = a.row_start;
  const auto cols = a.col;
  const auto grad = a.grad;
  const int d = static_cast<int>(w.extent(1));
  host_rows(
      "synthsae::sparse_row_dots", static_cast<std::int64_t>(a.rows()), a.row_cost(2 * d), KOKKOS_LAMBDA(int i) {
        for (int e = starts(i); e < starts(i + 1); ++e) {
          const int j = cols(e);
          if (j >= width) {
            if (!accumulate) grad(e) = T(0);
            continue;
          }
          grad(e) = (accumulate ? grad(e) : T(0)) + dot_contiguous(&g(i, 0), &w(j, 0), d);
        }
      });
}

/// gw(j, :) (+)= sum over entries (i, j) with j < width of value * g(i, :): the decoder-row
/// gradient. Parallel over blocks of 16 input columns, so each thread owns its output columns.
template <class T>
void sparse_decoder_grad_by_rows(const ActiveSet<T>& a, const Matrix<T>& g, const Matrix<T>& gw, bool accumulate,
                                 int width) {
  constexpr int kBlock = 16;
  const auto starts = a.row_start;
  const auto cols = a.col;
  const auto vals = a.value;
  const int d = static_cast<int>(gw.extent(1)), s = static_cast<int>(gw.extent(0));
  const int rows = static_cast<int>(a.rows());
  const int blocks = (d + kBlock - 1) / kBlock;
  Kokkos::parallel_for(
      "synthsae::sparse_decoder_grad", Kokkos::RangePolicy<ExecSpace>(0, blocks), KOKKOS_LAMBDA(int blk) {
        const int k0 = blk * kBlock, k1 = k0 + kBlock < d ? k0 + kBlock : d;
        if (!accumulate)
          for (int j = 0; j < s; ++j)
            for (int k = k0; k < k1; ++k) gw(j, k) = T(0);
        for (int i = 0; i < rows; ++i) {
          for (int e = starts(i); e < starts(i + 1) && cols(e) < width; ++e) {
            const int j = cols(e);
            const T v = vals(e);
            for (int k = k0; k < k1; ++k) gw(j, k) += v * g(i, k);
          }
        }
      });
}

/// gw_enc(k, j) (+)= sum_i xc_t(k, i) grad(e) and gb_enc(j) (+)= sum_i grad(e) over the entries
/// e = (i, j): the encoder gradient xc^T dh with dh sparse. `xc_t` is xc transposed [D, B];
/// thread k owns row k of gw_enc (thread D owns the bias), so no two threads share an output.
template <class T>
void sparse_encoder_grad_by_rows(const ActiveSet<T>& a, const Matrix<T>& xc_t, const Matrix<T>& gw_enc,
                                 const Vector<T>& gb_enc, bool accumulate) {
  const auto starts = a.row_start;
  const auto cols = a.col;
  const auto grad = a.grad;
  const int d = static_cast<int>(gw_enc.extent(0)), s = static_cast<int>(gw_enc.extent(1));
  const int rows = static_cast<int>(a.rows());
  Kokkos::parallel_for(
      "synthsae::sparse_encoder_grad", Kokkos::RangePolicy<ExecSpace>(0, d + 1), KOKKOS_LAMBDA(int k) {
        const bool bias = k == d;
        if (!accumulate)
          for (int j = 0; j < s; ++j) (bias ? gb_enc(j) : gw_enc(k, j)) = T(0);
        for (int i = 0; i < rows; ++i) {
          const T x = bias ? T(1) : xc_t(k, i);
          for (int e = starts(i); e < starts(i + 1); ++e) {
            if (bias)
              gb_enc(cols(e)) += grad(e);
            else
              gw_enc(k, cols(e)) += x * grad(e);
          }
        }
      });
}

/// out = in^T (tiles of 32 x 32 for cache reuse).
template <class T>
void transpose(const Matrix<T>& in, const Matrix<T>& out) {
  constexpr int kTile = 32;
  const int r = static_cast<int>(in.extent(0)), c = static_cast<int>(in.extent(1));
  const int tiles_r = (r + kTile - 1) / kTile, tiles_c = (c + kTile - 1) / kTile;
  host_rows(
      "synthsae::transpose", static_cast<std::int64_t>(tiles_r * tiles_c), kTile * kTile, KOKKOS_LAMBDA(int t) {
        const int i0 = (t / tiles_c) * kTile, j0 = (t % tiles_c) * kTile;
        const int i1 = i0 + kTile < r ? i0 + kTile : r, j1 = j0 + kTile < c ? j0 + kTile : c;
        for (int i = i0; i < i1; ++i)
          for (int j = j0; j < j1; ++j) out(j, i) = in(i, j);
      });
}

#if defined(__AVX__) && !defined(__CUDACC__)
#define SYNTHSAE_TRANSPOSE_AVX 1
namespace detail {
/// t[c] = column c of the 8 x 8 tile of floats at src (rows `src_stride` elements apart), i.e.
/// src(0..7, c), through registers: a scalar transposed copy, each read a different cache line,
/// was most of the encoder gradient's time.
inline void transpose_8x8(const float* src, std::size_t src_stride, __m256 t[8]) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * src_stride);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  // r[0..3] hold columns 0, 1, 2, 3 of rows 0-3 (low lane) and columns 4-7 (high lane); r[4..7]
  // the same for rows 4-7.
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
    t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
  }
}

/// dst(c, r) (+)= src(r, c) for a 16 x 8 tile of floats (rows `src_stride` and `dst_stride`
/// elements apart) through registers: each of the 8 output rows gets 16 adjacent floats in a row.
/// A scalar transposed copy, each read a different cache line, was most of the encoder
/// gradient's time. `stream`: the 16 floats are whole aligned cache lines, written without
/// reading them first (non-temporal); the output rows are 16 KB apart at 4,096 latents, where a
/// plain store's read of each line waited on the cache's latency.
inline void store_transposed_16x8(const float* src, std::size_t src_stride, float* dst, std::size_t dst_stride,
                                  bool accumulate, bool stream) {
  __m256 lo[8], hi[8];
  transpose_8x8(src, src_stride, lo);
  transpose_8x8(src + 8 * src_stride, src_stride, hi);
  for (int c = 0; c < 8; ++c) {
    float* out = dst + c * dst_stride;
    if (stream) {
      _mm256_stream_ps(out, lo[c]);
      _mm256_stream_ps(out + 8, hi[c]);
    } else if (accumulate) {
      _mm256_storeu_ps(out, _mm256_add_ps(_mm256_loadu_ps(out), lo[c]));
      _mm256_storeu_ps(out + 8, _mm256_add_ps(_mm256_loadu_ps(out + 8), hi[c]));
    } else {
      _mm256_storeu_ps(out, lo[c]);
      _mm256_storeu_ps(out + 8, hi[c]);
    }
  }
}
}  // namespace detail
#endif

/// Host version of sparse_decoder_grad_by_rows over the column index: thread j owns decoder
/// row j and adds its entries' g rows contiguously.
template <class T>
void sparse_decoder_grad_by_columns(const ActiveSet<T>& a, const Matrix<T>& g, const Matrix<T>& gw, bool accumulate,
                                    int width) {
  a.index_columns(gw.extent(0));
  const auto col_start = a.col_start, by_column = a.by_column, entry_row = a.entry_row;
  const auto vals = a.value;
  const int d = static_cast<int>(gw.extent(1));
  host_rows(
      "synthsae::sparse_decoder_grad", static_cast<std::int64_t>(gw.extent(0)),
      a.column_cost(static_cast<std::int64_t>(gw.extent(0)), 2 * d, d), KOKKOS_LAMBDA(int j) {
        const int end = j < width ? col_start(j + 1) : col_start(j);  // no terms past width
        sum_scaled_rows<T>(accumulate ? &gw(j, 0) : nullptr, vals.data(), by_column.data(), entry_row.data(),
                           g.data(), g.stride(0), col_start(j), end, &gw(j, 0), d);
      });
}

/// Host version of sparse_encoder_grad_by_rows over the column index: blocks of 16 latents sum
/// their entries' xc rows contiguously into per-thread scratch, then write 16 adjacent columns
/// of gw_enc per input row.
template <class T>
void sparse_encoder_grad_by_columns(const ActiveSet<T>& a, const Matrix<T>& xc, const Matrix<T>& gw_enc,
                                    const Vector<T>& gb_enc, bool accumulate) {
  constexpr int kBlock = 16;  // 16 floats: whole cache lines of gw_enc per input row
  const int d = static_cast<int>(gw_enc.extent(0)), s = static_cast<int>(gw_enc.extent(1));
  const int blocks = (s + kBlock - 1) / kBlock;
  const int chunks = host_chunks(blocks);
  a.index_columns(gw_enc.extent(1));
  if (a.scratch.extent(0) != std::size_t(chunks) || a.scratch.extent(1) != std::size_t(kBlock * d))
    a.scratch = Matrix<T>("active_scratch", chunks, kBlock * d);
  const auto scratch = a.scratch;
  const auto col_start = a.col_start, by_column = a.by_column, entry_row = a.entry_row;
  const auto grad = a.grad;
  host_rows(
      "synthsae::sparse_encoder_grad", chunks,
      (std::int64_t{kBlock} * blocks + 2 * static_cast<std::int64_t>(a.entries)) * d / chunks, KOKKOS_LAMBDA(int c) {
        T* sums = &scratch(c, 0);
        int first = 0, last = 0;
        chunk_range(blocks, c, chunks, first, last);
        for (int blk = first; blk < last; ++blk) {
          const int j0 = blk * kBlock, j1 = j0 + kBlock < s ? j0 + kBlock : s;
          for (int j = j0; j < j1; ++j) {
            // Entries with dLoss/dh = 0 (a JumpReLU's window without the STE to its input) add nothing.
            sum_scaled_rows<T>(nullptr, grad.data(), by_column.data(), entry_row.data(), xc.data(), xc.stride(0),
                               col_start(j), col_start(j + 1), sums + (j - j0) * d, d);
            T bias = 0;
            for (int p = col_start(j); p < col_start(j + 1); ++p) bias += grad(by_column(p));
            gb_enc(j) = (accumulate ? gb_enc(j) : T(0)) + bias;
          }
          int k_done = 0;
#ifdef SYNTHSAE_TRANSPOSE_AVX
          if constexpr (std::is_same_v<T, float>) {
            if (j1 - j0 == kBlock) {  // whole 16 x 8 tiles in registers
              const std::size_t stride = gw_enc.stride(0);
              const bool stream = !accumulate && stride % kBlock == 0 &&
                                  reinterpret_cast<std::uintptr_t>(&gw_enc(0, j0)) % 64 == 0;
              for (; k_done + 8 <= d; k_done += 8)
                detail::store_transposed_16x8(sums + k_done, d, &gw_enc(k_done, j0), stride, accumulate, stream);
              if (stream) _mm_sfence();  // the streamed lines are seen by the threads that read them next
            }
          }
#endif
          if (accumulate) {  // two loops: a select would read gw_enc even when overwriting it
            for (int k = k_done; k < d; ++k)
              for (int j = j0; j < j1; ++j) gw_enc(k, j) += sums[(j - j0) * d + k];
          } else {
            for (int k = k_done; k < d; ++k)
              for (int j = j0; j < j1; ++j) gw_enc(k, j) = sums[(j - j0) * d + k];
          }
        }
      });
}

/// The GPU's form of sparse_decoder_grad_by_columns: one team per decoder row j, its threads
/// over the D inputs (coalesced), each adding the latent's entries in row order: the same sums in
/// the same order as the by-rows version. Any execution space (host: teams of one).
template <class T, class Space = ExecSpace>
void sparse_decoder_grad_by_teams(const ActiveSet<T>& a, const Matrix<T>& g, const Matrix<T>& gw, bool accumulate,
                                  int width) {
  a.index_columns(gw.extent(0));
  const auto col_start = a.col_start, by_column = a.by_column, entry_row = a.entry_row;
  const auto vals = a.value;
  const int d = static_cast<int>(gw.extent(1));
  using Policy = Kokkos::TeamPolicy<Space>;
  Kokkos::parallel_for(
      "synthsae::sparse_decoder_grad_by_teams", Policy(static_cast<int>(gw.extent(0)), host_accessible_v<Space> ? 1 : 128),
      KOKKOS_LAMBDA(const typename Policy::member_type& m) {
        const int j = m.league_rank();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(m, d), [&](int k) {
          T acc = accumulate ? gw(j, k) : T(0);
          if (j < width)
            for (int p = col_start(j); p < col_start(j + 1); ++p) {
              const T v = vals(by_column(p));
              if (v != T(0)) acc += v * g(entry_row(p), k);  // zeros skipped, as by columns
            }
          gw(j, k) = acc;
        });
      });
}

/// The GPU's form of the encoder gradient: one team per latent j, its threads over the D inputs
/// (reading xc rows coalesced), gw_enc(k, j) and gb_enc(j) summed over the latent's entries in
/// row order, as the by-rows version sums them.
template <class T, class Space = ExecSpace>
void sparse_encoder_grad_by_teams(const ActiveSet<T>& a, const Matrix<T>& xc, const Matrix<T>& gw_enc,
                                  const Vector<T>& gb_enc, bool accumulate) {
  a.index_columns(gw_enc.extent(1));
  const auto col_start = a.col_start, by_column = a.by_column, entry_row = a.entry_row;
  const auto grad = a.grad;
  const int d = static_cast<int>(gw_enc.extent(0));
  using Policy = Kokkos::TeamPolicy<Space>;
  Kokkos::parallel_for(
      "synthsae::sparse_encoder_grad_by_teams",
      Policy(static_cast<int>(gw_enc.extent(1)), host_accessible_v<Space> ? 1 : 128),
      KOKKOS_LAMBDA(const typename Policy::member_type& m) {
        const int j = m.league_rank();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(m, d + 1), [&](int k) {
          const bool bias = k == d;  // the last thread of the range sums the bias
          T acc = accumulate ? (bias ? gb_enc(j) : gw_enc(k, j)) : T(0);
          for (int p = col_start(j); p < col_start(j + 1); ++p) {
            const T dh = grad(by_column(p));
            if (dh != T(0)) acc += (bias ? T(1) : xc(entry_row(p), k)) * dh;
          }
          (bias ? gb_enc(j) : gw_enc(k, j)) = acc;
        });
      });
}

/// dLoss/dW_dec rows from the active entries (host: by columns; GPU: by teams).
template <class T>
void sparse_decoder_grad(const ActiveSet<T>& a, const Matrix<T>& g, const Matrix<T>& gw, bool accumulate, int width) {
  if constexpr (host_accessible_v<MemSpace>)
    sparse_decoder_grad_by_columns(a, g, gw, accumulate, width);
  else
    sparse_decoder_grad_by_teams(a, g, gw, accumulate, width);
}

/// dLoss/dW_enc = xc^T dh and dLoss/db_enc from the active entries' grad (dLoss/dh).
template <class T>
void sparse_encoder_grad(const ActiveSet<T>& a, const Matrix<T>& xc, const Matrix<T>& gw_enc, const Vector<T>& gb_enc,
                         bool accumulate) {
  if constexpr (host_accessible_v<MemSpace>)
    sparse_encoder_grad_by_columns(a, xc, gw_enc, gb_enc, accumulate);
  else
    sparse_encoder_grad_by_teams(a, xc, gw_enc, gb_enc, accumulate);
}

}  // namespace kernels
}  // namespace synthsae
