// synthsae tegum: the tegum-factor hypothesis on the toy model of superposition
// (../shared/reference/dark-matter.md §2.12 (B); docs/tegum.md). Mutex groups against the same
// features firing independently and with positive correlation; a table, tegum.json and plots.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include <synthsae/core/host_eigen.hpp>
#include <synthsae/io/atomic_file.hpp>
#include <synthsae/io/json.hpp>
#include <synthsae/analysis/activation_source.hpp>
#include <synthsae/saelens/model_directory.hpp>
#include <synthsae/analysis/row_split.hpp>
#include <synthsae/tegum/factor_dark_matter.hpp>
#include <synthsae/tegum/factor_geometry.hpp>
#include <synthsae/tegum/factor_recovery.hpp>
#include <synthsae/tegum/latent_groups.hpp>
#include <synthsae/tegum/tegum_world.hpp>
#include <synthsae/tegum/toy_model.hpp>

#include "cli_args.hpp"
#include "commands.hpp"
#include "output_dir.hpp"
#include "sae_arg.hpp"
#include "svg_plot.hpp"
#include "tegum_cli.hpp"
#include "world_arg.hpp"

namespace synthsae::cli {

namespace {

constexpr const char* kTegumUsage =
    "usage: synthsae tegum --out DIR [options]\n"
    "\n"
    "Tests the tegum-factor hypothesis on the toy model of superposition: features come in groups\n"
    "whose members never fire together (mutex); u_hat = ReLU(W^T W u + b) with a bottleneck of\n"
    "--hidden dimensions is trained on them and, as controls, on the same features firing\n"
    "independently and with positive correlation (same marginals). Where each model puts the\n"
    "interference between features says whether mutual exclusion makes a shared low-dimensional\n"
    "factor. Prints a table; writes tegum.json and plots into --out (docs/tegum.md).\n"
    "\n"
    "  --groups SPEC          GxS (G groups of S members) or S,S,... (default 4x5)\n"
    "  --ungrouped N          independent features besides the groups (default 0)\n"
    "  --ungrouped-p X        their firing probability (default 0.05)\n"
    "  --hidden M             bottleneck width (default 8)\n"
    "  --q X                  probability that a group fires (default 0.9)\n"
    "  --zipf S               which member fires: pi_j proportional to (j+1)^-S (default 0: uniform)\n"
    "  --coactivation LIST    rho_co values for the mutex worlds, e.g. 0,0.1,0.3,1: the share of\n"
    "                         (row, group) draws made independently (default 0)\n"
    "  --controls LIST        independent,correlated (default) or none\n"
    "  --importance-decay X   feature i's loss weight is X^i (default 1)\n"
    "  --steps N              Adam steps (default 3000)\n"
    "  --batch N              rows per step (default 1024)\n"
    "  --lr X                 learning rate (default 0.001)\n"
    "  --seeds N              runs per setting, seeds 1..N for data and weights (default 3)\n"
    "  --eval-rows N          fresh rows for the final loss (default 16384)\n"
    "  --out DIR              tegum.json, interference_*.svg, geometry_*.svg, within_share.svg\n"
    "\n"
    "usage: synthsae tegum --sae DIR (--model PRESET|DIR | --activations FILE [--raw-width N]) --out DIR\n"
    "\n"
    "The same question on a trained SAE, where no grouping is known: latents that never fire\n"
    "together on the rows are grouped (greedily, most frequent first), and the decoder's\n"
    "directions are measured against that grouping and against random groupings of the same sizes.\n"
    "\n"
    "  --sae DIR              an SAE in SAELens's layout or as .npy files (W_enc, b_enc, W_dec, b_dec)\n"
    "  --model PRESET|DIR     rows from a synthetic world's stream, or\n"
    "  --activations FILE     rows from a .npy file (<f4 or <f2) or, with --raw-width N, raw float32\n"
    "  --rows N               rows read (default 100000; all of a file's rows at most)\n"
    "  --min-firing N         latents firing fewer times stay ungrouped (default 20)\n"
    "  --shuffles N           random groupings in the null (default 100)\n"
    "  --duplicate-cos X      a latent within |cos| X of a more frequent one is its duplicate and is\n"
    "                         left out (two copies of a feature never co-fire; default 0.9; 1 keeps them)\n"
    "  --out DIR              tegum_latents.json, latent_interference.svg (and, when the world was\n"
    "                         written by --save-world, how the SAE recovers each true factor)\n"
    "\n"
    "usage: synthsae tegum --save-world DIR --hidden D [--groups 8x5] [--subspace-dim 3] [options]\n"
    "\n"
    "Writes a synthetic world in SAELens's layout whose features sit in tegum factors, for\n"
    "synthsae train / eval / darkmatter / tegum --sae, with its ground truth in tegum_groups.json.\n"
    "\n"
    "  --groups SPEC          as above (default 8x5; the members of a group are chosen uniformly)\n"
    "  --ungrouped N, --ungrouped-p X   as above (0, 0.05)\n"
    "  --q X                  probability that a group fires (default 0.5)\n"
    "  --hidden D             the world's dimension\n"
    "  --subspace-dim LIST    r_g of each group's subspace (one value, or one per group; default 3)\n"
    "  --arrangement A        polytope (default), random or thomson: the members inside Q_g\n"
    "  --placement P          orthogonal (default), random (overlapping) or none (no shared subspace)\n"
    "  --independent          the control: members fire independently with the same rates q/S\n"
    "  --coactivation X       rho_co: a share X of the samples skips each group's exclusion, with\n"
    "                         the member rate solved so the marginals stay q/S (0: mutex, 1: the\n"
    "                         control's draws; stored as synthsae_coactivation in hierarchy.json)\n"
    "  --magnitude-mean X, --magnitude-std X   firing magnitudes max(0, N(mean, std)) (1, 0);\n"
    "                         std <= mean / 3.1, so that clipped draws do not change the rates\n"
    "  --world-seed N         seed of the geometry and the world's streams (default 1)\n"
    "\n"
    "usage: synthsae tegum --recovery-sweep --out DIR [world options] [--coactivation LIST] [SAE options]\n"
    "\n"
    "Subspace recovery against rho_co: for each rho_co and seed, a world as --save-world writes it\n"
    "(defaults: the reference's dense regime, 8 random overlapping factors of 5 in 3 of 24\n"
    "dimensions, every group firing) and a TopK SAE trained on it, scored against the true factors.\n"
    "\n"
    "  world options          as for --save-world; defaults --groups 8x5 --hidden 24 --q 1\n"
    "                         --placement random --magnitude-mean 1.25 --magnitude-std 0.3\n"
    "  --coactivation LIST    rho_co values (default 0,0.25,0.5,0.75,1)\n"
    "  --seeds N              worlds and SAEs per value (default 2): seed s sets the world's\n"
    "                         geometry and streams and the SAE's, s from --world-seed (default 1) on\n"
    "  --k K, --width S       the TopK SAE (default 8, 40)\n"
    "  --samples N, --batch N, --lr X   its training (default 1000000, 1024, 0.003)\n"
    "  --rows N               fresh rows to score on (default 50000)\n"
    "  --out DIR              recovery.json, recovery.svg, worlds/ and saes/ (SAELens's layout)\n";

struct Setting {
  tegum::GroupFiring firing;
  double coactivation;
  std::string label() const {
    std::string l = tegum::name_of(firing);
    if (firing == tegum::GroupFiring::mutex && coactivation > 0) {
      char b[32];
      std::snprintf(b, sizeof b, " rho=%g", coactivation);
      l += b;
    }
    return l;
  }
  std::string file_tag() const {
    std::string l = label();
    for (auto& c : l)
      if (c == ' ' || c == '=') c = '_';
    return l;
  }
};

struct RunResult {
  std::uint64_t seed;
  double loss;
  tegum::FactorGeometry geometry;
  Eigen::MatrixXd w;
  Eigen::RowVectorXd b;
};

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? NAN : s / double(v.size());
}
double sd_of(const std::vector<double>& v) {
  if (v.size() < 2) return NAN;
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

io::Json matrix_json(const Eigen::MatrixXd& m) {
  io::Json rows = io::Json::array();
  for (Eigen::Index i = 0; i < m.rows(); ++i) {
    std::vector<double> r(m.cols());
    for (Eigen::Index j = 0; j < m.cols(); ++j) r[j] = m(i, j);
    rows.push_back(r);
  }
  return rows;
}

const std::vector<std::string> kToyFlags{"--groups", "--ungrouped", "--ungrouped-p", "--hidden", "--q", "--zipf",
                                          "--coactivation", "--controls", "--importance-decay", "--steps", "--batch",
                                          "--lr", "--seeds", "--eval-rows"};
const std::vector<std::string> kSaeFlags{"--sae",       "--model",      "--activations", "--raw-width",
                                         "--rows",      "--min-firing", "--shuffles",    "--duplicate-cos"};

const std::vector<std::string> kSweepFlags{"--k", "--width", "--samples"};

const std::vector<std::string> kWorldFlags{"--save-world", "--subspace-dim", "--arrangement", "--placement",
                                           "--magnitude-mean", "--magnitude-std", "--world-seed"};

int run_latents(const Args& args, const std::string& out_dir);

int run_save_world(const Args& args) {
  for (const auto& f : {"--zipf", "--controls", "--importance-decay", "--steps", "--batch", "--lr", "--seeds",
                        "--eval-rows", "--out"})
    if (args.has(f)) throw UsageError(std::string(f) + " does not go with --save-world");
  tegum::TegumWorldConfig cfg = tegum_world_config(args, {"8x5", 0.5, "orthogonal", 1.0, 0.0, 0});
  cfg.mutually_exclusive = !args.has("--independent");
  if (const auto rho = args.text("--coactivation")) {
    if (!cfg.mutually_exclusive) throw UsageError("--coactivation mixes mutex with independent firing; it does not go with --independent");
    cfg.coactivation = number_in("--coactivation", *rho, 0, 1);  // one value here
  }
  const std::string dir = *args.text("--save-world");
  try {
    const tegum::TegumWorld world = tegum::make_tegum_world(cfg);
    StagedDirectory out(dir);
    save_tegum_world(world, cfg, out.path());
    out.commit();
    char firing[96] = "mutually exclusive";
    if (!cfg.mutually_exclusive) std::snprintf(firing, sizeof firing, "independent (the control)");
    if (cfg.coactivation > 0) std::snprintf(firing, sizeof firing, "mutually exclusive but co-active in %g of the samples", cfg.coactivation);
    std::printf("wrote %s: %zu features (%zu groups, %d ungrouped) in %d dimensions, %s, %s factors\n", dir.c_str(),
                world.group_of.size(), cfg.group_sizes.size(), cfg.ungrouped, cfg.hidden_dim, firing,
                args.text("--placement").value_or("orthogonal").c_str());
    return 0;
  } catch (const ConfigError& e) {
    throw UsageError(e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "synthsae tegum: %s\n", e.what());
    return 1;
  }
}

int run_toy(const Args& args, const std::string& out_dir) {
  {

    tegum::MutexGroupsConfig groups;
    groups.group_sizes = parse_groups(args.text("--groups").value_or("4x5"));
    groups.ungrouped_features = static_cast<int>(args.integer("--ungrouped", 0, 1000000).value_or(0));
    groups.ungrouped_probability = args.number("--ungrouped-p", 1e-9, 1).value_or(0.05);
    groups.group_probability = args.number("--q", 1e-9, 1).value_or(0.9);
    groups.member_zipf_exponent = args.number("--zipf", 0, 100).value_or(0);
    tegum::ToyModelConfig toy;
    toy.hidden = static_cast<int>(args.integer("--hidden", 1, 100000).value_or(8));
    toy.importance_decay = args.number("--importance-decay", 1e-9, 1).value_or(1.0);
    toy.steps = args.integer("--steps", 1, 1L << 40).value_or(3000);
    toy.batch = static_cast<int>(args.integer("--batch", 1, 1 << 24).value_or(1024));
    toy.lr = args.number("--lr", 1e-12, 9.99).value_or(1e-3);
    const int seeds = static_cast<int>(args.integer("--seeds", 1, 1000).value_or(3));
    const int eval_rows = static_cast<int>(args.integer("--eval-rows", 1, 1 << 24).value_or(16384));
    try {  // first: the checks below count the features
      groups.validate();
      toy.validate();
    } catch (const ConfigError& e) {
      throw UsageError(e.what());
    }
    if (double(toy.steps) * double(toy.batch) >= std::ldexp(1.0, 40))
      throw UsageError("--steps x --batch = " + show(double(toy.steps) * toy.batch) +
                       ": training would reach the evaluation rows (from 2^40)");
    if (double(std::max(toy.batch, eval_rows)) * double(groups.num_features()) > 2e9)
      throw UsageError("--batch/--eval-rows x features: a dense batch of more than 2e9 values");
    const long features = static_cast<long>(groups.num_features());
    if (features * toy.hidden > 100000000L)
      throw UsageError("--groups/--hidden: " + std::to_string(features) + " features x " + std::to_string(toy.hidden) +
                       " dimensions is beyond what the toy model is for (1e8 weights)");

    std::vector<Setting> settings;
    for (const auto& t : split_list(args.text("--coactivation").value_or("0")))
      settings.push_back({tegum::GroupFiring::mutex, number_in("--coactivation", t, 0, 1)});
    const std::string controls = args.text("--controls").value_or("independent,correlated");
    if (controls != "none")
      for (const auto& t : split_list(controls)) {
        if (t != "independent" && t != "correlated")
          throw UsageError("--controls = " + controls + ": '" + t + "' is not independent, correlated or none");
        settings.push_back({tegum::group_firing_from(t), 0.0});
      }
    for (std::size_t a = 0; a < settings.size(); ++a)
      for (std::size_t b = a + 1; b < settings.size(); ++b)
        if (settings[a].label() == settings[b].label())
          throw UsageError("--coactivation/--controls: " + settings[a].label() + " given twice");

    {  // errors past the flags: exit 1 (run_tegum)
      StagedDirectory out(out_dir);
      const auto start = std::chrono::steady_clock::now();
      const bool tty = ::isatty(2);
      std::vector<std::vector<RunResult>> results(settings.size());
      for (std::size_t s = 0; s < settings.size(); ++s)
        for (int seed = 1; seed <= seeds; ++seed) {
          tegum::MutexGroupsConfig g = groups;
          g.firing = settings[s].firing;
          g.coactivation = settings[s].coactivation;
          g.seed = std::uint64_t(seed);
          const tegum::MutexGroupSampler sampler(g);
          tegum::ToyModelConfig t = toy;
          t.seed = std::uint64_t(seed);
          const auto model = tegum::train_toy_model(
              sampler, t,
              [&](const tegum::ToyTrainingProgress& p) {
                std::fprintf(stderr, tty ? "\r  %-22s seed %d  step %8ld / %ld  loss %.5f  %6.1f s   "
                                         : "  %-22s seed %d  step %8ld / %ld  loss %.5f  %6.1f s\n",
                             settings[s].label().c_str(), seed, p.step, p.steps, p.loss, seconds_since(start));
              },
              std::max<long>(1, toy.steps / 10));
          // The final loss on rows training never saw (rows from 2^40 on).
          const double loss = model.loss(tegum::sample_matrix(sampler, std::uint64_t(1) << 40, eval_rows));
          results[s].push_back(
              {std::uint64_t(seed), loss, tegum::factor_geometry(model.w().transpose(), sampler.group_of()), model.w(), model.b()});
        }
      if (tty) std::fputs("\n", stderr);

      io::Json json;
      json["config"] = {{"group_sizes", groups.group_sizes},
                        {"ungrouped_features", groups.ungrouped_features},
                        {"ungrouped_probability", groups.ungrouped_probability},
                        {"group_probability", groups.group_probability},
                        {"member_zipf_exponent", groups.member_zipf_exponent},
                        {"hidden", toy.hidden},
                        {"importance_decay", toy.importance_decay},
                        {"steps", toy.steps},
                        {"batch", toy.batch},
                        {"lr", toy.lr},
                        {"seeds", seeds},
                        {"eval_rows", eval_rows}};
      json["settings"] = io::Json::array();
      std::printf("%-22s %6s %14s %7s %10s %10s %7s %6s %9s %11s\n", "firing", "seeds", "within share", "chance",
                  "eff. rank", "overlap", "dim.", "repr.", "loss", "best share");
      for (std::size_t s = 0; s < settings.size(); ++s) {
        std::vector<double> share, chance, rank, overlap, dim, repr, loss;
        io::Json runs = io::Json::array();
        for (const auto& r : results[s]) {
          const auto& g = r.geometry;
          share.push_back(g.mean_within_share), chance.push_back(g.mean_chance), rank.push_back(g.mean_effective_rank);
          overlap.push_back(g.mean_cross_overlap), dim.push_back(g.mean_dimensionality), repr.push_back(g.represented);
          loss.push_back(r.loss);
          io::Json shares = io::Json::array();
          for (double v : g.within_share) shares.push_back(number_or_null(v));
          runs.push_back({{"seed", r.seed},
                          {"loss", r.loss},
                          {"mean_within_share", number_or_null(g.mean_within_share)},
                          {"mean_chance", number_or_null(g.mean_chance)},
                          {"mean_dimensionality", number_or_null(g.mean_dimensionality)},
                          {"mean_effective_rank", g.mean_effective_rank},
                          {"mean_cross_overlap", number_or_null(g.mean_cross_overlap)},
                          {"represented", g.represented},
                          {"norm", g.norm},
                          {"dimensionality", g.dimensionality},
                          {"within_share", shares},
                          {"group_effective_rank", g.effective_rank},
                          {"group_rank", g.rank},
                          {"overlap", matrix_json(g.overlap)},
                          {"W", matrix_json(r.w)},
                          {"b", std::vector<double>(r.b.data(), r.b.data() + r.b.size())}});
        }
        auto summary = [&](const std::vector<double>& v) {
          return io::Json{{"mean", number_or_null(mean_of(v))}, {"sd", number_or_null(sd_of(v))}};
        };
        // Toy models have local optima: the run of lowest loss is the one the model class prefers.
        std::size_t best = 0;
        for (std::size_t k = 1; k < results[s].size(); ++k)
          if (results[s][k].loss < results[s][best].loss) best = k;
        const auto& bg = results[s][best].geometry;
        json["settings"].push_back({{"firing", tegum::name_of(settings[s].firing)},
                                    {"best_run",
                                     {{"seed", results[s][best].seed},
                                      {"loss", results[s][best].loss},
                                      {"within_share", number_or_null(bg.mean_within_share)},
                                      {"effective_rank", bg.mean_effective_rank},
                                      {"cross_overlap", number_or_null(bg.mean_cross_overlap)}}},
                                    {"coactivation", settings[s].coactivation},
                                    {"label", settings[s].label()},
                                    {"within_share", summary(share)},
                                    {"chance", mean_of(chance)},
                                    {"effective_rank", summary(rank)},
                                    {"cross_overlap", summary(overlap)},
                                    {"dimensionality", summary(dim)},
                                    {"represented", summary(repr)},
                                    {"loss", summary(loss)},
                                    {"runs", runs}});
        char share_text[40];
        std::snprintf(share_text, sizeof share_text, seeds > 1 ? "%.3f +- %.3f" : "%.3f", mean_of(share), sd_of(share));
        std::printf("%-22s %6d %14s %7.3f %10.2f %10.3f %7.3f %6.1f %9.5f %11.3f\n", settings[s].label().c_str(), seeds,
                    share_text, mean_of(chance), mean_of(rank), mean_of(overlap), mean_of(dim), mean_of(repr),
                    mean_of(loss), bg.mean_within_share);

        // |cos| between the learned directions of the lowest-loss run, features in group order.
        const auto& w = results[s][best].w;
        const int n = static_cast<int>(w.cols());
        std::vector<double> cells(std::size_t(n) * n);
        for (int i = 0; i < n; ++i)
          for (int j = 0; j < n; ++j) {
            const double ni = w.col(i).norm(), nj = w.col(j).norm();
            cells[std::size_t(i) * n + j] = ni > 0 && nj > 0 ? std::fabs(w.col(i).dot(w.col(j))) / (ni * nj) : 0.0;
          }
        write_heatmap(out.path() / ("interference_" + settings[s].file_tag() + ".svg"),
                      "|cos(W_i, W_j)|, " + settings[s].label() + ", seed " + std::to_string(results[s][best].seed) +
                          " (lowest loss)",
                      "feature j (group order)",
                      "feature i", cells, n, n);
        // Each group's columns of W in the plane of their two largest principal directions: mutex
        // groups of five in 8 dimensions show pentagons, the independent control does not.
        const std::vector<int> group_of = tegum::MutexGroupSampler(groups).group_of();
        std::vector<std::pair<std::string, std::vector<std::pair<double, double>>>> panels;
        for (int g = 0; g < static_cast<int>(groups.group_sizes.size()) && g < 8; ++g) {
          std::vector<int> members;
          for (int i = 0; i < n; ++i)
            if (group_of[std::size_t(i)] == g) members.push_back(i);
          Eigen::MatrixXd cols(w.rows(), members.size());
          for (std::size_t a = 0; a < members.size(); ++a) cols.col(a) = w.col(members[a]);
          const Eigen::JacobiSVD<Eigen::MatrixXd> svd(cols, Eigen::ComputeThinU);
          std::vector<std::pair<double, double>> pts;
          for (std::size_t a = 0; a < members.size(); ++a) {
            const double px = svd.matrixU().cols() > 0 ? svd.matrixU().col(0).dot(cols.col(a)) : 0.0;
            const double py = svd.matrixU().cols() > 1 ? svd.matrixU().col(1).dot(cols.col(a)) : 0.0;
            pts.emplace_back(px, py);
          }
          char t[64];
          std::snprintf(t, sizeof t, "group %d (eff. rank %.2f)", g, results[s][best].geometry.effective_rank[g]);
          panels.emplace_back(t, pts);
        }
        write_spoke_panels(out.path() / ("geometry_" + settings[s].file_tag() + ".svg"),
                           "W columns per group in their top-2 principal plane, " + settings[s].label() + " (lowest loss)",
                           panels);
      }
      // Against the co-activation dial (when there is a sweep): the within-group share, each
      // group's effective rank and the cross-group subspace overlap, controls as flat lines.
      std::vector<std::size_t> mutex_settings;
      for (std::size_t s = 0; s < settings.size(); ++s)
        if (settings[s].firing == tegum::GroupFiring::mutex) mutex_settings.push_back(s);
      std::sort(mutex_settings.begin(), mutex_settings.end(),
                [&](std::size_t a, std::size_t b) { return settings[a].coactivation < settings[b].coactivation; });
      if (mutex_settings.size() > 1) {
        const double lo = settings[mutex_settings.front()].coactivation, hi = settings[mutex_settings.back()].coactivation;
        auto panel = [&](const char* title, double (*metric)(const tegum::FactorGeometry&), bool with_chance) {
          auto mean_metric = [&](std::size_t s) {
            std::vector<double> v;
            for (const auto& r : results[s]) v.push_back(metric(r.geometry));
            return mean_of(v);
          };
          std::vector<Series> series{{"mutex (rho_co)", {}, {}}};
          for (std::size_t s : mutex_settings) series[0].x.push_back(settings[s].coactivation), series[0].y.push_back(mean_metric(s));
          for (std::size_t s = 0; s < settings.size(); ++s)
            if (settings[s].firing != tegum::GroupFiring::mutex)
              series.push_back({settings[s].label(), {lo, hi}, {mean_metric(s), mean_metric(s)}});
          if (with_chance) {
            const double c = results[0].front().geometry.mean_chance;
            series.push_back({"chance", {lo, hi}, {c, c}});
          }
          return std::pair<std::string, std::vector<Series>>{title, series};
        };
        write_line_charts(out.path() / "within_share.svg", "co-activation rho_co",
                          {panel("within-group interference share",
                                 [](const tegum::FactorGeometry& g) { return g.mean_within_share; }, true),
                           panel("effective rank per group", [](const tegum::FactorGeometry& g) { return g.mean_effective_rank; },
                                 false),
                           panel("cross-group subspace overlap",
                                 [](const tegum::FactorGeometry& g) { return g.mean_cross_overlap; }, false)});
      }
      json["seconds"] = seconds_since(start);
      io::write_file_atomically(out.path() / "tegum.json", [&](std::ostream& o) { o << json.dump(2) << "\n"; });
      out.commit();
      std::printf("wrote %s/tegum.json and plots (%.1f s)\n", out_dir.c_str(), seconds_since(start));
      return 0;
    }
  }
}

int run_latents(const Args& args, const std::string& out_dir) {
  for (const auto& f : kToyFlags)
    if (args.has(f)) throw UsageError(f + " sets up the toy model; it does not go with --sae");
  if (args.has("--model") == args.has("--activations")) throw UsageError("--sae needs exactly one of --model and --activations");
  if (args.has("--raw-width") && !args.has("--activations")) throw UsageError("--raw-width goes with --activations");
  const auto rows_wanted = static_cast<std::uint64_t>(args.integer("--rows", 1, std::int64_t(1) << 40).value_or(100000));
  tegum::LatentGroupOptions opt;
  opt.min_firing = static_cast<double>(args.integer("--min-firing", 1, std::int64_t(1) << 40).value_or(20));
  opt.shuffles = static_cast<int>(args.integer("--shuffles", 2, 100000).value_or(100));
  opt.duplicate_cos = args.number("--duplicate-cos", 1e-9, 1).value_or(0.9);
  const std::string sae_dir = *args.text("--sae");
  {  // errors past the flags: exit 1 (run_tegum)
    const auto start = std::chrono::steady_clock::now();
    InferenceSae sae = load_any_sae(sae_dir);
    std::unique_ptr<SyntheticModel> world;
    std::unique_ptr<analysis::ActivationSource> source;
    if (args.has("--model")) {
      world = std::make_unique<SyntheticModel>(world_from_argument(*args.text("--model")));
      source = std::make_unique<analysis::SyntheticSource>(*world, rows_wanted);
    } else {
      analysis::FileSourceOptions fo;
      fo.activations = *args.text("--activations");
      fo.raw_width = static_cast<std::size_t>(args.integer("--raw-width", 1, 1 << 24).value_or(0));
      source = std::make_unique<analysis::FileSource>(fo);
    }
    if (source->dim() != sae.input_dim())
      throw ShapeError("--sae " + sae_dir + " reads " + show(sae.input_dim()) + "-dimensional rows; the rows have " +
                       show(source->dim()));
    StagedDirectory out(out_dir);
    const std::uint64_t rows = std::min<std::uint64_t>(rows_wanted, source->rows());
    const std::size_t latents = sae.num_latents(), chunk = 4096, d = sae.input_dim();
    tegum::LatentCoactivation co(latents);
    analysis::ActivationChunk c;
    Matrix<float> z, x_hat;
    const Eigen::MatrixXd decoder = host_eigen(sae.params.w_dec);
    // A world written by --save-world carries its factors: then also how the SAE recovers them, and
    // how linear the error inside each is (§2.12 (C)).
    std::optional<tegum::TrueFactorScorer> scorer;
    if (world) {
      const auto truth_file = std::filesystem::path(*args.text("--model")) / kTegumGroundTruthFile;
      if (std::filesystem::exists(truth_file)) {
        if (rows < tegum::TrueFactorScorer::min_rows(d))
          throw UsageError("--rows = " + show(rows) + ": the error inside the true factors is fitted on 60 % of the rows; " +
                           show(d) + " dimensions need at least " + show(tegum::TrueFactorScorer::min_rows(d)) + " rows");
        const TegumTruth t = read_tegum_truth(*world, truth_file);
        scorer.emplace(t.directions, t.group_of, t.subspaces, decoder, rows);
      }
    }
    const bool tty = ::isatty(2);
    for (std::uint64_t first = 0; first < rows; first += chunk) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, rows - first));
      source->read(first, n, c);
      if (z.extent(0) != n) z = Matrix<float>("tegum_codes", n, latents);
      sae.encode(c.x, z);
      co.add(z);
      if (scorer) {
        if (x_hat.extent(0) != n) x_hat = Matrix<float>("tegum_x_hat", n, d);
        sae.decode(z, x_hat);
        scorer->add(first, c.x, z, x_hat, *c.truth);
      }
      std::fprintf(stderr, tty ? "\r  co-activation %10llu / %llu rows  %6.1f s   " : "  co-activation %10llu / %llu rows  %6.1f s\n",
                   static_cast<unsigned long long>(first + n), static_cast<unsigned long long>(rows), seconds_since(start));
    }
    if (tty) std::fputs("\n", stderr);
    const tegum::LatentGroupReport r = tegum::analyse_latent_groups(decoder, co.counts(), co.rows(), opt);

    io::Json groups = io::Json::array();
    std::vector<std::vector<int>> members(r.groups);
    for (int i = 0; i < r.latents; ++i)
      if (r.group_of[i] >= 0) members[r.group_of[i]].push_back(i);
    for (int g = 0; g < r.groups; ++g)
      groups.push_back({{"latents", members[g]},
                        {"effective_rank", r.geometry.effective_rank[g]},
                        {"rank", r.geometry.rank[g]}});
    io::Json json{{"sae", sae_dir},
                  {"source", source->describe()},
                  {"rows", r.rows},
                  {"latents", r.latents},
                  {"min_firing", opt.min_firing},
                  {"eligible_latents", r.eligible},
                  {"duplicate_latents", r.duplicates},
                  {"duplicate_cos", opt.duplicate_cos},
                  {"grouped_latents", r.grouped},
                  {"groups", r.groups},
                  {"largest_group", r.largest_group},
                  {"within_share", number_or_null(r.geometry.mean_within_share)},
                  {"chance", number_or_null(r.geometry.mean_chance)},
                  {"null_within_share",
                   {{"mean", number_or_null(r.null_share_mean)}, {"sd", number_or_null(r.null_share_sd)}, {"shuffles", opt.shuffles}}},
                  {"within_share_z", number_or_null(r.share_z)},
                  {"effective_rank", r.geometry.mean_effective_rank},
                  {"null_effective_rank", {{"mean", number_or_null(r.null_rank_mean)}, {"sd", number_or_null(r.null_rank_sd)}}},
                  {"effective_rank_z", number_or_null(r.rank_z)},
                  {"cross_overlap", number_or_null(r.geometry.mean_cross_overlap)},
                  {"group_list", groups},
                  {"seconds", seconds_since(start)}};
    std::optional<tegum::TrueFactorScores> scores;
    if (scorer) {
      scores = scorer->scores();
      json["true_factors"] = true_factors_json(*scores);
    }
    // |cos| between the decoder rows of grouped latents, in group order (the first 256).
    std::vector<int> order;
    for (const auto& m : members)
      for (int i : m)
        if (order.size() < 256) order.push_back(i);
    if (!order.empty()) {
      const std::size_t k = order.size();
      std::vector<double> cells(k * k);
      for (std::size_t a = 0; a < k; ++a)
        for (std::size_t b = 0; b < k; ++b) {
          const double na = decoder.row(order[a]).norm(), nb = decoder.row(order[b]).norm();
          cells[a * k + b] = na > 0 && nb > 0 ? std::fabs(decoder.row(order[a]).dot(decoder.row(order[b]))) / (na * nb) : 0.0;
        }
      write_heatmap(out.path() / "latent_interference.svg", "|cos| of decoder rows, never-co-active groups in order",
                    "latent (group order)", "latent", cells, k, k);
    }
    io::write_file_atomically(out.path() / "tegum_latents.json", [&](std::ostream& o) { o << json.dump(2) << "\n"; });
    out.commit();
    std::printf("%s on %llu rows: %d of %d latents fire >= %g times and are not duplicates (%d are, |cos| >= %g); %d "
                "grouped in %d never-co-active groups (largest %d)\n",
                short_label(sae_dir).c_str(), static_cast<unsigned long long>(r.rows), r.eligible, r.latents, opt.min_firing,
                r.duplicates, opt.duplicate_cos, r.grouped, r.groups, r.largest_group);
    std::printf("within-group interference share %.3f (chance %.3f; random groupings %.3f +- %.3f; z = %.1f)\n",
                r.geometry.mean_within_share, r.geometry.mean_chance, r.null_share_mean, r.null_share_sd, r.share_z);
    std::printf("effective rank per group %.2f (random groupings %.2f +- %.2f; z = %.1f)\n", r.geometry.mean_effective_rank,
                r.null_rank_mean, r.null_rank_sd, r.rank_z);
    if (scores) print_true_factors(*scores);
    std::printf("wrote %s/tegum_latents.json (%.1f s)\n", out_dir.c_str(), seconds_since(start));
    return 0;
  }
}

}  // namespace

int run_tegum(const std::vector<std::string>& argv) {
  try {
    std::set<std::string> valued(kToyFlags.begin(), kToyFlags.end());
    valued.insert(kSaeFlags.begin(), kSaeFlags.end());
    valued.insert(kWorldFlags.begin(), kWorldFlags.end());
    valued.insert(kSweepFlags.begin(), kSweepFlags.end());
    valued.insert("--out");
    const Args args(argv, valued, {"--independent", "--recovery-sweep"});
    if (args.help()) {
      std::fputs(kTegumUsage, stdout);
      return 0;
    }
    if (args.has("--recovery-sweep")) {
      for (const auto& f : {"--save-world", "--independent", "--zipf", "--controls", "--importance-decay", "--steps",
                            "--eval-rows", "--sae", "--model", "--activations", "--raw-width", "--min-firing", "--shuffles",
                            "--duplicate-cos"})
        if (args.has(f)) throw UsageError(std::string(f) + " does not go with --recovery-sweep");
      if (!args.has("--out")) throw UsageError("--out is required");
      return run_tegum_recovery(args, *args.text("--out"));
    }
    for (const auto& f : kSweepFlags)
      if (args.has(f)) throw UsageError(f + " goes with --recovery-sweep");
    if (args.has("--save-world")) {
      for (const auto& f : kSaeFlags)
        if (args.has(f)) throw UsageError(f + " does not go with --save-world");
      return run_save_world(args);
    }
    for (const auto& f : kWorldFlags)
      if (args.has(f)) throw UsageError(f + " goes with --save-world or --recovery-sweep");
    if (args.has("--independent")) throw UsageError("--independent goes with --save-world");
    if (!args.has("--out")) throw UsageError("--out is required");
    const std::string out_dir = *args.text("--out");
    if (args.has("--sae")) return run_latents(args, out_dir);
    for (const auto& f : kSaeFlags)
      if (args.has(f)) throw UsageError(f + " goes with --sae");
    return run_toy(args, out_dir);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "synthsae tegum: %s\n\n%s", e.what(), kTegumUsage);
    return 2;
  } catch (const std::exception& e) {  // a bad file or a failed run: nothing half-written (staged)
    std::fprintf(stderr, "synthsae tegum: %s\n", e.what());
    return 1;
  }
}

}  // namespace synthsae::cli
