#pragma once
// NoNesting: a single reconstruction.
#include <string_view>

#include "synthsae/sae/kernels/active_set.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/parameters.hpp"

namespace synthsae {

struct NoNesting {
  static constexpr std::string_view name = "none";
  template <class T>
  struct State {};
  void validate(std::size_t /*d_in*/, std::size_t /*d_sae*/) const {}
  template <class T>
  double accumulate(StepBuffers<T>&, const SaeParameters<T>&, SaeParameters<T>&, State<T>&) const {
    return 0.0;
  }
  template <class T>
  double accumulate_sparse(StepBuffers<T>&, const ActiveSet<T>&, const SaeParameters<T>&, SaeParameters<T>&,
                           State<T>&) const {
    return 0.0;
  }
};

}  // namespace synthsae
