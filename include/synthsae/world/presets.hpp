#pragma once
// Named world configurations. "synth-sae-bench-16k" is the published SynthSAEBench-16k
// (reference §1.2, with scale_children_by_parent = true as in the paper, the creation script
// and the v2 artifact); "synth-sae-bench-16k-v1" reproduces the v1 HuggingFace artifact
// (scale_children_by_parent = false). The CPU presets keep the structure (Zipf 0.5 from 0.4 to
// 5e-4, 4-ary mutually exclusive forest of depth 3 over 66 % of the features, rank-25 copula,
// magnitudes 5 -> 4 with folded-normal spread, bias 0.5) at sizes a laptop trains in minutes.
#include <string>
#include <string_view>
#include <vector>

#include "synthsae/core/error.hpp"
#include "synthsae/world/synthetic_model_config.hpp"

namespace synthsae {

namespace detail {

inline SyntheticModelConfig benchmark_shaped_world(std::int64_t n, std::int64_t d, int roots, bool scale_by_parent) {
  SyntheticModelConfig c;
  c.num_features = n;
  c.hidden_dim = d;
  c.firing_probability = Zipfian{0.5, 0.4, 0.0005};
  HierarchyConfig h;
  h.total_root_nodes = roots;
  h.branching_factor = {4, 4};
  h.max_depth = 3;
  h.mutually_exclusive_portion = 1.0;
  h.mutually_exclusive_min_depth = 0;
  h.compensate_probabilities = true;
  h.scale_children_by_parent = scale_by_parent;
  c.hierarchy = h;
  c.orthogonalization = OrthogonalizationConfig{100, 3e-4, 1024};
  c.correlation = LowRankCorrelation{25, 0.1, std::nullopt};
  c.mean_firing_magnitudes = LinearMagnitude{5.0, 4.0};
  c.std_firing_magnitudes = FoldedNormalMagnitude{0.5, 0.5, std::nullopt, std::nullopt};
  c.bias = BiasSpec{BiasSpec::Kind::norm, 0.5};
  c.seed = 42;
  return c;
}

}  // namespace detail

struct PresetInfo {
  std::string_view name;
  std::string_view description;
};

inline const std::vector<PresetInfo>& preset_list() {
  static const std::vector<PresetInfo> presets = {
      {"synth-sae-bench-16k", "SynthSAEBench-16k as published: 16,384 features in 768 dimensions (scale-by-parent on)"},
      {"synth-sae-bench-16k-v1", "the v1 HuggingFace artifact's configuration (scale-by-parent off)"},
      {"cpu-4k", "4,096 features in 256 dimensions, the benchmark's structure at CPU size"},
      {"cpu-1k", "1,024 features in 128 dimensions, for quick CPU runs"},
      {"tiny", "256 features in 32 dimensions (forest of depth 2), for tests"},
  };
  return presets;
}

inline SyntheticModelConfig preset(std::string_view name) {
  if (name == "synth-sae-bench-16k") return detail::benchmark_shaped_world(16384, 768, 128, true);
  if (name == "synth-sae-bench-16k-v1") return detail::benchmark_shaped_world(16384, 768, 128, false);
  if (name == "cpu-4k") return detail::benchmark_shaped_world(4096, 256, 32, true);
  if (name == "cpu-1k") return detail::benchmark_shaped_world(1024, 128, 8, true);
  if (name == "tiny") {
    auto c = detail::benchmark_shaped_world(256, 32, 4, true);
    c.hierarchy->max_depth = 2;  // 4 + 16 + 64 = 84 hierarchical features, 172 free ones
    c.correlation = LowRankCorrelation{4, 0.1, std::nullopt};
    c.orthogonalization = OrthogonalizationConfig{50, 1e-3, 1024};
    return c;
  }
  std::string names;
  for (const auto& p : preset_list()) names += (names.empty() ? "" : ", ") + std::string(p.name);
  throw ConfigError("preset", "\"" + std::string(name) + "\"", "unknown; choose one of " + names);
}

}  // namespace synthsae
