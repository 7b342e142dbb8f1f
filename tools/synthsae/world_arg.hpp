#pragma once
// --model PRESET | DIR: a preset name, or a directory in SAELens's synthetic-model layout.
#include <filesystem>
#include <string>

#include <synthsae/saelens/model_directory.hpp>
#include <synthsae/world/presets.hpp>

#include "cli_args.hpp"

namespace synthsae::cli {

inline SyntheticModel world_from_argument(const std::string& value) {
  for (const auto& p : preset_list()) {
    if (p.name == value) return SyntheticModel(preset(value));
  }
  if (std::filesystem::is_directory(value)) return saelens::load_synthetic_model(value);
  std::string names;
  for (const auto& p : preset_list()) names += (names.empty() ? "" : ", ") + std::string(p.name);
  throw UsageError("--model = " + value + ": neither a preset (" + names + ") nor a directory");
}

}  // namespace synthsae::cli
