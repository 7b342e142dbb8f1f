// Ground-truth metrics against the reference's expectations (§6), hand-computed confusion
// counts, two-pass float64 recomputations, and an end-to-end evaluation of an oracle SAE.
#include <catch2/catch.hpp>

#include <cmath>
#include <numeric>
#include <vector>

#include "synthsae/core/counter_rng.hpp"
#include "synthsae/metrics/evaluate.hpp"
#include "synthsae/world/feature_dictionary.hpp"

using namespace synthsae;

namespace {

Matrix<float> from_rows(const std::vector<std::vector<float>>& rows) {
  Matrix<float> m("m", rows.size(), rows[0].size());
  auto h = Kokkos::create_mirror_view(m);
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t j = 0; j < rows[0].size(); ++j) h(i, j) = rows[i][j];
  Kokkos::deep_copy(m, h);
  return m;
}

std::vector<std::vector<float>> host_rows(const Matrix<float>& m) {
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), m);
  std::vector<std::vector<float>> rows(m.extent(0), std::vector<float>(m.extent(1)));
  for (std::size_t i = 0; i < m.extent(0); ++i)
    for (std::size_t j = 0; j < m.extent(1); ++j) rows[i][j] = h(i, j);
  return rows;
}

std::vector<std::vector<float>> identity(int n) {
  std::vector<std::vector<float>> e(n, std::vector<float>(n, 0.0f));
  for (int i = 0; i < n; ++i) e[i][i] = 1.0f;
  return e;
}

double mcc_of(const Matrix<float>& dec, const Matrix<float>& feat) {
  return mean_correlation_coefficient(decoder_similarity(dec, feat));
}
double uniq_of(const Matrix<float>& dec, const Matrix<float>& feat) {
  return uniqueness(decoder_similarity(dec, feat));
}

// An SAE fixture for the evaluator: z = ReLU((x - b_dec) W_enc + b_enc), x_hat = z W_dec + b_dec.
struct LinearReluSae {
  Matrix<float> w_enc, w_dec;
  Vector<float> b_enc, b_dec;
  std::size_t num_latents() const { return w_dec.extent(0); }
  std::size_t input_dim() const { return w_dec.extent(1); }
  Matrix<float> decoder_weights() const { return w_dec; }
  void encode(const Matrix<float>& x, const Matrix<float>& z) const {
    Matrix<float> centred("centred", x.extent(0), x.extent(1));
    const auto xx = x, c = centred;
    const auto bd = b_dec, be = b_enc;
    Kokkos::parallel_for(
        "centre", Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>>({0, 0}, {(long)x.extent(0), (long)x.extent(1)}),
        KOKKOS_LAMBDA(int i, int k) { c(i, k) = xx(i, k) - bd(k); });
    gemm(Op::N, Op::N, 1.0f, centred, w_enc, 0.0f, z);
    const auto zz = z;
    Kokkos::parallel_for(
        "relu", Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>>({0, 0}, {(long)z.extent(0), (long)z.extent(1)}),
        KOKKOS_LAMBDA(int i, int j) {
          const float v = zz(i, j) + be(j);
          zz(i, j) = v > 0 ? v : 0;
        });
  }
  void decode(const Matrix<float>& z, const Matrix<float>& x_hat) const {
    gemm(Op::N, Op::N, 1.0f, z, w_dec, 0.0f, x_hat);
    const auto xh = x_hat;
    const auto bd = b_dec;
    Kokkos::parallel_for(
        "add_b_dec",
        Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>>({0, 0}, {(long)x_hat.extent(0), (long)x_hat.extent(1)}),
        KOKKOS_LAMBDA(int i, int k) { xh(i, k) += bd(k); });
  }
};
static_assert(EvaluableSae<LinearReluSae>);

// n features = the standard basis of R^n, no bias, p from 0.4 down to 0.1, magnitudes 2 +- 0.5.
SyntheticModel orthonormal_world(int n) {
  SyntheticModelConfig cfg;
  cfg.num_features = n;
  cfg.hidden_dim = n;
  cfg.firing_probability = LinearFiring{0.4, 0.1};
  cfg.mean_firing_magnitudes = ConstantMagnitude{2.0};
  cfg.std_firing_magnitudes = ConstantMagnitude{0.5};
  cfg.bias = BiasSpec{BiasSpec::Kind::none, 0.0};
  cfg.seed = 6;
  SyntheticModelParts parts{from_rows(identity(n)), Vector<float>("bias", n), LinearFiring{0.4, 0.1}.generate(n, 0),
                            std::nullopt, Forest{}, std::nullopt};
  return SyntheticModel(cfg, std::move(parts));
}

}  // namespace

TEST_CASE("MCC and uniqueness: the reference's expectations", "[metrics][mcc]") {
  auto feat = random_unit_rows<float>(10, 16, 1);
  auto rows = host_rows(feat);
  CHECK(mcc_of(feat, feat) == Approx(1.0).epsilon(1e-6));
  CHECK(uniq_of(feat, feat) == 1.0);
  auto negated = rows, scaled = rows, permuted = rows;
  for (auto& r : negated)
    for (auto& v : r) v = -v;
  for (std::size_t i = 0; i < scaled.size(); ++i)
    for (auto& v : scaled[i]) v *= float(i + 1) * 0.7f;
  std::rotate(permuted.begin(), permuted.begin() + 3, permuted.end());
  for (const auto& variant : {negated, scaled, permuted}) {
    CHECK(mcc_of(from_rows(variant), feat) == Approx(1.0).epsilon(1e-6));
    CHECK(uniq_of(from_rows(variant), feat) == 1.0);
  }
  // Five latents all equal to feature 0: uniqueness 1/5.
  CHECK(uniq_of(from_rows(std::vector<std::vector<float>>(5, rows[0])), feat) == Approx(0.2));
  // Latents (e0, e1, e0, e2) against the identity: 3 distinct argmaxes of 4.
  auto id = identity(4);
  CHECK(uniq_of(from_rows({id[0], id[1], id[0], id[2]}), from_rows(id)) == Approx(0.75));
  // Two copies of one feature against ten random features in 256 dims: one match 1, the other
  // matched to its best remaining feature, |cos| of random unit vectors (sd 1/16): about 0.5.
  auto feat256 = random_unit_rows<float>(10, 256, 2);
  auto r256 = host_rows(feat256);
  const double two_copies = mcc_of(from_rows({r256[3], r256[3]}), feat256);
  CHECK(two_copies >= 0.5);
  CHECK(two_copies < 0.6);
  // Random against random (10 x 256 each): every |cos| is small.
  CHECK(mcc_of(random_unit_rows<float>(10, 256, 3), feat256) < 0.3);
  // More latents than features: every feature is matched once.
  CHECK(mcc_of(from_rows({id[0], id[1], id[0], id[2], id[3]}), from_rows(id)) == Approx(1.0).epsilon(1e-6));
}

TEST_CASE("classification counts match a hand-worked example", "[metrics][classification]") {
  // 4 samples; truth (sorted ids): s0 {0, 2}, s1 {1}, s2 {}, s3 {0, 1, 2}.
  // Latent 0 -> feature 0, latent 1 -> feature 2, latent 2 -> feature 1 (never fires: dead).
  // z fires: latent 0 in s0, s1, s3; latent 1 in s2.
  SparseBatch<float> truth;
  truth.ids = decltype(truth.ids)("ids", 4, 3);
  truth.values = decltype(truth.values)("values", 4, 3);
  truth.counts = decltype(truth.counts)("counts", 4);
  {
    auto ids = Kokkos::create_mirror_view(truth.ids);
    auto counts = Kokkos::create_mirror_view(truth.counts);
    const int table[4][3] = {{0, 2, -1}, {1, -1, -1}, {-1, -1, -1}, {0, 1, 2}};
    const int n[4] = {2, 1, 0, 3};
    for (int i = 0; i < 4; ++i) {
      counts(i) = n[i];
      for (int k = 0; k < 3; ++k) ids(i, k) = table[i][k];
    }
    Kokkos::deep_copy(truth.ids, ids);
    Kokkos::deep_copy(truth.counts, counts);
  }
  const auto z = from_rows({{1, 0, 0}, {2, 0, 0}, {0, 3, 0}, {1, 0, 0}});
  LatentClassification c;
  EvalContext ctx;
  ctx.num_latents = 3;
  ctx.best_feature = Vector<std::int32_t>("best", 3);
  {
    auto h = Kokkos::create_mirror_view(ctx.best_feature);
    h(0) = 0, h(1) = 2, h(2) = 1;
    Kokkos::deep_copy(ctx.best_feature, h);
  }
  c.begin(ctx);
  Matrix<float> unused("x", 4, 1);
  c.update(EvalBatch{truth, unused, z, unused});
  // Latent 0 vs feature 0 (on in s0, s3): fires s0, s1, s3 -> TP 2, FP 1, FN 0, TN 1:
  //   P = 2/3, R = 1, F1 = 0.8, acc = 3/4.
  // Latent 1 vs feature 2 (on in s0, s3): fires s2 -> TP 0, FP 1, FN 2, TN 1: P = R = F1 = 0, acc 1/4.
  // Latent 2 vs feature 1 (on in s1, s3): never fires -> TP 0, FP 0, FN 2, TN 2: 0, 0, 0, acc 1/2.
  const auto s = c.summary();
  CHECK(s.precision == Approx((2.0 / 3) / 3));
  CHECK(s.recall == Approx(1.0 / 3));
  CHECK(s.f1 == Approx(0.8 / 3));
  CHECK(s.accuracy == Approx((0.75 + 0.25 + 0.5) / 3));
  CHECK(s.dead == 1);
  CHECK(s.sae_l0 == Approx(4.0 / 4));  // 4 firings over 4 samples
}

namespace {
// The host form on host backends only: a template, so that a GPU build never instantiates it.
template <class Space>
void update_by_rows_on_host(LatentClassification& c, const EvalBatch& b) {
  if constexpr (host_accessible_v<Space>) c.update_by_rows<Space>(b);
}
}  // namespace

TEST_CASE("classification counts: the host's bitmap form equals the bisection form", "[metrics][classification]") {
  if constexpr (!host_accessible_v<ExecSpace>) {
    SUCCEED("the bitmap form is the host's; a GPU counts by bisection");
    return;
  }
  // 300 samples x 200 latents against 150 features, 0 to 12 true features per sample (sorted,
  // unique), z nonzero (either sign) in about 1 of 8 entries, latents matched to features that
  // never fire included (feature 149 is never drawn). The counts are integers: equal exactly.
  const int rows = 300, latents = 200, features = 150, room = 12;
  RandomStream r(31, 0);
  SparseBatch<float> truth;
  truth.ids = decltype(truth.ids)("ids", rows, room);
  truth.values = decltype(truth.values)("values", rows, room);
  truth.counts = decltype(truth.counts)("counts", rows);
  Matrix<float> z("z", rows, latents);
  EvalContext ctx;
  ctx.num_latents = latents;
  ctx.best_feature = Vector<std::int32_t>("best", latents);
  {
    auto ids = Kokkos::create_mirror_view(truth.ids);
    auto counts = Kokkos::create_mirror_view(truth.counts);
    auto hz = Kokkos::create_mirror_view(z);
    auto best = Kokkos::create_mirror_view(ctx.best_feature);
    for (int i = 0; i < rows; ++i) {
      std::vector<int> on;
      for (int f = 0; f < features - 1; ++f)
        if (r.uniform<double>() < 0.04) on.push_back(f);
      counts(i) = std::min<int>(room, on.size());
      for (int q = 0; q < counts(i); ++q) ids(i, q) = on[q];
      for (int j = 0; j < latents; ++j) hz(i, j) = r.uniform<double>() < 0.125 ? r.normal<float>() : 0.0f;
    }
    for (int j = 0; j < latents; ++j) best(j) = static_cast<int>(r.uniform<double>() * features);
    best(0) = features - 1;  // a feature that never fires: FN 0, every firing an FP
    Kokkos::deep_copy(truth.ids, ids);
    Kokkos::deep_copy(truth.counts, counts);
    Kokkos::deep_copy(z, hz);
    Kokkos::deep_copy(ctx.best_feature, best);
  }
  Matrix<float> unused("x", rows, 1);
  const EvalBatch batch{truth, unused, z, unused};
  LatentClassification by_rows, by_latents;
  by_rows.begin(ctx);
  by_latents.begin(ctx);
  for (int pass = 0; pass < 2; ++pass) {  // two batches: the counts add up
    update_by_rows_on_host<ExecSpace>(by_rows, batch);
    by_latents.update_by_latents(batch);
  }
  auto host = [](const auto& v) { return Kokkos::create_mirror_view_and_copy(HostSpace(), v); };
  const auto t1 = host(by_rows.tp), f1 = host(by_rows.fp), m1 = host(by_rows.fn);
  const auto t2 = host(by_latents.tp), f2 = host(by_latents.fp), m2 = host(by_latents.fn);
  std::int64_t tp_total = 0, fn_total = 0;
  for (int j = 0; j < latents; ++j) {
    INFO("latent " << j);
    REQUIRE(t1(j) == t2(j));
    REQUIRE(f1(j) == f2(j));
    REQUIRE(m1(j) == m2(j));
    tp_total += t1(j), fn_total += m1(j);
  }
  CHECK(tp_total > 100);  // both branches of the test are exercised
  CHECK(fn_total > 1000);
  CHECK(by_rows.samples == 2u * rows);
  CHECK(m1(0) == 0);
  CHECK(f1(0) > 0);
}

TEST_CASE("explained variance and shrinkage equal a two-pass float64 computation", "[metrics][reconstruction]") {
  const int b = 300, d = 7;
  Matrix<float> x("x", b, d), xh("xh", b, d);
  auto hx = Kokkos::create_mirror_view(x), hh = Kokkos::create_mirror_view(xh);
  RandomStream r(4, 4);
  for (int i = 0; i < b; ++i)
    for (int k = 0; k < d; ++k) {
      hx(i, k) = 3.0f + r.normal<float>();  // a large mean: centring matters
      hh(i, k) = 0.8f * hx(i, k) + 0.3f * r.normal<float>();
    }
  for (int k = 0; k < d; ++k) hx(5, k) = 0.0f;  // a zero sample is excluded from shrinkage
  Kokkos::deep_copy(x, hx);
  Kokkos::deep_copy(xh, hh);
  SparseBatch<float> none;
  Reconstruction rec;
  rec.begin(EvalContext{});
  // Two batches of 150 exercise the streaming sums.
  auto x1 = Matrix<float>("x1", 150, d), x2 = Matrix<float>("x2", 150, d), h1 = Matrix<float>("h1", 150, d),
       h2 = Matrix<float>("h2", 150, d);
  Kokkos::deep_copy(x1, Kokkos::subview(x, Kokkos::make_pair(0, 150), Kokkos::ALL()));
  Kokkos::deep_copy(x2, Kokkos::subview(x, Kokkos::make_pair(150, 300), Kokkos::ALL()));
  Kokkos::deep_copy(h1, Kokkos::subview(xh, Kokkos::make_pair(0, 150), Kokkos::ALL()));
  Kokkos::deep_copy(h2, Kokkos::subview(xh, Kokkos::make_pair(150, 300), Kokkos::ALL()));
  rec.update(EvalBatch{none, x1, x1, h1});
  rec.update(EvalBatch{none, x2, x2, h2});
  // Two-pass: mean first, then centred total variance.
  std::vector<double> mean(d, 0);
  for (int i = 0; i < b; ++i)
    for (int k = 0; k < d; ++k) mean[k] += hx(i, k) / double(b);
  double tv = 0, mse = 0, shrink = 0;
  int counted = 0;
  for (int i = 0; i < b; ++i) {
    double nx = 0, nh = 0;
    for (int k = 0; k < d; ++k) {
      tv += (hx(i, k) - mean[k]) * (hx(i, k) - mean[k]);
      mse += (double(hx(i, k)) - hh(i, k)) * (double(hx(i, k)) - hh(i, k));
      nx += double(hx(i, k)) * hx(i, k), nh += double(hh(i, k)) * hh(i, k);
    }
    if (std::sqrt(nx) > 1e-6) shrink += std::sqrt(nh) / std::sqrt(nx), ++counted;
  }
  CHECK(counted == b - 1);
  CHECK(rec.explained_variance() == Approx(1.0 - mse / tv).epsilon(1e-10));
  CHECK(rec.shrinkage() == Approx(shrink / counted).epsilon(1e-12));
}

TEST_CASE("an oracle SAE on an orthonormal world scores perfectly; a shrunk one shows it", "[metrics][evaluate]") {
  // 16 features = the standard basis of R^16, no bias: the SAE with W_enc = W_dec = I recovers
  // every feature exactly.
  const int n = 16;
  SyntheticModel world = orthonormal_world(n);
  LinearReluSae sae{from_rows(identity(n)), from_rows(identity(n)), Vector<float>("b_enc", n),
                    Vector<float>("b_dec", n)};
  const auto r = evaluate_all(sae, world, EvalOptions{20000, 1024});
  INFO(r.dump());
  const double expected_l0 =
      std::accumulate(world.firing_probabilities().begin(), world.firing_probabilities().end(), 0.0);
  // true L0 ~ sum p = 4: per-sample variance sum p(1-p) = 3.1, SE sqrt(3.1/20000) = 0.0125; 5 SE.
  CHECK(std::fabs(r["true_l0"].get<double>() - expected_l0) < 5 * 0.0125);
  CHECK(r["sae_l0"].get<double>() == r["true_l0"].get<double>());
  CHECK(r["explained_variance"].get<double>() == Approx(1.0).margin(1e-6));
  CHECK(r["shrinkage"].get<double>() == Approx(1.0).margin(1e-6));
  CHECK(r["mcc"].get<double>() == Approx(1.0).margin(1e-6));
  CHECK(r["uniqueness"].get<double>() == 1.0);
  CHECK(r["dead_latents"].get<int>() == 0);
  for (const char* k : {"precision", "recall", "f1_score", "accuracy"})
    CHECK(r["classification"][k].get<double>() == Approx(1.0));

  // Halving the decoder halves every reconstruction: shrinkage exactly 0.5; MCC is scale-free.
  auto half = host_rows(sae.w_dec);
  for (auto& row : half)
    for (auto& v : row) v *= 0.5f;
  LinearReluSae shrunk{sae.w_enc, from_rows(half), sae.b_enc, sae.b_dec};
  const auto s = evaluate_all(shrunk, world, EvalOptions{5000, 1000});
  CHECK(s["shrinkage"].get<double>() == Approx(0.5).margin(1e-6));
  CHECK(s["mcc"].get<double>() == Approx(1.0).margin(1e-6));
  CHECK(s["explained_variance"].get<double>() < 0.9);
  CHECK_THROWS_AS(evaluate_all(sae, world, EvalOptions{10, 0}), ConfigError);
}

#include "synthsae/metrics/supervised_probes.hpp"

TEST_CASE("supervised probes separate orthogonal features almost perfectly", "[metrics][probes]") {
  // Features = the standard basis of R^16, magnitudes 2 +- 0.5: feature f is active iff
  // x_f > 0, a linearly separable problem; trained probes must reach F1 near 1 on fresh samples.
  const int n = 16;
  SyntheticModel world = orthonormal_world(n);
  std::vector<std::int32_t> features(n);
  std::iota(features.begin(), features.end(), 0);
  ProbeOptions opt;
  opt.train_samples = 400000;
  opt.eval_samples = 20000;
  opt.batch = 512;
  opt.lr = 3e-2;
  const auto r = supervised_probe_scores(world, features, opt);
  INFO("probe F1 " << r.f1 << " precision " << r.precision << " recall " << r.recall);
  CHECK(r.features == 16);
  CHECK(r.f1 > 0.98);
  CHECK_THROWS_AS(supervised_probe_scores(world, {99}, opt), ConfigError);
}

TEST_CASE("best_feature_ordering sorts latents by their best-matching feature (SAELens's ordering)", "[metrics]") {
  // Features e0, e1, e2. Latents: 0 ~ -e2, 1 ~ e0, 2 ~ e1, 3 ~ e0 (a duplicate of latent 1).
  const auto feat = from_rows(identity(3));
  const auto dec = from_rows({{0.1f, 0.0f, -1.0f}, {1.0f, 0.2f, 0.0f}, {0.0f, 1.0f, 0.3f}, {0.9f, 0.0f, 0.1f}});
  const auto order = best_feature_ordering(decoder_similarity(dec, feat));
  // Best features 2, 0, 1, 0 -> latents 1, 3 (feature 0, latent order kept), 2, then 0.
  CHECK(order == std::vector<std::size_t>{1, 3, 2, 0});
}
