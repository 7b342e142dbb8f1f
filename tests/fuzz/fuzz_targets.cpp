// The fuzz targets (fuzz_targets.hpp). Compiled once; linked into libFuzzer's driver and into
// the test suite's corpus replay.
#include "fuzz/fuzz_targets.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <string>

#include <synthsae/io/json.hpp>
#include <synthsae/io/npy.hpp>
#include <synthsae/io/safetensors.hpp>
#include <synthsae/saelens/model_directory.hpp>
#include <synthsae/saelens/sae_directory.hpp>
#include <synthsae/world/hierarchy.hpp>
#include <synthsae/world/synthetic_model.hpp>

#include "../../tools/synthsae/cli_args.hpp"

namespace synthsae::fuzz {

namespace {

namespace fs = std::filesystem;

// Worlds and SAEs up to this many weights are built and run once accepted, so that the values
// a reader let through also reach the code that uses them; larger ones would only cost time.
constexpr std::size_t kRunLimit = 1 << 14;

std::string& scratch() {
  static std::string dir;
  if (dir.empty()) dir = (fs::temp_directory_path() / ("synthsae-fuzz-" + std::to_string(::getpid()))).string();
  return dir;
}

std::string_view as_text(std::span<const std::byte> input) {
  return {reinterpret_cast<const char*>(input.data()), input.size()};
}

/// A finding that is not a crash by itself: abort so that libFuzzer keeps the input, and the
/// replay test fails.
[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "fuzz property violated: %s\n", what);
  std::abort();
}

/// Writes the sections into files named `names` of a fresh scratch directory.
fs::path write_sections(std::string_view input, std::initializer_list<const char*> names) {
  const fs::path dir = scratch();
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto sections = split_sections(input);
  std::size_t i = 0;
  for (const char* name : names) {
    if (i >= sections.size()) break;
    std::ofstream(dir / name, std::ios::binary).write(sections[i].data(), static_cast<std::streamsize>(sections[i].size()));
    ++i;
  }
  return dir;
}

template <class F>
Outcome guarded(F&& f) {
  try {
    f();
    return Outcome::accepted;
  } catch (const Error&) {
    return Outcome::refused;
  }
}

void sample_a_little(SyntheticModel& world) {
  const auto batch = world.sample(4);
  if (batch.hidden.extent(0) != 4) violated("a world sampled a batch of the wrong size");
}

bool small_world(const SyntheticModelConfig& c) {
  return c.num_features >= 1 && c.hidden_dim >= 1 &&
         static_cast<std::size_t>(c.num_features) * static_cast<std::size_t>(c.hidden_dim) <= kRunLimit;
}

Outcome safetensors_target(std::span<const std::byte> input) {
  return guarded([&] {
    const auto file = io::parse_safetensors(input, "fuzz.safetensors");
    for (const auto& [name, t] : file.tensors) (void)io::tensor_values<double>(t, name);
    // What we accepted we can write, and what we write reads back the same.
    const auto bytes = io::serialize_safetensors(file);
    const auto again = io::parse_safetensors(bytes, "fuzz round trip");
    if (again.tensors.size() != file.tensors.size() || again.metadata != file.metadata) violated("safetensors round trip");
    for (const auto& [name, t] : file.tensors) {
      const auto& u = again.at(name);
      if (u.dtype != t.dtype || u.shape != t.shape || u.bytes != t.bytes) violated("safetensors round trip of a tensor");
    }
  });
}

Outcome npy_target(std::span<const std::byte> input) {
  return guarded([&] {
    const fs::path path = write_sections(as_text(input), {"fuzz.npy"}) / "fuzz.npy";
    const auto a = io::NpyArray::open(path);
    const std::uint64_t rows = std::min<std::uint64_t>(a.rows(), 64);
    if (a.row_width() == 0 || a.row_width() > kRunLimit) return;
    std::vector<float> f(rows * a.row_width());
    std::vector<std::int64_t> i(rows * a.row_width());
    if (io::npy_is_integer(a.dtype())) a.read_rows_i64(0, rows, i.data());
    a.read_rows_f32(0, rows, f.data());
  });
}

Outcome world_config_target(std::span<const std::byte> input) {
  return guarded([&] {
    auto cfg = SyntheticModelConfig::from_json(io::parse_json(as_text(input), "fuzz config"));
    if (!small_world(cfg)) return;
    if (!cfg.seed) cfg.seed = 0;  // a fuzz run must be repeatable
    SyntheticModel world(cfg);
    sample_a_little(world);
  });
}

Outcome hierarchy_target(std::span<const std::byte> input) {
  return guarded([&] { (void)forest_from_json(io::parse_json(as_text(input), "fuzz hierarchy"), 64, "fuzz hierarchy"); });
}

Outcome model_directory_target(std::span<const std::byte> input) {
  return guarded([&] {
    const auto dir = write_sections(as_text(input), {saelens::kSyntheticModelConfigFile,
                                                     saelens::kSyntheticModelWeightsFile, saelens::kHierarchyFile});
    auto world = saelens::load_synthetic_model(dir, [](const std::string&) {});
    if (small_world(world.config())) sample_a_little(world);
  });
}

Outcome sae_directory_target(std::span<const std::byte> input) {
  return guarded([&] {
    const auto dir = write_sections(as_text(input), {saelens::kSaeConfigFile, saelens::kSaeWeightsFile});
    auto sae = saelens::load_sae(dir);
    const std::size_t d = sae.input_dim(), s = sae.num_latents();
    if (d * s > kRunLimit) return;
    Matrix<float> x("x", 2, d), z("z", 2, s), x_hat("x_hat", 2, d);
    Kokkos::deep_copy(x, 1.0f);
    sae.encode(x, z);
    sae.decode(z, x_hat);
  });
}

// argv split at NUL bytes, through the program's parser and every typed getter.
Outcome cli_args_target(std::span<const std::byte> input) {
  std::vector<std::string> argv;
  const auto text = as_text(input);
  for (std::size_t start = 0; start <= text.size();) {
    const auto end = std::min(text.find('\0', start), text.size());
    argv.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  try {
    const cli::Args args(argv, {"--samples", "--lr", "--k", "--out", "--seed"}, {"--stats", "--resume"}, {"--sae"});
    (void)args.integer("--samples", 1, std::int64_t{1} << 62);
    (void)args.integer("--k", 1, 4096);
    (void)args.integer("--seed", 0, INT64_MAX);
    (void)args.number("--lr", 1e-12, 1.0);
    (void)args.text("--out");
    (void)args.texts("--sae");
    return Outcome::accepted;
  } catch (const cli::UsageError&) {
    return Outcome::refused;
  }
}

}  // namespace

std::vector<std::string_view> split_sections(std::string_view input) {
  std::vector<std::string_view> out;
  for (;;) {
    const auto at = input.find(kSectionMarker);
    out.push_back(input.substr(0, at));
    if (at == std::string_view::npos) return out;
    input.remove_prefix(at + kSectionMarker.size());
  }
}

void set_scratch_directory(const std::string& path) { scratch() = path; }

const std::vector<Target>& targets() {
  static const std::vector<Target> list = {
      {"safetensors", "a .safetensors file (and its write-read round trip)", safetensors_target},
      {"npy", "a .npy file, its rows read", npy_target},
      {"world_config", "synthetic_model_config.json; small worlds built and sampled", world_config_target},
      {"hierarchy", "hierarchy.json for 64 features", hierarchy_target},
      {"model_directory", "a world directory: config, safetensors, hierarchy.json; small ones sampled",
       model_directory_target},
      {"sae_directory", "an SAE directory: cfg.json, sae_weights.safetensors; small ones run", sae_directory_target},
      {"cli_args", "the program's argument parser and its typed getters (argv split at NUL)", cli_args_target},
  };
  return list;
}

const Target* find_target(std::string_view name) {
  for (const auto& t : targets())
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace synthsae::fuzz
