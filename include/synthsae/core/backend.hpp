#pragma once
// Execution and memory space aliases, the host-device function macro, and the View
// shapes the library passes around (LayoutRight: row i of a matrix is contiguous).
#include <type_traits>

#include <Kokkos_Core.hpp>
#if defined(_OPENMP)
#include <omp.h>
#endif

#include "synthsae/core/kokkos_compat.hpp"

/// Marks a function callable from host and device code (inlined into kernels).
#define SYNTHSAE_HD KOKKOS_INLINE_FUNCTION

namespace synthsae {

using ExecSpace = Kokkos::DefaultExecutionSpace;
using MemSpace = ExecSpace::memory_space;
using HostExecSpace = Kokkos::DefaultHostExecutionSpace;
using HostSpace = Kokkos::HostSpace;

template <class T, class Space = MemSpace>
using Matrix = Kokkos::View<T**, Kokkos::LayoutRight, Space>;
template <class T, class Space = MemSpace>
using Vector = Kokkos::View<T*, Kokkos::LayoutRight, Space>;

/// Whether host code may dereference memory of `Space` (true for HostSpace, CudaUVMSpace...).
template <class Space>
inline constexpr bool host_accessible_v =
    Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename Space::memory_space>::accessible;

/// Host kernels that keep per-thread state split `work` items into one chunk per thread (the
/// OpenMP threads where Kokkos is Serial: host_parallel.hpp runs such loops over them).
inline int host_chunks(std::size_t work) {
  std::size_t threads = static_cast<std::size_t>(ExecSpace().concurrency());
#if defined(_OPENMP) && defined(KOKKOS_ENABLE_SERIAL)
  if constexpr (std::is_same_v<ExecSpace, Kokkos::Serial>) threads = static_cast<std::size_t>(omp_get_max_threads());
#endif
  return static_cast<int>(work < threads ? (work > 0 ? work : 1) : threads);
}

/// Items [begin, end) of chunk c when `items` are split into `chunks` near-equal parts.
SYNTHSAE_HD void chunk_range(int items, int c, int chunks, int& begin, int& end) {
  begin = static_cast<int>(static_cast<long long>(items) * c / chunks);
  end = static_cast<int>(static_cast<long long>(items) * (c + 1) / chunks);
}

/// Whether `Space` (an execution or memory space) is CUDA's.
template <class Space>
inline constexpr bool is_cuda_space_v =
#if defined(KOKKOS_ENABLE_CUDA)
    std::is_same_v<typename Space::execution_space, Kokkos::Cuda>;
#else
    false;
#endif

}  // namespace synthsae
