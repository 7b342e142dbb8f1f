// Dense components (world/dense_component.hpp): the config keys and their errors, each kind's
// share of the variance, its geometry (a rank-r subspace; circles of a fixed radius), the hidden
// vector as sparse part + bias + dense part to the bit, reproducible draws, and the files.
#include <catch2/catch.hpp>

#include <Eigen/Dense>
#include <cmath>
#include <filesystem>

#include <unistd.h>

#include "synthsae/saelens/model_directory.hpp"
#include "synthsae/world/synthetic_model.hpp"

using namespace synthsae;

namespace {

SyntheticModelConfig dense_world(std::vector<DenseComponentSpec> dense) {
  SyntheticModelConfig c;
  c.num_features = 64;
  c.hidden_dim = 32;
  c.firing_probability = Zipfian{0.5, 0.3, 0.02};
  c.mean_firing_magnitudes = ConstantMagnitude{1.0};
  c.std_firing_magnitudes = ConstantMagnitude{0.2};
  c.seed = 11;
  c.dense_components = std::move(dense);
  return c;
}

DenseComponentSpec spec(DenseComponentSpec::Kind kind, double f, std::int64_t rank = 0, std::int64_t count = 0) {
  DenseComponentSpec s;
  s.kind = kind, s.variance_fraction = f, s.rank = rank, s.count = count;
  return s;
}

/// Σ_k Var of each matrix's columns over the rows of a batch.
double total_variance(const Matrix<float>& m) {
  const auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), m);
  double v = 0;
  for (std::size_t k = 0; k < m.extent(1); ++k) {
    double s = 0, ss = 0;
    for (std::size_t i = 0; i < m.extent(0); ++i) s += h(i, k), ss += double(h(i, k)) * h(i, k);
    v += ss / double(m.extent(0)) - (s / double(m.extent(0))) * (s / double(m.extent(0)));
  }
  return v;
}

}  // namespace

TEST_CASE("dense components take their variance fraction of x", "[world][dense]") {
  using K = DenseComponentSpec::Kind;
  for (const auto& s : {spec(K::isotropic, 0.1), spec(K::low_rank, 0.2, 4), spec(K::circles, 0.15, 0, 3)}) {
    INFO(DenseComponentSpec::kind_name(s.kind));
    SyntheticModel world(dense_world({s}));
    REQUIRE(world.has_dense());
    world.set_position(1000);
    const auto batch = world.sample(40'000);
    REQUIRE(batch.dense.extent(0) == 40'000);
    // The sparse part's variance is measured on 16,384 rows when the world is built and here on
    // 40,000 others: the share is off by ~1% of itself at most (5 standard errors of each).
    const double share = total_variance(batch.dense) / total_variance(batch.hidden);
    CHECK(share == Approx(s.variance_fraction).epsilon(0.06));
    CHECK(total_variance(batch.dense) == Approx(world.dense_parts().variance(32)).epsilon(0.03));
  }
  SECTION("all three at once") {
    SyntheticModel world(dense_world({spec(K::isotropic, 0.1), spec(K::low_rank, 0.1, 8), spec(K::circles, 0.05, 0, 2)}));
    world.set_position(77);
    const auto batch = world.sample(40'000);
    CHECK(total_variance(batch.dense) / total_variance(batch.hidden) == Approx(0.25).epsilon(0.06));
  }
}

TEST_CASE("dense components: geometry, the hidden vector to the bit, reproducible draws", "[world][dense]") {
  using K = DenseComponentSpec::Kind;
  SECTION("low rank lies in its subspace") {
    SyntheticModel world(dense_world({spec(K::low_rank, 0.2, 5)}));
    const auto b = world.sample(500);
    const auto q = Kokkos::create_mirror_view_and_copy(HostSpace(), world.dense_parts().low_rank_basis);
    const auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), b.dense);
    Eigen::MatrixXd Q(5, 32);
    for (int r = 0; r < 5; ++r)
      for (int k = 0; k < 32; ++k) Q(r, k) = q(r, k);
    CHECK((Q * Q.transpose() - Eigen::MatrixXd::Identity(5, 5)).cwiseAbs().maxCoeff() < 1e-6);
    for (int i = 0; i < 500; ++i) {
      Eigen::VectorXd v(32);
      for (int k = 0; k < 32; ++k) v(k) = h(i, k);
      REQUIRE((v - Q.transpose() * (Q * v)).norm() < 1e-5 * (1 + v.norm()));
    }
  }
  SECTION("a circle has a fixed radius in its plane") {
    SyntheticModel world(dense_world({spec(K::circles, 0.1, 0, 1)}));
    const float m = world.dense_parts().circle_magnitude;
    const auto b = world.sample(500);
    const auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), b.dense);
    for (int i = 0; i < 500; ++i) {
      double s = 0;
      for (int k = 0; k < 32; ++k) s += double(h(i, k)) * h(i, k);
      REQUIRE(std::sqrt(s) == Approx(m).epsilon(1e-5));
    }
  }
  SECTION("hidden = Σ c_i d_i + bias + dense, and the draws are functions of the sample index") {
    SyntheticModel world(dense_world({spec(K::isotropic, 0.1), spec(K::circles, 0.1, 0, 2)}));
    world.set_position(5'000);
    const auto b = world.sample(256);
    Matrix<float> sparse("sparse", 256, 32), again("again", 256, 32), dense_again;
    hidden_from_sparse(b.features, world.feature_vectors(), world.bias(), sparse);
    world.hidden_at(b.features, 5'000, again, &dense_again);
    const auto hs = Kokkos::create_mirror_view_and_copy(HostSpace(), sparse);
    const auto hd = Kokkos::create_mirror_view_and_copy(HostSpace(), b.dense);
    const auto hh = Kokkos::create_mirror_view_and_copy(HostSpace(), b.hidden);
    const auto ha = Kokkos::create_mirror_view_and_copy(HostSpace(), again);
    const auto hda = Kokkos::create_mirror_view_and_copy(HostSpace(), dense_again);
    for (int i = 0; i < 256; ++i)
      for (int k = 0; k < 32; ++k) {
        REQUIRE(hh(i, k) == hs(i, k) + hd(i, k));
        REQUIRE(ha(i, k) == hh(i, k));
        REQUIRE(hda(i, k) == hd(i, k));
      }
    // Another position, another draw; another sampling stream, another draw.
    world.set_position(5'001);
    const auto shifted = Kokkos::create_mirror_view_and_copy(HostSpace(), world.sample(1).dense);
    CHECK(shifted(0, 0) == hd(1, 0));
    world.set_sampling_seed(world.sampling_seed() + 1);
    world.set_position(5'000);
    const auto other = Kokkos::create_mirror_view_and_copy(HostSpace(), world.sample(1).dense);
    CHECK(other(0, 0) != hd(0, 0));
  }
}

TEST_CASE("dense components: files and config errors", "[world][dense][saelens]") {
  using K = DenseComponentSpec::Kind;
  const auto dir = std::filesystem::temp_directory_path() / ("synthsae_dense_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  SECTION("a world with dense components saves and reloads to the same batches") {
    SyntheticModel world(dense_world({spec(K::low_rank, 0.1, 3), spec(K::circles, 0.1, 0, 2)}));
    saelens::save_synthetic_model(world, dir);
    const auto w = io::read_safetensors(dir / "synthetic_model.safetensors");
    CHECK(w.contains("dense_scales"));
    CHECK(w.contains("dense_low_rank_basis"));
    CHECK(w.contains("dense_circle_planes"));
    CHECK(io::read_json_file(dir / "synthetic_model_config.json")["dense_components"].size() == 2);
    auto loaded = saelens::load_synthetic_model(dir);
    REQUIRE(loaded.has_dense());
    world.set_position(300), loaded.set_position(300);
    const auto a = Kokkos::create_mirror_view_and_copy(HostSpace(), world.sample(64).hidden);
    const auto b = Kokkos::create_mirror_view_and_copy(HostSpace(), loaded.sample(64).hidden);
    for (std::size_t i = 0; i < 64 * 32; ++i) REQUIRE(a.data()[i] == b.data()[i]);
  }
  SECTION("a world without them writes SAELens's files unchanged") {
    SyntheticModel world(dense_world({}));
    CHECK_FALSE(world.has_dense());
    CHECK(world.sample(4).dense.extent(0) == 0);
    saelens::save_synthetic_model(world, dir);
    CHECK_FALSE(io::read_safetensors(dir / "synthetic_model.safetensors").contains("dense_scales"));
    CHECK_FALSE(io::read_json_file(dir / "synthetic_model_config.json").contains("dense_components"));
  }
  SECTION("bad dense components name the field") {
    auto with = [](const char* dense) {
      auto j = dense_world({}).to_json();
      j["dense_components"] = io::Json::parse(dense);
      return SyntheticModelConfig::from_json(j);
    };
    CHECK(with(R"([{"kind": "low_rank", "rank": 4, "variance_fraction": 0.1}])").dense_components[0].rank == 4);
    CHECK_THROWS_WITH(with(R"([{"kind": "blob", "variance_fraction": 0.1}])"), Catch::Contains("dense_components.kind"));
    CHECK_THROWS_WITH(with(R"([{"kind": "isotropic", "variance_fraction": 1.5}])"),
                      Catch::Contains("dense_components.variance_fraction") && Catch::Contains("1.5"));
    CHECK_THROWS_WITH(with(R"([{"kind": "low_rank", "rank": 0, "variance_fraction": 0.1}])"),
                      Catch::Contains("dense_components.rank"));
    CHECK_THROWS_WITH(with(R"([{"kind": "low_rank", "rank": 33, "variance_fraction": 0.1}])"),
                      Catch::Contains("dense_components.rank") && Catch::Contains("33"));
    CHECK_THROWS_WITH(with(R"([{"kind": "circles", "count": 17, "variance_fraction": 0.1}])"),
                      Catch::Contains("dense_components.count"));
    CHECK_THROWS_WITH(with(R"([{"kind": "isotropic", "count": 2, "variance_fraction": 0.1}])"),
                      Catch::Contains("only circles have a count"));
    CHECK_THROWS_WITH(with(R"([{"kind": "isotropic", "variance_fraction": 0.1, "sigma": 2}])"),
                      Catch::Contains("dense_components.sigma"));
    CHECK_THROWS_WITH(with(R"([{"kind": "isotropic", "variance_fraction": 0.6},
                                {"kind": "circles", "count": 1, "variance_fraction": 0.5}])"),
                      Catch::Contains("add up to less than 1"));
    CHECK_THROWS_WITH(with(R"([{"kind": "isotropic", "variance_fraction": 0.1},
                                {"kind": "isotropic", "variance_fraction": 0.1}])"),
                      Catch::Contains("twice"));
    CHECK_THROWS_WITH(with(R"({"kind": "isotropic"})"), Catch::Contains("dense_components") && Catch::Contains("list"));
    // A misspelt top-level key is named as such (the whole config's keys are listed).
    auto j = dense_world({}).to_json();
    j["dense_component"] = io::Json::array();
    CHECK_THROWS_WITH(SyntheticModelConfig::from_json(j),
                      Catch::StartsWith("dense_component = []: is not a key of the synthetic model config") &&
                          Catch::Contains("dense_components"));
  }
  std::filesystem::remove_all(dir);
}
