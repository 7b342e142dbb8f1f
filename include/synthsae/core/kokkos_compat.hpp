#pragma once
// The one place where Kokkos 3.4 (Debian, Serial) and Kokkos >= 4.7 (OpenMP, CUDA) differ.
// Everything else in synthsae is written against the API both versions share.
#include <cmath>

#include <Kokkos_Core.hpp>

#if !defined(KOKKOS_VERSION)
#error "synthsae: Kokkos_Core.hpp did not define KOKKOS_VERSION"
#endif
#if KOKKOS_VERSION < 30400
#error "synthsae needs Kokkos >= 3.4"
#endif

namespace synthsae {

/// Mathematical functions callable from host and device code.
/// Kokkos 3.x keeps them in Kokkos::Experimental; 4.x moved them to Kokkos.
#if KOKKOS_VERSION >= 40000
namespace kmath = ::Kokkos;
#else
namespace kmath = ::Kokkos::Experimental;
#endif

/// a * b + c rounded once on every build. Written out, so that whether the compiler contracts
/// a * b + c (GCC does at -O2 with FMA hardware, not at -O1; nvcc does by default) cannot change
/// a draw's bits between builds. Kokkos 3.4 (host only) has no fma; std::fma is exact there too.
KOKKOS_INLINE_FUNCTION float fused_multiply_add(float a, float b, float c) {
#if KOKKOS_VERSION >= 40000
  return ::Kokkos::fma(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

KOKKOS_INLINE_FUNCTION double fused_multiply_add(double a, double b, double c) {
#if KOKKOS_VERSION >= 40000
  return ::Kokkos::fma(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

/// Kokkos version as major*10000 + minor*100 + patch (e.g. 30401, 40701).
inline constexpr int kokkos_version = KOKKOS_VERSION;

/// True when Kokkos was built with a CUDA backend.
#if defined(KOKKOS_ENABLE_CUDA)
inline constexpr bool kokkos_has_cuda = true;
#else
inline constexpr bool kokkos_has_cuda = false;
#endif

}  // namespace synthsae
