// synthsae model (--preset NAME | --config FILE | --load DIR) [--seed N] [--save DIR]
//                [--stats] [--samples N] [--first-k K] [--batch N] [--firing-rates FILE]
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>

#include <synthsae/io/atomic_file.hpp>
#include <synthsae/io/json.hpp>
#include <synthsae/saelens/model_directory.hpp>
#include <synthsae/world/presets.hpp>
#include <synthsae/world/statistics.hpp>

#include "cli_args.hpp"
#include "commands.hpp"
#include "output_dir.hpp"

namespace synthsae::cli {

namespace {

constexpr const char* kModelUsage =
    "usage: synthsae model (--preset NAME | --config FILE | --load DIR) [--seed N]\n"
    "                      [--save DIR] [--stats] [--samples N] [--first-k K] [--batch N]\n"
    "                      [--firing-rates FILE]\n"
    "\n"
    "  --preset NAME   a named world (see below)\n"
    "  --config FILE   a synthetic_model_config.json (SAELens's keys)\n"
    "  --load DIR      a directory in SAELens's layout (synthetic_model_config.json,\n"
    "                  synthetic_model.safetensors, hierarchy.json), whoever wrote it\n"
    "  --seed N        override the config's seed (not with --load)\n"
    "  --save DIR      write the world in SAELens's layout\n"
    "  --stats         print one JSON object of statistics (the default when not saving)\n"
    "  --samples N     samples for the firing statistics (default 10000)\n"
    "  --first-k K     also count L0 over features [0, K) (default 4096, or N if smaller)\n"
    "  --batch N       sampling batch size (default 1024)\n"
    "  --firing-rates FILE  also write each feature's realised firing rate over those samples\n"
    "                  as JSON {\"samples\": n, \"firing_rates\": [...]} (implies --stats)\n"
    "\n"
    "presets:\n";

void print_usage(std::FILE* out) {
  std::fputs(kModelUsage, out);
  for (const auto& p : preset_list())
    std::fprintf(out, "  %-24s %s\n", std::string(p.name).c_str(), std::string(p.description).c_str());
}

}  // namespace

int run_model(const std::vector<std::string>& argv) {
  try {
    const Args args(argv, {"--preset", "--config", "--load", "--seed", "--save", "--samples", "--first-k", "--batch",
                     "--firing-rates"},
                    {"--stats"});
    if (args.help()) {
      print_usage(stdout);
      return 0;
    }
    const int sources = args.has("--preset") + args.has("--config") + args.has("--load");
    if (sources != 1) throw UsageError("give exactly one of --preset, --config, --load");
    if (args.has("--seed") && args.has("--load")) throw UsageError("--seed cannot change a loaded world");
    const auto samples = args.integer("--samples", 1, std::int64_t(1) << 40).value_or(10000);
    const auto batch = args.integer("--batch", 1, 1 << 20).value_or(1024);
    const auto first_k_flag = args.integer("--first-k", 1, std::int64_t(1) << 40);
    const bool want_stats = args.has("--stats") || args.has("--firing-rates") || !args.has("--save");

    try {
      const auto t0 = std::chrono::steady_clock::now();
      std::optional<SyntheticModel> model;
      if (const auto dir = args.text("--load")) {
        model.emplace(saelens::load_synthetic_model(*dir));
      } else {
        SyntheticModelConfig cfg;
        if (const auto name = args.text("--preset")) {
          try {
            cfg = preset(*name);
          } catch (const ConfigError& e) {
            throw UsageError(std::string("--preset ") + e.what());
          }
        } else {
          const auto path = *args.text("--config");
          try {
            cfg = SyntheticModelConfig::from_json(io::read_json_file(path));
          } catch (const ConfigError& e) {
            throw FormatError(path, e.what());
          }
        }
        if (const auto seed = args.integer("--seed", 0, std::int64_t(1) << 62))
          cfg.seed = static_cast<std::uint64_t>(*seed);
        model.emplace(std::move(cfg));
      }
      const double build_seconds = seconds_since(t0);

      if (const auto dir = args.text("--save")) {
        StagedDirectory out(*dir);
        saelens::save_synthetic_model(*model, out.path());
        out.commit();
        std::fprintf(stderr, "synthsae: saved the world to %s\n", dir->c_str());
      }
      if (want_stats) {
        const std::size_t n = model->num_features();
        const std::size_t first_k = std::min<std::size_t>(first_k_flag.value_or(4096), n);
        const auto t1 = std::chrono::steady_clock::now();
        const auto firing =
            firing_stats(*model, static_cast<std::size_t>(samples), first_k, static_cast<std::size_t>(batch));
        const double sample_seconds = seconds_since(t1);
        const auto sup = superposition_stats(model->feature_vectors());
        io::Json out = {{"num_features", n},
                        {"hidden_dim", model->hidden_dim()},
                        {"seed", model->seed()},
                        {"true_l0", firing.true_l0},
                        {"true_l0_first_k", firing.true_l0_first_k},
                        {"first_k", first_k},
                        {"samples", firing.samples},
                        {"per_depth_l0", firing.per_depth_sum},
                        {"rho_mm", sup.rho_mm},
                        {"abs_cos_p95_mean", sup.mean_p95},
                        {"abs_cos_p99_mean", sup.mean_p99},
                        {"mean_abs_cos", sup.mean_abs_cos},
                        {"hierarchical_features", model->hierarchy().num_hierarchical_features()},
                        {"clamped_probabilities", model->clamped_probabilities()},
                        {"build_seconds", build_seconds},
                        {"samples_per_second", double(samples) / sample_seconds}};
        if (const auto path = args.text("--firing-rates")) {
          const io::Json rates = {{"samples", firing.samples}, {"firing_rates", firing.realised_rate}};
          io::write_file_atomically(*path, [&](std::ostream& os) { os << rates.dump() << '\n'; });
        }
        std::printf("%s\n", out.dump(2).c_str());
      }
      return 0;
    } catch (const UsageError&) {
      throw;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "synthsae model: %s\n", e.what());
      return 1;
    }
  } catch (const UsageError& e) {
    std::fprintf(stderr, "synthsae model: %s\n\n", e.what());
    print_usage(stderr);
    return 2;
  }
}

}  // namespace synthsae::cli
