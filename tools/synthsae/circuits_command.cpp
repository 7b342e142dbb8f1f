// synthsae circuits: predicting a layer's SAE error from the other components' SAE outputs on a
// synthetic circuit (../shared/reference/dark-matter.md §2.11, the paper's §6.2 and Fig. 9b;
// docs/dark-matter.md, "Circuits"). A table of test R², circuits.json and plots.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include <synthsae/analysis/circuit_regression.hpp>
#include <synthsae/analysis/circuit_training.hpp>
#include <synthsae/saelens/sae_directory.hpp>
#include <synthsae/io/atomic_file.hpp>
#include <synthsae/io/json.hpp>

#include "cli_args.hpp"
#include "commands.hpp"
#include "darkmatter_plots.hpp"
#include "output_dir.hpp"
#include "sae_arg.hpp"
#include "svg_plot.hpp"

namespace synthsae::cli {

namespace {

constexpr const char* kCircuitsUsage =
    "usage: synthsae circuits --out DIR [options]\n"
    "\n"
    "A synthetic circuit x_L = x_prev + x_mlp + W_O x_attn, each component a sparse sum over its own\n"
    "dictionary (the MLP also computes features as ReLU of x_prev's), with an SAE for the target and\n"
    "one per component. Each component's SAE output (and its raw activation, LinearError and\n"
    "NonlinearError; and their concatenations) is regressed onto the target's SaeError,\n"
    "LinearError and NonlinearError: the table of test R² of the paper's Fig. 9b, at each level of\n"
    "noise injected into the target SAE's reconstruction. Writes circuits.json, r2_bars.svg and\n"
    "noise.svg into --out (docs/dark-matter.md, \"Circuits\").\n"
    "\n"
    "The circuit:\n"
    "  --hidden D             dimension of x_L, x_prev, x_mlp (default 64)\n"
    "  --attn-dim D           the attention's pre-O_proj width (default 96)\n"
    "  --prev-features N      x_prev's features (default 48)\n"
    "  --mlp-features N       x_mlp's own features (default 32)\n"
    "  --computed N           x_mlp's features computed as ReLU(sum of fan-in x_prev features - theta)\n"
    "                         (default 16)\n"
    "  --fan-in N             x_prev features each computed feature reads (default 2)\n"
    "  --threshold X          theta (default 0.5)\n"
    "  --attn-features N      x_attn's features (default 48)\n"
    "  --zipf E,MAX,MIN       firing rates within each component: Zipf exponent, largest and smallest\n"
    "                         probability (default 1,0.25,0.02)\n"
    "  --magnitude-mean X, --magnitude-std X   firing magnitudes max(0, N(mean, std)) (1, 0.25)\n"
    "  --world-seed N         dictionaries, W_O and the rows' streams (default 1)\n"
    "  --rows N               rows (default 40000; 60 % fit, 40 % score)\n"
    "\n"
    "The SAEs:\n"
    "  --target SPEC          the target's oracle SAE: top:M, random:M or list:FILE (darkmatter's\n"
    "                         --oracle syntax, without an introduced error; default top:HALF, half\n"
    "                         the target's features)\n"
    "  --capture P,M,A        share of each component's features its oracle SAE reconstructs\n"
    "                         (default 1,1,1: every feature)\n"
    "  --noise LIST           isotropic noise levels injected into the target SAE's output, as\n"
    "                         variance fractions of x_L (default 0,0.03,0.1,0.3,1)\n"
    "  --target-sae DIR       a trained SAE for the target instead of the oracle (reads D dims)\n"
    "  --component-sae C=DIR  a trained SAE for component C (prev, mlp or attn) instead of its oracle;\n"
    "                         repeatable\n"
    "  --train-saes SPEC      train TopK SAEs for the target and every component on the circuit's own\n"
    "                         rows first (a stream the analysis never reads), and analyse those; saved\n"
    "                         under OUT/saes/. SPEC: default, or any of width=W (128), k=K (8),\n"
    "                         samples=N (2000000), batch=N (1024), lr=X (0.003), seed=N (1), comma-separated\n"
    "  --out DIR              circuits.json, r2_bars.svg, noise.svg\n";

analysis::CircuitComponent component_named(const std::string& name) {
  for (int c = 0; c < 3; ++c)
    if (name == analysis::kCircuitComponentNames[c]) return analysis::CircuitComponent(c);
  throw UsageError("--component-sae: unknown component '" + name + "': choose prev, mlp or attn");
}

std::vector<double> numbers(const std::string& flag, const std::string& text, std::size_t count, double lo, double hi) {
  std::vector<double> v;
  for (const auto& t : split_list(text)) v.push_back(number_in(flag, t, lo, hi));
  if (count && v.size() != count) throw UsageError(flag + " = " + text + ": give " + std::to_string(count) + " values");
  if (v.empty()) throw UsageError(flag + " = '': give at least one value");
  return v;
}

/// The flag that sets a CircuitConfig field (for its validation errors).
std::string flag_of(const std::string& field) {
  static const std::pair<const char*, const char*> flags[] = {
      {"hidden_dim", "--hidden"},          {"attn_dim", "--attn-dim"},       {"prev_features", "--prev-features"},
      {"mlp_features", "--mlp-features"},  {"attn_features", "--attn-features"}, {"computed_features", "--computed"},
      {"computed_fan_in", "--fan-in"},     {"computed_threshold", "--threshold"}, {"magnitude_mean", "--magnitude-mean"},
      {"magnitude_std", "--magnitude-std"}, {"features", "--prev-features/--mlp-features/--computed/--attn-features"}};
  for (const auto& [f, flag] : flags)
    if (field == f) return flag;
  if (field.rfind("firing_probability", 0) == 0) return "--zipf";
  return "--" + field;
}

analysis::CircuitTrainingOptions parse_training(const std::string& spec) {
  analysis::CircuitTrainingOptions t;
  if (spec == "default") return t;
  for (const auto& part : split_list(spec)) {
    const auto eq = part.find('=');
    if (eq == std::string::npos) throw UsageError("--train-saes = " + spec + ": '" + part + "' is not KEY=VALUE");
    const std::string k = part.substr(0, eq), v = part.substr(eq + 1), flag = "--train-saes " + k;
    auto whole = [&](double lo, double hi) {
      const double x = number_in(flag, v, lo, hi);
      if (x != std::floor(x)) throw UsageError(flag + " = " + v + ": not a whole number");
      return x;
    };
    if (k == "width") t.width = static_cast<std::size_t>(whole(1, 1 << 20));
    else if (k == "k") t.k = static_cast<int>(whole(1, 1 << 20));
    else if (k == "samples") t.samples = static_cast<std::uint64_t>(whole(1, 1e15));
    else if (k == "batch") t.batch = static_cast<std::size_t>(whole(1, 1 << 24));
    else if (k == "lr") t.lr = number_in(flag, v, 1e-12, 10);
    else if (k == "seed") t.seed = static_cast<std::uint64_t>(whole(0, 9e15));
    else throw UsageError("--train-saes = " + spec + ": unknown key '" + k + "': choose width, k, samples, batch, lr or seed");
  }
  if (std::size_t(t.k) > t.width) throw UsageError("--train-saes: k = " + std::to_string(t.k) + " is larger than the width " + std::to_string(t.width));
  if (t.samples < t.batch) throw UsageError("--train-saes: samples = " + std::to_string(t.samples) + " is less than one batch");
  return t;
}

}  // namespace

int run_circuits(const std::vector<std::string>& argv) {
  try {
    const Args args(argv,
                    {"--hidden", "--attn-dim", "--prev-features", "--mlp-features", "--computed", "--fan-in",
                     "--threshold", "--attn-features", "--zipf", "--magnitude-mean", "--magnitude-std", "--world-seed",
                     "--rows", "--target", "--capture", "--noise", "--target-sae", "--train-saes", "--out"},
                    {}, {"--component-sae"});
    if (args.help()) {
      std::fputs(kCircuitsUsage, stdout);
      return 0;
    }
    if (!args.has("--out")) throw UsageError("--out is required");
    analysis::CircuitConfig cfg;
    cfg.hidden_dim = static_cast<int>(args.integer("--hidden", 1, 65536).value_or(64));
    cfg.attn_dim = static_cast<int>(args.integer("--attn-dim", 1, 65536).value_or(96));
    cfg.prev_features = static_cast<int>(args.integer("--prev-features", 1, 1000000).value_or(48));
    cfg.mlp_features = static_cast<int>(args.integer("--mlp-features", 0, 1000000).value_or(32));
    cfg.computed_features = static_cast<int>(args.integer("--computed", 0, 1000000).value_or(16));
    cfg.computed_fan_in = static_cast<int>(args.integer("--fan-in", 1, 1000000).value_or(2));
    cfg.computed_threshold = args.number("--threshold", 0, 1e9).value_or(0.5);
    cfg.attn_features = static_cast<int>(args.integer("--attn-features", 0, 1000000).value_or(48));
    if (auto z = args.text("--zipf")) {
      const auto v = numbers("--zipf", *z, 3, 0, 1e9);
      cfg.firing = Zipfian{v[0], v[1], v[2]};
    }
    cfg.magnitude_mean = args.number("--magnitude-mean", 1e-9, 1e9).value_or(1.0);
    cfg.magnitude_std = args.number("--magnitude-std", 0, 1e9).value_or(0.25);
    cfg.seed = static_cast<std::uint64_t>(args.integer("--world-seed", 0, INT64_MAX).value_or(1));
    const auto rows = static_cast<std::uint64_t>(args.integer("--rows", 10, 1LL << 40).value_or(40000));
    const auto capture = numbers("--capture", args.text("--capture").value_or("1,1,1"), 3, 0, 1);
    const auto noise = numbers("--noise", args.text("--noise").value_or("0,0.03,0.1,0.3,1"), 0, 0, 1);
    if (args.has("--target-sae") && args.has("--noise"))
      throw UsageError("--noise is injected into the target's oracle; it does not go with --target-sae");
    if (args.has("--target-sae") && args.has("--target")) throw UsageError("give one of --target and --target-sae");
    std::optional<analysis::CircuitTrainingOptions> training;
    if (auto v = args.text("--train-saes")) {
      for (const char* f : {"--target", "--target-sae", "--component-sae", "--capture", "--noise"})
        if (args.has(f)) throw UsageError(std::string(f) + " does not go with --train-saes (it trains every SAE)");
      training = parse_training(*v);
    }
    try {
      cfg.validate();
    } catch (const ConfigError& e) {
      throw UsageError(flag_of(e.field()) + ": " + e.what());
    }
    {  // every regression needs more train rows (60 %) than coefficients
      const std::uint64_t widest = analysis::circuit_regression_coefficients(cfg);
      if (rows * 6 / 10 <= widest)
        throw UsageError("--rows = " + std::to_string(rows) + ": 60 % of the rows fit the regressions, and the widest has " +
                         std::to_string(widest) + " coefficients; give more than " + std::to_string(widest * 10 / 6 + 1));
    }
    const std::string out_dir = *args.text("--out");
    const auto t0 = std::chrono::steady_clock::now();
    try {
      analysis::CircuitWorld world(cfg, rows);
      analysis::CircuitSaes saes;
      io::Json sae_json = io::Json::object();
      for (int c = 0; c < 3; ++c) {
        saes.component[c] = analysis::component_oracle(world, analysis::CircuitComponent(c), capture[c], cfg.seed);
        sae_json[analysis::kCircuitComponentNames[c]] = {{"oracle_capture", capture[c]}};
      }
      for (const auto& spec : args.texts("--component-sae")) {
        const auto eq = spec.find('=');
        if (eq == std::string::npos) throw UsageError("--component-sae = " + spec + ": give C=DIR");
        const auto c = component_named(spec.substr(0, eq));
        auto sae = std::make_shared<InferenceSae>(load_any_sae(spec.substr(eq + 1)));
        if (sae->input_dim() != world.component_dim(c))
          throw UsageError("--component-sae = " + spec + ": the SAE reads " + std::to_string(sae->input_dim()) +
                           " dimensions, component " + analysis::kCircuitComponentNames[int(c)] + " has " +
                           std::to_string(world.component_dim(c)));
        saes.component[int(c)] = analysis::sae_reconstruction(sae);
        sae_json[analysis::kCircuitComponentNames[int(c)]] = {{"sae", spec.substr(eq + 1)}};
      }
      std::string target_label;
      std::vector<double> levels = noise;
      std::shared_ptr<InferenceSae> target_sae;
      std::optional<analysis::CircuitTrainedSaes> trained;
      if (training) {
        const bool tty_train = ::isatty(2);
        int last_tenth = -1;
        training->progress = [&](std::uint64_t done, std::uint64_t total) {
          const int tenth = static_cast<int>(10 * done / total);
          if (!tty_train && tenth == last_tenth) return;
          last_tenth = tenth;
          std::fprintf(stderr, tty_train ? "\r  training 4 TopK SAEs %10llu / %llu rows  %6.1f s   "
                                         : "  training 4 TopK SAEs %10llu / %llu rows  %6.1f s\n",
                       static_cast<unsigned long long>(done), static_cast<unsigned long long>(total), seconds_since(t0));
        };
        trained = analysis::train_circuit_saes(cfg, *training);
        training->progress = nullptr;  // it refers to this block's locals
        if (tty_train) std::fputs("\n", stderr);
        target_sae = std::make_shared<InferenceSae>(trained->sae[0]);
        target_label = "topk-" + std::to_string(training->width) + "-k" + std::to_string(training->k);
        levels = {0.0};
        for (int c = 0; c < 3; ++c) {
          saes.component[c] = analysis::sae_reconstruction(std::make_shared<InferenceSae>(trained->sae[c + 1]));
          sae_json[analysis::kCircuitComponentNames[c]] = {{"trained", target_label}};
        }
      }
      analysis::OracleSpec target_spec;
      if (training) {
        // the trained target above
      } else if (auto dir = args.text("--target-sae")) {
        target_sae = std::make_shared<InferenceSae>(load_any_sae(*dir));
        if (target_sae->input_dim() != world.dim())
          throw UsageError("--target-sae = " + *dir + ": the SAE reads " + std::to_string(target_sae->input_dim()) +
                           " dimensions, x_L has " + std::to_string(world.dim()));
        target_label = short_label(*dir), levels = {0.0};
      } else {
        try {
          target_spec = analysis::parse_oracle_spec(
              args.text("--target").value_or("top:" + std::to_string(std::max<std::size_t>(1, world.target_features() / 2))));
          if (target_spec.error != analysis::IntroducedKind::none)
            throw UsageError("--target: give no introduced error (--noise sets the isotropic one)");
          target_spec.validate(world.target_features());
        } catch (const ConfigError& e) {
          throw UsageError(e.what());
        }
        target_label = target_spec.label();
      }
      std::fprintf(stderr, "synthsae circuits: %s; target SAE %s\n", world.describe().c_str(), target_label.c_str());
      const bool tty = ::isatty(2);
      analysis::CircuitRegressionOptions opt;
      std::vector<analysis::CircuitRegressionReport> reports;
      for (const double level : levels) {
        opt.progress = [&](const std::string& pass, std::uint64_t done, std::uint64_t total) {
          if (!tty && done != total) return;
          std::fprintf(stderr, tty ? "\r  noise %-6g %-14s %9llu / %llu rows  %6.1f s   " : "  noise %-6g %-14s %9llu / %llu rows  %6.1f s\n",
                       level, pass.c_str(), static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                       seconds_since(t0));
        };
        if (target_sae) {
          saes.target = analysis::sae_reconstruction(target_sae);
        } else {
          auto spec = target_spec;
          if (level > 0) spec.error = analysis::IntroducedKind::isotropic, spec.level = level;
          saes.target = analysis::oracle_reconstruction(std::make_shared<const analysis::OracleSae>(world, spec));
        }
        reports.push_back(analysis::circuit_regression(world, saes, opt));
      }
      if (tty) std::fputs("\n", stderr);

      // The table at the first level (no noise by default).
      const auto& r0 = reports.front();
      std::printf("target FVU %.4f (nonlinear %.4f); component FVU prev %.4f, mlp %.4f, attn %.4f\n", r0.target_fvu,
                  r0.target_fvu_nonlinear, r0.component_fvu[0], r0.component_fvu[1], r0.component_fvu[2]);
      std::printf("%-26s %6s  %10s %13s %16s\n", "regressor (test R^2)", "inputs", "SaeError", "LinearError",
                  "NonlinearError");
      for (const auto& row : r0.table)
        std::printf("%-26s %6zu  %10.4f %13.4f %16.4f\n", row.name.c_str(), row.inputs, row.explained[0],
                    row.explained[1], row.explained[2]);
      if (levels.size() > 1) {
        std::printf("\n%-8s %12s %22s %24s\n", "noise", "target FVU", "R2(SaeError | all)", "R2(Nonlinear | all)");
        for (std::size_t i = 0; i < levels.size(); ++i)
          std::printf("%-8g %12.4f %22.4f %24.4f\n", levels[i], reports[i].target_fvu,
                      reports[i].row("sae_all").explained[0], reports[i].row("sae_all").explained[2]);
      }

      StagedDirectory out(out_dir);
      io::Json runs = io::Json::array();
      for (std::size_t i = 0; i < levels.size(); ++i) {
        io::Json j = reports[i].to_json();
        j["noise"] = levels[i];
        runs.push_back(j);
      }
      io::Json computed = io::Json::array();
      for (const auto& in : world.computed_inputs()) computed.push_back(in);
      io::Json doc = {
          {"circuit",
           {{"hidden_dim", cfg.hidden_dim}, {"attn_dim", cfg.attn_dim}, {"prev_features", cfg.prev_features},
            {"mlp_features", cfg.mlp_features}, {"computed_features", cfg.computed_features},
            {"computed_fan_in", cfg.computed_fan_in}, {"computed_threshold", cfg.computed_threshold},
            {"computed_inputs", computed}, {"attn_features", cfg.attn_features}, {"firing", cfg.firing.to_json()},
            {"magnitude_mean", cfg.magnitude_mean}, {"magnitude_std", cfg.magnitude_std}, {"seed", cfg.seed},
            {"rows", rows}}},
          {"target_sae", target_label},
          {"component_saes", sae_json},
          {"runs", runs},
          {"seconds", seconds_since(t0)}};
      if (training)
        doc["training"] = {{"architecture", "topk"}, {"width", training->width}, {"k", training->k},
                           {"samples", training->samples}, {"batch", training->batch}, {"lr", training->lr},
                           {"seed", training->seed}, {"last_mse", trained->last_mse}};
      io::write_file_atomically(out.path() / "circuits.json", [&](std::ostream& o) { o << doc.dump(2) << "\n"; });
      if (trained) {
        const char* names[4] = {"target", "prev", "mlp", "attn"};
        for (int s = 0; s < 4; ++s)
          saelens::save_sae(trained->sae[s], out.path() / "saes" / names[s],
                            {{"circuit_part", names[s]}, {"k", training->k}, {"samples", training->samples}});
      }

      std::vector<std::string> cats;
      std::vector<Series> bars{{"SaeError", {}, {}}, {"LinearError", {}, {}}, {"NonlinearError", {}, {}}};
      for (const auto& row : r0.table) {
        cats.push_back(row.name);
        for (int k = 0; k < 3; ++k) bars[k].y.push_back(std::max(0.0, row.explained[k]));
      }
      write_grouped_bars(out.path() / "r2_bars.svg", "Test R² of the target's errors on each regressor", cats, bars);
      if (levels.size() > 1) {
        std::vector<Series> lines;
        for (const char* reg : {"sae_all", "sae_target"})
          for (int k : {0, 2}) {
            Series s{std::string(k == 0 ? "SaeError" : "NonlinearError") + " | " + reg, {}, {}};
            for (std::size_t i = 0; i < levels.size(); ++i)
              s.x.push_back(levels[i]), s.y.push_back(reports[i].row(reg).explained[k]);
            lines.push_back(s);
          }
        write_line_charts(out.path() / "noise.svg", "noise injected into Sae(x_L) (variance fraction of x_L)",
                          {{"Test R² against injected noise", lines}});
      }
      out.commit();
      std::printf("wrote %s/circuits.json and plots (%.1f s)\n", out_dir.c_str(), seconds_since(t0));
      return 0;
    } catch (const UsageError&) {
      throw;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "synthsae circuits: %s\n", e.what());
      return 1;
    }
  } catch (const UsageError& e) {
    std::fprintf(stderr, "synthsae circuits: %s\n\n%s", e.what(), kCircuitsUsage);
    return 2;
  }
}

}  // namespace synthsae::cli
