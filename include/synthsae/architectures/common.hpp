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

}  // namespace synthsae::architectures
