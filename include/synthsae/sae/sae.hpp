#pragma once
// The composed SAE: Sae<Activation, Penalty, Aux, Nesting, T>.
//
// Forward (reference §8.1):  xc = x - b_dec;  h = xc W_enc + b_enc;  c, z = Activation(h);
//                            x_hat = c W_dec + b_dec;  loss = mean_b |x_hat - x|^2 + Nesting + Penalty + Aux
// Backward is written by hand (no autograd):
//   g = 2 (x_hat - x) / B;  dW_dec = c^T g;  db_dec = sum_b g;  dc = g W_dec^T
//   Nesting adds its inner reconstructions' terms; Penalty adds dz (-> dc, dnorms);
//   Activation maps dc to dh (and its own parameters); Aux adds to dh and dW_dec;
//   dW_dec_j += dnorms_j W_dec_j / |W_dec_j|;  dW_enc = xc^T dh;  db_enc = sum_b dh;
//   db_dec -= W_enc db_enc.
// Every term has a finite-difference test in tests/sae. The slots' concepts are in concepts.hpp;
// the rules between slots (CompositionRules below) fail at compile time; every slot validates
// itself against (d_in, d_sae) in the constructor; the penalty's lambda is its own coefficient
// scaled by the trainer's PenaltyScale (step_interface.hpp).
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "synthsae/core/gemm.hpp"
#include "synthsae/core/host_copy.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/sae/concepts.hpp"
#include "synthsae/sae/kernels/active_set.hpp"
#include "synthsae/sae/kernels/adaptive_decode.hpp"
#include "synthsae/sae/kernels/screened_encoder.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/parameters.hpp"
#include "synthsae/sae/policies.hpp"
#include "synthsae/sae/run_state.hpp"
#include "synthsae/sae/step_interface.hpp"

namespace synthsae {

/// Compile-time composition rules (docs/policies.md#composition-rules): each policy states what it
/// needs from the others with a flag; a composition that breaks a rule does not compile.
template <class Activation, class Penalty, class Aux, class Nesting>
struct CompositionRules {
  static constexpr bool activation_learns_threshold = requires { requires Activation::learns_threshold; };
  static constexpr bool penalty_needs_threshold = requires { requires Penalty::needs_learned_threshold; };
  static constexpr bool aux_needs_threshold = requires { requires Aux::needs_learned_threshold; };
  static constexpr bool aux_needs_matryoshka = requires { requires Aux::needs_matryoshka_nesting; };
  static constexpr bool nesting_is_matryoshka = requires(const Nesting& n) { n.widths; };
  static_assert(!penalty_needs_threshold || activation_learns_threshold,
                "Sae: this penalty (L0StepPenalty) needs an activation with a learned threshold (JumpRelu) - "
                "docs/policies.md#composition-rules");
  static_assert(
      !aux_needs_threshold || activation_learns_threshold,
      "Sae: this auxiliary loss (JumpReluPreActivation) needs an activation with a learned threshold (JumpRelu) - "
      "docs/policies.md#composition-rules");
  static_assert(
      !aux_needs_matryoshka || nesting_is_matryoshka,
      "Sae: this auxiliary loss (MatryoshkaAuxK) needs the Matryoshka nesting - docs/policies.md#composition-rules");
  static constexpr bool ok = true;
};

template <class Activation, class Penalty = NoPenalty, class Aux = NoAux, class Nesting = NoNesting, class T = float>
requires ActivationPolicy<Activation, T> && PenaltyPolicy<Penalty, T> && AuxLossPolicy<Aux, T> &&
    NestingPolicy<Nesting, T>
class Sae {
 public:
  using Scalar = T;
  using activation_type = Activation;
  using penalty_type = Penalty;
  /// Whether this composition can take the sparse step: decoder forward, both weight gradients
  /// and dLoss/dc touch only the active latents; only the encoder product stays dense.
  static constexpr bool has_sparse_step = SelectsActiveLatents<Activation, T> && !Penalty::active &&
                                          SparseNestingPolicy<Nesting, T> && SparseAuxLossPolicy<Aux, T>;
  /// Whether it takes the density-adaptive step instead (ReLU, JumpReLU): the same sparse
  /// products on every batch whose needed entries are at most sparse_step_max_density() of
  /// B x S, the dense step on the others (early in training, when half the latents fire).
  static constexpr bool has_adaptive_sparse_step =
      !has_sparse_step && GathersActiveLatents<Activation, T> && SparsePenaltyPolicy<Penalty, T> &&
      SparseNestingPolicy<Nesting, T> && SparseAuxLossPolicy<Aux, T>;
  /// The crossover of the adaptive step, measured with bench_sae (BM_StepStandardDensity): below
  /// this fraction of needed entries the sparse step is faster on a 2-core AVX2 machine.
  static constexpr double default_sparse_step_max_density = 0.06;
  /// Whether a policy's sparse-step hooks read b.z, the dense feature activations: a policy says
  /// so with sparse_step_reads_feature_acts = true (MatryoshkaAuxK); otherwise the sparse steps
  /// write b.z only when it is asked for (last_activations).
  static constexpr bool policies_read_feature_acts =
      requires { requires Activation::sparse_step_reads_feature_acts; } ||
      requires { requires Penalty::sparse_step_reads_feature_acts; } ||
      requires { requires Aux::sparse_step_reads_feature_acts; } ||
      requires { requires Nesting::sparse_step_reads_feature_acts; };

  static_assert(CompositionRules<Activation, Penalty, Aux, Nesting>::ok);

  /// Whether an output map (set_output_map) covers every term that compares with the input: a
  /// nesting's inner reconstructions and an auxiliary loss on the residual (AuxK) compare in the
  /// SAE's own space, so those compositions cannot train behind a per-row normalisation (SAELens
  /// raises for them too).
  static constexpr bool output_map_covers_loss =
      !CompositionRules<Activation, Penalty, Aux, Nesting>::nesting_is_matryoshka &&
      !requires { requires Aux::reads_residual; };

  /// Validates every slot against (d_in, d_sae) and binds shared hyperparameters to their one
  /// source (the penalty's bandwidth to the activation's, MatryoshkaAuxK's levels to the nesting's).
  Sae(std::size_t d_in, std::size_t d_sae, Activation activation = {}, Penalty penalty = {}, Aux aux = {},
      Nesting nesting = {}, std::optional<double> decoder_init_norm = 0.1, std::uint64_t seed = 0)
      : activation_(std::move(activation)),
        penalty_(std::move(penalty)),
        aux_(std::move(aux)),
        nesting_(std::move(nesting)) {
    activation_.validate(d_in, d_sae);
    penalty_.validate(d_in, d_sae);
    aux_.validate(d_in, d_sae);
    nesting_.validate(d_in, d_sae);
    if constexpr (requires { penalty_.bind(activation_); }) penalty_.bind(activation_);
    if constexpr (requires { aux_.bind(nesting_); }) aux_.bind(nesting_);
    params_ = initial_parameters<T>(d_in, d_sae, decoder_init_norm, seed);
    activation_.add_parameters(params_);
  }

  std::size_t input_dim() const { return params_.input_dim(); }
  std::size_t num_latents() const { return params_.num_latents(); }
  SaeParameters<T>& parameters() { return params_; }
  const SaeParameters<T>& parameters() const { return params_; }
  const Activation& activation() const { return activation_; }
  /// Mutable for the folds that change how the activation reads the weights (the whitening fold
  /// folds the decoder norms into W_enc and turns the decoder-norm rescale off, as SAELens does).
  Activation& activation() { return activation_; }
  const Penalty& penalty() const { return penalty_; }
  const Aux& aux() const { return aux_; }
  const Nesting& nesting() const { return nesting_; }
  typename Activation::template State<T>& activation_state() { return act_state_; }
  const typename Activation::template State<T>& activation_state() const { return act_state_; }
  typename Aux::template State<T>& aux_state() { return aux_state_; }
  typename Nesting::template State<T>& nesting_state() { return nest_state_; }
  Matrix<T> decoder_weights() const { return params_.w_dec; }

  /// The feature activations z of the last training forward pass [B, S]. A sparse step keeps
  /// them as its active set and writes this matrix on the first request (a pass over B x S that
  /// the trainer's firing count does not need: add_last_firing_counts).
  const Matrix<T>& last_activations() const {
    write_deferred_activations();
    return train_.z;
  }
  /// When the last training step was sparse and z is still only its active set: adds to
  /// counts[j] (length S) the rows of that batch where latent j fired (z != 0) and returns the
  /// batch's row count. Otherwise nothing (count from last_activations()). Host backends.
  std::optional<std::size_t> add_last_firing_counts(std::vector<std::int64_t>& counts) const {
    if constexpr (!host_accessible_v<MemSpace>) {
      return std::nullopt;
    } else {
      if (!z_deferred_) return std::nullopt;
      const auto starts = active_.row_start;
      const auto cols = active_.col;
      const auto vals = active_.value;
      const auto norms = train_.norms;
      const std::size_t rows = active_.rows();
      for (std::size_t i = 0; i < rows; ++i)
        for (int e = starts(i); e < starts(i + 1); ++e)  // scatter_feature_acts' z, tested against 0
          counts[cols(e)] += (z_rescaled_ ? vals(e) * norms(cols(e)) : vals(e)) != T(0);
      return rows;
    }
  }
  /// Its reconstruction [B, D].
  const Matrix<T>& last_reconstruction() const { return train_.x_hat; }
  /// The training step's work arrays as the last forward_backward left them (tests run a
  /// policy's kernels on them).
  StepBuffers<T>& training_buffers() {
    write_deferred_activations();
    return train_;
  }

  /// Loss and gradients (written into `grads`, which must have the parameters' shapes) for one
  /// batch. `dead`: per-latent mask for the auxiliary loss (may be empty); `scale`: how the
  /// trainer scales the penalty's own coefficient at this step (warm-up, autotuner).
  StepLosses forward_backward(const Matrix<T>& x, SaeParameters<T>& grads, const DeadMask& dead = {},
                              std::size_t num_dead = 0, PenaltyScale scale = {}) {
    if constexpr (has_sparse_step) {
      last_step_sparse_ = sparse_step_;
      if (sparse_step_) return sparse_forward_backward(x, grads, dead, num_dead);
    }
    // Parameters with a constrained domain (a directly trained JumpReLU threshold) are projected
    // onto it before the step, as SAELens does.
    if constexpr (requires { activation_.project(params_); }) activation_.project(params_);
    StepBuffers<T>& b = train_;
    encoder_pre_activations(x, b);
    last_step_sparse_ = false;
    if constexpr (has_adaptive_sparse_step) {
      bool penalty_sparse = true;
      if constexpr (Penalty::active) penalty_sparse = penalty_.has_sparse_form();
      if (sparse_step_ && penalty_sparse && !activation_.rescales_by_decoder_norm()) {
        const double cells = double(b.batch()) * double(num_latents());
        const auto max_entries = static_cast<std::size_t>(sparse_max_density_ * cells);
        if (activation_.gather_active(b, params_, active_, max_entries)) {
          last_step_sparse_ = true;
          return adaptive_sparse_backward(b, grads, dead, num_dead, scale);
        }
      }
    }
    activate(b, true, true);
    StepLosses losses;
    const std::size_t rows = b.batch();
    const int s = static_cast<int>(num_latents());
    losses.mse = kernels::mse_and_gradient(b.x, b.x_hat, b.g_xhat, output_map_);  // outer reconstruction
    gemm(Op::T, Op::N, T(1), b.c, b.g_xhat, T(0), grads.w_dec);
    kernels::column_sums(b.g_xhat, grads.b_dec, T(1), false);
    gemm(Op::N, Op::T, T(1), b.g_xhat, params_.w_dec, T(0), b.dc);
    for (auto& [name, v] : grads.extra) Kokkos::deep_copy(v, T(0));
    Kokkos::deep_copy(b.dnorms, T(0));

    losses.inner_mse = nesting_.accumulate(b, params_, grads, nest_state_);

    double lambda = 0;
    if constexpr (Penalty::active) {
      lambda = scale.lambda(penalty_.coefficient);
      losses.penalty = penalty_.forward(b, b.z, params_, lambda);
      if (!activation_.rescales_by_decoder_norm()) {
        penalty_.backward(b, b.z, b.dc, params_, grads, lambda);  // z = c
      } else {
        if (dz_.extent(0) != rows || dz_.extent(1) != num_latents()) dz_ = Matrix<T>("dz", rows, num_latents());
        Kokkos::deep_copy(dz_, T(0));
        penalty_.backward(b, b.z, dz_, params_, grads, lambda);
        const auto dz = dz_, dc = b.dc, c = b.c;
        const auto norms = b.norms, dnorms = b.dnorms;
        const int ri = static_cast<int>(rows);
        Kokkos::parallel_for(
            "synthsae::dz_to_dc", Kokkos::RangePolicy<ExecSpace>(0, s), KOKKOS_LAMBDA(int j) {
              T col = 0;
              for (int i = 0; i < ri; ++i) {  // z = c n: dc += dz n, dn += dz c
                dc(i, j) += dz(i, j) * norms(j);
                col += dz(i, j) * c(i, j);
              }
              dnorms(j) += col;
            });
      }
    }

    activation_.backward(b, params_, grads, act_state_);
    // A penalty on the pre-activations themselves (the L0 step) adds to dh and the threshold.
    if constexpr (requires { penalty_.backward_pre_activation(b, params_, grads, lambda); })
      penalty_.backward_pre_activation(b, params_, grads, lambda);
    losses.aux = aux_.accumulate(b, params_, grads, aux_state_, dead, num_dead);

    kernels::add_norm_gradient(params_.w_dec, b.norms, b.dnorms, grads.w_dec);
    gemm(Op::T, Op::N, T(1), b.xc, b.dh, T(0), grads.w_enc);
    kernels::column_sums(b.dh, grads.b_enc, T(1), false);
    if (apply_b_dec_to_input_)  // b_dec also enters through xc
      kernels::subtract_encoder_image(params_.w_enc, grads.b_enc, grads.b_dec);
    return losses;
  }

  /// Compare the next steps' outer reconstruction through `map` (kernels/output_map.hpp: the
  /// trainer's per-row normalisation); an empty map restores the plain MSE.
  void set_output_map(OutputMap<T> map) {
    static_assert(output_map_covers_loss, "Sae::set_output_map: this composition's nesting or auxiliary loss "
                                          "compares with the input in the SAE's own space");
    output_map_ = std::move(map);
  }

  /// Use the sparse step when the composition has one (the default); false forces the dense
  /// path, which computes the same values with full-size products (tests compare the two).
  void set_sparse_step(bool on) { sparse_step_ = on; }
  bool sparse_step() const { return (has_sparse_step || has_adaptive_sparse_step) && sparse_step_; }
  /// The adaptive step's crossover: the sparse step when at most this fraction of the batch's
  /// B x S entries is needed (0 forces the dense step, 1 the sparse one).
  void set_sparse_step_max_density(double fraction) {
    if (!(fraction >= 0 && fraction <= 1)) throw ConfigError("sparse_step_max_density", show(fraction), "must be in [0, 1]");
    sparse_max_density_ = fraction;
  }
  double sparse_step_max_density() const { return sparse_max_density_; }
  /// Whether the last training step took the sparse products.
  bool last_step_was_sparse() const { return last_step_sparse_; }
  /// Entries per row of the last sparse step's active set (the JumpReLU's include those inside
  /// the threshold's window, which are not firing); 0 after a dense step.
  double last_step_entries_per_row() const {
    return last_step_sparse_ && active_.rows() > 0 ? double(active_.entries) / double(active_.rows()) : 0.0;
  }

  /// Whether this composition can screen its encoder product: a selection that says what it
  /// keeps (BatchTopK's batch-wide top m, TopK's per-row top k) with an auxiliary loss that says
  /// which pre-activations it reads (AuxK, MatryoshkaAuxK, none), in the sparse step (no
  /// penalty), float parameters on the host.
  static constexpr bool supports_encoder_screening =
      std::is_same_v<T, float> && host_accessible_v<MemSpace> && has_sparse_step &&
      requires(const Activation a, const Aux x) {
        { a.screened_selection(std::size_t{}) } -> std::same_as<ScreenedSelection>;
        { x.reads_dead_columns(std::size_t{}) } -> std::same_as<bool>;
      };
  /// The sparse step's encoder product in BF16 with FP32 values wherever the selections read
  /// them (kernels/screened_encoder.hpp): FP32 arithmetic at about the BF16 product's cost.
  /// The dense step (set_sparse_step(false)) and evaluation keep the plain product. ConfigError
  /// for a composition that cannot (supports_encoder_screening).
  void set_encoder_screening(bool on) {
    if (on && !supports_encoder_screening)
      throw ConfigError(
          "screen_encoder", "true",
          "needs BatchTopK or TopK with AuxK, MatryoshkaAuxK or no aux loss, no penalty, float, on the host");
    screen_encoder_ = on;
  }
  bool encoder_screening() const { return screen_encoder_; }
  /// The screen's work arrays and its last step's counts (tests, diagnostics).
  auto& encoder_screen() { return screen_; }

  /// SAELens's apply_b_dec_to_input (default true): whether the encoder sees x - b_dec or x.
  /// Without it b_dec is only the decoder's bias, and its gradient loses the encoder term.
  void set_apply_b_dec_to_input(bool on) { apply_b_dec_to_input_ = on; }
  bool apply_b_dec_to_input() const { return apply_b_dec_to_input_; }

  /// Loss only (no gradients, no state update): for finite-difference tests.
  StepLosses loss(const Matrix<T>& x, const DeadMask& dead = {}, std::size_t num_dead = 0, PenaltyScale scale = {}) {
    SaeParameters<T> scratch = params_.zeros_like();
    const auto saved_act = act_state_;
    const auto saved_aux = aux_state_;
    const auto saved_nest = nest_state_;
    const StepLosses l = forward_backward(x, scratch, dead, num_dead, scale);
    act_state_ = saved_act, aux_state_ = saved_aux, nest_state_ = saved_nest;
    return l;
  }

  /// The persistent run state of every slot (run_state.hpp), for checkpoints.
  template <class Archive>
  void persist(Archive& ar) {
    persist_slot(ar, "activation", act_state_);
    persist_slot(ar, "aux", aux_state_);
    persist_slot(ar, "nesting", nest_state_);
  }

  /// The trainer's input scale s into the weights (fold_input_scale_linear); an activation whose
  /// state is in feature-activation units follows (BatchTopK's threshold when it ranks by
  /// decoder-norm-scaled activations: they shrink by s with W_dec).
  void fold_input_scale(double s) {
    fold_input_scale_linear(params_, s);
    if constexpr (requires { activation_.fold_input_scale(act_state_, s); }) activation_.fold_input_scale(act_state_, s);
  }

  // ---- inference / evaluation (EvaluableSae) ------------------------------------------
  /// z = feature activations [B, S]; BatchTopK selects over this batch (the runner's evaluation).
  void encode(const Matrix<T>& x, const Matrix<T>& z) {
    forward(x, eval_, false, /*reconstruct=*/false);
    copy_view(z, eval_.z);
  }
  /// x_hat = (rescale ? z / |W_dec| : z) W_dec + b_dec (from z's nonzero entries when they are
  /// few: kernels/adaptive_decode.hpp).
  void decode(const Matrix<T>& z, const Matrix<T>& x_hat) {
    const bool rescale = activation_.rescales_by_decoder_norm();
    if (rescale) kernels::row_norms(params_.w_dec, eval_norms());
    decoder_.decode(z, rescale ? eval_norms_ : Vector<T>(), params_.w_dec, params_.b_dec, x_hat);
  }
  /// The evaluation decoder's choice between the GEMM and the sparse form.
  AdaptiveDecode<T>& evaluation_decoder() { return decoder_; }

 public:  // Kernel-launching helpers are public only because nvcc forbids extended
  // __host__ __device__ lambdas inside private member functions; not part of the API.
  const Vector<T>& eval_norms() {
    if (eval_norms_.extent(0) != num_latents()) eval_norms_ = Vector<T>("eval_norms", num_latents());
    return eval_norms_;
  }

  /// The sparse steps' z: their active set stands for it until asked for (the scatter writes all
  /// of B x S), unless a policy's sparse hooks read b.z.
  void defer_activations(bool rescaled) {
    z_deferred_ = true, z_rescaled_ = rescaled;
    if constexpr (policies_read_feature_acts) write_deferred_activations();
  }
  void write_deferred_activations() const {
    if (!z_deferred_) return;
    kernels::scatter_feature_acts(active_, train_.norms, z_rescaled_, train_.z);
    z_deferred_ = false;
  }

  void decode_coefficients(const Matrix<T>& c, const Matrix<T>& x_hat) const {
    gemm(Op::N, Op::N, T(1), c, params_.w_dec, T(0), x_hat);
    kernels::add_to_rows(x_hat, params_.b_dec);
  }

  StepLosses sparse_forward_backward(const Matrix<T>& x, SaeParameters<T>& grads, const DeadMask& dead,
                                     std::size_t num_dead) {
    StepBuffers<T>& b = train_;
    if constexpr (supports_encoder_screening) {
      if (screen_encoder_)
        screened_pre_activations(x, b, dead, num_dead);
      else
        encoder_pre_activations(x, b);
    } else {
      encoder_pre_activations(x, b);
    }
    activation_.forward_active(b, params_, act_state_, true, active_);  // b.c is not written
    defer_activations(activation_.rescales_by_decoder_norm());
    const int s = static_cast<int>(num_latents());
    StepLosses losses;
    // x_hat, g = dLoss/dx_hat, and grad = dLoss/dc on the active entries
    losses.mse =
        kernels::sparse_reconstruct(active_, params_.w_dec, params_.b_dec, b.x, b.x_hat, b.g_xhat, s, false, output_map_);
    kernels::sparse_decoder_grad(active_, b.g_xhat, grads.w_dec, false, s);
    kernels::column_sums(b.g_xhat, grads.b_dec, T(1), false);
    for (auto& [name, v] : grads.extra) Kokkos::deep_copy(v, T(0));
    losses.inner_mse = nesting_.accumulate_sparse(b, active_, params_, grads, nest_state_);
    // The activation passes dLoss/dc through unchanged on the active entries (c = h there).
    kernels::sparse_encoder_grad(active_, b.xc, grads.w_enc, grads.b_enc, false);
    losses.aux = aux_.accumulate_sparse(b, params_, grads, aux_state_, dead, num_dead);
    if (apply_b_dec_to_input_)  // b_dec also enters through xc
      kernels::subtract_encoder_image(params_.w_enc, grads.b_enc, grads.b_dec);
    return losses;
  }

  /// The density-adaptive step after the encoder product, on the gathered entries: the dense
  /// step's terms in the same order, each product over the entries only.
  StepLosses adaptive_sparse_backward(StepBuffers<T>& b, SaeParameters<T>& grads, const DeadMask& dead,
                                      std::size_t num_dead, PenaltyScale scale) {
    const int s = static_cast<int>(num_latents());
    defer_activations(false);  // z = c: these activations do not rescale
    StepLosses losses;
    losses.mse =
        kernels::sparse_reconstruct(active_, params_.w_dec, params_.b_dec, b.x, b.x_hat, b.g_xhat, s, false, output_map_);
    kernels::sparse_decoder_grad(active_, b.g_xhat, grads.w_dec, false, s);
    kernels::column_sums(b.g_xhat, grads.b_dec, T(1), false);
    for (auto& [name, v] : grads.extra) Kokkos::deep_copy(v, T(0));
    Kokkos::deep_copy(b.dnorms, T(0));
    losses.inner_mse = nesting_.accumulate_sparse(b, active_, params_, grads, nest_state_);
    double lambda = 0;
    if constexpr (Penalty::active) {
      lambda = scale.lambda(penalty_.coefficient);
      losses.penalty = penalty_.forward_active(b, active_, params_, lambda);
      penalty_.backward_active(b, active_, params_, grads, lambda);
    }
    activation_.backward_active(b, params_, grads, active_);  // grad: dLoss/dc -> dLoss/dh
    if constexpr (requires { penalty_.backward_pre_activation_active(b, active_, params_, grads, lambda); })
      penalty_.backward_pre_activation_active(b, active_, params_, grads, lambda);
    losses.aux = aux_.accumulate_sparse(b, params_, grads, aux_state_, dead, num_dead);
    if constexpr (Penalty::active) kernels::add_norm_gradient(params_.w_dec, b.norms, b.dnorms, grads.w_dec);
    kernels::sparse_encoder_grad(active_, b.xc, grads.w_enc, grads.b_enc, false);
    if (apply_b_dec_to_input_)  // b_dec also enters through xc
      kernels::subtract_encoder_image(params_.w_enc, grads.b_enc, grads.b_dec);
    return losses;
  }

  /// xc = x - b_dec (x itself without apply_b_dec_to_input), h = b_enc + xc W_enc, norms = |W_dec_j|.
  void encoder_pre_activations(const Matrix<T>& x, StepBuffers<T>& b) {
    encoder_input(x, b);
    gemm_onto_rows(Op::N, Op::N, T(1), b.xc, params_.w_enc, params_.b_enc, b.h);  // h = b_enc + xc W_enc
    kernels::row_norms(params_.w_dec, b.norms);
  }

  /// The same with the screened product: h holds the FP32 dots wherever the activation's
  /// selection or the aux loss's per-row one among the dead latents can read it.
  void screened_pre_activations(const Matrix<T>& x, StepBuffers<T>& b, const DeadMask& dead, std::size_t num_dead) {
    encoder_input(x, b);
    kernels::row_norms(params_.w_dec, b.norms);  // the keys' bounds scale by them
    screen_.run(b.xc, params_, b, activation_.screened_selection(b.batch()), activation_.rescales_by_decoder_norm(),
                dead, aux_.reads_dead_columns(num_dead));
  }

  /// b.x = x, b.xc = x - b_dec (or x), sized for x.
  void encoder_input(const Matrix<T>& x, StepBuffers<T>& b) {
    if (x.extent(1) != input_dim()) {
      throw ShapeError("SAE input has " + show(x.extent(1)) + " dimensions, d_in is " + show(input_dim()));
    }
    if (&b == &train_) z_deferred_ = false;  // this step writes (or defers) z anew
    b.resize(x.extent(0), input_dim(), num_latents());
    copy_view(b.x, x);
    if (apply_b_dec_to_input_)  // xc straight from the caller's x (b.x is a copy of it)
      kernels::subtract_from_rows(x, params_.b_dec, b.xc);
    else
      copy_view(b.xc, x);
  }

  void forward(const Matrix<T>& x, StepBuffers<T>& b, bool training, bool reconstruct = true) {
    encoder_pre_activations(x, b);
    activate(b, training, reconstruct);
  }

  /// c, z from h (and x_hat).
  void activate(StepBuffers<T>& b, bool training, bool reconstruct) {
    activation_.forward(b, params_, act_state_, training);
    const bool rescale = activation_.rescales_by_decoder_norm();
    const auto c = b.c, z = b.z;
    const auto norms = b.norms;
    for_each_entry(
        "synthsae::feature_acts", b.batch(), num_latents(),
        KOKKOS_LAMBDA(int i, int j) { z(i, j) = rescale ? c(i, j) * norms(j) : c(i, j); });
    if (reconstruct) decode_coefficients(b.c, b.x_hat);
  }

 private:
  Activation activation_;
  Penalty penalty_;
  Aux aux_;
  Nesting nesting_;
  SaeParameters<T> params_;
  typename Activation::template State<T> act_state_{};
  typename Aux::template State<T> aux_state_{};
  typename Nesting::template State<T> nest_state_{};
  StepBuffers<T> train_, eval_;
  Matrix<T> dz_;
  Vector<T> eval_norms_;
  AdaptiveDecode<T> decoder_;
  ActiveSet<T> active_;
  std::conditional_t<std::is_same_v<T, float>, EncoderScreen<float>, std::monostate> screen_{};
  bool screen_encoder_ = false;
  OutputMap<T> output_map_;  ///< empty: the plain MSE
  bool sparse_step_ = true;
  bool last_step_sparse_ = false;
  mutable bool z_deferred_ = false;  ///< z of the last sparse step is still only active_
  bool z_rescaled_ = false;          ///< ... and is value * |W_dec row| there (not the value)
  bool apply_b_dec_to_input_ = true;
  double sparse_max_density_ = default_sparse_step_max_density;
};

// ---- the published architectures ---------------------------------------------------------
template <class T = float>
using StandardSae = Sae<Relu, L1Penalty, NoAux, NoNesting, T>;
template <class T = float>
using TopKSae = Sae<TopK, NoPenalty, AuxK, NoNesting, T>;
template <class T = float>
using AbsTopKSae = Sae<AbsTopK, NoPenalty, AuxK, NoNesting, T>;
template <class T = float>
using BatchTopKSae = Sae<BatchTopK, NoPenalty, AuxK, NoNesting, T>;
template <class T = float>
using MatryoshkaBatchTopKSae = Sae<BatchTopK, NoPenalty, AuxK, Matryoshka, T>;
template <class T = float>
using JumpReluSae = Sae<JumpRelu, L0StepPenalty, NoAux, NoNesting, T>;
template <class T = float>
using JumpReluTanhSae = Sae<JumpRelu, L0TanhPenalty, NoAux, NoNesting, T>;

}  // namespace synthsae
