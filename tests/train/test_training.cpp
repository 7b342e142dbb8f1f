// Optimiser, schedules, autotuner, checkpoint resumption, and training quality on small worlds.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "synthsae/core/counter_rng.hpp"
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

TEST_CASE("Adam: the eight-lane host update and the gradient norm against float64 by element", "[train][adam]") {
  // 1,027 elements: 128 eight-lane blocks (the AVX form where the build has AVX) and a scalar
  // tail of 3. Every element is checked against the update in float64 from the same float
  // inputs; a float evaluation differs from it by a few roundings (relative 1e-6 is ~8 ulp), while
  // a lane mixed up or an operation out of order is off by the size of the values.
  constexpr int n = 1027;
  RandomStream rng(5, 0);
  std::vector<float> p(n), g(n), m(n), v(n);
  for (int i = 0; i < n; ++i) {
    p[i] = rng.normal<float>(), g[i] = rng.normal<float>(), m[i] = 0.1f * rng.normal<float>();
    v[i] = 0.01f * std::abs(rng.normal<float>()) + 1e-6f;
  }
  const std::vector<float> p0 = p, m0 = m, v0 = v;
  const float scale = 0.7f, b1 = 0.9f, b2 = 0.999f, step = 1e-3f / 0.1f, sqrt_bias2 = 0.0447f, eps = 1e-8f;
  Adam<float>::adam_update(p.data(), g.data(), m.data(), v.data(), n, scale, b1, b2, step, sqrt_bias2, eps);
  for (int i = 0; i < n; ++i) {
    const double gi = double(g[i]) * scale;
    const double mi = double(b1) * m0[i] + (1.0 - double(b1)) * gi;
    const double vi = double(b2) * v0[i] + (1.0 - double(b2)) * gi * gi;
    const double denom = std::sqrt(vi) / double(sqrt_bias2) + double(eps), delta = double(step) * mi / denom;
    // m's two terms may cancel: its rounding is relative to their magnitudes, not to m.
    const double m_terms = std::abs(double(b1) * m0[i]) + std::abs((1.0 - double(b1)) * gi);
    INFO("element " << i);
    REQUIRE(std::abs(m[i] - mi) <= 1e-6 * m_terms);
    REQUIRE(v[i] == Approx(vi).epsilon(1e-6));
    // p - delta loses delta's accuracy to p's rounding (half an ulp of p, below 5e-7 here).
    REQUIRE(std::abs((double(p0[i]) - double(p[i])) - delta) <= 1e-5 * double(step) * m_terms / denom + 5e-7);
  }

  // gradient_norm: sixteen float64 sums per block of 1,024 and a fixed tree; on 300 x 7
  // parameters (2 x 2,100 + 300 + 7, none a multiple of 16) it equals the float64 sum to rounding.
  SaeParameters<float> grads = initial_parameters<float>(7, 300, 0.1, 3);
  Kokkos::deep_copy(grads.b_enc, 0.3f), Kokkos::deep_copy(grads.b_dec, -0.7f);  // the biases count too
  double total = 0;
  grads.for_each_flat([&](const std::string&, const Vector<float>& x) {
    auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), x);
    for (std::size_t i = 0; i < h.extent(0); ++i) total += double(h(i)) * double(h(i));
  });
  REQUIRE(total > 0);
  CHECK(Adam<float>::gradient_norm(grads) == Approx(std::sqrt(total)).epsilon(1e-12));
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
  // Warm restarts, 4 cycles of 25 steps: torch's CosineAnnealingWarmRestarts(T_0 = 25,
  // eta_min = 0.1) printed 1.0 at steps 0, 25, 50 and 0.5782557337881911 at steps 12 and 37
  // (its values agree with the closed form to 1e-16 over 60 steps).
  LrSchedule r{LrSchedule::Kind::cosine_warm_restarts, 1.0, 0.1, 0, 0, 100, 4};
  r.validate();
  for (long t : {0L, 25L, 50L, 75L}) CHECK(r.at(t) == Approx(1.0).epsilon(1e-15));
  CHECK(r.at(12) == Approx(0.5782557337881911).epsilon(1e-14));
  CHECK(r.at(37) == Approx(0.5782557337881911).epsilon(1e-14));
  CHECK(r.at(24) < 0.11);  // the end of a cycle, just above lr_end
  CHECK(std::string(lr_scheduler_name(r.kind)) == "cosineannealingwarmrestarts");
  CHECK_THROWS_WITH((LrSchedule{LrSchedule::Kind::cosine_warm_restarts, 1.0, 0.1, 0, 0, 100, 0}.validate()),
                    Catch::Contains("n_restart_cycles"));
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

// Trains with the L0 autotuner aimed at `target`; returns the mean training-batch L0 over the last
// quarter of the run (what the controller regulates: 2,000 batches of 256, so its sampling error
// is far below the tolerance) and the evaluated L0 at the end (20,000 fresh samples), which also
// carries the controller's oscillation at the last step (about +-1 on this tiny world).
struct AutotuneResult {
  double late_mean_l0 = 0, final_eval_l0 = 0;
};
struct LateL0 {
  long from = 0;
  double sum = 0;
  long n = 0;
  template <class Tr>
  void on_step(const StepInfo& info, Tr&) {
    if (info.step > from) sum += info.l0, ++n;
  }
};
template <class SaeT>
AutotuneResult autotuned_l0(SaeT sae, double target, bool normalize) {
  SyntheticModel world(easy_world(64, 32, 0.1));  // true L0 ~ 6.4
  TrainerConfig cfg;
  cfg.batch_size = 256;
  cfg.training_samples = 256 * 8000;
  cfg.lr.lr = 3e-3;
  cfg.normalization = normalize ? InputNormalization::expected_average_only_in : InputNormalization::none;
  cfg.norm_estimate_batches = 20;
  cfg.autotune = L0AutotunerConfig{target, 0, 10, 0.02, 1e-2, 0};
  Trainer trainer(sae, world, cfg);
  LateL0 late{6000};
  trainer.fit(late);
  const io::Json r = evaluate_all(sae, world, EvalOptions{20000, 1000});
  return {late.sum / double(late.n), r["sae_l0"].template get<double>()};
}

}  // namespace

TEST_CASE("the L0 autotuner brings Standard, Gated and JumpReLU within 10 % of a target L0", "[train][autotune]") {
  const double target = 4.0;
  auto check = [&](const AutotuneResult& r) {
    CHECK(r.late_mean_l0 == Approx(target).epsilon(0.10));
    CHECK(r.final_eval_l0 == Approx(target).epsilon(0.35));
  };
  check(autotuned_l0(StandardSae<>(32, 64, Relu{}, L1Penalty{1.0}, {}, {}, 0.1, 1), target, false));
  check(autotuned_l0(GatedSae<>(32, 64, L1Penalty{1.0}, 0.1, 2), target, false));
  for (auto param : {ThresholdParameterisation::direct, ThresholdParameterisation::log}) {
    INFO("log threshold: " << (param == ThresholdParameterisation::log));
    const JumpRelu act{.init_threshold = 1.0, .bandwidth = 1.0, .parameterisation = param};
    check(autotuned_l0(JumpReluSae<>(32, 64, act, L0StepPenalty{1.0, 1.0}, {}, {}, 0.5, 3), target, true));
  }
}

#include "synthsae/sae/inference/export.hpp"
#include "synthsae/sae/matching_pursuit_sae.hpp"

namespace {

Matrix<float> random_rows(int rows, int d, std::uint64_t seed, float scale) {
  Matrix<float> x("x", rows, d);
  auto h = Kokkos::create_mirror_view(x);
  RandomStream s(seed, 1);
  for (int i = 0; i < rows; ++i)
    for (int k = 0; k < d; ++k) h(i, k) = scale * s.normal<float>();
  Kokkos::deep_copy(x, h);
  return x;
}

template <class F>
std::vector<float> host_of(const Matrix<float>& m, F&& f) {
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), m);
  std::vector<float> v(h.data(), h.data() + h.size());
  for (auto& e : v) e = f(e);
  return v;
}

/// Worst |a - b| / (|b| + 1) over the entries, and whether both are zero at the same places.
std::pair<double, bool> compare(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  bool same_support = a.size() == b.size();
  for (std::size_t i = 0; i < a.size() && same_support; ++i) {
    worst = std::max(worst, std::fabs(double(a[i]) - b[i]) / (std::fabs(double(b[i])) + 1.0));
    same_support = (a[i] == 0) == (b[i] == 0);
  }
  return {worst, same_support};
}

}  // namespace

TEST_CASE("folding the input scale: BatchTopK's threshold and Matching Pursuit follow SAELens", "[train][fold]") {
  const int d = 16, s_latents = 64, rows = 32;
  const double s = 3.7;
  const auto x = random_rows(rows, d, 1, 1.0f);
  Matrix<float> xs("xs", rows, d);
  Kokkos::deep_copy(xs, x);
  scale_entries(xs, static_cast<float>(s));
  Matrix<float> z1("z1", rows, s_latents), z2("z2", rows, s_latents);

  // BatchTopK exported as JumpReLU: its threshold is on decoder-norm-scaled activations, which
  // shrink by s with W_dec; after the fold the raw input gives the same support and z / s.
  BatchTopKSae<> btk(d, s_latents, BatchTopK{4, true}, {}, AuxK{}, {}, 0.5, 2);
  btk.activation_state().threshold = 0.3;  // in training-space units
  InferenceSae before = export_inference(btk);
  before.encode(xs, z1);
  btk.fold_input_scale(s);
  CHECK(btk.activation_state().threshold == Approx(0.3 / s).epsilon(1e-15));
  InferenceSae after = export_inference(btk);
  after.encode(x, z2);
  const auto [btk_err, btk_support] =
      compare(host_of(z2, [](float v) { return v; }), host_of(z1, [&](float v) { return float(v / s); }));
  CHECK(btk_support);
  CHECK(btk_err < 1e-5);
  std::size_t fired = 0;
  for (float v : host_of(z2, [](float v) { return v; })) fired += v != 0;
  CHECK(fired > 0);  // the threshold selects: neither nothing nor everything
  CHECK(fired < std::size_t(rows * s_latents));

  // Matching Pursuit: the tied decoder stays, b_dec and the residual threshold shrink by s;
  // the reconstruction of x is that of s x divided by s, with the same selections.
  MatchingPursuitSae<> mp(d, s_latents, MatchingPursuit{6, 1.5, true}, 3);
  auto b_dec = Kokkos::create_mirror_view(mp.parameters().b_dec);
  for (int k = 0; k < d; ++k) b_dec(k) = 0.1f * float(k % 3);
  Kokkos::deep_copy(mp.parameters().b_dec, b_dec);
  const auto w_dec_before = host_of(mp.parameters().w_dec, [](float v) { return v; });
  Matrix<float> xh1("xh1", rows, d), xh2("xh2", rows, d);
  mp.encode(xs, z1);
  mp.decode(z1, xh1);
  mp.fold_input_scale(s);
  CHECK(mp.pursuit().residual_threshold == Approx(1.5 / s).epsilon(1e-15));
  CHECK(host_of(mp.parameters().w_dec, [](float v) { return v; }) == w_dec_before);
  mp.encode(x, z2);
  mp.decode(z2, xh2);
  const auto [mp_z_err, mp_support] =
      compare(host_of(z2, [](float v) { return v; }), host_of(z1, [&](float v) { return float(v / s); }));
  CHECK(mp_support);
  CHECK(mp_z_err < 1e-5);
  const double mp_x_err =
      compare(host_of(xh2, [](float v) { return v; }), host_of(xh1, [&](float v) { return float(v / s); })).first;
  CHECK(mp_x_err < 1e-5);
}

TEST_CASE("a periodic evaluation of an unfolded SAE (input_scale) equals the final one after the fold", "[train][fold]") {
  SyntheticModel world(easy_world(64, 32, 0.1));
  const double s = 2.5;
  // Non-zero biases: without them an SAE at initialisation is scale-equivariant and the control
  // at the end could not tell the scales apart.
  auto with_biases = [](BatchTopKSae<>& sae) {
    Kokkos::deep_copy(sae.parameters().b_dec, 0.3f);
    Kokkos::deep_copy(sae.parameters().b_enc, -0.05f);
  };
  BatchTopKSae<> btk(32, 64, BatchTopK{5, true}, {}, AuxK{}, {}, 0.5, 4);
  with_biases(btk);
  EvalOptions periodic{20000, 1000};
  periodic.input_scale = s;
  const io::Json unfolded = evaluate_all(btk, world, periodic);
  btk.fold_input_scale(s);
  const io::Json folded = evaluate_all(btk, world, EvalOptions{20000, 1000});
  // The two paths round differently in float32 (scale in and out vs folded weights): ~1e-6
  // relative on the residual, which EV = 1 - residual / total near 0.1 turns into ~2e-6 absolute
  // (seen with FMA code). A missing or doubled scale moves these metrics by far more than 1e-5.
  for (const char* key : {"sae_l0", "explained_variance", "shrinkage", "mcc", "uniqueness", "dead_latents"}) {
    INFO(key);
    CHECK(unfolded[key].get<double>() == Approx(folded[key].get<double>()).epsilon(1e-5).margin(1e-5));
  }
  // Without the scale the same unfolded SAE sees inputs s times too small: a different result,
  // which is what the periodic rows of metrics.csv showed before.
  BatchTopKSae<> raw(32, 64, BatchTopK{5, true}, {}, AuxK{}, {}, 0.5, 4);
  with_biases(raw);
  const io::Json unscaled = evaluate_all(raw, world, EvalOptions{20000, 1000});
  CHECK(std::fabs(unscaled["explained_variance"].get<double>() - folded["explained_variance"].get<double>()) > 1e-3);
}

TEST_CASE("firing frequencies of the last sampling window, as SAELens's sparsity.safetensors holds them",
          "[train][sparsity]") {
  // 25 steps, windows of 10: the counts restart before steps 10 and 20, so the last window is the
  // partial one of steps 20..24. A callback recounts it from the SAE's activations.
  SyntheticModel world(easy_world(64, 32, 0.1));
  TopKSae<> sae(32, 48, TopK{3, true}, {}, AuxK{}, {}, 0.5, 6);
  TrainerConfig cfg;
  cfg.batch_size = 128;
  cfg.training_samples = 128 * 25;
  cfg.feature_sampling_window = 10;
  cfg.lr.lr = 1e-3;
  Trainer trainer(sae, world, cfg);
  struct Recount {
    TopKSae<>& sae;
    std::vector<double> fired = std::vector<double>(48, 0.0);
    double samples = 0;
    void on_step(const StepInfo& info, Trainer<TopKSae<>>&) {
      if (info.step <= 20) return;  // info.step counts completed steps: 21..25 are steps 20..24
      auto z = Kokkos::create_mirror_view_and_copy(HostSpace(), sae.last_activations());
      for (std::size_t i = 0; i < z.extent(0); ++i)
        for (std::size_t j = 0; j < z.extent(1); ++j) fired[j] += z(i, j) != 0.0f;
      samples += double(z.extent(0));
    }
  } recount{sae};
  trainer.fit(recount);
  const auto freq = trainer.feature_sparsity();
  const auto log_freq = trainer.log_feature_sparsity();
  REQUIRE(freq.size() == 48);
  CHECK(recount.samples == 5 * 128);
  double total = 0;
  for (std::size_t j = 0; j < 48; ++j) {
    CHECK(freq[j] == recount.fired[j] / recount.samples);
    CHECK(log_freq[j] == Approx(std::log10(freq[j] + 1e-10)).epsilon(1e-6));
    total += freq[j];
  }
  CHECK(total == Approx(3.0).epsilon(1e-12));  // TopK: k = 3 latents per sample
  CHECK_THROWS_WITH([&] {
    TrainerConfig bad = cfg;
    bad.feature_sampling_window = 0;
    TopKSae<> other(32, 48, TopK{3, true}, {}, AuxK{}, {}, 0.5, 6);
    Trainer t(other, world, bad);
  }(), Catch::Contains("feature_sampling_window"));
}

#include "synthsae/sae/init_from_features.hpp"

TEST_CASE("init_sae_to_match_features: decoder = the true features (MCC 1), W_dec = W_enc^T, noise and order",
          "[train][init]") {
  SyntheticModel world(easy_world(64, 32, 0.1));
  // d_sae 48 < 64 features: latent j is feature j, so every latent's best match has |cos| 1.
  StandardSae<> sae(32, 48, Relu{}, L1Penalty{1.0}, {}, {}, 0.1, 1);
  init_sae_to_match_features(sae.parameters(), world.feature_vectors());
  auto dec = Kokkos::create_mirror_view_and_copy(HostSpace(), sae.parameters().w_dec);
  auto enc = Kokkos::create_mirror_view_and_copy(HostSpace(), sae.parameters().w_enc);
  auto f = Kokkos::create_mirror_view_and_copy(HostSpace(), world.feature_vectors());
  for (int j = 0; j < 48; ++j)
    for (int k = 0; k < 32; ++k) {
      CHECK(dec(j, k) == f(j, k));
      CHECK(enc(k, j) == dec(j, k));
    }
  const io::Json r = evaluate_all(sae, world, EvalOptions{2000, 1000});
  // MCC averages the 48 matched pairs, each |cos| = 1 up to float rounding of unit rows.
  CHECK(r["mcc"].get<double>() == Approx(1.0).margin(1e-6));
  CHECK(r["uniqueness"].get<double>() == 1.0);
  // A permutation puts feature order[j] in latent j; noise moves it by about noise_level.
  std::vector<std::int64_t> order(64);
  for (int i = 0; i < 64; ++i) order[i] = 63 - i;
  init_sae_to_match_features(sae.parameters(), world.feature_vectors(), 0.01, order, 5);
  dec = Kokkos::create_mirror_view_and_copy(HostSpace(), sae.parameters().w_dec);
  double sq = 0;
  for (int j = 0; j < 48; ++j)
    for (int k = 0; k < 32; ++k) sq += (dec(j, k) - f(63 - j, k)) * (dec(j, k) - f(63 - j, k));
  // The mean squared deviation of 1,536 N(0, 0.01^2) draws: 1e-4 within 5 standard errors (sqrt(2/1536)).
  CHECK(sq / 1536 == Approx(1e-4).epsilon(5 * std::sqrt(2.0 / 1536)));
  CHECK_THROWS_WITH(init_sae_to_match_features(sae.parameters(), world.feature_vectors(), 0.0, {1, 2}),
                    Catch::Contains("feature_ordering"));
}

TEST_CASE("metrics.csv: an evaluation that throws leaves no half row; the next row starts its own line",
          "[train][csv]") {
  const auto path = std::filesystem::temp_directory_path() / "synthsae_test_csv_throw.csv";
  CsvLog log;
  log.path = path;
  log.every_steps = 1;
  log.eval_every = 2;
  bool fail = true;
  log.evaluate = [&](const StepInfo&) -> io::Json {
    if (fail) throw IoError("eval", "fails once");
    return io::Json{{"mcc", 0.5}, {"uniqueness", 1.0}, {"explained_variance", 0.25},
                    {"classification", {{"f1_score", 0.75}}}, {"sae_l0", 8.0}};
  };
  int trainer = 0;  // CsvLog reads nothing of the trainer
  log.on_start(trainer);
  StepInfo i;
  i.total_steps = 10;
  i.step = 1;
  log.on_step(i, trainer);
  i.step = 2;
  CHECK_THROWS_AS(log.on_step(i, trainer), IoError);
  fail = false;
  log.on_step(i, trainer);  // the same step again, as a run fitted in pieces may
  i.step = 3;
  log.on_step(i, trainer);
  log.on_end(i, trainer);
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 4);  // header, steps 1, 2 (evaluated), 3
  const auto fields = [](const std::string& line) { return std::count(line.begin(), line.end(), ',') + 1; };
  for (const auto& line : lines) CHECK(fields(line) == fields(std::string(CsvLog::kHeader)));
  CHECK(lines[1].rfind("1,", 0) == 0);
  CHECK(lines[2].rfind("2,", 0) == 0);
  CHECK(lines[2].ends_with(",0.5,1,0.25,0.75,8"));
  CHECK(lines[3].rfind("3,", 0) == 0);
  std::filesystem::remove(path);
}
