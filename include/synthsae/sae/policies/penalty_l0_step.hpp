#pragma once
// L0StepPenalty (reference §8.6; SAELens jumprelu_sparsity_loss_mode "step" and "quadratic"):
//   step:      lambda mean_b l0_b,                       l0_b = sum_j H(h_bj - theta_j)
//   quadratic: lambda mean_b (2 / t) (l0_b - t)^2,       t = target_l0 (Gemma Scope 2)
// with the rectangle-kernel pseudo-gradient of the step function: dH/dtheta = -(1/eps) K((h -
// theta)/eps), and with ste_to_input also dH/dh = +(1/eps) K. No gradient reaches z, so all of it
// is added after the activation's backward (backward_pre_activation). Needs a JumpReLU activation;
// its bandwidth and ste_to_input are the activation's (one source: the Sae binds them).
#include <cmath>
#include <optional>
#include <string_view>

#include "synthsae/core/error.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/sae/kernels/active_set.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/parameters.hpp"
#include "synthsae/sae/policies/activation_jumprelu.hpp"
#include "synthsae/sae/step_interface.hpp"

namespace synthsae {

enum class L0LossMode {
  step,       ///< the expected L0 (DeepMind)
  quadratic,  ///< (2 / t)(L0 - t)^2 around a target L0 t (Gemma Scope 2)
};

struct L0StepPenalty {
  static constexpr std::string_view name = "l0_step";
  static constexpr bool active = true;
  /// Needs an activation with a learned threshold (JumpRelu); checked at compile time by Sae.
  static constexpr bool needs_learned_threshold = true;
  double coefficient = 1.0;  ///< l0_coefficient
  /// The JumpReLU bandwidth: left unset, the Sae takes the activation's (its one source); a
  /// different value is a ConfigError at construction.
  std::optional<double> bandwidth = std::nullopt;
  L0LossMode mode = L0LossMode::step;  ///< jumprelu_sparsity_loss_mode
  std::optional<double> target_l0 = std::nullopt;  ///< target_l0, required by the quadratic mode
  bool ste_to_input = false;           ///< bound from the activation's jumprelu_ste_to_input
  /// Scratch: the quadratic mode's per-row weights (not configuration, not run state).
  mutable Kokkos::View<double*, MemSpace> row_weight_{};

  void validate(std::size_t, std::size_t d_sae) const {
    require_coefficient("l0_coefficient", coefficient);
    if (mode == L0LossMode::quadratic) {
      if (!target_l0) throw ConfigError("target_l0", "(unset)", "must be set for jumprelu_sparsity_loss_mode quadratic");
      if (!(*target_l0 > 0) || *target_l0 > double(d_sae))
        throw ConfigError("target_l0", show(*target_l0), "must be in (0, d_sae = " + show(d_sae) + "]");
    }
  }
  /// Takes the shared bandwidth and ste_to_input from the activation.
  template <class Activation>
  void bind(const Activation& a) {
    if (bandwidth && *bandwidth != a.bandwidth) {
      throw ConfigError("L0StepPenalty.bandwidth", show(*bandwidth),
                        "differs from jumprelu_bandwidth = " + show(a.bandwidth) +
                            "; leave it unset (docs/policies.md#composition-rules)");
    }
    bandwidth = a.bandwidth;
    ste_to_input = a.ste_to_input;
  }

  template <class T>
  double forward(const StepBuffers<T>& b, const Matrix<T>&, const SaeParameters<T>& p, double lambda) const {
    const auto h = b.h;
    const auto theta = jumprelu_threshold(p);
    const int s = static_cast<int>(h.extent(1));
    const bool quadratic = mode == L0LossMode::quadratic;
    const double t = target_l0.value_or(1.0);
    double total = 0;
    Kokkos::parallel_reduce(
        "synthsae::l0_step", Kokkos::RangePolicy<ExecSpace>(0, h.extent(0)),
        KOKKOS_LAMBDA(int i, double& acc) {
          double count = 0;
          for (int j = 0; j < s; ++j) count += h(i, j) > theta(j) ? 1.0 : 0.0;
          acc += quadratic ? 2.0 / t * (count - t) * (count - t) : count;
        },
        total);
    return lambda * total / double(h.extent(0));
  }

  /// The bandwidth bound from the activation (a ConfigError before bind()).
  double bound_bandwidth() const {
    if (!bandwidth)
      throw ConfigError("L0StepPenalty.bandwidth", "(unset)",
                        "bind() it to the JumpReLU activation (the Sae constructor does)");
    return *bandwidth;
  }
  /// The quadratic mode's per-row weights, a buffer kept between steps (no allocation on the
  /// step's path once it has the batch's size).
  Kokkos::View<double*, MemSpace> row_weights(int rows) const {
    if (row_weight_.extent(0) != std::size_t(rows)) row_weight_ = Kokkos::View<double*, MemSpace>("l0_row_weight", rows);
    return row_weight_;
  }

  /// No gradient to z: everything comes in backward_pre_activation.
  template <class T>
  void backward(const StepBuffers<T>&, const Matrix<T>&, const Matrix<T>&, const SaeParameters<T>&, SaeParameters<T>&,
                double) const {}

  /// dtheta_j += sum_b w_b -(1/eps) K((h_bj - theta_j)/eps), and with ste_to_input dh_bj -= the
  /// same term; w_b = lambda / B (step) or lambda / B (4 / t)(l0_b - t) (quadratic).
  template <class T>
  void backward_pre_activation(StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g,
                               double lambda) const {
    const auto h = b.h, dh = b.dh;
    const auto theta_of = jumprelu_threshold(p);
    const auto g_raw = jumprelu_threshold_gradient(g, theta_of);
    const int rows = static_cast<int>(h.extent(0)), s = static_cast<int>(h.extent(1));
    const T eps = static_cast<T>(bound_bandwidth());
    const T scale = static_cast<T>(lambda / double(rows));
    const bool ste = ste_to_input;
    // Per-row weights only in the quadratic mode.
    Kokkos::View<double*, MemSpace> weight;
    if (mode == L0LossMode::quadratic) {
      weight = row_weights(rows);
      const T t = static_cast<T>(*target_l0);
      Kokkos::parallel_for(
          "synthsae::l0_quadratic_weight", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(int i) {
            T count = 0;
            for (int j = 0; j < s; ++j) count += h(i, j) > theta_of(j) ? T(1) : T(0);
            weight(i) = double(scale * T(4) / t * (count - t));
          });
    }
    const bool weighted = weight.extent(0) > 0;
    for_each_column(
        "synthsae::l0_step_backward", std::size_t(rows), std::size_t(s),
        KOKKOS_LAMBDA(int j) { return ThresholdColumn<T>{theta_of(j), T(0)}; },
        KOKKOS_LAMBDA(int i, int j, ThresholdColumn<T>& st) {
          const T term = -(T(1) / eps) * rectangle((h(i, j) - st.theta) / eps) * (weighted ? T(weight(i)) : T(1));
          st.sum += term;
          if (ste) dh(i, j) -= (weighted ? T(1) : scale) * term;
        },
        KOKKOS_LAMBDA(int j, const ThresholdColumn<T>& st) {
          g_raw(j) += theta_of.raw_gradient(st.theta, weighted ? st.sum : scale * st.sum);
        });
  }

  // ---- on an active set (the density-adaptive step): the set holds every entry with
  // h > theta and every entry inside the window, so sums over it equal the dense ones ----
  bool has_sparse_form() const { return true; }

  template <class T>
  double forward_active(const StepBuffers<T>& b, const ActiveSet<T>& a, const SaeParameters<T>& p,
                        double lambda) const {
    const auto h = b.h;
    const auto theta = jumprelu_threshold(p);
    const auto starts = a.row_start;
    const auto cols = a.col;
    const bool quadratic = mode == L0LossMode::quadratic;
    const double t = target_l0.value_or(1.0);
    double total = 0;
    Kokkos::parallel_reduce(
        "synthsae::l0_step_active", Kokkos::RangePolicy<ExecSpace>(0, a.rows()),
        KOKKOS_LAMBDA(int i, double& acc) {
          double count = 0;
          for (int e = starts(i); e < starts(i + 1); ++e) count += h(i, cols(e)) > theta(cols(e)) ? 1.0 : 0.0;
          acc += quadratic ? 2.0 / t * (count - t) * (count - t) : count;
        },
        total);
    return lambda * total / double(b.batch());
  }

  /// No gradient to z.
  template <class T>
  void backward_active(const StepBuffers<T>&, ActiveSet<T>&, const SaeParameters<T>&, SaeParameters<T>&,
                       double) const {}

  /// backward_pre_activation on the set: grad(e) holds dLoss/dh.
  template <class T>
  void backward_pre_activation_active(const StepBuffers<T>& b, ActiveSet<T>& a, const SaeParameters<T>& p,
                                      SaeParameters<T>& g, double lambda) const {
    const auto h = b.h;
    const auto theta_of = jumprelu_threshold(p);
    const auto g_raw = jumprelu_threshold_gradient(g, theta_of);
    const int rows = static_cast<int>(b.batch());
    const T eps = static_cast<T>(bound_bandwidth());
    const T scale = static_cast<T>(lambda / double(rows));
    const bool ste = ste_to_input;
    Kokkos::View<double*, MemSpace> weight;
    if (mode == L0LossMode::quadratic) {
      weight = row_weights(rows);
      const T t = static_cast<T>(*target_l0);
      const auto starts = a.row_start;
      const auto cols = a.col;
      Kokkos::parallel_for(
          "synthsae::l0_quadratic_weight_active", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(int i) {
            T count = 0;
            for (int e = starts(i); e < starts(i + 1); ++e) count += h(i, cols(e)) > theta_of(cols(e)) ? T(1) : T(0);
            weight(i) = double(scale * T(4) / t * (count - t));
          });
    }
    const bool weighted = weight.extent(0) > 0;
    kernels::sparse_column_sums(
        a, h.extent(1),
        KOKKOS_LAMBDA(int i, int j, int) {
          return -(T(1) / eps) * rectangle((h(i, j) - theta_of(j)) / eps) * (weighted ? T(weight(i)) : T(1));
        },
        KOKKOS_LAMBDA(int j, T acc) { g_raw(j) += theta_of.raw_gradient(theta_of(j), weighted ? acc : scale * acc); });
    if (!ste) return;
    const auto grad = a.grad;
    kernels::for_each_active(a, KOKKOS_LAMBDA(int i, int j, int e) {
      const T term = -(T(1) / eps) * rectangle((h(i, j) - theta_of(j)) / eps) * (weighted ? T(weight(i)) : T(1));
      grad(e) -= (weighted ? T(1) : scale) * term;
    });
  }
};

}  // namespace synthsae
