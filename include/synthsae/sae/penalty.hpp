#pragma once
// Sparsity penalties on the feature activations z (reference §8.2, §8.6), scaled by the
// current coefficient lambda_t (warm-up and L0 autotuning happen in the trainer). Each adds
// its gradient to dz (w.r.t. z) and dnorms (w.r.t. |W_dec_j|), and may add to parameters.
//   NoPenalty
//   L1Penalty        lambda mean_b sum_j z_bj |W_dec_j|            (Standard, Gated-style)
//   L0StepPenalty    lambda mean_b sum_j H(h_bj - theta_j)         (JumpReLU "step")
//   L0TanhPenalty    lambda mean_b sum_j tanh(c z_bj |W_dec_j|)    (JumpReLU "tanh")
#include <string_view>

#include "synthsae/sae/activation_jumprelu.hpp"
#include "synthsae/sae/parameters.hpp"
#include "synthsae/sae/step_buffers.hpp"

namespace synthsae {

struct NoPenalty {
  static constexpr std::string_view name = "none";
  static constexpr bool active = false;
  template <class T>
  double forward(const StepBuffers<T>&, const Matrix<T>&, const SaeParameters<T>&, double) const { return 0.0; }
  template <class T>
  void backward(const StepBuffers<T>&, const Matrix<T>&, const Matrix<T>&, const SaeParameters<T>&, SaeParameters<T>&, double) const {}
};

namespace kernels {

/// sum_b sum_j z_bj n_j (float64): the decoder-norm-weighted L1 of z.
template <class T>
double weighted_l1(const Matrix<T>& z, const Vector<T>& norms) {
  const int s = static_cast<int>(z.extent(1));
  double sum = 0;
  Kokkos::parallel_reduce("synthsae::l1", Kokkos::RangePolicy<ExecSpace>(0, z.extent(0)), KOKKOS_LAMBDA(int i, double& acc) {
    for (int j = 0; j < s; ++j) acc += double(z(i, j)) * norms(j);
  }, sum);
  return sum;
}

/// The gradient of scale * sum_bj z_bj n_j: dz += scale n_j; dnorms_j += scale sum_b z_bj.
template <class T>
void weighted_l1_backward(const Matrix<T>& z, const Matrix<T>& dz, const Vector<T>& norms, const Vector<T>& dnorms, T scale) {
  const int rows = static_cast<int>(z.extent(0));
  Kokkos::parallel_for("synthsae::l1_backward", Kokkos::RangePolicy<ExecSpace>(0, z.extent(1)), KOKKOS_LAMBDA(int j) {
    T col = 0;
    for (int i = 0; i < rows; ++i) {
      dz(i, j) += scale * norms(j);
      col += z(i, j);
    }
    dnorms(j) += scale * col;
  });
}

}  // namespace kernels

struct L1Penalty {
  static constexpr std::string_view name = "l1";
  static constexpr bool active = true;
  double coefficient = 1.0;  ///< l1_coefficient (the final value; warm-up scales it)

  template <class T>
  double forward(const StepBuffers<T>& b, const Matrix<T>& z, const SaeParameters<T>&, double lambda) const {
    return lambda * kernels::weighted_l1(z, b.norms) / double(z.extent(0));
  }

  /// dz += lambda n_j / B; dnorms_j += lambda sum_b z_bj / B.
  template <class T>
  void backward(const StepBuffers<T>& b, const Matrix<T>& z, const Matrix<T>& dz, const SaeParameters<T>&, SaeParameters<T>&, double lambda) const {
    kernels::weighted_l1_backward(z, dz, b.norms, b.dnorms, static_cast<T>(lambda / double(z.extent(0))));
  }
};

struct L0StepPenalty {
  static constexpr std::string_view name = "l0_step";
  static constexpr bool active = true;
  double coefficient = 1.0;  ///< l0_coefficient
  double bandwidth = 0.05;   ///< must equal the JumpReLU bandwidth

  template <class T>
  double forward(const StepBuffers<T>& b, const Matrix<T>&, const SaeParameters<T>& p, double lambda) const {
    const auto h = b.h;
    const auto log_theta = p.extra.at("log_threshold");
    const int s = static_cast<int>(h.extent(1));
    double count = 0;
    Kokkos::parallel_reduce("synthsae::l0_step", Kokkos::RangePolicy<ExecSpace>(0, h.extent(0)), KOKKOS_LAMBDA(int i, double& acc) {
      for (int j = 0; j < s; ++j) acc += h(i, j) > kmath::exp(log_theta(j)) ? 1.0 : 0.0;
    }, count);
    return lambda * count / double(h.extent(0));
  }

  /// No gradient to h; d log_theta_j += theta_j * lambda / B * sum_b -(1/eps) K((h - theta) / eps).
  template <class T>
  void backward(const StepBuffers<T>& b, const Matrix<T>&, const Matrix<T>&, const SaeParameters<T>& p, SaeParameters<T>& g, double lambda) const {
    const auto h = b.h;
    const auto log_theta = p.extra.at("log_threshold");
    const auto g_log_theta = g.extra.at("log_threshold");
    const int rows = static_cast<int>(h.extent(0));
    const T eps = static_cast<T>(bandwidth);
    const T scale = static_cast<T>(lambda / double(rows));
    Kokkos::parallel_for("synthsae::l0_step_backward", Kokkos::RangePolicy<ExecSpace>(0, h.extent(1)), KOKKOS_LAMBDA(int j) {
      const T theta = kmath::exp(log_theta(j));
      T acc = 0;
      for (int i = 0; i < rows; ++i) acc += -(T(1) / eps) * rectangle((h(i, j) - theta) / eps);
      g_log_theta(j) += theta * scale * acc;
    });
  }
};

struct L0TanhPenalty {
  static constexpr std::string_view name = "l0_tanh";
  static constexpr bool active = true;
  double coefficient = 1.0;  ///< l0_coefficient
  double tanh_scale = 4.0;   ///< jumprelu_tanh_scale

  template <class T>
  double forward(const StepBuffers<T>& b, const Matrix<T>& z, const SaeParameters<T>&, double lambda) const {
    const auto norms = b.norms;
    const int s = static_cast<int>(z.extent(1));
    const T cs = static_cast<T>(tanh_scale);
    double sum = 0;
    Kokkos::parallel_reduce("synthsae::l0_tanh", Kokkos::RangePolicy<ExecSpace>(0, z.extent(0)), KOKKOS_LAMBDA(int i, double& acc) {
      for (int j = 0; j < s; ++j) acc += double(kmath::tanh(cs * z(i, j) * norms(j)));
    }, sum);
    return lambda * sum / double(z.extent(0));
  }

  template <class T>
  void backward(const StepBuffers<T>& b, const Matrix<T>& z, const Matrix<T>& dz, const SaeParameters<T>&, SaeParameters<T>&, double lambda) const {
    const auto norms = b.norms, dnorms = b.dnorms;
    const int rows = static_cast<int>(z.extent(0));
    const T cs = static_cast<T>(tanh_scale);
    const T scale = static_cast<T>(lambda / double(rows));
    Kokkos::parallel_for("synthsae::l0_tanh_backward", Kokkos::RangePolicy<ExecSpace>(0, z.extent(1)), KOKKOS_LAMBDA(int j) {
      T col = 0;
      for (int i = 0; i < rows; ++i) {
        const T t = kmath::tanh(cs * z(i, j) * norms(j));
        const T sech2 = T(1) - t * t;
        dz(i, j) += scale * cs * norms(j) * sech2;
        col += cs * z(i, j) * sech2;
      }
      dnorms(j) += scale * col;
    });
  }
};

}  // namespace synthsae
