#pragma once
// Large host matrices in memory advised for transparent huge pages (where THP is "madvise", as
// on many distributions, only advised memory gets them). The sampler reads the dictionary's rows
// at random (50 MB at SynthSAEBench-16k): with 4 KB pages nearly every row is a TLB miss; 2 MB
// pages cut hidden_from_sparse's time by about a seventh on one core (measured on the 2-core
// EPYC). An SAE step reads decoder rows at random and writes the encoder gradient's columns
// 16 KB apart: its weights, gradients, Adam moments and batch buffers are allocated here too.
// Advice only: where the kernel ignores it (THP "never"), or on a GPU build, nothing changes, and
// no value changes either way.
#include <cstddef>
#include <cstdint>
#include <string>

#include "synthsae/core/backend.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace synthsae {

namespace detail {
constexpr std::size_t kHugePage = std::size_t(2) << 20;
constexpr std::size_t kHugePagesWorthIt = 4 * kHugePage;  ///< smaller arrays are left alone

/// Advises the whole 2 MB pages inside [data, data + bytes); memory touched before the advice
/// keeps its small pages (the kernel may merge them later).
inline void advise_huge_pages([[maybe_unused]] void* data, [[maybe_unused]] std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const auto start = reinterpret_cast<std::uintptr_t>(data);
  const std::uintptr_t begin = (start + kHugePage - 1) & ~std::uintptr_t(kHugePage - 1),
                       end = (start + bytes) & ~std::uintptr_t(kHugePage - 1);
  if (end > begin) (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#endif
}
}  // namespace detail

/// A copy of m on advised memory (m itself where that cannot gain).
template <class T>
Matrix<T> on_huge_pages(const Matrix<T>& m) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if constexpr (host_accessible_v<ExecSpace>) {
    if (m.span() * sizeof(T) < detail::kHugePagesWorthIt) return m;
    // Not initialised: the pages are first touched by the copy, after the advice.
    Matrix<T> fresh(Kokkos::view_alloc(Kokkos::WithoutInitializing, m.label()), m.extent(0), m.extent(1));
    detail::advise_huge_pages(fresh.data(), fresh.span() * sizeof(T));
    Kokkos::deep_copy(fresh, m);
    return fresh;
  }
#endif
  return m;
}

/// A zero rows x cols matrix on advised memory: what Matrix<T>(label, rows, cols) gives, with the
/// advice given before its pages are first touched.
template <class T>
Matrix<T> zero_matrix_on_huge_pages(const std::string& label, std::size_t rows, std::size_t cols) {
  if constexpr (host_accessible_v<ExecSpace>) {
    if (rows * cols * sizeof(T) >= detail::kHugePagesWorthIt) {
      Matrix<T> m(Kokkos::view_alloc(Kokkos::WithoutInitializing, label), rows, cols);
      detail::advise_huge_pages(m.data(), m.span() * sizeof(T));
      Kokkos::deep_copy(m, T(0));
      return m;
    }
  }
  return Matrix<T>(label, rows, cols);
}

}  // namespace synthsae
