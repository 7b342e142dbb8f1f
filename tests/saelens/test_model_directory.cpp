// SyntheticModelConfig JSON with SAELens's keys; the model directory in SAELens's layout:
// exact round trip, a hand-written SAELens-style directory, and malformed inputs.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "synthsae/saelens/model_directory.hpp"
#include "synthsae/world/presets.hpp"

using namespace synthsae;

namespace {

std::filesystem::path fresh_dir(const char* name) {
  const auto dir = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(dir);
  return dir;
}

std::vector<float> hidden_of(SyntheticModel& m, std::uint64_t first, int n) {
  m.set_position(first);
  auto s = m.sample(n);
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), s.hidden);
  return std::vector<float>(h.data(), h.data() + h.size());
}

}  // namespace

TEST_CASE("the 16k preset serialises to the reference's JSON", "[world][config]") {
  const auto j = preset("synth-sae-bench-16k").to_json();
  const auto expected = io::Json::parse(R"({
    "num_features": 16384, "hidden_dim": 768,
    "firing_probability": {"generator_name": "zipfian", "exponent": 0.5, "max_prob": 0.4, "min_prob": 0.0005},
    "hierarchy": {"total_root_nodes": 128, "branching_factor": 4, "max_depth": 3,
                  "mutually_exclusive_portion": 1.0, "mutually_exclusive_min_depth": 0,
                  "mutually_exclusive_max_depth": null,
                  "compensate_probabilities": true, "scale_children_by_parent": true},
    "orthogonalization": {"num_steps": 100, "lr": 0.0003, "chunk_size": 1024},
    "correlation": {"rank": 25, "correlation_scale": 0.1, "seed": null},
    "mean_firing_magnitudes": {"generator_name": "linear", "start": 5.0, "end": 4.0},
    "std_firing_magnitudes": {"generator_name": "folded_normal", "mean": 0.5, "std": 0.5,
                              "min_value": null, "max_value": null},
    "bias": 0.5, "dtype": "float32", "seed": 42})");
  CHECK(j == expected);
  CHECK(SyntheticModelConfig::from_json(expected).to_json() == expected);
  CHECK(preset("synth-sae-bench-16k-v1").hierarchy->scale_children_by_parent == false);
  CHECK_THROWS_WITH(preset("16k"), Catch::Contains("preset") && Catch::Contains("synth-sae-bench-16k"));
}

TEST_CASE("config errors name the key and the value", "[world][config]") {
  auto j = preset("tiny").to_json();
  j["num_featurs"] = 3;
  CHECK_THROWS_WITH(SyntheticModelConfig::from_json(j), Catch::Contains("num_featurs"));
  j = preset("tiny").to_json();
  j["hierarchy"]["branching_factor"] = 1;
  CHECK_THROWS_WITH(SyntheticModelConfig::from_json(j), Catch::Contains("hierarchy.branching_factor = 1"));
  j = preset("tiny").to_json();
  j["bias"] = "big";
  CHECK_THROWS_WITH(SyntheticModelConfig::from_json(j), Catch::Contains("bias"));
  j = preset("tiny").to_json();
  j["hidden_dim"] = 0;
  CHECK_THROWS_WITH(SyntheticModelConfig::from_json(j), Catch::Contains("hidden_dim = 0"));
  j = preset("tiny").to_json();
  j["hierarchy"]["branching_factor"] = {2, 3};  // a range round-trips as a list
  CHECK(SyntheticModelConfig::from_json(j).to_json()["hierarchy"]["branching_factor"] == io::Json::array({2, 3}));
}

TEST_CASE("a saved world reloads exactly and samples identically", "[world][files]") {
  SyntheticModel model(preset("tiny"));
  const auto dir = fresh_dir("synthsae_world_roundtrip");
  saelens::save_synthetic_model(model, dir);
  CHECK(std::filesystem::exists(dir / "hierarchy.json"));
  SyntheticModel back = saelens::load_synthetic_model(dir);
  CHECK(back.config().to_json() == model.config().to_json());
  CHECK(back.firing_probabilities() == model.firing_probabilities());
  CHECK(forest_to_json(back.hierarchy()) == forest_to_json(model.hierarchy()));
  CHECK(hidden_of(back, 1000, 200) == hidden_of(model, 1000, 200));
  // Saving the reloaded world reproduces every file byte for byte.
  const auto dir2 = fresh_dir("synthsae_world_roundtrip2");
  saelens::save_synthetic_model(back, dir2);
  for (const char* f : {"synthetic_model_config.json", "synthetic_model.safetensors", "hierarchy.json"}) {
    CHECK(io::read_file_bytes(dir / f) == io::read_file_bytes(dir2 / f));
  }
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(dir2);
}

TEST_CASE("a SAELens-style directory loads; hierarchy.json's node flags decide", "[world][files]") {
  // 6 features in 2 dims: root 0 with ME children 1, 2 (scale flag set on node 0); root 3 with
  // children 4, 5 neither ME nor scaled. The config's hierarchy block says the opposite on
  // purpose: the per-node flags must win, as in the reference.
  const auto dir = fresh_dir("synthsae_world_saelens");
  std::filesystem::create_directories(dir);
  io::write_json_file(dir / "synthetic_model_config.json", io::Json::parse(R"({
    "num_features": 6, "hidden_dim": 2,
    "firing_probability": {"generator_name": "constant", "probability": 0.9},
    "hierarchy": {"total_root_nodes": 2, "branching_factor": 2, "max_depth": 1,
                  "mutually_exclusive_portion": 0.0, "mutually_exclusive_min_depth": 0,
                  "mutually_exclusive_max_depth": null, "compensate_probabilities": false,
                  "scale_children_by_parent": false},
    "orthogonalization": null, "correlation": null,
    "std_firing_magnitudes": 0.0, "mean_firing_magnitudes": 2.0,
    "bias": false, "dtype": "float32", "seed": 5})"));
  io::write_json_file(dir / "hierarchy.json", io::Json::parse(R"({"roots": [
    {"feature_index": 0, "mutually_exclusive_children": true, "scale_children_by_parent": true, "feature_id": null,
     "children": [{"feature_index": 1, "mutually_exclusive_children": false, "scale_children_by_parent": false, "feature_id": null, "children": []},
                  {"feature_index": 2, "mutually_exclusive_children": false, "scale_children_by_parent": false, "feature_id": null, "children": []}]},
    {"feature_index": 3, "mutually_exclusive_children": false, "scale_children_by_parent": false, "feature_id": "f3",
     "children": [{"feature_index": 4, "mutually_exclusive_children": false, "scale_children_by_parent": false, "feature_id": null, "children": []},
                  {"feature_index": 5, "mutually_exclusive_children": false, "scale_children_by_parent": false, "feature_id": null, "children": []}]}]})"));
  io::SafetensorsFile w;
  w.tensors["feature_vectors"] =
      io::make_tensor<float>(io::Dtype::F32, {6, 2}, std::vector<float>{1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1});
  w.tensors["bias"] = io::make_tensor<float>(io::Dtype::F32, {2}, std::vector<float>{0, 0});
  w.tensors["firing_probabilities"] = io::make_tensor<float>(io::Dtype::F32, {6}, std::vector<float>(6, 0.9f));
  io::write_safetensors(dir / "synthetic_model.safetensors", w);

  SyntheticModel m = saelens::load_synthetic_model(dir);
  SparseBatch<float> sb;
  const int batch = 4000;
  m.sample_features_at(sb, 0, batch);
  auto ids = Kokkos::create_mirror_view_and_copy(HostSpace(), sb.ids);
  auto vals = Kokkos::create_mirror_view_and_copy(HostSpace(), sb.values);
  auto counts = Kokkos::create_mirror_view_and_copy(HostSpace(), sb.counts);
  int both_12 = 0, both_45 = 0, wrong_scale = 0, unscaled_45 = 0;
  for (int b = 0; b < batch; ++b) {
    float v[6] = {0, 0, 0, 0, 0, 0};
    for (int k = 0; k < counts(b); ++k) v[ids(b, k)] = vals(b, k);
    both_12 += v[1] > 0 && v[2] > 0;
    both_45 += v[4] > 0 && v[5] > 0;
    // magnitude is exactly 2 (std 0), so a scaled child of an active parent is 2 * (2 / 2) = 2:
    for (int c : {1, 2}) wrong_scale += v[c] > 0 && v[c] != 2.0f * (v[0] / 2.0f);
    unscaled_45 += (v[4] == 2.0f) + (v[5] == 2.0f);
  }
  CHECK(both_12 == 0);  // ME from the node flag
  // Children 4, 5 are independent given root 3: both fire in about 0.9^3 = 73 % of samples.
  CHECK(both_45 > batch / 2);
  CHECK(wrong_scale == 0);
  CHECK(unscaled_45 > batch);
  CHECK(m.hierarchy().nodes[m.hierarchy().roots[1]].feature_id == std::optional<std::string>("f3"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("malformed model directories are clear errors", "[world][files]") {
  SyntheticModel model(preset("tiny"));
  const auto dir = fresh_dir("synthsae_world_bad");
  saelens::save_synthetic_model(model, dir);
  CHECK_THROWS_AS(saelens::load_synthetic_model(dir / "missing"), IoError);
  {  // feature_vectors with the wrong shape for the config
    auto cfg = io::read_json_file(dir / "synthetic_model_config.json");
    cfg["hidden_dim"] = 33;
    io::write_json_file(dir / "synthetic_model_config.json", cfg);
    CHECK_THROWS_WITH(saelens::load_synthetic_model(dir),
                      Catch::Contains("feature_vectors") && Catch::Contains("[256, 33]"));
    cfg["hidden_dim"] = 32;
    cfg["seed"] = "x";
    io::write_json_file(dir / "synthetic_model_config.json", cfg);
    CHECK_THROWS_WITH(saelens::load_synthetic_model(dir),
                      Catch::Contains("synthetic_model_config.json") && Catch::Contains("seed"));
    cfg["seed"] = 42;
    io::write_json_file(dir / "synthetic_model_config.json", cfg);
  }
  {  // truncated weights
    auto bytes = io::read_file_bytes(dir / "synthetic_model.safetensors");
    std::ofstream(dir / "synthetic_model.safetensors", std::ios::binary).write(bytes.data(), bytes.size() / 2);
    CHECK_THROWS_AS(saelens::load_synthetic_model(dir), FormatError);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("a directory missing the hierarchy or the correlation its config asks for regenerates them, and says so",
          "[world][files]") {
  SyntheticModelConfig cfg = preset("tiny");
  cfg.correlation = LowRankCorrelation{3, 0.1, std::nullopt};
  SyntheticModel model(cfg);
  REQUIRE(!model.hierarchy().empty());
  REQUIRE(model.correlation());
  const auto dir = fresh_dir("synthsae_world_incomplete");
  saelens::save_synthetic_model(model, dir);
  // Drop hierarchy.json and the two correlation tensors, as an incomplete download would.
  std::filesystem::remove(dir / "hierarchy.json");
  auto weights = io::read_safetensors(dir / "synthetic_model.safetensors");
  weights.tensors.erase("correlation_factor");
  weights.tensors.erase("correlation_diag");
  io::write_safetensors(dir / "synthetic_model.safetensors", weights);
  std::vector<std::string> notes;
  SyntheticModel back = saelens::load_synthetic_model(dir, [&](const std::string& m) { notes.push_back(m); });
  REQUIRE(notes.size() == 2);
  CHECK_THAT(notes[0], Catch::Contains("hierarchy.json is missing") && Catch::Contains("regenerated"));
  CHECK_THAT(notes[1], Catch::Contains("correlation") && Catch::Contains("regenerated"));
  // The same config seed and offsets as the construction: the very same structure comes back.
  CHECK(forest_to_json(back.hierarchy()) == forest_to_json(model.hierarchy()));
  REQUIRE(back.correlation());
  CHECK(back.correlation()->factor == model.correlation()->factor);
  CHECK(back.correlation()->diag == model.correlation()->diag);
  CHECK(hidden_of(back, 500, 100) == hidden_of(model, 500, 100));
  // A complete directory loads without a note.
  notes.clear();
  saelens::save_synthetic_model(model, dir);
  saelens::load_synthetic_model(dir, [&](const std::string& m) { notes.push_back(m); });
  CHECK(notes.empty());
}
