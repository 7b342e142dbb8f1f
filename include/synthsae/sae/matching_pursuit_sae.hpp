#pragma once
// Matching Pursuit SAE (reference §8.8): a tied SAE whose encoder greedily selects decoder rows.
//   r = x - b_dec;  repeat max_iterations times:
//     j* = argmax_j ReLU(r . W_dec_j);  v = ReLU(r . W_dec_j*) (0 once a row is done);
//     z_j* += v;  r -= v W_dec_j*;  stop a row when its support stops growing
//     (stop_on_duplicate_support) or |r| < residual_threshold.
//   x_hat = z W_dec + b_dec.
//
// Affordability: instead of one [B, D] x [D, S] product per selection, the scores r . W_dec_j are
// computed once (s = (x - b_dec) W_dec^T) and updated after each selection with a row of the Gram
// matrix G = W_dec W_dec^T (s -= v G_j*), so a step costs two GEMM-sized products (scores and G)
// plus O(S) per selection and sample. The residual norm follows from |r - v w|^2 =
// |r|^2 - 2 v s_j + v^2 G_jj. The hand-written backward walks the selections in reverse,
// rebuilding r_t = r_{t+1} + v_t w_t from the final residual, and accumulates the W_dec gradient
// per latent (deterministic, no atomics).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <vector>

#include "synthsae/core/gemm.hpp"
#include "synthsae/core/host_copy.hpp"
#include "synthsae/core/host_parallel.hpp"
#include "synthsae/sae/kernels/bucket_index.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/parameters.hpp"
#include "synthsae/sae/policies/penalty_none.hpp"
#include "synthsae/sae/step_interface.hpp"

namespace synthsae {

struct MatchingPursuit {
  static constexpr std::string_view name = "matching_pursuit";
  int max_iterations = 25;
  double residual_threshold = 0.0;
  bool stop_on_duplicate_support = false;
  void validate() const {
    if (max_iterations < 1) throw ConfigError("max_iterations", show(max_iterations), "must be >= 1");
    if (!(residual_threshold >= 0)) throw ConfigError("residual_threshold", show(residual_threshold), "must be >= 0");
  }
};

namespace detail {

/// The greedy selections of every row: sel(i, t) (or -1) and val(i, t); fills z [B, S].
template <class T>
void matching_pursuit_encode(const MatchingPursuit& mp, const Matrix<T>& xc, const Matrix<T>& w_dec,
                             const Matrix<T>& scores, const Matrix<T>& gram,
                             const Kokkos::View<std::int32_t**, Kokkos::LayoutRight, MemSpace>& sel,
                             const Matrix<T>& val, const Matrix<T>& z) {
  gemm(Op::N, Op::T, T(1), xc, w_dec, T(0), scores);   // s = r0 W_dec^T
  gemm(Op::N, Op::T, T(1), w_dec, w_dec, T(0), gram);  // G = W_dec W_dec^T
  fill_view(z, T(0));
  const int s_count = static_cast<int>(w_dec.extent(0)), d = static_cast<int>(xc.extent(1));
  const int iterations = mp.max_iterations;
  const T threshold = static_cast<T>(mp.residual_threshold);
  const bool dup_stop = mp.stop_on_duplicate_support;
  const auto s = scores;
  // Rows are independent: host_rows threads them where Kokkos is Serial (Debian's), the same bits.
  host_rows(
      "synthsae::mp_encode", static_cast<std::int64_t>(xc.extent(0)), std::int64_t{2} * iterations * s_count + d,
      KOKKOS_LAMBDA(int i) {
        T r2 = 0;
        for (int k = 0; k < d; ++k) r2 += xc(i, k) * xc(i, k);
        bool done = false;
        for (int t = 0; t < iterations; ++t) {
          int best = 0;
          for (int j = 1; j < s_count; ++j)
            if (s(i, j) > s(i, best)) best = j;
          T v = s(i, best) > T(0) ? s(i, best) : T(0);
          if (done) v = T(0);
          sel(i, t) = v > T(0) ? best : -1;
          val(i, t) = v;
          if (v == T(0)) {
            if (dup_stop) done = true;  // support unchanged
            continue;
          }
          const bool new_latent = z(i, best) == T(0);
          z(i, best) += v;
          r2 = r2 - T(2) * v * s(i, best) + v * v * gram(best, best);
          for (int j = 0; j < s_count; ++j) s(i, j) -= v * gram(best, j);
          if (dup_stop && !new_latent) done = true;
          if (threshold > T(0) && kmath::sqrt(r2 > T(0) ? r2 : T(0)) < threshold) done = true;
        }
      });
}

}  // namespace detail

template <class T = float>
class MatchingPursuitSae {
 public:
  using Scalar = T;
  using penalty_type = NoPenalty;
  struct NoState {};

  MatchingPursuitSae(std::size_t d_in, std::size_t d_sae, MatchingPursuit mp = {}, std::uint64_t seed = 0) : mp_(mp) {
    mp_.validate();
    params_ = initial_parameters<T>(d_in, d_sae, 1.0, seed);  // the reference forces decoder_init_norm = 1
    params_.w_enc = Matrix<T>("w_enc_unused", 0, 0);          // tied: no encoder parameter
    params_.b_enc = Vector<T>("b_enc_unused", 0);
  }

  std::size_t input_dim() const { return params_.w_dec.extent(1); }
  std::size_t num_latents() const { return params_.w_dec.extent(0); }
  SaeParameters<T>& parameters() { return params_; }
  const SaeParameters<T>& parameters() const { return params_; }
  const MatchingPursuit& pursuit() const { return mp_; }
  const NoPenalty& penalty() const { return penalty_; }
  NoState& activation_state() { return state_; }
  Matrix<T> decoder_weights() const { return params_.w_dec; }
  const Matrix<T>& last_activations() const { return z_; }
  const Matrix<T>& last_reconstruction() const { return x_hat_; }

  /// Every term compares through the output map (its one loss is the reconstruction).
  static constexpr bool output_map_covers_loss = true;
  /// Compare the next steps' reconstruction through `map` (kernels/output_map.hpp).
  void set_output_map(OutputMap<T> map) { output_map_ = std::move(map); }

  StepLosses forward_backward(const Matrix<T>& x, SaeParameters<T>& grads, const DeadMask& = {}, std::size_t = 0,
                              PenaltyScale = {}) {
    forward(x);
    const std::size_t rows = x.extent(0);
    const int d = static_cast<int>(input_dim()), s = static_cast<int>(num_latents()), iters = mp_.max_iterations;
    StepLosses losses;
    // g = 2 (x_hat - x) / B; db_dec = sum g; the input path subtracts sum_b dr_0 below. Without
    // apply_b_dec_to_input b_dec is in neither the input nor the output (SAELens ties the two).
    losses.mse = kernels::mse_and_gradient(x_, x_hat_, g_, output_map_);
    const auto xx = x_, xh = x_hat_, g = g_;
    if (apply_b_dec_to_input_)
      kernels::column_sums(g_, grads.b_dec, T(1), false);
    else
      Kokkos::deep_copy(grads.b_dec, T(0));

    // Reverse pass per row: contribution(i, t) = v_t g_i + dv_t r_t - v_t dr_{t+1} to W_dec[j_t].
    if (contrib_.extent(0) != rows * iters || contrib_.extent(1) != input_dim())
      contrib_ = Matrix<T>("mp_contrib", rows * iters, input_dim());
    if (dr_.extent(0) != rows || dr_.extent(1) != input_dim()) {
      dr_ = Matrix<T>("mp_dr", rows, input_dim());
      r_ = Matrix<T>("mp_r", rows, input_dim());
    }
    const auto w = params_.w_dec, xc = xc_, contrib = contrib_, dr = dr_, r = r_;
    const auto sel = sel_;
    const auto val = val_;
    host_rows(
        "synthsae::mp_backward", static_cast<std::int64_t>(rows), std::int64_t{6} * iters * d, KOKKOS_LAMBDA(int i) {
          // r_T = xc - sum_t v_t w_t = x - x_hat (b_dec in both or in neither).
          for (int k = 0; k < d; ++k) {
            r(i, k) = xx(i, k) - xh(i, k);
            dr(i, k) = T(0);
          }
          for (int t = iters - 1; t >= 0; --t) {
            T* c = &contrib(i * iters + t, 0);
            const int j = sel(i, t);
            if (j < 0) {
              for (int k = 0; k < d; ++k) c[k] = T(0);
              continue;
            }
            const T v = val(i, t);
            T dz = 0, dr_dot_w = 0;
            for (int k = 0; k < d; ++k) {
              r(i, k) += v * w(j, k);  // r_t
              dz += g(i, k) * w(j, k);
              dr_dot_w += dr(i, k) * w(j, k);
            }
            const T dv = dz - dr_dot_w;
            for (int k = 0; k < d; ++k) {
              c[k] = v * g(i, k) + dv * r(i, k) - v * dr(i, k);
              dr(i, k) += dv * w(j, k);
            }
          }
        });
    // db_dec -= sum_b dr_0 (x - b_dec feeds the pursuit).
    if (apply_b_dec_to_input_) {
      const auto db = grads.b_dec;
      const int ri = static_cast<int>(rows);
      host_rows(
          "synthsae::mp_db_dec", d, ri, KOKKOS_LAMBDA(int k) {
            T acc = 0;
            for (int i = 0; i < ri; ++i) acc += dr(i, k);
            db(k) -= acc;
          });
    }
    // Per-latent accumulation over a stable device-built index of (row, t) entries by latent:
    // each latent's contributions are summed in ascending (row, t) order on every backend.
    const Kokkos::View<const std::int32_t*, MemSpace> flat_sel(sel_.data(), rows * iters);
    by_latent_.build(flat_sel, rows * iters, num_latents());
    const auto d_offsets = by_latent_.offsets;
    const auto d_order = by_latent_.order;
    const auto gw = grads.w_dec;
    // Row cost for host_rows' threading choice: zeroing the row plus the average latent's share
    // of the rows * iters selections, d operations each.
    const std::int64_t selections_per_latent = std::int64_t(rows) * iters / std::max(s, 1);
    host_rows(
        "synthsae::mp_dw_dec", s, std::int64_t(d) * (1 + selections_per_latent), KOKKOS_LAMBDA(int j) {
          for (int k = 0; k < d; ++k) gw(j, k) = T(0);
          for (int q = d_offsets(j); q < d_offsets(j + 1); ++q)
            for (int k = 0; k < d; ++k) gw(j, k) += contrib(d_order(q), k);
        });
    return losses;
  }

  StepLosses loss(const Matrix<T>& x, const DeadMask& = {}, std::size_t = 0, PenaltyScale = {}) {
    SaeParameters<T> scratch = params_.zeros_like();
    return forward_backward(x, scratch);
  }

  /// No run state survives a step (run_state.hpp).
  template <class Archive>
  void persist(Archive&) {}

  /// The trainer's input scale into the weights, as SAELens folds it: the decoder is tied (the
  /// scores are r . W_dec_j), so it stays; b_dec and the residual threshold shrink by s, and the
  /// coefficients come out 1/s of the training-space ones.
  void fold_input_scale(double s) {
    fold_input_scale_linear(params_, s, /*scale_decoder=*/false);
    mp_.residual_threshold /= s;
  }

  void encode(const Matrix<T>& x, const Matrix<T>& z) {
    forward(x);
    copy_view(z, z_);
  }
  void decode(const Matrix<T>& z, const Matrix<T>& x_hat) const {
    gemm(Op::N, Op::N, T(1), z, params_.w_dec, T(0), x_hat);
    if (apply_b_dec_to_input_) kernels::add_to_rows(x_hat, params_.b_dec);
  }

  /// SAELens's apply_b_dec_to_input (default true). The decoder is tied, so SAELens adds b_dec to
  /// the output only when it subtracts it from the input: without it b_dec plays no part.
  void set_apply_b_dec_to_input(bool on) { apply_b_dec_to_input_ = on; }
  bool apply_b_dec_to_input() const { return apply_b_dec_to_input_; }

 public:  // Kernel-launching helpers are public only because nvcc forbids extended
  // __host__ __device__ lambdas inside private member functions; not part of the API.
  void forward(const Matrix<T>& x) {
    if (x.extent(1) != input_dim())
      throw ShapeError("SAE input has " + show(x.extent(1)) + " dimensions, d_in is " + show(input_dim()));
    const std::size_t rows = x.extent(0), s = num_latents(), d = input_dim();
    if (x_.extent(0) != rows) {
      x_ = Matrix<T>("mp_x", rows, d);
      xc_ = Matrix<T>("mp_xc", rows, d);
      x_hat_ = Matrix<T>("mp_x_hat", rows, d);
      g_ = Matrix<T>("mp_g", rows, d);
      scores_ = Matrix<T>("mp_scores", rows, s);
      z_ = Matrix<T>("mp_z", rows, s);
      sel_ = decltype(sel_)("mp_sel", rows, mp_.max_iterations);
      val_ = Matrix<T>("mp_val", rows, mp_.max_iterations);
    }
    if (gram_.extent(0) != s) gram_ = Matrix<T>("mp_gram", s, s);
    copy_view(x_, x);
    const auto xx = x_, xc = xc_;
    const auto b_dec = params_.b_dec;
    const int di = static_cast<int>(d);
    const bool centre = apply_b_dec_to_input_;
    host_rows(
        "synthsae::mp_center", static_cast<std::int64_t>(rows), di, KOKKOS_LAMBDA(int i) {
          for (int k = 0; k < di; ++k) xc(i, k) = centre ? xx(i, k) - b_dec(k) : xx(i, k);
        });
    detail::matching_pursuit_encode(mp_, xc_, params_.w_dec, scores_, gram_, sel_, val_, z_);
    decode(z_, x_hat_);
  }

 private:
  MatchingPursuit mp_;
  NoPenalty penalty_;
  NoState state_;
  SaeParameters<T> params_;
  bool apply_b_dec_to_input_ = true;
  OutputMap<T> output_map_;  ///< empty: the plain MSE
  Matrix<T> x_, xc_, x_hat_, g_, scores_, gram_, z_, val_, contrib_, dr_, r_;
  Kokkos::View<std::int32_t**, Kokkos::LayoutRight, MemSpace> sel_;
  kernels::BucketIndex by_latent_;
};

}  // namespace synthsae
