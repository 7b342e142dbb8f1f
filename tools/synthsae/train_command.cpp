// synthsae train --model (PRESET | DIR) --arch NAME [--k N | --l1 X | --target-l0 N] [--width N]
//                [--samples N] [--batch N] [--lr X] [--seed N] [--eval-every N] [--eval-samples N]
//                [--checkpoint-every N] [--resume DIR] [--apply-b-dec-to-input BOOL] --out DIR
// The architecture name picks one entry of the library's list (synthsae/architectures.hpp).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include <algorithm>

#include <synthsae/architectures.hpp>
#include <synthsae/core/kernel_timer.hpp>
#include <synthsae/saelens/sae_directory.hpp>
#include <synthsae/metrics/evaluate.hpp>
#include <synthsae/train/callbacks.hpp>

#include "cli_args.hpp"
#include "commands.hpp"
#include "output_dir.hpp"
#include "train_request.hpp"
#include "world_arg.hpp"

namespace synthsae::cli {

namespace {

/// The usage text; the architecture names and who takes --l1 come from the library's list.
std::string train_usage() {
  std::string text =
      "usage: synthsae train --model (PRESET | DIR) --arch NAME --out DIR\n"
      "                      [--k N | --l1 X | --target-l0 N] [--width N] [--samples N] [--batch N]\n"
      "                      [--lr X] [--seed N] [--eval-every N] [--eval-samples N]\n"
      "                      [--checkpoint-every N] [--resume DIR] [--gemm-math M] [--screen-encoder]\n"
      "                      [--apply-b-dec-to-input true|false] [--normalize-activations MODE]\n"
      "                      [--timings FILE [--profile-kernels]]\n"
      "\n"
      "  --arch NAME          ARCHITECTURES\n"
      "  --k N                active latents per sample for the TopK family, selections for\n"
      "                       matching_pursuit (default 25)\n"
      "  --l1 X               L1 coefficient of L1_ARCHITECTURES (default: the recipe's,\n"
      "                       docs/architectures.md)\n"
      "  --target-l0 N        autotune the sparsity coefficient of TARGET_ARCHITECTURES to this L0\n"
      "  --width N            SAE latents (default: num_features / 4)\n"
      "  --samples N          training samples (default 2,000,000)\n"
      "  --batch N            batch size (default 1024)\n"
      "  --lr X               Adam learning rate (default 3e-4)\n"
      "  --seed N             seed of the SAE initialisation and of the training and evaluation\n"
      "                       sample stream (default 0: the world's own stream)\n"
      "  --eval-every N       ground-truth evaluation (16,384 samples) every N steps into metrics.csv\n"
      "                       (default 0: final evaluation only)\n"
      "  --eval-samples N     samples of the final evaluation (default 500,000, as SAELens's runner)\n"
      "  --checkpoint-every N checkpoint every N steps into OUT/checkpoint\n"
      "  --gemm-math M        fp32 | tf32 | bf16: GEMM arithmetic (default fp32); on the CPU\n"
      "                       bf16 on AMX tiles or AVX-512 BF16 where the CPU has them (else emulated), tf32 as fp32\n"
      "  --screen-encoder     batchtopk, matryoshka_batchtopk, topk: the encoder product in BF16 and the\n"
      "                       entries a selection can reach recomputed in FP32 (FP32 results at about\n"
      "                       the BF16 product's cost where the CPU has AMX tiles or AVX-512 BF16;\n"
      "                       docs/policies.md); with --gemm-math fp32 only\n"
      "  --resume DIR         continue from a checkpoint directory\n"
      "  --apply-b-dec-to-input B  true (default, as SAELens): the encoder sees x - b_dec;\n"
      "                       false: x itself (b_dec is then only the decoder's bias)\n"
      "  --normalize-activations MODE  SAELens's input normalisation while training (default: the\n"
      "                       recipe's, expected_average_only_in for jumprelu, none otherwise):\n"
      "                       expected_average_only_in | covariance_whitening: estimated from\n"
      "                       1,000 batches and folded into the saved weights;\n"
      "                       constant_norm_rescale | layer_norm: per row, kept in cfg.json and\n"
      "                       applied at inference (standard, jumprelu, matching_pursuit only)\n"
      "  --out DIR            cfg.json, sae_weights.safetensors, sparsity.safetensors (SAELens layout),\n"
      "                       eval_stats.json, metrics.csv, runner_config.json\n"
      "  --timings FILE       where the time went, as JSON: building the world, the training loop's\n"
      "                       phases (generation, steps, periodic evaluation), the final evaluation\n"
      "  --profile-kernels    add each Kokkos kernel's seconds and launches to --timings (the device\n"
      "                       is fenced around every kernel: slower, for finding where time goes)\n";
  auto put = [&](const std::string& slot, const std::string& value) {
    text.replace(text.find(slot), slot.size(), value);
  };
  put("TARGET_ARCHITECTURES", architectures::names_with([](auto k) { return k.target_l0; }));
  put("L1_ARCHITECTURES", architectures::names_with([](auto k) { return k.l1; }));
  put("ARCHITECTURES", architectures::name_list());
  return text;
}

/// One SAE's run: its trainer, periodic evaluations and metrics.csv while it trains, then the
/// final evaluation and the saved directory. It trains in pieces (advance) so that several runs
/// can take turns on one world, and each piece reads the run's own stream.
template <class SaeT>
class TypedTrainingRun final : public TrainingRun {
 public:
  TypedTrainingRun(SaeT sae, SyntheticModel& world, const TrainRequest& a, TrainerConfig cfg, io::Json runner,
                   std::uint64_t stream_seed)
      : a_(a),
        world_(world),
        stream_seed_(stream_seed),
        runner_(std::move(runner)),
        out_(a.out, {"cfg.json"}),
        sae_(std::move(sae)),
        trainer_(sae_, world, cfg) {
    if (a_.resume) {
      trainer_.load_checkpoint(*a_.resume);
      stream_seed_ = world.sampling_seed();  // the checkpoint's stream goes on
    }
    progress_.label = a_.progress_label;
    if (a_.progress_last_line_only) progress_.every_steps = std::numeric_limits<long>::max();
    csv_.path = out_.path() / "metrics.csv";
    csv_.eval_every = a_.eval_every;
    csv_.evaluate = [this](const StepInfo&) {
      const auto t0 = std::chrono::steady_clock::now();
      EvalOptions o;
      o.samples = std::min<std::size_t>(a_.eval_samples, 16384);  // periodic: a quick look; the final evaluation uses all
      o.batch = a_.batch;
      o.input_scale = trainer_.scaling_factor();  // not yet folded: scale in, unscale out, as the final one sees it
      o.whitening = &trainer_.whitening();        // likewise the whitening (empty without one)
      o.row_normalization = trainer_.row_normalization();  // and a per-row mode, which stays
      auto stats = evaluate_all(sae_, world_, o);
      periodic_seconds_ += seconds_since(t0);
      return stats;
    };
    checkpoints_ = PeriodicCheckpoint{a_.out / "checkpoint", a_.checkpoint_every};
  }

  std::uint64_t stream_seed() const override { return stream_seed_; }
  std::uint64_t next_sample() const override { return trainer_.next_sample(); }
  std::size_t batch_size() const override { return trainer_.config().batch_size; }
  long steps_left() const override { return trainer_.steps_left(); }

  void advance(long steps) override {
    const ScopedGemmMath gemm_math(a_.gemm_math);
    world_.set_sampling_seed(stream_seed_);
    last_ = trainer_.fit_steps(steps, progress_, csv_, checkpoints_);
  }

  io::Json finish() override {
    const ScopedGemmMath gemm_math(a_.gemm_math);  // the final evaluation follows the run's setting
    world_.set_sampling_seed(stream_seed_);
    const auto t_eval = std::chrono::steady_clock::now();
    EvalOptions eval;
    eval.samples = a_.eval_samples;
    eval.batch = a_.batch;
    eval.row_normalization = trainer_.row_normalization();
    const auto stats = evaluate_all(sae_, world_, eval);
    const double final_eval_seconds = seconds_since(t_eval);
    io::write_json_file(out_.path() / "eval_stats.json", stats);
    // SAELens's metadata after training: the last window's mean L0 and the dead latents.
    const std::vector<double> sparsity = trainer_.feature_sparsity();
    double window_l0 = 0;
    for (double f : sparsity) window_l0 += f;
    InferenceSae saved = export_inference(sae_);
    saved.normalization.mode = trainer_.row_normalization();  // a per-row mode is applied at inference
    saelens::save_sae(saved, out_.path(),
                      {{"training_architecture", a_.arch},
                       {"synthsae_architecture", a_.arch},
                       {"synthetic_model", a_.model},
                       {"l0", window_l0},
                       {"num_dead_features", trainer_.dead_latents()}});
    saelens::save_sparsity(trainer_.log_feature_sparsity(), out_.path());
    io::write_json_file(out_.path() / "runner_config.json", runner_);
    out_.commit();
    io::Json result = stats;
    result["seconds"] = last_.elapsed_seconds;
    // Where the time went: the training loop's own phases, its periodic evaluations and the rest
    // of the loop (progress, metrics.csv, checkpoints), then the final evaluation.
    const auto& phases = trainer_.phase_seconds();
    result["phase_seconds"] = {{"generation", phases.generation},
                               {"steps", phases.step},
                               {"periodic_evaluation", periodic_seconds_},
                               {"loop_other", std::max(0.0, last_.elapsed_seconds - phases.generation - phases.step -
                                                                periodic_seconds_)},
                               {"final_evaluation", final_eval_seconds}};
    return result;
  }

 private:
  TrainRequest a_;
  SyntheticModel& world_;
  std::uint64_t stream_seed_;
  io::Json runner_;
  StagedDirectory out_;
  SaeT sae_;  // before trainer_, which holds a reference to it
  Trainer<SaeT> trainer_;
  ProgressDisplay progress_;
  CsvLog csv_;
  PeriodicCheckpoint checkpoints_;
  double periodic_seconds_ = 0;
  StepInfo last_;
};

/// runner_config.json in the schema of SAELens's SyntheticSAERunnerConfig.to_dict (its keys with
/// this run's values), the SAE's training fields under "sae" as SAELens nests them, and what only
/// synthsae has under "synthsae".
io::Json runner_config_json(const TrainRequest& a, const architectures::Request& r, const TrainerConfig& cfg,
                            const SyntheticModel& world, const io::Json& sae_training_fields) {
  io::Json sae = {{"d_in", r.d_in},
                  {"d_sae", a.width},
                  {"dtype", "float32"},
                  {"device", "cpu"},
                  {"apply_b_dec_to_input", a.apply_b_dec_to_input},
                  {"normalize_activations", saelens_name(cfg.normalization)},
                  {"reshape_activations", "none"}};
  sae.update(sae_training_fields);
  sae["architecture"] = a.arch;
  io::Json runner;
  // A directory is recorded by its path, a preset by its config, as SAELens records either.
  runner["synthetic_model"] = std::filesystem::is_directory(a.model) ? io::Json(a.model) : world.config().to_json();
  runner["sae"] = sae;
  runner["training_samples"] = a.samples;
  runner["batch_size"] = a.batch;
  runner["lr"] = cfg.lr.lr;
  runner["lr_warm_up_steps"] = cfg.lr.warm_up_steps;
  runner["lr_decay_steps"] = cfg.lr.decay_steps;
  runner["lr_scheduler_name"] = lr_scheduler_name(cfg.lr.kind);
  runner["lr_end"] = cfg.lr.lr_end < 0 ? cfg.lr.lr / 10 : cfg.lr.lr_end;
  runner["adam_beta1"] = cfg.adam.beta1;
  runner["adam_beta2"] = cfg.adam.beta2;
  runner["n_restart_cycles"] = cfg.lr.restart_cycles;
  runner["device"] = host_accessible_v<MemSpace> ? "cpu" : "cuda";
  // SAELens's nearest setting to BF16 GEMMs: the SAE's forward and backward under
  // torch.autocast(bfloat16) (which also rounds the products' outputs to BF16; ours keep FP32).
  runner["autocast_sae"] = a.gemm_math == GemmMath::bf16;
  runner["autocast_data"] = false;
  runner["n_checkpoints"] = 0;
  runner["checkpoint_path"] = nullptr;
  runner["save_final_checkpoint"] = false;
  runner["output_path"] = a.out.string();
  runner["save_synthetic_model"] = false;
  runner["eval_frequency"] = a.eval_every;
  runner["eval_samples"] = a.eval_samples;
  runner["run_final_eval"] = true;
  runner["dead_feature_window"] = cfg.dead_feature_window;
  runner["feature_sampling_window"] = cfg.feature_sampling_window;
  runner["n_batches_for_norm_estimate"] = cfg.norm_estimate_batches;
  // SAELens's LoggingConfig defaults to wandb; this run logged nowhere, and the file loads in
  // SAELens's SyntheticSAERunnerConfig.from_dict without asking for a wandb key.
  runner["logger"] = {{"log_to_wandb", false}};
  runner["synthsae"] = {{"model", a.model},
                        {"seed", a.seed},
                        {"checkpoint_every", a.checkpoint_every},
                        {"gemm_math", gemm_math_name(a.gemm_math)},
                        {"screen_encoder", a.screen_encoder}};
  return runner;
}

}  // namespace

void check_architecture_knobs(const std::string& arch, bool k_given, bool l1_given, bool target_l0_given) {
  if (!architectures::known(arch)) {
    throw UsageError("--arch = " + arch + ": choose one of " + architectures::name_list());
  }
  const architectures::Knobs knobs = architectures::knobs_of(arch);
  if (k_given && !knobs.k)
    throw UsageError("--k applies to " + architectures::names_with([](auto k) { return k.k; }) + ", not " + arch);
  if (l1_given && !knobs.l1)
    throw UsageError("--l1 applies to " + architectures::names_with([](auto k) { return k.l1; }) + " only");
  if (target_l0_given && !knobs.target_l0) {
    throw UsageError("--target-l0 applies to " + architectures::names_with([](auto k) { return k.target_l0; }) +
                     " (use --k for the TopK family)");
  }
}

std::string bf16_products_where() {
  if constexpr (!host_accessible_v<MemSpace>) return "CUDA tensor cores";
  return gemm_impl::host_bf16_unit_name(gemm_impl::host_bf16_unit());
}

namespace {
/// Whether this host emulates its BF16 products (false in a CUDA build); SYNTHSAE_HOST_BF16
/// outside its values is a UsageError.
bool host_bf16_emulated() {
  try {
    if constexpr (host_accessible_v<MemSpace>) return gemm_impl::host_bf16_unit() == gemm_impl::HostBf16Unit::emulated;
  } catch (const ConfigError& e) {
    throw UsageError(e.what());
  }
  return false;
}
}  // namespace

bool screen_encoder_argument(bool given, GemmMath math) {
  if (!given) return false;
  if (math != GemmMath::fp32)
    throw UsageError("--screen-encoder with --gemm-math " + std::string(gemm_math_name(math)) +
                     ": the screen gives FP32 results; use it with --gemm-math fp32");
  if (!host_accessible_v<MemSpace>) throw UsageError("--screen-encoder: CPU builds only (this build runs on CUDA)");
  if (host_bf16_emulated())
    std::fputs("synthsae: --screen-encoder: this CPU has neither AMX tiles nor AVX-512 BF16 (or "
               "SYNTHSAE_HOST_BF16=emulated): the BF16 product is emulated, and the screened step slower "
               "than the plain FP32 one\n",
               stderr);
  return true;
}

GemmMath gemm_math_argument(const std::string& text) {
  const auto math = parse_gemm_math(text);
  if (!math) throw UsageError("--gemm-math = " + text + ": choose fp32, tf32 or bf16");
  if (*math == GemmMath::bf16 && host_bf16_emulated())
    std::fprintf(stderr,
                 "synthsae: --gemm-math bf16: this CPU has neither AMX tiles nor AVX-512 BF16 (or "
                 "SYNTHSAE_HOST_BF16=emulated), so the BF16 products are emulated: the same arithmetic, "
                 "slower than fp32\n");
  return *math;
}

std::unique_ptr<TrainingRun> start_training(TrainRequest a, SyntheticModel& world) {
  // Seed 0 reads the world's own stream; another seed another stream (recipes::data_stream_seed).
  const std::uint64_t stream_seed = recipes::data_stream_seed(world.default_sampling_seed(), a.seed);
  world.set_sampling_seed(stream_seed);
  world.set_position(0);
  if (a.width == 0) a.width = std::max<std::size_t>(1, world.num_features() / 4);
  if (a.k > static_cast<int>(a.width))
    throw UsageError("--k = " + std::to_string(a.k) + ": larger than the width " + std::to_string(a.width));
  TrainerConfig cfg = recipes::trainer_config(a.samples, a.batch, a.lr);
  cfg.gemm_math = a.gemm_math;
  const ScopedGemmMath gemm_math(a.gemm_math);
  architectures::Request r;
  r.d_in = world.hidden_dim();
  r.width = a.width;
  r.k = a.k;
  r.l1 = a.l1;
  r.target_l0 = a.target_l0;
  r.total_steps = cfg.total_steps();
  r.seed = a.seed;
  std::unique_ptr<TrainingRun> run;
  const bool known = architectures::visit(a.arch, [&](auto arch) {
    using Arch = decltype(arch);
    Arch::configure(cfg, r);
    if (a.normalization) cfg.normalization = *a.normalization;
    if constexpr (!TrainsBehindRowNormalization<typename Arch::sae_type>) {
      if (inference::RuntimeNormalization(cfg.normalization).acts()) {
        throw UsageError("--normalize-activations = " + std::string(saelens_name(cfg.normalization)) +
                         ": per-row modes train standard, jumprelu and matching_pursuit only; " + a.arch +
                         " has a loss term (AuxK's residual, Matryoshka's inner reconstructions or Gated's gate "
                         "reconstruction) that cannot be mapped back to the raw rows");
      }
    }
    io::Json sae_fields = io::Json::object();
    architectures::describe_recipe_fields(sae_fields, typename Arch::recipe{});
    Arch::describe(sae_fields, r);
    // Every field of the request comes from a flag: a value the SAE refuses is a usage error.
    auto sae = [&] {
      try {
        return Arch::make(r);
      } catch (const ConfigError& e) {
        throw UsageError(e.what());
      }
    }();
    sae.set_apply_b_dec_to_input(a.apply_b_dec_to_input);
    if (a.screen_encoder) {
      using Sae = std::decay_t<decltype(sae)>;
      if constexpr (requires { requires Sae::supports_encoder_screening; }) {
        sae.set_encoder_screening(true);
      } else if (a.screen_where_supported) {
        a.screen_encoder = false;  // runner_config.json records what this run did
      } else {
        throw UsageError("--screen-encoder: " + a.arch +
                         " has no selection to screen (batchtopk, matryoshka_batchtopk and topk have; "
                         "float, CPU builds)");
      }
    }
    io::Json runner = runner_config_json(a, r, cfg, world, sae_fields);
    run = std::make_unique<TypedTrainingRun<std::decay_t<decltype(sae)>>>(std::move(sae), world, a, cfg, std::move(runner),
                                                                     stream_seed);
  });
  if (!known) throw UsageError("--arch = " + a.arch + ": choose one of " + architectures::name_list());
  return run;
}

io::Json train_one(TrainRequest a, SyntheticModel& world) {
  auto run = start_training(std::move(a), world);
  run->advance(-1);
  return run->finish();
}

ErrorSaeSpec parse_error_sae_spec(const std::string& text) {
  auto bad = [&](const std::string& why) { return UsageError("--train-on-errors = " + text + ": " + why); };
  const std::vector<std::string> parts = split_list(text);
  auto count = [&](const std::string& v, const char* what, double lo, double hi) {
    const auto x = parse_number(v, lo, hi);
    if (!x) throw bad(std::string(what) + " '" + v + "' must be a number in [" + show(lo) + ", " + show(hi) + "]");
    return *x;
  };
  auto whole = [&](const std::string& v, const char* what, double lo, double hi) {
    const double x = count(v, what, lo, hi);
    if (x != std::floor(x)) throw bad(std::string(what) + " '" + v + "' must be a whole number");
    return x;
  };
  ErrorSaeSpec spec;
  const auto colon = parts[0].find(':');
  if (colon == std::string::npos) throw bad("start with ARCH:WIDTH, e.g. topk:256,k=4");
  spec.arch = parts[0].substr(0, colon);
  if (!architectures::known(spec.arch)) throw bad("unknown architecture '" + spec.arch + "': " + architectures::name_list());
  spec.width = static_cast<std::size_t>(whole(parts[0].substr(colon + 1), "WIDTH", 1, 1 << 24));
  bool l1_given = false;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const auto eq = parts[i].find('=');
    if (eq == std::string::npos) throw bad("'" + parts[i] + "' is not KEY=VALUE");
    const std::string key = parts[i].substr(0, eq), v = parts[i].substr(eq + 1);
    if (key == "k") spec.k = static_cast<int>(whole(v, "k", 1, 1 << 24)), spec.k_given = true;
    else if (key == "l1") spec.l1 = count(v, "l1", 0, 1e6), l1_given = true;
    else if (key == "samples") spec.samples = static_cast<std::size_t>(whole(v, "samples", 1, 1e13));
    else if (key == "batch") spec.batch = static_cast<std::size_t>(whole(v, "batch", 1, 1 << 20));
    else if (key == "lr") spec.lr = count(v, "lr", 1e-12, 10);
    else if (key == "seed") spec.seed = static_cast<std::uint64_t>(whole(v, "seed", 0, 4.6e18));
    else if (key == "fit") spec.fit_rows = static_cast<std::uint64_t>(whole(v, "fit", 2, 1e12));
    else if (key == "score") spec.score_rows = static_cast<std::uint64_t>(whole(v, "score", 1, 1e12));
    else throw bad("unknown key '" + key + "': choose k, l1, samples, batch, lr, seed, fit or score");
  }
  if (spec.k_given && static_cast<std::size_t>(spec.k) > spec.width) throw bad("k = " + std::to_string(spec.k) + " is larger than the width");
  try {
    check_architecture_knobs(spec.arch, spec.k_given, l1_given, false);
  } catch (const UsageError& e) {
    throw bad(e.what());
  }
  if (!spec.k_given) spec.k = static_cast<int>(std::min<std::size_t>(25, spec.width));
  if (spec.samples < spec.batch) throw bad("samples must be at least one batch (" + std::to_string(spec.batch) + ")");
  return spec;
}

analysis::ErrorSaeReport train_error_sae(const ErrorSaeSpec& spec, SyntheticModel& world,
                                         const analysis::ErrorComponentMap& map, const analysis::ErrorSaeOptions& options,
                                         const std::filesystem::path& save_dir) {
  TrainerConfig cfg = recipes::trainer_config(spec.samples, spec.batch, spec.lr);
  architectures::Request r;
  r.d_in = world.hidden_dim(), r.width = spec.width, r.k = spec.k, r.l1 = spec.l1;
  r.total_steps = cfg.total_steps(), r.seed = spec.seed;
  analysis::ErrorSaeReport report;
  architectures::visit(spec.arch, [&](auto arch) {
    using Arch = decltype(arch);
    Arch::configure(cfg, r);
    // The whitening would be estimated from raw rows, not the component the SAE sees.
    if (cfg.normalization == InputNormalization::covariance_whitening) cfg.normalization = InputNormalization::none;
    auto sae = Arch::make(r);
    InferenceSae saved;
    report = analysis::train_on_error_component(sae, world, map, cfg, options, &saved);
    saelens::save_sae(saved, save_dir,
                      {{"trained_on", std::string(analysis::component_name(map.component())) + " error"}});
  });
  return report;
}

/// --timings: the world's build, the loop's phases and the final evaluation in seconds, the
/// loop's samples per second, and with --profile-kernels every kernel label's seconds and launches
/// (largest first; the fences it needs slow the run, so read shares, not totals, from it).
void write_timings(const std::filesystem::path& path, const TrainRequest& a, double world_seconds,
                   const io::Json& result, KernelTimer* kernels) {
  io::Json t;
  t["world_seconds"] = world_seconds;
  t["training_seconds"] = result.at("seconds");
  t["phase_seconds"] = result.at("phase_seconds");
  t["samples"] = a.samples;
  t["batch"] = a.batch;
  t["gemm_math"] = std::string(gemm_math_name(a.gemm_math));
  if (a.gemm_math == GemmMath::bf16) t["bf16_products"] = bf16_products_where();
  const double loop = result.at("seconds").get<double>();
  t["samples_per_second"] = loop > 0 ? double(a.samples) / loop : 0.0;
  if (kernels) {
    kernels->stop();
    std::vector<std::pair<std::string, KernelTimer::Entry>> rows(kernels->entries().begin(), kernels->entries().end());
    std::sort(rows.begin(), rows.end(), [](const auto& x, const auto& y) { return x.second.seconds > y.second.seconds; });
    io::Json list = io::Json::array();
    for (const auto& [label, e] : rows) list.push_back({{"label", label}, {"seconds", e.seconds}, {"calls", e.calls}});
    t["kernels"] = std::move(list);
    t["kernels_total_seconds"] = kernels->total_seconds();
  }
  io::write_json_file(path, t);
}

int run_train(const std::vector<std::string>& argv) {
  try {
    const Args args(
        argv,
        {"--model", "--arch", "--k", "--l1", "--target-l0", "--width", "--samples", "--batch", "--lr", "--seed",
         "--eval-every", "--eval-samples", "--checkpoint-every", "--resume", "--gemm-math", "--apply-b-dec-to-input",
         "--normalize-activations", "--out", "--timings"},
        {"--profile-kernels", "--screen-encoder"});
    if (args.help()) {
      std::fputs(train_usage().c_str(), stdout);
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
    a.k = static_cast<int>(args.integer("--k", 1, 1 << 24).value_or(25));
    if (auto l1 = args.number("--l1", 0, 1e6)) a.l1 = *l1;
    if (auto t = args.number("--target-l0", 1e-3, 1e6)) a.target_l0 = *t;
    a.width = static_cast<std::size_t>(args.integer("--width", 1, 1 << 24).value_or(0));
    a.samples = static_cast<std::size_t>(args.integer("--samples", 1, std::int64_t(1) << 40).value_or(2'000'000));
    a.batch = static_cast<std::size_t>(args.integer("--batch", 1, 1 << 20).value_or(1024));
    a.lr = args.number("--lr", 1e-12, 10).value_or(3e-4);
    a.seed = static_cast<std::uint64_t>(args.integer("--seed", 0, std::int64_t(1) << 62).value_or(0));
    a.eval_every = static_cast<long>(args.integer("--eval-every", 0, std::int64_t(1) << 40).value_or(0));
    a.eval_samples =
        static_cast<std::size_t>(args.integer("--eval-samples", 1, std::int64_t(1) << 40).value_or(500'000));
    a.checkpoint_every = static_cast<long>(args.integer("--checkpoint-every", 0, std::int64_t(1) << 40).value_or(0));
    if (auto m = args.text("--gemm-math")) a.gemm_math = gemm_math_argument(*m);
    a.screen_encoder = screen_encoder_argument(args.has("--screen-encoder"), a.gemm_math);
    if (auto v = args.text("--apply-b-dec-to-input")) {
      if (*v != "true" && *v != "false")
        throw UsageError("--apply-b-dec-to-input = " + *v + ": choose true or false");
      a.apply_b_dec_to_input = *v == "true";
    }
    if (auto v = args.text("--normalize-activations")) {
      a.normalization = parse_input_normalization(*v);
      if (!a.normalization)
        throw UsageError("--normalize-activations = " + *v +
                         ": choose none, expected_average_only_in, covariance_whitening, "
                         "constant_norm_rescale or layer_norm");
    }
    check_architecture_knobs(a.arch, args.has("--k"), args.has("--l1"), a.target_l0.has_value());
    if (a.samples < a.batch)
      throw UsageError("--samples = " + std::to_string(a.samples) + ": must be at least one batch (" +
                       std::to_string(a.batch) + ")");
    if (a.resume && !std::filesystem::is_directory(*a.resume))
      throw UsageError("--resume = " + a.resume->string() + ": not a directory");

    std::optional<std::filesystem::path> timings;
    if (auto t = args.text("--timings")) timings = *t;
    if (args.has("--profile-kernels") && !timings) throw UsageError("--profile-kernels needs --timings FILE");

    try {
      std::optional<KernelTimer> kernels;
      if (args.has("--profile-kernels")) kernels.emplace();
      const auto t_world = std::chrono::steady_clock::now();
      SyntheticModel world = world_from_argument(a.model);
      Kokkos::fence();
      const double world_seconds = seconds_since(t_world);
      io::Json result = train_one(a, world);
      if (timings) write_timings(*timings, a, world_seconds, result, kernels ? &*kernels : nullptr);
      result.erase("seconds");  // stdout is exactly eval_stats.json's content
      result.erase("phase_seconds");
      std::printf("%s\n", result.dump(2).c_str());
      return 0;
    } catch (const UsageError&) {
      throw;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "synthsae train: %s\n", e.what());
      return 1;
    }
  } catch (const UsageError& e) {
    std::fprintf(stderr, "synthsae train: %s\n\n%s", e.what(), train_usage().c_str());
    return 2;
  }
}

}  // namespace synthsae::cli
