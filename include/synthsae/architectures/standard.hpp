#pragma once
// standard: ReLU with the decoder-norm-weighted L1 penalty (reference §8.2), as the benchmark
// trains it: L1 coefficient warmed up over the first third of the run, optionally autotuned to a
// target L0 from the end of the warm-up. Saves as SAELens "standard".
#include "synthsae/architectures/common.hpp"
#include "synthsae/sae/sae.hpp"

namespace synthsae::recipes {
/// Standard L1: coefficient 2.0 (the CLI default), warm-up over total_steps / 3, decoder rows
/// initialised at norm 0.1.
struct standard_l1 {
  double l1_coefficient = 2.0;
  long warm_up_divisor = 3;
  double decoder_init_norm = 0.1;
  double lp_norm = 1.0;  ///< SAELens lp_norm (1: L1)
};
}  // namespace synthsae::recipes

namespace synthsae::architectures {

struct Standard {
  static constexpr std::string_view name = "standard";
  static constexpr std::string_view summary = "ReLU + decoder-norm-weighted L1, warmed up (Bricken et al. 2023)";
  static constexpr Knobs knobs{.k = false, .l1 = true, .target_l0 = true};
  using recipe = recipes::standard_l1;
  using sae_type = StandardSae<float>;
  using inference_form = inference::ReluForm;

  static sae_type make(const Request& r, const recipe& rc = {}) {
    return sae_type(r.d_in, r.width, Relu{}, L1Penalty{r.l1.value_or(rc.l1_coefficient), rc.lp_norm}, {}, {},
                    rc.decoder_init_norm, r.seed);
  }
  static void configure(TrainerConfig& cfg, const Request& r, const recipe& rc = {}) {
    const long warm = r.total_steps / rc.warm_up_divisor;
    cfg.coefficient_warm_up_steps = warm;
    if (r.target_l0) cfg.autotune = recipes::autotune(*r.target_l0, warm, r.total_steps);
  }
  static void describe(io::Json& runner, const Request& r, const recipe& rc = {}) {
    runner["l1_coefficient"] = r.l1.value_or(rc.l1_coefficient);
    runner["l1_warm_up_steps"] = r.total_steps / rc.warm_up_divisor;
    runner["lp_norm"] = rc.lp_norm;
  }
};

}  // namespace synthsae::architectures
