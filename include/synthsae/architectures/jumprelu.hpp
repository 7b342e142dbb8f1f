#pragma once
// jumprelu: JumpReLU with the L0 step penalty (reference §8.6) in its "v2" recipe, as the paper's
// sweeps train it. Saves as SAELens "jumprelu" (threshold = exp(log_threshold)).
#include "synthsae/architectures/common.hpp"
#include "synthsae/sae/sae.hpp"

namespace synthsae::recipes {
/// JumpReLU v2: L0 coefficient 1, bandwidth 1, initial threshold 1, decoder rows at norm 0.5,
/// inputs scaled to norm sqrt(d_in) (estimated over 20 batches); autotuned from step 0 when a
/// target L0 is given.
struct jumprelu_v2 {
  double l0_coefficient = 1.0;
  double bandwidth = 1.0;
  double init_threshold = 1.0;
  double decoder_init_norm = 0.5;
  bool normalize_activations = true;
  std::size_t norm_estimate_batches = 20;
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
    return sae_type(r.d_in, r.width, synthsae::JumpRelu{rc.init_threshold, rc.bandwidth},
                    L0StepPenalty{rc.l0_coefficient}, {}, {}, rc.decoder_init_norm, r.seed);
  }
  static void configure(TrainerConfig& cfg, const Request& r, const recipe& rc = {}) {
    cfg.normalize_activations = rc.normalize_activations;
    cfg.norm_estimate_batches = rc.norm_estimate_batches;
    if (r.target_l0) cfg.autotune = recipes::autotune(*r.target_l0, 0, r.total_steps);
  }
  static void describe(io::Json& runner, const Request&, const recipe& rc = {}) {
    runner["l0_coefficient"] = rc.l0_coefficient;
    runner["jumprelu_bandwidth"] = rc.bandwidth;
    runner["jumprelu_init_threshold"] = rc.init_threshold;
  }
};

}  // namespace synthsae::architectures
