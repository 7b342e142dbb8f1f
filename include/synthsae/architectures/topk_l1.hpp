#pragma once
// topk_l1 (not published; an example of adding an architecture): per-sample TopK and AuxK plus a
// decoder-norm-weighted L1 term on the kept activations, which shrinks the kept values the way
// Standard's L1 does while TopK fixes L0. The L1 term makes the step dense. Saves as SAELens
// "topk" (the export follows the activation).
#include "synthsae/architectures/common.hpp"
#include "synthsae/architectures/topk.hpp"
#include "synthsae/sae/sae.hpp"

namespace synthsae::recipes {
/// TopK + L1: the TopK recipe and an L1 coefficient of 0.05 (no warm-up).
struct topk_l1 {
  topk base{};
  double l1_coefficient = 0.05;
};
}  // namespace synthsae::recipes

namespace synthsae::architectures {

struct TopKL1 {
  static constexpr std::string_view name = "topk_l1";
  static constexpr std::string_view summary =
      "TopK + AuxK with an L1 term on the kept activations (unpublished example)";
  static constexpr Knobs knobs{.k = true, .l1 = true, .target_l0 = false};
  using recipe = recipes::topk_l1;
  using sae_type = Sae<synthsae::TopK, L1Penalty, AuxK, NoNesting, float>;
  using inference_form = inference::TopKForm;

  static sae_type make(const Request& r, const recipe& rc = {}) {
    return sae_type(r.d_in, r.width, synthsae::TopK{r.k, rc.base.rescale_acts_by_decoder_norm},
                    L1Penalty{r.l1.value_or(rc.l1_coefficient)}, AuxK{rc.base.aux_loss_coefficient}, {},
                    rc.base.decoder_init_norm, r.seed);
  }
  static void configure(TrainerConfig&, const Request&, const recipe& = {}) {}
  static void describe(io::Json& runner, const Request& r, const recipe& rc = {}) {
    runner["k"] = r.k;
    runner["l1_coefficient"] = r.l1.value_or(rc.l1_coefficient);
  }
};

}  // namespace synthsae::architectures
