#pragma once
// SAELens's synthetic-model directory (reference §1.5):
//   synthetic_model_config.json   the config, SAELens's keys
//   synthetic_model.safetensors   feature_vectors [N, D], bias [D], firing_probabilities [N]
//                                 (compensated), correlation_factor [N, r], correlation_diag [N]
//   hierarchy.json                {"roots": [node...]}, only when there is a hierarchy
// Writing and reading are exact inverses; a directory written by SAELens loads, and the
// per-node flags of hierarchy.json decide the hierarchy's behaviour. The firing magnitudes are not
// stored: they are redrawn from the config with torch's CPU generator, as SAELens redraws them
// (world/magnitude.hpp), so the directory is the same world in both tools.
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "synthsae/core/error.hpp"
#include "synthsae/io/json.hpp"
#include "synthsae/io/safetensors.hpp"
#include "synthsae/world/synthetic_model.hpp"

namespace synthsae::saelens {

inline constexpr const char* kSyntheticModelConfigFile = "synthetic_model_config.json";
inline constexpr const char* kSyntheticModelWeightsFile = "synthetic_model.safetensors";
inline constexpr const char* kHierarchyFile = "hierarchy.json";

template <class View>
std::vector<float> view_to_host_vector(const View& v) {
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), v);
  return std::vector<float>(h.data(), h.data() + h.size());
}

/// Writes the three files into `dir` (created if needed), each atomically.
inline void save_synthetic_model(const SyntheticModel& model, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const auto n = static_cast<std::int64_t>(model.num_features()), d = static_cast<std::int64_t>(model.hidden_dim());
  io::SafetensorsFile weights;
  weights.tensors["feature_vectors"] =
      io::make_tensor<float>(io::Dtype::F32, {n, d}, view_to_host_vector(model.feature_vectors()));
  weights.tensors["bias"] = io::make_tensor<float>(io::Dtype::F32, {d}, view_to_host_vector(model.bias()));
  weights.tensors["firing_probabilities"] = io::make_tensor<double>(io::Dtype::F32, {n}, model.firing_probabilities());
  if (model.correlation()) {
    const auto& c = *model.correlation();
    weights.tensors["correlation_factor"] =
        io::make_tensor<float>(io::Dtype::F32, {n, static_cast<std::int64_t>(c.rank)}, c.factor);
    weights.tensors["correlation_diag"] = io::make_tensor<float>(io::Dtype::F32, {n}, c.diag);
  }
  if (model.has_dense()) {  // not SAELens's: the dense components' directions and scales
    const auto& p = model.dense_parts();
    weights.tensors["dense_scales"] = io::make_tensor<float>(
        io::Dtype::F32, {3}, std::vector<float>{p.isotropic_std, p.low_rank_std, p.circle_magnitude});
    if (p.rank())
      weights.tensors["dense_low_rank_basis"] = io::make_tensor<float>(
          io::Dtype::F32, {static_cast<std::int64_t>(p.rank()), d}, view_to_host_vector(p.low_rank_basis));
    if (p.circles())
      weights.tensors["dense_circle_planes"] = io::make_tensor<float>(
          io::Dtype::F32, {static_cast<std::int64_t>(2 * p.circles()), d}, view_to_host_vector(p.circle_planes));
  }
  weights.metadata["format"] = "pt";
  io::write_safetensors(dir / kSyntheticModelWeightsFile, weights);
  if (!model.hierarchy().empty()) {
    io::write_json_file(dir / kHierarchyFile, forest_to_json(model.hierarchy()));
  } else {
    std::filesystem::remove(dir / kHierarchyFile);  // a stale file would change the loaded world
  }
  io::write_json_file(dir / kSyntheticModelConfigFile, model.config().to_json());
}

/// What SAELens does when a directory lacks a structure its config asks for: a config with a
/// hierarchy but no hierarchy.json, or with a correlation but no correlation tensors, gets them
/// generated from the config (seed + 3 and seed + 4, the construction's offsets) instead of being
/// silently dropped (the 16k world without its hierarchy would fire ~7,000 features per
/// sample). Each regeneration is reported through `notes` (the CLI prints them on stderr). The
/// generators are synthsae's: the structure is the config's, but not the very forest or factor
/// that SAELens's own random streams would draw.
inline void regenerate_missing_structure(const SyntheticModelConfig& cfg, SyntheticModelParts& parts,
                                         const std::filesystem::path& dir,
                                         const std::function<void(const std::string&)>& notes) {
  const auto n = static_cast<std::size_t>(cfg.num_features);
  const std::uint64_t seed = cfg.seed ? *cfg.seed : std::random_device{}();
  if (cfg.hierarchy && parts.hierarchy.empty()) {
    parts.hierarchy = generate_hierarchy(n, *cfg.hierarchy, seed + 3);
    if (notes && parts.hierarchy.nodes_cut > 0) notes(hierarchy_truncation_note(parts.hierarchy, n));
    if (notes)
      notes((dir / kHierarchyFile).string() + " is missing but " + kSyntheticModelConfigFile +
            " has a hierarchy: regenerated it from the config (seed + 3), as SAELens does");
  }
  if (cfg.correlation && !parts.correlation) {
    parts.correlation = cfg.correlation->generate(n, seed + 4);
    if (notes)
      notes((dir / kSyntheticModelWeightsFile).string() + " has no correlation_factor/correlation_diag but " +
            kSyntheticModelConfigFile + " has a correlation: regenerated it from the config (seed + 4), as SAELens does");
  }
}

/// Prints a loader's note on stderr, the default for load_synthetic_model.
inline void note_on_stderr(const std::string& message) { std::fprintf(stderr, "synthsae: %s\n", message.c_str()); }

/// Loads a directory in SAELens's layout, whoever wrote it. Structure the config asks for but
/// the directory lacks is regenerated and reported through `notes` (regenerate_missing_structure).
inline SyntheticModel load_synthetic_model(const std::filesystem::path& dir,
                                           const std::function<void(const std::string&)>& notes = note_on_stderr) {
  if (!std::filesystem::is_directory(dir)) throw IoError(dir.string(), "is not a directory");
  const auto cfg_path = dir / kSyntheticModelConfigFile;
  SyntheticModelConfig cfg;
  try {
    cfg = SyntheticModelConfig::from_json(io::read_json_file(cfg_path));
  } catch (const ConfigError& e) {
    throw FormatError(cfg_path.string(), e.what());
  }
  const auto n = static_cast<std::int64_t>(cfg.num_features), d = static_cast<std::int64_t>(cfg.hidden_dim);
  const auto weights_path = dir / kSyntheticModelWeightsFile;
  const auto weights = io::read_safetensors(weights_path);
  const std::string src = weights_path.string();
  auto expect_shape = [&](const char* name, std::vector<std::int64_t> shape) -> const io::Tensor& {
    const io::Tensor& t = weights.at(name, src);
    if (t.shape != shape) {
      throw FormatError(src, std::string("tensor '") + name + "' has shape " + io::detail::shape_text(t.shape) +
                                 ", expected " + io::detail::shape_text(shape) + " from " + kSyntheticModelConfigFile);
    }
    return t;
  };
  SyntheticModelParts parts;
  {
    const auto values = io::tensor_values<float>(expect_shape("feature_vectors", {n, d}), src);
    parts.feature_vectors = Matrix<float>("feature_vectors", n, d);
    auto h = Kokkos::create_mirror_view(parts.feature_vectors);
    std::copy(values.begin(), values.end(), h.data());
    Kokkos::deep_copy(parts.feature_vectors, h);
  }
  {
    const auto values = io::tensor_values<float>(expect_shape("bias", {d}), src);
    parts.bias = Vector<float>("bias", d);
    auto h = Kokkos::create_mirror_view(parts.bias);
    std::copy(values.begin(), values.end(), h.data());
    Kokkos::deep_copy(parts.bias, h);
  }
  parts.firing_probabilities = io::tensor_values<double>(expect_shape("firing_probabilities", {n}), src);
  if (weights.contains("correlation_factor")) {
    const io::Tensor& f = weights.at("correlation_factor", src);
    if (f.shape.size() != 2 || f.shape[0] != n) {
      throw FormatError(src, "tensor 'correlation_factor' has shape " + io::detail::shape_text(f.shape) +
                                 ", expected [" + show(n) + ", rank]");
    }
    CorrelationFactors c;
    c.num_features = static_cast<std::size_t>(n);
    c.rank = static_cast<std::size_t>(f.shape[1]);
    c.factor = io::tensor_values<float>(f, src);
    c.diag = io::tensor_values<float>(expect_shape("correlation_diag", {n}), src);
    for (std::size_t i = 0; i < c.diag.size(); ++i) {
      if (!(c.diag[i] >= 0))
        throw FormatError(src, "correlation_diag[" + show(i) + "] = " + show(c.diag[i]) + " is negative");
    }
    parts.correlation = std::move(c);
  }
  if (!cfg.dense_components.empty() && weights.contains("dense_scales")) {
    const auto scales = io::tensor_values<float>(expect_shape("dense_scales", {3}), src);
    DenseParts p;
    p.isotropic_std = scales[0], p.low_rank_std = scales[1], p.circle_magnitude = scales[2];
    auto rows_of = [&](const char* name, std::int64_t rows) {
      const auto v = io::tensor_values<float>(expect_shape(name, {rows, d}), src);
      Matrix<float> m(std::string(name), static_cast<std::size_t>(rows), static_cast<std::size_t>(d));
      auto h = Kokkos::create_mirror_view(m);
      std::copy(v.begin(), v.end(), h.data());
      Kokkos::deep_copy(m, h);
      return m;
    };
    for (const auto& c : cfg.dense_components) {
      if (c.kind == DenseComponentSpec::Kind::low_rank) p.low_rank_basis = rows_of("dense_low_rank_basis", c.rank);
      if (c.kind == DenseComponentSpec::Kind::circles) p.circle_planes = rows_of("dense_circle_planes", 2 * c.count);
    }
    parts.dense = std::move(p);
  }
  if (std::filesystem::exists(dir / kHierarchyFile)) {
    parts.hierarchy = forest_from_json(io::read_json_file(dir / kHierarchyFile), static_cast<std::size_t>(n),
                                       (dir / kHierarchyFile).string());
  }
  regenerate_missing_structure(cfg, parts, dir, notes);
  return SyntheticModel(std::move(cfg), std::move(parts));
}

}  // namespace synthsae::saelens
