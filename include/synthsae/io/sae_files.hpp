#pragma once
// SAELens's SAE directory: cfg.json (SAEConfig.to_dict: d_in, d_sae, dtype, device,
// apply_b_dec_to_input, normalize_activations, reshape_activations, meta, architecture, and for
// topk: k, rescale_acts_by_decoder_norm) and sae_weights.safetensors (W_enc [d_in, d_sae],
// W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in], threshold [d_sae] for jumprelu; gated has
// b_gate, r_mag, b_mag [d_sae] instead of b_enc).
#include <filesystem>
#include <string>
#include <vector>

#include "synthsae/core/error.hpp"
#include "synthsae/io/json.hpp"
#include "synthsae/io/safetensors.hpp"
#include "synthsae/sae/inference_sae.hpp"

namespace synthsae::io {

inline constexpr const char* kSaeConfigFile = "cfg.json";
inline constexpr const char* kSaeWeightsFile = "sae_weights.safetensors";

namespace detail {

template <class V>
Tensor view_tensor(const V& v, std::vector<std::int64_t> shape) {
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), v);
  return make_tensor<float>(Dtype::F32, std::move(shape), std::span<const float>(h.data(), h.size()));
}

template <class V>
void fill_view(const V& v, const std::vector<float>& values) {
  auto h = Kokkos::create_mirror_view(v);
  std::copy(values.begin(), values.end(), h.data());
  Kokkos::deep_copy(v, h);
}

}  // namespace detail

inline Json sae_config_json(const InferenceSae& sae, const Json& meta = Json::object()) {
  Json cfg = {{"architecture", sae.architecture},
              {"d_in", sae.input_dim()},
              {"d_sae", sae.num_latents()},
              {"dtype", "float32"},
              {"device", "cpu"},
              {"apply_b_dec_to_input", sae.apply_b_dec_to_input},
              {"normalize_activations", "none"},
              {"reshape_activations", "none"},
              {"meta", meta}};
  if (sae.architecture == "matching_pursuit") {
    cfg["residual_threshold"] = sae.pursuit.residual_threshold;
    cfg["max_iterations"] = sae.pursuit.max_iterations;
    cfg["stop_on_duplicate_support"] = sae.pursuit.stop_on_duplicate_support;
  }
  if (sae.architecture == "topk") {
    cfg["k"] = sae.k;
    cfg["rescale_acts_by_decoder_norm"] = sae.rescale_acts_by_decoder_norm;
    cfg["use_sparse_activations"] = false;
  }
  return cfg;
}

/// Writes cfg.json and sae_weights.safetensors into `dir` (created if needed), each atomically.
inline void save_sae(const InferenceSae& sae, const std::filesystem::path& dir, const Json& meta = Json::object()) {
  sae.validate();
  std::filesystem::create_directories(dir);
  const auto d = static_cast<std::int64_t>(sae.input_dim()), s = static_cast<std::int64_t>(sae.num_latents());
  SafetensorsFile w;
  const bool tied = sae.architecture == "matching_pursuit";
  if (!tied) w.tensors["W_enc"] = detail::view_tensor(sae.params.w_enc, {d, s});
  w.tensors["W_dec"] = detail::view_tensor(sae.params.w_dec, {s, d});
  const bool gated = sae.architecture == "gated";
  if (!tied && !gated) w.tensors["b_enc"] = detail::view_tensor(sae.params.b_enc, {s});
  if (gated)
    for (const char* name : {"b_gate", "r_mag", "b_mag"}) w.tensors[name] = detail::view_tensor(sae.params.extra.at(name), {s});
  w.tensors["b_dec"] = detail::view_tensor(sae.params.b_dec, {d});
  if (sae.architecture == "jumprelu") w.tensors["threshold"] = detail::view_tensor(sae.threshold, {s});
  write_safetensors(dir / kSaeWeightsFile, w);
  write_json_file(dir / kSaeConfigFile, sae_config_json(sae, meta));
}

/// Loads a SAELens SAE directory (ours or SAELens's). Unsupported architectures and options
/// (normalize_activations other than "none", hook_z reshaping) are clear errors.
inline InferenceSae load_sae(const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir)) throw IoError(dir.string(), "is not a directory");
  const auto cfg_path = dir / kSaeConfigFile;
  const Json cfg = read_json_file(cfg_path);
  InferenceSae sae;
  std::size_t d = 0, s = 0;
  try {
    sae.architecture = json_field<std::string>(cfg, "architecture", "");
    d = json_field<std::size_t>(cfg, "d_in", "");
    s = json_field<std::size_t>(cfg, "d_sae", "");
    sae.apply_b_dec_to_input = json_field_or<bool>(cfg, "apply_b_dec_to_input", "", true);
    const auto norm = json_field_or<std::string>(cfg, "normalize_activations", "", "none");
    if (norm != "none") throw ConfigError("normalize_activations", "\"" + norm + "\"", "only \"none\" is supported");
    const auto reshape = json_field_or<std::string>(cfg, "reshape_activations", "", "none");
    if (reshape != "none") throw ConfigError("reshape_activations", "\"" + reshape + "\"", "only \"none\" is supported");
    if (sae.architecture == "topk") {
      sae.k = json_field<int>(cfg, "k", "");
      sae.rescale_acts_by_decoder_norm = json_field_or<bool>(cfg, "rescale_acts_by_decoder_norm", "", false);
    } else if (sae.architecture == "matching_pursuit") {
      const auto iters = cfg.find("max_iterations");
      sae.pursuit.max_iterations = (iters == cfg.end() || iters->is_null()) ? 0 : json_field<int>(cfg, "max_iterations", "");
      sae.pursuit.residual_threshold = json_field_or<double>(cfg, "residual_threshold", "", 1e-2);
      sae.pursuit.stop_on_duplicate_support = json_field_or<bool>(cfg, "stop_on_duplicate_support", "", true);
    } else if (sae.architecture != "standard" && sae.architecture != "jumprelu" && sae.architecture != "gated") {
      throw ConfigError("architecture", "\"" + sae.architecture + "\"", "supported: standard, topk, jumprelu, gated, matching_pursuit");
    }
    if (d == 0 || s == 0) throw ConfigError("d_in/d_sae", show(d) + "/" + show(s), "must be >= 1");
    if (sae.architecture == "matching_pursuit" && sae.pursuit.max_iterations == 0) {
      sae.pursuit.max_iterations = static_cast<int>(d);  // SAELens: null means d_in
    }
  } catch (const ConfigError& e) {
    throw FormatError(cfg_path.string(), e.what());
  }
  const auto weights_path = dir / kSaeWeightsFile;
  const auto w = read_safetensors(weights_path);
  const std::string src = weights_path.string();
  auto values = [&](const char* name, std::vector<std::int64_t> shape) {
    const Tensor& t = w.at(name, src);
    if (t.shape != shape) {
      throw FormatError(src, std::string("tensor '") + name + "' has shape " + io::detail::shape_text(t.shape) + ", cfg.json implies " +
                                 io::detail::shape_text(shape));
    }
    return tensor_values<float>(t, src);
  };
  const auto di = static_cast<std::int64_t>(d), si = static_cast<std::int64_t>(s);
  const bool tied = sae.architecture == "matching_pursuit";
  sae.params.w_enc = Matrix<float>("W_enc", tied ? 0 : d, tied ? 0 : s);
  sae.params.w_dec = Matrix<float>("W_dec", s, d);
  const bool gated = sae.architecture == "gated";
  sae.params.b_enc = Vector<float>("b_enc", tied || gated ? 0 : s);
  sae.params.b_dec = Vector<float>("b_dec", d);
  if (!tied) detail::fill_view(sae.params.w_enc, values("W_enc", {di, si}));
  detail::fill_view(sae.params.w_dec, values("W_dec", {si, di}));
  if (!tied && !gated) detail::fill_view(sae.params.b_enc, values("b_enc", {si}));
  if (gated) {
    for (const char* name : {"b_gate", "r_mag", "b_mag"}) {
      sae.params.extra[name] = Vector<float>(std::string(name), s);
      detail::fill_view(sae.params.extra[name], values(name, {si}));
    }
  }
  detail::fill_view(sae.params.b_dec, values("b_dec", {di}));
  if (sae.architecture == "jumprelu") {
    sae.threshold = Vector<float>("threshold", s);
    detail::fill_view(sae.threshold, values("threshold", {si}));
  }
  try {
    sae.validate();
  } catch (const Error& e) {
    throw FormatError(cfg_path.string(), e.what());
  }
  return sae;
}

}  // namespace synthsae::io
