// The sampler: the lazy sparse sampler against a plain dense one that draws every feature
// and applies the hierarchy level by level as the reference does (bit for bit, since both
// address the same counter-based draws); hierarchy invariants; realised rates and copula
// correlations against their targets; the 16k world's true L0 against the reference.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "synthsae/world/presets.hpp"
#include "synthsae/world/statistics.hpp"
#include "synthsae/world/synthetic_model.hpp"

using namespace synthsae;

namespace {

template <class T>
Kokkos::View<T*, MemSpace> to_dev(const std::vector<T>& v) {
  Kokkos::View<T*, MemSpace> d("t", v.size());
  auto h = Kokkos::create_mirror_view(d);
  for (std::size_t i = 0; i < v.size(); ++i) h(i) = v[i];
  Kokkos::deep_copy(d, h);
  return d;
}

// Plain sampler, SAELens 6.54's _apply_hierarchy_sparse read literally: dense raw values for all
// N features, then for L = 0..max_depth: gate the features at depth L by their (final) effective
// parents (scaling where their group scales), then apply mutual exclusion to the groups whose
// node is at depth L — a feature node's group only where that feature is active, an
// organisational node's group in every sample (SAELens's parent -1). Returns dense [B, N].
Matrix<float> plain_sample(const SyntheticModel& model, std::uint64_t first, int batch) {
  const auto& tab = model.hierarchy_tables();
  const int n = static_cast<int>(model.num_features());
  const int groups = static_cast<int>(tab.num_groups());
  std::vector<std::int32_t> anchor_of(groups, -1);
  for (int a = 0; a < n; ++a)
    for (int g = tab.group_offsets[a]; g < tab.group_offsets[a + 1]; ++g) anchor_of[g] = a;
  const auto parent = to_dev(tab.parent), depth = to_dev(tab.depth), group_depth = to_dev(tab.group_depth);
  const auto scaled = to_dev(tab.scaled);
  const auto anchor = to_dev(anchor_of);
  const int max_depth = tab.max_depth;
  const std::uint64_t organisational = 4 * std::uint64_t(n);  // group_counter of organisational groups
  const FeatureDraw draw = model.feature_draw();
  Matrix<float> dense("dense", batch, n), eps("eps", batch, std::max(draw.t.rank, 1));
  Kokkos::parallel_for(
      "plain_sample", Kokkos::RangePolicy<ExecSpace>(0, batch), KOKKOS_LAMBDA(int b) {
        const std::uint64_t sample = first + b;
        auto e = Kokkos::subview(eps, b, Kokkos::ALL());
        draw.copula_factors(sample, e);
        for (int f = 0; f < n; ++f) dense(b, f) = draw.raw(sample, f, e);
        for (int level = 0; level <= max_depth; ++level) {
          for (int f = 0; f < n; ++f) {
            const int p = parent(f);
            if (depth(f) != level || p < 0) continue;
            dense(b, f) = dense(b, p) > 0 ? (scaled(f) ? dense(b, f) * (dense(b, p) / draw.t.mean(p)) : dense(b, f))
                                          : 0.0f;
          }
          for (int g = 0; g < groups; ++g) {
            if (group_depth(g) != level || !draw.t.group_exclusive(g)) continue;
            const bool always = anchor(g) < 0 || draw.t.group_counter(g) >= organisational;
            if (!always && !(dense(b, anchor(g)) > 0)) continue;
            const int begin = draw.t.member_offsets(g), end = draw.t.member_offsets(g + 1);
            std::uint32_t active = 0;
            for (int c = begin; c < end; ++c) active += dense(b, draw.t.members(c)) > 0;
            if (active < 2 || draw.coactive(sample, g)) continue;  // a co-active sample keeps them all
            const std::uint32_t keep = draw.winner(sample, g, active);
            std::uint32_t seen = 0;
            for (int c = begin; c < end; ++c) {
              const int f = draw.t.members(c);
              if (!(dense(b, f) > 0)) continue;
              if (seen++ != keep) dense(b, f) = 0;  // every active member but the winner
            }
          }
        }
      });
  return dense;
}

// Dense [B, N] view of a sparse batch, on the host.
std::vector<float> densify(const SparseBatch<float>& sb, int n) {
  auto ids = Kokkos::create_mirror_view_and_copy(HostSpace(), sb.ids);
  auto vals = Kokkos::create_mirror_view_and_copy(HostSpace(), sb.values);
  auto counts = Kokkos::create_mirror_view_and_copy(HostSpace(), sb.counts);
  std::vector<float> d(sb.batch_size() * n, 0.0f);
  for (std::size_t b = 0; b < sb.batch_size(); ++b)
    for (int k = 0; k < counts(b); ++k) d[b * n + ids(b, k)] = vals(b, k);
  return d;
}

// Entries where a densified lazy batch differs from the plain sampler's [batch, n] batch, and
// the plain batch's active entries (so a test can show its comparison is not vacuous).
struct PlainComparison {
  std::size_t differ = 0, active = 0;
};
template <class Plain>
PlainComparison compare_with_plain(const std::vector<float>& lazy, const Plain& plain, int batch, int n) {
  PlainComparison c;
  for (int b = 0; b < batch; ++b)
    for (int f = 0; f < n; ++f) {
      c.differ += lazy[std::size_t(b) * n + f] != plain(b, f);
      c.active += plain(b, f) > 0;
    }
  return c;
}

SyntheticModelConfig small_world(bool correlated, bool scale) {
  auto c = preset("tiny");
  c.hierarchy->scale_children_by_parent = scale;
  c.orthogonalization.reset();
  if (!correlated) c.correlation.reset();
  return c;
}

}  // namespace

TEST_CASE("the lazy sparse sampler equals the plain dense sampler bit for bit", "[world][sampler]") {
  for (bool correlated : {false, true})
    for (bool scale : {false, true}) {
      SyntheticModel model(small_world(correlated, scale));
      const int batch = 2000, n = static_cast<int>(model.num_features());
      SparseBatch<float> sb;
      model.sample_features_at(sb, 12345, batch);
      const auto lazy = densify(sb, n);
      auto plain = Kokkos::create_mirror_view_and_copy(HostSpace(), plain_sample(model, 12345, batch));
      const auto [differ, active] = compare_with_plain(lazy, plain, batch, n);
      INFO("correlated " << correlated << " scale " << scale << " active " << active);
      CHECK(active > std::size_t(batch) * 3);  // the comparison is not vacuous
      CHECK(differ == 0);
    }
}

TEST_CASE("the lazy sampler equals the plain one at a copula rank beyond the host kernel's 64 local factors",
          "[world][sampler]") {
  // Rank 70 takes the host kernel's other path (factors read from the row, plain lane loops for
  // the dots); a batch of 1,001 leaves a last group of samples short of kSamplesPerPass.
  auto c = small_world(true, true);
  c.correlation->rank = 70;
  SyntheticModel model(c);
  const int batch = 1001, n = static_cast<int>(model.num_features());
  SparseBatch<float> sb;
  model.sample_features_at(sb, 777, batch);
  const auto lazy = densify(sb, n);
  auto plain = Kokkos::create_mirror_view_and_copy(HostSpace(), plain_sample(model, 777, batch));
  const auto [differ, active] = compare_with_plain(lazy, plain, batch, n);
  CHECK(active > std::size_t(batch) * 3);  // the comparison is not vacuous
  CHECK(differ == 0);
}

// Sibling groups of 2 to 24 members, half of them mutually exclusive, under a rank-4 copula:
// the children pass draws its members four at a time (one eight-lane Philox call for their low
// words and magnitudes, their copula bounds in four double lanes) and keeps the first sixteen
// members' draws for an exclusive group's winner, so these groups take short last quads and
// members past the sixteenth.
namespace {
SyntheticModelConfig varied_groups_world() {
  auto c = small_world(true, true);
  c.hierarchy->branching_factor = {2, 24};
  c.hierarchy->mutually_exclusive_portion = 0.5;
  return c;
}
}  // namespace

TEST_CASE("the lazy sampler equals the plain one with sibling groups of 2 to 24 members, exclusive or not",
          "[world][sampler]") {
  SyntheticModel model(varied_groups_world());
  const auto& t = model.feature_draw().t;
  const auto offsets = Kokkos::create_mirror_view_and_copy(HostSpace(), t.member_offsets);
  const auto members = Kokkos::create_mirror_view_and_copy(HostSpace(), t.members);
  const auto exclusive = Kokkos::create_mirror_view_and_copy(HostSpace(), t.group_exclusive);
  int short_quads = 0;
  for (std::size_t g = 0; g + 1 < offsets.extent(0); ++g) short_quads += (offsets(g + 1) - offsets(g)) % 4 != 0;
  CHECK(short_quads > 0);
  const int batch = 1500, n = static_cast<int>(model.num_features());
  SparseBatch<float> sb;
  model.sample_features_at(sb, 4242, batch);
  const auto lazy = densify(sb, n);
  auto plain = Kokkos::create_mirror_view_and_copy(HostSpace(), plain_sample(model, 4242, batch));
  const auto [differ, active] = compare_with_plain(lazy, plain, batch, n);
  // Members past the sixteenth fire, in exclusive groups (decided outside the kept draws) and
  // in the others (a second chunk of draws).
  std::size_t late_exclusive = 0, late_plain = 0;
  for (std::size_t g = 0; g + 1 < offsets.extent(0); ++g)
    for (int c = offsets(g) + 16; c < offsets(g + 1); ++c)
      for (int b = 0; b < batch; ++b)
        if (plain(b, members(c)) > 0) (exclusive(g) ? late_exclusive : late_plain) += 1;
  INFO("active " << active << ", members past 16 active: exclusive " << late_exclusive << ", plain " << late_plain);
  CHECK(late_exclusive > 0);
  CHECK(late_plain > 0);
  CHECK(active > std::size_t(batch) * 3);  // the comparison is not vacuous
  CHECK(differ == 0);
}

#if defined(SYNTHSAE_SAMPLER_AVX2)
TEST_CASE("the children pass's four-lane copula bounds are fires_with's quotient and bound, bit for bit",
          "[world][sampler]") {
  // Any bound >= Q(|s|) gives the same decisions, but the lanes claim the scalar path's own
  // bits. Every group and every count n <= 16 from its start (short quads, and quads past the
  // first); dots from -6 to 6 put s on both sides of 0 and deep in both tails.
  SyntheticModel model(varied_groups_world());
  const FeatureDraw& draw = model.feature_draw();
  const auto offsets = Kokkos::create_mirror_view_and_copy(HostSpace(), draw.t.member_offsets);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dots(-6.0f, 6.0f);
  std::size_t compared = 0, differ = 0, negative = 0;
  for (std::size_t g = 0; g + 1 < offsets.extent(0); ++g) {
    const int c0 = offsets(g), size = std::min(offsets(g + 1) - c0, 16);
    for (int n = 1; n <= size; ++n) {
      float dot[16];
      for (int j = 0; j < n; ++j) dot[j] = dots(rng);
      double quotient[16], bound[16];
      draw.copula_bounds(c0, n, dot, quotient, bound);
      for (int j = 0; j < n; ++j) {
        const int f = draw.t.members(c0 + j);
        // fires_with's own steps (activation_sampler.hpp), then normal_tail_bound's.
        const double s = (double(draw.t.threshold(f)) - double(dot[j])) / double(draw.t.sqrt_diag(f));
        differ += std::memcmp(&s, &quotient[j], sizeof s) != 0;
        const double b = normal_tail_bound(s >= 0 ? s : -s);
        differ += std::memcmp(&b, &bound[j], sizeof b) != 0;
        negative += s < 0;
        ++compared;
      }
    }
  }
  INFO("compared " << compared << ", negative " << negative);
  CHECK(compared > 1000);
  CHECK(negative > compared / 10);
  CHECK(negative < compared * 9 / 10);
  CHECK(differ == 0);
}
#endif

TEST_CASE("capacity overflow is retried transparently", "[world][sampler]") {
  SyntheticModelConfig c;
  c.num_features = 300;
  c.hidden_dim = 8;
  c.firing_probability = ConstantFiring{0.5};  // ~150 active per sample, above the initial capacity 64
  c.seed = 3;
  SyntheticModel model(c);
  SparseBatch<float> sb;
  model.sample_features_at(sb, 0, 64);
  CHECK(sb.capacity() >= 256);
  const auto lazy = densify(sb, 300);
  auto plain = Kokkos::create_mirror_view_and_copy(HostSpace(), plain_sample(model, 0, 64));
  std::size_t differ = 0;
  for (int b = 0; b < 64; ++b)
    for (int f = 0; f < 300; ++f) differ += lazy[b * 300 + f] != plain(b, f);
  CHECK(differ == 0);
}

TEST_CASE("hierarchy invariants hold in every sample", "[world][sampler]") {
  SyntheticModel model(small_world(true, true));
  const auto& tab = model.hierarchy_tables();
  const int n = static_cast<int>(model.num_features()), batch = 5000;
  SparseBatch<float> sb;
  model.sample_features_at(sb, 0, batch);
  const auto d = densify(sb, n);
  auto counts = Kokkos::create_mirror_view_and_copy(HostSpace(), sb.counts);
  auto ids = Kokkos::create_mirror_view_and_copy(HostSpace(), sb.ids);
  std::size_t orphans = 0, crowded_groups = 0, unsorted = 0;
  for (int b = 0; b < batch; ++b) {
    for (int k = 1; k < counts(b); ++k) unsorted += ids(b, k - 1) >= ids(b, k);
    for (int f = 0; f < n; ++f) {
      const int p = tab.parent[f];
      if (p >= 0 && d[b * n + f] > 0 && !(d[b * n + p] > 0)) ++orphans;
    }
    for (std::size_t g = 0; g < tab.num_groups(); ++g) {
      if (!tab.group_exclusive[g]) continue;
      int on = 0;
      for (int c = tab.member_offsets[g]; c < tab.member_offsets[g + 1]; ++c) on += d[b * n + tab.members[c]] > 0;
      crowded_groups += on > 1;
    }
  }
  CHECK(orphans == 0);
  CHECK(crowded_groups == 0);
  CHECK(unsorted == 0);
}

TEST_CASE("scale-by-parent multiplies a child's raw value by parent value / parent mean", "[world][sampler]") {
  SyntheticModel model(small_world(false, true));
  const auto& tab = model.hierarchy_tables();
  const FeatureDraw draw = model.feature_draw();
  const int n = static_cast<int>(model.num_features()), batch = 500;
  SparseBatch<float> sb;
  model.sample_features_at(sb, 77, batch);
  const auto d = densify(sb, n);
  // Recompute raw values on the host (Serial/OpenMP: the tables are host-accessible).
  Kokkos::View<float*, HostSpace> no_eps("eps", 1);
  auto mean = Kokkos::create_mirror_view_and_copy(HostSpace(), draw.t.mean);
  FeatureDraw host_draw = draw;
  int checked = 0, wrong = 0;
  if constexpr (host_accessible_v<MemSpace>) {
    for (int b = 0; b < batch; ++b)
      for (int f = 0; f < n; ++f) {
        const int p = tab.parent[f];
        if (p < 0 || !(d[b * n + f] > 0)) continue;
        const float raw = host_draw.raw(77 + b, f, no_eps);
        const float expected = raw * (d[b * n + p] / mean(p));
        wrong += expected != d[b * n + f];
        ++checked;
      }
    CHECK(checked > 100);
    CHECK(wrong == 0);
  }
}

TEST_CASE("with correlation every feature fires at its target rate, latents correlate as F F^T", "[world][sampler]") {
  // 40 features, rank 3, scale 0.4 (so correlations reach ~0.5), p from 0.3 down to 0.02.
  SyntheticModelConfig c;
  c.num_features = 40;
  c.hidden_dim = 8;
  c.firing_probability = LinearFiring{0.3, 0.02};
  c.correlation = LowRankCorrelation{3, 0.4, std::nullopt};
  c.seed = 8;
  SyntheticModel model(c);
  const int n = 40, samples = 100000;
  SparseBatch<float> sb;
  std::vector<double> fired(n, 0);
  for (int start = 0; start < samples; start += 10000) {
    model.sample_features_at(sb, start, 10000);
    auto ids = Kokkos::create_mirror_view_and_copy(HostSpace(), sb.ids);
    auto counts = Kokkos::create_mirror_view_and_copy(HostSpace(), sb.counts);
    for (int b = 0; b < 10000; ++b)
      for (int k = 0; k < counts(b); ++k) fired[ids(b, k)] += 1;
  }
  // Magnitudes are constant 1 > 0, so "active" = "fires". Rate SE = sqrt(p(1-p)/n) <= 1.45e-3; 5 SE.
  int off = 0;
  for (int f = 0; f < n; ++f) {
    const double p = model.firing_probabilities()[f];
    const double se = std::sqrt(p * (1 - p) / samples);
    off += std::fabs(fired[f] / samples - p) > 5 * se;
  }
  CHECK(off == 0);

  // Latents z of features 0..5 over 20000 samples: sample correlation has SE ~ (1 - rho^2)/sqrt(n)
  // <= 0.0071; 5 SE. The target is (F F^T)_ij for i != j (unit diagonal by construction).
  const int m = 6, nz = 20000;
  const auto& cf = *model.correlation();
  Matrix<float> z("z", nz, m), eps("eps", nz, cf.rank);
  const FeatureDraw draw = model.feature_draw();
  Kokkos::parallel_for(
      "latents", Kokkos::RangePolicy<ExecSpace>(0, nz), KOKKOS_LAMBDA(int b) {
        auto e = Kokkos::subview(eps, b, Kokkos::ALL());
        draw.copula_factors(b, e);
        for (int f = 0; f < m; ++f) z(b, f) = draw.latent(b, f, e);
      });
  auto hz = Kokkos::create_mirror_view_and_copy(HostSpace(), z);
  double worst = 0, largest_target = 0;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j <= i; ++j) {
      double sij = 0, sii = 0, sjj = 0, mi = 0, mj = 0;
      for (int b = 0; b < nz; ++b) mi += hz(b, i), mj += hz(b, j);
      mi /= nz, mj /= nz;
      for (int b = 0; b < nz; ++b) {
        sij += (hz(b, i) - mi) * (hz(b, j) - mj);
        sii += (hz(b, i) - mi) * (hz(b, i) - mi);
        sjj += (hz(b, j) - mj) * (hz(b, j) - mj);
      }
      double target = 0;
      for (std::size_t k = 0; k < cf.rank; ++k)
        target += double(cf.factor[i * cf.rank + k]) * cf.factor[j * cf.rank + k];
      if (i == j) {
        CHECK(sii / nz == Approx(1.0).margin(5 * std::sqrt(2.0 / nz)));  // variance 1, SE sqrt(2/n)
        continue;
      }
      largest_target = std::max(largest_target, std::fabs(target));
      worst = std::max(worst, std::fabs(sij / std::sqrt(sii * sjj) - target));
    }
  CHECK(largest_target > 0.2);  // the correlations being checked are not all near zero
  CHECK(worst < 5 * 0.0071);

  // The fast firing decision (bounds, then erfc) agrees with comparing the latent itself; the
  // two can only differ when z lands within float rounding of the threshold (p ~ 1e-7 per draw).
  Kokkos::View<int*> mismatch("mismatch", 1);
  Kokkos::parallel_for(
      "decisions", Kokkos::RangePolicy<ExecSpace>(0, nz), KOKKOS_LAMBDA(int b) {
        auto e = Kokkos::subview(eps, b, Kokkos::ALL());
        for (int f = 0; f < 40; ++f) {
          if (draw.fires(b, f, e) != (draw.latent(b, f, e) > draw.t.threshold(f))) Kokkos::atomic_add(&mismatch(0), 1);
        }
      });
  auto hm = Kokkos::create_mirror_view_and_copy(HostSpace(), mismatch);
  CHECK(hm(0) <= 1);
}

TEST_CASE("SynthSAEBench-16k hierarchy without correlation: true L0 matches the reference", "[world][sampler][16k]") {
  auto cfg = preset("synth-sae-bench-16k");
  cfg.correlation.reset();        // the reference's validation run (§9.5) ignores the copula
  cfg.orthogonalization.reset();  // irrelevant to firing; keeps the test fast
  SyntheticModel model(cfg);
  CHECK(model.clamped_probabilities() == 0);
  const auto& p = model.firing_probabilities();
  CHECK(*std::max_element(p.begin(), p.end()) == Approx(0.9151).margin(1e-4));
  const std::size_t samples = 12000;
  const auto stats = firing_stats(model, samples, 4096);
  // Per-sample L0 has a standard deviation of about 6 (hierarchy makes it over-dispersed), so
  // our mean has SE 6/sqrt(12000) = 0.055 and the reference's 3,000-sample figure 0.11;
  // 4 combined SE = 0.5. The first-4096 count has a smaller spread; the same bound is safe.
  INFO("true L0 " << stats.true_l0 << " first 4096 " << stats.true_l0_first_k);
  CHECK(std::fabs(stats.true_l0 - 34.54) < 0.5);
  CHECK(std::fabs(stats.true_l0_first_k - 25.24) < 0.5);
  // Per-depth effective sums (reference Appendix B): 8.23 / 7.34 / 7.34 / 7.15, independent 4.49
  // (independent features are depth 0 here alongside the roots: 8.23 + 4.49 = 12.72). Each sum's
  // SE is below 0.03 at this sample size; 0.2 covers both runs' noise.
  REQUIRE(stats.per_depth_sum.size() == 4);
  CHECK(std::fabs(stats.per_depth_sum[0] - 12.72) < 0.2);
  CHECK(std::fabs(stats.per_depth_sum[1] - 7.34) < 0.2);
  CHECK(std::fabs(stats.per_depth_sum[2] - 7.34) < 0.2);
  CHECK(std::fabs(stats.per_depth_sum[3] - 7.15) < 0.2);
}

TEST_CASE("the same seed gives the same batches; hidden = sum c_i W_i + bias", "[world][sampler]") {
  SyntheticModel a(small_world(true, true)), b(small_world(true, true));
  auto x = a.sample(300);
  auto y = b.sample(300);
  auto hx = Kokkos::create_mirror_view_and_copy(HostSpace(), x.hidden);
  auto hy = Kokkos::create_mirror_view_and_copy(HostSpace(), y.hidden);
  int differ = 0;
  for (int i = 0; i < 300; ++i)
    for (int j = 0; j < 32; ++j) differ += hx(i, j) != hy(i, j);
  CHECK(differ == 0);
  CHECK(a.position() == 300);
  // hidden against a double-precision recomputation from the sparse batch.
  const auto dense = densify(x.features, 256);
  auto w = Kokkos::create_mirror_view_and_copy(HostSpace(), a.feature_vectors());
  auto bias = Kokkos::create_mirror_view_and_copy(HostSpace(), a.bias());
  double worst = 0;
  for (int i = 0; i < 300; ++i)
    for (int j = 0; j < 32; ++j) {
      double acc = bias(j);
      for (int f = 0; f < 256; ++f) acc += double(dense[i * 256 + f]) * w(f, j);
      worst = std::max(worst, std::fabs(acc - hx(i, j)));
    }
  CHECK(worst < 1e-4);  // ~30 float products of magnitude <= 10: rounding stays below 1e-5
  // A second batch continues the stream: it differs from the first.
  auto z = a.sample(300);
  auto hz = Kokkos::create_mirror_view_and_copy(HostSpace(), z.hidden);
  CHECK(hz(0, 0) != hx(0, 0));
}

namespace policy_example {  // named (not anonymous): nvcc would warn that unused members are unreferenced
// A researcher's own firing policy: only the members FiringProbabilityPolicy names.
struct AlternatingFiring {
  static constexpr std::string_view generator_name = "alternating";
  double high = 0.4, low = 0.1;
  std::vector<double> generate(std::size_t n, std::uint64_t) const {
    std::vector<double> p(n);
    for (std::size_t i = 0; i < n; ++i) p[i] = i % 2 ? low : high;
    return p;
  }
  void validate() const {}
  io::Json to_json() const { return {{"generator_name", generator_name}}; }
  static AlternatingFiring from_json(const io::Json&) { return {}; }
};
static_assert(FiringProbabilityPolicy<AlternatingFiring>);
}  // namespace policy_example
using policy_example::AlternatingFiring;

TEST_CASE("custom policies and a full correlation matrix through WorldOverrides", "[world][sampler]") {
  SyntheticModelConfig c;
  c.num_features = 3;
  c.hidden_dim = 4;
  c.seed = 21;
  // Unit diagonal, positive definite (eigenvalues > 0.3).
  const std::vector<double> corr = {1.0, 0.6, 0.3, 0.6, 1.0, 0.2, 0.3, 0.2, 1.0};
  WorldOverrides o;
  o.firing(AlternatingFiring{}, 3, 0);
  o.correlation = full_correlation_factors(corr, 3);
  SyntheticModel model(c, o);
  CHECK(model.firing_probabilities() ==
        std::vector<double>{double(0.4f), double(0.1f), double(0.4f)});  // kept at float precision

  const int nz = 40000;
  const FeatureDraw draw = model.feature_draw();
  Matrix<float> z("z", nz, 3), eps("eps", nz, 3);
  Kokkos::View<int**> fired("fired", nz, 3);
  Kokkos::parallel_for(
      "full_latents", Kokkos::RangePolicy<ExecSpace>(0, nz), KOKKOS_LAMBDA(int b) {
        auto e = Kokkos::subview(eps, b, Kokkos::ALL());
        draw.copula_factors(b, e);
        for (int f = 0; f < 3; ++f) {
          z(b, f) = draw.latent(b, f, e);
          fired(b, f) = draw.fires(b, f, e);
        }
      });
  auto hz = Kokkos::create_mirror_view_and_copy(HostSpace(), z);
  auto hf = Kokkos::create_mirror_view_and_copy(HostSpace(), fired);
  // Sample correlation SE <= 1/sqrt(n) = 0.005; 5 SE. Rates: SE sqrt(p(1-p)/n) <= 0.0025; 5 SE.
  for (int i = 0; i < 3; ++i) {
    double rate = 0;
    for (int b = 0; b < nz; ++b) rate += hf(b, i);
    const double p = model.firing_probabilities()[i];
    CHECK(std::fabs(rate / nz - p) < 5 * std::sqrt(p * (1 - p) / nz));
    for (int j = 0; j < i; ++j) {
      double sij = 0, sii = 0, sjj = 0;
      for (int b = 0; b < nz; ++b) sij += hz(b, i) * hz(b, j), sii += hz(b, i) * hz(b, i), sjj += hz(b, j) * hz(b, j);
      CHECK(std::fabs(sij / std::sqrt(sii * sjj) - corr[i * 3 + j]) < 5 * 0.005);
    }
  }
  WorldOverrides bad;
  bad.firing_probabilities = std::vector<double>{0.1, 1.5, 0.2};
  CHECK_THROWS_WITH(SyntheticModel(c, bad), Catch::Contains("firing_probabilities[1] = 1.5"));
  CHECK_THROWS_WITH(full_correlation_factors({1, 2, 2, 1}, 2), Catch::Contains("positive definite"));
}

namespace {

// A hierarchy.json with organisational nodes (feature_index null), as a user's file may have:
//   O1 (org, ME, scales) -> 0 (ME) -> 10..13, 1, 2, O2 (org) -> 3, 4
//   5 (ME, scales) -> O3 (org, ME, scales) -> 20, 21, 22;  O4 (org) -> 23, 24, O5 (org, ME) -> 25, 26;  27, 28
//   O6 (org) -> 6 -> 30, 31
// Features outside the forest are free.
Forest organisational_forest(std::size_t n) {
  const char* text = R"({"roots": [
    {"feature_index": null, "mutually_exclusive_children": true, "scale_children_by_parent": true, "children": [
      {"feature_index": 0, "mutually_exclusive_children": true, "children": [
        {"feature_index": 10}, {"feature_index": 11}, {"feature_index": 12}, {"feature_index": 13}]},
      {"feature_index": 1}, {"feature_index": 2},
      {"feature_index": null, "children": [{"feature_index": 3}, {"feature_index": 4}]}]},
    {"feature_index": 5, "mutually_exclusive_children": true, "scale_children_by_parent": true, "children": [
      {"feature_index": null, "mutually_exclusive_children": true, "scale_children_by_parent": true, "children": [
        {"feature_index": 20}, {"feature_index": 21}, {"feature_index": 22}]},
      {"feature_index": null, "children": [{"feature_index": 23}, {"feature_index": 24},
        {"feature_index": null, "mutually_exclusive_children": true, "children": [
          {"feature_index": 25}, {"feature_index": 26}]}]},
      {"feature_index": 27}, {"feature_index": 28}]},
    {"feature_index": null, "children": [
      {"feature_index": 6, "children": [{"feature_index": 30}, {"feature_index": 31}]}]}]})";
  return forest_from_json(io::Json::parse(text), n, "organisational.json");
}

SyntheticModel organisational_world(bool correlated, double coactivation = 0) {
  SyntheticModelConfig c;
  c.num_features = 60;
  c.hidden_dim = 8;
  c.std_firing_magnitudes = ConstantMagnitude{0.3};
  c.seed = 17;
  SyntheticModelParts parts;
  parts.feature_vectors = random_unit_rows<float>(60, 8, 17);
  parts.bias = Vector<float>("bias", 8);
  parts.firing_probabilities.assign(60, double(0.4f));
  if (correlated) parts.correlation = LowRankCorrelation{3, 0.3, std::nullopt}.generate(60, 4);
  parts.hierarchy = organisational_forest(60);
  for (auto& node : parts.hierarchy.nodes)  // synthsae's co-activation dial on every exclusive node
    if (node.mutually_exclusive_children) node.coactivation = coactivation;
  return SyntheticModel(c, std::move(parts));
}

}  // namespace

TEST_CASE("organisational nodes: effective parents, groups and SAELens's sampling semantics",
          "[world][sampler][hierarchy]") {
  {
    const auto t = flatten_hierarchy(organisational_forest(60), 60);
    // Effective parent = nearest ancestor with a feature; depth counts organisational levels.
    CHECK(t.parent[0] == -1);
    CHECK(t.parent[10] == 0);
    CHECK(t.parent[3] == -1);
    CHECK(t.parent[20] == 5);
    CHECK(t.parent[25] == 5);
    CHECK(t.parent[6] == -1);
    CHECK(t.parent[30] == 6);
    CHECK((t.depth[0] == 1 && t.depth[10] == 2 && t.depth[20] == 2 && t.depth[25] == 3 && t.depth[30] == 2));
    CHECK(t.max_depth == 3);
    // The group's own node decides scaling: O3 scales by 5, O4 (under the scaling 5) does not.
    CHECK((t.scaled[20] && t.scaled[27] && !t.scaled[23] && !t.scaled[25] && !t.scaled[10] && !t.scaled[0]));
    // 0, 1, 2 are in O1's exclusive group without a parent; 3, 4 (O2, not exclusive) are top level.
    std::vector<std::int32_t> top;
    for (int f = 0; f < 60; ++f)
      if (f != 0 && f != 1 && f != 2 && t.parent[f] < 0) top.push_back(f);
    CHECK(t.top_level == top);
    // Anchor 5 holds three groups: O3 (exclusive), O4 (not), O5 (exclusive), and its own {27, 28}.
    CHECK(t.group_offsets[6] - t.group_offsets[5] == 4);
    CHECK(t.group_offsets[61] - t.group_offsets[60] == 1);  // anchor "none": O1's group
  }
  for (bool correlated : {false, true})
    for (double coactivation : {0.0, 0.5}) {
      auto model = organisational_world(correlated, coactivation);
      const int batch = 4000, n = 60;
      SparseBatch<float> sb;
      model.sample_features_at(sb, 999, batch);
      const auto lazy = densify(sb, n);
      auto plain = Kokkos::create_mirror_view_and_copy(HostSpace(), plain_sample(model, 999, batch));
      std::size_t differ = 0, cofiring = 0;
      for (int b = 0; b < batch; ++b) {
        for (int f = 0; f < n; ++f) differ += lazy[std::size_t(b) * n + f] != plain(b, f);
        cofiring += plain(b, 0) > 0 && plain(b, 1) > 0;  // siblings in O1's exclusive group
      }
      INFO("correlated " << correlated << " coactivation " << coactivation);
      CHECK(differ == 0);
      // O1 is a root: its members 0 and 1 (raw rate 0.4 each) co-fire only in co-active samples.
      // Without the copula that is 0.5 * 0.16 = 8 % of 4,000 rows: 320, binomial SD 17, checked
      // within 5 SD; the copula correlates the two, so there only "often". Never without the dial.
      if (coactivation == 0) CHECK(cofiring == 0);
      else if (!correlated) CHECK(std::fabs(double(cofiring) - 320.0) < 5 * 17.2);
      else CHECK(cofiring > 100);
    }
  // Rates against hand-worked probabilities (independent firing, p = 0.4 each): a member of an
  // exclusive group of k survives with 0.4 E[1/(1+K)], K ~ Bin(k-1, 0.4): 0.65333 for k = 3,
  // 0.8 for k = 2, 0.544 for k = 4; times its effective parent's rate.
  auto model = organisational_world(false);
  const int samples = 40000, n = 60;
  SparseBatch<float> sb;
  model.sample_features_at(sb, 0, samples);
  const auto d = densify(sb, n);
  auto on = [&](int b, int f) { return d[std::size_t(b) * n + f] > 0; };
  std::vector<double> rate(n, 0);
  double both_20_27 = 0, scale_wrong = 0, scale_checked = 0;
  const FeatureDraw draw = model.feature_draw();
  Kokkos::View<float*, HostSpace> no_eps("eps", 1);
  for (int b = 0; b < samples; ++b) {
    for (int f = 0; f < n; ++f) rate[f] += on(b, f);
    both_20_27 += on(b, 20) && on(b, 27);
    if constexpr (host_accessible_v<MemSpace>) {
      // 20 (O3 scales) = raw * v_5 / mu_5 with mu_5 = 1; 23 (O4 does not scale) = raw.
      if (on(b, 20)) scale_checked++, scale_wrong += d[std::size_t(b) * n + 20] != draw.raw(b, 20, no_eps) * (d[std::size_t(b) * n + 5] / 1.0f);
      if (on(b, 23)) scale_checked++, scale_wrong += d[std::size_t(b) * n + 23] != draw.raw(b, 23, no_eps);
    }
  }
  const std::vector<std::pair<int, double>> expected = {
      {0, 0.4 * 0.653333}, {1, 0.4 * 0.653333}, {3, 0.4},  {5, 0.4},  {6, 0.4},
      {10, 0.4 * 0.653333 * 0.4 * 0.544},     {20, 0.4 * 0.4 * 0.653333},
      {23, 0.16},          {25, 0.4 * 0.4 * 0.8}, {27, 0.4 * 0.4 * 0.8}, {30, 0.16}, {45, 0.4}};
  for (const auto& [f, p] : expected) {
    INFO("feature " << f);
    // Binomial SE sqrt(p(1-p)/n) <= 0.00245 at n = 40,000; 5 SE.
    CHECK(std::fabs(rate[f] / samples - p) < 5 * std::sqrt(p * (1 - p) / samples));
  }
  // 20 (O3) and 27 (5's own children) are in different groups under the same anchor: they co-fire.
  const double p_both = 0.4 * (0.4 * 0.653333) * (0.4 * 0.8);
  CHECK(std::fabs(both_20_27 / samples - p_both) < 5 * std::sqrt(p_both * (1 - p_both) / samples));
  if constexpr (host_accessible_v<MemSpace>) {
    CHECK(scale_checked > 1000);
    CHECK(scale_wrong == 0);
  }
}

TEST_CASE("the threaded sampler gives the same bits at 1 and 2 threads, and equals the plain sampler on cpu-1k",
          "[world][sampler]") {
  // cpu-1k's structure (Zipf firing, rank-25 copula, forest) without orthogonalisation (the
  // sampler does not read the dictionary): its realistic thresholds exercise the float pre-test
  // of the blocked kernel, which must never reject a lane the exact decision keeps.
  auto cfg = preset("cpu-1k");
  cfg.orthogonalization.reset();
  SyntheticModel model(cfg);
  const int batch = 600, n = static_cast<int>(model.num_features());
  // Both ways of putting fire words in feature order run: the transpose of interleaved chunks
  // (roots numbered from 0) and the slot table of the last, padded, chunk.
  const auto interleaved = Kokkos::create_mirror_view_and_copy(HostSpace(), model.feature_draw().t.top_chunk_interleaved);
  int plain_chunks = 0;
  for (std::size_t c = 0; c < interleaved.extent(0); ++c) plain_chunks += interleaved(c);
  CHECK(plain_chunks > 0);
  CHECK(plain_chunks < static_cast<int>(interleaved.extent(0)));
  std::vector<float> runs[2];
  for (int threads : {1, 2}) {
#if defined(_OPENMP)
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
#endif
    SparseBatch<float> sb;
    model.sample_features_at(sb, 777, batch);
    runs[threads - 1] = densify(sb, n);
#if defined(_OPENMP)
    omp_set_num_threads(before);
#endif
  }
  CHECK(runs[0] == runs[1]);
  auto plain = Kokkos::create_mirror_view_and_copy(HostSpace(), plain_sample(model, 777, batch));
  const auto [differ, active] = compare_with_plain(runs[0], plain, batch, n);
  INFO("active " << active);
  CHECK(active > std::size_t(batch) * 5);
  CHECK(differ == 0);
}

TEST_CASE("the team sampler (the GPU's form) writes the rows of the one-thread-per-sample form", "[world][sampler]") {
  // On the host the teams have one thread, so this checks the team kernel's bookkeeping (the
  // shared counter, the capacity, the children pass, the final order) against the host's rows
  // exactly; the GPU's teams emit in any order, which the final sort by (unique) id undoes, and
  // the plain-sampler tests above run the team form there.
  for (const char* name : {"cpu-1k", "synth-sae-bench-16k"}) {
    auto cfg = preset(name);
    cfg.orthogonalization.reset();  // the sampler does not read the dictionary
    SyntheticModel model(cfg);
    const int batch = 200;
    SparseBatch<float> rows;
    model.sample_features_at(rows, 4242, batch);
    const auto& draw = model.feature_draw();
    const std::size_t rank = static_cast<std::size_t>(std::max(draw.t.rank, 1));
    Matrix<float> eps("eps", batch, rank);
    auto make = [&](std::size_t capacity) {
      return SparseBatch<float>{Kokkos::View<std::int32_t**, Kokkos::LayoutRight, MemSpace>("ids", batch, capacity),
                                Kokkos::View<float**, Kokkos::LayoutRight, MemSpace>("values", batch, capacity),
                                Kokkos::View<std::int32_t*, MemSpace>("counts", batch)};
    };
    SparseBatch<float> teams = make(rows.capacity());
    CHECK(sample_sparse_by_teams<ExecSpace>(draw, 4242, teams, eps) == 0);
    const int n = static_cast<int>(model.num_features());
    const auto want = densify(rows, n), got = densify(teams, n);
    std::size_t differ = 0, active = 0;
    for (std::size_t e = 0; e < want.size(); ++e) differ += want[e] != got[e], active += want[e] > 0;
    INFO(name << ": " << active << " active");
    CHECK(active > std::size_t(batch) * 5);
    CHECK(differ == 0);
    auto order = Kokkos::create_mirror_view_and_copy(HostSpace(), teams.ids);
    auto count = Kokkos::create_mirror_view_and_copy(HostSpace(), teams.counts);
    bool ascending = true;
    for (int b = 0; b < batch; ++b)
      for (int q = 1; q < count(b); ++q) ascending = ascending && order(b, q - 1) < order(b, q);
    CHECK(ascending);
    // A capacity of 4 overflows in the same samples either way (both count them).
    SparseBatch<float> small_rows = make(4), small_teams = make(4);
    const int over_rows = sample_sparse(draw, 4242, small_rows, eps);
    CHECK(over_rows > 0);
    CHECK(sample_sparse_by_teams<ExecSpace>(draw, 4242, small_teams, eps) == over_rows);
  }
}

TEST_CASE("the blocked kernel's float pre-test rejects only lanes that cannot fire, and rejects well", "[world][sampler]") {
  // Lanes near the boundary v = Q(s): s in [-0.5, 7], v within a factor 4 of Q(s). Sound: a
  // rejected lane has high / 2^32 >= Q(s) in double, so no v with that word fires. Tight: with
  // s > 0 and v >= 2^-16 (the 24-bit v_low then loses under 2^-8), every lane with
  // high / 2^32 >= 1.2 normal_tail_bound(s) is rejected (the two bit-read logarithms lose at
  // most 0.086 each in log2: a factor 1.127; with the margin and truncation, under 1.2).
  constexpr int L = kTopLevelBlock;
  RandomStream rng(20261205, 0);
  std::size_t unsound = 0, loose = 0, rejected_total = 0, tight_cases = 0, independent_unsound = 0, mismatches = 0;
  for (int block = 0; block < 20000; ++block) {
    std::uint32_t words[L];
    float dot[L], threshold[L], inv_sd[L], probability[L];
    double q[L];
    for (int l = 0; l < L; ++l) {
      const double s = -0.5 + 7.5 * rng.uniform<double>();
      const float sd = static_cast<float>(0.2 + 1.3 * rng.uniform<double>());
      dot[l] = static_cast<float>(rng.uniform<double>() * 4 - 2);
      threshold[l] = dot[l] + static_cast<float>(s) * sd;
      inv_sd[l] = 1.0f / sd;
      q[l] = normal_tail((double(threshold[l]) - double(dot[l])) / double(sd));  // as fires_with
      const double v = q[l] * std::exp2(4 * rng.uniform<double>() - 2);
      words[l] = static_cast<std::uint32_t>(std::min(v, 0.999999) * 4294967296.0);
      probability[l] = static_cast<float>(q[l]);
    }
    const std::uint32_t kept = FeatureDraw::kept_lanes(words, dot, threshold, inv_sd, probability, false);
    const std::uint32_t kept_independent = FeatureDraw::kept_lanes(words, dot, threshold, inv_sd, probability, true);
    // The lane-loop form (builds without AVX2) decides every lane the same way.
    mismatches += kept != FeatureDraw::kept_lanes_portable(words, dot, threshold, inv_sd, probability, false);
    mismatches +=
        kept_independent != FeatureDraw::kept_lanes_portable(words, dot, threshold, inv_sd, probability, true);
    for (int l = 0; l < L; ++l) {
      const double v_floor = words[l] / 4294967296.0;
      const bool rejected = !(kept >> l & 1u);
      rejected_total += rejected;
      unsound += rejected && v_floor < q[l];
      independent_unsound += !(kept_independent >> l & 1u) && v_floor < double(probability[l]);
      const double s = (double(threshold[l]) - double(dot[l])) * double(inv_sd[l]);
      if (s > 0 && v_floor >= 1.0 / 65536 && v_floor >= 1.2 * normal_tail_bound(s)) {
        ++tight_cases;
        loose += !rejected;
      }
    }
  }
  INFO("rejected " << rejected_total << ", tight cases " << tight_cases);
  CHECK(unsound == 0);
  CHECK(independent_unsound == 0);
  CHECK(mismatches == 0);
  CHECK(tight_cases > 10000);
  CHECK(loose == 0);
  // A lane without idiosyncratic noise (inverse 0) is never rejected; padding (threshold +inf) is.
  std::uint32_t words[L];
  float dot[L], threshold[L], inv_sd[L], probability[L];
  for (int l = 0; l < L; ++l)
    words[l] = 0xFFFFFFFFu, dot[l] = 0, threshold[l] = l < 8 ? 3.0f : std::numeric_limits<float>::infinity(),
    inv_sd[l] = l < 8 ? 0.0f : 1.0f, probability[l] = 0;
  CHECK(FeatureDraw::kept_lanes(words, dot, threshold, inv_sd, probability, false) == 0xFFu);
  CHECK(FeatureDraw::kept_lanes_portable(words, dot, threshold, inv_sd, probability, false) == 0xFFu);
}

TEST_CASE("a magnitude left uncomputed is one that is positive; the others are magnitude()'s", "[world][sampler]") {
  // Every feature of the 16k world at 300 samples: the shortcut never hides a clipped (zero)
  // magnitude, returns magnitude() bit for bit otherwise, and does take the shortcut for most
  // (the world's magnitudes sit many standard deviations above zero).
  auto cfg = preset("synth-sae-bench-16k");
  cfg.orthogonalization.reset();
  SyntheticModel model(cfg);
  const auto& draw = model.feature_draw();
  std::size_t deferred = 0, wrong = 0, total = 0, clipped = 0;
  for (std::uint64_t sample = 0; sample < 300; ++sample)
    for (int f = 0; f < static_cast<int>(model.num_features()); ++f) {
      const float full = draw.magnitude(sample, f), lazy = draw.magnitude_unless_positive(sample, f);
      ++total;
      clipped += full == 0.0f;
      if (lazy == FeatureDraw::kPositiveMagnitude) {
        ++deferred;
        wrong += !(full > 0.0f);
      } else {
        wrong += lazy != full;
      }
    }
  INFO("deferred " << deferred << " of " << total << ", clipped " << clipped);
  CHECK(wrong == 0);
  CHECK(deferred > total / 2);
}
