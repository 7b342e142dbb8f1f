#pragma once
// What `synthsae train` (and each run of `synthsae bench`) trains: one SAE on one world.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <synthsae/io/json.hpp>
#include <synthsae/world/synthetic_model.hpp>

namespace synthsae::cli {

/// The architecture names `train` and `bench` accept (SAELens's registry names).
inline constexpr const char* kArchitectures[] = {"standard", "topk", "batchtopk", "matryoshka_batchtopk", "jumprelu", "gated", "matching_pursuit"};

/// "standard, topk, ...": the names above, for messages.
inline std::string architecture_list() {
  std::string list;
  for (const char* a : kArchitectures) list += (list.empty() ? "" : ", ") + std::string(a);
  return list;
}

inline bool known_architecture(const std::string& name) {
  for (const char* a : kArchitectures)
    if (name == a) return true;
  return false;
}

/// Architectures whose sparsity comes from a coefficient (--l1 / --target-l0) rather than --k.
inline bool coefficient_architecture(const std::string& name) { return name == "standard" || name == "jumprelu" || name == "gated"; }

struct TrainRequest {
  std::string model, arch;
  std::filesystem::path out;
  std::optional<std::filesystem::path> resume;
  int k = 25;
  double l1 = 2.0;
  std::optional<double> target_l0;
  std::size_t width = 0, samples = 2'000'000, batch = 1024, eval_samples = 100'000;
  double lr = 3e-4;
  std::uint64_t seed = 0;
  long eval_every = 0, checkpoint_every = 0;
  bool print_stats = true;
};

/// Trains, evaluates and saves (into request.out, staged). Returns the evaluation (SAELens keys)
/// plus "seconds" (training wall time). Throws UsageError for inconsistent requests.
io::Json train_one(TrainRequest request, SyntheticModel& world);

}  // namespace synthsae::cli
