#pragma once
// L0TanhPenalty (reference §8.6, JumpReLU "tanh"): lambda mean_b sum_j tanh(c z_bj |W_dec_j|).
#include <cmath>
#include <string_view>

#include "synthsae/core/error.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/parameters.hpp"
#include "synthsae/sae/step_interface.hpp"

namespace synthsae {

struct L0TanhPenalty {
  static constexpr std::string_view name = "l0_tanh";
  static constexpr bool active = true;
  double coefficient = 1.0;  ///< l0_coefficient
  double tanh_scale = 4.0;   ///< jumprelu_tanh_scale

  void validate(std::size_t, std::size_t) const { require_coefficient("l0_coefficient", coefficient); }

  template <class T>
  double forward(const StepBuffers<T>& b, const Matrix<T>& z, const SaeParameters<T>&, double lambda) const {
    const auto norms = b.norms;
    const int s = static_cast<int>(z.extent(1));
    const T cs = static_cast<T>(tanh_scale);
    double sum = 0;
    Kokkos::parallel_reduce(
        "synthsae::l0_tanh", Kokkos::RangePolicy<ExecSpace>(0, z.extent(0)),
        KOKKOS_LAMBDA(int i, double& acc) {
          for (int j = 0; j < s; ++j) acc += double(kmath::tanh(cs * z(i, j) * norms(j)));
        },
        sum);
    return lambda * sum / double(z.extent(0));
  }

  template <class T>
  void backward(const StepBuffers<T>& b, const Matrix<T>& z, const Matrix<T>& dz, const SaeParameters<T>&,
                SaeParameters<T>&, double lambda) const {
    const auto norms = b.norms, dnorms = b.dnorms;
    const int rows = static_cast<int>(z.extent(0));
    const T cs = static_cast<T>(tanh_scale);
    const T scale = static_cast<T>(lambda / double(rows));
    for_each_column(
        "synthsae::l0_tanh_backward", std::size_t(rows), z.extent(1), KOKKOS_LAMBDA(int) { return T(0); },
        KOKKOS_LAMBDA(int i, int j, T& col) {
          const T t = kmath::tanh(cs * z(i, j) * norms(j));
          const T sech2 = T(1) - t * t;
          dz(i, j) += scale * cs * norms(j) * sech2;
          col += cs * z(i, j) * sech2;
        },
        KOKKOS_LAMBDA(int j, T col) { dnorms(j) += scale * col; });
  }
};

}  // namespace synthsae
