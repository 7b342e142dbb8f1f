#pragma once
// JumpReLU (reference §8.6): z = h [h > theta], theta = exp(log_threshold) per latent.
// Pseudo-gradients with the rectangle kernel K(u) = [-1/2 < u < 1/2] and bandwidth eps:
//   dz/dh = [h > theta];   dz/dtheta = -(theta / eps) K((h - theta) / eps);
// log_threshold receives theta * dL/dtheta. The step function of the L0 penalty has
// dH/dtheta = -(1 / eps) K((h - theta) / eps) (see penalty_l0_step.hpp).
#include <cmath>
#include <string_view>

#include "synthsae/core/error.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/parameters.hpp"

namespace synthsae {

/// Rectangle kernel of the JumpReLU pseudo-gradients.
template <class T>
SYNTHSAE_HD T rectangle(T u) {
  return (u > T(-0.5) && u < T(0.5)) ? T(1) : T(0);
}

struct JumpRelu {
  static constexpr std::string_view name = "jumprelu";
  double init_threshold = 0.01;  ///< jumprelu_init_threshold
  double bandwidth = 0.05;       ///< jumprelu_bandwidth

  /// Owns a learned threshold (log_threshold): what L0StepPenalty and JumpReluPreActivation need.
  static constexpr bool learns_threshold = true;

  template <class T>
  struct State {};

  void validate(std::size_t, std::size_t) const {
    if (!(init_threshold > 0)) throw ConfigError("jumprelu_init_threshold", show(init_threshold), "must be > 0");
    if (!(bandwidth > 0)) throw ConfigError("jumprelu_bandwidth", show(bandwidth), "must be > 0");
  }

  bool rescales_by_decoder_norm() const { return false; }

  template <class T>
  void add_parameters(SaeParameters<T>& p) const {
    Vector<T> log_threshold("log_threshold", p.num_latents());
    Kokkos::deep_copy(log_threshold, static_cast<T>(std::log(init_threshold)));
    p.extra["log_threshold"] = log_threshold;
  }

  template <class T>
  void forward(StepBuffers<T>& b, const SaeParameters<T>& p, State<T>&, bool) const {
    const auto h = b.h, c = b.c, key = b.key;
    const auto log_theta = p.extra.at("log_threshold");
    for_each_entry(
        "synthsae::jumprelu", h.extent(0), h.extent(1), KOKKOS_LAMBDA(int i, int j) {
          const T theta = kmath::exp(log_theta(j));
          key(i, j) = h(i, j);
          c(i, j) = h(i, j) > theta ? h(i, j) : T(0);
        });
  }

  template <class T>
  void backward(StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g, State<T>&) const {
    const auto h = b.h, dc = b.dc, dh = b.dh;
    const auto log_theta = p.extra.at("log_threshold");
    const auto g_log_theta = g.extra.at("log_threshold");
    const int rows = static_cast<int>(h.extent(0));
    const T eps = static_cast<T>(bandwidth);
    // One thread per latent: dh column and the summed threshold pseudo-gradient.
    Kokkos::parallel_for(
        "synthsae::jumprelu_backward", Kokkos::RangePolicy<ExecSpace>(0, h.extent(1)), KOKKOS_LAMBDA(int j) {
          const T theta = kmath::exp(log_theta(j));
          T d_theta = 0;
          for (int i = 0; i < rows; ++i) {
            dh(i, j) = h(i, j) > theta ? dc(i, j) : T(0);
            d_theta += dc(i, j) * (-(theta / eps) * rectangle((h(i, j) - theta) / eps));
          }
          g_log_theta(j) += theta * d_theta;
        });
  }
};

}  // namespace synthsae
