#pragma once
// batchtopk: BatchTopK (reference §8.4) with AuxK. Saves as SAELens "jumprelu": folded decoder
// norms, threshold = the running theta.
#include "synthsae/architectures/common.hpp"
#include "synthsae/sae/sae.hpp"

namespace synthsae::recipes {
/// BatchTopK: keys rescaled by decoder norms, threshold EMA rate 0.01, AuxK coefficient 1,
/// decoder rows at norm 0.1.
struct batchtopk {
  bool rescale_acts_by_decoder_norm = true;
  double topk_threshold_lr = 0.01;
  double aux_loss_coefficient = 1.0;
  double decoder_init_norm = 0.1;
};
}  // namespace synthsae::recipes

namespace synthsae::architectures {

struct BatchTopK {
  static constexpr std::string_view name = "batchtopk";
  static constexpr std::string_view summary =
      "k B largest latents over the batch, AuxK; saved as JumpReLU (Bussmann et al. 2024)";
  static constexpr Knobs knobs{.k = true, .l1 = false, .target_l0 = false};
  using recipe = recipes::batchtopk;
  using sae_type = BatchTopKSae<float>;
  using inference_form = inference::JumpReluForm;

  static sae_type make(const Request& r, const recipe& rc = {}) {
    return sae_type(r.d_in, r.width,
                    synthsae::BatchTopK{double(r.k), rc.rescale_acts_by_decoder_norm, rc.topk_threshold_lr}, {},
                    AuxK{rc.aux_loss_coefficient}, {}, rc.decoder_init_norm, r.seed);
  }
  static void configure(TrainerConfig&, const Request&, const recipe& = {}) {}
  static void describe(io::Json& runner, const Request& r, const recipe& = {}) { runner["k"] = r.k; }
};

}  // namespace synthsae::architectures
