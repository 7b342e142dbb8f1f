// Every invalid configuration value, one table: each row sets one bad value through the library
// (a config JSON as a user's file gives it, or the C++ struct where JSON cannot carry the value,
// as NaN) and expects a synthsae::Error whose message names the field and the value. The same
// values through the program: tests/cli/test_bad_values.sh.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "synthsae/sae/parameters.hpp"
#include "synthsae/sae/policies/activation_batchtopk.hpp"
#include "synthsae/sae/policies/activation_topk.hpp"
#include "synthsae/sae/policies/nesting_matryoshka.hpp"
#include "synthsae/sae/policies/penalty_l1.hpp"
#include "synthsae/train/trainer.hpp"
#include "synthsae/world/synthetic_model_config.hpp"

namespace {

using namespace synthsae;
using Json = io::Json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

struct BadValue {
  std::string what;
  std::function<void()> act;
  std::string field, value;  ///< both must appear in the message
};

/// A small valid config with every optional part, as a user's synthetic_model_config.json.
Json base_config() {
  return Json::parse(R"({
    "num_features": 40, "hidden_dim": 8, "seed": 1,
    "firing_probability": {"generator_name": "zipfian", "exponent": 0.5, "max_prob": 0.3, "min_prob": 0.01},
    "hierarchy": {"total_root_nodes": 4, "branching_factor": 3, "max_depth": 2},
    "orthogonalization": {"num_steps": 5, "lr": 0.01, "chunk_size": 16},
    "correlation": {"rank": 2, "correlation_scale": 0.1},
    "std_firing_magnitudes": {"generator_name": "folded_normal", "mean": 0.5, "std": 0.5},
    "mean_firing_magnitudes": {"generator_name": "linear", "start": 5.0, "end": 4.0},
    "bias": 0.5})");
}

/// The config with one JSON pointer set to `value` (a null `value` removes nothing: it is set).
std::function<void()> config_with(const std::string& pointer, Json value) {
  return [=] {
    Json j = base_config();
    j[Json::json_pointer(pointer)] = value;
    (void)SyntheticModelConfig::from_json(j);
  };
}

SyntheticModelConfig parsed_base() { return SyntheticModelConfig::from_json(base_config()); }

std::vector<BadValue> bad_values() {
  std::vector<BadValue> rows = {
      // world: sizes
      {"num_features < 1", config_with("/num_features", 0), "num_features", "0"},
      {"hidden_dim < 1", config_with("/hidden_dim", -3), "hidden_dim", "-3"},
      {"num_features beyond 2^30", config_with("/num_features", std::int64_t(1) << 31), "num_features", "2147483648"},
      {"a world larger than memory", config_with("/hidden_dim", std::int64_t(1) << 40), "num_features x hidden_dim",
       "40 x 1099511627776"},
      // world: probabilities and ranges
      {"max_prob above 1", config_with("/firing_probability/max_prob", 1.5), "firing_probability.min_prob/max_prob",
       "0.01/1.5"},
      {"min_prob above max_prob", config_with("/firing_probability/min_prob", 0.4),
       "firing_probability.min_prob/max_prob", "0.4/0.3"},
      {"min_prob 0", config_with("/firing_probability/min_prob", 0), "firing_probability.min_prob/max_prob", "0/0.3"},
      {"constant probability 0",
       config_with("/firing_probability", Json{{"generator_name", "constant"}, {"probability", 0}}),
       "firing_probability.probability", "0"},
      {"negative std", config_with("/std_firing_magnitudes/std", -1), "magnitude.std", "-1"},
      {"magnitude min above max",
       config_with("/std_firing_magnitudes",
                   Json{{"generator_name", "folded_normal"}, {"min_value", 2}, {"max_value", 1}}),
       "magnitude.min_value/max_value", "2/1"},
      {"linear magnitude start 0", config_with("/mean_firing_magnitudes/start", 0), "magnitude.start/end", "0/4"},
      // world: structure
      {"correlation rank 0", config_with("/correlation/rank", 0), "correlation.rank", "0"},
      {"negative correlation scale", config_with("/correlation/correlation_scale", -0.1),
       "correlation.correlation_scale", "-0.1"},
      {"branching factor 1", config_with("/hierarchy/branching_factor", 1), "hierarchy.branching_factor", "1"},
      {"no roots", config_with("/hierarchy/total_root_nodes", 0), "hierarchy.total_root_nodes", "0"},
      {"orthogonalisation lr 0", config_with("/orthogonalization/lr", 0), "orthogonalization.lr", "0"},
      // JSON: unknown keys and wrong types, at the top and inside
      {"unknown key", config_with("/num_featurez", 3), "num_featurez", "3"},
      {"unknown nested key", config_with("/correlation/rnak", 2), "correlation.rnak", "2"},
      {"unknown generator key", config_with("/firing_probability/max_probability", 0.2),
       "firing_probability.max_probability", "0.2"},
      {"wrong type", config_with("/num_features", "40"), "num_features", "\"40\""},
      {"a fraction for an integer", config_with("/correlation/rank", 2.5), "correlation.rank", "2.5"},
      {"unknown generator", config_with("/firing_probability/generator_name", "zipf"),
       "firing_probability.generator_name", "\"zipf\""},
      // NaN and Inf, where JSON cannot carry them: the structs a C++ user fills in
      {"NaN exponent", [] { auto c = parsed_base(); std::get<Zipfian>(c.firing_probability).exponent = kNaN; c.validate(); },
       "firing_probability.exponent", "nan"},
      {"Inf exponent", [] { auto c = parsed_base(); std::get<Zipfian>(c.firing_probability).exponent = kInf; c.validate(); },
       "firing_probability.exponent", "inf"},
      {"NaN max_prob", [] { auto c = parsed_base(); std::get<Zipfian>(c.firing_probability).max_prob = kNaN; c.validate(); },
       "firing_probability.min_prob/max_prob", "nan"},
      {"Inf correlation scale", [] { auto c = parsed_base(); c.correlation->correlation_scale = kInf; c.validate(); },
       "correlation.correlation_scale", "inf"},
      {"NaN orthogonalisation lr", [] { auto c = parsed_base(); c.orthogonalization->lr = kNaN; c.validate(); },
       "orthogonalization.lr", "nan"},
      {"Inf bias", [] { auto c = parsed_base(); c.bias = {BiasSpec::Kind::norm, kInf}; c.validate(); }, "bias", "inf"},
      {"NaN magnitude mean",
       [] { auto c = parsed_base(); std::get<FoldedNormalMagnitude>(c.std_firing_magnitudes).mean = kNaN; c.validate(); },
       "magnitude.mean", "nan"},
      {"NaN ME portion", [] { auto c = parsed_base(); c.hierarchy->mutually_exclusive_portion = kNaN; c.validate(); },
       "hierarchy.mutually_exclusive_portion", "nan"},
      // SAE
      {"TopK k <= 0", [] { TopK t; t.k = 0; t.validate(8, 16); }, "k", "0"},
      {"TopK k > d_sae", [] { TopK t; t.k = 17; t.validate(8, 16); }, "k", "17"},
      {"BatchTopK k > d_sae", [] { BatchTopK t; t.k = 16.5; t.validate(8, 16); }, "k", "16.5"},
      {"BatchTopK NaN k", [] { BatchTopK t; t.k = kNaN; t.validate(8, 16); }, "k", "nan"},
      {"Matryoshka widths not increasing", [] { Matryoshka m; m.widths = {4, 4}; m.validate(8, 16); },
       "matryoshka_widths", "[4, 4]"},
      {"Matryoshka widths beyond d_sae", [] { Matryoshka m; m.widths = {4, 32}; m.validate(8, 16); },
       "matryoshka_widths", "[4, 32]"},
      {"NaN l1 coefficient", [] { L1Penalty p; p.coefficient = kNaN; p.validate(8, 16); }, "l1_coefficient", "nan"},
      {"d_in 0", [] { (void)initial_parameters<float>(0, 16, std::nullopt, 0); }, "d_in", "0"},
      {"an SAE larger than memory", [] { (void)initial_parameters<float>(1 << 20, std::size_t(1) << 30, std::nullopt, 0); },
       "d_in x d_sae", "1048576 x 1073741824"},
      // training
      {"batch 0", [] { TrainerConfig c; c.batch_size = 0; c.validate(); }, "batch_size", "0"},
      {"fewer samples than a batch", [] { TrainerConfig c; c.training_samples = 10; c.validate(); }, "training_samples",
       "10"},
      {"more steps than the step counter", [] {
         TrainerConfig c;
         c.batch_size = 1;
         c.training_samples = std::numeric_limits<std::size_t>::max();
         c.validate();
       },
       "training_samples", "18446744073709551615"},
      {"lr 0", [] { LrSchedule s; s.lr = 0; s.validate(); }, "lr", "0"},
      {"negative lr", [] { LrSchedule s; s.lr = -1e-9; s.validate(); }, "lr", "-1e-09"},
      {"NaN lr", [] { LrSchedule s; s.lr = kNaN; s.validate(); }, "lr", "nan"},
      {"Inf lr", [] { LrSchedule s; s.lr = kInf; s.validate(); }, "lr", "inf"},
      {"no skipped steps allowed", [] { TrainerConfig c; c.max_consecutive_skipped_steps = 0; c.validate(); },
       "max_consecutive_skipped_steps", "0"},
  };
  return rows;
}

}  // namespace

TEST_CASE("bad values: every invalid value is an error naming its field and the value", "[errors]") {
  for (const auto& row : bad_values()) {
    INFO(row.what);
    bool thrown = false;
    try {
      row.act();
    } catch (const Error& e) {
      thrown = true;
      const std::string message = e.what();
      INFO("message: " << message);
      CHECK(message.find(row.field) != std::string::npos);
      CHECK(message.find(row.value) != std::string::npos);
    }
    CHECK(thrown);
  }
}

TEST_CASE("bad values: the base config of the table is itself valid (each row fails for its own value)", "[errors]") {
  CHECK_NOTHROW(parsed_base());
  CHECK_NOTHROW(TopK{.k = 16}.validate(8, 16));
  CHECK_NOTHROW(TrainerConfig{}.validate());
}

TEST_CASE("bad values: a hierarchy larger than the world is cut breadth first, as SAELens does, and said", "[errors]") {
  // 4 roots with 3 children each, to depth 2, in 10 features: roots 0-3, root 0's children 4-6
  // and root 1's 7-9; roots 2 and 3 lose 3 children each, and the six depth-1 nodes their 3
  // children each: 3 + 3 + 18 = 24 nodes cut.
  HierarchyConfig h;
  h.total_root_nodes = 4;
  h.branching_factor = {3, 3};
  h.max_depth = 2;
  const Forest f = generate_hierarchy(10, h, 0);
  CHECK(f.nodes.size() == 10);
  CHECK(f.nodes_cut == 24);
  const std::string note = hierarchy_truncation_note(f, 10);
  CHECK(note.find("num_features = 10") != std::string::npos);
  CHECK(note.find("24") != std::string::npos);
  CHECK(generate_hierarchy(52, h, 0).nodes_cut == 0);  // 4 + 12 + 36 = 52 fit exactly
}

TEST_CASE("bad values: the memory check refuses before allocating and says how much", "[errors]") {
  CHECK_NOTHROW(require_memory("x", "1", 1000.0L, "a test", 2000));
  try {
    require_memory("rows x cols", "3 x 4", 3.0L * (1ull << 40), "the test array", 1ull << 30);
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) ==
          "rows x cols = 3 x 4: the test array needs at least 3.0 TiB, and this machine has 1.0 GiB of memory");
  }
  CHECK(human_bytes(512) == "512 bytes");
  CHECK(human_bytes(1536) == "1.5 KiB");
}
