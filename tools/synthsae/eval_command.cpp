// synthsae eval --model (PRESET | DIR) --sae DIR [--samples N] [--batch N] [--first-sample N]
#include <cstdio>
#include <limits>
#include <string>

#include <synthsae/metrics/evaluate.hpp>
#include <synthsae/saelens/sae_directory.hpp>

#include "cli_args.hpp"
#include "commands.hpp"
#include "world_arg.hpp"

namespace synthsae::cli {

namespace {
/// The usage text; the architectures come from the loader's list of inference forms.
std::string eval_usage() {
  return "usage: synthsae eval --model (PRESET | DIR) --sae DIR [--samples N] [--batch N]\n"
         "                     [--first-sample N]\n"
         "\n"
         "Prints the ground-truth metrics of an SAE saved in SAELens's layout (cfg.json +\n"
         "sae_weights.safetensors; architectures " +
         saelens::supported_inference_architectures() +
         "),\nours or SAELens's, as one JSON object with SAELens's keys. Defaults: 500,000 samples in\n"
         "batches of 1024, from global sample index 2^62 of the world's stream (a region training\n"
         "never reaches); --first-sample N starts elsewhere (independent evaluations: disjoint ranges).\n";
}
}  // namespace

int run_eval(const std::vector<std::string>& argv) {
  try {
    const Args args(argv, {"--model", "--sae", "--samples", "--batch", "--first-sample"}, {});
    if (args.help()) {
      std::fputs(eval_usage().c_str(), stdout);
      return 0;
    }
    if (!args.has("--model")) throw UsageError("--model is required");
    if (!args.has("--sae")) throw UsageError("--sae is required");
    EvalOptions opts;
    opts.samples = static_cast<std::size_t>(args.integer("--samples", 1, std::int64_t(1) << 40).value_or(500'000));
    opts.batch = static_cast<std::size_t>(args.integer("--batch", 1, 1 << 20).value_or(1024));
    if (const auto first = args.integer("--first-sample", 0, std::numeric_limits<std::int64_t>::max()))
      opts.first_sample = static_cast<std::uint64_t>(*first);
    const auto model = *args.text("--model");
    const auto sae_dir = *args.text("--sae");
    try {
      SyntheticModel world = world_from_argument(model);
      InferenceSae sae = saelens::load_sae(sae_dir);
      std::printf("%s\n", evaluate_all(sae, world, opts).dump(2).c_str());
      return 0;
    } catch (const UsageError&) {
      throw;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "synthsae eval: %s\n", e.what());
      return 1;
    }
  } catch (const UsageError& e) {
    std::fprintf(stderr, "synthsae eval: %s\n\n%s", e.what(), eval_usage().c_str());
    return 2;
  }
}

}  // namespace synthsae::cli
