// The same seed gives the same batches on every build: a CPU-made fixture of sparse ground truth
// (ids and values, compared exactly) and hidden vectors (compared to float rounding) that the
// CUDA build's run of this test must reproduce. SYNTHSAE_WRITE_FIXTURES=1 rewrites the fixture
// (only on purpose: a changed random layout is a documented change).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "synthsae/io/json.hpp"
#include "synthsae/world/presets.hpp"
#include "synthsae/world/synthetic_model.hpp"

using namespace synthsae;

namespace {

const std::string kFixture = std::string(SYNTHSAE_SOURCE_DIR) + "/tests/data/fixtures/same_batches.json";
constexpr std::uint64_t kFirst = 1'000'003;
constexpr int kBatch = 8;
constexpr int kHiddenRows = 4, kHiddenDims = 128;  // x's slice in the fixture (keeps it ~40 KB)

struct Drawn {
  std::vector<std::vector<int>> ids;
  std::vector<std::vector<float>> values, hidden;
};

// The sampler needs no dictionary, and a world without orthogonalisation has one made of direct
// draws: the same preset shapes as the benchmark, in seconds.
Drawn draw(const char* name) {
  auto cfg = preset(name);
  cfg.orthogonalization.reset();
  SyntheticModel world(cfg);
  SparseBatch<float> sb;
  world.sample_features_at(sb, kFirst, kBatch);
  Matrix<float> x("x", kBatch, world.hidden_dim());
  world.hidden_at(sb, kFirst, x);
  auto ids = Kokkos::create_mirror_view_and_copy(HostSpace(), sb.ids);
  auto values = Kokkos::create_mirror_view_and_copy(HostSpace(), sb.values);
  auto counts = Kokkos::create_mirror_view_and_copy(HostSpace(), sb.counts);
  auto hx = Kokkos::create_mirror_view_and_copy(HostSpace(), x);
  Drawn d;
  for (int b = 0; b < kBatch; ++b) {
    d.ids.emplace_back(), d.values.emplace_back(), d.hidden.emplace_back();
    for (int q = 0; q < counts(b); ++q) d.ids.back().push_back(ids(b, q)), d.values.back().push_back(values(b, q));
    if (b < kHiddenRows)
      for (std::size_t k = 0; k < std::min<std::size_t>(hx.extent(1), kHiddenDims); ++k) d.hidden.back().push_back(hx(b, k));
  }
  d.hidden.resize(kHiddenRows);
  return d;
}

}  // namespace

TEST_CASE("the same seed draws the same batches as the CPU-made fixture (sparse truth exactly, x to rounding)",
          "[world][sampler]") {
  const char* worlds[] = {"synth-sae-bench-16k", "cpu-1k"};
  if (const char* w = std::getenv("SYNTHSAE_WRITE_FIXTURES"); w && std::string(w) == "1") {
    io::Json out;
    for (const char* name : worlds) {
      const Drawn d = draw(name);
      out[name] = {{"first_sample", kFirst}, {"ids", d.ids}, {"values", d.values}, {"hidden", d.hidden}};
    }
    io::write_json_file(kFixture, out, -1);
    WARN("wrote " << kFixture);
  }
  const io::Json fixture = io::read_json_file(kFixture);
  for (const char* name : worlds) {
    INFO(name);
    const Drawn d = draw(name);
    const auto& f = fixture.at(name);
    REQUIRE(f.at("first_sample").get<std::uint64_t>() == kFirst);
    // Ids and values come from counter-based draws and the same float operations on every build.
    CHECK(d.ids == f.at("ids").get<std::vector<std::vector<int>>>());
    CHECK(d.values == f.at("values").get<std::vector<std::vector<float>>>());
    // x sums ~35 float terms per entry, in the same order, but a GPU may fuse other multiply-adds:
    // each term rounds at 2^-24 relative, so 1e-5 of the row's norm bounds the difference with
    // a wide margin while any wrong or missing term (>= 1e-3 of the norm here) fails. The fixture
    // holds the first 128 entries of the first 4 rows.
    const auto hidden = f.at("hidden").get<std::vector<std::vector<float>>>();
    REQUIRE(hidden.size() == d.hidden.size());
    std::size_t active = 0;
    for (std::size_t b = 0; b < hidden.size(); ++b) {
      REQUIRE(hidden[b].size() == d.hidden[b].size());
      double norm = 0, worst = 0;
      for (std::size_t k = 0; k < hidden[b].size(); ++k) {
        norm += double(hidden[b][k]) * hidden[b][k];
        worst = std::max(worst, std::fabs(double(hidden[b][k]) - d.hidden[b][k]));
      }
      CHECK(norm > 0);
      CHECK(worst <= 1e-5 * std::sqrt(norm));
    }
    for (const auto& row : d.ids) active += row.size();
    CHECK(active > std::size_t(kBatch) * 5);
  }
}
