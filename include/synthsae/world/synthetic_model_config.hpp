#pragma once
// SyntheticModelConfig (reference §1.1) with SAELens's JSON keys, so one JSON file works in
// both tools: num_features, hidden_dim, firing_probability, hierarchy, orthogonalization,
// correlation, std_firing_magnitudes, mean_firing_magnitudes, bias, dtype, seed.
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "synthsae/core/error.hpp"
#include "synthsae/core/memory_check.hpp"
#include "synthsae/io/json.hpp"
#include "synthsae/world/dense_component.hpp"
#include "synthsae/world/correlation.hpp"
#include "synthsae/world/feature_dictionary.hpp"
#include "synthsae/world/firing_probability.hpp"
#include "synthsae/world/hierarchy.hpp"
#include "synthsae/world/magnitude.hpp"

namespace synthsae {

/// `bias`: false (none), true (random direction of norm 1) or a number (that norm).
struct BiasSpec {
  enum class Kind { none, unit, norm } kind = Kind::unit;
  double value = 1.0;
  double norm() const { return kind == Kind::none ? 0.0 : kind == Kind::unit ? 1.0 : value; }
  io::Json to_json() const {
    return kind == Kind::none ? io::Json(false) : kind == Kind::unit ? io::Json(true) : io::Json(value);
  }
  static BiasSpec from_json(const io::Json& j) {
    if (j.is_boolean()) return j.get<bool>() ? BiasSpec{Kind::unit, 1.0} : BiasSpec{Kind::none, 0.0};
    if (j.is_number()) {
      const double v = j.get<double>();
      if (!(v >= 0) || !std::isfinite(v))
        throw ConfigError("bias", j.dump(), "must be true, false or a finite norm >= 0");
      return {Kind::norm, v};
    }
    throw ConfigError("bias", j.dump(), "must be true, false or a number");
  }
};

struct SyntheticModelConfig {
  std::int64_t num_features = 0;
  std::int64_t hidden_dim = 0;
  FiringProbability firing_probability = Zipfian{};
  std::optional<HierarchyConfig> hierarchy;
  std::optional<OrthogonalizationConfig> orthogonalization;
  std::optional<LowRankCorrelation> correlation;
  Magnitude std_firing_magnitudes = ConstantMagnitude{0.0};
  Magnitude mean_firing_magnitudes = ConstantMagnitude{1.0};
  BiasSpec bias{};
  std::string dtype = "float32";
  std::optional<std::uint64_t> seed;
  /// Not SAELens's: dense parts of x (world/dense_component.hpp); written only when present.
  std::vector<DenseComponentSpec> dense_components;

  void validate() const {
    if (num_features < 1) throw ConfigError("num_features", show(num_features), "must be >= 1");
    if (num_features > (std::int64_t(1) << 30))
      throw ConfigError("num_features", show(num_features), "must be <= 2^30");
    if (hidden_dim < 1) throw ConfigError("hidden_dim", show(hidden_dim), "must be >= 1");
    // The feature dictionary (float32, twice while it is orthogonalised) and the correlation
    // factor; the per-feature vectors are small next to them.
    const long double n = static_cast<long double>(num_features);
    require_memory("num_features x hidden_dim", show(num_features) + " x " + show(hidden_dim),
                   n * hidden_dim * 4 * (orthogonalization ? 2 : 1) + n * (correlation ? correlation->rank : 0) * 4,
                   "the world's feature dictionary");
    if (bias.kind == BiasSpec::Kind::norm && !(bias.value >= 0 && std::isfinite(bias.value)))
      throw ConfigError("bias", show(bias.value), "must be true, false or a finite norm >= 0");
    if (dtype != "float32") throw ConfigError("dtype", "\"" + dtype + "\"", "only \"float32\" is supported");
    std::visit([](const auto& p) { p.validate(); }, firing_probability);
    std::visit([](const auto& m) { m.validate(); }, std_firing_magnitudes);
    std::visit([](const auto& m) { m.validate(); }, mean_firing_magnitudes);
    if (hierarchy) hierarchy->validate();
    if (orthogonalization) orthogonalization->validate();
    if (correlation) correlation->validate();
    validate_dense_components(dense_components, hidden_dim);
  }

  io::Json to_json() const {
    io::Json j = {{"num_features", num_features},
            {"hidden_dim", hidden_dim},
            {"firing_probability", synthsae::to_json(firing_probability)},
            {"hierarchy", hierarchy ? hierarchy->to_json() : io::Json(nullptr)},
            {"orthogonalization", orthogonalization ? orthogonalization->to_json() : io::Json(nullptr)},
            {"correlation", correlation ? correlation->to_json() : io::Json(nullptr)},
            {"std_firing_magnitudes", synthsae::to_json(std_firing_magnitudes)},
            {"mean_firing_magnitudes", synthsae::to_json(mean_firing_magnitudes)},
            {"bias", bias.to_json()},
            {"dtype", dtype},
            {"seed", seed ? io::Json(*seed) : io::Json(nullptr)}};
    if (!dense_components.empty()) {
      j["dense_components"] = io::Json::array();
      for (const auto& c : dense_components) j["dense_components"].push_back(c.to_json());
    }
    return j;
  }

  /// Reads SAELens's keys. Missing optional keys take SAELens's (current) defaults; an
  /// unknown key is an error, so a typo does not silently fall back to a default.
  static SyntheticModelConfig from_json(const io::Json& j) {
    if (!j.is_object()) throw ConfigError("synthetic model config", j.dump().substr(0, 80), "must be a JSON object");
    io::require_known_keys(j,
                           {"num_features", "hidden_dim", "firing_probability", "hierarchy", "orthogonalization",
                            "correlation", "std_firing_magnitudes", "mean_firing_magnitudes", "bias", "dtype", "seed",
                            "dense_components"},
                           "", "the synthetic model config");
    SyntheticModelConfig c;
    c.num_features = io::json_field<std::int64_t>(j, "num_features", "");
    c.hidden_dim = io::json_field<std::int64_t>(j, "hidden_dim", "");
    auto present = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
    if (present("firing_probability")) c.firing_probability = firing_probability_from_json(j["firing_probability"]);
    if (present("hierarchy")) c.hierarchy = HierarchyConfig::from_json(j["hierarchy"]);
    if (present("orthogonalization")) c.orthogonalization = OrthogonalizationConfig::from_json(j["orthogonalization"]);
    if (present("correlation")) c.correlation = LowRankCorrelation::from_json(j["correlation"]);
    if (present("std_firing_magnitudes"))
      c.std_firing_magnitudes = magnitude_from_json(j["std_firing_magnitudes"], "std_firing_magnitudes");
    if (present("mean_firing_magnitudes"))
      c.mean_firing_magnitudes = magnitude_from_json(j["mean_firing_magnitudes"], "mean_firing_magnitudes");
    if (j.contains("bias")) c.bias = BiasSpec::from_json(j["bias"]);
    if (present("dtype")) c.dtype = io::json_field<std::string>(j, "dtype", "");
    if (present("seed")) c.seed = io::json_field<std::uint64_t>(j, "seed", "");
    if (present("dense_components")) {
      if (!j["dense_components"].is_array())
        throw ConfigError("dense_components", j["dense_components"].dump().substr(0, 80), "must be a list");
      for (const auto& e : j["dense_components"]) c.dense_components.push_back(DenseComponentSpec::from_json(e));
    }
    c.validate();
    return c;
  }
};

}  // namespace synthsae
