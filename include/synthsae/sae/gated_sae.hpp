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
// Density-adaptive: every term above is zero where the gate is shut, so on a batch with few open
// gates (a trained Gated SAE) the step runs its products over the open (row, latent) entries only
// (kernels/active_set.hpp), and over all of them on the others (tests/sae/test_adaptive_step.cpp).
#include <cstdint>
#include <optional>

#include "synthsae/core/gemm.hpp"
#include "synthsae/core/host_copy.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/sae/kernels/active_set.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/kernels/weighted_l1.hpp"
#include "synthsae/sae/parameters.hpp"
#include "synthsae/sae/policies/penalty_l1.hpp"
#include "synthsae/sae/step_interface.hpp"

namespace synthsae {

/// A latent's magnitude scale e^r_mag and its three column sums (gate_backward's per-column state).
template <class T>
struct GateColumn {
  T scale, sum_dp, sum_dm, sum_dr;
};

template <class T = float>
class GatedSae {
 public:
  using Scalar = T;
  using penalty_type = L1Penalty;
  struct NoState {};
  /// The adaptive step's crossover (bench_sae BM_StepGatedDensity): the fraction of open gates
  /// below which the products over the open entries are faster than the dense ones.
  static constexpr double default_sparse_step_max_density = 0.06;

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
    pre_activations(x);
    last_step_sparse_ = false;
    if (sparse_step_ && gather_open_gates(sparse_max_density_)) {
      last_step_sparse_ = true;
      return sparse_backward(grads, lambda);
    }
    activate(true);
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
    if (apply_b_dec_to_input_) kernels::subtract_encoder_image(params_.w_enc, dH_sum_, grads.b_dec);  // xc = x - b_dec
    return losses;
  }

  /// The density-adaptive step (the default) or always the dense one (false).
  void set_sparse_step(bool on) { sparse_step_ = on; }
  bool sparse_step() const { return sparse_step_; }
  /// The sparse products when at most this fraction of the batch's gates is open.
  void set_sparse_step_max_density(double fraction) {
    if (!(fraction >= 0 && fraction <= 1)) throw ConfigError("sparse_step_max_density", show(fraction), "must be in [0, 1]");
    sparse_max_density_ = fraction;
  }
  double sparse_step_max_density() const { return sparse_max_density_; }
  bool last_step_was_sparse() const { return last_step_sparse_; }

  /// SAELens's apply_b_dec_to_input (default true): whether the encoder sees x - b_dec or x.
  void set_apply_b_dec_to_input(bool on) { apply_b_dec_to_input_ = on; }
  bool apply_b_dec_to_input() const { return apply_b_dec_to_input_; }

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
    copy_view(z, z_);
  }
  void decode(const Matrix<T>& z, const Matrix<T>& x_hat) const {
    gemm(Op::N, Op::N, T(1), z, params_.w_dec, T(0), x_hat);
    kernels::add_to_rows(x_hat, params_.b_dec);
  }

 public:  // Kernel-launching helpers are public only because nvcc forbids extended
  // __host__ __device__ lambdas inside private member functions; not part of the API.
  void forward(const Matrix<T>& x, bool reconstruct = true) {
    pre_activations(x);
    activate(reconstruct);
  }

  /// x, xc = x - b_dec (x without apply_b_dec_to_input), H = xc W_enc.
  void pre_activations(const Matrix<T>& x) {
    if (x.extent(1) != input_dim())
      throw ShapeError("SAE input has " + show(x.extent(1)) + " dimensions, d_in is " + show(input_dim()));
    resize(x.extent(0));
    copy_view(x_, x);
    if (apply_b_dec_to_input_)
      kernels::subtract_from_rows(x_, params_.b_dec, xc_);
    else
      copy_view(xc_, x_);
    gemm(Op::N, Op::N, T(1), xc_, params_.w_enc, T(0), H_);
  }

  /// pi, z from H (and x_hat).
  void activate(bool reconstruct) {
    const auto H = H_, z = z_, pi = pi_;
    const auto b_gate = params_.extra.at("b_gate"), r_mag = params_.extra.at("r_mag"),
               b_mag = params_.extra.at("b_mag");
    for_each_entry(
        "synthsae::gated_forward", H_.extent(0), num_latents(), KOKKOS_LAMBDA(int i, int j) {
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
    for_each_column(
        "synthsae::gated_backward", std::size_t(rows), num_latents(),
        KOKKOS_LAMBDA(int j) { return GateColumn<T>{kmath::exp(r_mag(j)), T(0), T(0), T(0)}; },
        KOKKOS_LAMBDA(int i, int j, GateColumn<T>& st) {
          const T p = H(i, j) + b_gate(j);
          const T m = H(i, j) * st.scale + b_mag(j);
          const T dp = p > T(0) ? dpi(i, j) : T(0);
          const T dm = (p > T(0) && m > T(0)) ? dz(i, j) : T(0);
          dH(i, j) = dp + dm * st.scale;
          st.sum_dp += dp;
          st.sum_dm += dm;
          st.sum_dr += dm * H(i, j) * st.scale;
        },
        KOKKOS_LAMBDA(int j, const GateColumn<T>& st) {
          gb_gate(j) = st.sum_dp;
          gb_mag(j) = st.sum_dm;
          gr_mag(j) = st.sum_dr;
        });
  }

  /// The open gates (p > 0) as an active set with value z, and the same entries with value pi;
  /// false (nothing gathered) when more than `max_density` of them are open.
  bool gather_open_gates(double max_density) {
    const auto H = H_;
    const auto b_gate = params_.extra.at("b_gate"), r_mag = params_.extra.at("r_mag"),
               b_mag = params_.extra.at("b_mag");
    const auto max_entries = static_cast<std::size_t>(max_density * double(H_.extent(0)) * double(H_.extent(1)));
    const bool few = open_.gather(
        H_.extent(0), H_.extent(1),
        KOKKOS_LAMBDA(int i, int j, T& v) {
          const T m = H(i, j) * kmath::exp(r_mag(j)) + b_mag(j);
          v = m > T(0) ? m : T(0);
          return H(i, j) + b_gate(j) > T(0);
        },
        max_entries);
    if (!few) return false;
    open_pi_.share_pattern(open_);
    const auto pi = open_pi_.value;
    kernels::for_each_active(open_, KOKKOS_LAMBDA(int i, int j, int e) { pi(e) = H(i, j) + b_gate(j); });
    return true;
  }

  /// The dense step's terms over the open gates (grad holds dz, dpi, then dH).
  StepLosses sparse_backward(SaeParameters<T>& grads, double lambda) {
    const int s = static_cast<int>(num_latents());
    StepLosses losses;
    kernels::scatter_feature_acts(open_, norms_, false, z_);
    losses.mse = kernels::sparse_reconstruct(open_, params_.w_dec, params_.b_dec, x_, x_hat_, g_, s, false);
    kernels::sparse_decoder_grad(open_, g_, grads.w_dec, false, s);
    kernels::column_sums(g_, grads.b_dec, T(1), false);
    losses.aux = kernels::sparse_reconstruct(open_pi_, params_.w_dec, params_.b_dec, x_, x_hat_pi_, x_hat_pi_, s, false);
    kernels::sparse_decoder_grad(open_pi_, x_hat_pi_, grads.w_dec, true, s);
    kernels::column_sums(x_hat_pi_, grads.b_dec, T(1), true);
    // L1 on pi: lambda / B sum pi n;  dpi += lambda n / B;  dnorms = lambda / B sum_b pi.
    kernels::row_norms(params_.w_dec, norms_);
    losses.penalty = lambda * kernels::weighted_l1_active(open_pi_, norms_) / double(x_.extent(0));
    Kokkos::deep_copy(dnorms_, T(0));
    kernels::weighted_l1_active_backward(open_pi_, norms_, dnorms_, static_cast<T>(lambda / double(x_.extent(0))));
    const auto dpi = open_pi_.grad;
    kernels::add_norm_gradient(params_.w_dec, norms_, dnorms_, grads.w_dec);
    // The gate and magnitude paths: dp = dpi, dm = dz [m > 0], dH = dp + dm exp(r_mag).
    const auto H = H_;
    const auto r_mag = params_.extra.at("r_mag"), b_mag = params_.extra.at("b_mag");
    const auto gb_gate = grads.extra.at("b_gate"), gr_mag = grads.extra.at("r_mag"), gb_mag = grads.extra.at("b_mag");
    const auto dz = open_.grad;
    auto dm = KOKKOS_LAMBDA(int i, int j, int e) {
      return H(i, j) * kmath::exp(r_mag(j)) + b_mag(j) > T(0) ? dz(e) : T(0);
    };
    kernels::sparse_column_sums(
        open_, num_latents(), KOKKOS_LAMBDA(int, int, int e) { return dpi(e); },
        KOKKOS_LAMBDA(int j, T sum) { gb_gate(j) = sum; });
    kernels::sparse_column_sums(open_, num_latents(), dm, KOKKOS_LAMBDA(int j, T sum) { gb_mag(j) = sum; });
    kernels::sparse_column_sums(
        open_, num_latents(),
        KOKKOS_LAMBDA(int i, int j, int e) { return dm(i, j, e) * H(i, j) * kmath::exp(r_mag(j)); },
        KOKKOS_LAMBDA(int j, T sum) { gr_mag(j) = sum; });
    kernels::for_each_active(open_, KOKKOS_LAMBDA(int i, int j, int e) {
      dz(e) = dpi(e) + dm(i, j, e) * kmath::exp(r_mag(j));  // grad: dz -> dH
    });
    kernels::sparse_encoder_grad(open_, xc_, grads.w_enc, dH_sum_, false);
    if (apply_b_dec_to_input_) kernels::subtract_encoder_image(params_.w_enc, dH_sum_, grads.b_dec);  // xc = x - b_dec
    return losses;
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
  ActiveSet<T> open_, open_pi_;  ///< the open gates: values z (grad dz, then dH) and pi (grad dpi)
  bool sparse_step_ = true;
  bool last_step_sparse_ = false;
  bool apply_b_dec_to_input_ = true;
  double sparse_max_density_ = default_sparse_step_max_density;
};

}  // namespace synthsae
