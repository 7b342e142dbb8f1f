// The architecture list (synthsae/architectures.hpp): names, knobs and recipes as published, the
// docs table generated from the list, and the unpublished example architecture (topk_l1) added
// through exactly the path CONTRIBUTING.md describes: it trains, saves and loads like the others.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "synthsae/architectures.hpp"
#include "synthsae/world/synthetic_model.hpp"

using namespace synthsae;

TEST_CASE("the architecture list holds the published architectures and the example, each once", "[architectures]") {
  const std::vector<std::string_view> expected = {"standard", "topk",  "abstopk",          "batchtopk", "matryoshka_batchtopk",
                                                  "jumprelu", "gated", "matching_pursuit", "topk_l1"};
  CHECK(architectures::names() == expected);
  CHECK(architectures::knobs_of("standard").l1);
  CHECK(architectures::knobs_of("jumprelu").target_l0);
  CHECK_FALSE(architectures::knobs_of("jumprelu").l1);
  CHECK_FALSE(architectures::knobs_of("topk").target_l0);
  CHECK(architectures::knobs_of("topk_l1").k);
  CHECK(architectures::knobs_of("topk_l1").l1);
  CHECK(architectures::names_with([](auto k) { return k.target_l0; }) == "standard, jumprelu, gated");
  int visited = 0;
  CHECK_FALSE(architectures::visit("crosscoder", [&](auto) { ++visited; }));
  CHECK(visited == 0);
}

TEST_CASE("docs/architectures.md shows the table generated from the list", "[architectures][docs]") {
  std::ifstream in(std::filesystem::path(SYNTHSAE_SOURCE_DIR) / "docs" / "architectures.md");
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  CHECK_THAT(text.str(), Catch::Contains(architectures::markdown_table()));
}

TEST_CASE("recipes: the settings the README's numbers were trained with", "[architectures][recipes]") {
  // 300,000 samples at 1,024 = 292 steps: the dead window scales to 292 / 20 = 14 (not 1,000).
  const TrainerConfig base = recipes::trainer_config(300'000, 1024, 1e-3);
  CHECK(base.total_steps() == 292);
  CHECK(base.dead_feature_window == 14);
  CHECK(recipes::trainer_config(1024 * 200'000, 1024, 1e-3).dead_feature_window == 1000);
  CHECK(recipes::autotune_gain(195312) == Approx(3e-4));
  CHECK(recipes::autotune_smoothing(195312) == Approx(0.99));

  architectures::Request r;
  r.d_in = 16, r.width = 64, r.k = 4, r.total_steps = 300, r.target_l0 = 6;
  TrainerConfig cfg = base;
  architectures::Standard::configure(cfg, r);
  CHECK(cfg.coefficient_warm_up_steps == 100);
  REQUIRE(cfg.autotune);
  CHECK(cfg.autotune->start_step == 100);
  CHECK(cfg.autotune->target_l0 == 6);
  CHECK(architectures::Standard::make(r).penalty().coefficient == 2.0);

  cfg = base;
  architectures::JumpRelu::configure(cfg, r);
  CHECK(cfg.normalization == InputNormalization::expected_average_only_in);
  CHECK(cfg.norm_estimate_batches == 1000);
  CHECK(cfg.autotune->start_step == 0);
  const auto jump = architectures::JumpRelu::make(r);
  CHECK(jump.activation().bandwidth == 1.0);
  CHECK(jump.activation().init_threshold == 1.0);
  CHECK(jump.penalty().bandwidth == 1.0);  // bound from the activation: one source

  // Matryoshka levels at width/32, /8, /2, shared by the nesting and its aux loss.
  const auto mat = architectures::MatryoshkaBatchTopK::make(r);
  CHECK(mat.nesting().widths == std::vector<int>{2, 8, 32});
  CHECK(mat.aux().widths == mat.nesting().widths);
  io::Json runner = io::Json::object();
  architectures::MatryoshkaBatchTopK::describe(runner, r);
  CHECK(runner["use_matryoshka_aux_loss"] == true);
  CHECK(architectures::MatchingPursuit::make(r).pursuit().max_iterations == 4);
}

TEST_CASE("the example architecture topk_l1 trains with its L1 term, saves as topk and loads back",
          "[architectures][files]") {
  SyntheticModelConfig c;
  c.num_features = 48;
  c.hidden_dim = 16;
  c.firing_probability = ConstantFiring{0.08};
  c.seed = 5;
  SyntheticModel world(c);
  architectures::Request r;
  r.d_in = 16, r.width = 32, r.k = 3, r.total_steps = 20, r.seed = 2;
  auto sae = architectures::TopKL1::make(r);
  CHECK(sae.penalty().coefficient == 0.05);
  TrainerConfig cfg = recipes::trainer_config(64 * 20, 64, 1e-3);
  architectures::TopKL1::configure(cfg, r);
  Trainer trainer(sae, world, cfg);
  const StepInfo last = trainer.fit();
  CHECK(last.losses.penalty > 0);  // the L1 term acts (a plain TopK has none)
  CHECK(last.l0 <= 3.0);

  const auto dir = std::filesystem::temp_directory_path() / "synthsae_topk_l1";
  std::filesystem::remove_all(dir);
  saelens::save_sae(export_inference(sae), dir);
  const InferenceSae loaded = architectures::load_as<architectures::TopKL1>(dir);
  CHECK(loaded.architecture() == "topk");
  CHECK(loaded.as<inference::TopKForm>().k == 3);
  CHECK_THROWS_WITH(architectures::load_as<architectures::Gated>(dir),
                    Catch::Contains("topk") && Catch::Contains("gated"));
  std::filesystem::remove_all(dir);
}
