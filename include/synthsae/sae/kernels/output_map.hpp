#pragma once
// Where a training step compares its reconstruction. By default in the SAE's own input space.
// Behind a per-row normalisation (SAELens's normalize_activations = constant_norm_rescale or
// layer_norm) the SAE sees normalised rows, and SAELens maps its reconstruction back,
// out_i = x_hat_i a_i + m_i, before the MSE against the raw input: each row's error is then that
// of the mapped output and its gradient with respect to x_hat carries the factor a_i.
#include "synthsae/core/backend.hpp"

namespace synthsae {

template <class T>
struct OutputMap {
  Matrix<T> target;        ///< the raw rows the mapped reconstruction is compared with [B, D]
  Vector<T> scale, shift;  ///< a_i and m_i per row [B]

  /// An empty map is the identity (compare x_hat with the SAE's own input).
  bool active() const { return scale.extent(0) != 0; }
};

}  // namespace synthsae
