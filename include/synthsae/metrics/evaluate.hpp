#pragma once
// One pass of fresh samples through an SAE, folding a compile-time list of metric
// accumulators (reference §6, `eval_sae_on_synthetic_data`):
//   F = sample(b); x = W_feat-mixture of F + bias; z = encode(x); x_hat = decode(z)
// The default list gives SAELens's result keys: true_l0, sae_l0, dead_latents, shrinkage,
// explained_variance, mcc, uniqueness, classification {precision, recall, f1_score, accuracy}.
#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>

#include <boost/hana/for_each.hpp>
#include <boost/hana/tuple.hpp>
#include <nlohmann/json.hpp>

#include "synthsae/metrics/accumulators.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/metrics/concepts.hpp"
#include "synthsae/sae/inference/activation_normalization.hpp"
#include "synthsae/sae/input_whitening.hpp"
#include "synthsae/world/synthetic_model.hpp"

namespace synthsae {

/// Seconds spent per phase of an evaluation (filled when EvalOptions::timings is set).
struct EvalTimings {
  double similarity = 0;  ///< decoder |cos| against the true features
  double begin = 0;       ///< accumulators' set-up (MCC's assignment runs here)
  double sampling = 0, encode = 0, decode = 0, update = 0;
};

struct EvalOptions {
  std::size_t samples = 500'000;  ///< the runner's default eval_samples
  std::size_t batch = 1024;       ///< the training batch size, as the runner evaluates
  /// First global sample index: evaluation draws from a region of the sample stream that
  /// training (which starts at 0) does not reach, so the samples are fresh.
  std::uint64_t first_sample = std::uint64_t(1) << 62;
  EvalTimings* timings = nullptr;
  /// The activation-norm scaling factor of an SAE still in training (the trainer's, not yet
  /// folded into the weights): inputs are encoded as x s and reconstructions divided by s, as
  /// SAELens's periodic evaluations do, so that they agree with the final one after the fold.
  double input_scale = 1.0;
  /// Likewise a covariance whitening not yet folded (the trainer's): inputs are whitened after
  /// the scale, reconstructions unwhitened before it is undone, as SAELens's ActivationScaler,
  /// and the decoder metrics read W_dec M^-1, the directions the fold will give. (SAELens's own
  /// periodic evaluation compares the whitened-space decoder with the true features, so its
  /// periodic MCC differs from its final one; ours agree.)
  const InputWhitening* whitening = nullptr;
  /// A per-row normalisation an SAE trained behind (constant_norm_rescale, layer_norm) and does
  /// not apply itself (a training SAE; a loaded one applies its cfg.json's mode): rows are
  /// normalised before the encoder and reconstructions mapped back, as the saved SAE will do.
  inference::ActivationNormalization row_normalization = inference::ActivationNormalization::none;
};

template <MetricAccumulator... Metrics, EvaluableSae Sae>
nlohmann::json evaluate(Sae& sae, SyntheticModel& model, const EvalOptions& opts = {}) {
  if (sae.input_dim() != model.hidden_dim()) {
    throw ShapeError("SAE input dimension " + show(sae.input_dim()) + " does not match the world's hidden_dim " +
                     show(model.hidden_dim()));
  }
  if (opts.batch == 0) throw ConfigError("eval batch", "0", "must be >= 1");
  using clock = std::chrono::steady_clock;
  EvalTimings local;
  EvalTimings& tm = opts.timings ? *opts.timings : local;
  auto since = [](clock::time_point t0) {
    Kokkos::fence();
    return std::chrono::duration<double>(clock::now() - t0).count();
  };
  const bool whiten = opts.whitening && !opts.whitening->empty();
  WhiteningMap whitening = whiten ? WhiteningMap(*opts.whitening) : WhiteningMap();
  auto t0 = clock::now();
  const DecoderSimilarity similarity = decoder_similarity(
      whiten ? whitening.raw_directions(sae.decoder_weights()) : sae.decoder_weights(), model.feature_vectors());
  tm.similarity += since(t0);
  EvalContext ctx;
  ctx.similarity = &similarity;
  ctx.num_latents = similarity.num_latents;
  ctx.num_features = similarity.num_features;
  ctx.best_feature = Vector<std::int32_t>("best_feature", similarity.num_latents);
  {
    auto h = Kokkos::create_mirror_view(ctx.best_feature);
    for (std::size_t j = 0; j < similarity.num_latents; ++j) h(j) = similarity.best_feature[j];
    Kokkos::deep_copy(ctx.best_feature, h);
  }
  boost::hana::tuple<Metrics...> metrics;
  t0 = clock::now();
  boost::hana::for_each(metrics, [&](auto& m) { m.begin(ctx); });
  tm.begin += since(t0);

  inference::RuntimeNormalization row_norm{opts.row_normalization};
  if (row_norm.acts() && (whiten || opts.input_scale != 1.0))
    throw ConfigError("row_normalization", inference::normalization_name(opts.row_normalization),
                      "is one normalize_activations mode; an input scale or whitening is another");
  SparseBatch<float> truth;
  Matrix<float> x, z, x_hat, x_scaled, x_whitened;
  for (std::size_t done = 0; done < opts.samples; done += opts.batch) {
    const std::size_t b = std::min(opts.batch, opts.samples - done);
    if (x.extent(0) != b) {
      x = Matrix<float>("eval_x", b, model.hidden_dim());
      z = Matrix<float>("eval_z", b, sae.num_latents());
      x_hat = Matrix<float>("eval_x_hat", b, model.hidden_dim());
    }
    t0 = clock::now();
    model.sample_features_at(truth, opts.first_sample + done, b);
    model.hidden_at(truth, opts.first_sample + done, x);
    tm.sampling += since(t0);
    t0 = clock::now();
    if (row_norm.acts()) {
      if (x_scaled.extent(0) != b) x_scaled = Matrix<float>("eval_x_normalized", b, model.hidden_dim());
      row_norm.normalize(x, x_scaled);
      sae.encode(x_scaled, z);
    } else if (opts.input_scale != 1.0 || whiten) {
      if (x_scaled.extent(0) != b) x_scaled = Matrix<float>("eval_x_scaled", b, model.hidden_dim());
      Kokkos::deep_copy(x_scaled, x);
      if (opts.input_scale != 1.0) scale_entries(x_scaled, static_cast<float>(opts.input_scale));
      if (whiten) {
        if (x_whitened.extent(0) != b) x_whitened = Matrix<float>("eval_x_whitened", b, model.hidden_dim());
        whitening.whiten(x_scaled, x_whitened);
        sae.encode(x_whitened, z);
      } else {
        sae.encode(x_scaled, z);
      }
    } else {
      sae.encode(x, z);
    }
    tm.encode += since(t0);
    t0 = clock::now();
    sae.decode(z, x_hat);
    if (row_norm.acts()) row_norm.denormalize(x_hat);
    if (whiten) whitening.unwhiten(x_hat);
    if (opts.input_scale != 1.0) scale_entries(x_hat, static_cast<float>(1.0 / opts.input_scale));
    tm.decode += since(t0);
    t0 = clock::now();
    const EvalBatch batch{truth, x, z, x_hat};
    boost::hana::for_each(metrics, [&](auto& m) { m.update(batch); });
    tm.update += since(t0);
  }
  nlohmann::json out = nlohmann::json::object();
  boost::hana::for_each(metrics, [&](auto& m) { m.write(out); });
  return out;
}

/// Every SynthSAEBench metric, with SAELens's keys.
template <EvaluableSae Sae>
nlohmann::json evaluate_all(Sae& sae, SyntheticModel& model, const EvalOptions& opts = {}) {
  return evaluate<TrueL0, LatentClassification, Reconstruction, DecoderMetrics>(sae, model, opts);
}

}  // namespace synthsae
