// synthsae darkmatter: the error decomposition of "Decomposing the Dark Matter of Sparse
// Autoencoders" for one or more SAEs, on a synthetic world (with ground truth) or on a user's
// activation files; one JSON report and SVG plots (docs/dark-matter.md).
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <unistd.h>

#include <synthsae/analysis/dark_matter.hpp>
#include <synthsae/analysis/downstream.hpp>
#include <synthsae/analysis/noise_injection.hpp>

#include "cli_args.hpp"
#include "commands.hpp"
#include "darkmatter_plots.hpp"
#include "output_dir.hpp"
#include "sae_arg.hpp"
#include "train_request.hpp"
#include "world_arg.hpp"

namespace synthsae::cli {

namespace {

constexpr const char* kDarkmatterUsage =
    "usage: synthsae darkmatter --model (PRESET | DIR) --sae DIR [--sae DIR ...] --out DIR [options]\n"
    "       synthsae darkmatter --activations FILE [--raw-width N] (--sae DIR | --sae-outputs FILE |\n"
    "                           --sae-errors FILE) [...] --out DIR [options]\n"
    "\n"
    "Splits each SAE's error into the part linearly predictable from x (LinearError) and the rest\n"
    "(NonlinearError); norm prediction with baselines; error norms across widths; the power-law\n"
    "breakdown over width; on synthetic worlds the ground-truth split into Absent and Introduced.\n"
    "Writes darkmatter.json and SVG plots into --out (docs/dark-matter.md explains every key).\n"
    "\n"
    "  --model PRESET|DIR   a synthetic world (rows drawn from a stream training and eval never use)\n"
    "  --samples N          rows drawn from the world (default 300000)\n"
    "  --activations FILE   .npy (<f4 or <f2, C order) or, with --raw-width N, raw float32 rows\n"
    "  --sae DIR            an SAE in SAELens's layout (cfg.json + sae_weights.safetensors) or\n"
    "                       .npy files W_enc, b_enc, W_dec, b_dec [, threshold | k]; repeatable\n"
    "  --sae-outputs FILE   precomputed Sae(x) for --activations (same shape); repeatable\n"
    "  --sae-errors FILE    precomputed x - Sae(x); repeatable\n"
    "  --positions FILE     token positions (integer .npy, one per row), or --context-length L\n"
    "  --min-position P     keep rows at positions >= P (the paper: 200)\n"
    "  --train-rows N       rows to fit on (default min(150000, 60%); the rest are the test rows)\n"
    "  --split-seed N       seed of the random train/test split (default 0)\n"
    "  --ridge X            ridge strength, relative to the regressors' mean variance (default 0)\n"
    "  --no-intercept       regress without an intercept (the paper's vector code does)\n"
    "  --match-threshold X  |cos| for a latent to capture its assigned true feature (default 0.9)\n"
    "  --no-oracle          skip the oracle regressor c (the true coefficients)\n"
    "  --pursuit gp|omp|mp  also analyse each --sae's decoder with codes found by gradient pursuit,\n"
    "                       orthogonal or plain matching pursuit (non-negative; as many iterations\n"
    "                       per row as the SAE's encoder fires latents): rows labelled SAE+gp\n"
    "  --oracle SPEC        also analyse an oracle SAE that reconstructs true features from the\n"
    "                       ground truth (--model only): top:M (the M most frequent), random:M or\n"
    "                       list:FILE, then optionally ,isotropic=F | ,shrinkage=S | ,direction=E |\n"
    "                       ,multiplicative=E (an Introduced error) and ,seed=N; repeatable. Each is\n"
    "                       also written as a SAELens directory under OUT/oracles/\n"
    "  --inject             the paper's noise-injection test (Table 1, Fig. 15) on each --sae:\n"
    "                       noise_injection in darkmatter.json and noise_injection.svg\n"
    "  --inject-rows N      rows for it (default 60000; two thirds fit, one third scores)\n"
    "  --train-on-errors SPEC  train SAEs on each --sae's LinearError and NonlinearError, streamed\n"
    "                       from fresh samples (--model only), scored by FVU and by how many of the\n"
    "                       base SAE's absent true features they find: ARCH:WIDTH[,k=K][,l1=X]\n"
    "                       [,samples=N][,batch=N][,lr=X][,seed=N][,fit=N][,score=N]; saved under\n"
    "                       OUT/error_saes/\n"
    "  --downstream LIST    the downstream effect of each SAE's error components (the paper's Fig. 8;\n"
    "                       --model only): the share of a downstream loss that adding LinearError or\n"
    "                       NonlinearError to Sae(x) recovers, beside the paper's expected values.\n"
    "                       Losses: pinv (recovering the true coefficients with the dictionary's\n"
    "                       pseudo-inverse), readout (a fixed random ReLU readout of them); e.g. pinv,readout\n"
    "  --downstream-rows N  rows for it (default 50000; 60 % fit LinearError, 40 % score)\n"
    "  --chunk N            rows per chunk (default 4096)\n";

void write_plots(const std::filesystem::path& dir, const analysis::DarkMatterReport& r) {
  const auto& b = r.breakdown;
  if (b.fitted) {
    std::vector<Band> bands{{"nonlinear error", "#c5b0d5", b.nonlinear}};
    if (b.has_encoder_band) bands.push_back({"encoder error (pursuit fixes)", "#98df8a", b.encoder});
    bands.push_back({"linear error", "#aec7e8", b.linear});
    bands.push_back({"absent features", "#f7b6d2", b.absent});
    std::vector<Series> points;
    Series fvu{"FVU (measured)", {}, {}}, fvn{"FVU nonlinear", {}, {}}, ta{"Absent / SST (truth)", {}, {}},
        ti{"Introduced / SST (truth)", {}, {}};
    for (const auto& s : r.saes)
      if (s.width) {
        fvu.x.push_back(double(s.width)), fvu.y.push_back(s.fvu);
        fvn.x.push_back(double(s.width)), fvn.y.push_back(s.fvu_nonlinear);
        if (s.truth) {  // energy over the test rows' total variance: the shares of SaeError times FVU
          ta.x.push_back(double(s.width)), ta.y.push_back(s.truth->absent_share * s.fvu);
          ti.x.push_back(double(s.width)), ti.y.push_back(s.truth->introduced_share * s.fvu);
        }
      }
    points.push_back(fvu), points.push_back(fvn);
    if (!ta.x.empty()) points.push_back(ta), points.push_back(ti);
    write_stacked_areas(dir / "breakdown.svg", "Dark matter over SAE width (power law + constant)", "SAE width (latents)",
                        b.band_widths, bands, points);
  }
  // Norm battery: one group per target kind, one bar per SAE (regressor x), plus baselines for the first SAE.
  const std::vector<std::string> kinds{"sae_sq", "error_sq", "linear_error_sq", "nonlinear_error_sq"};
  std::vector<std::string> cats{"x_sq", "x_centered_sq"};
  cats.insert(cats.end(), kinds.begin(), kinds.end());
  std::vector<Series> bars;
  for (const auto& s : r.saes) {
    Series sr{s.label, {}, {}};
    sr.y.push_back(r.x_norms.at("x_sq").at("x")), sr.y.push_back(r.x_norms.at("x_centered_sq").at("x"));
    for (const auto& k : kinds) sr.y.push_back(s.norms.at(k).at("x"));
    bars.push_back(sr);
  }
  write_grouped_bars(dir / "norm_battery.svg", "Test R² of squared norms regressed on x", cats, bars);
  if (r.saes.size() > 1) {
    const auto& m = r.cross_width[0];
    std::vector<std::string> labels;
    for (std::size_t i = 0; i < m.labels.size(); ++i) labels.push_back(std::to_string(m.widths[i]));
    write_labelled_matrix(dir / "cross_width.svg", "R² of ‖SaeError_j‖² from ‖SaeError_i‖²", "larger SAE j (width)",
                          "smaller SAE i (width)", labels, m.r2);
    std::vector<std::pair<std::string, std::vector<Series>>> panels;
    for (const char* what : {"linear", "nonlinear"}) {
      std::vector<Series> ss;
      const auto& rows = std::string(what) == "linear" ? r.series.linear : r.series.nonlinear;
      for (std::size_t k = 0; k < rows.size(); ++k) {
        Series s{std::to_string(m.widths[k]), {}, rows[k]};
        for (std::size_t t = 0; t < rows[k].size(); ++t) s.x.push_back(double(t));
        ss.push_back(s);
      }
      panels.emplace_back(std::string("‖") + (std::string(what) == "linear" ? "Linear" : "Nonlinear") + "Error‖ per token",
                          ss);
    }
    write_line_charts(dir / "token_norms.svg", "test token", panels);
  }
}

/// Fig. 15: FVU and FVU with the linear prediction against the share of latents masked.
void write_injection_plot(const std::filesystem::path& dir, const std::vector<analysis::NoiseInjectionReport>& reps) {
  std::vector<std::pair<std::string, std::vector<Series>>> panels;
  for (const auto& r : reps) {
    if (r.ablation.empty()) continue;
    Series fvu{"FVU (recon)", {}, {}}, lin{"FVU (recon + linear prediction)", {}, {}};
    for (const auto& c : r.ablation) {
      fvu.x.push_back(100 * c.masked_fraction), fvu.y.push_back(c.fvu);
      lin.x.push_back(100 * c.masked_fraction), lin.y.push_back(c.fvu_with_linear);
    }
    panels.emplace_back(r.label + ": noise injection", std::vector<Series>{fvu, lin});
  }
  if (!panels.empty()) write_line_charts(dir / "noise_injection.svg", "% of latents masked (lowest mean first)", panels);
}

/// Fig. 7's ground-truth substitute: per error-SAE, FVU and the base's absent features it finds.
void write_error_sae_plot(const std::filesystem::path& dir, const std::vector<analysis::ErrorSaeReport>& reps) {
  std::vector<Series> bars;
  for (const auto& r : reps)
    bars.push_back(Series{r.base + " " + r.component, {}, {r.fvu, r.recovered_absent, r.mean_max_cos_absent}});
  write_grouped_bars(dir / "error_saes.svg", "SAEs trained on LinearError and NonlinearError",
                     {"FVU", "absent features found", "mean max |cos| to absent"}, bars);
}

/// A label as a directory name.
std::string file_name_of(std::string label) {
  for (char& c : label)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '+')) c = '-';
  return label;
}

}  // namespace

int run_darkmatter(const std::vector<std::string>& argv) {
  try {
    const Args args(argv,
                    {"--model", "--samples", "--activations", "--raw-width", "--positions", "--context-length",
                     "--min-position", "--train-rows", "--split-seed", "--ridge", "--match-threshold", "--chunk", "--pursuit",
                     "--inject-rows", "--train-on-errors", "--downstream", "--downstream-rows", "--out"},
                    {"--no-intercept", "--no-oracle", "--inject"}, {"--sae", "--sae-outputs", "--sae-errors", "--oracle"});
    if (args.help()) {
      std::fputs(kDarkmatterUsage, stdout);
      return 0;
    }
    if (args.has("--model") == args.has("--activations")) throw UsageError("give exactly one of --model and --activations");
    if (!args.has("--out")) throw UsageError("--out is required");
    const auto sae_dirs = args.texts("--sae"), outputs = args.texts("--sae-outputs"), errors = args.texts("--sae-errors");
    const auto oracle_specs = args.texts("--oracle");
    if (sae_dirs.empty() && outputs.empty() && errors.empty() && oracle_specs.empty())
      throw UsageError("give at least one --sae or --oracle (or --sae-outputs / --sae-errors with --activations)");
    if (!oracle_specs.empty() && !args.has("--model"))
      throw UsageError("--oracle needs --model (an oracle reads the world's ground truth)");
    std::vector<analysis::OracleSpec> oracles;
    for (const auto& o : oracle_specs) {
      try {
        oracles.push_back(analysis::parse_oracle_spec(o));
      } catch (const ConfigError& e) {
        throw UsageError(e.what());
      }
    }
    if (args.has("--inject-rows") && !args.has("--inject")) throw UsageError("--inject-rows goes with --inject");
    if (args.has("--inject") && sae_dirs.empty()) throw UsageError("--inject needs an --sae (an SAE to inject noise into)");
    std::optional<ErrorSaeSpec> error_spec;
    if (auto v = args.text("--train-on-errors")) {
      if (!args.has("--model")) throw UsageError("--train-on-errors needs --model (fresh samples and ground truth)");
      if (sae_dirs.empty()) throw UsageError("--train-on-errors needs an --sae (a base SAE whose error to train on)");
      error_spec = parse_error_sae_spec(*v);
    }
    std::vector<std::string> downstream_losses;
    if (auto v = args.text("--downstream")) {
      if (!args.has("--model")) throw UsageError("--downstream needs --model (its losses read the true features)");
      for (const auto& l : split_list(*v)) {
        if (l != "pinv" && l != "readout") throw UsageError("--downstream = " + *v + ": unknown loss '" + l + "': choose pinv or readout");
        if (std::find(downstream_losses.begin(), downstream_losses.end(), l) != downstream_losses.end())
          throw UsageError("--downstream = " + *v + ": '" + l + "' is listed twice");
        downstream_losses.push_back(l);
      }
    }
    if (args.has("--downstream-rows") && !args.has("--downstream")) throw UsageError("--downstream-rows goes with --downstream");
    if (args.has("--model") && (!outputs.empty() || !errors.empty()))
      throw UsageError("--sae-outputs and --sae-errors go with --activations, not --model");
    for (const char* f : {"--raw-width", "--positions", "--context-length", "--min-position"})
      if (args.has(f) && !args.has("--activations")) throw UsageError(std::string(f) + " goes with --activations");
    if (args.has("--samples") && !args.has("--model")) throw UsageError("--samples goes with --model");

    analysis::DarkMatterOptions opt;
    opt.train_rows = static_cast<std::uint64_t>(args.integer("--train-rows", 1, std::int64_t(1) << 40).value_or(0));
    opt.split_seed = static_cast<std::uint64_t>(args.integer("--split-seed", 0, INT64_MAX).value_or(0));
    opt.probe.ridge = args.number("--ridge", 0, 1e6).value_or(0);
    opt.probe.intercept = !args.has("--no-intercept");
    opt.match_threshold = args.number("--match-threshold", 0, 1).value_or(0.9);
    opt.oracle_baseline = !args.has("--no-oracle");
    opt.chunk_rows = static_cast<std::size_t>(args.integer("--chunk", 16, 1 << 20).value_or(4096));
    const auto samples = static_cast<std::uint64_t>(args.integer("--samples", 2, std::int64_t(1) << 40).value_or(300'000));
    const std::string out_dir = *args.text("--out");
    analysis::NoiseInjectionOptions inject;
    inject.max_rows = static_cast<std::uint64_t>(args.integer("--inject-rows", 3, std::int64_t(1) << 40).value_or(60'000));
    inject.chunk_rows = opt.chunk_rows, inject.probe = opt.probe, inject.split_seed = opt.split_seed;
    std::optional<analysis::PursuitOptions> pursuit;
    if (auto v = args.text("--pursuit")) {
      if (*v != "gp" && *v != "omp" && *v != "mp") throw UsageError("--pursuit = " + *v + ": choose gp, omp or mp");
      if (sae_dirs.empty()) throw UsageError("--pursuit needs an --sae (a decoder to pursue on)");
      pursuit = analysis::PursuitOptions{analysis::parse_pursuit(*v), true};
    }
    try {
      const auto t0 = std::chrono::steady_clock::now();
      std::unique_ptr<SyntheticModel> world;
      std::unique_ptr<analysis::ActivationSource> source;
      if (args.has("--model")) {
        world = std::make_unique<SyntheticModel>(world_from_argument(*args.text("--model")));
        source = std::make_unique<analysis::SyntheticSource>(*world, samples);
      } else {
        analysis::FileSourceOptions fo;
        fo.activations = *args.text("--activations");
        fo.raw_width = static_cast<std::size_t>(args.integer("--raw-width", 1, 1 << 24).value_or(0));
        for (const auto& f : outputs) fo.sae_outputs.emplace_back(f);
        for (const auto& f : errors) fo.sae_errors.emplace_back(f);
        if (args.has("--positions")) fo.positions = *args.text("--positions");
        if (args.has("--context-length"))
          fo.context_length = static_cast<std::uint64_t>(*args.integer("--context-length", 1, std::int64_t(1) << 40));
        fo.min_position = args.integer("--min-position", 0, std::int64_t(1) << 40).value_or(0);
        source = std::make_unique<analysis::FileSource>(fo);
      }
      std::vector<analysis::AnalysedSae> saes;
      for (const auto& d : sae_dirs) saes.push_back(analysis::AnalysedSae::of(short_label(d), load_any_sae(d)));
      if (pursuit)
        for (const auto& d : sae_dirs)
          saes.push_back(analysis::AnalysedSae::pursued(short_label(d) + "+" + analysis::pursuit_name(pursuit->method),
                                                        load_any_sae(d), *pursuit));
      std::vector<std::shared_ptr<const analysis::OracleSae>> oracle_saes;
      for (const auto& o : oracles) {
        oracle_saes.push_back(std::make_shared<const analysis::OracleSae>(*source, o));
        saes.push_back(analysis::AnalysedSae::of_oracle(oracle_saes.back()));
      }
      for (std::size_t i = 0; i < outputs.size(); ++i)
        saes.push_back(analysis::AnalysedSae::from_source(short_label(outputs[i]), i));
      for (std::size_t i = 0; i < errors.size(); ++i)
        saes.push_back(analysis::AnalysedSae::from_source(short_label(errors[i]), outputs.size() + i));
      for (std::size_t i = 0; i < saes.size(); ++i)  // labels name rows of the report and output directories
        for (std::size_t j = 0; j < i; ++j)
          if (saes[i].label == saes[j].label)
            throw UsageError("two SAEs are labelled " + saes[i].label + " (give directories of different names, "
                             "oracles of different settings)");
      std::fprintf(stderr, "synthsae darkmatter: %zu SAE(s) on %s\n", saes.size(), source->describe().c_str());
      const bool tty = ::isatty(2);
      std::string last_phase;
      int last_tenth = -1;
      opt.progress = [&](const std::string& phase, std::uint64_t done, std::uint64_t total) {
        const int tenth = static_cast<int>(10 * done / std::max<std::uint64_t>(total, 1));
        if (!tty && phase == last_phase && tenth == last_tenth) return;
        const double s = seconds_since(t0);
        std::fprintf(stderr, tty ? "\r  %-12s %10llu / %llu rows  %6.1f s   " : "  %-12s %10llu / %llu rows  %6.1f s\n",
                     phase.c_str(), static_cast<unsigned long long>(done), static_cast<unsigned long long>(total), s);
        last_phase = phase, last_tenth = tenth;
      };
      const auto report = analysis::analyse_dark_matter(*source, saes, opt);
      if (tty) std::fputs("\n", stderr);
      StagedDirectory out(out_dir);
      std::vector<analysis::NoiseInjectionReport> injections;
      if (args.has("--inject")) {
        inject.progress = opt.progress;
        for (const auto& d : sae_dirs) {
          auto sae = load_any_sae(d);
          injections.push_back(analysis::noise_injection_experiment(*source, sae, short_label(d), inject));
        }
        if (tty) std::fputs("\n", stderr);
      }
      std::vector<analysis::ErrorSaeReport> error_saes;
      if (error_spec) {
        for (const auto& d : sae_dirs) {
          auto base = load_any_sae(d);
          if (base.input_dim() != world->hidden_dim()) continue;  // the analysis has refused it already
          analysis::SyntheticSource fit_rows(*world, error_spec->fit_rows, analysis::kErrorFitSample, 0);
          const auto fit = analysis::fit_error_regression(fit_rows, base, opt.probe, opt.chunk_rows);
          analysis::ErrorSaeOptions eo;
          eo.score_rows = error_spec->score_rows, eo.chunk_rows = opt.chunk_rows, eo.match_threshold = opt.match_threshold;
          eo.base_captured =
              analysis::captured_features(base.decoder_weights(), world->feature_vectors(), opt.match_threshold).captured;
          for (auto which : {analysis::ErrorComponent::linear, analysis::ErrorComponent::nonlinear}) {
            const std::string name = short_label(d) + "-" + analysis::component_name(which) + "-" + error_spec->arch + "-" +
                                     std::to_string(error_spec->width);
            std::fprintf(stderr, "  training %s:%zu on %s's %s error (%zu samples) ...\n", error_spec->arch.c_str(),
                         error_spec->width, short_label(d).c_str(), analysis::component_name(which), error_spec->samples);
            auto r = train_error_sae(*error_spec, *world, analysis::ErrorComponentMap(base, fit, which), eo,
                                     out.path() / "error_saes" / file_name_of(name));
            r.base = short_label(d);
            std::fprintf(stderr, "  ... %.1f s\n", r.train_seconds);
            error_saes.push_back(r);
          }
        }
      }
      std::vector<analysis::DownstreamReport> downstream;
      if (!downstream_losses.empty()) {
        const analysis::PseudoInverseRecovery decoding(world->feature_vectors(), &world->bias());  // both losses' D⁺
        std::vector<analysis::DownstreamLoss> losses;
        for (const auto& l : downstream_losses)
          losses.push_back(l == "pinv" ? decoding.loss() : analysis::ReluReadout(decoding).loss());
        analysis::DownstreamOptions dopt;
        dopt.rows = static_cast<std::uint64_t>(args.integer("--downstream-rows", 10, std::int64_t(1) << 40).value_or(50'000));
        if (dopt.rows > source->rows()) {
          std::fprintf(stderr, "note: --downstream-rows %llu is more than the %llu rows of --samples; using %llu\n",
                       static_cast<unsigned long long>(dopt.rows), static_cast<unsigned long long>(source->rows()),
                       static_cast<unsigned long long>(source->rows()));
          dopt.rows = source->rows();
        }
        dopt.chunk_rows = opt.chunk_rows, dopt.probe = opt.probe, dopt.split_seed = opt.split_seed;
        dopt.progress = opt.progress;
        for (const auto& d : sae_dirs)
          downstream.push_back(analysis::downstream_effect(
              *source, analysis::sae_reconstruction(std::make_shared<InferenceSae>(load_any_sae(d))), short_label(d), losses, dopt));
        for (const auto& o : oracle_saes)
          downstream.push_back(analysis::downstream_effect(*source, analysis::oracle_reconstruction(o), o->label(), losses, dopt));
        if (tty) std::fputs("\n", stderr);
      }
      auto json = analysis::to_json(report);
      if (!downstream.empty()) {
        json["downstream"] = nlohmann::json::array();
        for (const auto& r : downstream) json["downstream"].push_back(r.to_json());
      }
      if (!error_saes.empty()) {
        json["error_saes"] = nlohmann::json::array();
        for (const auto& r : error_saes) json["error_saes"].push_back(analysis::to_json(r));
        write_error_sae_plot(out.path(), error_saes);
      }
      if (!injections.empty()) {
        json["noise_injection"] = nlohmann::json::array();
        for (const auto& r : injections) json["noise_injection"].push_back(analysis::to_json(r));
        write_injection_plot(out.path(), injections);
      }
      for (const auto& o : oracle_saes) {
        saelens::save_sae(o->to_inference_sae(), out.path() / "oracles" / file_name_of(o->label()),
                          {{"oracle", o->label()}, {"features", o->selected()}});
        if (o->export_drops_error())
          std::fprintf(stderr, "note: %s is saved without its random %s error (an SAE file holds fixed weights)\n",
                       o->label().c_str(), analysis::introduced_name(o->spec().error));
      }
      io::write_file_atomically(out.path() / "darkmatter.json", [&](std::ostream& o) { o << json.dump(2) << "\n"; });
      write_plots(out.path(), report);
      out.commit();
      int label_width = 24;
      for (const auto& s : report.saes) label_width = std::max(label_width, static_cast<int>(s.label.size()));
      std::printf("%-*s %7s %7s %9s %9s %9s %9s %9s\n", label_width, "sae", "width", "L0", "FVU", "FVU_nl", "err_R2",
                  "R2_absent", "R2_intro");
      for (const auto& s : report.saes)
        std::printf("%-*s %7zu %7.2f %9.4f %9.4f %9.4f %9.4f %9.4f\n", label_width, s.label.c_str(), s.width, s.l0, s.fvu,
                    s.fvu_nonlinear, s.error_r2, s.truth ? s.truth->r2_absent : NAN, s.truth ? s.truth->r2_introduced : NAN);
      for (const auto& r : injections) {
        std::printf("noise injection, %s (%llu rows, %llu held out): corr(x-noise, est. Dense) %.3f, corr(x-noise, est. "
                    "Introduced) %.3f, corr(recon-noise, est. Dense) %.3f, corr(recon-noise, est. Introduced) %.3f\n",
                    r.label.c_str(), static_cast<unsigned long long>(r.rows), static_cast<unsigned long long>(r.test_rows),
                    r.corr_x_dense, r.corr_x_introduced, r.corr_recon_dense, r.corr_recon_introduced);
        if (!r.ablation.empty())
          std::printf("  masking %.0f%% -> %.0f%% of latents: FVU %.4f -> %.4f, FVU with linear %.4f -> %.4f\n",
                      100 * r.ablation.front().masked_fraction, 100 * r.ablation.back().masked_fraction,
                      r.ablation.front().fvu, r.ablation.back().fvu, r.ablation.front().fvu_with_linear,
                      r.ablation.back().fvu_with_linear);
      }
      if (!error_saes.empty()) {
        std::printf("SAEs trained on error components (absent: the base's true features at |cos| < %.2f):\n",
                    opt.match_threshold);
        std::printf("  %-*s %-10s %-16s %8s %7s %7s %7s %11s %11s\n", label_width, "base", "component", "sae", "FVU", "L0",
                    "dead", "absent", "max-cos abs", "found abs");
        for (const auto& r : error_saes)
          std::printf("  %-*s %-10s %-16s %8.4f %7.2f %7.3f %7zu %11.3f %11.3f\n", label_width, r.base.c_str(),
                      r.component.c_str(), (r.architecture + ":" + std::to_string(r.width)).c_str(), r.fvu, r.l0,
                      r.dead_fraction, r.absent_features, r.mean_max_cos_absent, r.recovered_absent);
      }
      if (!downstream.empty()) {
        std::printf("downstream loss recovered by adding each error component to Sae(x) (expected: norm share of "
                    "SaeError, variance share):\n");
        std::printf("  %-*s %-14s %10s %10s %9s %9s %9s %9s %9s %9s\n", label_width, "sae", "loss", "L(x)", "L(Sae)",
                    "lin rec", "lin norm", "lin var", "nl rec", "nl norm", "nl var");
        for (const auto& r : downstream)
          for (const auto& e : r.losses)
            std::printf("  %-*s %-14s %10.4g %10.4g %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n", label_width, r.sae.c_str(),
                        e.name.c_str(), e.loss_x, e.loss_sae, e.linear.recovered, r.linear_norm_vs_error,
                        r.linear_variance_share, e.nonlinear.recovered, r.nonlinear_norm_vs_error, r.nonlinear_variance_share);
      }
      std::printf("wrote %s/darkmatter.json and plots (%.1f s)\n", out_dir.c_str(), report.seconds);
      return 0;
    } catch (const UsageError&) {
      throw;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "synthsae darkmatter: %s\n", e.what());
      return 1;
    }
  } catch (const UsageError& e) {
    std::fprintf(stderr, "synthsae darkmatter: %s\n\n%s", e.what(), kDarkmatterUsage);
    return 2;
  }
}

}  // namespace synthsae::cli
