#pragma once
// Selection kernels for the TopK family: per-row top-k (a bounded min-heap per row) and the
// batch-wide top-m of non-negative values (two-pass radix select on float bit patterns).
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/core/float16.hpp"

namespace synthsae {

/// Largest k supported by per-row selection (the heap lives in registers/stack).
inline constexpr int kMaxRowTopK = 1024;

/// mask(i, j) = 1 for the k largest key(i, j) among columns with allowed(j) (all when
/// `allowed` is empty), ties to the lower column; 0 elsewhere.
template <class T>
void row_top_k(const Matrix<T>& key, int k, const Kokkos::View<std::uint8_t**, Kokkos::LayoutRight, MemSpace>& mask,
               const Kokkos::View<const std::uint8_t*, MemSpace>& allowed) {
  if (k < 0 || k > kMaxRowTopK) throw ConfigError("k", show(k), "per-sample top-k supports 0 <= k <= " + show(kMaxRowTopK));
  const int s = static_cast<int>(key.extent(1));
  const bool filter = allowed.extent(0) > 0;
  Kokkos::parallel_for("synthsae::row_top_k", Kokkos::RangePolicy<ExecSpace>(0, key.extent(0)), KOKKOS_LAMBDA(int i) {
    int heap[kMaxRowTopK];  // min-heap of column indices by (key, -index)
    int size = 0;
    auto less = [&](int a, int b) {  // "a ranks below b"
      const T ka = key(i, a), kb = key(i, b);
      return ka < kb || (ka == kb && a > b);
    };
    for (int j = 0; j < s; ++j) {
      mask(i, j) = 0;
      if (filter && !allowed(j)) continue;
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
    for (int q = 0; q < size; ++q) mask(i, heap[q]) = 1;
  });
}

/// The m-th largest of the positive entries of `values` (compared as float), or 0 when there
/// are at most m positive entries. Keeping the entries >= the result (> 0 when it is 0)
/// selects the batch-wide top m, plus any exact ties at the threshold. Two passes of a 65,536-bin
/// histogram over the float bit patterns (monotone for non-negative floats).
template <class T>
float batch_top_m_threshold(const Matrix<T>& values, std::size_t m) {
  using Hist = Kokkos::View<std::int64_t*, MemSpace>;
  const int cols = static_cast<int>(values.extent(1));
  Hist hist("radix_hist", 65536);
  Kokkos::parallel_for("synthsae::radix_pass1", Kokkos::RangePolicy<ExecSpace>(0, values.extent(0)), KOKKOS_LAMBDA(int i) {
    for (int j = 0; j < cols; ++j) {
      const float v = static_cast<float>(values(i, j));
      if (v > 0.0f) Kokkos::atomic_add(&hist(float_bits(v) >> 16), std::int64_t(1));
    }
  });
  auto h1 = Kokkos::create_mirror_view_and_copy(HostSpace(), hist);
  std::int64_t positives = 0;
  for (int b = 0; b < 65536; ++b) positives += h1(b);
  if (positives <= static_cast<std::int64_t>(m) || m == 0) return m == 0 ? std::numeric_limits<float>::infinity() : 0.0f;
  std::int64_t above = 0;
  int high = 65535;
  for (; high >= 0; --high) {
    if (above + h1(high) >= static_cast<std::int64_t>(m)) break;
    above += h1(high);
  }
  const std::int64_t need = static_cast<std::int64_t>(m) - above;
  Kokkos::deep_copy(hist, std::int64_t(0));
  const std::uint32_t prefix = static_cast<std::uint32_t>(high);
  Kokkos::parallel_for("synthsae::radix_pass2", Kokkos::RangePolicy<ExecSpace>(0, values.extent(0)), KOKKOS_LAMBDA(int i) {
    for (int j = 0; j < cols; ++j) {
      const float v = static_cast<float>(values(i, j));
      if (!(v > 0.0f)) continue;
      const std::uint32_t bits = float_bits(v);
      if ((bits >> 16) == prefix) Kokkos::atomic_add(&hist(bits & 0xFFFFu), std::int64_t(1));
    }
  });
  auto h2 = Kokkos::create_mirror_view_and_copy(HostSpace(), hist);
  std::int64_t cum = 0;
  int low = 65535;
  for (; low > 0; --low) {
    if (cum + h2(low) >= need) break;
    cum += h2(low);
  }
  return bits_float((prefix << 16) | static_cast<std::uint32_t>(low));
}

}  // namespace synthsae
