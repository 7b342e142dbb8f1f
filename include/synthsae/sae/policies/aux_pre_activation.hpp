#pragma once
// JumpReluPreActivation: JumpReLU's optional pre-activation loss (reference §8.6,
// pre_act_loss_coefficient), only when some latents are dead:
//   loss = coefficient * mean_b sum_j ReLU(theta_j - h_bj) dead_j |W_dec_j|
// It pulls dead latents' pre-activations up towards their thresholds. Plain gradients (no
// pseudo-gradient): dh = -coef/B dead n [theta > h]; dtheta = coef/B dead n sum_b [theta > h];
// d|W_dec_j| = coef/B dead sum_b ReLU(theta - h).
#include <cmath>
#include <string_view>

#include "synthsae/core/error.hpp"

#include "synthsae/sae/kernels/aux_term.hpp"
#include "synthsae/sae/policies/activation_jumprelu.hpp"

namespace synthsae {

struct JumpReluPreActivation {
  static constexpr std::string_view name = "jumprelu_pre_act";
  /// Needs an activation with a learned threshold (JumpRelu); checked at compile time by Sae.
  static constexpr bool needs_learned_threshold = true;
  double coefficient = 1.0;  ///< pre_act_loss_coefficient

  void validate(std::size_t, std::size_t) const { require_coefficient("pre_act_loss_coefficient", coefficient); }

  template <class T>
  struct State {};

  /// Adds to b.dh, b.dnorms and the log_threshold gradient (call after the activation's backward).
  template <class T>
  double accumulate(StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g, State<T>&, const DeadMask& dead,
                    std::size_t num_dead) const {
    if (num_dead == 0 || coefficient == 0) return 0.0;
    const auto theta_of = jumprelu_threshold(p);
    const auto g_raw = jumprelu_threshold_gradient(g, theta_of);
    const auto h = b.h, dh = b.dh;
    const auto norms = b.norms, dnorms = b.dnorms;
    const int rows = static_cast<int>(h.extent(0));
    const T scale = static_cast<T>(coefficient / double(rows));
    double total = 0;
    Kokkos::parallel_reduce(
        "synthsae::jumprelu_pre_act", Kokkos::RangePolicy<ExecSpace>(0, h.extent(1)),
        KOKKOS_LAMBDA(int j, double& acc) {
          if (!dead(j)) return;
          const T theta = theta_of(j);
          T gap_sum = 0, below = 0;
          for (int i = 0; i < rows; ++i) {
            const T gap = theta - h(i, j);
            if (gap > T(0)) {
              gap_sum += gap;
              below += T(1);
              dh(i, j) -= scale * norms(j);
            }
          }
          acc += double(scale) * double(gap_sum) * double(norms(j));
          dnorms(j) += scale * gap_sum;
          g_raw(j) += theta_of.raw_gradient(theta, scale * norms(j) * below);
        },
        total);
    return total;
  }
};

}  // namespace synthsae
