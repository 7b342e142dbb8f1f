#pragma once
// matryoshka_batchtopk: BatchTopK with Matryoshka nesting and the per-level auxiliary loss
// (reference §8.5), as the paper's sweeps train it. Saves as SAELens "jumprelu".
#include <vector>

#include "synthsae/architectures/common.hpp"
#include "synthsae/sae/sae.hpp"

namespace synthsae::recipes {
/// Matryoshka BatchTopK as in the paper's sweeps: levels at width/32, width/8, width/2 (128, 512,
/// 2,048 for a width of 4,096), use_matryoshka_aux_loss = true (SAELens's default is false), the
/// BatchTopK recipe otherwise.
struct matryoshka_batchtopk {
  std::vector<std::size_t> level_divisors = {32, 8, 2};
  double aux_loss_coefficient = 1.0;
  double topk_threshold_lr = 0.01;
  double decoder_init_norm = 0.1;

  /// Strictly increasing level widths below `width` (levels that would repeat are dropped).
  std::vector<int> widths(std::size_t width) const {
    std::vector<int> w;
    for (std::size_t div : level_divisors)
      if (width / div >= 1 && (w.empty() || int(width / div) > w.back())) w.push_back(int(width / div));
    return w;
  }
};
}  // namespace synthsae::recipes

namespace synthsae::architectures {

struct MatryoshkaBatchTopK {
  static constexpr std::string_view name = "matryoshka_batchtopk";
  static constexpr std::string_view summary =
      "BatchTopK with nested prefix reconstructions and per-level AuxK (Bussmann et al. 2025)";
  static constexpr Knobs knobs{.k = true, .l1 = false, .target_l0 = false};
  using recipe = recipes::matryoshka_batchtopk;
  using sae_type = Sae<synthsae::BatchTopK, NoPenalty, MatryoshkaAuxK, Matryoshka, float>;
  using inference_form = inference::JumpReluForm;

  static sae_type make(const Request& r, const recipe& rc = {}) {
    return sae_type(r.d_in, r.width, synthsae::BatchTopK{double(r.k), true, rc.topk_threshold_lr}, {},
                    MatryoshkaAuxK{rc.aux_loss_coefficient}, Matryoshka{rc.widths(r.width)}, rc.decoder_init_norm,
                    r.seed);
  }
  static void configure(TrainerConfig&, const Request&, const recipe& = {}) {}
  static void describe(io::Json& runner, const Request& r, const recipe& rc = {}) {
    runner["k"] = r.k;
    runner["matryoshka_widths"] = rc.widths(r.width);
    runner["use_matryoshka_aux_loss"] = true;
    runner["rescale_acts_by_decoder_norm"] = true;
  }
};

}  // namespace synthsae::architectures
