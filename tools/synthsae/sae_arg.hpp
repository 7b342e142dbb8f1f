#pragma once
// --sae DIR: an SAE in SAELens's layout (cfg.json + sae_weights.safetensors) or as .npy files
// with SAELens's tensor names; and the short label (the directory's name) tables show.
#include <filesystem>
#include <string>

#include <synthsae/saelens/sae_directory.hpp>
#include <synthsae/saelens/sae_npy.hpp>

namespace synthsae::cli {

inline InferenceSae load_any_sae(const std::string& dir) {
  if (std::filesystem::exists(std::filesystem::path(dir) / "cfg.json")) return saelens::load_sae(dir);
  if (std::filesystem::exists(std::filesystem::path(dir) / "W_enc.npy")) return saelens::load_sae_npy(dir);
  throw IoError(dir, "holds neither cfg.json (SAELens's layout) nor W_enc.npy");
}

inline std::string short_label(const std::string& path) {
  auto p = std::filesystem::path(path);
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

}  // namespace synthsae::cli
