#pragma once
// matching_pursuit: the tied Matching Pursuit SAE (reference §8.8) with the benchmark's settings.
// Saves as SAELens "matching_pursuit".
#include "synthsae/architectures/common.hpp"
#include "synthsae/sae/matching_pursuit_sae.hpp"

namespace synthsae::recipes {
/// Matching Pursuit as the benchmark runs it: k selections per sample, no residual threshold, no
/// stop on a repeated latent.
struct matching_pursuit {
  double residual_threshold = 0.0;
  bool stop_on_duplicate_support = false;
};
}  // namespace synthsae::recipes

namespace synthsae::architectures {

struct MatchingPursuit {
  static constexpr std::string_view name = "matching_pursuit";
  static constexpr std::string_view summary =
      "tied greedy pursuit over the decoder rows, k selections (Costa et al. 2025)";
  static constexpr Knobs knobs{.k = true, .l1 = false, .target_l0 = false};
  using recipe = recipes::matching_pursuit;
  using sae_type = MatchingPursuitSae<float>;
  using inference_form = inference::MatchingPursuitForm;

  static sae_type make(const Request& r, const recipe& rc = {}) {
    return sae_type(r.d_in, r.width,
                    synthsae::MatchingPursuit{r.k, rc.residual_threshold, rc.stop_on_duplicate_support}, r.seed);
  }
  static void configure(TrainerConfig&, const Request&, const recipe& = {}) {}
  static void describe(io::Json& runner, const Request& r, const recipe& = {}) {
    runner["k"] = r.k;
    runner["max_iterations"] = r.k;
    runner["decoder_init_norm"] = 1.0;  // unit rows; SAELens's Matching Pursuit forces 1.0 too
  }
};

}  // namespace synthsae::architectures
