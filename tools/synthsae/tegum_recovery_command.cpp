// synthsae tegum --recovery-sweep: how well a TopK SAE recovers tegum factors as the members of a
// factor go from mutually exclusive (rho_co = 0) to independent (rho_co = 1), with the same
// marginals all along (../shared/reference/dark-matter.md §2.12 (A), "sweep rho_co"; docs/tegum.md).
// Per rho_co and seed: a tegum world with the dial (tegum_world.hpp), a TopK SAE trained on it
// (train_one, the program's own training), and its scores against the true factors
// (tegum/true_factor_scorer.hpp). Writes recovery.json, recovery.svg, the worlds and the SAEs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <synthsae/analysis/activation_source.hpp>
#include <synthsae/io/atomic_file.hpp>
#include <synthsae/saelens/model_directory.hpp>

#include "commands.hpp"
#include "output_dir.hpp"
#include "sae_arg.hpp"
#include "svg_plot.hpp"
#include "tegum_cli.hpp"
#include "train_request.hpp"

namespace synthsae::cli {

namespace {

struct Run {
  std::uint64_t seed;
  tegum::TrueFactorScores scores;
  double train_seconds, score_seconds;
};

double mean_over(const std::vector<Run>& runs, double (*metric)(const Run&)) {
  double s = 0;
  int n = 0;
  for (const auto& r : runs)
    if (std::isfinite(metric(r))) s += metric(r), ++n;
  return n ? s / n : NAN;
}

double sd_over(const std::vector<Run>& runs, double (*metric)(const Run&)) {
  const double m = mean_over(runs, metric);
  double s = 0;
  int n = 0;
  for (const auto& r : runs)
    if (std::isfinite(metric(r))) s += (metric(r) - m) * (metric(r) - m), ++n;
  return n > 1 ? std::sqrt(s / (n - 1)) : NAN;
}

struct Metric {
  const char* key;    ///< recovery.json's name
  const char* title;  ///< the plot panel's
  double (*of)(const Run&);
};

const std::vector<Metric> kMetrics{
    {"max_cos", "mean max |cos| (true feature, decoder row)", [](const Run& r) { return r.scores.mean().max_cos; }},
    {"subspace", "subspace recovery: mean cos^2 of principal angles", [](const Run& r) { return r.scores.mean().subspace; }},
    {"coverage", "coverage of Q_g by the matched rows", [](const Run& r) { return r.scores.mean().coverage; }},
    {"fvu_in_factor", "FVU inside the factors", [](const Run& r) { return r.scores.mean().fvu; }},
    {"f1", "F1 of the matched latents", [](const Run& r) { return r.scores.mean().f1; }},
    {"sibling_confusion", "sibling confusion", [](const Run& r) { return r.scores.mean().confusion; }},
    {"cofiring_share", "rows with 2+ members of a group / with 1+ (truth)",
     [](const Run& r) { return r.scores.cofiring_share(); }},
    {"group_active_share", "rows where a group is active (truth)",
     [](const Run& r) {
       double active = 0;
       for (auto a : r.scores.active_rows) active += double(a);
       const double pairs = double(r.scores.train_rows + r.scores.test_rows) * double(r.scores.active_rows.size());
       return pairs > 0 ? active / pairs : NAN;
     }},
};

std::string tag_of(double rho, std::uint64_t seed) {
  char b[64];
  std::snprintf(b, sizeof b, "rho_%g_seed_%llu", rho, static_cast<unsigned long long>(seed));
  return b;
}

}  // namespace

int run_tegum_recovery(const Args& args, const std::string& out_dir) {
  tegum::TegumWorldConfig base = tegum_world_config(args, {"8x5", 1.0, "random", 1.25, 0.3, 24});
  std::vector<double> rhos;
  for (const auto& t : split_list(args.text("--coactivation").value_or("0,0.25,0.5,0.75,1")))
    rhos.push_back(number_in("--coactivation", t, 0, 1));
  std::sort(rhos.begin(), rhos.end());
  if (std::adjacent_find(rhos.begin(), rhos.end()) != rhos.end()) throw UsageError("--coactivation: a value given twice");
  const auto seeds = static_cast<std::uint64_t>(args.integer("--seeds", 1, 1000).value_or(2));
  const auto rows = static_cast<std::uint64_t>(args.integer("--rows", 1, std::int64_t(1) << 40).value_or(50000));
  TrainRequest req;
  req.arch = "topk";
  req.k = static_cast<int>(args.integer("--k", 1, 1 << 24).value_or(8));
  req.width = static_cast<std::size_t>(args.integer("--width", 1, 1 << 24).value_or(40));
  req.samples = static_cast<std::size_t>(args.integer("--samples", 1, std::int64_t(1) << 40).value_or(1000000));
  req.batch = static_cast<std::size_t>(args.integer("--batch", 1, 1 << 20).value_or(1024));
  req.lr = args.number("--lr", 1e-12, 10).value_or(3e-3);
  req.eval_samples = 8192;
  req.print_stats = false;
  if (req.k > static_cast<int>(req.width)) throw UsageError("--k = " + show(req.k) + ": larger than --width " + show(req.width));
  if (req.samples < req.batch)
    throw UsageError("--samples = " + show(req.samples) + ": fewer than one batch of --batch " + show(req.batch));
  const std::uint64_t min_rows = tegum::TrueFactorScorer::min_rows(static_cast<std::size_t>(base.hidden_dim));
  if (rows < min_rows)
    throw UsageError("--rows = " + show(rows) + ": the error inside the factors is fitted on 60 % of the rows; " +
                     show(base.hidden_dim) + " dimensions need at least " + show(min_rows) + " rows");
  std::set<std::string> tags;
  try {  // the geometry does not depend on rho_co: one placement checks it for every world
    base.validate();
    tegum::place_factors(base.group_sizes, base.ungrouped, base.hidden_dim, base.geometry);
  } catch (const ConfigError& e) {
    throw UsageError(e.what());
  }
  for (double rho : rhos) {  // every world's config is checked before anything runs
    tegum::TegumWorldConfig c = base;
    c.coactivation = rho;
    try {
      c.validate();
    } catch (const ConfigError& e) {
      throw UsageError(e.what());
    }
    if (!tags.insert(tag_of(rho, 0)).second)
      throw UsageError("--coactivation = " + show(rho) + ": too close to another value to name its own worlds/ and saes/");
  }

  const auto start = std::chrono::steady_clock::now();
  StagedDirectory out(out_dir);
  std::vector<std::vector<Run>> runs(rhos.size());
  std::printf("TopK SAEs (k %d, width %zu, %zu samples) on %zu groups in %d dimensions, q %g, %s factors; rho_co %s\n",
              req.k, req.width, req.samples, base.group_sizes.size(), base.hidden_dim, base.group_probability,
              args.text("--placement").value_or("random").c_str(), args.text("--coactivation").value_or("0,0.25,0.5,0.75,1").c_str());
  for (std::size_t a = 0; a < rhos.size(); ++a)
    for (std::uint64_t seed = base.seed; seed < base.seed + seeds; ++seed) {
      tegum::TegumWorldConfig c = base;  // seed s: the world's geometry and streams and the SAE's
      c.coactivation = rhos[a];
      c.seed = seed;
      c.geometry.seed = seed;
      tegum::TegumWorld world = tegum::make_tegum_world(c);
      const std::string tag = tag_of(rhos[a], seed);
      {
        StagedDirectory w(out.path() / "worlds" / tag);
        save_tegum_world(world, c, w.path());
        w.commit();
      }
      TrainRequest r = req;
      r.model = (std::filesystem::path(out_dir) / "worlds" / tag).string();  // where it will be once committed
      r.out = out.path() / "saes" / tag;
      r.seed = seed;
      const auto t0 = std::chrono::steady_clock::now();
      train_one(r, world.model);
      const double train_seconds = seconds_since(t0);
      InferenceSae sae = load_any_sae(r.out.string());
      // Scored on the world's own stream, as `tegum --sae saes/TAG --model worlds/TAG` reads it:
      // the same rows, the same figures.
      world.model.set_sampling_seed(world.model.default_sampling_seed());
      analysis::SyntheticSource source(world.model, rows);
      const auto t1 = std::chrono::steady_clock::now();
      const tegum::TrueFactorScores s = tegum::score_true_factors(
          sae, source, rows, host_eigen(world.model.feature_vectors()), world.group_of, world.dictionary.subspaces);
      runs[a].push_back({seed, s, train_seconds, seconds_since(t1)});
      const auto m = s.mean();
      std::printf("  rho_co %-5g seed %llu: max-cos %.3f  subspace %.3f  coverage %.3f  FVU in factor %.4f  F1 %.3f  "
                  "(train %.1f s)\n",
                  rhos[a], static_cast<unsigned long long>(seed), m.max_cos, m.subspace, m.coverage, m.fvu, m.f1,
                  train_seconds);
      std::fflush(stdout);
    }

  std::printf("\n%-7s", "rho_co");
  for (const auto& m : kMetrics) std::printf(" %18s", m.key);
  std::printf("\n");
  io::Json points = io::Json::array();
  for (std::size_t a = 0; a < rhos.size(); ++a) {
    std::printf("%-7g", rhos[a]);
    io::Json mean = io::Json::object(), sd = io::Json::object(), per = io::Json::array();
    for (const auto& m : kMetrics) {
      const double mu = mean_over(runs[a], m.of), s = sd_over(runs[a], m.of);
      if (std::isfinite(s)) std::printf("    %6.4f +- %6.4f", mu, s);
      else std::printf(" %18.4f", mu);  // one seed: no spread
      mean[m.key] = number_or_null(mu), sd[m.key] = number_or_null(s);
    }
    std::printf("\n");
    for (const auto& r : runs[a])
      per.push_back({{"seed", r.seed},
                     {"sae", "saes/" + tag_of(rhos[a], r.seed)},
                     {"world", "worlds/" + tag_of(rhos[a], r.seed)},
                     {"train_seconds", r.train_seconds},
                     {"score_seconds", r.score_seconds},
                     {"true_factors", true_factors_json(r.scores)}});
    points.push_back({{"coactivation", rhos[a]}, {"mean", mean}, {"sd", sd}, {"runs", per}});
  }
  const io::Json json{{"world",
                       {{"group_sizes", base.group_sizes},
                        {"hidden_dim", base.hidden_dim},
                        {"subspace_dims", base.geometry.subspace_dims},
                        {"group_probability", base.group_probability},
                        {"ungrouped", base.ungrouped},
                        {"ungrouped_probability", base.ungrouped_probability},
                        {"placement", args.text("--placement").value_or("random")},
                        {"arrangement", args.text("--arrangement").value_or("polytope")},
                        {"magnitude_mean", base.magnitude_mean},
                        {"magnitude_std", base.magnitude_std},
                        {"first_seed", base.seed}}},
                      {"sae", {{"architecture", "topk"}, {"k", req.k}, {"width", req.width}, {"samples", req.samples},
                               {"batch", req.batch}, {"lr", req.lr}}},
                      {"rows", rows},
                      {"seeds", seeds},
                      {"points", points},
                      {"seconds", seconds_since(start)}};
  std::vector<std::pair<std::string, std::vector<Series>>> panels;
  for (const auto& m : kMetrics) {
    std::vector<Series> series{{"mean of " + show(seeds) + " seeds", rhos, {}}};
    for (std::size_t a = 0; a < rhos.size(); ++a) series[0].y.push_back(mean_over(runs[a], m.of));
    for (std::size_t i = 0; i < seeds && i < 6; ++i) {
      Series s{"seed " + show(runs[0][i].seed), rhos, {}};
      for (std::size_t a = 0; a < rhos.size(); ++a) s.y.push_back(m.of(runs[a][i]));
      series.push_back(s);
    }
    panels.emplace_back(m.title, series);
  }
  write_line_charts(out.path() / "recovery.svg", "co-activation rho_co (0: mutually exclusive, 1: independent)", panels);
  io::write_file_atomically(out.path() / "recovery.json", [&](std::ostream& o) { o << json.dump(2) << "\n"; });
  out.commit();
  std::printf("wrote %s/recovery.json, recovery.svg, worlds/ and saes/ (%.1f s)\n", out_dir.c_str(), seconds_since(start));
  return 0;
}

}  // namespace synthsae::cli
