// synthsae train --model (PRESET | DIR) --arch NAME [--k N | --l1 X | --target-l0 N] [--width N]
//                [--samples N] [--batch N] [--lr X] [--seed N] [--eval-every N] [--eval-samples N]
//                [--checkpoint-every N] [--resume DIR] --out DIR
// The architecture name picks one of a fixed list of instantiations, here, once.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <synthsae/io/sae_files.hpp>
#include <synthsae/metrics/evaluate.hpp>
#include <synthsae/sae/gated_sae.hpp>
#include <synthsae/sae/matching_pursuit.hpp>
#include <synthsae/train/callbacks.hpp>

#include "cli_args.hpp"
#include "commands.hpp"
#include "output_dir.hpp"
#include "train_request.hpp"
#include "world_arg.hpp"

namespace synthsae::cli {

namespace {

constexpr const char* kTrainUsage =
    "usage: synthsae train --model (PRESET | DIR) --arch NAME --out DIR\n"
    "                      [--k N | --l1 X | --target-l0 N] [--width N] [--samples N] [--batch N]\n"
    "                      [--lr X] [--seed N] [--eval-every N] [--eval-samples N]\n"
    "                      [--checkpoint-every N] [--resume DIR]\n"
    "\n"
    "  --arch NAME          standard | topk | batchtopk | matryoshka_batchtopk | jumprelu | gated |\n"
    "                       matching_pursuit\n"
    "  --k N                active latents per sample for the TopK family, selections for\n"
    "                       matching_pursuit (default 25)\n"
    "  --l1 X               L1 coefficient for standard and gated (default 2.0, warmed up over the\n"
    "                       first third)\n"
    "  --target-l0 N        autotune the L1 (standard, gated) or L0 (jumprelu) coefficient to this L0\n"
    "  --width N            SAE latents (default: num_features / 4)\n"
    "  --samples N          training samples (default 2,000,000)\n"
    "  --batch N            batch size (default 1024)\n"
    "  --lr X               Adam learning rate (default 3e-4)\n"
    "  --seed N             SAE initialisation seed (default 0)\n"
    "  --eval-every N       ground-truth evaluation (16,384 samples) every N steps into metrics.csv\n"
    "                       (default 0: final evaluation only)\n"
    "  --eval-samples N     samples per evaluation (default 100,000)\n"
    "  --checkpoint-every N checkpoint every N steps into OUT/checkpoint\n"
    "  --resume DIR         continue from a checkpoint directory\n"
    "  --out DIR            cfg.json, sae_weights.safetensors (SAELens layout), eval_stats.json,\n"
    "                       metrics.csv, runner_config.json\n";



/// Training statistics every 100 steps and ground-truth evaluations every eval_every steps,
/// both into metrics.csv (evaluation columns empty on plain rows).
template <class SaeT>
struct MetricsCsv {
  std::ofstream file;
  SaeT* sae = nullptr;
  SyntheticModel* world = nullptr;
  long eval_every = 0;
  std::size_t eval_samples = 0, batch = 0;

  template <class Tr>
  void on_step(const StepInfo& i, Tr&) {
    const bool eval_now = eval_every > 0 && i.step % eval_every == 0;
    if (i.step % 100 != 0 && !eval_now && i.step != i.total_steps) return;
    file << i.step << ',' << i.samples << ',' << i.losses.total() << ',' << i.losses.mse << ',' << i.l0 << ',' << i.dead_latents << ','
         << i.lr << ',' << i.coefficient << ',' << i.elapsed_seconds;
    if (eval_now) {
      EvalOptions o;
      o.samples = std::min<std::size_t>(eval_samples, 16384);  // periodic: a quick look; the final evaluation uses all
      o.batch = batch;
      const io::Json r = evaluate_all(*sae, *world, o);
      file << ',' << r["mcc"].get<double>() << ',' << r["uniqueness"].get<double>() << ',' << r["explained_variance"].get<double>() << ','
           << r["classification"]["f1_score"].get<double>() << ',' << r["sae_l0"].get<double>();
    } else {
      file << ",,,,,";
    }
    file << '\n';
    file.flush();
  }
};

template <class SaeT>
io::Json train_and_save(SaeT sae, SyntheticModel& world, const TrainRequest& a, TrainerConfig cfg, const io::Json& runner) {
  StagedDirectory out(a.out);
  Trainer trainer(sae, world, cfg);
  if (a.resume) trainer.load_checkpoint(*a.resume);
  ProgressDisplay progress;
  MetricsCsv<SaeT> csv;
  csv.file.open(out.path() / "metrics.csv");
  if (!csv.file) throw IoError((out.path() / "metrics.csv").string(), "cannot open for writing");
  csv.file << "step,samples,loss,mse,l0,dead_latents,lr,coefficient,seconds,mcc,uniqueness,explained_variance,f1_score,eval_sae_l0\n";
  csv.sae = &sae, csv.world = &world, csv.eval_every = a.eval_every, csv.eval_samples = a.eval_samples, csv.batch = a.batch;
  PeriodicCheckpoint checkpoints{a.out / "checkpoint", a.checkpoint_every};
  const StepInfo last = trainer.fit(progress, csv, checkpoints);
  csv.file.close();

  EvalOptions eval;
  eval.samples = a.eval_samples;
  eval.batch = a.batch;
  const auto stats = evaluate_all(sae, world, eval);
  io::write_json_file(out.path() / "eval_stats.json", stats);
  io::save_sae(export_inference(sae), out.path(), {{"synthsae_architecture", a.arch}, {"synthetic_model", a.model}});
  io::write_json_file(out.path() / "runner_config.json", runner);
  out.commit();
  io::Json result = stats;
  result["seconds"] = last.elapsed_seconds;
  return result;
}

}  // namespace

/// The reference's integral gain 3e-4 is tuned for 195,312 steps; shorter runs get the same
/// total adjustment capacity (capped at 0.05 per step).
double autotune_gain(long total_steps) {
  return std::min(0.05, 3e-4 * 195312.0 / double(std::max<long>(total_steps, 1)));
}

/// The reference's L0 smoothing (0.99, ~100 steps) is 0.05 % of its run; a short run keeps that
/// proportion (at least 5 steps), or the smoothed L0 lags the real one by the whole approach and
/// the controller overshoots.
double autotune_smoothing(long total_steps) {
  const double steps = std::max(5.0, 100.0 * double(total_steps) / 195312.0);
  return std::min(0.99, 1.0 - 1.0 / steps);
}

L0AutotunerConfig autotune_config(double target, long start, long total_steps) {
  L0AutotunerConfig c{target, start, 10, autotune_gain(total_steps), 1e-2, 0};
  c.smoothing = autotune_smoothing(total_steps);
  return c;
}

io::Json train_one(TrainRequest a, SyntheticModel& world) {
    world.set_position(0);  // every SAE trained on a world sees the same sample stream
    const std::size_t d = world.hidden_dim();
    if (a.width == 0) a.width = std::max<std::size_t>(1, world.num_features() / 4);
    if (a.k > static_cast<int>(a.width)) throw UsageError("--k = " + std::to_string(a.k) + ": larger than the width " + std::to_string(a.width));
    TrainerConfig cfg;
    cfg.training_samples = a.samples;
    cfg.batch_size = a.batch;
    cfg.lr.lr = a.lr;
    const long total = static_cast<long>(a.samples / a.batch);
    // The reference's 1,000-step dead window is 0.5 % of its 195,312 steps; a short run would
    // never see a dead latent (and AuxK would never act), so the window shrinks with the run.
    cfg.dead_feature_window = std::clamp<long>(total / 20, 10, 1000);
    io::Json runner = {{"model", a.model},       {"architecture", a.arch}, {"d_in", d},          {"d_sae", a.width},
                       {"training_samples", a.samples}, {"batch_size", a.batch}, {"lr", a.lr}, {"seed", a.seed},
                       {"eval_samples", a.eval_samples}, {"eval_every", a.eval_every},
                       {"dead_feature_window", cfg.dead_feature_window}};
    if (a.arch == "standard" || a.arch == "gated") {
      cfg.coefficient_warm_up_steps = total / 3;
      if (a.target_l0) cfg.autotune = autotune_config(*a.target_l0, total / 3, total);
      runner["l1_coefficient"] = a.l1;
      runner["l1_warm_up_steps"] = total / 3;
      if (a.arch == "gated") return train_and_save(GatedSae<>(d, a.width, L1Penalty{a.l1}, 0.1, a.seed), world, a, cfg, runner);
      return train_and_save(StandardSae<>(d, a.width, Relu{}, L1Penalty{a.l1}, {}, {}, 0.1, a.seed), world, a, cfg, runner);
    }
    if (a.arch == "jumprelu") {  // the v2 recipe: step L0, bandwidth 1, threshold 1, decoder norm 0.5
      cfg.normalize_activations = true;
      cfg.norm_estimate_batches = 20;
      if (a.target_l0) cfg.autotune = autotune_config(*a.target_l0, 0, total);
      runner["l0_coefficient"] = 1.0;
      runner["jumprelu_bandwidth"] = 1.0;
      runner["jumprelu_init_threshold"] = 1.0;
      return train_and_save(JumpReluSae<>(d, a.width, JumpRelu{1.0, 1.0}, L0StepPenalty{1.0, 1.0}, {}, {}, 0.5, a.seed), world, a, cfg, runner);
    }
    runner["k"] = a.k;
    if (a.arch == "matching_pursuit") {  // the benchmark's settings: L0 selections, no early stops
      runner["max_iterations"] = a.k;
      return train_and_save(MatchingPursuitSae<>(d, a.width, MatchingPursuit{a.k, 0.0, false}, a.seed), world, a, cfg, runner);
    }
    if (a.arch == "topk") return train_and_save(TopKSae<>(d, a.width, TopK{a.k, true}, {}, AuxK{}, {}, 0.1, a.seed), world, a, cfg, runner);
    if (a.arch == "batchtopk") {
      return train_and_save(BatchTopKSae<>(d, a.width, BatchTopK{double(a.k), true, 0.01}, {}, AuxK{}, {}, 0.1, a.seed), world, a, cfg, runner);
    }
    // Matryoshka levels at width/32, width/8, width/2 (128, 512, 2048 for a width of 4096) and
    // the per-level auxiliary loss, as the paper's sweeps train it.
    std::vector<int> widths;
    for (std::size_t div : {32u, 8u, 2u})
      if (a.width / div >= 1 && (widths.empty() || int(a.width / div) > widths.back())) widths.push_back(int(a.width / div));
    runner["matryoshka_widths"] = widths;
    runner["use_matryoshka_aux_loss"] = true;  // the paper sweeps' setting (SAELens's default is false)
    using PaperMatryoshka = Sae<BatchTopK, NoPenalty, MatryoshkaAuxK, Matryoshka>;
    return train_and_save(PaperMatryoshka(d, a.width, BatchTopK{double(a.k), true, 0.01}, {}, MatryoshkaAuxK{1.0, widths}, Matryoshka{widths}, 0.1, a.seed),
                          world, a, cfg, runner);
}

int run_train(const std::vector<std::string>& argv) {
  try {
    const Args args(argv,
                    {"--model", "--arch", "--k", "--l1", "--target-l0", "--width", "--samples", "--batch", "--lr", "--seed", "--eval-every",
                     "--eval-samples", "--checkpoint-every", "--resume", "--out"},
                    {});
    if (args.help()) {
      std::fputs(kTrainUsage, stdout);
      return 0;
    }
    TrainRequest a;
    if (!args.has("--model")) throw UsageError("--model is required");
    if (!args.has("--arch")) throw UsageError("--arch is required");
    if (!args.has("--out")) throw UsageError("--out is required");
    a.model = *args.text("--model");
    a.arch = *args.text("--arch");
    a.out = *args.text("--out");
    if (auto r = args.text("--resume")) a.resume = *r;
    a.k = static_cast<int>(args.integer("--k", 1, kMaxRowTopK).value_or(25));
    a.l1 = args.number("--l1", 0, 1e6).value_or(2.0);
    if (auto t = args.number("--target-l0", 1e-3, 1e6)) a.target_l0 = *t;
    a.width = static_cast<std::size_t>(args.integer("--width", 1, 1 << 24).value_or(0));
    a.samples = static_cast<std::size_t>(args.integer("--samples", 1, std::int64_t(1) << 40).value_or(2'000'000));
    a.batch = static_cast<std::size_t>(args.integer("--batch", 1, 1 << 20).value_or(1024));
    a.lr = args.number("--lr", 1e-12, 10).value_or(3e-4);
    a.seed = static_cast<std::uint64_t>(args.integer("--seed", 0, std::int64_t(1) << 62).value_or(0));
    a.eval_every = static_cast<long>(args.integer("--eval-every", 0, std::int64_t(1) << 40).value_or(0));
    a.eval_samples = static_cast<std::size_t>(args.integer("--eval-samples", 1, std::int64_t(1) << 40).value_or(100'000));
    a.checkpoint_every = static_cast<long>(args.integer("--checkpoint-every", 0, std::int64_t(1) << 40).value_or(0));
    if (!known_architecture(a.arch)) throw UsageError("--arch = " + a.arch + ": choose one of " + architecture_list());
    if (args.has("--k") && coefficient_architecture(a.arch)) {
      throw UsageError("--k applies to topk, batchtopk, matryoshka_batchtopk and matching_pursuit, not " + a.arch);
    }
    if (args.has("--l1") && a.arch != "standard" && a.arch != "gated") throw UsageError("--l1 applies to standard and gated only");
    if (a.target_l0 && !coefficient_architecture(a.arch)) {
      throw UsageError("--target-l0 applies to standard, gated and jumprelu (use --k for the TopK family)");
    }
    if (a.samples < a.batch) throw UsageError("--samples = " + std::to_string(a.samples) + ": must be at least one batch (" + std::to_string(a.batch) + ")");
    if (a.resume && !std::filesystem::is_directory(*a.resume)) throw UsageError("--resume = " + a.resume->string() + ": not a directory");

    try {
      SyntheticModel world = world_from_argument(a.model);
      io::Json result = train_one(a, world);
      result.erase("seconds");  // stdout is exactly eval_stats.json's content
      std::printf("%s\n", result.dump(2).c_str());
      return 0;
    } catch (const UsageError&) {
      throw;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "synthsae train: %s\n", e.what());
      return 1;
    }
  } catch (const UsageError& e) {
    std::fprintf(stderr, "synthsae train: %s\n\n%s", e.what(), kTrainUsage);
    return 2;
  }
}

}  // namespace synthsae::cli
