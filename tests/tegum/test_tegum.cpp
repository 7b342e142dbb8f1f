// Tegum factors (tegum/): the group sampler's firing laws against their closed forms, the
// polytopes and the factor placement against hand-worked geometry, the geometry metrics against
// hand-computed values, the toy model's gradient against finite differences, and the
// hypothesis itself on the reference's setting (dark-matter.md §2.12 (B), §3.6).
#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>
#include <vector>

#include "synthsae/tegum/factor_geometry.hpp"
#include "synthsae/tegum/factor_placement.hpp"
#include "synthsae/tegum/factor_recovery.hpp"
#include "synthsae/tegum/latent_groups.hpp"
#include "synthsae/tegum/mutex_groups.hpp"
#include "synthsae/tegum/tegum_world.hpp"
#include "synthsae/tegum/toy_model.hpp"

using namespace synthsae;
using namespace synthsae::tegum;

namespace {

MutexGroupsConfig groups_of(std::vector<int> sizes, double q, GroupFiring firing, double zipf = 0) {
  MutexGroupsConfig c;
  c.group_sizes = std::move(sizes);
  c.group_probability = q;
  c.firing = firing;
  c.member_zipf_exponent = zipf;
  c.seed = 7;
  return c;
}

/// Rates of single features and of one pair over `rows` rows.
struct Rates {
  std::vector<double> single;
  double pair = 0, two_or_more = 0;  // pair (0, 1) both fire; >= 2 members of group 0 fire
  int most_in_group = 0;
};
Rates rates(const MutexGroupSampler& s, int rows) {
  Rates r;
  r.single.assign(s.num_features(), 0.0);
  for (int i = 0; i < rows; ++i) {
    const TegumRow t = s.row(i);
    bool f0 = false, f1 = false;
    for (int f : t.features) r.single[f] += 1.0 / rows, f0 |= f == 0, f1 |= f == 1;
    r.pair += (f0 && f1) / double(rows);
    r.two_or_more += (t.active_per_group[0] >= 2) / double(rows);
    for (int c : t.active_per_group) r.most_in_group = std::max(r.most_in_group, c);
  }
  return r;
}

/// Five binomial standard errors of a rate p over n rows (the tolerance of every rate check:
/// a correct sampler fails one such check with probability 6e-7).
double five_se(double p, int n) { return 5 * std::sqrt(p * (1 - p) / n) + 1e-12; }

}  // namespace

TEST_CASE("mutex groups: one member at most, marginals q pi_j (uniform and Zipf), ungrouped rates",
          "[tegum][sampler]") {
  const int rows = 100000;
  auto cfg = groups_of({4, 3}, 0.6, GroupFiring::mutex, 1.0);
  cfg.ungrouped_features = 2;
  cfg.ungrouped_probability = 0.1;
  const MutexGroupSampler s(cfg);
  REQUIRE(s.num_features() == 9);
  CHECK(s.group_of() == std::vector<int>{0, 0, 0, 0, 1, 1, 1, -1, -1});
  // Zipf 1 over 4 members: pi = (1, 1/2, 1/3, 1/4) / (25/12).
  CHECK(s.choice_probability(0) == Approx(12.0 / 25).epsilon(1e-12));
  CHECK(s.choice_probability(3) == Approx(3.0 / 25).epsilon(1e-12));
  const Rates r = rates(s, rows);
  CHECK(r.most_in_group == 1);
  CHECK(r.pair == 0);
  for (int f = 0; f < s.num_features(); ++f) {
    INFO("feature " << f);
    CHECK(std::fabs(r.single[f] - s.marginal_probability(f)) < five_se(s.marginal_probability(f), rows));
  }
  CHECK(s.marginal_probability(7) == 0.1);
}

TEST_CASE("controls keep the marginals: independent pairs multiply, correlated pairs share the gate",
          "[tegum][sampler]") {
  const int rows = 100000;
  const double q = 0.5, pi = 1.0 / 3;  // three members, uniform
  const MutexGroupSampler ind(groups_of({3}, q, GroupFiring::independent));
  const MutexGroupSampler cor(groups_of({3}, q, GroupFiring::correlated));
  const Rates ri = rates(ind, rows), rc = rates(cor, rows);
  for (int f = 0; f < 3; ++f) {
    CHECK(std::fabs(ri.single[f] - q * pi) < five_se(q * pi, rows));
    CHECK(std::fabs(rc.single[f] - q * pi) < five_se(q * pi, rows));
  }
  CHECK(std::fabs(ri.pair - q * pi * q * pi) < five_se(q * pi * q * pi, rows));  // p_i p_j
  CHECK(std::fabs(rc.pair - q * pi * pi) < five_se(q * pi * pi, rows));          // q pi_i pi_j
}

TEST_CASE("the co-activation dial mixes mutex with independent firing per sample and group", "[tegum][sampler]") {
  const int rows = 100000;
  const double q = 0.9, rho = 0.4;
  auto cfg = groups_of({5}, q, GroupFiring::mutex);
  cfg.coactivation = rho;
  const MutexGroupSampler s(cfg);
  // Under independent firing with p = q / 5 each: P(>= 2 of 5) = 1 - (1-p)^5 - 5 p (1-p)^4.
  const double p = q / 5, at_least_two = 1 - std::pow(1 - p, 5) - 5 * p * std::pow(1 - p, 4);
  const Rates r = rates(s, rows);
  CHECK(std::fabs(r.two_or_more - rho * at_least_two) < five_se(rho * at_least_two, rows));
  for (int f = 0; f < 5; ++f) CHECK(std::fabs(r.single[f] - p) < five_se(p, rows));
}

TEST_CASE("group rows are a function of (seed, row), and bad values are named", "[tegum][sampler]") {
  auto cfg = groups_of({5, 5}, 0.7, GroupFiring::mutex);
  const MutexGroupSampler a(cfg), b(cfg);
  cfg.seed = 8;
  const MutexGroupSampler c(cfg);
  int differ = 0;
  for (std::uint64_t r = 0; r < 200; ++r) {
    const TegumRow x = a.row(r), y = b.row(r), z = c.row(r);
    CHECK(x.features == y.features);
    CHECK(x.values == y.values);
    differ += x.features != z.features;
  }
  CHECK(differ > 50);  // P(same features in a row) < 0.3 for two seeds

  auto bad = [](auto edit, const char* field) {
    auto cfg = groups_of({5}, 0.5, GroupFiring::mutex);
    edit(cfg);
    try {
      MutexGroupSampler s(cfg);
      FAIL("accepted a bad " << field);
    } catch (const ConfigError& e) {
      CHECK(e.field() == field);
    }
  };
  bad([](MutexGroupsConfig& c) { c.group_probability = 0; }, "group_probability");
  bad([](MutexGroupsConfig& c) { c.group_probability = std::nan(""); }, "group_probability");
  bad([](MutexGroupsConfig& c) { c.coactivation = 1.5; }, "coactivation");
  bad([](MutexGroupsConfig& c) { c.group_sizes = {}; }, "group_sizes");
  bad([](MutexGroupsConfig& c) { c.group_sizes = {3, 0}; }, "group_sizes[1]");
  bad([](MutexGroupsConfig& c) { c.member_zipf_exponent = -1; }, "member_zipf_exponent");
  bad([](MutexGroupsConfig& c) { c.firing = GroupFiring::independent, c.coactivation = 0.5; }, "coactivation");
  bad([](MutexGroupsConfig& c) { c.group_sizes.assign(11, 1000000); }, "group_sizes");  // 1.1e7 features in all

  CHECK_THROWS_AS(group_firing_from("sometimes"), ConfigError);
}

TEST_CASE("regular polytopes: pentagon 2/5, trigonal bipyramid 1/2 and 2/3, simplex and cross-polytope",
          "[tegum][geometry]") {
  const std::vector<int> one_group5(5, 0);
  const FactorGeometry pentagon = factor_geometry(regular_polytope(5, 2), one_group5);
  for (double d : pentagon.dimensionality) CHECK(d == Approx(0.4).epsilon(1e-12));
  // Bipyramid: an apex interferes only with the other apex (cos = -1): D = 1/2; an equatorial
  // vertex with two others at cos 120 deg: D = 1 / (1 + 2/4) = 2/3; mean 3/5.
  const FactorGeometry bipyramid = factor_geometry(regular_polytope(5, 3), one_group5);
  CHECK(bipyramid.dimensionality[0] == Approx(0.5).epsilon(1e-12));
  CHECK(bipyramid.dimensionality[1] == Approx(0.5).epsilon(1e-12));
  for (int i = 2; i < 5; ++i) CHECK(bipyramid.dimensionality[i] == Approx(2.0 / 3).epsilon(1e-12));
  CHECK(bipyramid.mean_dimensionality == Approx(0.6).epsilon(1e-12));
  CHECK(bipyramid.rank[0] == 3);

  const Eigen::MatrixXd tetra = regular_polytope(4, 3), pair = regular_polytope(2, 1), octa = regular_polytope(6, 3);
  const Eigen::MatrixXd tg = tetra * tetra.transpose();
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) CHECK(tg(i, j) == Approx(i == j ? 1.0 : -1.0 / 3).margin(1e-12));
  CHECK(pair(0, 0) * pair(1, 0) == Approx(-1.0));
  CHECK((octa * octa.transpose()).cwiseAbs().sum() == Approx(12.0));  // each vertex: itself and its antipode
  CHECK_FALSE(has_regular_polytope(7, 3));
  CHECK_THROWS_AS(regular_polytope(7, 3), ConfigError);
}

TEST_CASE("Thomson packing finds the tetrahedron and the pentagon", "[tegum][geometry]") {
  const Eigen::MatrixXd t = thomson_packing(4, 3, 3, 0);
  const Eigen::MatrixXd g = t * t.transpose();
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) CHECK(g(i, j) == Approx(i == j ? 1.0 : -1.0 / 3).margin(1e-3));
  // Five points on a circle: equally spaced, so every nearest neighbour is 72 degrees away.
  const Eigen::MatrixXd p = thomson_packing(5, 2, 4, 0);
  for (int i = 0; i < 5; ++i) {
    double nearest = -1;
    for (int j = 0; j < 5; ++j)
      if (j != i) nearest = std::max(nearest, p.row(i).dot(p.row(j)));
    CHECK(nearest == Approx(std::cos(2 * std::numbers::pi / 5)).margin(1e-3));
  }
}

TEST_CASE("orthogonal factors: every group in its own subspace, subspaces and ungrouped features orthogonal",
          "[tegum][geometry]") {
  FactorGeometryConfig geo;
  geo.subspace_dims = {2};
  geo.seed = 5;
  const TegumDictionary dict = place_factors({5, 5, 5, 5}, 3, 12, geo);
  REQUIRE(dict.directions.rows() == 23);
  REQUIRE(dict.subspaces.size() == 4);
  for (int i = 0; i < 23; ++i) CHECK(dict.directions.row(i).norm() == Approx(1.0).epsilon(1e-12));
  for (int g = 0; g < 4; ++g) {
    const Eigen::MatrixXd& q = dict.subspaces[g];
    for (int h = 0; h < 4; ++h)
      CHECK((q.transpose() * dict.subspaces[h]).norm() == Approx(g == h ? std::sqrt(2.0) : 0.0).margin(1e-12));
    const Eigen::MatrixXd members = dict.directions.middleRows(5 * g, 5);
    CHECK((members - members * q * q.transpose()).norm() < 1e-12);  // inside Q_g
    CHECK((dict.directions.bottomRows(3) * q).norm() < 1e-12);      // ungrouped: orthogonal to Q_g
  }
  // The ground truth's geometry, measured: within-group share 1, chance 4/22, pentagons, no overlap.
  std::vector<int> group_of;
  for (int g = 0; g < 4; ++g) group_of.insert(group_of.end(), 5, g);
  group_of.insert(group_of.end(), 3, -1);
  const FactorGeometry m = factor_geometry(dict.directions, group_of);
  CHECK(m.represented == 23);
  CHECK(m.mean_within_share == Approx(1.0).epsilon(1e-12));
  CHECK(m.mean_chance == Approx(4.0 / 22).epsilon(1e-12));
  CHECK(m.mean_dimensionality == Approx(0.4).epsilon(1e-12));
  CHECK(m.mean_effective_rank == Approx(2.0).epsilon(1e-12));
  CHECK(m.mean_cross_overlap == Approx(0.0).margin(1e-12));
  for (int g = 0; g < 4; ++g) CHECK(subspace_alignment(m.subspace[g], dict.subspaces[g]) == Approx(1.0).epsilon(1e-12));

  // Random placement overlaps; sum r_g > d is refused for orthogonal placement only.
  geo.placement = SubspacePlacement::random;
  const TegumDictionary overlapping = place_factors({5, 5, 5, 5}, 0, 6, geo);
  CHECK(factor_geometry(overlapping.directions, std::vector<int>(group_of.begin(), group_of.end() - 3)).mean_cross_overlap >
        0.05);
  geo.placement = SubspacePlacement::orthogonal;
  CHECK_THROWS_AS(place_factors({5, 5, 5, 5}, 0, 7, geo), ConfigError);
}

TEST_CASE("geometry metrics by hand: shares, dimensionality, overlap of nested and crossing planes",
          "[tegum][geometry]") {
  // W0 = (1, 0), W1 = (0.6, 0.8), W2 = (0, 1); groups {0, 1} and {2} (a group of one).
  Eigen::MatrixXd w(3, 2);
  w << 1, 0, 0.6, 0.8, 0, 1;
  const FactorGeometry m = factor_geometry(w, {0, 0, 1});
  CHECK(m.within_share[0] == Approx(1.0));          // 0.36 / (0.36 + 0)
  CHECK(m.within_share[1] == Approx(0.36));         // 0.36 / (0.36 + 0.64)
  CHECK(std::isnan(m.within_share[2]));             // a group of one has no siblings
  CHECK(m.chance[0] == Approx(0.5));                // (2 - 1) / (3 - 1)
  CHECK(m.dimensionality[0] == Approx(1 / 1.36));
  CHECK(m.dimensionality[1] == Approx(0.5));
  CHECK(m.dimensionality[2] == Approx(1 / 1.64));
  CHECK(m.mean_within_share == Approx((1 + 0.36) / 2));
  CHECK(m.mean_dimensionality == Approx((1 / 1.36 + 0.5) / 2));  // grouped features only

  // Planes span(e1, e2) and span(e2, e3) share e2: |P_A P_B|_F^2 / 2 = 1/2.
  Eigen::MatrixXd planes = Eigen::MatrixXd::Zero(4, 3);
  planes(0, 0) = planes(1, 1) = planes(2, 1) = planes(3, 2) = 1;
  CHECK(factor_geometry(planes, {0, 0, 1, 1}).overlap(0, 1) == Approx(0.5));
  // A short direction is not represented and does not enter the means.
  Eigen::MatrixXd shortw = w;
  shortw.row(1) *= 0.1;
  CHECK(factor_geometry(shortw, {0, 0, 1}).represented == 2);
  CHECK_THROWS_AS(factor_geometry(w, {0, 0}), ShapeError);
}

TEST_CASE("never-co-active groups from codes: latents that never fire together are grouped",
          "[tegum][geometry]") {
  // Latents 0, 1, 2 take turns; 3 and 4 fire with everyone; 5 never fires.
  Eigen::MatrixXd codes = Eigen::MatrixXd::Zero(6, 6);
  for (int r = 0; r < 6; ++r) codes(r, r % 3) = 1.0 + r, codes(r, 3) = 0.5, codes(r, 4) = -0.5;
  const Eigen::MatrixXd counts = coactivation_counts(codes);
  CHECK(counts(0, 0) == 2);
  CHECK(counts(0, 3) == 2);
  CHECK(counts(0, 1) == 0);
  CHECK(never_coactive_groups(counts) == std::vector<int>{0, 0, 0, -1, -1, -1});
}

TEST_CASE("toy model of superposition: the importance-weighted loss and its finite-difference gradient",
          "[tegum][toy]") {
  ToyModelConfig cfg;
  cfg.hidden = 3;
  cfg.importance_decay = 0.8;
  cfg.seed = 11;
  ToyModel model(6, cfg);
  RandomStream rs(3, 0);
  for (int i = 0; i < 6; ++i) model.b()(i) = 0.3 * rs.normal<double>();
  Eigen::MatrixXd u(16, 6);
  for (int i = 0; i < u.rows(); ++i)
    for (int j = 0; j < 6; ++j) u(i, j) = rs.uniform<double>() < 0.4 ? rs.uniform<double>() : 0.0;
  // The loss by hand for one row with W = 0: u_hat = ReLU(b).
  {
    ToyModel zero = model;
    zero.w().setZero();
    Eigen::MatrixXd one = u.topRows(1);
    double by_hand = 0;
    for (int j = 0; j < 6; ++j) by_hand += std::pow(0.8, j) * std::pow(std::max(zero.b()(j), 0.0) - one(0, j), 2);
    CHECK(zero.loss(one) == Approx(by_hand).epsilon(1e-14));
  }
  Eigen::MatrixXd gw;
  Eigen::RowVectorXd gb;
  model.loss_and_gradient(u, gw, gb);
  const double h = 1e-6;
  // Central differences, exact to O(h^2) away from ReLU kinks (none within h here: checked below).
  const Eigen::MatrixXd z = ((u * model.w().transpose()) * model.w()).rowwise() + model.b();
  REQUIRE(z.cwiseAbs().minCoeff() > 1e-4);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 6; ++j) {
      ToyModel p = model, m = model;
      p.w()(i, j) += h, m.w()(i, j) -= h;
      CHECK(gw(i, j) == Approx((p.loss(u) - m.loss(u)) / (2 * h)).margin(1e-8));
    }
  for (int j = 0; j < 6; ++j) {
    ToyModel p = model, m = model;
    p.b()(j) += h, m.b()(j) -= h;
    CHECK(gb(j) == Approx((p.loss(u) - m.loss(u)) / (2 * h)).margin(1e-8));
  }
  CHECK(gw.norm() > 1e-3);
}

TEST_CASE("the tegum hypothesis on the reference's setting: mutex groups become pentagons, independent ones do not",
          "[tegum][toy][trained]") {
  // Reference §2.12 (B): 20 features in 4 mutex groups of 5, m = 8, q = 0.9: within-group
  // interference share 1.00 (mutex) vs 0.20 (independent, chance 0.21); mean dimensionality 0.40.
  ToyModelConfig cfg;
  cfg.hidden = 8;
  cfg.steps = 3000;
  cfg.seed = 1;
  const MutexGroupSampler mutex(groups_of({5, 5, 5, 5}, 0.9, GroupFiring::mutex));
  const MutexGroupSampler independent(groups_of({5, 5, 5, 5}, 0.9, GroupFiring::independent));
  const FactorGeometry gm = factor_geometry(train_toy_model(mutex, cfg).w().transpose(), mutex.group_of());
  const FactorGeometry gi = factor_geometry(train_toy_model(independent, cfg).w().transpose(), independent.group_of());
  // The runs are seeded: these check one deterministic outcome, with thresholds set between the
  // two regimes rather than from sampling error. This seed measures (2026-12-04): mutex share
  // 1.000 (four exact pentagons; threshold 0.95), dimensionality 0.400 (margin 0.02, 5 %),
  // effective rank 2.00 (margin 0.1); independent share 0.315 (threshold 0.45, below the 0.64 that
  // the mutex models reach even at q 0.3 in docs/tegum.md). Over 5 seeds the mutex share is
  // 0.944 +- 0.124 (docs/tegum.md), so another seed may land a model between the regimes.
  CHECK(gm.mean_chance == Approx(4.0 / 19));
  CHECK(gm.represented == 20);
  CHECK(gm.mean_within_share > 0.95);
  CHECK(gm.mean_dimensionality == Approx(0.4).margin(0.02));
  CHECK(gm.mean_effective_rank == Approx(2.0).margin(0.1));
  CHECK(gm.mean_cross_overlap < 0.05);
  CHECK(gi.mean_within_share < 0.45);
  CHECK(gi.mean_cross_overlap > 0.2);
}

TEST_CASE("latent groups of an SAE: never-co-active latents in shared planes stand out from the null",
          "[tegum][latents]") {
  // 4 groups of 3 latents (triangles in orthogonal planes: R^8 of R^12) that take turns, and 8
  // latents in the other 4 dimensions that fire independently with probability 0.3 each.
  const int rows = 2000, s = 20, d = 12;
  FactorGeometryConfig geo;
  geo.subspace_dims = {2};
  geo.seed = 9;
  const TegumDictionary dict = place_factors({3, 3, 3, 3}, 8, d, geo);
  Matrix<float> codes("codes", rows, s);
  auto h = Kokkos::create_mirror_view(codes);
  RandomStream rs(4, 0);
  for (int r = 0; r < rows; ++r) {
    for (int g = 0; g < 4; ++g) h(r, 3 * g + static_cast<int>(rs.uniform_below(3))) = 1.0f + rs.uniform<float>();
    for (int j = 12; j < s; ++j)
      if (rs.uniform<double>() < 0.3) h(r, j) = rs.uniform<float>();
  }
  Kokkos::deep_copy(codes, h);
  LatentCoactivation co(s);
  co.add(Kokkos::subview(codes, std::make_pair(0, 1500), Kokkos::ALL));  // two chunks
  co.add(Kokkos::subview(codes, std::make_pair(1500, rows), Kokkos::ALL));
  const Eigen::MatrixXd counts = co.counts();
  CHECK(co.rows() == std::uint64_t(rows));
  double direct = 0;  // latent 12 with latent 13, counted directly
  for (int r = 0; r < rows; ++r) direct += h(r, 12) != 0 && h(r, 13) != 0;
  CHECK(counts(12, 13) == direct);
  CHECK(counts(0, 1) == 0);

  LatentGroupOptions opt;
  opt.shuffles = 200;
  const LatentGroupReport rep = analyse_latent_groups(dict.directions, counts, co.rows(), opt);
  CHECK(rep.groups == 4);
  CHECK(rep.grouped == 12);
  CHECK(rep.largest_group == 3);
  for (int g = 0; g < 4; ++g) {
    CHECK(rep.group_of[3 * g] >= 0);
    CHECK(rep.group_of[3 * g] == rep.group_of[3 * g + 1]);
    CHECK(rep.group_of[3 * g] == rep.group_of[3 * g + 2]);
  }
  for (int j = 12; j < s; ++j) CHECK(rep.group_of[j] == -1);
  CHECK(rep.geometry.mean_within_share == Approx(1.0).epsilon(1e-9));
  CHECK(rep.geometry.mean_effective_rank == Approx(2.0).epsilon(1e-9));
  // Measured z = 7.15 (seeded): the share is exactly 1 against a null of random relabellings;
  // 5 standard deviations leaves 2 of margin and is beyond any chance value of a normal null
  // (P(z > 5) ~ 3e-7).
  CHECK(rep.share_z > 5);
  CHECK(rep.null_share_mean < 0.5);

  // The same co-activation with random directions: the grouping says nothing about the geometry,
  // so the share is one draw from the null (|z| < 4 fails with probability ~1e-4 for a normal null).
  geo.placement = SubspacePlacement::none;
  geo.ungrouped_orthogonal = false;
  const TegumDictionary random = place_factors({3, 3, 3, 3}, 8, d, geo);
  const LatentGroupReport null_rep = analyse_latent_groups(random.directions, counts, co.rows(), opt);
  CHECK(null_rep.groups == 4);
  CHECK(std::fabs(null_rep.share_z) < 4);
  CHECK_THROWS_AS(analyse_latent_groups(random.directions, counts.topLeftCorner(5, 5), 1, opt), ShapeError);

  // Duplicates: latents 0 and 1 are one direction and take turns (as a TopK SAE's two copies of a
  // feature do); latent 2 fires with both. They would form a perfectly aligned group of two.
  Eigen::MatrixXd dup_dec(3, 2);
  dup_dec << 1, 0, 0.99, 0.1, 0, 1;
  Eigen::MatrixXd dup_counts(3, 3);
  dup_counts << 50, 0, 50, 0, 40, 40, 50, 40, 90;
  LatentGroupOptions keep = opt;
  keep.duplicate_cos = 1;
  const LatentGroupReport with_dups = analyse_latent_groups(dup_dec, dup_counts, 90, keep);
  CHECK(with_dups.groups == 1);
  CHECK(with_dups.duplicates == 0);
  CHECK(std::isnan(with_dups.share_z));  // one group: no relabelling to compare with
  const LatentGroupReport without = analyse_latent_groups(dup_dec, dup_counts, 90, opt);  // |cos| 0.995 >= 0.9
  CHECK(without.groups == 0);
  CHECK(without.duplicates == 1);
  CHECK(without.eligible == 2);
  CHECK(without.group_of == std::vector<int>{-1, -1, -1});
}

namespace {

/// Fired features of rows [first, first + rows) of a world, as a dense 0/1 matrix.
Eigen::MatrixXd fired_matrix(SyntheticModel& world, std::uint64_t first, int rows) {
  SparseBatch<float> truth;
  world.sample_features_at(truth, first, static_cast<std::size_t>(rows));
  const auto ids = Kokkos::create_mirror_view_and_copy(HostSpace(), truth.ids);
  const auto counts = Kokkos::create_mirror_view_and_copy(HostSpace(), truth.counts);
  Eigen::MatrixXd f = Eigen::MatrixXd::Zero(rows, world.num_features());
  for (int r = 0; r < rows; ++r)
    for (int q = 0; q < counts(r); ++q) f(r, ids(r, q)) = 1;
  return f;
}

}  // namespace

TEST_CASE("tegum worlds: mutex groups through the hierarchy keep the marginals q/S; the control co-fires",
          "[tegum][world]") {
  TegumWorldConfig cfg;
  cfg.group_sizes = {5, 5, 4};
  cfg.ungrouped = 3;
  cfg.hidden_dim = 16;
  cfg.group_probability = 0.6;
  cfg.geometry.subspace_dims = {3, 3, 2};
  cfg.geometry.seed = 2;
  cfg.seed = 5;
  TegumWorld mutex = make_tegum_world(cfg);
  cfg.mutually_exclusive = false;
  TegumWorld independent = make_tegum_world(cfg);
  REQUIRE(mutex.model.num_features() == 17);
  CHECK(mutex.group_of == std::vector<int>{0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, -1, -1, -1});
  const int rows = 40000;
  const Eigen::MatrixXd fm = fired_matrix(mutex.model, 0, rows), fi = fired_matrix(independent.model, 0, rows);
  // Rates within 5 binomial SE; the probabilities are stored in float, hence the 1e-6.
  for (int i = 0; i < 14; ++i) {
    const double p = 0.6 / (i < 10 ? 5 : 4), tol = five_se(p, rows) + 1e-6;
    CHECK(std::fabs(fm.col(i).mean() - p) < tol);
    CHECK(std::fabs(fi.col(i).mean() - p) < tol);
  }
  for (int i = 14; i < 17; ++i) CHECK(std::fabs(fm.col(i).mean() - 0.05) < five_se(0.05, rows));
  int most = 0;
  double pair_independent = 0;
  for (int r = 0; r < rows; ++r) {
    most = std::max(most, int(fm.row(r).segment(0, 5).sum()));
    pair_independent += fi(r, 0) * fi(r, 1) / rows;
  }
  CHECK(most == 1);
  CHECK(std::fabs(pair_independent - 0.12 * 0.12) < five_se(0.12 * 0.12, rows));
  // The dictionary is place_factors': the world's feature vectors are the ground truth's directions.
  const auto fv = Kokkos::create_mirror_view_and_copy(HostSpace(), mutex.model.feature_vectors());
  double worst = 0;
  for (int i = 0; i < 17; ++i)
    for (int k = 0; k < 16; ++k) worst = std::max(worst, std::fabs(fv(i, k) - mutex.dictionary.directions(i, k)));
  CHECK(worst < 1e-7);
  cfg.group_sizes = {5, 1};
  CHECK_THROWS_AS(make_tegum_world(cfg), ConfigError);
  cfg.group_sizes = {5, 5};
  cfg.magnitude_std = 0.5;  // mean 1: P(clip to 0) = 2.3 %, which would change the rates
  try {
    make_tegum_world(cfg);
    FAIL("accepted magnitudes that clip");
  } catch (const ConfigError& e) {
    CHECK(e.field() == "magnitude_std");
  }
}

TEST_CASE("tegum worlds: the co-activation dial keeps the marginals q/S, co-fires in a share rho of the samples, "
          "and at rho = 1 draws the independent control bit for bit",
          "[tegum][world]") {
  const double q = 0.6, rho = 0.4;
  const int s = 5;
  // The member rate solves (1 - rho)(1 - (1 - p)^S)/S + rho p = q/S; its two ends are closed forms.
  const double p = tegum_member_probability(q, s, rho);
  CHECK((1 - rho) * (1 - std::pow(1 - p, s)) / s + rho * p == Approx(q / s).epsilon(1e-12));
  CHECK(tegum_member_probability(q, s, 0) == Approx(1 - std::pow(1 - q, 1.0 / s)).epsilon(1e-14));
  CHECK(tegum_member_probability(q, s, 1) == q / s);
  CHECK(p > q / s);
  CHECK(p < tegum_member_probability(q, s, 0));

  TegumWorldConfig cfg;
  cfg.group_sizes = {s, s};
  cfg.hidden_dim = 16;
  cfg.group_probability = q;
  cfg.geometry.subspace_dims = {3, 3};
  cfg.geometry.seed = 2;
  cfg.seed = 5;
  cfg.coactivation = rho;
  TegumWorld mixed = make_tegum_world(cfg);
  const int rows = 40000;
  const Eigen::MatrixXd f = fired_matrix(mixed.model, 0, rows);
  for (int i = 0; i < 2 * s; ++i) CHECK(std::fabs(f.col(i).mean() - q / s) < five_se(q / s, rows) + 1e-6);
  // A group holds >= 2 active members only in a co-active sample, where members fire as
  // Binomial(S, p): P(>= 2) = rho (1 - (1 - p)^S - S p (1 - p)^(S - 1)). 5 binomial SE over 2 groups.
  const double p2 = rho * (1 - std::pow(1 - p, s) - s * p * std::pow(1 - p, s - 1));
  int two_or_more = 0;
  for (int r = 0; r < rows; ++r)
    for (int g = 0; g < 2; ++g) two_or_more += f.row(r).segment(g * s, s).sum() >= 2;
  CHECK(std::fabs(two_or_more / (2.0 * rows) - p2) < five_se(p2, 2 * rows));
  CHECK(p2 > 0.05);  // the check is not vacuous (about 4,700 co-firing pairs)

  // The dial survives hierarchy.json (synthsae's key; SAELens's worlds never carry it).
  const io::Json saved = forest_to_json(mixed.model.hierarchy());
  CHECK(saved["roots"][0]["synthsae_coactivation"].get<double>() == rho);
  CHECK(forest_from_json(saved, 10, "test").nodes[0].coactivation == rho);
  io::Json bad = saved;
  bad["roots"][1]["synthsae_coactivation"] = 1.5;
  CHECK_THROWS_WITH(forest_from_json(bad, 10, "test"), Catch::Contains("synthsae_coactivation = 1.5"));
  bad["roots"][1]["synthsae_coactivation"] = 0.5;
  bad["roots"][1]["mutually_exclusive_children"] = false;
  CHECK_THROWS_WITH(forest_from_json(bad, 10, "test"), Catch::Contains("not mutually exclusive"));
  cfg.coactivation = 0;
  CHECK(!forest_to_json(make_tegum_world(cfg).model.hierarchy())["roots"][0].contains("synthsae_coactivation"));

  // rho = 1: the exclusion is always skipped and the raw rate is q/S, so every draw is the
  // independent control's (the same Philox counters), bit for bit.
  cfg.coactivation = 1;
  TegumWorld all = make_tegum_world(cfg);
  cfg.coactivation = 0, cfg.mutually_exclusive = false;
  TegumWorld independent = make_tegum_world(cfg);
  SparseBatch<float> a, b;
  all.model.sample_features_at(a, 777, 5000);
  independent.model.sample_features_at(b, 777, 5000);
  const auto ca = Kokkos::create_mirror_view_and_copy(HostSpace(), a.counts), cb = Kokkos::create_mirror_view_and_copy(HostSpace(), b.counts);
  const auto ia = Kokkos::create_mirror_view_and_copy(HostSpace(), a.ids), ib = Kokkos::create_mirror_view_and_copy(HostSpace(), b.ids);
  const auto va = Kokkos::create_mirror_view_and_copy(HostSpace(), a.values), vb = Kokkos::create_mirror_view_and_copy(HostSpace(), b.values);
  int differ = 0, multi = 0;
  for (int r = 0; r < 5000; ++r) {
    differ += ca(r) != cb(r);
    multi += ca(r) >= 3;
    for (int k = 0; k < std::min(ca(r), cb(r)); ++k) differ += ia(r, k) != ib(r, k) || va(r, k) != vb(r, k);
  }
  CHECK(differ == 0);
  CHECK(multi > 100);  // rows where some group co-fires

  cfg.coactivation = 0.5;  // on the independent world
  CHECK_THROWS_WITH(make_tegum_world(cfg), Catch::Contains("coactivation"));
  cfg.mutually_exclusive = true, cfg.coactivation = -0.1;
  CHECK_THROWS_WITH(make_tegum_world(cfg), Catch::Contains("coactivation"));
}

TEST_CASE("factor recovery by hand: matching, subspace angles, F1, sibling confusion, FVU inside each factor",
          "[tegum][world]") {
  // Features e0, e1 (group 0, Q_0 = span(e0, e1)) and e2, e3 (group 1, Q_1 = span(e2, e3)).
  const Eigen::MatrixXd truth = Eigen::MatrixXd::Identity(4, 4);
  std::vector<Eigen::MatrixXd> q{truth.leftCols(2), truth.rightCols(2)};
  // Latent 2 is e2 tilted towards e0: cos(e2, w2) = 0.5, cos(e0, w2) = 0.866 < cos(e0, w0) = 1.
  Eigen::MatrixXd dec = truth;
  dec.row(2) << std::sqrt(0.75), 0, 0.5, 0;
  FactorRecovery rec(truth, {0, 0, 1, 1}, q, dec);
  CHECK(rec.matched_latent() == std::vector<int>{0, 1, 2, 3});
  // Four rows: {e0} exact; {e1, e2} with latent 2 silent; {e3} with latent 2 firing too; nothing.
  Eigen::MatrixXd x = Eigen::MatrixXd::Zero(4, 4), xh = x, z = x, fired = x;
  x(0, 0) = 1, xh(0, 0) = 1, z(0, 0) = 1, fired(0, 0) = 1;
  x(1, 1) = x(1, 2) = 1, xh(1, 1) = 1, z(1, 1) = 1, fired(1, 1) = fired(1, 2) = 1;
  x(2, 3) = 1, xh(2, 3) = 1, z(2, 3) = 1, z(2, 2) = 0.3, fired(2, 3) = 1;
  rec.add(x.topRows(2), xh.topRows(2), z.topRows(2), fired.topRows(2));  // two chunks
  rec.add(x.bottomRows(2), xh.bottomRows(2), z.bottomRows(2), fired.bottomRows(2));
  const auto g = rec.groups();
  CHECK(g[0].max_cos == Approx(1.0));
  CHECK(g[1].max_cos == Approx(0.75));       // (0.5 + 1) / 2
  CHECK(g[0].subspace == Approx(1.0));
  CHECK(g[1].subspace == Approx(0.625));     // principal cos^2 1 (e3) and 0.25 (w2 against e2)
  CHECK(g[1].coverage == Approx(0.625));     // two angles over r = 2: the same here
  CHECK(g[0].f1 == Approx(1.0));
  CHECK(g[1].f1 == Approx(0.5));             // tp 1 (e3), fp 1 (latent 2 in row 2), fn 1 (e2 in row 1)
  CHECK(g[0].confusion == Approx(0.0));
  CHECK(g[1].confusion == Approx(0.5));      // sibling rows: e3 in row 1 (silent), e2 in row 2 (fired)
  CHECK(g[0].fvu == Approx(0.0));
  CHECK(g[1].fvu == Approx(1.0 / 1.5));      // error e2 once; centred sum: 2 - |(1, 1)|^2 / 4
  CHECK(g[1].error_share == Approx(1.0));
  CHECK(rec.mean().max_cos == Approx(0.875));
  // A collapse: both members of group 0 matched by one latent on e0. The span is a line inside
  // Q_0: every principal angle it has is 0 (subspace 1), but it covers half of Q_0.
  Eigen::MatrixXd collapsed = Eigen::MatrixXd::Zero(2, 4);
  collapsed.row(0) << 1, 0, 0, 0;
  collapsed.row(1) << 0, 0, 1, 0;
  FactorRecovery col(truth.topRows(2), {0, 0}, {q[0]}, collapsed);
  CHECK(col.groups()[0].subspace == Approx(1.0));
  CHECK(col.groups()[0].coverage == Approx(0.5));
  CHECK_THROWS_AS(FactorRecovery(truth, {0, 0, 1}, q, dec), ShapeError);
  CHECK_THROWS_AS(FactorRecovery(truth, {0, 0, 1, 2}, q, dec), ShapeError);
}
