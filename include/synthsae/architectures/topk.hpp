#pragma once
// topk: per-sample TopK with AuxK on dead latents (reference §8.3). Saves as SAELens "topk" with
// its decoder norms folded.
#include "synthsae/architectures/common.hpp"
#include "synthsae/sae/sae.hpp"

namespace synthsae::recipes {
/// TopK: keys rescaled by decoder norms, AuxK coefficient 1, decoder rows at norm 0.1.
struct topk {
  bool rescale_acts_by_decoder_norm = true;
  double aux_loss_coefficient = 1.0;
  double decoder_init_norm = 0.1;
};
}  // namespace synthsae::recipes

namespace synthsae::architectures {

struct TopK {
  static constexpr std::string_view name = "topk";
  static constexpr std::string_view summary = "k largest latents per sample, AuxK on dead latents (Gao et al. 2024)";
  static constexpr Knobs knobs{.k = true, .l1 = false, .target_l0 = false};
  using recipe = recipes::topk;
  using sae_type = TopKSae<float>;
  using inference_form = inference::TopKForm;

  static sae_type make(const Request& r, const recipe& rc = {}) {
    return sae_type(r.d_in, r.width, synthsae::TopK{r.k, rc.rescale_acts_by_decoder_norm}, {},
                    AuxK{rc.aux_loss_coefficient}, {}, rc.decoder_init_norm, r.seed);
  }
  static void configure(TrainerConfig&, const Request&, const recipe& = {}) {}
  static void describe(io::Json& runner, const Request& r, const recipe& = {}) { runner["k"] = r.k; }
};

}  // namespace synthsae::architectures
