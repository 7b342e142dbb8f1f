// The worked example of docs/policies.md#write-your-own-activation (examples/gained_relu.hpp):
// a user's activation with its own parameter composes with the library's policies, and its
// hand-written backward matches finite differences.
#include <catch2/catch.hpp>

#include "gained_relu.hpp"
#include "sae_test_support.hpp"
#include "synthsae/sae/sae.hpp"

using namespace synthsae;

TEST_CASE("a user's activation (GainedRelu) has finite-difference-exact gradients", "[sae][gradients][custom]") {
  constexpr int kBatch = 6, kIn = 5, kLatents = 8;
  STATIC_REQUIRE(ActivationPolicy<example::GainedRelu, double>);
  Sae<example::GainedRelu, L1Penalty, NoAux, NoNesting, double> sae(kIn, kLatents, {}, L1Penalty{0.4}, {}, {}, 0.5, 21);
  REQUIRE(sae.parameters().extra.count("log_gain") == 1);
  test::scramble(sae, 21);  // log gains away from 0: exp(g) != 1 exercises the gain paths
  const auto x = test::random_input(kBatch, kIn, 21);
  // Central differences in float64 (tolerance derived in sae_test_support.hpp): reconstruction
  // and L1 through the gain, and the gain's own gradient.
  CHECK(test::worst_gradient_error(sae, x, {"W_enc", "b_enc", "W_dec", "b_dec", "log_gain"}, {}, 0, 0.7) < 1e-6);
  // The gain changes the reconstruction: the example is not a plain ReLU in disguise.
  SaeParameters<double> g = sae.parameters().zeros_like();
  sae.forward_backward(x, g);
  auto dg = Kokkos::create_mirror_view_and_copy(HostSpace(), g.extra.at("log_gain"));
  double largest = 0;
  for (int j = 0; j < kLatents; ++j) largest = std::max(largest, std::fabs(dg(j)));
  // A plain ReLU would give exactly 0 here; 1e-3 is far above float64 rounding (~1e-15) and far
  // below the gradients of these O(1) inputs, so the check only fails if the gain path is dead.
  CHECK(largest > 1e-3);
}
