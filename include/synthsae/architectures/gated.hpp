#pragma once
// gated: the Gated SAE (reference §8.7) with the same L1 recipe as standard (warm-up over the
// first third, optional autotuning to a target L0). Saves as SAELens "gated".
#include "synthsae/architectures/common.hpp"
#include "synthsae/architectures/standard.hpp"
#include "synthsae/sae/gated_sae.hpp"

namespace synthsae::recipes {
/// Gated: the standard L1 recipe on the gate path.
using gated_l1 = standard_l1;
}  // namespace synthsae::recipes

namespace synthsae::architectures {

struct Gated {
  static constexpr std::string_view name = "gated";
  static constexpr std::string_view summary =
      "gate and magnitude paths, L1 on the gate, auxiliary reconstruction (Rajamanoharan et al. 2024)";
  static constexpr Knobs knobs{.k = false, .l1 = true, .target_l0 = true};
  using recipe = recipes::gated_l1;
  using sae_type = GatedSae<float>;
  using inference_form = inference::GatedForm;

  static sae_type make(const Request& r, const recipe& rc = {}) {
    return sae_type(r.d_in, r.width, L1Penalty{r.l1.value_or(rc.l1_coefficient)}, rc.decoder_init_norm, r.seed);
  }
  static void configure(TrainerConfig& cfg, const Request& r, const recipe& rc = {}) {
    Standard::configure(cfg, r, rc);
  }
  static void describe(io::Json& runner, const Request& r, const recipe& rc = {}) { Standard::describe(runner, r, rc); }
};

}  // namespace synthsae::architectures
