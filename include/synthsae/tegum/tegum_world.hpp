#pragma once
// Synthetic worlds whose features sit in tegum factors (../shared/reference/dark-matter.md §2.12
// (A)): an ordinary SyntheticModel, so every tool trains and scores SAEs on it, and it saves in
// SAELens's layout. Its dictionary comes from place_factors (each group's members inside its own
// subspace Q_g) and its firing from the hierarchy's mutual-exclusion machinery: every group is an
// organisational root node (no feature of its own) whose children are the members.
//   mutex:        children mutually exclusive, each with p = 1 - (1 - q)^(1/S): the group fires
//                 with probability q and SAELens's exclusion keeps one active child uniformly at
//                 random, so member j fires with q / S, never with a sibling;
//   independent:  the same root without exclusion and p = q / S: the same marginals, co-activation
//                 allowed (the control);
//   coactivation = rho in (0, 1]: the mutex root skips its exclusion in a share rho of the samples
//                 (HierarchyNode::coactivation), and p solves
//                 (1 - rho) (1 - (1 - p)^S) / S + rho p = q / S, so the marginals stay q / S:
//                 the dial from mutex (0) to independent firing (1, the control's exact draws).
// Ungrouped features fire on their own. Magnitudes are max(0, N(mean, std)) as in every world; a
// draw clipped to 0 does not fire, so std must stay well below mean (mean / std >= 3.1, where
// under 1e-3 of the draws clip) for the marginals above to hold.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "synthsae/core/error.hpp"
#include "synthsae/io/json.hpp"
#include "synthsae/tegum/factor_placement.hpp"
#include "synthsae/world/synthetic_model.hpp"

namespace synthsae::tegum {

struct TegumWorldConfig {
  std::vector<int> group_sizes;
  int ungrouped = 0;
  int hidden_dim = 0;
  double group_probability = 0.5;     ///< q
  double ungrouped_probability = 0.05;
  bool mutually_exclusive = true;     ///< false: the independent control with equal marginals
  double coactivation = 0;            ///< rho_co of the mutex worlds (the dial above)
  FactorGeometryConfig geometry;      ///< subspace_dims, arrangement, placement, seed
  double magnitude_mean = 1.0, magnitude_std = 0.0;
  std::uint64_t seed = 0;             ///< the world's (sampling streams, magnitudes)

  void validate() const {
    if (group_sizes.empty()) throw ConfigError("group_sizes", "[]", "needs at least one group");
    for (std::size_t g = 0; g < group_sizes.size(); ++g)
      if (group_sizes[g] < 2 || group_sizes[g] > 100000)
        throw ConfigError("group_sizes[" + std::to_string(g) + "]", show(group_sizes[g]),
                          "must be in [2, 100000] (a group of one excludes nothing)");
    if (ungrouped < 0) throw ConfigError("ungrouped", show(ungrouped), "must be >= 0");
    if (hidden_dim < 1) throw ConfigError("hidden_dim", show(hidden_dim), "must be >= 1");
    if (!(group_probability > 0 && group_probability <= 1))
      throw ConfigError("group_probability", show(group_probability), "must be in (0, 1]");
    if (!(coactivation >= 0 && coactivation <= 1))
      throw ConfigError("coactivation", show(coactivation), "must be in [0, 1]");
    if (coactivation > 0 && !mutually_exclusive)
      throw ConfigError("coactivation", show(coactivation), "mixes mutex with independent firing; the world is independent");
    if (ungrouped > 0 && !(ungrouped_probability > 0 && ungrouped_probability <= 1))
      throw ConfigError("ungrouped_probability", show(ungrouped_probability), "must be in (0, 1]");
    if (!(magnitude_mean > 0 && std::isfinite(magnitude_mean)))
      throw ConfigError("magnitude_mean", show(magnitude_mean), "must be finite and > 0");
    if (!(magnitude_std >= 0 && std::isfinite(magnitude_std)))
      throw ConfigError("magnitude_std", show(magnitude_std), "must be finite and >= 0");
    if (magnitude_std * 3.1 > magnitude_mean)
      throw ConfigError("magnitude_std", show(magnitude_std),
                        "must be <= magnitude_mean / 3.1 (" + show(magnitude_mean / 3.1) +
                            "): more draws would clip to 0, not fire, and change the firing rates");
    long long total = ungrouped;
    for (int g : group_sizes) total += g;
    if (total > 10000000) throw ConfigError("group_sizes", show(total) + " features", "must total <= 10,000,000");
  }
};

/// The world and its ground truth: each feature's group (-1 ungrouped) and each group's Q_g.
struct TegumWorld {
  SyntheticModel model;
  TegumDictionary dictionary;
  std::vector<int> group_of;

  /// Ground truth beside a saved world (`tegum_groups.json`): membership and subspaces.
  io::Json ground_truth_json(const TegumWorldConfig& cfg) const {
    io::Json q = io::Json::array();
    for (const auto& s : dictionary.subspaces) {
      io::Json cols = io::Json::array();  // Q_g as r rows of d (its orthonormal columns)
      for (Eigen::Index c = 0; c < s.cols(); ++c) {
        std::vector<double> v(s.rows());
        for (Eigen::Index k = 0; k < s.rows(); ++k) v[k] = s(k, c);
        cols.push_back(v);
      }
      q.push_back(cols);
    }
    return {{"group_sizes", cfg.group_sizes},
            {"ungrouped", cfg.ungrouped},
            {"group_of", group_of},
            {"group_probability", cfg.group_probability},
            {"mutually_exclusive", cfg.mutually_exclusive},
            {"coactivation", cfg.coactivation},
            {"subspaces", q}};
  }
};

/// Reads `group_of` and the subspaces back from ground_truth_json's output.
inline void tegum_ground_truth_from_json(const io::Json& j, std::vector<int>& group_of, std::vector<Eigen::MatrixXd>& q,
                                         const std::string& source) {
  try {
    group_of = j.at("group_of").get<std::vector<int>>();
    q.clear();
    for (const auto& s : j.at("subspaces")) {
      const auto rows = s.get<std::vector<std::vector<double>>>();
      if (rows.empty()) throw FormatError(source, "an empty subspace");
      Eigen::MatrixXd m(rows[0].size(), rows.size());
      for (std::size_t c = 0; c < rows.size(); ++c) {
        if (rows[c].size() != rows[0].size()) throw FormatError(source, "subspace rows of different lengths");
        for (std::size_t k = 0; k < rows[c].size(); ++k) m(k, c) = rows[c][k];
      }
      q.push_back(m);
    }
  } catch (const io::Json::exception& e) {
    throw FormatError(source, std::string("not tegum ground truth: ") + e.what());
  }
  for (std::size_t i = 0; i < group_of.size(); ++i)
    if (group_of[i] < -1 || group_of[i] >= static_cast<int>(q.size()))
      throw FormatError(source, "group_of[" + show(i) + "] = " + show(group_of[i]) + " names no subspace");
}

/// A member's raw firing probability p in a group of `size` that fires with q overall, whose
/// exclusion is skipped with probability rho: the root of
/// (1 - rho) (1 - (1 - p)^S) / S + rho p = q / S, increasing in p from 0 (at p = 0) to at least
/// q / S (at p = 1). rho = 0: 1 - (1 - q)^(1/S); rho = 1: q / S, both exact.
inline double tegum_member_probability(double q, int size, double rho) {
  const double target = q / size;
  if (rho <= 0) return -std::expm1(std::log1p(-q) / size);  // without cancellation for small q
  if (rho >= 1) return target;
  auto rate = [&](double p) { return (1 - rho) * -std::expm1(size * std::log1p(-p)) / size + rho * p; };
  double lo = 0, hi = 1;  // to the last bit: stop when the midpoint is one of the ends
  for (int i = 0; i < 2000; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    (rate(mid) < target ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

inline TegumWorld make_tegum_world(const TegumWorldConfig& cfg) {
  cfg.validate();
  TegumDictionary dict = place_factors(cfg.group_sizes, cfg.ungrouped, cfg.hidden_dim, cfg.geometry);
  const int groups = static_cast<int>(cfg.group_sizes.size()), n = static_cast<int>(dict.directions.rows());
  std::vector<int> group_of;
  std::vector<double> p;
  io::Json roots = io::Json::array();
  int f = 0;
  for (int g = 0; g < groups; ++g) {
    const int s = cfg.group_sizes[g];
    const double member = cfg.mutually_exclusive ? tegum_member_probability(cfg.group_probability, s, cfg.coactivation)
                                                 : cfg.group_probability / s;
    io::Json children = io::Json::array();
    for (int j = 0; j < s; ++j, ++f) {
      group_of.push_back(g), p.push_back(member);
      children.push_back({{"feature_index", f}, {"mutually_exclusive_children", false},
                          {"scale_children_by_parent", false}, {"feature_id", nullptr}, {"children", io::Json::array()}});
    }
    io::Json root{{"feature_index", nullptr}, {"mutually_exclusive_children", cfg.mutually_exclusive},
                  {"scale_children_by_parent", false}, {"feature_id", "tegum-group-" + std::to_string(g)},
                  {"children", children}};
    if (cfg.coactivation > 0) root["synthsae_coactivation"] = cfg.coactivation;
    roots.push_back(root);
  }
  for (int j = 0; j < cfg.ungrouped; ++j, ++f) group_of.push_back(-1), p.push_back(cfg.ungrouped_probability);

  SyntheticModelConfig mc;
  mc.num_features = n;
  mc.hidden_dim = cfg.hidden_dim;
  mc.mean_firing_magnitudes = ConstantMagnitude{cfg.magnitude_mean};
  mc.std_firing_magnitudes = ConstantMagnitude{cfg.magnitude_std};
  mc.bias = BiasSpec{BiasSpec::Kind::none, 0.0};
  mc.seed = cfg.seed;
  SyntheticModelParts parts;
  parts.feature_vectors = Matrix<float>("tegum_features", n, cfg.hidden_dim);
  auto h = Kokkos::create_mirror_view(parts.feature_vectors);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < cfg.hidden_dim; ++k) h(i, k) = static_cast<float>(dict.directions(i, k));
  Kokkos::deep_copy(parts.feature_vectors, h);
  parts.bias = Vector<float>("tegum_bias", cfg.hidden_dim);  // zeros
  for (auto& v : p) v = static_cast<double>(static_cast<float>(v));  // as a saved world holds them
  parts.firing_probabilities = p;
  parts.hierarchy = forest_from_json({{"roots", roots}}, static_cast<std::size_t>(n), "tegum world");
  return TegumWorld{SyntheticModel(std::move(mc), std::move(parts)), std::move(dict), std::move(group_of)};
}

}  // namespace synthsae::tegum
