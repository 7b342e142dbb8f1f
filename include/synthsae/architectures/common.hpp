#pragma once
// What every architecture header includes, and the one generic piece of their contract: the
// loading of a saved directory as the architecture's inference form.
#include <filesystem>
#include <string>
#include <string_view>

#include "synthsae/architectures/request.hpp"
#include "synthsae/io/json.hpp"
#include "synthsae/sae/inference/export.hpp"
#include "synthsae/saelens/sae_directory.hpp"
#include "synthsae/train/run_recipes.hpp"
#include "synthsae/train/trainer.hpp"

namespace synthsae::architectures {

/// Loads a SAELens directory that Arch saved (its inference form), or throws FormatError naming
/// both architectures.
template <class Arch>
InferenceSae load_as(const std::filesystem::path& dir) {
  InferenceSae sae = saelens::load_sae(dir);
  if (!sae.is<typename Arch::inference_form>()) {
    throw FormatError((dir / saelens::kSaeConfigFile).string(),
                      "architecture \"" + sae.architecture() + "\" is not what " + std::string(Arch::name) +
                          " saves (\"" + std::string(Arch::inference_form::saelens_name) + "\")");
  }
  return sae;
}

/// The recipe settings that SAELens's training configs name the same way, written next to an
/// architecture's own describe() so that runner_config.json records every one that SAELens would
/// otherwise fill with its own default (found by scripts/saelens_parity.sh: without them
/// SAELens's runner built from our file trained JumpReLU with decoder_init_norm 0.1, not 0.5).
template <class Recipe>
void describe_recipe_fields(io::Json& runner, const Recipe& rc) {
  if constexpr (requires { rc.decoder_init_norm; }) runner["decoder_init_norm"] = rc.decoder_init_norm;
  if constexpr (requires { rc.aux_loss_coefficient; }) runner["aux_loss_coefficient"] = rc.aux_loss_coefficient;
  if constexpr (requires { rc.topk_threshold_lr; }) runner["topk_threshold_lr"] = rc.topk_threshold_lr;
  if constexpr (requires { rc.rescale_acts_by_decoder_norm; })
    runner["rescale_acts_by_decoder_norm"] = rc.rescale_acts_by_decoder_norm;
  if constexpr (requires { rc.residual_threshold; }) runner["residual_threshold"] = rc.residual_threshold;
  if constexpr (requires { rc.stop_on_duplicate_support; })
    runner["stop_on_duplicate_support"] = rc.stop_on_duplicate_support;
}

}  // namespace synthsae::architectures
