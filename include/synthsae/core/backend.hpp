#pragma once
// Execution and memory space aliases, the host-device function macro, and the View
// shapes the library passes around (LayoutRight: row i of a matrix is contiguous).
#include <type_traits>

#include <Kokkos_Core.hpp>

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

/// Whether `Space` (an execution or memory space) is CUDA's.
template <class Space>
inline constexpr bool is_cuda_space_v =
#if defined(KOKKOS_ENABLE_CUDA)
    std::is_same_v<typename Space::execution_space, Kokkos::Cuda>;
#else
    false;
#endif

}  // namespace synthsae
