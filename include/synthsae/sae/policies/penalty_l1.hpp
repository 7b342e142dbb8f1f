#pragma once
// L1Penalty (reference §8.2): lambda mean_b sum_j z_bj |W_dec_j| (Standard, Gated). lambda is the
// penalty's own coefficient scaled by the trainer's warm-up and autotuner (PenaltyScale).
#include <cmath>
#include <string_view>

#include "synthsae/core/error.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/kernels/weighted_l1.hpp"
#include "synthsae/sae/parameters.hpp"
#include "synthsae/sae/step_interface.hpp"

namespace synthsae {

struct L1Penalty {
  static constexpr std::string_view name = "l1";
  static constexpr bool active = true;
  double coefficient = 1.0;  ///< l1_coefficient (the final value; warm-up scales it)

  void validate(std::size_t, std::size_t) const { require_coefficient("l1_coefficient", coefficient); }

  template <class T>
  double forward(const StepBuffers<T>& b, const Matrix<T>& z, const SaeParameters<T>&, double lambda) const {
    return lambda * kernels::weighted_l1(z, b.norms) / double(z.extent(0));
  }

  /// dz += lambda n_j / B; dnorms_j += lambda sum_b z_bj / B.
  template <class T>
  void backward(const StepBuffers<T>& b, const Matrix<T>& z, const Matrix<T>& dz, const SaeParameters<T>&,
                SaeParameters<T>&, double lambda) const {
    kernels::weighted_l1_backward(z, dz, b.norms, b.dnorms, static_cast<T>(lambda / double(z.extent(0))));
  }
};

}  // namespace synthsae
