#pragma once
// ReLU activation (Standard and Gated-style SAEs): c = max(h, 0).
#include <string_view>

#include "synthsae/core/row_loops.hpp"
#include "synthsae/sae/kernels/active_set.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/parameters.hpp"

namespace synthsae {

struct Relu {
  static constexpr std::string_view name = "relu";
  template <class T>
  struct State {};

  bool rescales_by_decoder_norm() const { return false; }
  void validate(std::size_t /*d_in*/, std::size_t /*d_sae*/) const {}
  template <class T>
  void add_parameters(SaeParameters<T>&) const {}

  /// c = max(h, 0). `training` is false during evaluation.
  template <class T>
  void forward(StepBuffers<T>& b, const SaeParameters<T>&, State<T>&, bool /*training*/) const {
    const auto h = b.h, c = b.c, key = b.key;
    for_each_entry(
        "synthsae::relu", h.extent(0), h.extent(1), KOKKOS_LAMBDA(int i, int j) {
          key(i, j) = h(i, j);
          c(i, j) = h(i, j) > T(0) ? h(i, j) : T(0);
        });
  }

  /// dh = dc where h > 0.
  template <class T>
  void backward(StepBuffers<T>& b, const SaeParameters<T>&, SaeParameters<T>&, State<T>&) const {
    const auto h = b.h, dc = b.dc, dh = b.dh;
    for_each_entry(
        "synthsae::relu_backward", h.extent(0), h.extent(1),
        KOKKOS_LAMBDA(int i, int j) { dh(i, j) = h(i, j) > T(0) ? dc(i, j) : T(0); });
  }

  // ---- the density-adaptive sparse step (concepts.hpp: GathersActiveLatents) ----------
  /// The entries with h > 0 (value h), unless there are more than max_entries.
  template <class T>
  bool gather_active(const StepBuffers<T>& b, const SaeParameters<T>&, ActiveSet<T>& active,
                     std::size_t max_entries) const {
    const auto h = b.h;
    return active.gather(
        h.extent(0), h.extent(1),
        KOKKOS_LAMBDA(int i, int j, T& v) {
          v = h(i, j);
          return h(i, j) > T(0);
        },
        max_entries);
  }
  /// dh = dc on every entry of the set (h > 0 there): nothing to do.
  template <class T>
  void backward_active(const StepBuffers<T>&, const SaeParameters<T>&, SaeParameters<T>&, ActiveSet<T>&) const {}
};

}  // namespace synthsae
