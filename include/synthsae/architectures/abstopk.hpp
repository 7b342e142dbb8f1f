#pragma once
// abstopk: per-sample top-k by magnitude with signs kept (SAELens 6.54 "abstopk", after "AbsTopK:
// Rethinking Sparse Autoencoders For Bidirectional Features", 2025), AuxK on dead latents ranked by
// magnitude. Saves as SAELens "abstopk" with its decoder norms folded.
#include "synthsae/architectures/common.hpp"
#include "synthsae/architectures/topk.hpp"
#include "synthsae/sae/sae.hpp"

namespace synthsae::architectures {

struct AbsTopK {
  static constexpr std::string_view name = "abstopk";
  static constexpr std::string_view summary =
      "k largest latents by magnitude per sample, signs kept (bidirectional), AuxK by magnitude (SAELens 6.54)";
  static constexpr Knobs knobs{.k = true, .l1 = false, .target_l0 = false};
  using recipe = recipes::topk;  ///< SAELens's AbsTopK training config is TopK's
  using sae_type = AbsTopKSae<float>;
  using inference_form = inference::AbsTopKForm;

  static sae_type make(const Request& r, const recipe& rc = {}) {
    return sae_type(r.d_in, r.width, synthsae::AbsTopK{r.k, rc.rescale_acts_by_decoder_norm}, {},
                    AuxK{rc.aux_loss_coefficient}, {}, rc.decoder_init_norm, r.seed);
  }
  static void configure(TrainerConfig&, const Request&, const recipe& = {}) {}
  static void describe(io::Json& runner, const Request& r, const recipe& = {}) { runner["k"] = r.k; }
};

}  // namespace synthsae::architectures
