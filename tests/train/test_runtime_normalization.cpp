// Training behind a per-row normalisation (normalize_activations = constant_norm_rescale or
// layer_norm): one step against SAELens's own step (tests/data/saelens/normalized_steps.json, made
// by scripts/saelens_fixtures.py --steps), finite differences of the mapped loss on every step
// path, and the trainer: what it evaluates is what the saved SAE computes, and the compositions
// that cannot map their loss back are refused by name.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "sae/sae_test_support.hpp"
#include "saelens/fixture_tensors.hpp"
#include "synthsae/io/json.hpp"
#include "synthsae/metrics/evaluate.hpp"
#include "synthsae/sae/inference/export.hpp"
#include "synthsae/sae/matching_pursuit_sae.hpp"
#include "synthsae/train/trainer.hpp"
#include "synthsae/world/presets.hpp"

using namespace synthsae;

namespace {

inference::ActivationNormalization mode_of(const std::string& key) {
  for (auto m : {inference::ActivationNormalization::constant_norm_rescale, inference::ActivationNormalization::layer_norm})
    if (key.find(inference::normalization_name(m)) != std::string::npos) return m;
  return inference::ActivationNormalization::none;
}

}  // namespace

TEST_CASE("a step behind constant_norm_rescale or layer_norm is SAELens's step: losses and every gradient",
          "[train][normalization][saelens]") {
  const auto fx = io::read_json_file(test::kSaelensData / "normalized_steps.json");
  const Matrix<float> x = test::fixture_rows(fx.at("x"));
  const std::size_t d = x.extent(1), s = 6;
  std::size_t cases = 0;
  for (const auto& [key, step] : fx.at("steps").items()) {
    const auto mode = mode_of(key);
    const auto& before = step.at("before");
    const auto& losses = step.at("losses");
    const auto& grads = step.at("grads");
    // Float on both sides, sums of at most d x s = 24 products of values of order 1 in another
    // order: 2e-6 relative to 1 + |value| is a few ulps, far below any missing factor a_i.
    auto check = [&](auto& sae, const std::string& penalty_key, const std::vector<std::string>& extras) {
      auto& p = sae.parameters();
      test::load_tensor(before, "W_dec", p.w_dec), test::load_tensor(before, "b_dec", p.b_dec);
      if (p.w_enc.size() != 0) test::load_tensor(before, "W_enc", p.w_enc), test::load_tensor(before, "b_enc", p.b_enc);
      for (const auto& e : extras) test::load_tensor(before, e, p.extra.at(e));
      SaeParameters<float> g = p.zeros_like();
      inference::RuntimeNormalization norm{mode};
      Matrix<float> x_norm;
      const StepLosses ours = norm.acts() ? normalized_forward_backward(sae, norm, x, x_norm, g) : sae.forward_backward(x, g);
      CHECK(ours.mse == Approx(losses.at("mse_loss").get<double>()).epsilon(2e-6));
      if (!penalty_key.empty()) CHECK(ours.penalty == Approx(losses.at(penalty_key).get<double>()).epsilon(2e-6));
      CHECK(ours.total() == Approx(step.at("loss").get<double>()).epsilon(2e-6));
      CHECK(test::worst_error(grads, "W_dec", g.w_dec) < 2e-6);
      CHECK(test::worst_error(grads, "b_dec", g.b_dec) < 2e-6);
      if (p.w_enc.size() != 0) {
        CHECK(test::worst_error(grads, "W_enc", g.w_enc) < 2e-6);
        CHECK(test::worst_error(grads, "b_enc", g.b_enc) < 2e-6);
      }
      for (const auto& e : extras) CHECK(test::worst_error(grads, e, g.extra.at(e)) < 2e-6);
    };
    if (key.rfind("standard", 0) == 0) {
      for (double density : {0.0, 1.0}) {  // the dense step, then the sparse products on the active entries
        INFO(key << ", sparse_step_max_density " << density);
        StandardSae<float> sae(d, s, Relu{}, L1Penalty{0.7}, {}, {}, 0.5, 0);
        sae.set_sparse_step_max_density(density);
        check(sae, "l1_loss", {});
        CHECK(sae.last_step_was_sparse() == (density == 1.0));
      }
    } else if (key.rfind("jumprelu", 0) == 0) {
      INFO(key);
      JumpReluSae<float> sae(d, s, JumpRelu{.init_threshold = 0.4, .bandwidth = 1.0}, L0StepPenalty{0.3}, {}, {}, 0.5, 0);
      check(sae, "l0_loss", {"threshold"});
    } else {
      INFO(key);
      MatchingPursuitSae<float> sae(d, s, MatchingPursuit{3, 1e-2, true}, 0);
      check(sae, "", {});
    }
    ++cases;
  }
  CHECK(cases == 9);
}

TEST_CASE("the mapped MSE: its value by hand and finite differences on every step path", "[train][normalization]") {
  const int rows = 6, d = 5, s = 12;
  const Matrix<double> x = test::random_input(rows, d, 41);       // what the SAE sees
  const Matrix<double> target = test::random_input(rows, d, 42);  // the raw rows it is compared with
  Vector<double> scale("a", rows), shift("m", rows);
  {
    auto ha = Kokkos::create_mirror_view(scale);
    auto hm = Kokkos::create_mirror_view(shift);
    for (int i = 0; i < rows; ++i) ha(i) = 0.5 + 0.3 * i, hm(i) = 0.2 * i - 0.4;
    Kokkos::deep_copy(scale, ha), Kokkos::deep_copy(shift, hm);
  }
  const OutputMap<double> map{target, scale, shift};
  // The value: mean over rows of |x_hat a_i + m_i - target_i|^2, from the step's own x_hat.
  auto by_hand = [&](const Matrix<double>& x_hat) {
    auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), x_hat);
    auto t = Kokkos::create_mirror_view_and_copy(HostSpace(), target);
    double sum = 0;
    for (int i = 0; i < rows; ++i)
      for (int k = 0; k < d; ++k) {
        const double diff = h(i, k) * (0.5 + 0.3 * i) + (0.2 * i - 0.4) - t(i, k);
        sum += diff * diff;
      }
    return sum / rows;
  };
  const std::vector<std::string> all{"w_enc", "b_enc", "w_dec", "b_dec"};
  for (double density : {0.0, 1.0}) {
    INFO("standard, sparse_step_max_density " << density);
    StandardSae<double> sae(d, s, Relu{}, L1Penalty{0.3}, {}, {}, 0.5, 1);
    test::scramble(sae, 1);
    sae.set_sparse_step_max_density(density);
    sae.set_output_map(map);
    SaeParameters<double> g = sae.parameters().zeros_like();
    const StepLosses l = sae.forward_backward(x, g);
    CHECK(l.mse == Approx(by_hand(sae.last_reconstruction())).epsilon(1e-12));
    CHECK(test::worst_gradient_error(sae, x, all) < 1e-6);
    sae.set_output_map({});  // the plain MSE again: a different value
    CHECK(sae.loss(x).mse != Approx(l.mse).epsilon(1e-3));
  }
  {
    INFO("jumprelu");
    JumpReluSae<double> sae(d, s, JumpRelu{.init_threshold = 0.05, .bandwidth = 1.0}, L0StepPenalty{1.0, 1.0}, {}, {},
                            0.5, 2);
    test::scramble(sae, 2);
    sae.set_output_map(map);
    CHECK(test::worst_gradient_error(sae, x, all) < 1e-6);
  }
  {
    INFO("matching pursuit");
    MatchingPursuitSae<double> sae(d, s, MatchingPursuit{3, 0.0, false}, 3);
    test::scramble(sae, 3);
    sae.set_output_map(map);
    SaeParameters<double> g = sae.parameters().zeros_like();
    const StepLosses l = sae.forward_backward(x, g);
    CHECK(l.mse == Approx(by_hand(sae.last_reconstruction())).epsilon(1e-12));
    CHECK(test::worst_gradient_error(sae, x, {"w_dec", "b_dec"}) < 1e-6);
  }
}

TEST_CASE("training behind layer_norm: the trainer's evaluation is the saved SAE's; refused compositions",
          "[train][normalization]") {
  SyntheticModel world(preset("tiny"));
  TrainerConfig cfg;
  cfg.batch_size = 256;
  cfg.training_samples = 256 * 200;
  cfg.lr.lr = 3e-3;
  for (auto mode : {InputNormalization::layer_norm, InputNormalization::constant_norm_rescale}) {
    INFO(saelens_name(mode));
    cfg.normalization = mode;
    StandardSae<float> sae(world.hidden_dim(), 64, Relu{}, L1Penalty{0.5}, {}, {}, 0.1, 7);
    Trainer trainer(sae, world, cfg);
    trainer.fit();
    CHECK(trainer.row_normalization() == mode);
    // The trainer's view (rows normalised around the training SAE) and the saved SAE's own
    // (cfg.json's mode applied inside encode/decode) are the same arithmetic: equal metrics.
    EvalOptions around{4096, 512};
    around.row_normalization = trainer.row_normalization();
    const auto trained = evaluate_all(sae, world, around);
    InferenceSae saved = export_inference(sae);
    saved.normalization.mode = trainer.row_normalization();
    const auto loaded = evaluate_all(saved, world, EvalOptions{4096, 512});
    CHECK(loaded["sae_l0"].get<double>() == Approx(trained["sae_l0"].get<double>()).epsilon(1e-9));
    CHECK(loaded["explained_variance"].get<double>() == Approx(trained["explained_variance"].get<double>()).epsilon(1e-9));
    CHECK(trained["explained_variance"].get<double>() > 0.3);  // it has learned something
    // Without the normalisation around it the same weights give other reconstructions (here
    // 0.91 and 0.93 against 0.95): the evaluation really applied it.
    const auto bare = evaluate_all(sae, world, EvalOptions{4096, 512});
    INFO("explained variance bare " << bare["explained_variance"] << ", normalised " << trained["explained_variance"]);
    CHECK(std::fabs(bare["explained_variance"].get<double>() - trained["explained_variance"].get<double>()) > 5e-3);
  }
  cfg.normalization = InputNormalization::layer_norm;
  TopKSae<float> topk(world.hidden_dim(), 64, TopK{4, true}, {}, AuxK{1.0}, {}, 0.5, 1);
  CHECK_THROWS_WITH(Trainer(topk, world, cfg), Catch::Contains("normalize_activations") && Catch::Contains("layer_norm"));
  GatedSae<float> gated(world.hidden_dim(), 64, L1Penalty{0.5}, 0.5, 2);
  CHECK_THROWS_WITH(Trainer(gated, world, cfg), Catch::Contains("Gated"));
  // TopK without AuxK compares nothing else with the input: it trains.
  Sae<TopK, NoPenalty, NoAux, NoNesting, float> plain(world.hidden_dim(), 64, TopK{4, true}, {}, {}, {}, 0.5, 3);
  CHECK_NOTHROW(Trainer(plain, world, cfg));
}
