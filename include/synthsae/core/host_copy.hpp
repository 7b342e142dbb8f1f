#pragma once
// Copies and fills of whole Views that use every core on Debian's Serial Kokkos. There
// Kokkos::deep_copy is one memcpy (or one fill loop) on the calling thread while the OpenMP
// worker waits: the training step's input copies (3 MB per step at 768 dimensions) and Matching
// Pursuit's 16 MB activation reset were 4 % of the main job's samples, all on one core. Large
// contiguous Views go in 64 KB pieces through host_rows; anything else (a GPU View, a strided
// one, a small one) is Kokkos::deep_copy. The bytes are the same either way.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/host_parallel.hpp"

namespace synthsae {

namespace detail {
inline constexpr std::size_t kCopyPieceBytes = std::size_t(1) << 16;

/// Whether v's elements can be split into pieces here: host memory, one contiguous span, and
/// threads worth having (host_rows would run a single piece otherwise).
template <class View>
bool splits_on_host(const View& v) {
  if constexpr (!host_rows_use_openmp_v || !host_accessible_v<typename View::memory_space>) {
    return false;
  } else {
    return v.span_is_contiguous() && v.span() * sizeof(typename View::value_type) >= 2 * kCopyPieceBytes;
  }
}
}  // namespace detail

/// dst = src for Views of the same element type and extents.
template <class Dst, class Src>
void copy_view(const Dst& dst, const Src& src) {
  using T = typename Dst::value_type;
  if constexpr (std::is_same_v<T, typename Src::non_const_value_type>) {
    bool same_shape = dst.span() == src.span();
    for (unsigned r = 0; r < 8; ++r) same_shape = same_shape && dst.extent(r) == src.extent(r);
    if (same_shape && detail::splits_on_host(dst) && detail::splits_on_host(src)) {
      const auto* from = reinterpret_cast<const unsigned char*>(src.data());
      auto* to = reinterpret_cast<unsigned char*>(dst.data());
      const std::size_t bytes = dst.span() * sizeof(T), piece = detail::kCopyPieceBytes;
      const auto pieces = static_cast<std::int64_t>((bytes + piece - 1) / piece);
      host_rows("synthsae::copy_view", pieces, static_cast<std::int64_t>(piece / 4), [=](int p) {
        const std::size_t begin = std::size_t(p) * piece;
        std::memcpy(to + begin, from + begin, std::min(piece, bytes - begin));
      });
      return;
    }
  }
  Kokkos::deep_copy(dst, src);
}

/// Every element of v = value.
template <class View>
void fill_view(const View& v, typename View::const_value_type value) {
  if (detail::splits_on_host(v)) {
    using T = typename View::value_type;
    T* data = v.data();
    const std::size_t n = v.span(), per_piece = detail::kCopyPieceBytes / sizeof(T);
    const auto pieces = static_cast<std::int64_t>((n + per_piece - 1) / per_piece);
    host_rows("synthsae::fill_view", pieces, static_cast<std::int64_t>(per_piece), [=](int p) {
      const std::size_t begin = std::size_t(p) * per_piece;
      std::fill(data + begin, data + std::min(n, begin + per_piece), value);
    });
    return;
  }
  Kokkos::deep_copy(v, value);
}

}  // namespace synthsae
