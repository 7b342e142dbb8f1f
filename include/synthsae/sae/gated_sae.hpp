#pragma once
// The Gated SAE (reference §8.7). One encoder matrix feeds two paths:
//   xc = x - b_dec;  H = xc W_enc
//   gate pre-activation  p = H + b_gate;            gate = [p > 0];  pi = ReLU(p)
//   magnitude            m = H * exp(r_mag) + b_mag
//   z = gate * ReLU(m);  x_hat = z W_dec + b_dec
// Losses: mean_b |x_hat - x|^2
//       + lambda mean_b sum_j pi_bj |W_dec_j|                 (L1 on the gate path)
//       + mean_b |pi W_dec + b_dec - x|^2                    (auxiliary reconstruction; its
//                                                             gradient reaches W_dec and b_dec)
// The gate is a step: the reconstruction reaches W_enc only through m; the gate path learns
// from the L1 and auxiliary terms. A standalone class rather than an activation policy: its
// penalty and auxiliary loss act on pi, not on z, and its encoder has no b_enc (docs/policies.md).
// Parameters: W_enc, W_dec, b_dec and extra b_gate, r_mag, b_mag (zero-initialised); b_enc is
// empty. Hand-written backward, finite-difference tested in tests/sae.
#include <cstdint>
#include <optional>

#include "synthsae/core/gemm.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/kernels/weighted_l1.hpp"
#include "synthsae/sae/parameters.hpp"
#include "synthsae/sae/policies/penalty_l1.hpp"
#include "synthsae/sae/step_interface.hpp"

namespace synthsae {

template <class T = float>
class GatedSae {
 public:
  using Scalar = T;
  using penalty_type = L1Penalty;
  struct NoState {};

  GatedSae(std::size_t d_in, std::size_t d_sae, L1Penalty l1 = {}, std::optional<double> decoder_init_norm = 0.1,
           std::uint64_t seed = 0)
      : l1_(l1) {
    l1_.validate(d_in, d_sae);
    if (l1_.lp_norm != 1.0)  // SAELens's Gated SAE has no lp_norm: its penalty is the L1 of the gate
      throw ConfigError("lp_norm", show(l1_.lp_norm), "the Gated SAE's gate penalty is an L1 (lp_norm 1)");
    params_ = initial_parameters<T>(d_in, d_sae, decoder_init_norm, seed);
    params_.b_enc = Vector<T>("b_enc_unused", 0);
    for (const std::string name : {"b_gate", "r_mag", "b_mag"}) params_.extra[name] = Vector<T>(name, d_sae);
  }

  std::size_t input_dim() const { return params_.w_dec.extent(1); }
  std::size_t num_latents() const { return params_.w_dec.extent(0); }
  SaeParameters<T>& parameters() { return params_; }
  const SaeParameters<T>& parameters() const { return params_; }
  const L1Penalty& penalty() const { return l1_; }
  NoState& activation_state() { return state_; }
  Matrix<T> decoder_weights() const { return params_.w_dec; }
  const Matrix<T>& last_activations() const { return z_; }
  const Matrix<T>& last_reconstruction() const { return x_hat_; }

  /// Loss and gradients for one batch; `scale` scales the L1 coefficient (warm-up and
  /// autotuning). Dead latents play no part in the Gated losses.
  StepLosses forward_backward(const Matrix<T>& x, SaeParameters<T>& grads, const DeadMask& = {}, std::size_t = 0,
                              PenaltyScale scale = {}) {
    const double lambda = scale.lambda(l1_.coefficient);
    forward(x);
    StepLosses losses;
    // Reconstruction: g = 2 (x_hat - x) / B;  dW_dec = z^T g;  db_dec = sum g;  dz = g W_dec^T.
    losses.mse = kernels::mse_and_gradient(x_, x_hat_, g_);
    gemm(Op::T, Op::N, T(1), z_, g_, T(0), grads.w_dec);
    kernels::column_sums(g_, grads.b_dec, T(1), false);
    gemm(Op::N, Op::T, T(1), g_, params_.w_dec, T(0), dz_);
    // Auxiliary reconstruction from pi (re-using x_hat_pi_ for its gradient).
    gemm(Op::N, Op::N, T(1), pi_, params_.w_dec, T(0), x_hat_pi_);
    kernels::add_to_rows(x_hat_pi_, params_.b_dec);
    losses.aux = kernels::mse_and_gradient(x_, x_hat_pi_, x_hat_pi_);
    gemm(Op::T, Op::N, T(1), pi_, x_hat_pi_, T(1), grads.w_dec);
    kernels::column_sums(x_hat_pi_, grads.b_dec, T(1), true);
    gemm(Op::N, Op::T, T(1), x_hat_pi_, params_.w_dec, T(0), dpi_);
    // L1 on pi, weighted by the decoder norms; its norm gradient goes back to W_dec rows.
    kernels::row_norms(params_.w_dec, norms_);
    const double rows = double(x.extent(0));
    losses.penalty = lambda * kernels::weighted_l1(pi_, norms_) / rows;
    Kokkos::deep_copy(dnorms_, T(0));
    kernels::weighted_l1_backward(pi_, dpi_, norms_, dnorms_, static_cast<T>(lambda / rows));
    kernels::add_norm_gradient(params_.w_dec, norms_, dnorms_, grads.w_dec);
    // Through the gate and magnitude paths to dH, then the encoder.
    gate_backward(grads);
    gemm(Op::T, Op::N, T(1), xc_, dH_, T(0), grads.w_enc);
    kernels::column_sums(dH_, dH_sum_, T(1), false);
    kernels::subtract_encoder_image(params_.w_enc, dH_sum_, grads.b_dec);  // xc = x - b_dec
    return losses;
  }

  /// Loss only (no state to restore): for finite-difference tests.
  StepLosses loss(const Matrix<T>& x, const DeadMask& = {}, std::size_t = 0, PenaltyScale scale = {}) {
    SaeParameters<T> scratch = params_.zeros_like();
    return forward_backward(x, scratch, {}, 0, scale);
  }

  /// No run state survives a step (run_state.hpp).
  template <class Archive>
  void persist(Archive&) {}

  /// The trainer's input scale into the weights (SAELens: the base fold; b_gate, b_mag and r_mag
  /// act on unchanged pre-activations).
  void fold_input_scale(double s) { fold_input_scale_linear(params_, s); }

  void encode(const Matrix<T>& x, const Matrix<T>& z) {
    forward(x, /*reconstruct=*/false);
    Kokkos::deep_copy(z, z_);
  }
  void decode(const Matrix<T>& z, const Matrix<T>& x_hat) const {
    gemm(Op::N, Op::N, T(1), z, params_.w_dec, T(0), x_hat);
    kernels::add_to_rows(x_hat, params_.b_dec);
  }

 public:  // Kernel-launching helpers are public only because nvcc forbids extended
  // __host__ __device__ lambdas inside private member functions; not part of the API.
  void forward(const Matrix<T>& x, bool reconstruct = true) {
    if (x.extent(1) != input_dim())
      throw ShapeError("SAE input has " + show(x.extent(1)) + " dimensions, d_in is " + show(input_dim()));
    resize(x.extent(0));
    Kokkos::deep_copy(x_, x);
    kernels::subtract_from_rows(x_, params_.b_dec, xc_);
    gemm(Op::N, Op::N, T(1), xc_, params_.w_enc, T(0), H_);
    const auto H = H_, z = z_, pi = pi_;
    const auto b_gate = params_.extra.at("b_gate"), r_mag = params_.extra.at("r_mag"),
               b_mag = params_.extra.at("b_mag");
    for_each_entry(
        "synthsae::gated_forward", x.extent(0), num_latents(), KOKKOS_LAMBDA(int i, int j) {
          const T p = H(i, j) + b_gate(j);
          const T m = H(i, j) * kmath::exp(r_mag(j)) + b_mag(j);
          pi(i, j) = p > T(0) ? p : T(0);
          z(i, j) = (p > T(0) && m > T(0)) ? m : T(0);
        });
    if (reconstruct) decode(z_, x_hat_);
  }

  /// dp = dpi [p > 0];  dm = dz [p > 0][m > 0];  dH = dp + dm exp(r_mag);
  /// db_gate = sum_b dp;  db_mag = sum_b dm;  dr_mag = sum_b dm H exp(r_mag).
  void gate_backward(SaeParameters<T>& grads) {
    const auto H = H_, dz = dz_, dpi = dpi_, dH = dH_;
    const auto b_gate = params_.extra.at("b_gate"), r_mag = params_.extra.at("r_mag"),
               b_mag = params_.extra.at("b_mag");
    const auto gb_gate = grads.extra.at("b_gate"), gr_mag = grads.extra.at("r_mag"), gb_mag = grads.extra.at("b_mag");
    const int rows = static_cast<int>(H.extent(0));
    Kokkos::parallel_for(
        "synthsae::gated_backward", Kokkos::RangePolicy<ExecSpace>(0, num_latents()), KOKKOS_LAMBDA(int j) {
          const T scale = kmath::exp(r_mag(j));
          T sum_dp = 0, sum_dm = 0, sum_dr = 0;
          for (int i = 0; i < rows; ++i) {
            const T p = H(i, j) + b_gate(j);
            const T m = H(i, j) * scale + b_mag(j);
            const T dp = p > T(0) ? dpi(i, j) : T(0);
            const T dm = (p > T(0) && m > T(0)) ? dz(i, j) : T(0);
            dH(i, j) = dp + dm * scale;
            sum_dp += dp;
            sum_dm += dm;
            sum_dr += dm * H(i, j) * scale;
          }
          gb_gate(j) = sum_dp;
          gb_mag(j) = sum_dm;
          gr_mag(j) = sum_dr;
        });
  }

 private:
  void resize(std::size_t rows) {
    if (x_.extent(0) == rows) return;
    const std::size_t d = input_dim(), s = num_latents();
    x_ = Matrix<T>("gated_x", rows, d), xc_ = Matrix<T>("gated_xc", rows, d),
    x_hat_ = Matrix<T>("gated_x_hat", rows, d);
    g_ = Matrix<T>("gated_g", rows, d), x_hat_pi_ = Matrix<T>("gated_x_hat_pi", rows, d);
    H_ = Matrix<T>("gated_H", rows, s), z_ = Matrix<T>("gated_z", rows, s), pi_ = Matrix<T>("gated_pi", rows, s);
    dz_ = Matrix<T>("gated_dz", rows, s), dpi_ = Matrix<T>("gated_dpi", rows, s), dH_ = Matrix<T>("gated_dH", rows, s);
    norms_ = Vector<T>("gated_norms", s), dnorms_ = Vector<T>("gated_dnorms", s),
    dH_sum_ = Vector<T>("gated_dH_sum", s);
  }

  L1Penalty l1_;
  SaeParameters<T> params_;
  NoState state_;
  Matrix<T> x_, xc_, x_hat_, g_, x_hat_pi_, H_, z_, pi_, dz_, dpi_, dH_;
  Vector<T> norms_, dnorms_, dH_sum_;
};

}  // namespace synthsae
