#pragma once
// JumpReLU (reference §8.6; SAELens >= 6.48): z = h [h > theta] with a learned threshold per latent.
// Pseudo-gradients with the rectangle kernel K(u) = [-1/2 < u < 1/2] and bandwidth eps:
//   dz/dh = [h > theta] (+ (theta / eps) K((h - theta) / eps) with ste_to_input);
//   dz/dtheta = -(theta / eps) K((h - theta) / eps).
// The threshold is trained directly, as SAELens does since 6.48 (parameter "threshold", projected
// onto theta >= 0 before each step), or as log theta (parameter "log_threshold", the DeepMind
// paper's and SAELens < 6.48's; its gradient is theta dL/dtheta). The step function of the L0
// penalty has dH/dtheta = -(1 / eps) K((h - theta) / eps) (see penalty_l0_step.hpp).
#include <cmath>
#include <string>
#include <string_view>

#include "synthsae/core/error.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/sae/kernels/active_set.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/parameters.hpp"

namespace synthsae {

/// Rectangle kernel of the JumpReLU pseudo-gradients.
template <class T>
SYNTHSAE_HD T rectangle(T u) {
  return (u > T(-0.5) && u < T(0.5)) ? T(1) : T(0);
}

/// A latent's threshold and a sum over its column (the dense backward kernels' per-column state).
template <class T>
struct ThresholdColumn {
  T theta, sum;
};

/// How the JumpReLU threshold is parameterised for training.
enum class ThresholdParameterisation {
  direct,  ///< theta itself, clamped >= 0 before each step (SAELens >= 6.48; the default)
  log,     ///< log theta (DeepMind's JumpReLU, SAELens < 6.48): Adam moves theta by relative steps
};

/// The learned threshold as kernels read it, whichever parameter holds it: theta_j and the
/// chain rule from dL/dtheta to the stored parameter.
template <class T>
struct JumpReluThreshold {
  Vector<T> raw;
  bool log = false;
  SYNTHSAE_HD T operator()(int j) const { return log ? kmath::exp(raw(j)) : raw(j); }
  SYNTHSAE_HD T raw_gradient(T theta, T d_theta) const { return log ? theta * d_theta : d_theta; }
};

/// theta_j when the parameter is theta itself (a functor, not a lambda: nvcc's extended lambdas
/// are not captured by other kernels' lambdas).
template <class T>
struct DirectThreshold {
  Vector<T> raw;
  SYNTHSAE_HD T operator()(int j) const { return raw(j); }
};

/// The name of the parameter that holds theta.
inline const char* threshold_parameter_name(ThresholdParameterisation p) {
  return p == ThresholdParameterisation::log ? "log_threshold" : "threshold";
}

/// The threshold of a JumpReLU's parameters: "threshold" when present, else "log_threshold".
template <class T>
JumpReluThreshold<T> jumprelu_threshold(const SaeParameters<T>& p) {
  if (const auto it = p.extra.find("threshold"); it != p.extra.end()) return {it->second, false};
  return {p.extra.at("log_threshold"), true};
}

/// The gradient tensor of the parameter `t` reads from.
template <class T>
Vector<T> jumprelu_threshold_gradient(const SaeParameters<T>& g, const JumpReluThreshold<T>& t) {
  return g.extra.at(threshold_parameter_name(t.log ? ThresholdParameterisation::log : ThresholdParameterisation::direct));
}

struct JumpRelu {
  static constexpr std::string_view name = "jumprelu";
  double init_threshold = 0.01;  ///< jumprelu_init_threshold
  double bandwidth = 0.05;       ///< jumprelu_bandwidth
  ThresholdParameterisation parameterisation = ThresholdParameterisation::direct;
  /// jumprelu_ste_to_input: the straight-through estimator also reaches the pre-activations (and
  /// so the encoder), not only the threshold (Anthropic's setup; false is DeepMind's).
  bool ste_to_input = false;

  /// Owns a learned threshold: what L0StepPenalty and JumpReluPreActivation need.
  static constexpr bool learns_threshold = true;

  template <class T>
  struct State {};

  void validate(std::size_t, std::size_t) const {
    if (!(init_threshold > 0)) throw ConfigError("jumprelu_init_threshold", show(init_threshold), "must be > 0");
    if (!(bandwidth > 0)) throw ConfigError("jumprelu_bandwidth", show(bandwidth), "must be > 0");
  }

  bool rescales_by_decoder_norm() const { return false; }
  const char* threshold_parameter() const { return threshold_parameter_name(parameterisation); }

  template <class T>
  void add_parameters(SaeParameters<T>& p) const {
    Vector<T> threshold(std::string(threshold_parameter()), p.num_latents());
    const double value = parameterisation == ThresholdParameterisation::log ? std::log(init_threshold) : init_threshold;
    Kokkos::deep_copy(threshold, static_cast<T>(value));
    p.extra[threshold_parameter()] = threshold;
  }

  /// Before each training step: a directly trained threshold is kept >= 0 (below zero the gate
  /// would pass negative pre-activations). A projection, not a clamp in the graph, so that a
  /// latent at zero still receives gradient.
  template <class T>
  void project(SaeParameters<T>& p) const {
    if (parameterisation != ThresholdParameterisation::direct) return;
    const auto theta = p.extra.at("threshold");
    Kokkos::parallel_for(
        "synthsae::jumprelu_project", Kokkos::RangePolicy<ExecSpace>(0, theta.extent(0)), KOKKOS_LAMBDA(int j) {
          if (theta(j) < T(0)) theta(j) = T(0);
        });
  }

  template <class T>
  void forward(StepBuffers<T>& b, const SaeParameters<T>& p, State<T>&, bool) const {
    const auto h = b.h, c = b.c, key = b.key;
    const auto theta = jumprelu_threshold(p);
    for_each_entry(
        "synthsae::jumprelu", h.extent(0), h.extent(1), KOKKOS_LAMBDA(int i, int j) {
          key(i, j) = h(i, j);
          c(i, j) = h(i, j) > theta(j) ? h(i, j) : T(0);
        });
  }

  template <class T>
  void backward(StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g, State<T>&) const {
    const auto h = b.h, dc = b.dc, dh = b.dh;
    const auto theta_of = jumprelu_threshold(p);
    const auto g_raw = jumprelu_threshold_gradient(g, theta_of);
    const int rows = static_cast<int>(h.extent(0));
    const T eps = static_cast<T>(bandwidth);
    const bool ste = ste_to_input;
    // Per latent: its dh column and the summed threshold pseudo-gradient.
    for_each_column(
        "synthsae::jumprelu_backward", std::size_t(rows), h.extent(1),
        KOKKOS_LAMBDA(int j) { return ThresholdColumn<T>{theta_of(j), T(0)}; },
        KOKKOS_LAMBDA(int i, int j, ThresholdColumn<T>& st) {
          const T window = (st.theta / eps) * rectangle((h(i, j) - st.theta) / eps) * dc(i, j);
          dh(i, j) = (h(i, j) > st.theta ? dc(i, j) : T(0)) + (ste ? window : T(0));
          st.sum -= window;
        },
        KOKKOS_LAMBDA(int j, const ThresholdColumn<T>& st) { g_raw(j) += theta_of.raw_gradient(st.theta, st.sum); });
  }

  // ---- the density-adaptive sparse step (concepts.hpp: GathersActiveLatents) ----------
  /// The entries the step needs: the active ones (h > theta, value h) and those inside the
  /// pseudo-gradient's window (|h - theta| < eps / 2, value 0 when inactive), whose dLoss/dc
  /// reaches the threshold; unless there are more than max_entries.
  template <class T>
  bool gather_active(const StepBuffers<T>& b, const SaeParameters<T>& p, ActiveSet<T>& active,
                     std::size_t max_entries) const {
    const auto theta = jumprelu_threshold(p);
    if (theta.log) return gather_window(b.h, theta, active, max_entries);
    // theta read directly: no branch on the parameterisation per entry
    return gather_window(b.h, DirectThreshold<T>{theta.raw}, active, max_entries);
  }

  /// gather_active with theta_j = theta_of(j). "h > theta, or (h - theta) / eps inside the window"
  /// is one comparison, (h - theta) / eps > -1/2: above theta the quotient is >= 0, and at or
  /// below it the window's upper edge holds. Rounding is monotone, so this is the same set as the
  /// dense backward's two tests (NaN selects nothing either way), and without branches the host
  /// compiler vectorises the scan over the batch.
  template <class T, class Theta>
  bool gather_window(const Matrix<T>& h, const Theta& theta_of, ActiveSet<T>& active, std::size_t max_entries) const {
    const T eps = static_cast<T>(bandwidth);
    return active.gather(
        h.extent(0), h.extent(1),
        KOKKOS_LAMBDA(int i, int j, T& v) {
          const T theta = theta_of(j), x = h(i, j);
          v = x > theta ? x : T(0);
          return (x - theta) / eps > T(-0.5);
        },
        max_entries);
  }

  /// grad(e): dLoss/dc -> dLoss/dh on the set, and the threshold's pseudo-gradient (the dense
  /// backward's formulas, summed over the set's entries of each latent in row order).
  template <class T>
  void backward_active(const StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g,
                       ActiveSet<T>& active) const {
    const auto h = b.h;
    const auto grad = active.grad;
    const auto theta_of = jumprelu_threshold(p);
    const auto g_raw = jumprelu_threshold_gradient(g, theta_of);
    const T eps = static_cast<T>(bandwidth);
    const bool ste = ste_to_input;
    kernels::sparse_column_sums(
        active, h.extent(1),
        KOKKOS_LAMBDA(int i, int j, int e) {
          const T theta = theta_of(j);
          return -((theta / eps) * rectangle((h(i, j) - theta) / eps) * grad(e));
        },
        KOKKOS_LAMBDA(int j, T d_theta) { g_raw(j) += theta_of.raw_gradient(theta_of(j), d_theta); });
    kernels::for_each_active(active, KOKKOS_LAMBDA(int i, int j, int e) {
      const T theta = theta_of(j);
      const T window = (theta / eps) * rectangle((h(i, j) - theta) / eps) * grad(e);
      grad(e) = (h(i, j) > theta ? grad(e) : T(0)) + (ste ? window : T(0));
    });
  }
};

}  // namespace synthsae
