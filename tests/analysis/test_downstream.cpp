// The downstream hook (reference dark-matter.md §2.9): the two built-in losses against brute force
// (an independent pseudo-inverse, dense coefficients), and the fraction of loss recovered against
// a hand-worked identity: on an orthonormal dictionary the pseudo-inverse loss is ‖y - x‖², so the
// loss a component recovers is exactly the share of the error variance it recovers.
#include <catch2/catch.hpp>

#include <Eigen/QR>

#include <memory>

#include "synthsae/analysis/downstream.hpp"

using namespace synthsae;
using namespace synthsae::analysis;

TEST_CASE("downstream losses equal brute force on a small world in superposition", "[analysis][downstream]") {
  SyntheticModelConfig cfg;
  cfg.num_features = 24, cfg.hidden_dim = 8;
  cfg.firing_probability = Zipfian{1.0, 0.4, 0.05};
  cfg.bias = BiasSpec{BiasSpec::Kind::norm, 0.7};
  cfg.seed = 5;
  SyntheticModel world(cfg);
  SyntheticSource source(world, 300);
  ActivationChunk chunk;
  source.read(0, 300, chunk);
  const Eigen::MatrixXd x = host_eigen(chunk.x);
  const Eigen::MatrixXd dict = host_eigen(world.feature_vectors());
  const Eigen::RowVectorXd b = analysis::detail::host_row(&world.bias(), 8);
  // x = c D + b, D [24, 8]: the minimum-norm c_hat = (x - b) pinv(D).
  const Eigen::MatrixXd pinv = dict.completeOrthogonalDecomposition().pseudoInverse();  // [8, 24]
  const PseudoInverseRecovery recovery(world.feature_vectors(), &world.bias());
  const ReluReadout readout(world.feature_vectors(), &world.bias(), 12, 5, 3);
  const analysis::detail::HostTruth truth(chunk);
  // y: x moved off the data, so that every term of the losses is exercised.
  Eigen::MatrixXd y = x;
  for (Eigen::Index i = 0; i < y.rows(); ++i) y(i, i % 8) += 0.3 * std::sin(double(i));
  const Eigen::VectorXd got_a = recovery(y, chunk), got_b = readout(y, chunk);
  double worst_a = 0, worst_b = 0, total_a = 0;
  for (Eigen::Index i = 0; i < y.rows(); ++i) {
    Eigen::RowVectorXd c = Eigen::RowVectorXd::Zero(24);
    for (const auto& [id, v] : truth.rows[i]) c(id) = v;
    const Eigen::RowVectorXd c_hat = (y.row(i) - b) * pinv;
    const double a = (c_hat - c).squaredNorm();
    const Eigen::RowVectorXd g_hat = (c_hat * readout.w1()).cwiseMax(0.0) * readout.w2();
    const Eigen::RowVectorXd g = (c * readout.w1()).cwiseMax(0.0) * readout.w2();
    worst_a = std::max(worst_a, std::fabs(a - got_a(i)) / (1 + a));
    worst_b = std::max(worst_b, std::fabs((g_hat - g).squaredNorm() - got_b(i)) / (1 + (g_hat - g).squaredNorm()));
    total_a += a;
  }
  CHECK(total_a > 1.0);  // in superposition: linear decoding loses something
  CHECK(worst_a < 1e-9);
  CHECK(worst_b < 1e-9);
  // At y = x, c_hat is the projection of c onto the column space of D (in R^N):
  // L(x) = ‖c‖² - ‖c_hat‖² ≥ 0.
  const Eigen::VectorXd at_x = recovery(x, chunk);
  CHECK(at_x.minCoeff() > -1e-9);
  CHECK(at_x.sum() < total_a);
}

TEST_CASE("downstream: on an orthonormal dictionary the loss recovered is the variance share",
          "[analysis][downstream]") {
  // 16 features along the 16 axes: x = c exactly (float sums of one nonzero per coordinate).
  const int n = 16;
  SyntheticModelConfig mc;
  mc.num_features = n, mc.hidden_dim = n;
  mc.bias = BiasSpec{BiasSpec::Kind::none, 0.0};
  mc.std_firing_magnitudes = ConstantMagnitude{0.2};
  mc.seed = 9;
  SyntheticModelParts parts;
  parts.feature_vectors = Matrix<float>("axes", n, n);
  auto h = Kokkos::create_mirror_view(parts.feature_vectors);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k) h(i, k) = i == k ? 1.0f : 0.0f;
  Kokkos::deep_copy(parts.feature_vectors, h);
  parts.bias = Vector<float>("bias", n);
  parts.firing_probabilities = Zipfian{1.0, 0.4, 0.05}.generate(n, 0);
  SyntheticModel world(mc, std::move(parts));
  SyntheticSource source(world, 20000);
  // An oracle that misses half the features and adds isotropic noise: SaeError has a linear part
  // (the missed features, which x determines) and a nonlinear one (the noise).
  auto oracle = std::make_shared<const OracleSae>(source, parse_oracle_spec("top:8,isotropic=0.05"));
  const PseudoInverseRecovery recovery(world.feature_vectors(), &world.bias());
  const ReluReadout readout(world.feature_vectors(), &world.bias());
  DownstreamOptions opt;
  opt.rows = 20000;
  const auto rep = downstream_effect(source, oracle_reconstruction(oracle), "oracle",
                                     {recovery.loss(), readout.loss()}, opt);
  REQUIRE(rep.losses.size() == 2);
  const auto& a = rep.losses[0];
  CHECK(a.name == "pinv_recovery");
  CHECK(std::fabs(a.loss_x) < 1e-9);
  CHECK(rep.losses[1].loss_x < 1e-9);
  // L(y) = ‖y - x‖²: L(Sae) = ‖SaeError‖², L(Sae + comp) = ‖SaeError - comp‖². Both sides are sums
  // over the same test rows in double, so they agree to rounding.
  CHECK(a.linear.recovered == Approx(rep.linear_variance_share).epsilon(1e-9));
  CHECK(a.nonlinear.recovered == Approx(rep.nonlinear_variance_share).epsilon(1e-9));
  // The missed features are linear in x, the noise is not: LinearError recovers the missed part.
  CHECK(rep.linear_variance_share > 0.5);
  CHECK(rep.nonlinear_variance_share > 0.05);
  CHECK(rep.linear_norm_vs_error > rep.nonlinear_norm_vs_error);
  CHECK(rep.test_rows == 8000);
  CHECK(rep.train_rows == 12000);
  // Each component recovers a share of the readout loss between 0 and 1 here (nothing overshoots).
  for (const auto* c : {&rep.losses[1].linear, &rep.losses[1].nonlinear}) {
    CHECK(c->recovered > 0);
    CHECK(c->recovered < 1);
  }
}

TEST_CASE("downstream: a user's loss that returns the wrong number of rows is named", "[analysis][downstream]") {
  SyntheticModelConfig cfg;
  cfg.num_features = 24, cfg.hidden_dim = 8, cfg.seed = 2;
  cfg.bias = BiasSpec{BiasSpec::Kind::none, 0.0};
  SyntheticModel world(cfg);
  SyntheticSource source(world, 100);
  auto oracle = std::make_shared<const OracleSae>(source, parse_oracle_spec("top:4"));
  const DownstreamLoss bad{"my_loss", [](const Eigen::MatrixXd& y, const ActivationChunk&) {
                             return Eigen::VectorXd::Zero(y.rows() + 1).eval();
                           }};
  DownstreamOptions opt;
  opt.rows = 100;
  CHECK_THROWS_WITH(downstream_effect(source, oracle_reconstruction(oracle), "o", {bad}, opt),
                    Catch::Contains("my_loss") && Catch::Contains("101"));
  CHECK_THROWS_WITH(downstream_effect(source, oracle_reconstruction(oracle), "o", {}, opt),
                    Catch::Contains("downstream losses"));
}
