// Firing probabilities, magnitudes, hierarchy generation and compensation against the
// reference's exact values (../shared/reference/synthsaebench.md §3.1, §3.2, §4.2, §4.3).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "synthsae/world/firing_probability.hpp"
#include "synthsae/world/hierarchy.hpp"
#include "synthsae/world/magnitude.hpp"
#include "synthsae/world/presets.hpp"

using namespace synthsae;

TEST_CASE("Zipfian probabilities of SynthSAEBench-16k match the reference", "[world][firing]") {
  const auto p = Zipfian{0.5, 0.4, 0.0005}.generate(16384, 0);
  CHECK(p[0] == Approx(0.4).epsilon(1e-12));
  CHECK(p[1] == Approx(0.28207).margin(5e-6));
  CHECK(p[127] == Approx(0.032944).margin(5e-7));
  CHECK(p[128] == Approx(0.032805).margin(5e-7));
  CHECK(p[639] == Approx(0.013270).margin(5e-7));
  CHECK(p[2687] == Approx(0.0051205).margin(5e-8));
  CHECK(p[10879] == Approx(0.0012145).margin(5e-8));
  CHECK(p[16383] == Approx(0.0005).epsilon(1e-12));
  CHECK(std::accumulate(p.begin(), p.end(), 0.0) == Approx(59.144).margin(5e-4));
  CHECK(std::accumulate(p.begin(), p.begin() + 4096, 0.0) == Approx(40.117).margin(5e-4));
}

TEST_CASE("Linear, Random and Constant firing probabilities", "[world][firing]") {
  const auto lin = LinearFiring{0.3, 0.1}.generate(5, 0);
  REQUIRE(lin.size() == 5);
  for (int i = 0; i < 5; ++i) CHECK(lin[i] == Approx(0.3 - 0.05 * i).epsilon(1e-14));
  CHECK(ConstantFiring{0.2}.generate(3, 0) == std::vector<double>(3, 0.2));
  const auto r = RandomFiring{0.5, 0.1}.generate(20000, 7);
  // Uniform on [0.1, 0.5]: mean 0.3, sd 0.4/sqrt(12) = 0.1155, SE of the mean 8.2e-4; 5 SE.
  const double mean = std::accumulate(r.begin(), r.end(), 0.0) / r.size();
  CHECK(std::fabs(mean - 0.3) < 5 * 8.2e-4);
  CHECK(*std::min_element(r.begin(), r.end()) >= 0.1);
  CHECK(*std::max_element(r.begin(), r.end()) <= 0.5);
  CHECK(RandomFiring{0.5, 0.1}.generate(10, 7) == RandomFiring{0.5, 0.1}.generate(10, 7));
}

TEST_CASE("bad firing configs name the field and the value", "[world][firing]") {
  CHECK_THROWS_WITH(Zipfian({0.5, 0.1, 0.2}).generate(4, 0),
                    Catch::Contains("min_prob/max_prob") && Catch::Contains("0.2/0.1"));
  CHECK_THROWS_WITH(Zipfian({-1.0, 0.4, 0.1}).generate(4, 0), Catch::Contains("exponent = -1"));
  CHECK_THROWS_WITH(firing_probability_from_json(io::Json::parse(R"({"generator_name": "zipf"})")),
                    Catch::Contains("generator_name") && Catch::Contains("zipf"));
}

TEST_CASE("magnitude generators", "[world][magnitude]") {
  const auto mu = LinearMagnitude{5.0, 4.0}.generate(16384, 0);
  CHECK(mu[0] == 5.0);
  CHECK(mu[16383] == 4.0);
  CHECK(mu[8191] == Approx(5.0 - 8191.0 / 16383.0).epsilon(1e-14));
  const auto ex = ExponentialMagnitude{1.0, 4.0}.generate(3, 0);
  CHECK(ex[1] == Approx(2.0).epsilon(1e-14));  // 1 * 4^(1/2)
  // Folded normal |0.5 + 0.5 z|: E = s sqrt(2/pi) e^{-m^2/2s^2} + m (1 - 2 Phi(-m/s)) = 0.5835;
  // sd about 0.39, so the mean of 16384 draws has SE 0.003; 5 SE.
  const auto sd = FoldedNormalMagnitude{0.5, 0.5, std::nullopt, std::nullopt}.generate(16384, 43);
  const double mean = std::accumulate(sd.begin(), sd.end(), 0.0) / sd.size();
  CHECK(std::fabs(mean - 0.5835) < 5 * 0.003);
  CHECK(*std::min_element(sd.begin(), sd.end()) >= 0.0);
  const auto clamped = FoldedNormalMagnitude{0.5, 0.5, 0.2, 1.0}.generate(1000, 1);
  CHECK(*std::min_element(clamped.begin(), clamped.end()) >= 0.2);
  CHECK(*std::max_element(clamped.begin(), clamped.end()) <= 1.0);
  CHECK(std::holds_alternative<ConstantMagnitude>(magnitude_from_json(io::Json(2.5), "mean_firing_magnitudes")));
  CHECK_THROWS_WITH(magnitude_from_json(io::Json::parse(R"({"generator_name":"linear","start":-1,"end":2})"),
                                        "mean_firing_magnitudes"),
                    Catch::Contains("mean_firing_magnitudes") && Catch::Contains("-1"));
}

TEST_CASE("the 16k forest has the reference's breadth-first index layout", "[world][hierarchy]") {
  const auto cfg = preset("synth-sae-bench-16k");
  const Forest forest = generate_hierarchy(16384, *cfg.hierarchy, 45);
  CHECK(forest.num_hierarchical_features() == 10880);
  CHECK(forest.roots.size() == 128);
  const auto t = flatten_hierarchy(forest, 16384);
  int wrong_parent = 0, wrong_depth = 0, not_exclusive = 0;
  for (int i = 0; i < 16384; ++i) {
    int parent = -1, depth = 0;
    if (i >= 128 && i < 640)
      parent = (i - 128) / 4, depth = 1;
    else if (i >= 640 && i < 2688)
      parent = 128 + (i - 640) / 4, depth = 2;
    else if (i >= 2688 && i < 10880)
      parent = 640 + (i - 2688) / 4, depth = 3;
    wrong_parent += t.parent[i] != parent;
    wrong_depth += t.depth[i] != depth;
    const bool internal = i < 2688;
    // Each internal feature anchors one group, its own 4 children, exclusive and scaled.
    const int g = t.group_offsets[i];
    const bool own_group = t.group_offsets[i + 1] - g == 1 && t.group_exclusive[g] && t.group_scaled[g] &&
                           t.member_offsets[g + 1] - t.member_offsets[g] == 4;
    not_exclusive += internal != own_group;
  }
  CHECK(wrong_parent == 0);
  CHECK(wrong_depth == 0);
  CHECK(not_exclusive == 0);
  CHECK(t.top_level.size() == 128 + 5504);
  CHECK(t.num_groups() == 2688);
  CHECK(t.group_offsets[16385] == t.group_offsets[16384]);  // no parentless exclusive groups
  CHECK(t.max_depth == 3);
}

TEST_CASE("compensated 16k probabilities match the reference", "[world][hierarchy]") {
  const auto cfg = preset("synth-sae-bench-16k");
  const Forest forest = generate_hierarchy(16384, *cfg.hierarchy, 45);
  const auto p = Zipfian{0.5, 0.4, 0.0005}.generate(16384, 0);
  const auto c = probability_correction_factors(forest, p);
  double max_p = 0;
  int clamped = 0;
  double lo1 = 1, hi1 = 0, lo2 = 1, hi2 = 0, lo3 = 1, hi3 = 0;
  for (int i = 0; i < 16384; ++i) {
    const double q = p[i] * c[i];
    clamped += q >= 1.0;
    max_p = std::max(max_p, q);
    if (i >= 128 && i < 640) lo1 = std::min(lo1, q), hi1 = std::max(hi1, q);
    if (i >= 640 && i < 2688) lo2 = std::min(lo2, q), hi2 = std::max(hi2, q);
    if (i >= 2688 && i < 10880) lo3 = std::min(lo3, q), hi3 = std::max(hi3, q);
    if (i < 128 || i >= 10880) CHECK(c[i] == 1.0);
  }
  CHECK(clamped == 0);
  CHECK(max_p == Approx(0.9151).margin(5e-5));
  CHECK(lo1 == Approx(0.101).margin(5e-4));
  CHECK(hi1 == Approx(0.893).margin(5e-4));
  CHECK(lo2 == Approx(0.833).margin(5e-4));
  CHECK(hi2 == Approx(0.915).margin(5e-4));
  CHECK(lo3 == Approx(0.406).margin(5e-4));
  CHECK(hi3 == Approx(0.833).margin(5e-4));
  // Hand-worked: child 128 of root 0 in an ME group {128..131}:
  // p'_128 = p_128 / p_0 * (1 + (p_129 + p_130 + p_131) / p_0).
  CHECK(p[128] * c[128] == Approx(p[128] / p[0] * (1 + (p[129] + p[130] + p[131]) / p[0])).epsilon(1e-14));
}

TEST_CASE("hierarchy generation honours ranges, ME portion and depth limits", "[world][hierarchy]") {
  HierarchyConfig h;
  h.total_root_nodes = 10;
  h.branching_factor = {2, 5};
  h.max_depth = 2;
  h.mutually_exclusive_portion = 0.5;
  h.mutually_exclusive_min_depth = 1;
  const Forest f = generate_hierarchy(1000, h, 9);
  validate_forest(f, 1000, "generated");
  int me = 0, eligible = 0;
  std::vector<int> depth(f.nodes.size(), 0);
  for (int r : f.roots) depth[r] = 0;
  for (std::size_t id = 0; id < f.nodes.size(); ++id) {
    const auto& n = f.nodes[id];
    for (int c : n.children) depth[c] = depth[id] + 1;
    if (depth[id] < 2) {
      CHECK(n.children.size() >= 2);
      CHECK(n.children.size() <= 5);
    } else {
      CHECK(n.children.empty());
    }
    if (depth[id] == 1) ++eligible;
    if (n.mutually_exclusive_children) {
      ++me;
      CHECK(depth[id] == 1);
    }
  }
  CHECK(me == eligible / 2);  // floor(eligible * 0.5)
  // Running out of features stops generation cleanly.
  h.branching_factor = {100, 100};
  const Forest small = generate_hierarchy(50, h, 9);
  CHECK(small.num_hierarchical_features() == 50);
  HierarchyConfig bad = h;
  bad.branching_factor = {1, 1};
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("hierarchy.branching_factor = 1"));
}

TEST_CASE("hierarchy.json round-trips and rejects malformed forests", "[world][hierarchy]") {
  const auto cfg = preset("tiny");
  const Forest f = generate_hierarchy(256, *cfg.hierarchy, 3);
  const auto j = forest_to_json(f);
  const Forest g = forest_from_json(j, 256, "mem");
  CHECK(forest_to_json(g) == j);
  CHECK_THROWS_WITH(
      forest_from_json(io::Json::parse(R"({"roots":[{"feature_index":3,"children":[{"feature_index":3}]}]})"), 10,
                       "h.json"),
      Catch::Contains("h.json") && Catch::Contains("appears twice"));
  CHECK_THROWS_WITH(forest_from_json(io::Json::parse(R"({"roots":[{"feature_index":12}]})"), 10, "h.json"),
                    Catch::Contains("feature_index 12"));
  CHECK_THROWS_WITH(
      forest_from_json(
          io::Json::parse(
              R"({"roots":[{"feature_index":1,"mutually_exclusive_children":true,"children":[{"feature_index":2}]}]})"),
          10, "h.json"),
      Catch::Contains("fewer than 2 children"));
  CHECK_THROWS_AS(forest_from_json(io::Json::parse(R"({"nodes":[]})"), 10, "h.json"), FormatError);
}
