// One training step of the TopK family with dead latents, against SAELens's own step
// (tests/data/saelens/topk_family_steps.json, made by scripts/saelens_fixtures.py --steps):
// TopK and BatchTopK with AuxK, Matryoshka BatchTopK with its per-level aux loss, decoder-norm
// rescaling on. The same weights and batch give the same feature activations, every loss, every
// parameter's gradient and BatchTopK's running threshold.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "saelens/fixture_tensors.hpp"
#include "synthsae/sae/sae.hpp"

using namespace synthsae;

TEST_CASE("a TopK-family step with dead latents is SAELens's step: activations, losses, gradients",
          "[saelens][sae]") {
  const auto fx = io::read_json_file(test::kSaelensData / "topk_family_steps.json");
  const Matrix<float> x = test::fixture_rows(fx.at("x"));
  const std::size_t d = x.extent(1);
  const auto dead_flags = fx.at("dead").get<std::vector<bool>>();
  const std::size_t s = dead_flags.size();
  Kokkos::View<std::uint8_t*, MemSpace> dead("dead", s);
  std::size_t num_dead = 0;
  {
    auto h = Kokkos::create_mirror_view(dead);
    for (std::size_t j = 0; j < s; ++j) h(j) = dead_flags[j], num_dead += dead_flags[j];
    Kokkos::deep_copy(dead, h);
  }
  // Float on both sides; sums of at most d x s = 48 products of order-1 values in another order,
  // and AuxK's budget min(num_dead, d / 2) = 3 of 4 dead latents: 2e-6 relative to 1 + |value|.
  auto check = [&](auto& sae, const io::Json& step) {
    auto& p = sae.parameters();
    const auto& before = step.at("before");
    test::load_tensor(before, "W_enc", p.w_enc), test::load_tensor(before, "b_enc", p.b_enc);
    test::load_tensor(before, "W_dec", p.w_dec), test::load_tensor(before, "b_dec", p.b_dec);
    SaeParameters<float> g = p.zeros_like();
    const StepLosses ours = sae.forward_backward(x, g, dead, num_dead);
    const auto& losses = step.at("losses");
    CHECK(test::worst_error(step, "feature_acts", sae.last_activations()) < 2e-6);
    CHECK(ours.mse == Approx(losses.at("mse_loss").get<double>()).epsilon(2e-6));
    CHECK(ours.aux == Approx(losses.at("auxiliary_reconstruction_loss").get<double>()).epsilon(2e-6));
    double inner = 0;
    for (const auto& [name, v] : losses.items())
      if (name.rfind("inner_mse_loss_", 0) == 0) inner += v.template get<double>();
    CHECK(ours.inner_mse == Approx(inner).margin(1e-5).epsilon(2e-6));
    CHECK(ours.total() == Approx(step.at("loss").get<double>()).epsilon(2e-6));
    const auto& grads = step.at("grads");
    CHECK(test::worst_error(grads, "W_enc", g.w_enc) < 2e-6);
    CHECK(test::worst_error(grads, "b_enc", g.b_enc) < 2e-6);
    CHECK(test::worst_error(grads, "W_dec", g.w_dec) < 2e-6);
    CHECK(test::worst_error(grads, "b_dec", g.b_dec) < 2e-6);
    // BatchTopK's threshold: 0.01 of the smallest positive kept activation after one step from 0.
    if constexpr (requires { sae.activation_state().threshold; })
      CHECK(sae.activation_state().threshold == Approx(step.at("topk_threshold_after").template get<double>()).epsilon(1e-6));
  };
  const auto& steps = fx.at("steps");
  {
    INFO("topk");
    TopKSae<float> sae(d, s, TopK{2, true}, {}, AuxK{1.0}, {}, 0.5, 0);
    check(sae, steps.at("topk"));
  }
  {
    INFO("batchtopk");
    BatchTopKSae<float> sae(d, s, BatchTopK{2, true, 0.01}, {}, AuxK{1.0}, {}, 0.5, 0);
    check(sae, steps.at("batchtopk"));
  }
  {
    INFO("matryoshka_batchtopk");
    Sae<BatchTopK, NoPenalty, MatryoshkaAuxK, Matryoshka, float> sae(d, s, BatchTopK{2, true, 0.01}, {},
                                                                     MatryoshkaAuxK{1.0}, Matryoshka{{2, 4}}, 0.5, 0);
    check(sae, steps.at("matryoshka_batchtopk"));
  }
}
