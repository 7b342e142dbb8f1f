#pragma once
// jumprelu: JumpReLU with the L0 step penalty (reference §8.6) in its "v2" recipe, as the paper's
// sweeps train it, with the threshold trained directly as SAELens >= 6.48 does. Saves as SAELens
// "jumprelu".
#include "synthsae/architectures/common.hpp"
#include "synthsae/sae/sae.hpp"

namespace synthsae::recipes {
/// JumpReLU v2: L0 coefficient 1, bandwidth 1, initial threshold 1, decoder rows at norm 0.5,
/// inputs scaled to mean norm sqrt(d_in) (estimated over 1,000 batches, as SAELens); autotuned from step 0 when a
/// target L0 is given.
struct jumprelu_v2 {
  double l0_coefficient = 1.0;
  double bandwidth = 1.0;
  double init_threshold = 1.0;
  double decoder_init_norm = 0.5;
  InputNormalization normalization = InputNormalization::expected_average_only_in;
  std::size_t norm_estimate_batches = 1000;  ///< SAELens n_batches_for_norm_estimate
  /// SAELens >= 6.48 trains theta itself; `log` is the paper's (and SAELens < 6.48's) log theta.
  ThresholdParameterisation threshold = ThresholdParameterisation::direct;
  L0LossMode sparsity_loss_mode = L0LossMode::step;  ///< quadratic needs the request's target L0
  bool ste_to_input = false;
};
}  // namespace synthsae::recipes

namespace synthsae::architectures {

struct JumpRelu {
  static constexpr std::string_view name = "jumprelu";
  static constexpr std::string_view summary = "JumpReLU + L0 step penalty, the v2 recipe (Rajamanoharan et al. 2024)";
  static constexpr Knobs knobs{.k = false, .l1 = false, .target_l0 = true};
  using recipe = recipes::jumprelu_v2;
  using sae_type = JumpReluSae<float>;
  using inference_form = inference::JumpReluForm;

  static sae_type make(const Request& r, const recipe& rc = {}) {
    L0StepPenalty penalty{.coefficient = rc.l0_coefficient, .mode = rc.sparsity_loss_mode};
    if (rc.sparsity_loss_mode == L0LossMode::quadratic) penalty.target_l0 = r.target_l0;
    return sae_type(r.d_in, r.width,
                    synthsae::JumpRelu{.init_threshold = rc.init_threshold,
                                       .bandwidth = rc.bandwidth,
                                       .parameterisation = rc.threshold,
                                       .ste_to_input = rc.ste_to_input},
                    penalty, {}, {}, rc.decoder_init_norm, r.seed);
  }
  static void configure(TrainerConfig& cfg, const Request& r, const recipe& rc = {}) {
    cfg.normalization = rc.normalization;
    cfg.norm_estimate_batches = rc.norm_estimate_batches;
    // The quadratic loss has the target in it; the step loss reaches it through the autotuner.
    if (r.target_l0 && rc.sparsity_loss_mode == L0LossMode::step)
      cfg.autotune = recipes::autotune(*r.target_l0, 0, r.total_steps);
  }
  static void describe(io::Json& runner, const Request& r, const recipe& rc = {}) {
    runner["l0_coefficient"] = rc.l0_coefficient;
    runner["l0_warm_up_steps"] = 0;
    runner["pre_act_loss_coefficient"] = nullptr;
    // SAELens's target_l0 is the quadratic loss's; the step loss's target is the autotuner's (ours).
    runner["target_l0"] = rc.sparsity_loss_mode == L0LossMode::quadratic && r.target_l0 ? io::Json(*r.target_l0)
                                                                                       : io::Json(nullptr);
    runner["jumprelu_bandwidth"] = rc.bandwidth;
    runner["jumprelu_init_threshold"] = rc.init_threshold;
    runner["jumprelu_sparsity_loss_mode"] = rc.sparsity_loss_mode == L0LossMode::quadratic ? "quadratic" : "step";
    runner["jumprelu_ste_to_input"] = rc.ste_to_input;
    runner["jumprelu_threshold_parameterisation"] = threshold_parameter_name(rc.threshold);
  }
};

}  // namespace synthsae::architectures
