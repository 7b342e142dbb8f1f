// Finite-difference checks of every loss term's hand-written gradient, in float64 on tiny
// SAEs, and the JumpReLU pseudo-gradients against their definition.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "sae_test_support.hpp"
#include "synthsae/core/counter_rng.hpp"
#include "synthsae/sae/sae.hpp"

using namespace synthsae;

namespace {

constexpr int kGradBatch = 6, kGradIn = 5, kGradLatents = 8;

Matrix<double> grad_input(std::uint64_t seed) { return test::random_input(kGradBatch, kGradIn, seed); }

using test::scramble;
using test::worst_gradient_error;

const std::vector<std::string> kCore = {"W_enc", "b_enc", "W_dec", "b_dec"};

}  // namespace

TEST_CASE("Standard SAE: MSE + L1 (decoder-norm weighted) gradients", "[sae][gradients]") {
  StandardSae<double> sae(kGradIn, kGradLatents, Relu{}, L1Penalty{2.0}, {}, {}, 0.5, 1);
  scramble(sae, 1);
  CHECK(worst_gradient_error(sae, grad_input(1), kCore, {}, 0, 0.7) < 1e-6);
}

TEST_CASE("Standard SAE with SAELens's lp_norm: the p-norm's value by hand and its gradients", "[sae][gradients]") {
  for (double p : {2.0, 1.5, 3.0}) {
    INFO("lp_norm " << p);
    StandardSae<double> sae(kGradIn, kGradLatents, Relu{}, L1Penalty{2.0, p}, {}, {}, 0.5, 1);
    scramble(sae, 1);
    const auto x = grad_input(1);
    CHECK(worst_gradient_error(sae, x, kCore, {}, 0, 0.7) < 1e-6);
    // lambda mean_b (sum_j (z_bj |W_dec_j|)^p)^(1/p), z = ReLU(h).
    const test::HostSae host(x, sae.parameters());
    double expected = 0;
    for (int i = 0; i < kGradBatch; ++i) {
      double row = 0;
      for (int j = 0; j < kGradLatents; ++j) row += std::pow(std::max(0.0, host.pre(i, j)) * host.norm(j), p);
      expected += std::pow(row, 1.0 / p);
    }
    expected *= 0.35 * 2.0 / kGradBatch;  // lambda = multiplier 0.35 x coefficient 2
    SaeParameters<double> g = sae.parameters().zeros_like();
    CHECK(sae.forward_backward(x, g, {}, 0, PenaltyScale{0.35}).penalty == Approx(expected).epsilon(1e-12));
  }
  CHECK_THROWS_WITH((StandardSae<double>(kGradIn, kGradLatents, Relu{}, L1Penalty{1.0, 0.0})), Catch::Contains("lp_norm"));
}

TEST_CASE("TopK SAE with decoder-norm rescaling: gradients", "[sae][gradients]") {
  TopKSae<double> sae(kGradIn, kGradLatents, TopK{3, true}, {}, AuxK{1.0}, {}, 0.5, 2);
  scramble(sae, 2);
  CHECK(worst_gradient_error(sae, grad_input(2), kCore) < 1e-6);
  TopKSae<double> plain(kGradIn, kGradLatents, TopK{3, false}, {}, AuxK{1.0}, {}, 0.5, 2);
  scramble(plain, 3);
  CHECK(worst_gradient_error(plain, grad_input(3), kCore) < 1e-6);
}

TEST_CASE("AbsTopK SAE: gradients with and without rescaling; the k largest |h| with their signs", "[sae][gradients]") {
  for (bool rescale : {true, false}) {
    INFO("rescale " << rescale);
    AbsTopKSae<double> sae(kGradIn, kGradLatents, AbsTopK{3, rescale}, {}, AuxK{1.0}, {}, 0.5, 21);
    scramble(sae, 21);
    const auto x = grad_input(21);
    CHECK(worst_gradient_error(sae, x, kCore) < 1e-6);
    // Exactly k latents per sample, chosen by |h| (|h| |W_dec| with rescaling), some negative.
    SaeParameters<double> g = sae.parameters().zeros_like();
    sae.forward_backward(x, g);
    auto z = Kokkos::create_mirror_view_and_copy(HostSpace(), sae.last_activations());
    const test::HostSae host(x, sae.parameters());
    int negative = 0;
    for (int i = 0; i < kGradBatch; ++i) {
      std::vector<std::pair<double, int>> ranked;
      for (int j = 0; j < kGradLatents; ++j)
        ranked.push_back({-std::fabs(host.pre(i, j) * (rescale ? host.norm(j) : 1.0)), j});
      std::sort(ranked.begin(), ranked.end());
      for (int q = 0; q < kGradLatents; ++q) {
        const int j = ranked[q].second;
        const double expected = q < 3 ? host.pre(i, j) * (rescale ? host.norm(j) : 1.0) : 0.0;
        CHECK(z(i, j) == Approx(expected).margin(1e-12));
        negative += q < 3 && expected < 0;
      }
    }
    CHECK(negative > 0);  // the point of AbsTopK: negative activations survive
  }
}

namespace {

template <class S>
void aux_k_gradient_check(S& sae, double coef, bool by_magnitude) {
  // Latents 1, 4, 6 dead; k_aux = min(D/2 = 2, 3) = 2, scale = min(3/2, 1) = 1.
  // The residual r = x - x_hat is a stop-gradient, so the aux gradient is checked on its own:
  // (gradient with the dead mask) - (gradient without) against central differences of
  // coef * mean_b |sum_{selected j} h_bj W_dec_j - r0_b|^2 with r0 and the selection frozen.
  Kokkos::View<std::uint8_t*, MemSpace> dead("dead", kGradLatents);
  auto hd = Kokkos::create_mirror_view(dead);
  for (int j : {1, 4, 6}) hd(j) = 1;
  Kokkos::deep_copy(dead, hd);
  const auto x = grad_input(4);
  SaeParameters<double> with = sae.parameters().zeros_like(), without = sae.parameters().zeros_like();
  const double aux = sae.forward_backward(x, with, dead, 3).aux;
  CHECK(aux > 0);
  const auto x_hat0 = Kokkos::create_mirror_view_and_copy(HostSpace(), sae.last_reconstruction());
  sae.forward_backward(x, without);
  const auto& p = sae.parameters();
  test::HostSae host(x, p);
  const auto xh = host.x, we = host.w_enc, wd = host.w_dec;  // views: perturbing them perturbs host
  const auto be = host.b_enc, bd = host.b_dec;
  auto pre = [&](int i, int j) { return host.pre(i, j); };
  auto norm = [&](int j) { return host.norm(j); };
  // Frozen selection: the 2 largest keys h_bj |W_dec_j| (AbsTopK: their magnitudes) among dead
  // latents, per sample; the selected values are the signed h either way.
  std::vector<std::vector<int>> selected(kGradBatch);
  int selections_differ = 0;
  for (int i = 0; i < kGradBatch; ++i) {
    std::vector<int> cand = {1, 4, 6};
    auto key = [&](int j) { return by_magnitude ? std::fabs(pre(i, j) * norm(j)) : pre(i, j) * norm(j); };
    std::sort(cand.begin(), cand.end(), [&](int a, int b) { return key(a) > key(b); });
    selected[i] = {cand[0], cand[1]};
    std::vector<int> by_sign = {1, 4, 6};
    std::sort(by_sign.begin(), by_sign.end(), [&](int a, int b) { return pre(i, a) * norm(a) > pre(i, b) * norm(b); });
    selections_differ += std::set<int>{cand[0], cand[1]} != std::set<int>{by_sign[0], by_sign[1]};
  }
  // For AbsTopK some sample must pick differently by magnitude, or the check would not tell.
  if (by_magnitude) CHECK(selections_differ > 0);
  auto aux_loss = [&]() {
    double total = 0;
    for (int i = 0; i < kGradBatch; ++i)
      for (int k = 0; k < kGradIn; ++k) {
        double e = 0;
        for (int j : selected[i]) e += pre(i, j) * wd(j, k);
        const double diff = e - (xh(i, k) - x_hat0(i, k));
        total += diff * diff;
      }
    return coef * total / kGradBatch;
  };
  CHECK(aux_loss() == Approx(aux).epsilon(1e-12));
  double worst = 0;
  auto check = [&](auto& values, const Vector<double>& g_with, const Vector<double>& g_without) {
    auto a = Kokkos::create_mirror_view_and_copy(HostSpace(), g_with);
    auto b = Kokkos::create_mirror_view_and_copy(HostSpace(), g_without);
    double* data = values.data();
    for (std::size_t i = 0; i < values.size(); ++i) {
      const double saved = data[i];
      data[i] = saved + 1e-6;
      const double up = aux_loss();
      data[i] = saved - 1e-6;
      const double down = aux_loss();
      data[i] = saved;
      const double analytic = a(i) - b(i);
      worst = std::max(worst, std::fabs((up - down) / 2e-6 - analytic) / (std::fabs(analytic) + 1.0));
    }
  };
  check(we, Vector<double>(with.w_enc.data(), with.w_enc.size()),
        Vector<double>(without.w_enc.data(), without.w_enc.size()));
  check(be, with.b_enc, without.b_enc);
  check(wd, Vector<double>(with.w_dec.data(), with.w_dec.size()),
        Vector<double>(without.w_dec.data(), without.w_dec.size()));
  check(bd, with.b_dec, without.b_dec);
  CHECK(worst < 1e-6);
}

}  // namespace

TEST_CASE("AuxK on dead latents: gradients (TopK keys, and AbsTopK's magnitudes)", "[sae][gradients]") {
  TopKSae<double> sae(kGradIn, kGradLatents, TopK{2, true}, {}, AuxK{0.8}, {}, 0.5, 4);
  scramble(sae, 4);
  aux_k_gradient_check(sae, 0.8, false);
  AbsTopKSae<double> abs_sae(kGradIn, kGradLatents, AbsTopK{2, true}, {}, AuxK{0.8}, {}, 0.5, 4);
  scramble(abs_sae, 4);
  aux_k_gradient_check(abs_sae, 0.8, true);
}

TEST_CASE("BatchTopK and Matryoshka BatchTopK: gradients", "[sae][gradients]") {
  BatchTopKSae<double> btk(kGradIn, kGradLatents, BatchTopK{2.5, true, 0.01}, {}, AuxK{}, {}, 0.5, 5);
  scramble(btk, 5);
  CHECK(worst_gradient_error(btk, grad_input(5), kCore) < 1e-6);
  MatryoshkaBatchTopKSae<double> mat(kGradIn, kGradLatents, BatchTopK{2.5, true, 0.01}, {}, AuxK{}, Matryoshka{{2, 5}}, 0.5, 6);
  scramble(mat, 6);
  const auto x = grad_input(6);
  SaeParameters<double> grads = mat.parameters().zeros_like();
  CHECK(mat.forward_backward(x, grads).inner_mse > 0);
  CHECK(worst_gradient_error(mat, x, kCore) < 1e-6);
}

namespace {

JumpRelu jumprelu(double init, double eps, ThresholdParameterisation param, bool ste = false) {
  return JumpRelu{.init_threshold = init, .bandwidth = eps, .parameterisation = param, .ste_to_input = ste};
}

// The JumpReLU pseudo-gradients recomputed from their definition on the host (SAELens's Step and
// JumpReLU autograd functions): per entry the rectangle window K = [|h - theta| < eps / 2] gives
//   dL/dtheta_j = sum_b [ dz_bj (-(theta/eps) K) + w_b (-(1/eps) K) ],
//   dL/db_enc_j gains sum_b [ dz_bj (theta/eps) K + w_b (1/eps) K ] with ste_to_input,
// w_b = lambda / B (step) or lambda / B (4/t)(l0_b - t) (quadratic); the stored parameter's
// gradient is dL/dtheta, or theta dL/dtheta for log theta. Returns the worst error of the
// threshold gradient and the largest threshold gradient (to prove the window was hit).
struct PseudoGradientCheck {
  double worst_threshold = 0, largest_threshold = 0, worst_b_enc_ste = 0, largest_ste = 0;
};

PseudoGradientCheck check_pseudo_gradients(JumpRelu act, L0StepPenalty pen, std::uint64_t seed) {
  const double lambda = 0.4, eps = act.bandwidth;
  JumpReluSae<double> sae(kGradIn, kGradLatents, act, pen, {}, {}, 0.5, seed);
  scramble(sae, seed);
  const auto x = grad_input(seed);
  SaeParameters<double> grads = sae.parameters().zeros_like();
  sae.forward_backward(x, grads, {}, 0, lambda);
  const bool log = act.parameterisation == ThresholdParameterisation::log;
  const auto& p = sae.parameters();
  const test::HostSae host(x, p);
  auto raw = Kokkos::create_mirror_view_and_copy(HostSpace(), p.extra.at(act.threshold_parameter()));
  auto g = Kokkos::create_mirror_view_and_copy(HostSpace(), grads.extra.at(act.threshold_parameter()));
  auto theta = [&](int j) { return log ? std::exp(raw(j)) : raw(j); };
  // Row weights of the step function's gradient.
  std::vector<double> w(kGradBatch, lambda / kGradBatch);
  for (int i = 0; i < kGradBatch && pen.mode == L0LossMode::quadratic; ++i) {
    double l0 = 0;
    for (int j = 0; j < kGradLatents; ++j) l0 += host.pre(i, j) > theta(j) ? 1 : 0;
    w[i] = lambda / kGradBatch * 4.0 / *pen.target_l0 * (l0 - *pen.target_l0);
  }
  // The gradient of b_enc without the straight-through terms, for the ste comparison.
  JumpRelu plain_act = act;
  plain_act.ste_to_input = false;
  JumpReluSae<double> plain(kGradIn, kGradLatents, plain_act, pen, {}, {}, 0.5, seed);
  plain.parameters() = sae.parameters().clone();
  SaeParameters<double> plain_grads = plain.parameters().zeros_like();
  plain.forward_backward(x, plain_grads, {}, 0, lambda);
  auto gb = Kokkos::create_mirror_view_and_copy(HostSpace(), grads.b_enc);
  auto gb_plain = Kokkos::create_mirror_view_and_copy(HostSpace(), plain_grads.b_enc);
  PseudoGradientCheck out;
  for (int j = 0; j < kGradLatents; ++j) {
    double d_theta = 0, ste = 0;
    for (int i = 0; i < kGradBatch; ++i) {
      const double h = host.pre(i, j);
      // dL/dz_ij from the reconstruction: 2/B (x_hat - x) . W_dec_j
      double dz = 0;
      for (int k = 0; k < kGradIn; ++k) {
        double xhat = host.b_dec(k);
        for (int m = 0; m < kGradLatents; ++m) {
          const double hm = host.pre(i, m);
          if (hm > theta(m)) xhat += hm * host.w_dec(m, k);
        }
        dz += 2.0 / kGradBatch * (xhat - host.x(i, k)) * host.w_dec(j, k);
      }
      const double kernel = std::fabs((h - theta(j)) / eps) < 0.5 ? 1.0 : 0.0;
      d_theta += dz * (-(theta(j) / eps) * kernel) + w[i] * (-(1.0 / eps) * kernel);
      ste += dz * (theta(j) / eps) * kernel + w[i] * (1.0 / eps) * kernel;
    }
    const double expected = log ? theta(j) * d_theta : d_theta;
    out.worst_threshold = std::max(out.worst_threshold, std::fabs(expected - g(j)));
    out.largest_threshold = std::max(out.largest_threshold, std::fabs(g(j)));
    const double ste_expected = act.ste_to_input ? ste : 0.0;
    out.worst_b_enc_ste = std::max(out.worst_b_enc_ste, std::fabs(ste_expected - (gb(j) - gb_plain(j))));
    out.largest_ste = std::max(out.largest_ste, std::fabs(ste_expected));
  }
  return out;
}

}  // namespace

TEST_CASE("JumpReLU (step and tanh L0): gradients of W and b; pseudo-gradients by definition", "[sae][gradients]") {
  for (auto param : {ThresholdParameterisation::direct, ThresholdParameterisation::log}) {
    INFO("log threshold: " << (param == ThresholdParameterisation::log));
    JumpReluSae<double> step(kGradIn, kGradLatents, jumprelu(0.1, 0.05, param), L0StepPenalty{1.0, 0.05}, {}, {}, 0.5, 7);
    scramble(step, 7);
    CHECK(worst_gradient_error(step, grad_input(7), kCore, {}, 0, 0.3) < 1e-6);
    JumpReluTanhSae<double> tanh_sae(kGradIn, kGradLatents, jumprelu(0.1, 0.05, param), L0TanhPenalty{1.0, 4.0}, {}, {}, 0.5,
                                     8);
    scramble(tanh_sae, 8);
    CHECK(worst_gradient_error(tanh_sae, grad_input(8), kCore, {}, 0, 0.3) < 1e-6);
    // The quadratic L0 loss has no gradient to W or b either (only through the step function).
    L0StepPenalty quad{.coefficient = 1.0, .mode = L0LossMode::quadratic, .target_l0 = 3.0};
    JumpReluSae<double> quad_sae(kGradIn, kGradLatents, jumprelu(0.1, 0.05, param), quad, {}, {}, 0.5, 7);
    scramble(quad_sae, 7);
    CHECK(worst_gradient_error(quad_sae, grad_input(7), kCore, {}, 0, 0.3) < 1e-6);
  }
  // The threshold's pseudo-gradient. With bandwidth 2 most (h, theta) pairs fall inside the
  // kernel window.
  for (auto param : {ThresholdParameterisation::direct, ThresholdParameterisation::log})
    for (bool ste : {false, true})
      for (auto mode : {L0LossMode::step, L0LossMode::quadratic}) {
        INFO("log " << (param == ThresholdParameterisation::log) << ", ste_to_input " << ste << ", quadratic "
                    << (mode == L0LossMode::quadratic));
        L0StepPenalty pen{.coefficient = 1.0, .mode = mode};
        if (mode == L0LossMode::quadratic) pen.target_l0 = 2.5;
        const auto r = check_pseudo_gradients(jumprelu(0.1, 2.0, param, ste), pen, 9);
        CHECK(r.largest_threshold > 1e-3);  // the window is hit: the comparison is not vacuous
        CHECK(r.worst_threshold < 1e-10);
        CHECK(r.worst_b_enc_ste < 1e-10);
        if (ste) CHECK(r.largest_ste > 1e-3);
      }
}

TEST_CASE("JumpReLU quadratic L0 loss: value by hand; a direct threshold is projected onto theta >= 0",
          "[sae][gradients]") {
  const double t = 2.0, lambda = 0.5;
  L0StepPenalty quad{.coefficient = 1.0, .mode = L0LossMode::quadratic, .target_l0 = t};
  JumpReluSae<double> sae(kGradIn, kGradLatents, jumprelu(0.1, 0.05, ThresholdParameterisation::direct), quad, {}, {}, 0.5, 5);
  scramble(sae, 5);
  // One negative threshold: the step projects it to 0 before the forward pass (SAELens clamps
  // threshold.data at the start of every training_forward_pass).
  auto th = Kokkos::create_mirror_view_and_copy(HostSpace(), sae.parameters().extra.at("threshold"));
  th(2) = -0.3;
  Kokkos::deep_copy(sae.parameters().extra.at("threshold"), th);
  const auto x = grad_input(5);
  SaeParameters<double> g = sae.parameters().zeros_like();
  const StepLosses l = sae.forward_backward(x, g, {}, 0, lambda);
  th = Kokkos::create_mirror_view_and_copy(HostSpace(), sae.parameters().extra.at("threshold"));
  CHECK(th(2) == 0.0);
  const test::HostSae host(x, sae.parameters());
  double expected = 0;
  for (int i = 0; i < kGradBatch; ++i) {
    double l0 = 0;
    for (int j = 0; j < kGradLatents; ++j) l0 += host.pre(i, j) > th(j) ? 1 : 0;
    expected += 2.0 / t * (l0 - t) * (l0 - t);
  }
  expected *= lambda / kGradBatch;
  CHECK(expected > 0);
  CHECK(l.penalty == Approx(expected).epsilon(1e-14));
  // The quadratic mode needs its target, within (0, d_sae].
  CHECK_THROWS_WITH((JumpReluSae<double>(kGradIn, kGradLatents, JumpRelu{},
                                         L0StepPenalty{.coefficient = 1.0, .mode = L0LossMode::quadratic})),
                    Catch::Contains("target_l0"));
  CHECK_THROWS_WITH(
      (JumpReluSae<double>(kGradIn, kGradLatents, JumpRelu{},
                           L0StepPenalty{.coefficient = 1.0, .mode = L0LossMode::quadratic, .target_l0 = 9.0})),
      Catch::Contains("target_l0") && Catch::Contains("9"));
}

#include "synthsae/sae/matching_pursuit_sae.hpp"

TEST_CASE("Matching Pursuit: gradients through the greedy selections", "[sae][gradients]") {
  MatchingPursuitSae<double> mp(kGradIn, kGradLatents, MatchingPursuit{3, 0.0, false}, 10);
  scramble(mp, 10);
  const auto x = grad_input(10);
  CHECK(worst_gradient_error(mp, x, {"W_dec", "b_dec"}) < 1e-6);
  // Incremental scores agree with recomputing r . W_dec_j: reconstruction = sum of selections.
  SaeParameters<double> g = mp.parameters().zeros_like();
  const auto l = mp.forward_backward(x, g);
  CHECK(l.mse > 0);
}

#include "synthsae/sae/gated_sae.hpp"

TEST_CASE("Gated SAE: reconstruction + L1 on the gate + auxiliary reconstruction gradients", "[sae][gradients]") {
  GatedSae<double> gated(kGradIn, kGradLatents, L1Penalty{1.5}, 0.5, 11);
  scramble(gated, 11);
  const auto x = grad_input(11);
  SaeParameters<double> g = gated.parameters().zeros_like();
  const StepLosses l = gated.forward_backward(x, g, {}, 0, 0.6);
  CHECK(l.penalty > 0);
  CHECK(l.aux > 0);
  CHECK(worst_gradient_error(gated, x, {"W_enc", "W_dec", "b_dec", "b_gate", "r_mag", "b_mag"}, {}, 0, 0.6) < 1e-6);
  CHECK_THROWS_WITH((GatedSae<double>(kGradIn, kGradLatents, L1Penalty{1.0, 2.0})), Catch::Contains("lp_norm = 2"));
}

TEST_CASE("JumpReLU pre-activation loss on dead latents: value and gradients", "[sae][gradients]") {
  using PreActSae = Sae<JumpRelu, L0StepPenalty, JumpReluPreActivation, NoNesting, double>;
  Kokkos::View<std::uint8_t*, MemSpace> dead("dead", kGradLatents);
  auto hd = Kokkos::create_mirror_view(dead);
  for (int j : {0, 3, 5}) hd(j) = 1;
  Kokkos::deep_copy(dead, hd);
  const double coef = 0.7;
  for (auto param : {ThresholdParameterisation::direct, ThresholdParameterisation::log}) {
    const bool log = param == ThresholdParameterisation::log;
    INFO("log threshold: " << log);
    // Thresholds near the pre-activations' scale so that some (h, theta) pairs fall either side.
    PreActSae sae(kGradIn, kGradLatents, jumprelu(0.5, 0.05, param), L0StepPenalty{1.0, 0.05}, JumpReluPreActivation{coef},
                  {}, 0.5, 12);
    scramble(sae, 12);
    const std::string name = sae.activation().threshold_parameter();
    Kokkos::deep_copy(sae.parameters().extra.at(name), log ? std::log(0.5) : 0.5);
    const auto x = grad_input(12);
    // Everything but the threshold has exact gradients: central differences of the total loss.
    CHECK(worst_gradient_error(sae, x, kCore, dead, 3, 0.3) < 1e-6);
    // The value by hand: coef mean_b sum_{j dead} ReLU(theta - h_bj) |W_dec_j|.
    const auto& p = sae.parameters();
    const test::HostSae host(x, p);
    auto raw = Kokkos::create_mirror_view_and_copy(HostSpace(), p.extra.at(name));
    auto pre_act = [&](int j, double raw_theta) {
      const double theta = log ? std::exp(raw_theta) : raw_theta;
      double total = 0;
      for (int i = 0; i < kGradBatch; ++i) total += std::max(0.0, theta - host.pre(i, j)) * host.norm(j);
      return coef * total / kGradBatch;
    };
    double expected = 0;
    for (int j : {0, 3, 5}) expected += pre_act(j, raw(j));
    CHECK(expected > 0);
    SaeParameters<double> with = sae.parameters().zeros_like(), without = sae.parameters().zeros_like();
    CHECK(sae.forward_backward(x, with, dead, 3, 0.3).aux == Approx(expected).epsilon(1e-12));
    sae.forward_backward(x, without, {}, 0, 0.3);
    // The threshold: (gradient with the loss) - (without) against central differences of it.
    auto gw = Kokkos::create_mirror_view_and_copy(HostSpace(), with.extra.at(name));
    auto go = Kokkos::create_mirror_view_and_copy(HostSpace(), without.extra.at(name));
    double worst = 0, largest = 0;
    for (int j = 0; j < kGradLatents; ++j) {
      const bool is_dead = j == 0 || j == 3 || j == 5;
      const double fd = is_dead ? (pre_act(j, raw(j) + 1e-6) - pre_act(j, raw(j) - 1e-6)) / 2e-6 : 0.0;
      worst = std::max(worst, std::fabs(fd - (gw(j) - go(j))));
      largest = std::max(largest, std::fabs(fd));
    }
    CHECK(largest > 1e-3);
    CHECK(worst < 1e-6);
  }
}

TEST_CASE("New compositions of examples/custom_architecture.cpp: gradients", "[sae][gradients]") {
  // Matryoshka prefix losses over a JumpReLU activation with its L0 step penalty.
  Sae<JumpRelu, L0StepPenalty, NoAux, Matryoshka, double> mat_jump(
      kGradIn, kGradLatents, JumpRelu{0.1, 0.05}, L0StepPenalty{1.0, 0.05}, {}, Matryoshka{{3, 6}}, 0.5, 13);
  scramble(mat_jump, 13);
  const auto x = grad_input(13);
  SaeParameters<double> g = mat_jump.parameters().zeros_like();
  CHECK(mat_jump.forward_backward(x, g, {}, 0, 0.3).inner_mse > 0);
  CHECK(worst_gradient_error(mat_jump, x, kCore, {}, 0, 0.3) < 1e-6);
  // TopK (decoder-norm rescaled) plus an L1 term on the reported activations: the penalty's
  // gradient reaches both the coefficients and the decoder norms.
  Sae<TopK, L1Penalty, AuxK, NoNesting, double> topk_l1(kGradIn, kGradLatents, TopK{3, true}, L1Penalty{0.7}, AuxK{}, {}, 0.5,
                                                        14);
  scramble(topk_l1, 14);
  SaeParameters<double> g2 = topk_l1.parameters().zeros_like();
  CHECK(topk_l1.forward_backward(grad_input(14), g2, {}, 0, 0.5).penalty > 0);
  CHECK(worst_gradient_error(topk_l1, grad_input(14), kCore, {}, 0, 0.5) < 1e-6);
}

TEST_CASE("construction validates every slot and binds shared hyperparameters to one source", "[sae][composition]") {
  using Catch::Contains;
  // Each slot's validate(d_in, d_sae) runs in the constructor and names the field and value.
  CHECK_THROWS_WITH((StandardSae<double>(kGradIn, kGradLatents, Relu{}, L1Penalty{-1.0})),
                    Contains("l1_coefficient") && Contains("-1"));
  CHECK_THROWS_WITH((TopKSae<double>(kGradIn, kGradLatents, TopK{0, true}, {}, AuxK{std::nan("")})), Contains("k = 0"));
  CHECK_THROWS_WITH((TopKSae<double>(kGradIn, kGradLatents, TopK{2, true}, {}, AuxK{std::nan("")})),
                    Contains("aux_loss_coefficient"));
  CHECK_THROWS_WITH((JumpReluSae<double>(kGradIn, kGradLatents, JumpRelu{-0.1, 0.05})), Contains("jumprelu_init_threshold"));
  CHECK_THROWS_WITH(
      (Sae<BatchTopK, NoPenalty, AuxK, Matryoshka, double>(kGradIn, kGradLatents, BatchTopK{2}, {}, {}, Matryoshka{{4, 3}})),
      Contains("matryoshka_widths") && Contains("[4, 3]"));
  // The bandwidth has one source: the penalty takes the activation's; a different one is an error.
  JumpReluSae<double> bound(kGradIn, kGradLatents, JumpRelu{0.1, 0.3}, L0StepPenalty{1.0});
  CHECK(bound.penalty().bandwidth == 0.3);
  CHECK_THROWS_WITH((JumpReluSae<double>(kGradIn, kGradLatents, JumpRelu{0.1, 0.3}, L0StepPenalty{1.0, 0.05})),
                    Contains("L0StepPenalty.bandwidth") && Contains("jumprelu_bandwidth"));
  // MatryoshkaAuxK's levels come from the nesting.
  Sae<BatchTopK, NoPenalty, MatryoshkaAuxK, Matryoshka, double> mat(kGradIn, kGradLatents, BatchTopK{2}, {},
                                                                    MatryoshkaAuxK{0.5}, Matryoshka{{2, 5}});
  CHECK(mat.aux().widths == std::vector<int>{2, 5});
}

TEST_CASE("the penalty uses its own coefficient; the trainer's scale only multiplies it", "[sae][composition]") {
  // Same SAE and input, L1 coefficient 2 vs 1: the penalty term doubles at any scale, and the
  // warm-up scale (step 3 of 12) gives a quarter of the coefficient (hand-worked: 2 * 3 / 12).
  const auto x = grad_input(31);
  StandardSae<double> two(kGradIn, kGradLatents, Relu{}, L1Penalty{2.0}, {}, {}, 0.5, 31);
  StandardSae<double> one(kGradIn, kGradLatents, Relu{}, L1Penalty{1.0}, {}, {}, 0.5, 31);
  const double p2 = two.loss(x).penalty, p1 = one.loss(x).penalty;
  REQUIRE(p1 > 0);
  CHECK(p2 == Approx(2 * p1).epsilon(1e-12));
  CHECK(PenaltyScale(0.5, 3, 12).lambda(2.0) == Approx(0.25));
  CHECK(two.loss(x, {}, 0, PenaltyScale(1.0, 3, 12)).penalty == Approx(p2 / 4).epsilon(1e-12));
  CHECK(two.loss(x, {}, 0, 0.5).penalty == Approx(p2 / 2).epsilon(1e-12));
}

TEST_CASE("apply_b_dec_to_input = false: the encoder sees x itself; gradients of every step path",
          "[sae][gradients]") {
  const auto x = grad_input(21);
  // A shifted copy x + b_dec: with the flag off, encode(x) must equal the default's encode(x + b_dec).
  auto shifted_encode_error = [&](auto& off, auto& on) {
    Matrix<double> xs("xs", kGradBatch, kGradIn), z_off("z_off", kGradBatch, kGradLatents), z_on("z_on", kGradBatch, kGradLatents);
    auto hx = Kokkos::create_mirror_view_and_copy(HostSpace(), x);
    auto hb = Kokkos::create_mirror_view_and_copy(HostSpace(), off.parameters().b_dec);
    auto hs = Kokkos::create_mirror_view(xs);
    for (int i = 0; i < kGradBatch; ++i)
      for (int k = 0; k < kGradIn; ++k) hs(i, k) = hx(i, k) + hb(k);
    Kokkos::deep_copy(xs, hs);
    off.encode(x, z_off);
    on.encode(xs, z_on);
    auto a = Kokkos::create_mirror_view_and_copy(HostSpace(), z_off);
    auto b = Kokkos::create_mirror_view_and_copy(HostSpace(), z_on);
    double worst = 0, largest = 0;
    for (int i = 0; i < kGradBatch; ++i)
      for (int j = 0; j < kGradLatents; ++j) worst = std::max(worst, std::fabs(a(i, j) - b(i, j))), largest = std::max(largest, std::fabs(a(i, j)));
    CHECK(largest > 0.1);  // not vacuous: latents fire
    return worst;
  };
  {
    INFO("standard, dense and adaptive sparse step");
    StandardSae<double> sae(kGradIn, kGradLatents, Relu{}, L1Penalty{2.0}, {}, {}, 0.5, 21);
    scramble(sae, 21);
    StandardSae<double> on = sae;
    on.parameters() = sae.parameters().clone();
    sae.set_apply_b_dec_to_input(false);
    CHECK_FALSE(sae.apply_b_dec_to_input());
    CHECK(shifted_encode_error(sae, on) < 1e-12);  // the same sums, reordered at most by rounding
    sae.set_sparse_step_max_density(0);
    CHECK(worst_gradient_error(sae, x, kCore, {}, 0, 0.7) < 1e-6);
    sae.set_sparse_step_max_density(1);
    CHECK(worst_gradient_error(sae, x, kCore, {}, 0, 0.7) < 1e-6);
    CHECK(sae.last_step_was_sparse());
    // The flag changes the b_dec gradient (the encoder term is gone), so the checks above bite.
    SaeParameters<double> g_off = sae.parameters().zeros_like(), g_on = on.parameters().zeros_like();
    sae.forward_backward(x, g_off, {}, 0, 0.7);
    on.set_sparse_step_max_density(1);
    on.forward_backward(x, g_on, {}, 0, 0.7);
    auto a = Kokkos::create_mirror_view_and_copy(HostSpace(), g_off.b_dec);
    auto b = Kokkos::create_mirror_view_and_copy(HostSpace(), g_on.b_dec);
    double diff = 0;
    for (int k = 0; k < kGradIn; ++k) diff = std::max(diff, std::fabs(a(k) - b(k)));
    CHECK(diff > 1e-3);
  }
  {
    INFO("topk, the sparse step");
    TopKSae<double> sae(kGradIn, kGradLatents, TopK{3, true}, {}, AuxK{1.0}, {}, 0.5, 22);
    scramble(sae, 22);
    sae.set_apply_b_dec_to_input(false);
    CHECK(worst_gradient_error(sae, x, kCore) < 1e-6);
    CHECK(sae.last_step_was_sparse());
  }
  {
    INFO("gated, dense and sparse");
    GatedSae<double> gated(kGradIn, kGradLatents, L1Penalty{1.5}, 0.5, 23);
    scramble(gated, 23);
    GatedSae<double> on = gated;
    on.parameters() = gated.parameters().clone();
    gated.set_apply_b_dec_to_input(false);
    CHECK(shifted_encode_error(gated, on) < 1e-12);
    const std::vector<std::string> tensors = {"W_enc", "W_dec", "b_dec", "b_gate", "r_mag", "b_mag"};
    gated.set_sparse_step_max_density(0);
    CHECK(worst_gradient_error(gated, x, tensors, {}, 0, 0.6) < 1e-6);
    gated.set_sparse_step_max_density(1);
    CHECK(worst_gradient_error(gated, x, tensors, {}, 0, 0.6) < 1e-6);
  }
  {
    INFO("matching pursuit: tied, so b_dec leaves the input and the output together");
    MatchingPursuitSae<double> mp(kGradIn, kGradLatents, MatchingPursuit{3, 0.0, false}, 24);
    scramble(mp, 24);
    mp.set_apply_b_dec_to_input(false);
    CHECK(worst_gradient_error(mp, x, {"W_dec", "b_dec"}) < 1e-6);
    SaeParameters<double> g = mp.parameters().zeros_like();
    mp.forward_backward(x, g);
    auto gb = Kokkos::create_mirror_view_and_copy(HostSpace(), g.b_dec);
    double largest = 0;
    for (int k = 0; k < kGradIn; ++k) largest = std::max(largest, std::fabs(gb(k)));
    CHECK(largest == 0.0);
    // decode(z) = z W_dec, no b_dec.
    Matrix<double> z("z", kGradBatch, kGradLatents), xh("xh", kGradBatch, kGradIn);
    mp.encode(x, z);
    mp.decode(z, xh);
    auto hz = Kokkos::create_mirror_view_and_copy(HostSpace(), z);
    auto hxh = Kokkos::create_mirror_view_and_copy(HostSpace(), xh);
    auto w = Kokkos::create_mirror_view_and_copy(HostSpace(), mp.parameters().w_dec);
    double worst = 0;
    for (int i = 0; i < kGradBatch; ++i)
      for (int k = 0; k < kGradIn; ++k) {
        double acc = 0;
        for (int j = 0; j < kGradLatents; ++j) acc += hz(i, j) * w(j, k);
        worst = std::max(worst, std::fabs(acc - hxh(i, k)));
      }
    CHECK(worst < 1e-12);
  }
}
