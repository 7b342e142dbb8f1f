#pragma once
// What `synthsae tegum`'s modes share: the --groups spec, a tegum world from the world flags, the
// ground truth beside a saved world, and the true-factor scores as JSON and as printed lines.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <synthsae/core/host_eigen.hpp>
#include <synthsae/io/atomic_file.hpp>
#include <synthsae/io/json.hpp>
#include <synthsae/saelens/model_directory.hpp>
#include <synthsae/tegum/tegum_world.hpp>
#include <synthsae/tegum/true_factor_scorer.hpp>

#include "cli_args.hpp"

namespace synthsae::cli {

inline constexpr const char* kTegumGroundTruthFile = "tegum_groups.json";

/// `synthsae tegum --recovery-sweep` (tegum_recovery_command.cpp).
int run_tegum_recovery(const Args& args, const std::string& out_dir);

/// GxS (G groups of S members) or S,S,...
inline std::vector<int> parse_groups(const std::string& spec) {
  std::vector<int> sizes;
  const std::size_t x = spec.find('x');
  auto whole = [&](const std::string& t, int lo, int hi) {
    const double v = number_in("--groups", t, lo, hi);
    if (v != std::floor(v)) throw UsageError("--groups = " + spec + ": " + t + " is not a whole number");
    return static_cast<int>(v);
  };
  if (x != std::string::npos) {
    sizes.assign(whole(spec.substr(0, x), 1, 100000), whole(spec.substr(x + 1), 1, 100000));
  } else {
    for (const auto& t : split_list(spec)) sizes.push_back(whole(t, 1, 100000));
  }
  return sizes;
}

/// NaN as JSON null (nlohmann writes NaN as null anyway; explicit for readers of the code).
inline io::Json number_or_null(double v) { return std::isfinite(v) ? io::Json(v) : io::Json(nullptr); }

/// The defaults of a mode's world flags.
struct TegumWorldDefaults {
  const char* groups;
  double q;
  const char* placement;
  double magnitude_mean, magnitude_std;
  int hidden;  ///< 0: --hidden is required
};

/// A tegum world's config from --groups, --ungrouped, --ungrouped-p, --hidden, --q, --subspace-dim,
/// --arrangement, --placement, --magnitude-mean, --magnitude-std and --world-seed (not the firing
/// mode or rho_co, which the caller sets). A value the world refuses is a usage error naming its flag.
inline tegum::TegumWorldConfig tegum_world_config(const Args& args, const TegumWorldDefaults& d) {
  if (!d.hidden && !args.has("--hidden")) throw UsageError("--save-world needs --hidden D (the world's dimension)");
  tegum::TegumWorldConfig cfg;
  cfg.group_sizes = parse_groups(args.text("--groups").value_or(d.groups));
  cfg.ungrouped = static_cast<int>(args.integer("--ungrouped", 0, 1000000).value_or(0));
  cfg.ungrouped_probability = args.number("--ungrouped-p", 1e-9, 1).value_or(0.05);
  cfg.hidden_dim = static_cast<int>(args.integer("--hidden", 1, 1 << 20).value_or(d.hidden));
  cfg.group_probability = args.number("--q", 1e-9, 1).value_or(d.q);
  cfg.magnitude_mean = args.number("--magnitude-mean", 1e-9, 1e9).value_or(d.magnitude_mean);
  cfg.magnitude_std = args.number("--magnitude-std", 0, 1e9).value_or(d.magnitude_std);
  cfg.seed = static_cast<std::uint64_t>(args.integer("--world-seed", 0, INT64_MAX).value_or(1));
  for (const auto& t : split_list(args.text("--subspace-dim").value_or("3"))) {
    const double r = number_in("--subspace-dim", t, 1, cfg.hidden_dim);
    if (r != std::floor(r)) throw UsageError("--subspace-dim = " + t + ": not a whole number");
    cfg.geometry.subspace_dims.push_back(static_cast<int>(r));
  }
  try {
    cfg.geometry.arrangement = tegum::arrangement_from(args.text("--arrangement").value_or("polytope"));
    cfg.geometry.placement = tegum::placement_from(args.text("--placement").value_or(d.placement));
  } catch (const ConfigError& e) {
    throw UsageError(std::string("--") + e.field() + ": " + e.what());
  }
  cfg.geometry.seed = cfg.seed;
  // Without shared subspaces the ungrouped features are random global directions too (and the
  // members' spans may already fill the space).
  cfg.geometry.ungrouped_orthogonal = cfg.geometry.placement != tegum::SubspacePlacement::none;
  return cfg;
}

/// A tegum world in SAELens's layout with its ground truth beside it (the caller stages `dir`).
inline void save_tegum_world(const tegum::TegumWorld& world, const tegum::TegumWorldConfig& cfg,
                             const std::filesystem::path& dir) {
  saelens::save_synthetic_model(world.model, dir);
  io::write_file_atomically(dir / kTegumGroundTruthFile,
                            [&](std::ostream& o) { o << world.ground_truth_json(cfg).dump(2) << "\n"; });
}

/// The ground truth of a world written by --save-world: directions, factor of each feature, Q_g.
struct TegumTruth {
  Eigen::MatrixXd directions;
  std::vector<int> group_of;
  std::vector<Eigen::MatrixXd> subspaces;
};

inline TegumTruth read_tegum_truth(const SyntheticModel& world, const std::filesystem::path& file) {
  TegumTruth t;
  tegum::tegum_ground_truth_from_json(io::read_json_file(file), t.group_of, t.subspaces, file.string());
  t.directions = host_eigen(world.feature_vectors());
  if (t.group_of.size() != std::size_t(t.directions.rows()))
    throw FormatError(file.string(), "group_of has " + show(t.group_of.size()) + " entries for a world of " +
                                         show(t.directions.rows()) + " features");
  return t;
}

/// Means over the factors of the error's linear R², and the factors' total share of the
/// NonlinearError; a factor without a value (NaN: no error or no variance in it) is left out of both.
inline std::pair<double, double> linear_summary(const std::vector<tegum::FactorLinearError>& groups) {
  double r2 = 0, share = 0;
  int used = 0;
  for (const auto& g : groups) {
    if (std::isfinite(g.linear_r2)) r2 += g.linear_r2, ++used;
    if (std::isfinite(g.nonlinear_share)) share += g.nonlinear_share;
  }
  return {used ? r2 / used : NAN, share};
}

inline io::Json recovery_json(const tegum::GroupRecovery& g) {
  return io::Json{{"max_cos", g.max_cos},
                  {"subspace", g.subspace},
                  {"coverage", g.coverage},
                  {"f1", g.f1},
                  {"sibling_confusion", number_or_null(g.confusion)},
                  {"fvu_in_factor", number_or_null(g.fvu)},
                  {"error_share", number_or_null(g.error_share)}};
}

/// tegum_latents.json's "true_factors": the means, the totals and every factor.
inline io::Json true_factors_json(const tegum::TrueFactorScores& s) {
  io::Json per = io::Json::array();
  double total_share = 0;
  for (std::size_t g = 0; g < s.recovery.size(); ++g) {
    io::Json e = recovery_json(s.recovery[g]);
    e["error_linear_r2"] = number_or_null(s.linear[g].linear_r2);
    e["fvu_nonlinear_in_factor"] = number_or_null(s.linear[g].fvu_nonlinear);
    e["nonlinear_error_share"] = number_or_null(s.linear[g].nonlinear_share);
    e["active_rows"] = s.active_rows[g];      // ground truth: rows where a member fired
    e["cofiring_rows"] = s.cofiring_rows[g];  // and where two or more did
    per.push_back(e);
    total_share += std::isfinite(s.recovery[g].error_share) ? s.recovery[g].error_share : 0.0;
  }
  const auto [mean_r2, nonlinear_share] = linear_summary(s.linear);
  io::Json mean = recovery_json(s.mean());
  mean["error_linear_r2"] = number_or_null(mean_r2);
  mean["cofiring_share"] = number_or_null(s.cofiring_share());  // P(>= 2 members | >= 1)
  return {{"mean", mean},
          {"error_share_total", total_share},
          {"nonlinear_error_share_total", number_or_null(nonlinear_share)},
          {"error_linear_r2_whole_space", number_or_null(s.whole_space_linear_r2)},
          {"linear_fit_rows", {{"train", s.train_rows}, {"test", s.test_rows}}},
          {"groups", per}};
}

inline void print_true_factors(const tegum::TrueFactorScores& s) {
  const auto m = s.mean();
  std::printf("true factors (means over %zu groups): max-cos %.3f, subspace cos^2 %.3f, coverage %.3f, F1 %.3f, "
              "sibling confusion %.3f, FVU in factor %.4f, share of the error in a factor %.3f\n",
              s.recovery.size(), m.max_cos, m.subspace, m.coverage, m.f1, m.confusion, m.fvu, m.error_share);
  const auto [mean_r2, nonlinear_share] = linear_summary(s.linear);
  std::printf("error inside the factors (reference 2.12 C): linearly predictable from x R^2 %.3f (whole space %.3f); "
              "the factors hold %.3f of the NonlinearError\n",
              mean_r2, s.whole_space_linear_r2, nonlinear_share);
}

}  // namespace synthsae::cli
