#pragma once
// A stable bucket index built on the device: entries e = 0..n-1 with a key in [0, buckets) (or a
// negative key: skipped) are listed bucket by bucket, ascending in e within a bucket, as a serial
// counting sort would list them, so sums over a bucket keep one fixed order on every backend.
// Three passes over `chunks` contiguous ranges of entries: count per (chunk, bucket), one scan in
// bucket-major order, then each chunk writes its entries at its own offsets (no atomics).
#include <algorithm>
#include <cstdint>

#include "synthsae/core/backend.hpp"

namespace synthsae::kernels {

struct BucketIndex {
  Kokkos::View<std::int32_t*, MemSpace> offsets;                      ///< [buckets + 1]
  Kokkos::View<std::int32_t*, MemSpace> order;                        ///< [n]: entries, bucket by bucket
  Kokkos::View<std::int32_t**, Kokkos::LayoutRight, MemSpace> start;  ///< [chunks, buckets] scratch

  /// Indexes `keys` (n entries, flat) into `buckets` buckets.
  template <class Keys>
  void build(const Keys& keys, std::size_t n, std::size_t buckets) {
    const int chunks =
        host_accessible_v<ExecSpace> ? host_chunks(n) : static_cast<int>(std::clamp<std::size_t>(n / 64, 1, 256));
    if (offsets.extent(0) != buckets + 1) offsets = decltype(offsets)("bucket_offsets", buckets + 1);
    if (order.extent(0) < std::max<std::size_t>(n, 1))
      order = decltype(order)("bucket_order", std::max<std::size_t>(n, 1));
    if (start.extent(0) != static_cast<std::size_t>(chunks) || start.extent(1) != buckets) {
      start = decltype(start)("bucket_start", chunks, buckets);
    } else {
      Kokkos::deep_copy(start, 0);
    }
    const auto k = keys;
    const auto st = start;
    const auto off = offsets, ord = order;
    const int items = static_cast<int>(n), nb = static_cast<int>(buckets);
    Kokkos::parallel_for(
        "synthsae::bucket_count", Kokkos::RangePolicy<ExecSpace>(0, chunks), KOKKOS_LAMBDA(int c) {
          int begin, end;
          chunk_range(items, c, chunks, begin, end);
          for (int e = begin; e < end; ++e)
            if (k(e) >= 0) ++st(c, k(e));
        });
    const int cells = nb * chunks;
    Kokkos::parallel_scan(
        "synthsae::bucket_scan", Kokkos::RangePolicy<ExecSpace>(0, cells),
        KOKKOS_LAMBDA(int q, std::int32_t& running, const bool final) {
          const int b = q / chunks, c = q % chunks;
          const std::int32_t count = st(c, b);
          if (final) {
            st(c, b) = running;
            if (c == 0) off(b) = running;
            if (q == cells - 1) off(nb) = running + count;
          }
          running += count;
        });
    Kokkos::parallel_for(
        "synthsae::bucket_fill", Kokkos::RangePolicy<ExecSpace>(0, chunks), KOKKOS_LAMBDA(int c) {
          int begin, end;
          chunk_range(items, c, chunks, begin, end);
          for (int e = begin; e < end; ++e)
            if (k(e) >= 0) ord(st(c, k(e))++) = e;
        });
  }
};

}  // namespace synthsae::kernels
