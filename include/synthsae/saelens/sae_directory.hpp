#pragma once
// SAELens's SAE directory: cfg.json (SAEConfig.to_dict: d_in, d_sae, dtype, device,
// apply_b_dec_to_input, normalize_activations, reshape_activations, metadata, architecture, and the
// form's own fields, e.g. k for topk) and sae_weights.safetensors (W_enc [d_in, d_sae],
// W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in], and the form's own tensors). Which fields and
// tensors each architecture has is the form's business (sae/inference/*_form.hpp); this file
// only dispatches on the architecture name over the list InferenceForm.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>
#include <variant>

#include "synthsae/core/error.hpp"
#include "synthsae/io/json.hpp"
#include "synthsae/io/safetensors.hpp"
#include "synthsae/sae/inference/export.hpp"
#include "synthsae/sae/inference_sae.hpp"

namespace synthsae::saelens {

inline constexpr const char* kSaeConfigFile = "cfg.json";
inline constexpr const char* kSparsityFile = "sparsity.safetensors";
inline constexpr const char* kSaeWeightsFile = "sae_weights.safetensors";

/// "standard, topk, ...": the SAELens architectures the loader reads, in list order.
inline std::string supported_inference_architectures() {
  std::string list;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((list += (list.empty() ? "" : ", ") + std::string(std::variant_alternative_t<I, InferenceForm>::saelens_name)),
     ...);
  }
  (std::make_index_sequence<std::variant_size_v<InferenceForm>>());
  return list;
}

/// The form whose SAELens name is `name`, read from cfg.json; ConfigError listing the supported
/// names otherwise.
inline InferenceForm read_form(const std::string& name, const io::Json& cfg, std::size_t d_in) {
  std::optional<InferenceForm> form;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((!form && name == std::variant_alternative_t<I, InferenceForm>::saelens_name
          ? void(form.emplace(std::in_place_index<I>,
                              std::variant_alternative_t<I, InferenceForm>::read_config(cfg, d_in)))
          : void()),
     ...);
  }
  (std::make_index_sequence<std::variant_size_v<InferenceForm>>());
  if (!form) throw ConfigError("architecture", "\"" + name + "\"", "supported: " + supported_inference_architectures());
  return std::move(*form);
}

/// normalize_activations as SAELens reads it: a mode name; pre-6.0 files have a bool (true =
/// expected_average_only_in) or null (none).
inline inference::ActivationNormalization read_normalization(const io::Json& cfg) {
  const auto it = cfg.find("normalize_activations");
  if (it == cfg.end() || it->is_null()) return inference::ActivationNormalization::none;
  if (it->is_boolean())
    return it->get<bool>() ? inference::ActivationNormalization::expected_average_only_in
                           : inference::ActivationNormalization::none;
  return inference::parse_normalization(io::json_field<std::string>(cfg, "normalize_activations", ""));
}

inline io::Json sae_config_json(const InferenceSae& sae, const io::Json& meta = io::Json::object()) {
  io::Json cfg = {{"architecture", sae.architecture()},
                  {"d_in", sae.input_dim()},
                  {"d_sae", sae.num_latents()},
                  {"dtype", "float32"},
                  {"device", "cpu"},
                  {"apply_b_dec_to_input", sae.apply_b_dec_to_input},
                  {"normalize_activations", inference::normalization_name(sae.normalization.mode)},
                  {"reshape_activations", "none"},
                  {"metadata", meta}};
  std::visit([&](const auto& f) { f.write_config(cfg); }, sae.form);
  return cfg;
}

/// Writes cfg.json and sae_weights.safetensors into `dir` (created if needed), each atomically.
inline void save_sae(const InferenceSae& sae, const std::filesystem::path& dir,
                     const io::Json& meta = io::Json::object()) {
  sae.validate();
  std::filesystem::create_directories(dir);
  io::SafetensorsFile w;
  std::visit([&](const auto& f) { f.save_tensors(sae.params, w); }, sae.form);
  io::write_safetensors(dir / kSaeWeightsFile, w);
  io::write_json_file(dir / kSaeConfigFile, sae_config_json(sae, meta));
}

/// Writes sparsity.safetensors as SAELens's runner does: "sparsity" F32 [d_sae], log10 of each
/// latent's firing frequency over the last feature_sampling_window (Trainer::log_feature_sparsity).
inline void save_sparsity(const std::vector<float>& log_sparsity, const std::filesystem::path& dir) {
  io::SafetensorsFile f;
  f.tensors["sparsity"] = io::make_tensor<float>(io::Dtype::F32, {static_cast<std::int64_t>(log_sparsity.size())},
                                                 log_sparsity);
  io::write_safetensors(dir / kSparsityFile, f);
}

/// Loads a SAELens SAE directory (ours or SAELens's), with any normalize_activations mode as
/// SAELens applies it at inference. Unsupported architectures and hook_z reshaping are clear errors.
inline InferenceSae load_sae(const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir)) throw IoError(dir.string(), "is not a directory");
  const auto cfg_path = dir / kSaeConfigFile;
  const io::Json cfg = io::read_json_file(cfg_path);
  InferenceSae sae;
  std::size_t d = 0, s = 0;
  try {
    const auto architecture = io::json_field<std::string>(cfg, "architecture", "");
    d = io::json_field<std::size_t>(cfg, "d_in", "");
    s = io::json_field<std::size_t>(cfg, "d_sae", "");
    sae.apply_b_dec_to_input = io::json_field_or<bool>(cfg, "apply_b_dec_to_input", "", true);
    sae.normalization.mode = read_normalization(cfg);
    const auto reshape = io::json_field_or<std::string>(cfg, "reshape_activations", "", "none");
    if (reshape != "none")
      throw ConfigError("reshape_activations", "\"" + reshape + "\"", "only \"none\" is supported");
    sae.form = read_form(architecture, cfg, d);
    if (d == 0 || s == 0) throw ConfigError("d_in/d_sae", show(d) + "/" + show(s), "must be >= 1");
  } catch (const ConfigError& e) {
    throw FormatError(cfg_path.string(), e.what());
  }
  const auto weights_path = dir / kSaeWeightsFile;
  const auto w = io::read_safetensors(weights_path);
  const inference::TensorSource src{w, weights_path.string()};
  std::visit(
      [&](auto& f) {
        sae.params = inference::load_core_tensors(src, d, s, f.core);
        f.load_tensors(src, sae.params);
      },
      sae.form);
  try {
    sae.validate();
  } catch (const Error& e) {
    throw FormatError(cfg_path.string(), e.what());
  }
  return sae;
}

}  // namespace synthsae::saelens
