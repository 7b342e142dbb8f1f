// The screened encoder (kernels/screened_encoder.hpp): the BF16 product's bound holds, and a
// screened sparse step equals, bit for bit, the same step with every pre-activation an FP32 dot.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>

#include "sae_test_support.hpp"
#include "synthsae/core/counter_rng.hpp"
#include "synthsae/sae/kernels/screened_encoder.hpp"
#include "synthsae/sae/sae.hpp"

using namespace synthsae;

namespace {

// Inputs whose rows span six decades of norm, so the bound's row factor matters.
Matrix<float> scaled_input(int rows, int d, std::uint64_t seed) {
  Matrix<float> x("x", rows, d);
  auto h = Kokkos::create_mirror_view(x);
  RandomStream s(seed, 0);
  for (int i = 0; i < rows; ++i) {
    const float scale = std::pow(10.0f, float(i % 7) - 3.0f);
    for (int k = 0; k < d; ++k) h(i, k) = scale * s.normal<float>();
  }
  Kokkos::deep_copy(x, h);
  return x;
}

void require_same_bits(const SaeParameters<float>& got, const SaeParameters<float>& want) {
  std::map<std::string, Vector<float>> got_tensors;
  got.for_each_flat([&](const std::string& name, const Vector<float>& v) { got_tensors[name] = v; });
  want.for_each_flat([&](const std::string& name, const Vector<float>& v) {
    INFO(name);
    auto a = Kokkos::create_mirror_view_and_copy(HostSpace(), got_tensors.at(name));
    auto b = Kokkos::create_mirror_view_and_copy(HostSpace(), v);
    REQUIRE(a.extent(0) == b.extent(0));
    REQUIRE(std::memcmp(a.data(), b.data(), b.extent(0) * sizeof(float)) == 0);
  });
}

struct ScreenedRun {
  StepLosses losses;
  SaeParameters<float> grads;
  double threshold = 0;
  std::size_t recomputed = 0;
  bool fell_back = false;
};

// One step from the same state, the screen configured by `setup`.
template <class S, class Setup>
ScreenedRun run_step(S& sae, const Matrix<float>& x, const DeadMask& dead, std::size_t num_dead, bool screen,
                     const Setup& setup) {
  const auto state = sae.activation_state();
  ScreenedRun r;
  r.grads = sae.parameters().zeros_like();
  sae.set_encoder_screening(screen);
  setup(sae.encoder_screen());
  r.losses = sae.forward_backward(x, r.grads, dead, num_dead);
  if constexpr (requires { sae.activation_state().threshold; }) r.threshold = sae.activation_state().threshold;
  r.recomputed = sae.encoder_screen().last_recomputed;
  r.fell_back = sae.encoder_screen().last_fell_back;
  sae.activation_state() = state;
  return r;
}

// `screens`: whether the short list should hold (otherwise every entry is recomputed, with the
// same bits).
template <class S>
void check_screened_step(S& sae, int rows, std::uint64_t seed, int dead_stride, bool screens = true) {
  const int d = static_cast<int>(sae.input_dim()), s = static_cast<int>(sae.num_latents());
  const auto x = test::random_input<float>(rows, d, seed);
  std::size_t num_dead = 0;
  const DeadMask dead = dead_stride > 0 ? test::dead_every(s, dead_stride, num_dead) : DeadMask();
  auto screened = [](EncoderScreen<float>& e) { e.recompute_all = false, e.max_recomputed_fraction = 0.125; };
  auto all_dots = [](EncoderScreen<float>& e) { e.recompute_all = true; };
  const ScreenedRun a = run_step(sae, x, dead, num_dead, true, screened);
  const ScreenedRun b = run_step(sae, x, dead, num_dead, true, all_dots);
  const ScreenedRun plain = run_step(sae, x, dead, num_dead, false, screened);
  INFO("dead stride " << dead_stride << ", " << a.recomputed << " of " << rows * s << " entries recomputed");
  REQUIRE(a.fell_back == !screens);
  REQUIRE(b.recomputed == std::size_t(rows) * s);
  if (screens) {  // a small part of the batch: the kept k B entries and those near them
    CHECK(a.recomputed < std::size_t(rows) * s / 8);
    // Every kept entry among them (the plain step, run last, left its active set's size).
    CHECK(double(a.recomputed) >= sae.last_step_entries_per_row() * rows);
  }
  CHECK(a.losses.mse == b.losses.mse);
  CHECK(a.losses.aux == b.losses.aux);
  CHECK(a.losses.inner_mse == b.losses.inner_mse);
  CHECK(a.threshold == b.threshold);
  require_same_bits(a.grads, b.grads);
  if (dead_stride > 0) CHECK(a.losses.aux > 0);
  // Against the FP32 GEMM (another summation order): float rounding only, a few ulps per value
  // (relative 1e-7) and so far below 1e-4 in the losses and the threshold. The kept sets may
  // differ where two keys tie to a few ulps, so the check is on the losses.
  CHECK(a.losses.mse == Approx(plain.losses.mse).epsilon(1e-4));
  CHECK(a.threshold == Approx(plain.threshold).epsilon(1e-4).margin(1e-6));  // (a least kept key near 0)
}

}  // namespace

TEST_CASE("Screened encoder: the BF16 product stays within the bound of the FP32 dots", "[sae][screen]") {
  // Rows over six decades of norm, W_enc columns over four, biases up to 30: the bound is
  // kappa (|xc_i| |W col j| + |b_j|) with kappa = screening_kappa(k) (about 2^-7); the test
  // compares every entry of the BF16 product with the FP32 dot through the screen's own
  // recomputation (recompute_all) and requires the bound to hold and not to be vacuous.
  constexpr int rows = 96, d = 200, s = 130;
  const auto xc = scaled_input(rows, d, 3);
  SaeParameters<float> p = initial_parameters<float>(d, s, 0.3, 5);
  {
    auto w = Kokkos::create_mirror_view_and_copy(HostSpace(), p.w_enc);
    auto bias = Kokkos::create_mirror_view_and_copy(HostSpace(), p.b_enc);
    RandomStream rng(9, 0);
    for (int k = 0; k < d; ++k)
      for (int j = 0; j < s; ++j) w(k, j) = std::pow(10.0f, float(j % 5) - 2.0f) * rng.normal<float>();
    for (int j = 0; j < s; ++j) bias(j) = 30.0f * rng.normal<float>();
    Kokkos::deep_copy(p.w_enc, w), Kokkos::deep_copy(p.b_enc, bias);
  }
  StepBuffers<float> b;
  b.resize(rows, d, s);
  EncoderScreen<float> screen;
  screen.recompute_all = true;
  screen.run(xc, p, b, ScreenedSelection{}, false, DeadMask(), 0);
  const auto dots = Kokkos::create_mirror_view_and_copy(HostSpace(), b.h);
  Matrix<float> bf16("bf16", rows, s);
  gemm_onto_rows(Op::N, Op::N, 1.0f, xc, p.w_enc, p.b_enc, bf16, GemmMath::bf16);
  const auto approx = Kokkos::create_mirror_view_and_copy(HostSpace(), bf16);
  const auto x = Kokkos::create_mirror_view_and_copy(HostSpace(), xc);
  const auto w = Kokkos::create_mirror_view_and_copy(HostSpace(), p.w_enc);
  const auto bias = Kokkos::create_mirror_view_and_copy(HostSpace(), p.b_enc);
  const double kappa = screening_kappa(d);
  double worst = 0;
  for (int i = 0; i < rows; ++i) {
    double r = 0;
    for (int k = 0; k < d; ++k) r += double(x(i, k)) * x(i, k);
    for (int j = 0; j < s; ++j) {
      double c = 0, exact = bias(j);
      for (int k = 0; k < d; ++k) c += double(w(k, j)) * w(k, j), exact += double(x(i, k)) * w(k, j);
      const double bound = kappa * (std::sqrt(r) * std::sqrt(c) + std::fabs(bias(j)));
      INFO("entry " << i << ", " << j);
      REQUIRE(std::fabs(double(approx(i, j)) - double(dots(i, j))) <= bound);
      // The dot itself is FP32 arithmetic: within (d + 2) 2^-24 of the float64 sum's magnitudes.
      REQUIRE(std::fabs(double(dots(i, j)) - exact) <=
              (d + 2) * 0x1p-24 * (std::sqrt(r) * std::sqrt(c) + std::fabs(bias(j))));
      worst = std::max(worst, std::fabs(double(approx(i, j)) - double(dots(i, j))) / bound);
    }
  }
  // The bound is not vacuous: BF16 rounding is real here (inputs are not BF16 values), and the
  // worst entry reaches more than 1 % of its bound (a random sum of 200 rounding errors lands a
  // few percent of the worst case).
  CHECK(worst > 0.01);
  CHECK(worst <= 1.0);
}

TEST_CASE("Screened BatchTopK step = the step on FP32 dots everywhere, bit for bit", "[sae][screen]") {
  // 1,024 rows (the threshold's candidate path), 48 inputs (k_aux = 24), 384 latents, k = 6.
  // Dead stride 9 kills 43 latents (AuxK selects 24 per row among them); stride 20 kills 19
  // (AuxK takes all of them). Either way their columns come from the FP32 product.
  BatchTopKSae<float> sae(48, 384, BatchTopK{6, true, 0.01}, {}, AuxK{1.0}, {}, 0.5, 17);
  check_screened_step(sae, 1024, 1, 0);
  check_screened_step(sae, 1024, 2, 9);
  check_screened_step(sae, 1024, 3, 20);
  MatryoshkaBatchTopKSae<float> mat(48, 384, BatchTopK{6, true, 0.01}, {}, AuxK{1.0}, Matryoshka{{32, 128}}, 0.5, 19);
  check_screened_step(mat, 1024, 4, 9);
  // The matryoshka_batchtopk architecture's aux loss: per level, among that level's dead latents.
  Sae<BatchTopK, NoPenalty, MatryoshkaAuxK, Matryoshka, float> per_level(48, 384, BatchTopK{6, true, 0.01}, {},
                                                                        MatryoshkaAuxK{1.0}, Matryoshka{{32, 128}}, 0.5, 21);
  check_screened_step(per_level, 1024, 5, 9);
}

TEST_CASE("Screened BatchTopK step at ragged shapes, small batches, unscaled keys", "[sae][screen]") {
  // 200 inputs and 130 latents (neither a multiple of 8 or 16: the list pass's and the
  // transpose's scalar tails), keys without the decoder norms; 300 rows (the threshold's exact
  // radix passes, a sample of 64 rows for the guess) and 40 (the sample is the whole batch).
  BatchTopKSae<float> sae(200, 130, BatchTopK{2, false, 0.01}, {}, AuxK{1.0}, {}, 0.5, 31);
  check_screened_step(sae, 300, 6, 0);
  check_screened_step(sae, 300, 7, 9);  // 15 dead: all of them, k_aux = 100
  check_screened_step(sae, 40, 8, 0);
  // k = 100 of 130: more than the batch's positive keys, where the guess cannot hold; every
  // entry is recomputed, and the step still equals the all-dots one.
  BatchTopKSae<float> most(200, 130, BatchTopK{100, true, 0.01}, {}, AuxK{1.0}, {}, 0.5, 37);
  check_screened_step(most, 300, 9, 0, /*screens=*/false);
}

TEST_CASE("Screened encoder: too many candidates, every entry recomputed: the same step", "[sae][screen]") {
  // With no room for a short list the screen recomputes every entry as an FP32 dot: the step's
  // bits are those of a successful screen (which guesses worked never shows in a run).
  BatchTopKSae<float> sae(48, 384, BatchTopK{6, true, 0.01}, {}, AuxK{1.0}, {}, 0.5, 23);
  const auto x = test::random_input<float>(1024, 48, 8);
  std::size_t num_dead = 0;
  const DeadMask dead = test::dead_every(384, 9, num_dead);
  const ScreenedRun a = run_step(sae, x, dead, num_dead, true, [](EncoderScreen<float>& e) {
    e.recompute_all = false, e.max_recomputed_fraction = 0;
  });
  const ScreenedRun screened = run_step(sae, x, dead, num_dead, true, [](EncoderScreen<float>& e) {
    e.recompute_all = false, e.max_recomputed_fraction = 0.125;
  });
  REQUIRE(a.fell_back);
  REQUIRE_FALSE(screened.fell_back);
  CHECK(a.recomputed == std::size_t(1024) * 384);
  CHECK(a.losses.mse == screened.losses.mse);
  CHECK(a.losses.aux == screened.losses.aux);
  CHECK(a.threshold == screened.threshold);
  require_same_bits(a.grads, screened.grads);
}

TEST_CASE("Screened encoder: more than an eighth of the latents dead, the FP32 product", "[sae][screen]") {
  // Every latent dead (an empty mask): AuxK ranks all 384 columns; the dead columns' FP32
  // product would cost more than the BF16 product saves, so the screen runs the plain one. So
  // does a mask with 49 of 384 dead, one past an eighth.
  BatchTopKSae<float> sae(48, 384, BatchTopK{6, true, 0.01}, {}, AuxK{1.0}, {}, 0.5, 29);
  const auto x = test::random_input<float>(1024, 48, 9);
  const ScreenedRun a = run_step(sae, x, DeadMask(), 384, true, [](EncoderScreen<float>& e) {
    e.recompute_all = false, e.max_recomputed_fraction = 0.125;
  });
  const ScreenedRun plain = run_step(sae, x, DeadMask(), 384, false, [](EncoderScreen<float>&) {});
  REQUIRE(a.fell_back);
  CHECK(a.losses.aux > 0);
  CHECK(a.losses.mse == plain.losses.mse);
  CHECK(a.losses.aux == plain.losses.aux);
  require_same_bits(a.grads, plain.grads);
  std::size_t num_dead = 0;
  const DeadMask dead = test::dead_every(384, 8, num_dead);  // 1, 9, ..., 377: 48 dead, an eighth
  REQUIRE(num_dead == 48);
  auto screened = [](EncoderScreen<float>& e) { e.recompute_all = false, e.max_recomputed_fraction = 0.125; };
  CHECK_FALSE(run_step(sae, x, dead, num_dead, true, screened).fell_back);
  Kokkos::View<std::uint8_t*, MemSpace> more("more", 384);
  Kokkos::deep_copy(more, dead);
  Kokkos::deep_copy(Kokkos::subview(more, 0), std::uint8_t(1));  // one more: 49
  CHECK(run_step(sae, x, DeadMask(more), 49, true, screened).fell_back);
}

TEST_CASE("Screened TopK step = the step on FP32 dots everywhere, bit for bit", "[sae][screen]") {
  // Per-row selection: each row's candidates are the entries whose upper end reaches its k-th
  // largest lower end. The shapes and dead strides of the BatchTopK case, then ragged shapes with
  // unscaled keys, and k = 100 of 130 (more than a row's positive keys: every entry recomputed).
  TopKSae<float> sae(48, 384, TopK{6, true}, {}, AuxK{1.0}, {}, 0.5, 41);
  check_screened_step(sae, 1024, 11, 0);
  check_screened_step(sae, 1024, 12, 9);
  check_screened_step(sae, 1024, 13, 20);
  check_screened_step(sae, 40, 14, 0);
  TopKSae<float> ragged(200, 130, TopK{2, false}, {}, AuxK{1.0}, {}, 0.5, 43);
  check_screened_step(ragged, 300, 15, 0);
  check_screened_step(ragged, 300, 16, 9);
  // k = 100 of 130: the candidates pass an eighth of B x S, so every entry is recomputed.
  TopKSae<float> most(200, 130, TopK{100, true}, {}, AuxK{1.0}, {}, 0.5, 47);
  check_screened_step(most, 300, 17, 0, /*screens=*/false);
  // b_enc three RMS of the products below zero: most rows have fewer than k positive keys, so
  // L_i <= 0 and the cut is the smallest positive float; unlisted entries may then be among a
  // row's k largest, but they are not positive, so the kept set is still the FP32 one.
  TopKSae<float> few_positive(48, 384, TopK{6, true}, {}, AuxK{1.0}, {}, 0.5, 49);
  {
    const auto x = test::random_input<float>(1024, 48, 18);  // check_screened_step's input below
    const auto w = few_positive.parameters().w_enc;
    const auto b_dec = few_positive.parameters().b_dec;
    double sq = 0;
    for (int i = 0; i < 64; ++i)
      for (int j = 0; j < 384; ++j) {
        double dot = 0;
        for (int k = 0; k < 48; ++k) dot += double(x(i, k) - b_dec(k)) * double(w(k, j));
        sq += dot * dot;
      }
    Kokkos::deep_copy(few_positive.parameters().b_enc, float(-3.0 * std::sqrt(sq / (64.0 * 384.0))));
  }
  check_screened_step(few_positive, 1024, 18, 0);
  const double kept_per_row = few_positive.last_step_entries_per_row();
  CHECK(kept_per_row > 0.05);  // some rows keep a latent...
  CHECK(kept_per_row < 3.0);   // ...and most keep fewer than k = 6
}

TEST_CASE("Screened encoder: compositions without a selection it bounds refuse it", "[sae][screen]") {
  STATIC_REQUIRE(BatchTopKSae<float>::supports_encoder_screening);
  STATIC_REQUIRE(MatryoshkaBatchTopKSae<float>::supports_encoder_screening);
  STATIC_REQUIRE(Sae<BatchTopK, NoPenalty, MatryoshkaAuxK, Matryoshka, float>::supports_encoder_screening);
  STATIC_REQUIRE(TopKSae<float>::supports_encoder_screening);
  STATIC_REQUIRE_FALSE(BatchTopKSae<double>::supports_encoder_screening);
  STATIC_REQUIRE_FALSE(AbsTopKSae<float>::supports_encoder_screening);  // magnitudes: not bounded
  using TopKWithL1 = Sae<TopK, L1Penalty, AuxK, NoNesting, float>;      // a penalty: no sparse step
  STATIC_REQUIRE_FALSE(TopKWithL1::supports_encoder_screening);
  AbsTopKSae<float> abs_topk(16, 64, AbsTopK{4, true}, {}, AuxK{1.0}, {}, 0.5, 3);
  CHECK_THROWS_AS(abs_topk.set_encoder_screening(true), ConfigError);
  CHECK_NOTHROW(abs_topk.set_encoder_screening(false));
}
