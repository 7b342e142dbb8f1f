#pragma once
// What `synthsae train` (and each run of `synthsae bench`) trains: one SAE on one world. The
// architectures and what each accepts come from the library's list (synthsae/architectures.hpp).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <synthsae/analysis/error_component_saes.hpp>
#include <synthsae/core/gemm_types.hpp>
#include <synthsae/io/json.hpp>
#include <synthsae/train/input_whitening.hpp>
#include <synthsae/world/synthetic_model.hpp>

namespace synthsae::cli {

struct TrainRequest {
  std::string model, arch;
  std::filesystem::path out;
  std::optional<std::filesystem::path> resume;
  int k = 25;
  std::optional<double> l1;  ///< the architecture's recipe when unset
  std::optional<double> target_l0;
  std::size_t width = 0, samples = 2'000'000, batch = 1024, eval_samples = 500'000;
  double lr = 3e-4;
  std::uint64_t seed = 0;
  long eval_every = 0, checkpoint_every = 0;
  GemmMath gemm_math = GemmMath::fp32;
  bool apply_b_dec_to_input = true;  ///< SAELens's flag: the encoder sees x - b_dec (or x)
  /// --screen-encoder: the sparse step's encoder product in BF16, FP32 where the selections read
  /// it (Sae::set_encoder_screening). An architecture without it is a usage error, unless
  /// `screen_where_supported` (bench: the other architectures train as usual).
  bool screen_encoder = false;
  bool screen_where_supported = false;
  /// SAELens's normalize_activations for training; unset: the architecture's recipe.
  std::optional<InputNormalization> normalization;
  bool print_stats = true;
  std::string progress_label;  ///< before each progress line (bench: the run's name)
  bool progress_last_line_only = false;
};

/// One SAE's training in pieces, from its trainer to its saved directory: `synthsae bench` lets
/// the runs of one L0 and seed take turns on the same batches (BatchCache), so each batch is
/// drawn once for all of them.
class TrainingRun {
 public:
  virtual ~TrainingRun() = default;
  /// Trains `steps` more steps (-1: to the end), on this run's own stream of the world.
  virtual void advance(long steps) = 0;
  /// The final evaluation, the saved directory (committed), and what train_one returns.
  virtual io::Json finish() = 0;
  /// The stream this run reads (its sampling seed), where its next batch starts, and its batch size.
  virtual std::uint64_t stream_seed() const = 0;
  virtual std::uint64_t next_sample() const = 0;
  virtual std::size_t batch_size() const = 0;
  /// Steps left to train (Trainer::steps_left), and whether none is.
  virtual long steps_left() const = 0;
  bool done() const { return steps_left() == 0; }
};

/// Where this process's GemmMath::bf16 products run: "AMX tiles", "AVX-512 BF16", "emulated" (a
/// host with neither, or SYNTHSAE_HOST_BF16=emulated) or "CUDA tensor cores".
std::string bf16_products_where();
/// The value of --gemm-math (train's and bench's): UsageError naming the value if it is none;
/// for bf16 on a host that emulates it, says so on stderr (the same arithmetic, slower than fp32).
GemmMath gemm_math_argument(const std::string& text);
/// --screen-encoder (`given`) with the run's --gemm-math: UsageError unless fp32 on a CPU build;
/// warns on stderr where the host's BF16 product is emulated.
bool screen_encoder_argument(bool given, GemmMath math);

/// Checks the request and makes its run (nothing trained yet; the output directory is staged).
std::unique_ptr<TrainingRun> start_training(TrainRequest request, SyntheticModel& world);

/// Trains, evaluates and saves (into request.out, staged). Returns the evaluation (SAELens keys)
/// plus "seconds" (training wall time). Throws UsageError for inconsistent requests.
io::Json train_one(TrainRequest request, SyntheticModel& world);

/// An SAE to train on a base SAE's error component (`darkmatter --train-on-errors`).
struct ErrorSaeSpec {
  std::string arch;
  std::size_t width = 0;
  int k = 25;
  bool k_given = false;
  std::optional<double> l1;
  std::size_t samples = 2'000'000, batch = 1024;
  double lr = 3e-4;
  std::uint64_t seed = 0;
  std::uint64_t fit_rows = 60'000, score_rows = 50'000;
};

/// ARCH:WIDTH[,k=K][,l1=X][,samples=N][,batch=N][,lr=X][,seed=N][,fit=N][,score=N]; UsageError
/// naming the flag otherwise.
ErrorSaeSpec parse_error_sae_spec(const std::string& text);

/// Trains spec's SAE on the component (Trainer::set_input_map), saves it into `save_dir`
/// (SAELens's layout) and scores it (analysis/error_component_saes.hpp). Lives beside train_one,
/// where every architecture's Trainer is instantiated.
analysis::ErrorSaeReport train_error_sae(const ErrorSaeSpec& spec, SyntheticModel& world,
                                         const analysis::ErrorComponentMap& map, const analysis::ErrorSaeOptions& options,
                                         const std::filesystem::path& save_dir);

/// UsageError unless `arch` is in the list and takes every knob the request sets.
void check_architecture_knobs(const std::string& arch, bool k_given, bool l1_given, bool target_l0_given);

}  // namespace synthsae::cli
