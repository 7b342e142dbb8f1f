#pragma once
// L0StepPenalty (reference §8.6, JumpReLU "step"): lambda mean_b sum_j H(h_bj - theta_j), with the
// rectangle-kernel pseudo-gradient to log theta. Needs a JumpReLU activation; its bandwidth is the
// activation's (one source: the Sae binds it at construction).
#include <cmath>
#include <optional>
#include <string_view>

#include "synthsae/core/error.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/parameters.hpp"
#include "synthsae/sae/policies/activation_jumprelu.hpp"
#include "synthsae/sae/step_interface.hpp"

namespace synthsae {

struct L0StepPenalty {
  static constexpr std::string_view name = "l0_step";
  static constexpr bool active = true;
  /// Needs an activation with a learned threshold (JumpRelu); checked at compile time by Sae.
  static constexpr bool needs_learned_threshold = true;
  double coefficient = 1.0;  ///< l0_coefficient
  /// The JumpReLU bandwidth: left unset, the Sae takes the activation's (its one source); a
  /// different value is a ConfigError at construction.
  std::optional<double> bandwidth = std::nullopt;

  void validate(std::size_t, std::size_t) const { require_coefficient("l0_coefficient", coefficient); }
  /// Takes the shared bandwidth from the activation.
  template <class Activation>
  void bind(const Activation& a) {
    if (bandwidth && *bandwidth != a.bandwidth) {
      throw ConfigError("L0StepPenalty.bandwidth", show(*bandwidth),
                        "differs from jumprelu_bandwidth = " + show(a.bandwidth) +
                            "; leave it unset (docs/policies.md#composition-rules)");
    }
    bandwidth = a.bandwidth;
  }

  template <class T>
  double forward(const StepBuffers<T>& b, const Matrix<T>&, const SaeParameters<T>& p, double lambda) const {
    const auto h = b.h;
    const auto log_theta = p.extra.at("log_threshold");
    const int s = static_cast<int>(h.extent(1));
    double count = 0;
    Kokkos::parallel_reduce(
        "synthsae::l0_step", Kokkos::RangePolicy<ExecSpace>(0, h.extent(0)),
        KOKKOS_LAMBDA(int i, double& acc) {
          for (int j = 0; j < s; ++j) acc += h(i, j) > kmath::exp(log_theta(j)) ? 1.0 : 0.0;
        },
        count);
    return lambda * count / double(h.extent(0));
  }

  /// No gradient to h; d log_theta_j += theta_j * lambda / B * sum_b -(1/eps) K((h - theta) / eps).
  template <class T>
  void backward(const StepBuffers<T>& b, const Matrix<T>&, const Matrix<T>&, const SaeParameters<T>& p,
                SaeParameters<T>& g, double lambda) const {
    const auto h = b.h;
    const auto log_theta = p.extra.at("log_threshold");
    const auto g_log_theta = g.extra.at("log_threshold");
    const int rows = static_cast<int>(h.extent(0));
    if (!bandwidth)
      throw ConfigError("L0StepPenalty.bandwidth", "(unset)",
                        "bind() it to the JumpReLU activation (the Sae constructor does)");
    const T eps = static_cast<T>(*bandwidth);
    const T scale = static_cast<T>(lambda / double(rows));
    Kokkos::parallel_for(
        "synthsae::l0_step_backward", Kokkos::RangePolicy<ExecSpace>(0, h.extent(1)), KOKKOS_LAMBDA(int j) {
          const T theta = kmath::exp(log_theta(j));
          T acc = 0;
          for (int i = 0; i < rows; ++i) acc += -(T(1) / eps) * rectangle((h(i, j) - theta) / eps);
          g_log_theta(j) += theta * scale * acc;
        });
  }
};

}  // namespace synthsae
