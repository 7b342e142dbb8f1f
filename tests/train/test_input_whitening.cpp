// SAELens's covariance_whitening: the statistics by hand, the whitened data's covariance, the fold
// (the folded SAE on raw x equals the trained one on whitened x, for every untied family and both
// apply_b_dec_to_input settings), the trainer's periodic evaluation against its final fold, its
// checkpoint, and Matching Pursuit's refusal.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "sae/sae_test_support.hpp"
#include "synthsae/metrics/evaluate.hpp"
#include "synthsae/sae/matching_pursuit_sae.hpp"
#include "synthsae/train/trainer.hpp"
#include "synthsae/world/presets.hpp"

using namespace synthsae;

namespace {

// (x - before) m + after on the host, in double (m row-major d x d; empty shifts are zero).
Matrix<double> affine_host(const Matrix<double>& x, const std::vector<double>& before, const std::vector<double>& m,
                           const std::vector<double>& after) {
  const std::size_t rows = x.extent(0), d = x.extent(1);
  auto hx = Kokkos::create_mirror_view_and_copy(HostSpace(), x);
  Matrix<double> out("affine", rows, d);
  auto ho = Kokkos::create_mirror_view(out);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t q = 0; q < d; ++q) {
      double acc = after.empty() ? 0.0 : after[q];
      for (std::size_t k = 0; k < d; ++k) acc += (hx(i, k) - (before.empty() ? 0.0 : before[k])) * m[k * d + q];
      ho(i, q) = acc;
    }
  Kokkos::deep_copy(out, ho);
  return out;
}

// (x - mean) M and its inverse y M^-1 + mean.
Matrix<double> whiten_host(const Matrix<double>& x, const InputWhitening& w) { return affine_host(x, w.mean, w.matrix, {}); }
Matrix<double> unwhiten_host(const Matrix<double>& y, const InputWhitening& w) {
  return affine_host(y, {}, w.inverse, w.mean);
}

double max_abs_diff(const Matrix<double>& a, const Matrix<double>& b) {
  auto ha = Kokkos::create_mirror_view_and_copy(HostSpace(), a);
  auto hb = Kokkos::create_mirror_view_and_copy(HostSpace(), b);
  double worst = 0;
  for (std::size_t i = 0; i < ha.extent(0); ++i)
    for (std::size_t j = 0; j < ha.extent(1); ++j) worst = std::max(worst, std::fabs(ha(i, j) - hb(i, j)));
  return worst;
}

// A whitening of correlated, shifted data: x = 0.7 + A g with g ~ N(0, I), A mixing.
InputWhitening random_whitening(int d, std::uint64_t seed) {
  RandomStream s(seed, 5);
  std::vector<double> a(d * d);
  for (auto& v : a) v = s.normal<double>();
  const std::size_t n = 400;
  std::vector<double> sum_x(d, 0), sum_outer(d * d, 0), x(d);
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<double> g(d);
    for (auto& v : g) v = s.normal<double>();
    for (int k = 0; k < d; ++k) {
      x[k] = 0.7 + 0.3 * k;
      for (int q = 0; q < d; ++q) x[k] += a[k * d + q] * g[q];
    }
    for (int k = 0; k < d; ++k) {
      sum_x[k] += x[k];
      for (int q = 0; q < d; ++q) sum_outer[k * d + q] += x[k] * x[q];
    }
  }
  return whitening_from_moments(n, sum_x, sum_outer);
}

// Folding w into a copy of `trained` must give, on raw x, trained's latents on whitened x and
// trained's unwhitened reconstruction of the same latents.
template <class S>
void check_fold(const S& trained, const InputWhitening& w, const Matrix<double>& x, const char* what) {
  INFO(what);
  S folded = trained;
  folded.parameters() = trained.parameters().clone();
  fold_input_whitening(folded, w);
  // SAELens's TopK family leaves its fold with the decoder norms folded in and the rescale off.
  if constexpr (requires { folded.activation().rescale_acts_by_decoder_norm; })
    CHECK_FALSE(folded.activation().rescale_acts_by_decoder_norm);
  const std::size_t rows = x.extent(0), s = trained.num_latents();
  Matrix<double> z_ref("z_ref", rows, s), z("z", rows, s), xh_ref("xh_ref", rows, w.dim()), xh("xh", rows, w.dim());
  S reference = trained;  // shares the trained weights; its own buffers are used sequentially
  reference.encode(whiten_host(x, w), z_ref);
  folded.encode(x, z);
  auto hz = Kokkos::create_mirror_view_and_copy(HostSpace(), z_ref);
  double active = 0;
  for (std::size_t i = 0; i < hz.size(); ++i) active += hz.data()[i] != 0;
  CHECK(active > 0.1 * double(hz.size()));  // the comparison is not vacuous
  CHECK(max_abs_diff(z_ref, z) < 1e-9);
  reference.decode(z_ref, xh_ref);
  folded.decode(z_ref, xh);
  CHECK(max_abs_diff(unwhiten_host(xh_ref, w), xh) < 1e-9);
}

}  // namespace

TEST_CASE("whitening statistics by hand: M = E diag(lambda + eps)^-1/2, M^-1 its inverse", "[train][whitening]") {
  // Samples (2,1), (-2,1), (0,2), (0,0): mean (0,1), covariance diag(8/3, 2/3) (n - 1 = 3).
  const std::vector<double> sum_x = {0, 4}, sum_outer = {8, 0, 0, 6};
  const auto w = whitening_from_moments(4, sum_x, sum_outer, 1e-3);
  CHECK(w.mean == std::vector<double>{0.0, 1.0});
  // Eigen orders eigenvalues ascending: column 0 is e_y (2/3), column 1 is e_x (8/3); signs free.
  CHECK(std::fabs(w.matrix[0 * 2 + 0]) < 1e-15);
  CHECK(std::fabs(w.matrix[1 * 2 + 0]) == Approx(1 / std::sqrt(2.0 / 3 + 1e-3)).epsilon(1e-14));
  CHECK(std::fabs(w.matrix[0 * 2 + 1]) == Approx(1 / std::sqrt(8.0 / 3 + 1e-3)).epsilon(1e-14));
  CHECK(std::fabs(w.matrix[1 * 2 + 1]) < 1e-15);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      double mm = 0;
      for (int k = 0; k < 2; ++k) mm += w.matrix[i * 2 + k] * w.inverse[k * 2 + j];
      CHECK(mm == Approx(i == j ? 1.0 : 0.0).margin(1e-14));
    }
  CHECK_THROWS_WITH(whitening_from_moments(1, sum_x, sum_outer), Catch::Contains("whitening samples = 1"));
  CHECK_THROWS_WITH(whitening_from_moments(4, sum_x, sum_outer, 0.0), Catch::Contains("whitening eps = 0"));
}

TEST_CASE("a world's whitened samples have zero mean and covariance lambda / (lambda + eps)", "[train][whitening]") {
  auto cfg = preset("tiny");
  SyntheticModel world(cfg);
  const std::size_t batches = 12, batch = 512, d = world.hidden_dim();
  const auto w = estimate_input_whitening(world, batches, batch);
  // The world is not already white: the whitening is far from the identity.
  double off_identity = 0;
  for (std::size_t k = 0; k < d; ++k)
    for (std::size_t q = 0; q < d; ++q) off_identity = std::max(off_identity, std::fabs(w.matrix[k * d + q] - (k == q)));
  CHECK(off_identity > 0.5);
  // Whiten the very samples it was estimated from (float on the device, as training does): in the
  // eigenbasis their covariance is diagonal, lambda_i / (lambda_i + eps) with eps = 1e-3.
  WhiteningMap map(w);
  SparseBatch<float> truth;
  Matrix<float> x("x", batch, d), z("z", batch, d);
  std::vector<double> mean(d, 0), cov(d * d, 0);
  const std::size_t n = batches * batch;
  std::vector<std::vector<float>> rows;
  for (std::size_t i = 0; i < batches; ++i) {
    world.sample_features_at(truth, (std::uint64_t(1) << 61) + i * batch, batch);
    world.hidden_at(truth, (std::uint64_t(1) << 61) + i * batch, x);
    map.whiten(x, z);
    auto hz = Kokkos::create_mirror_view_and_copy(HostSpace(), z);
    for (std::size_t r = 0; r < batch; ++r) {
      rows.emplace_back(&hz(r, 0), &hz(r, 0) + d);
      for (std::size_t k = 0; k < d; ++k) mean[k] += hz(r, k) / double(n);
    }
  }
  for (const auto& row : rows)
    for (std::size_t k = 0; k < d; ++k)
      for (std::size_t q = 0; q < d; ++q) cov[k * d + q] += (row[k] - mean[k]) * (row[q] - mean[q]) / double(n - 1);
  // Float whitening of values of order 1 through a d = 32 product: errors of a few 1e-6; the
  // smallest eigenvalues amplify them by 1/sqrt(lambda + eps) <= ~30, so 1e-3 is a safe bound.
  double worst_mean = 0, worst_off = 0, worst_diag = 0;
  for (std::size_t k = 0; k < d; ++k) {
    worst_mean = std::max(worst_mean, std::fabs(mean[k]));
    for (std::size_t q = 0; q < d; ++q) {
      if (k != q) worst_off = std::max(worst_off, std::fabs(cov[k * d + q]));
    }
    // lambda_k / (lambda_k + eps) = 1 - eps / (lambda_k + eps), and column k of M = E_k / sqrt(lambda_k
    // + eps) has squared norm 1 / (lambda_k + eps).
    double col = 0;
    for (std::size_t r = 0; r < d; ++r) col += w.matrix[r * d + k] * w.matrix[r * d + k];
    worst_diag = std::max(worst_diag, std::fabs(cov[k * d + k] - (1 - 1e-3 * col)));
  }
  CHECK(worst_mean < 1e-3);
  CHECK(worst_off < 1e-3);
  CHECK(worst_diag < 1e-3);
}

TEST_CASE("the whitening fold: folded SAE on x = trained SAE on whitened x, every untied family", "[train][whitening]") {
  constexpr int d = 5, s = 8;
  const auto w = random_whitening(d, 3);
  // Raw inputs around the data's mean, so the whitened ones are of order 1.
  Matrix<double> x = test::random_input(6, d, 4);
  {
    auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), x);
    for (std::size_t i = 0; i < h.extent(0); ++i)
      for (int k = 0; k < d; ++k) h(i, k) = w.mean[k] + 2 * h(i, k);
    Kokkos::deep_copy(x, h);
  }
  for (bool apply : {true, false}) {
    INFO("apply_b_dec_to_input " << apply);
    StandardSae<double> standard(d, s, Relu{}, L1Penalty{1.0}, {}, {}, 0.5, 1);
    test::scramble(standard, 1);
    standard.set_apply_b_dec_to_input(apply);
    check_fold(standard, w, x, "standard");
    TopKSae<double> topk(d, s, TopK{3, false}, {}, AuxK{1.0}, {}, 0.5, 2);
    test::scramble(topk, 2);
    topk.set_apply_b_dec_to_input(apply);
    check_fold(topk, w, x, "topk");
    // Ranking by decoder-norm-scaled activations: without folding the norms first, W_dec M^-1
    // would change every key h |W_dec_j| by |W_dec_j M^-1| / |W_dec_j| and pick other latents.
    TopKSae<double> topk_rescaled(d, s, TopK{3, true}, {}, AuxK{1.0}, {}, 0.5, 5);
    test::scramble(topk_rescaled, 5);
    topk_rescaled.set_apply_b_dec_to_input(apply);
    check_fold(topk_rescaled, w, x, "topk, rescale_acts_by_decoder_norm");
    AbsTopKSae<double> abstopk(d, s, AbsTopK{3, true}, {}, AuxK{1.0}, {}, 0.5, 6);
    test::scramble(abstopk, 6);
    abstopk.set_apply_b_dec_to_input(apply);
    check_fold(abstopk, w, x, "abstopk, rescale_acts_by_decoder_norm");
    BatchTopKSae<double> batchtopk(d, s, BatchTopK{3, true, 0.01}, {}, AuxK{1.0}, {}, 0.5, 7);
    test::scramble(batchtopk, 7);
    batchtopk.set_apply_b_dec_to_input(apply);
    check_fold(batchtopk, w, x, "batchtopk, rescale_acts_by_decoder_norm");
    JumpReluSae<double> jumprelu(d, s, JumpRelu{.init_threshold = 0.05, .bandwidth = 1.0}, L0StepPenalty{1.0, 1.0}, {}, {}, 0.5, 3);
    test::scramble(jumprelu, 3);
    jumprelu.set_apply_b_dec_to_input(apply);
    check_fold(jumprelu, w, x, "jumprelu");
    GatedSae<double> gated(d, s, L1Penalty{1.0}, 0.5, 4);
    test::scramble(gated, 4);
    gated.set_apply_b_dec_to_input(apply);
    check_fold(gated, w, x, "gated");
  }
}

TEST_CASE("training with covariance_whitening: periodic evaluation = final fold; checkpoint; MP refused",
          "[train][whitening]") {
  auto world_cfg = preset("tiny");
  SyntheticModel world(world_cfg);
  TrainerConfig cfg;
  cfg.batch_size = 256;
  cfg.training_samples = 256 * 300;
  cfg.lr.lr = 3e-3;
  cfg.normalization = InputNormalization::covariance_whitening;
  cfg.norm_estimate_batches = 8;
  StandardSae<float> sae(world.hidden_dim(), 64, Relu{}, L1Penalty{0.5}, {}, {}, 0.1, 7);
  Trainer trainer(sae, world, cfg);
  trainer.fit_steps(280);
  REQUIRE_FALSE(trainer.whitening().empty());
  CHECK(trainer.whitening().dim() == world.hidden_dim());
  // A checkpoint carries the whitening bit for bit.
  const auto dir = std::filesystem::temp_directory_path() / "synthsae_whitening_checkpoint";
  trainer.save_checkpoint(dir);
  {
    StandardSae<float> other(world.hidden_dim(), 64, Relu{}, L1Penalty{0.5}, {}, {}, 0.1, 8);
    Trainer resumed(other, world, cfg);
    resumed.load_checkpoint(dir);
    CHECK(resumed.whitening().matrix == trainer.whitening().matrix);
    CHECK(resumed.whitening().mean == trainer.whitening().mean);
  }
  std::filesystem::remove_all(dir);
  // What a periodic evaluation sees (whitening applied around the unfolded SAE) is what the
  // evaluation after the fold sees, up to float rounding (a ReLU near 0 may flip: L0 to 1e-3),
  // the decoder metrics included (they read W_dec M^-1).
  const EvalOptions base{4096, 512};
  EvalOptions periodic = base;
  periodic.whitening = &trainer.whitening();
  const auto before = evaluate_all(sae, world, periodic);
  fold_input_whitening(sae, trainer.whitening());
  const auto after = evaluate_all(sae, world, base);
  CHECK(after["sae_l0"].get<double>() == Approx(before["sae_l0"].get<double>()).margin(1e-3));
  CHECK(after["explained_variance"].get<double>() ==
        Approx(before["explained_variance"].get<double>()).margin(1e-4));
  CHECK(after["mcc"].get<double>() == Approx(before["mcc"].get<double>()).margin(1e-4));
  CHECK(before["explained_variance"].get<double>() > 0.3);  // it has learned something

  MatchingPursuitSae<float> mp(world.hidden_dim(), 64, MatchingPursuit{3, 0.0, false}, 9);
  CHECK_THROWS_WITH(Trainer(mp, world, cfg), Catch::Contains("covariance_whitening") && Catch::Contains("tied"));
}
