#pragma once
// SAEs trained on the two parts of a base SAE's error (reference dark-matter.md §2.8; the paper's
// §5.2, Fig. 7). B* is the least-squares map from x to SaeError(x) = x - Sae(x), fitted once;
// then LinearError(x) = B*ᵀx̃ and NonlinearError(x) = SaeError(x) - LinearError(x) are functions
// of the row alone, so an SAE of any architecture trains on either streamed from fresh samples
// of the world (Trainer::set_input_map), never from a stored dataset. Ground truth replaces the
// paper's autointerp: how many of the true features the base SAE left Absent (not captured at
// |cos| ≥ the match threshold) the error-SAE's decoder finds (max |cos| per absent feature, and
// the share above the threshold), next to its FVU on the component, L0 and dead latents.
//
// Sample regions (the world's stream, by position): the error-SAE trains from 2^59, B* is fitted
// on rows from 2^60, the scores use rows from 2^62 + 2^61 + 2^60 — none of them the base SAE's
// training samples (from 0), evaluate()'s (from 2^62) or analyse_dark_matter's (from 2^62 + 2^61).
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "synthsae/analysis/activation_source.hpp"
#include "synthsae/analysis/error_regression.hpp"
#include "synthsae/analysis/linear_probe.hpp"
#include "synthsae/metrics/decoder_similarity.hpp"
#include "synthsae/sae/inference/export.hpp"
#include "synthsae/sae/inference_sae.hpp"
#include "synthsae/train/trainer.hpp"

namespace synthsae::analysis {

enum class ErrorComponent { linear, nonlinear };
inline const char* component_name(ErrorComponent c) { return c == ErrorComponent::linear ? "linear" : "nonlinear"; }

inline constexpr std::uint64_t kErrorSaeTrainingSample = std::uint64_t(1) << 59;
inline constexpr std::uint64_t kErrorFitSample = std::uint64_t(1) << 60;
inline constexpr std::uint64_t kErrorScoreSample = (std::uint64_t(1) << 62) + (std::uint64_t(1) << 61) + (std::uint64_t(1) << 60);

/// x -> LinearError(x) or NonlinearError(x) of a base SAE, in place (Trainer::set_input_map).
class ErrorComponentMap {
 public:
  ErrorComponentMap(InferenceSae base, ProbeFit fit, ErrorComponent which)
      : base_(std::move(base)), fit_(std::move(fit)), which_(which) {
    if (fit_.inputs() != base_.input_dim() || fit_.outputs() != base_.input_dim())
      throw ShapeError("the error regression maps " + show(fit_.inputs()) + " to " + show(fit_.outputs()) +
                       " dimensions; the base SAE has " + show(base_.input_dim()));
  }
  ErrorComponent component() const { return which_; }

  void operator()(const Matrix<float>& x) {
    const std::size_t rows = x.extent(0), d = x.extent(1);
    if (z_.extent(0) != rows) {
      z_ = Matrix<float>("error_map_z", rows, base_.num_latents());
      xhat_ = Matrix<float>("error_map_xhat", rows, d);
      pred_ = Matrix<double>("error_map_pred", rows, d);
    }
    base_.encode(x, z_);
    base_.decode(z_, xhat_);
    fit_.predict(x, RowIndex(), pred_);
    const auto xx = x, xh = xhat_;
    const auto p = pred_;
    const bool linear = which_ == ErrorComponent::linear;
    for_each_entry(
        "synthsae::error_component", rows, d, KOKKOS_LAMBDA(int i, int k) {
          const double lin = p(i, k);
          xx(i, k) = static_cast<float>(linear ? lin : double(xx(i, k)) - double(xh(i, k)) - lin);
        });
  }

 private:
  InferenceSae base_;
  ProbeFit fit_;
  ErrorComponent which_;
  Matrix<float> z_, xhat_;
  Matrix<double> pred_;
};

struct ErrorSaeOptions {
  std::uint64_t score_rows = 50'000;
  std::size_t chunk_rows = 4096;
  double match_threshold = 0.9;
  /// The base SAE's captured features ([N], 1 = captured); the others are the Absent ones.
  std::vector<std::uint8_t> base_captured;
};

struct ErrorSaeReport {
  std::string base, component, architecture;
  std::size_t width = 0;
  double fvu = NAN, l0 = NAN, dead_fraction = NAN;
  double mean_sq_component = NAN;  ///< E‖component‖² on the scored rows
  std::size_t absent_features = 0;
  double mean_max_cos_absent = NAN;  ///< mean over absent features of the max |cos| to a decoder row
  double recovered_absent = NAN;     ///< share of absent features with max |cos| ≥ the match threshold
  double train_seconds = 0;
};

inline nlohmann::json to_json(const ErrorSaeReport& r) {
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
  return {{"base", r.base},
          {"component", r.component},
          {"architecture", r.architecture},
          {"width", r.width},
          {"fvu", num(r.fvu)},
          {"l0", num(r.l0)},
          {"dead_fraction", num(r.dead_fraction)},
          {"mean_sq_component", num(r.mean_sq_component)},
          {"absent_features", r.absent_features},
          {"mean_max_cos_absent", num(r.mean_max_cos_absent)},
          {"recovered_absent", num(r.recovered_absent)},
          {"train_seconds", r.train_seconds}};
}

/// Scores an SAE (as saved) on the component: FVU, L0 and never-firing latents on fresh rows,
/// and its decoder against the base SAE's absent true features.
inline ErrorSaeReport score_error_sae(InferenceSae& sae, SyntheticModel& world, ErrorComponentMap& map,
                                      const ErrorSaeOptions& opt) {
  const std::size_t d = world.hidden_dim(), s = sae.num_latents(), n = world.num_features();
  SyntheticSource rows(world, opt.score_rows, kErrorScoreSample, 0);
  ActivationChunk c;
  Matrix<float> z, rec;
  double sse = 0, l0 = 0;
  std::vector<double> sum(d, 0), sum_sq(d, 0);
  std::vector<std::uint8_t> fired(s, 0);
  for (std::uint64_t first = 0; first < rows.rows(); first += opt.chunk_rows) {
    const std::size_t count = static_cast<std::size_t>(std::min<std::uint64_t>(opt.chunk_rows, rows.rows() - first));
    rows.read(first, count, c);
    map(c.x);
    if (z.extent(0) != count) z = Matrix<float>("error_score_z", count, s), rec = Matrix<float>("error_score_rec", count, d);
    sae.encode(c.x, z);
    sae.decode(z, rec);
    const auto hx = Kokkos::create_mirror_view_and_copy(HostSpace(), c.x);
    const auto hr = Kokkos::create_mirror_view_and_copy(HostSpace(), rec);
    const auto hz = Kokkos::create_mirror_view_and_copy(HostSpace(), z);
    for (std::size_t i = 0; i < count; ++i) {
      for (std::size_t k = 0; k < d; ++k) {
        const double v = hx(i, k), e = v - hr(i, k);
        sse += e * e, sum[k] += v, sum_sq[k] += v * v;
      }
      for (std::size_t j = 0; j < s; ++j)
        if (hz(i, j) != 0.0f) ++l0, fired[j] = 1;
    }
  }
  ErrorSaeReport r;
  r.component = component_name(map.component());
  r.architecture = sae.architecture();
  r.width = s;
  const double m = double(rows.rows());
  double sst = 0, energy = 0;
  for (std::size_t k = 0; k < d; ++k) sst += sum_sq[k] - sum[k] * sum[k] / m, energy += sum_sq[k];
  r.fvu = sst > 0 ? sse / sst : NAN;
  r.l0 = l0 / m;
  r.mean_sq_component = energy / m;
  std::size_t dead = 0;
  for (auto f : fired) dead += f == 0;
  r.dead_fraction = double(dead) / double(s);
  if (opt.base_captured.size() == n) {
    const auto sim = decoder_similarity(sae.params.w_dec, world.feature_vectors());
    double cos_sum = 0;
    std::size_t recovered = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (opt.base_captured[i]) continue;
      double best = 0;
      for (std::size_t j = 0; j < s; ++j) best = std::max(best, sim.abs_cos[j * n + i]);
      ++r.absent_features, cos_sum += best, recovered += best >= opt.match_threshold;
    }
    if (r.absent_features)
      r.mean_max_cos_absent = cos_sum / double(r.absent_features),
      r.recovered_absent = double(recovered) / double(r.absent_features);
  }
  return r;
}

/// Trains `sae` on the component streamed from the world (from kErrorSaeTrainingSample), then
/// scores the saved form (returned through `saved` when given). The world's position is
/// restored afterwards.
template <TrainableSae SaeT>
ErrorSaeReport train_on_error_component(SaeT& sae, SyntheticModel& world, const ErrorComponentMap& map,
                                        const TrainerConfig& cfg, const ErrorSaeOptions& opt,
                                        InferenceSae* saved_out = nullptr) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint64_t position = world.position();
  world.set_position(kErrorSaeTrainingSample);
  ErrorComponentMap train_map = map;
  Trainer<SaeT> trainer(sae, world, cfg);
  trainer.set_input_map([&](const Matrix<float>& x) { train_map(x); });
  trainer.fit();
  world.set_position(position);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto saved = export_inference(sae);
  ErrorComponentMap score_map = map;
  auto r = score_error_sae(saved, world, score_map, opt);
  r.train_seconds = seconds;
  if (saved_out) *saved_out = saved;
  return r;
}

}  // namespace synthsae::analysis
