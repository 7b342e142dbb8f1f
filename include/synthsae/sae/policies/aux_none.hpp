#pragma once
// NoAux: no auxiliary loss.
#include <string_view>

#include "synthsae/sae/kernels/aux_term.hpp"

namespace synthsae {

struct NoAux {
  static constexpr std::string_view name = "none";
  template <class T>
  struct State {};
  void validate(std::size_t /*d_in*/, std::size_t /*d_sae*/) const {}
  bool reads_dead_columns(std::size_t) const { return false; }  ///< (the screened encoder's question)
  template <class T>
  double accumulate(StepBuffers<T>&, const SaeParameters<T>&, SaeParameters<T>&, State<T>&, const DeadMask&,
                    std::size_t) const {
    return 0.0;
  }
  template <class T>
  double accumulate_sparse(StepBuffers<T>&, const SaeParameters<T>&, SaeParameters<T>&, State<T>&, const DeadMask&,
                           std::size_t) const {
    return 0.0;
  }
};

}  // namespace synthsae
