#pragma once
// The training loop (reference §7.2): fresh samples every step, forward/backward, dead-latent
// tracking in steps since fired, Adam with clipping at 1 and skipped non-finite steps, the
// learning-rate schedule, coefficient warm-up and the L0 autotuner, optional input normalisation
// (SAELens's activation-norm scaling or covariance whitening) folded into the weights at the end,
// callbacks detected at compile time, and
// checkpoints that resume bit for bit on the same build.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "synthsae/core/gemm_types.hpp"
#include "synthsae/core/host_parallel.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/sae/concepts.hpp"
#include "synthsae/train/adam.hpp"
#include "synthsae/train/checkpoint.hpp"
#include "synthsae/train/input_whitening.hpp"
#include "synthsae/train/l0_autotuner.hpp"
#include "synthsae/train/runtime_normalization.hpp"
#include "synthsae/train/schedules.hpp"
#include "synthsae/world/synthetic_model.hpp"

namespace synthsae {

struct TrainerConfig {
  std::size_t training_samples = 10'000'000;
  std::size_t batch_size = 1024;
  LrSchedule lr{};  ///< total_steps is set from training_samples / batch_size
  AdamConfig adam{};
  long dead_feature_window = 1000;  ///< steps without firing before a latent counts as dead
  /// Steps per window of the firing frequencies saved as sparsity.safetensors (SAELens's
  /// feature_sampling_window): the counts restart every this many steps; the last window is kept.
  long feature_sampling_window = 2000;
  long coefficient_warm_up_steps = 0;
  std::optional<L0AutotunerConfig> autotune;
  /// SAELens's normalize_activations: "none", "expected_average_only_in" (scale to mean norm
  /// sqrt(d_in)) or "covariance_whitening", estimated from norm_estimate_batches batches and
  /// folded at the end; "constant_norm_rescale" or "layer_norm", per row in every step.
  InputNormalization normalization = InputNormalization::none;
  std::size_t norm_estimate_batches = 1000;
  double whitening_eps = 1e-3;  ///< added to the covariance eigenvalues (SAELens's eps)
  /// A step whose gradient is not finite is skipped (and counted in metrics.csv); this many in a
  /// row stop the run with a NumericalError before the next step, the last checkpoint intact.
  long max_consecutive_skipped_steps = 100;
  /// Arithmetic of every GEMM of the run on CUDA (FP32, TF32 or BF16 tensor cores); no effect on
  /// the host, whose GEMM is always exact.
  GemmMath gemm_math = GemmMath::fp32;

  void validate() const {
    if (batch_size == 0) throw ConfigError("batch_size", "0", "must be >= 1");
    if (training_samples < batch_size) {
      throw ConfigError("training_samples", show(training_samples),
                        "must be at least one batch (" + show(batch_size) + ")");
    }
    if (training_samples / batch_size > static_cast<std::size_t>(std::numeric_limits<long>::max() / 2))
      throw ConfigError("training_samples", show(training_samples), "is more steps than a 64-bit step counter holds");
    if (dead_feature_window < 1) throw ConfigError("dead_feature_window", show(dead_feature_window), "must be >= 1");
    if (feature_sampling_window < 1)
      throw ConfigError("feature_sampling_window", show(feature_sampling_window), "must be >= 1");
    if (autotune) autotune->validate();
    if (norm_estimate_batches == 0 && normalization != InputNormalization::none)
      throw ConfigError("n_batches_for_norm_estimate", "0", "must be >= 1 to estimate the normalisation");
    if (!(whitening_eps > 0)) throw ConfigError("whitening_eps", show(whitening_eps), "must be > 0");
    if (max_consecutive_skipped_steps < 1)
      throw ConfigError("max_consecutive_skipped_steps", show(max_consecutive_skipped_steps), "must be >= 1");
  }
  long total_steps() const { return static_cast<long>(training_samples / batch_size); }
};

/// What callbacks see after each step.
struct StepInfo {
  long step = 0;  ///< steps completed
  long total_steps = 0;
  std::size_t samples = 0;  ///< training samples consumed
  StepLosses losses;
  double l0 = 0;                 ///< mean nonzero latents per sample in this batch
  std::size_t dead_latents = 0;  ///< latents not fired for more than dead_feature_window steps
  double lr = 0, coefficient = 0, grad_norm = 0;
  long skipped_steps = 0;
  double elapsed_seconds = 0;
};

template <TrainableSae SaeT>
class Trainer {
 public:
  using T = typename SaeT::Scalar;
  static_assert(std::is_same_v<T, float>,
                "Trainer: synthetic data is float; train a float SAE (double SAEs are for gradient tests)");

  Trainer(SaeT& sae, SyntheticModel& world, TrainerConfig cfg)
      : sae_(sae),
        world_(world),
        cfg_(std::move(cfg)),
        adam_(sae.parameters(), cfg_.adam),
        grads_(sae.parameters().zeros_like()) {
    cfg_.validate();
    if (sae.input_dim() != world.hidden_dim()) {
      throw ShapeError("SAE d_in " + show(sae.input_dim()) + " does not match the world's hidden_dim " +
                       show(world.hidden_dim()));
    }
    cfg_.lr.total_steps = cfg_.total_steps();
    cfg_.lr.validate();
    if constexpr (!requires(SaeT& s, const InputWhitening& w) { fold_input_whitening(s, w); }) {
      if (cfg_.normalization == InputNormalization::covariance_whitening) {
        throw ConfigError("normalize_activations", "covariance_whitening",
                          "this SAE cannot fold a whitening into its weights (a tied encoder such as matching "
                          "pursuit's; SAELens refuses it too)");
      }
    }
    row_norm_.mode = cfg_.normalization;
    if constexpr (!TrainsBehindRowNormalization<SaeT>) {
      if (row_norm_.acts()) {
        throw ConfigError("normalize_activations", saelens_name(cfg_.normalization),
                          "this SAE has a loss term that compares with the input in its own space (a Matryoshka "
                          "nesting's inner reconstructions, AuxK's residual, Gated's gate reconstruction), which "
                          "a per-row normalisation cannot map back; SAELens raises for the first two and computes "
                          "Gated's from the raw input. Use none, expected_average_only_in or covariance_whitening");
      }
    }
    since_fired_ = Kokkos::View<std::int64_t*, MemSpace>("steps_since_fired", sae.num_latents());
    window_fired_ = Kokkos::View<std::int64_t*, MemSpace>("window_fired", sae.num_latents());
    dead_ = Kokkos::View<std::uint8_t*, MemSpace>("dead", sae.num_latents());
    if (cfg_.autotune) autotuner_.cfg = *cfg_.autotune;
    first_sample_ = world.position();
  }

  const TrainerConfig& config() const { return cfg_; }
  long step() const { return step_; }
  std::size_t samples() const { return samples_; }
  /// The world position of the next batch this trainer draws.
  std::uint64_t next_sample() const { return first_sample_ + samples_; }
  /// The steps fit() still takes: it steps until every training sample is seen, so a last batch
  /// may overrun (one step more than total_steps() when the batch does not divide the samples).
  long steps_left() const {
    if (samples_ >= cfg_.training_samples) return 0;
    return static_cast<long>((cfg_.training_samples - samples_ + cfg_.batch_size - 1) / cfg_.batch_size);
  }
  double scaling_factor() const { return scaling_factor_; }
  /// The covariance whitening the SAE trains behind (empty without it, and once folded).
  const InputWhitening& whitening() const { return whitening_; }
  /// The per-row normalisation the SAE trains behind (none unless constant_norm_rescale or
  /// layer_norm): evaluations and the saved SAE apply it too.
  inference::ActivationNormalization row_normalization() const {
    return row_norm_.acts() ? row_norm_.mode : inference::ActivationNormalization::none;
  }
  const L0Autotuner& autotuner() const { return autotuner_; }
  const Adam<T>& optimizer() const { return adam_; }

  /// Per latent, the fraction of this sampling window's training samples it fired on (SAELens's
  /// feature_sparsity: the window restarts every feature_sampling_window steps; at the end of a
  /// run it is the last, possibly partial, window).
  std::vector<double> feature_sparsity() const {
    auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), window_fired_);
    std::vector<double> out(h.extent(0), 0.0);
    for (std::size_t j = 0; j < out.size(); ++j)
      out[j] = window_samples_ > 0 ? double(h(j)) / double(window_samples_) : 0.0;
    return out;
  }
  /// log10(feature_sparsity + 1e-10) in float32, what SAELens saves as sparsity.safetensors.
  std::vector<float> log_feature_sparsity() const {
    std::vector<float> out;
    for (double f : feature_sparsity()) out.push_back(static_cast<float>(std::log10(static_cast<float>(f) + 1e-10f)));
    return out;
  }
  /// Latents not fired for more than dead_feature_window steps, after the last step.
  std::size_t dead_latents() const {
    auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), since_fired_);
    std::size_t n = 0;
    for (std::size_t j = 0; j < h.extent(0); ++j) n += h(j) > cfg_.dead_feature_window;
    return n;
  }

  /// How the next step scales the penalty's own coefficient: warm-up, then the autotuner.
  PenaltyScale penalty_scale() const { return {autotuner_.multiplier, step_, cfg_.coefficient_warm_up_steps}; }

  /// The sparsity coefficient for the next step: final value x warm-up x autotuner multiplier.
  double current_coefficient() const {
    if constexpr (SaeT::penalty_type::active) {
      return penalty_scale().lambda(sae_.penalty().coefficient);
    } else {
      return 0.0;
    }
  }

  /// Trains until training_samples (or `stop_after_steps` more steps). Callbacks may define
  /// on_start(const Trainer&), on_step(const StepInfo&, Trainer&), on_end(const StepInfo&, Trainer&).
  template <class... Callbacks>
  StepInfo fit(Callbacks&... callbacks) {
    return fit_steps(-1, callbacks...);
  }

  template <class... Callbacks>
  StepInfo fit_steps(long stop_after_steps, Callbacks&... callbacks) {
    const auto t0 = std::chrono::steady_clock::now();
    const ScopedGemmMath gemm_math(cfg_.gemm_math);
    if (cfg_.normalization == InputNormalization::expected_average_only_in && scaling_factor_ == 1.0 && step_ == 0)
      estimate_scaling_factor();
    if (cfg_.normalization == InputNormalization::covariance_whitening && whitening_.empty() && !folded_) {
      whitening_ = estimate_input_whitening(world_, cfg_.norm_estimate_batches, cfg_.batch_size, cfg_.whitening_eps);
    }
    if (!whitening_.empty() && whitening_map_.empty()) whitening_map_ = WhiteningMap(whitening_);
    (call_on_start(callbacks), ...);
    StepInfo info;
    long done = 0;
    while (samples_ < cfg_.training_samples && (stop_after_steps < 0 || done < stop_after_steps)) {
      info = train_step();
      info.elapsed_seconds =
          elapsed_before_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ++done;
      (call_on_step(callbacks, info), ...);
    }
    elapsed_before_ = info.elapsed_seconds;
    if (samples_ >= cfg_.training_samples && !folded_) {
      fold_scaling_factor();
      fold_whitening();
      (call_on_end(callbacks, info), ...);
    }
    return info;
  }

  /// Wall seconds this trainer spent drawing batches and in the steps proper (forward, backward,
  /// optimiser, firing statistics), summed over its fit calls in this process (not checkpointed).
  struct PhaseSeconds {
    double generation = 0, step = 0;
  };
  const PhaseSeconds& phase_seconds() const { return phases_; }

  /// Trains on f(x) instead of x: `map` rewrites each batch of the world's rows in place (same
  /// shape; a pure function of the row, so runs stay deterministic and resumable), before the
  /// scaling and in the scaling factor's estimate. E.g. a base SAE's error components
  /// (analysis/error_component_saes.hpp). Covariance whitening is estimated from raw rows and is
  /// refused with a map. Set it before the first step, and again on a Trainer that resumes: the
  /// map is code, not state, and no checkpoint records it.
  void set_input_map(std::function<void(const Matrix<float>&)> map) {
    if (map && cfg_.normalization == InputNormalization::covariance_whitening)
      throw ConfigError("normalize_activations", "covariance_whitening", "is estimated from the raw rows; not with an input map");
    input_map_ = std::move(map);
  }

  /// One optimiser step on a fresh batch.
  StepInfo train_step() {
    const std::size_t b = cfg_.batch_size;
    const auto t_start = std::chrono::steady_clock::now();
    world_.set_position(first_sample_ + samples_);
    world_.sample_into(batch_, b);
    if (input_map_) input_map_(batch_.hidden);
    Kokkos::fence();  // the phase clocks need the work done, not only launched
    const auto t_sampled = std::chrono::steady_clock::now();
    if (step_ > 0 && step_ % cfg_.feature_sampling_window == 0) {  // a new window (SAELens: before the step)
      Kokkos::deep_copy(window_fired_, std::int64_t(0));
      window_samples_ = 0;
    }
    if (scaling_factor_ != 1.0) scale_entries(batch_.hidden, static_cast<T>(scaling_factor_));
    const Matrix<T>* input = &batch_.hidden;
    if (!whitening_map_.empty()) {
      if (whitened_.extent(0) != b || whitened_.extent(1) != batch_.hidden.extent(1))
        whitened_ = Matrix<T>("whitened_batch", b, batch_.hidden.extent(1));
      whitening_map_.whiten(batch_.hidden, whitened_);
      input = &whitened_;
    }
    const std::size_t num_dead = update_dead_mask();
    const double coefficient = current_coefficient();
    StepInfo info;
    if constexpr (TrainsBehindRowNormalization<SaeT>) {
      if (row_norm_.acts()) {
        info.losses = normalized_forward_backward(sae_, row_norm_, *input, normalized_, grads_, dead_, num_dead,
                                                  penalty_scale());
      } else {
        info.losses = sae_.forward_backward(*input, grads_, dead_, num_dead, penalty_scale());
      }
    } else {
      info.losses = sae_.forward_backward(*input, grads_, dead_, num_dead, penalty_scale());
    }
    info.l0 = record_firing();
    info.lr = cfg_.lr.at(step_);
    if (adam_.step(sae_.parameters(), grads_, info.lr)) {
      consecutive_skipped_ = 0;
    } else if (++consecutive_skipped_ >= cfg_.max_consecutive_skipped_steps) {
      throw NumericalError("training stopped at step " + show(step_ + 1) + ": the last " + show(consecutive_skipped_) +
                           " steps had a non-finite loss or gradient (loss " + show(info.losses.total()) +
                           ") and were skipped; the weights are those of the last finite step, and a checkpoint "
                           "written before stays as it was (max_consecutive_skipped_steps)");
    }
    if (cfg_.autotune) autotuner_.update(info.l0, step_);
    samples_ += b;
    ++step_;
    info.step = step_;
    info.total_steps = cfg_.total_steps();
    info.samples = samples_;
    info.dead_latents = num_dead;
    info.coefficient = coefficient;
    info.grad_norm = adam_.last_grad_norm();
    info.skipped_steps = adam_.skipped();
    Kokkos::fence();
    const auto t_end = std::chrono::steady_clock::now();
    phases_.generation += std::chrono::duration<double>(t_sampled - t_start).count();
    phases_.step += std::chrono::duration<double>(t_end - t_sampled).count();
    return info;
  }

  // ---- checkpoints -----------------------------------------------------------------------
  /// Everything that must survive a checkpoint, by name (train/checkpoint.hpp): counters,
  /// schedule position, sample position, autotuner, weights, Adam moments, dead-latent counters,
  /// and the SAE's persistent policy state under "sae.".
  template <class Archive>
  void persist(Archive& ar) {
    ar("step", step_);
    ar("samples", samples_);
    ar("first_sample", first_sample_);
    std::uint64_t seed = world_.sampling_seed();
    ar("sampling_seed", seed);
    long adam_steps = adam_.steps(), adam_skipped = adam_.skipped();
    ar("adam_steps", adam_steps);
    ar("adam_skipped", adam_skipped);
    ar("scaling_factor", scaling_factor_);
    if (cfg_.normalization == InputNormalization::covariance_whitening) {
      // In double, as estimated: the fold after a resume is the fold without one.
      Vector<double> mean, matrix, inverse;
      auto to_dev = [](const std::vector<double>& v, Vector<double>& d) {
        d = Vector<double>("whitening", v.size());
        auto h = Kokkos::create_mirror_view(d);
        for (std::size_t i = 0; i < v.size(); ++i) h(i) = v[i];
        Kokkos::deep_copy(d, h);
      };
      auto to_host = [](const Vector<double>& d) {
        auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), d);
        return std::vector<double>(h.data(), h.data() + h.extent(0));
      };
      if constexpr (!Archive::reading) to_dev(whitening_.mean, mean), to_dev(whitening_.matrix, matrix),
          to_dev(whitening_.inverse, inverse);
      bool estimated = !whitening_.empty();
      ar("whitening_estimated", estimated);
      if (estimated) {
        ar("whitening_mean", mean);
        ar("whitening_matrix", matrix);
        ar("whitening_inverse", inverse);
      }
      if constexpr (Archive::reading) {
        whitening_ = estimated ? InputWhitening{to_host(mean), to_host(matrix), to_host(inverse)} : InputWhitening{};
        whitening_map_ = WhiteningMap();
      }
    }
    ar("elapsed_seconds", elapsed_before_);
    ar.enter("autotuner");
    ar("multiplier", autotuner_.multiplier);
    ar("smoothed", autotuner_.smoothed);
    ar("rate", autotuner_.rate);
    ar("started", autotuner_.started);
    ar.leave();
    auto tensors = [&](const std::string& prefix, const SaeParameters<T>& p) {
      ar.enter(prefix);
      p.for_each_flat([&](const std::string& name, const Vector<T>& v) {
        Vector<T> view = v;
        ar(name, view);
      });
      ar.leave();
    };
    tensors("param", sae_.parameters());
    tensors("adam_m", adam_.first_moment());
    tensors("adam_v", adam_.second_moment());
    ar("steps_since_fired", since_fired_);
    ar("window_fired", window_fired_);
    ar("window_samples", window_samples_);
    ar.enter("sae");
    sae_.persist(ar);
    ar.leave();
    if constexpr (Archive::reading) {
      world_.set_sampling_seed(seed);
      adam_.set_steps(adam_steps, adam_skipped);
    }
  }

  /// Writes checkpoint.safetensors and trainer_state.json into `dir`.
  void save_checkpoint(const std::filesystem::path& dir) const {
    CheckpointWriter writer;
    const_cast<Trainer&>(*this).persist(writer);  // persist() only reads when writing
    writer.write(dir);
  }

  void load_checkpoint(const std::filesystem::path& dir) {
    CheckpointReader reader(dir);
    persist(reader);
    if (samples_ > cfg_.training_samples) {
      throw FormatError(reader.state_path(), "checkpoint is at " + show(samples_) +
                                                 " samples, past this run's training_samples " +
                                                 show(cfg_.training_samples));
    }
  }

 public:  // Kernel-launching helpers are public only because nvcc forbids extended
  // __host__ __device__ lambdas inside private member functions; not part of the API.
  template <class C>
  void call_on_start(C& c) {
    if constexpr (requires { c.on_start(*this); }) c.on_start(*this);
  }
  template <class C>
  void call_on_step(C& c, const StepInfo& info) {
    if constexpr (requires { c.on_step(info, *this); }) c.on_step(info, *this);
  }
  template <class C>
  void call_on_end(C& c, const StepInfo& info) {
    if constexpr (requires { c.on_end(info, *this); }) c.on_end(info, *this);
  }

  /// dead_j = steps_since_fired_j > window; returns the count.
  std::size_t update_dead_mask() {
    const auto since = since_fired_;
    const auto dead = dead_;
    const long window = cfg_.dead_feature_window;
    std::size_t count = 0;
    Kokkos::parallel_reduce(
        "synthsae::dead_mask", Kokkos::RangePolicy<ExecSpace>(0, since.extent(0)),
        KOKKOS_LAMBDA(int j, std::size_t& acc) {
          dead(j) = since(j) > window ? 1 : 0;
          acc += dead(j);
        },
        count);
    return count;
  }

  /// steps_since_fired += 1, reset where the latent fired in this batch; the window's firing
  /// counts gain the batch's; returns the batch L0.
  double record_firing() {
    const auto since = since_fired_, window = window_fired_;
    if constexpr (host_accessible_v<ExecSpace>) {
      // Per latent, the rows where it fired: after a sparse step from the SAE's active set (z,
      // B x S, is then never written), otherwise from z in blocks of 64 columns, each read row
      // by row (contiguous; the GPU form below reads a column per thread, which on the host
      // strides by the width), threaded over blocks by host_rows.
      fired_counts_.assign(since.extent(0), 0);
      std::optional<std::size_t> rows;
      if constexpr (requires { sae_.add_last_firing_counts(fired_counts_); })
        rows = sae_.add_last_firing_counts(fired_counts_);
      if (!rows) {
        const auto z = sae_.last_activations();
        rows = z.extent(0);
        constexpr int kBlock = 64;
        const int r = static_cast<int>(z.extent(0)), cols = static_cast<int>(z.extent(1));
        std::int64_t* fired_out = fired_counts_.data();
        host_rows("synthsae::record_firing", (cols + kBlock - 1) / kBlock, static_cast<std::int64_t>(r) * kBlock,
                  [=](int block) {
                    const int j0 = block * kBlock, n = cols - j0 < kBlock ? cols - j0 : kBlock;
                    int fired[kBlock] = {};
                    for (int i = 0; i < r; ++i) {
                      const T* row = &z(i, j0);
                      for (int j = 0; j < n; ++j) fired[j] += row[j] != T(0);
                    }
                    for (int j = 0; j < n; ++j) fired_out[j0 + j] = fired[j];
                  });
      }
      std::int64_t nonzero = 0;
      for (std::size_t j = 0; j < fired_counts_.size(); ++j) {
        since(j) = fired_counts_[j] > 0 ? 0 : since(j) + 1;
        window(j) += fired_counts_[j];
        nonzero += fired_counts_[j];
      }
      window_samples_ += static_cast<std::uint64_t>(*rows);
      return double(nonzero) / double(*rows);
    }
    const auto z = sae_.last_activations();
    const int rows = static_cast<int>(z.extent(0));
    std::int64_t nonzero = 0;
    Kokkos::parallel_reduce(
        "synthsae::record_firing", Kokkos::RangePolicy<ExecSpace>(0, z.extent(1)),
        KOKKOS_LAMBDA(int j, std::int64_t& acc) {
          std::int64_t fired = 0;
          for (int i = 0; i < rows; ++i) fired += z(i, j) != T(0);
          since(j) = fired > 0 ? 0 : since(j) + 1;
          window(j) += fired;
          acc += fired;
        },
        nonzero);
    window_samples_ += static_cast<std::uint64_t>(rows);
    return double(nonzero) / double(rows);
  }

  /// scaling = sqrt(d_in) / mean |x| over norm_estimate_batches batches from a stream region
  /// training never reads.
  void estimate_scaling_factor() {
    SparseBatch<float> truth;
    Matrix<float> x("norm_estimate_x", cfg_.batch_size, world_.hidden_dim());
    double sum = 0;
    std::size_t rows = 0;
    for (std::size_t i = 0; i < cfg_.norm_estimate_batches; ++i) {
      world_.sample_features_at(truth, (std::uint64_t(1) << 61) + i * cfg_.batch_size, cfg_.batch_size);
      world_.hidden_at(truth, (std::uint64_t(1) << 61) + i * cfg_.batch_size, x);
      if (input_map_) input_map_(x);
      double part = 0;
      const int d = static_cast<int>(x.extent(1));
      Kokkos::parallel_reduce(
          "synthsae::norm_estimate", Kokkos::RangePolicy<ExecSpace>(0, x.extent(0)),
          KOKKOS_LAMBDA(int r, double& acc) {
            double s = 0;
            for (int k = 0; k < d; ++k) s += double(x(r, k)) * x(r, k);
            acc += kmath::sqrt(s);
          },
          part);
      sum += part;
      rows += x.extent(0);
    }
    scaling_factor_ = std::sqrt(double(world_.hidden_dim())) / (sum / double(rows));
  }

  /// Folds the whitening into the SAE (fold_input_whitening): it then takes raw input.
  void fold_whitening() {
    if (whitening_.empty()) return;
    if constexpr (requires(SaeT& s, const InputWhitening& w) { fold_input_whitening(s, w); })
      fold_input_whitening(sae_, whitening_);
    whitening_ = InputWhitening{};
    whitening_map_ = WhiteningMap();
  }

  /// Folds the scaling factor into the SAE (its fold_input_scale: W_enc s, W_dec / s, b_dec / s
  /// and what each architecture adds): the SAE then takes unscaled input.
  void fold_scaling_factor() {
    folded_ = true;
    if (scaling_factor_ == 1.0) return;
    sae_.fold_input_scale(scaling_factor_);
    scaling_factor_ = 1.0;
  }

 private:
  SaeT& sae_;
  SyntheticModel& world_;
  std::function<void(const Matrix<float>&)> input_map_;
  TrainerConfig cfg_;
  Adam<T> adam_;
  SaeParameters<T> grads_;
  SampleBatch batch_;
  Kokkos::View<std::int64_t*, MemSpace> since_fired_;
  Kokkos::View<std::int64_t*, MemSpace> window_fired_;  ///< firings per latent in this window
  std::uint64_t window_samples_ = 0;
  std::vector<std::int64_t> fired_counts_;  ///< record_firing's per-latent counts from a sparse step
  Kokkos::View<std::uint8_t*, MemSpace> dead_;
  L0Autotuner autotuner_;
  long step_ = 0;
  std::size_t samples_ = 0;
  std::uint64_t first_sample_ = 0;
  long consecutive_skipped_ = 0;  ///< non-finite steps in a row (not checkpointed: a resume starts afresh)
  double scaling_factor_ = 1.0;
  InputWhitening whitening_;
  WhiteningMap whitening_map_;
  inference::RuntimeNormalization row_norm_;  ///< constant_norm_rescale, layer_norm (else inactive)
  Matrix<T> normalized_;
  Matrix<T> whitened_;
  double elapsed_before_ = 0;
  PhaseSeconds phases_;
  bool folded_ = false;
};

}  // namespace synthsae
