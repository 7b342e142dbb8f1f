#pragma once
// L1Penalty (reference §8.2): lambda mean_b sum_j z_bj |W_dec_j| (Standard, Gated). lambda is the
// penalty's own coefficient scaled by the trainer's warm-up and autotuner (PenaltyScale). With
// SAELens's lp_norm = p != 1 it is lambda mean_b |w_b|_p, w_bj = z_bj |W_dec_j| (the p-norm, not
// its p-th power), whose gradient is dL/dw_bj = lambda / B sign(w) |w_bj|^(p-1) |w_b|_p^(1-p).
#include <cmath>
#include <string_view>

#include "synthsae/core/error.hpp"
#include "synthsae/sae/kernels/active_set.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/kernels/weighted_l1.hpp"
#include "synthsae/sae/parameters.hpp"
#include "synthsae/sae/step_interface.hpp"

namespace synthsae {

struct L1Penalty {
  static constexpr std::string_view name = "l1";
  static constexpr bool active = true;
  double coefficient = 1.0;  ///< l1_coefficient (the final value; warm-up scales it)
  double lp_norm = 1.0;      ///< SAELens lp_norm: the p of the per-sample norm (1: the L1 above)

  void validate(std::size_t, std::size_t) const {
    require_coefficient("l1_coefficient", coefficient);
    if (!(lp_norm > 0) || !std::isfinite(lp_norm)) throw ConfigError("lp_norm", show(lp_norm), "must be finite and > 0");
  }

  template <class T>
  double forward(const StepBuffers<T>& b, const Matrix<T>& z, const SaeParameters<T>&, double lambda) const {
    if (lp_norm == 1.0) return lambda * kernels::weighted_l1(z, b.norms) / double(z.extent(0));
    return lambda * kernels::weighted_lp(z, b.norms, lp_norm, Vector<T>()) / double(z.extent(0));
  }

  /// p = 1: dz += lambda n_j / B; dnorms_j += lambda sum_b z_bj / B. Otherwise the p-norm's.
  template <class T>
  void backward(const StepBuffers<T>& b, const Matrix<T>& z, const Matrix<T>& dz, const SaeParameters<T>&,
                SaeParameters<T>&, double lambda) const {
    const T scale = static_cast<T>(lambda / double(z.extent(0)));
    if (lp_norm == 1.0) {
      kernels::weighted_l1_backward(z, dz, b.norms, b.dnorms, scale);
    } else {
      kernels::weighted_lp_backward(z, dz, b.norms, b.dnorms, scale, lp_norm);
    }
  }

  // ---- on an active set (the density-adaptive step; z = c = value there, zero elsewhere) ----
  /// Only the L1 (p = 1) is a sum over entries; the p-norm's gradient has a per-row factor.
  bool has_sparse_form() const { return lp_norm == 1.0; }

  template <class T>
  double forward_active(const StepBuffers<T>& b, const ActiveSet<T>& a, const SaeParameters<T>&, double lambda) const {
    return lambda * kernels::weighted_l1_active(a, b.norms) / double(b.batch());
  }

  /// grad(e) += lambda n_j / B;  dnorms_j += lambda / B sum_b z_bj.
  template <class T>
  void backward_active(const StepBuffers<T>& b, ActiveSet<T>& a, const SaeParameters<T>&, SaeParameters<T>&,
                       double lambda) const {
    kernels::weighted_l1_active_backward(a, b.norms, b.dnorms, static_cast<T>(lambda / double(b.batch())));
  }
};

}  // namespace synthsae
