#pragma once
// Kernels shared by the selecting activations (TopK, AbsTopK, BatchTopK): the ranking key, coefficients
// from a selection mask, and the backward pass through a selection.
#include <algorithm>
#include <cstddef>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"

namespace synthsae {

/// What a selecting activation keeps, as the screened encoder (screened_encoder.hpp) needs to
/// know: the batch's `count` largest keys (BatchTopK: m = k B), or with `per_row` each row's
/// `count` largest (TopK).
struct ScreenedSelection {
  std::size_t count = 0;
  bool per_row = false;
};

namespace detail {

/// Row i of ranking_key on the host: the same products (and magnitudes), so the same bits.
template <class T>
void ranking_key_row(const Matrix<T>& h, const Vector<T>& norms, const Matrix<T>& key, int i, bool rescale,
                     bool magnitude = false) {
  const int s = static_cast<int>(h.extent(1));
  const T* __restrict in = &h(i, 0);
  T* __restrict out = &key(i, 0);
  const T* __restrict n = norms.data();
  if (magnitude) {
    for (int j = 0; j < s; ++j) {
      const T k = rescale ? in[j] * n[j] : in[j];
      out[j] = k < T(0) ? -k : k;
    }
  } else if (!rescale) {
    std::copy(in, in + s, out);
  } else {
    for (int j = 0; j < s; ++j) out[j] = in[j] * n[j];
  }
}

/// key = rescale ? h * norms : h, or its magnitude |key| (AbsTopK ranks by magnitude).
template <class T>
void ranking_key(StepBuffers<T>& b, bool rescale, bool magnitude = false) {
  const auto h = b.h, key = b.key;
  const auto norms = b.norms;
  if (rescale && !magnitude) {  // BatchTopK's and TopK's default: a loop without selects
    for_each_entry(
        "synthsae::ranking_key", h.extent(0), h.extent(1), KOKKOS_LAMBDA(int i, int j) { key(i, j) = h(i, j) * norms(j); });
    return;
  }
  for_each_entry(
      "synthsae::ranking_key", h.extent(0), h.extent(1), KOKKOS_LAMBDA(int i, int j) {
        const T k = rescale ? h(i, j) * norms(j) : h(i, j);
        key(i, j) = magnitude && k < T(0) ? -k : k;
      });
}

/// c = h where selected and key > 0 (ReLU of the selected values), else 0; with `keep_sign`
/// every selected h, negative ones included (AbsTopK).
template <class T, class Mask>
void coefficients_from_mask(StepBuffers<T>& b, const Mask& mask, bool keep_sign = false) {
  const auto h = b.h, key = b.key, c = b.c;
  for_each_entry(
      "synthsae::topk_coefficients", h.extent(0), h.extent(1), KOKKOS_LAMBDA(int i, int j) {
        c(i, j) = (mask(i, j) && (keep_sign || key(i, j) > T(0))) ? h(i, j) : T(0);
      });
}

/// dh = dc where c != 0 (the selected, positive entries: c = h there).
template <class T>
void backward_through_selection(StepBuffers<T>& b) {
  const auto c = b.c, dc = b.dc, dh = b.dh;
  for_each_entry(
      "synthsae::topk_backward", c.extent(0), c.extent(1),
      KOKKOS_LAMBDA(int i, int j) { dh(i, j) = c(i, j) != T(0) ? dc(i, j) : T(0); });
}

}  // namespace detail

}  // namespace synthsae
