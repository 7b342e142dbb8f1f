// Optimiser, schedules, autotuner, checkpoint resumption, and training quality on small worlds.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

#include "synthsae/metrics/evaluate.hpp"
#include "synthsae/sae/sae.hpp"
#include "synthsae/train/callbacks.hpp"
#include "synthsae/train/trainer.hpp"

using namespace synthsae;

namespace {

// Few nearly orthogonal features firing independently: what an SAE should recover exactly.
SyntheticModelConfig easy_world(int n, int d, double p) {
  SyntheticModelConfig c;
  c.num_features = n;
  c.hidden_dim = d;
  c.firing_probability = ConstantFiring{p};
  c.orthogonalization = OrthogonalizationConfig{200, 1e-2, 1024};
  c.mean_firing_magnitudes = ConstantMagnitude{1.0};
  c.std_firing_magnitudes = ConstantMagnitude{0.1};
  c.bias = BiasSpec{BiasSpec::Kind::none, 0};
  c.seed = 11;
  return c;
}

// Mean over true features of the best |cos| with any decoder row.
double recovery(const Matrix<float>& w_dec, const SyntheticModel& world) {
  const auto sim = decoder_similarity(w_dec, world.feature_vectors());
  double total = 0;
  for (std::size_t i = 0; i < sim.num_features; ++i) {
    double best = 0;
    for (std::size_t j = 0; j < sim.num_latents; ++j) best = std::max(best, sim.abs_cos[j * sim.num_features + i]);
    total += best;
  }
  return total / double(sim.num_features);
}

}  // namespace

TEST_CASE("Adam: one step by hand, clipping, non-finite gradients are skipped", "[train][adam]") {
  SaeParameters<float> p = initial_parameters<float>(2, 3, 0.1, 1);
  Kokkos::deep_copy(p.b_enc, 1.0f);
  SaeParameters<float> g = p.zeros_like();
  Kokkos::deep_copy(g.b_enc, 0.25f);  // |g| = sqrt(3) * 0.25 = 0.433 < 1: no clipping
  Adam<float> adam(p, AdamConfig{});
  REQUIRE(adam.step(p, g, 1e-3));
  // m = 0.1 g, v = 0.001 g^2; m_hat = g, v_hat = g^2: step = lr * g / (|g| + 1e-8) = lr.
  auto b = Kokkos::create_mirror_view_and_copy(HostSpace(), p.b_enc);
  CHECK(b(0) == Approx(1.0f - 1e-3f).epsilon(1e-6));
  // Clipping: |g| = 2 * sqrt(3) > 1 scales g by 1 / (2 sqrt 3 + 1e-6) before the moments.
  Kokkos::deep_copy(g.b_enc, 2.0f);
  adam.step(p, g, 1e-3);
  auto m = Kokkos::create_mirror_view_and_copy(HostSpace(), adam.first_moment().b_enc);
  const double clipped = 2.0 / (2.0 * std::sqrt(3.0) + 1e-6);
  CHECK(m(0) == Approx(0.9 * 0.1 * 0.25 + 0.1 * clipped).epsilon(1e-5));
  Kokkos::deep_copy(g.b_enc, std::nanf(""));
  CHECK_FALSE(adam.step(p, g, 1e-3));
  CHECK(adam.skipped() == 1);
  CHECK(adam.steps() == 2);
}

TEST_CASE("learning-rate schedules and coefficient warm-up", "[train][schedule]") {
  LrSchedule s{LrSchedule::Kind::constant, 1.0, -1, 4, 10, 100};
  s.validate();
  CHECK(s.at(0) == Approx(0.25));  // warm-up from 1/W
  CHECK(s.at(3) == Approx(1.0));   // ... to 1 at step W - 1
  CHECK(s.at(50) == 1.0);
  CHECK(s.at(90) == Approx(1.0));  // decay starts at T - D from lr (constant kind)
  CHECK(s.at(95) == Approx(0.5));
  LrSchedule c{LrSchedule::Kind::cosine, 1.0, 0.1, 0, 0, 100};
  CHECK(c.at(0) == Approx(1.0));
  CHECK(c.at(50) == Approx(0.55).margin(1e-9));  // halfway: (lr + lr_end) / 2
  CHECK_THROWS_WITH((LrSchedule{LrSchedule::Kind::constant, 1.0, -1, 60, 50, 100}.validate()),
                    Catch::Contains("exceeds"));
  CoefficientWarmUp w{2.0, 10};
  CHECK(w.at(0) == 0.0);
  CHECK(w.at(5) == Approx(1.0));
  CHECK(w.at(20) == 2.0);
}

TEST_CASE("the L0 autotuner raises the coefficient while L0 is above target", "[train][autotune]") {
  L0Autotuner a{L0AutotunerConfig{25, 0, 10, 3e-4, 1e-2, 0}};
  for (int t = 0; t < 1000; ++t) a.update(50, t);
  // e = 25 > 0 constant, rate -> 0 (not converging): m grows by 1 + 3e-4 tanh(10) per step.
  CHECK(a.multiplier == Approx(std::pow(1 + 3e-4 * std::tanh(10.0), 1000)).epsilon(1e-6));
  L0Autotuner b{L0AutotunerConfig{25, 0, 10, 3e-4, 1e-2, 0}};
  for (int t = 0; t < 100; ++t) b.update(5, t);
  CHECK(b.multiplier < 1.0);
}

TEST_CASE("BatchTopK and Matryoshka BatchTopK recover few orthogonal features", "[train][quality]") {
  SyntheticModel world(easy_world(32, 64, 0.06));  // L0 ~ 1.9
  TrainerConfig cfg;
  cfg.training_samples = 256 * 1500;
  cfg.batch_size = 256;
  cfg.lr.lr = 3e-3;
  {
    BatchTopKSae<> sae(64, 64, BatchTopK{2.0, true, 0.01}, {}, AuxK{}, {}, 0.1, 3);
    Trainer trainer(sae, world, cfg);
    trainer.fit();
    const double r = recovery(sae.decoder_weights(), world);
    INFO("BatchTopK recovery " << r);
    CHECK(r > 0.95);
    CHECK(sae.activation_state().threshold > 0);
  }
  {
    MatryoshkaBatchTopKSae<> sae(64, 64, BatchTopK{2.0, true, 0.01}, {}, AuxK{}, Matryoshka{{16, 32}}, 0.1, 4);
    Trainer trainer(sae, world, cfg);
    trainer.fit();
    const double r = recovery(sae.decoder_weights(), world);
    INFO("Matryoshka recovery " << r);
    CHECK(r > 0.95);
  }
}

TEST_CASE("a run resumed from a checkpoint matches an uninterrupted run bit for bit", "[train][checkpoint]") {
  SyntheticModel world_a(easy_world(32, 64, 0.06)), world_b(easy_world(32, 64, 0.06));
  TrainerConfig cfg;
  cfg.training_samples = 128 * 40;
  cfg.batch_size = 128;
  cfg.lr.lr = 1e-3;
  cfg.dead_feature_window = 5;  // dead latents (and AuxK) appear within the run
  BatchTopKSae<> straight(64, 48, BatchTopK{2.0, true, 0.01}, {}, AuxK{}, {}, 0.1, 5);
  Trainer ta(straight, world_a, cfg);
  ta.fit();

  const auto dir = std::filesystem::temp_directory_path() / "synthsae_resume_test";
  std::filesystem::remove_all(dir);
  {
    BatchTopKSae<> first(64, 48, BatchTopK{2.0, true, 0.01}, {}, AuxK{}, {}, 0.1, 5);
    Trainer tb(first, world_b, cfg);
    tb.fit_steps(17);
    tb.save_checkpoint(dir);
  }
  SyntheticModel world_c(easy_world(32, 64, 0.06));
  BatchTopKSae<> resumed(64, 48, BatchTopK{2.0, true, 0.01}, {}, AuxK{}, {}, 0.1, 99);  // other init: overwritten
  Trainer tc(resumed, world_c, cfg);
  tc.load_checkpoint(dir);
  CHECK(tc.step() == 17);
  tc.fit();
  CHECK(tc.step() == ta.step());
  std::size_t differ = 0;
  std::vector<Vector<float>> a, b;
  straight.parameters().for_each_flat([&](const std::string&, const Vector<float>& v) { a.push_back(v); });
  resumed.parameters().for_each_flat([&](const std::string&, const Vector<float>& v) { b.push_back(v); });
  for (std::size_t t = 0; t < a.size(); ++t) {
    auto ha = Kokkos::create_mirror_view_and_copy(HostSpace(), a[t]);
    auto hb = Kokkos::create_mirror_view_and_copy(HostSpace(), b[t]);
    for (std::size_t i = 0; i < ha.extent(0); ++i) differ += ha(i) != hb(i);
  }
  CHECK(differ == 0);
  CHECK(straight.activation_state().threshold == resumed.activation_state().threshold);
  std::filesystem::remove_all(dir);
}

#include "synthsae/sae/matching_pursuit_sae.hpp"

TEST_CASE("Matching Pursuit reconstructs better than BatchTopK at equal L0 in superposition", "[train][quality]") {
  // 256 features in 32 dimensions (strong superposition), L0 budget 4 for both.
  auto c = easy_world(256, 32, 0.012);
  c.orthogonalization.reset();
  SyntheticModel world(c);
  TrainerConfig cfg;
  cfg.training_samples = 256 * 600;
  cfg.batch_size = 256;
  cfg.lr.lr = 3e-3;
  MatchingPursuitSae<> mp(32, 64, MatchingPursuit{4, 0.0, false}, 1);
  Trainer(mp, world, cfg).fit();
  BatchTopKSae<> btk(32, 64, BatchTopK{4, true, 0.01}, {}, AuxK{}, {}, 0.1, 1);
  Trainer(btk, world, cfg).fit();
  EvalOptions eval{20000, 1000};
  const auto rm = evaluate_all(mp, world, eval), rb = evaluate_all(btk, world, eval);
  INFO("MP " << rm.dump() << "\nBatchTopK " << rb.dump());
  CHECK(rm["sae_l0"].get<double>() <= 4.0);
  CHECK(rm["explained_variance"].get<double>() > rb["explained_variance"].get<double>());
}

#include "synthsae/sae/gated_sae.hpp"

namespace {

// Trains with the L0 autotuner aimed at `target` and returns the evaluated L0 (20,000 fresh
// samples: its standard error, ~0.01, is far below the 10 % tolerance).
template <class SaeT>
double autotuned_l0(SaeT sae, double target, bool normalize) {
  SyntheticModel world(easy_world(64, 32, 0.1));  // true L0 ~ 6.4
  TrainerConfig cfg;
  cfg.batch_size = 256;
  cfg.training_samples = 256 * 8000;
  cfg.lr.lr = 3e-3;
  cfg.normalize_activations = normalize;
  cfg.norm_estimate_batches = 20;
  cfg.autotune = L0AutotunerConfig{target, 0, 10, 0.02, 1e-2, 0};
  Trainer trainer(sae, world, cfg);
  trainer.fit();
  const io::Json r = evaluate_all(sae, world, EvalOptions{20000, 1000});
  return r["sae_l0"].template get<double>();
}

}  // namespace

TEST_CASE("the L0 autotuner brings Standard, Gated and JumpReLU within 10 % of a target L0", "[train][autotune]") {
  const double target = 4.0;
  const double standard = autotuned_l0(StandardSae<>(32, 64, Relu{}, L1Penalty{1.0}, {}, {}, 0.1, 1), target, false);
  CHECK(standard == Approx(target).epsilon(0.10));
  const double gated = autotuned_l0(GatedSae<>(32, 64, L1Penalty{1.0}, 0.1, 2), target, false);
  CHECK(gated == Approx(target).epsilon(0.10));
  const double jump =
      autotuned_l0(JumpReluSae<>(32, 64, JumpRelu{1.0, 1.0}, L0StepPenalty{1.0, 1.0}, {}, {}, 0.5, 3), target, true);
  CHECK(jump == Approx(target).epsilon(0.10));
}
