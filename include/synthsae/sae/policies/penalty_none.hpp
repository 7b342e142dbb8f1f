#pragma once
// NoPenalty: the sparsity comes from elsewhere (TopK's selection, Matching Pursuit's budget).
#include <string_view>

#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/parameters.hpp"

namespace synthsae {

struct NoPenalty {
  static constexpr std::string_view name = "none";
  static constexpr bool active = false;
  void validate(std::size_t /*d_in*/, std::size_t /*d_sae*/) const {}
  template <class T>
  double forward(const StepBuffers<T>&, const Matrix<T>&, const SaeParameters<T>&, double) const {
    return 0.0;
  }
  template <class T>
  void backward(const StepBuffers<T>&, const Matrix<T>&, const Matrix<T>&, const SaeParameters<T>&, SaeParameters<T>&,
                double) const {}
};

}  // namespace synthsae
