#pragma once
// A copy of a large host matrix in memory advised for transparent huge pages. The sampler reads
// the dictionary's rows at random (50 MB at SynthSAEBench-16k): with 4 KB pages nearly every row
// is a TLB miss; 2 MB pages cut hidden_from_sparse's time by about a seventh on one core
// (measured on the 2-core EPYC). Advice only: where the kernel ignores it (THP "never"), or on a
// GPU build, the matrix is returned as it is, and no value changes either way.
#include <cstdint>

#include "synthsae/core/backend.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace synthsae {

template <class T>
Matrix<T> on_huge_pages(const Matrix<T>& m) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if constexpr (host_accessible_v<ExecSpace>) {
    constexpr std::uintptr_t kHuge = std::uintptr_t(2) << 20;
    const std::size_t bytes = m.span() * sizeof(T);
    if (bytes < 4 * kHuge) return m;  // too small to gain
    // Not initialised: the pages are first touched by the copy, after the advice.
    Matrix<T> fresh(Kokkos::view_alloc(Kokkos::WithoutInitializing, m.label()), m.extent(0), m.extent(1));
    const auto start = reinterpret_cast<std::uintptr_t>(fresh.data());
    const std::uintptr_t begin = (start + kHuge - 1) & ~(kHuge - 1), end = (start + bytes) & ~(kHuge - 1);
    if (end > begin) (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
    Kokkos::deep_copy(fresh, m);
    return fresh;
  }
#endif
  return m;
}

}  // namespace synthsae
