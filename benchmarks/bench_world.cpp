// Synthetic-world throughput: sampling batches of 1,024 from a world (sparse ground truth +
// hidden vectors), against the dense GEMM a dense sampler would need for the same hidden
// vectors ([1024 x N] x [N x D]) measured in the same run; and building a world.
//   bench_world --benchmark_format=json [--benchmark_filter=16k]
#include <benchmark/benchmark.h>

#include "benchmark_main.hpp"

#include <map>
#include <memory>
#include <string>

#include <synthsae/synthsae.hpp>

using namespace synthsae;

namespace {

// Worlds are built once per process and released before Kokkos::finalize.
std::map<std::string, std::unique_ptr<SyntheticModel>>& world_cache() {
  static std::map<std::string, std::unique_ptr<SyntheticModel>> cache;
  return cache;
}

SyntheticModel& world(const std::string& name) {
  auto& slot = world_cache()[name];
  if (!slot) slot = std::make_unique<SyntheticModel>(preset(name));
  return *slot;
}

void sample_batches(benchmark::State& state, const std::string& name) {
  SyntheticModel& model = world(name);
  SampleBatch batch;
  model.sample_into(batch, 1024);  // warm-up: allocations, capacity growth
  for (auto _ : state) {
    model.sample_into(batch, 1024);
    Kokkos::fence();
  }
  state.SetItemsProcessed(state.iterations() * 1024);
  state.counters["samples_per_s"] = benchmark::Counter(1024.0, benchmark::Counter::kIsIterationInvariantRate);
}

void dense_hidden_gemm(benchmark::State& state, const std::string& name) {
  SyntheticModel& model = world(name);
  Matrix<float> acts("dense_acts", 1024, model.num_features()), hidden("hidden", 1024, model.hidden_dim());
  Kokkos::deep_copy(acts, 0.01f);
  for (auto _ : state) {
    gemm(Op::N, Op::N, 1.0f, acts, model.feature_vectors(), 0.0f, hidden);
    Kokkos::fence();
  }
  state.SetItemsProcessed(state.iterations() * 1024);
}

void build_world(benchmark::State& state, const std::string& name) {
  for (auto _ : state) {
    SyntheticModel model(preset(name));
    benchmark::DoNotOptimize(model.feature_vectors().data());
  }
}

// cpu-1k: the world of the SAELens comparison's training run (scripts/compare_saelens.sh).
BENCHMARK_CAPTURE(sample_batches, cpu_1k, std::string("cpu-1k"))->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(sample_batches, cpu_4k, std::string("cpu-4k"))->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(dense_hidden_gemm, cpu_4k, std::string("cpu-4k"))->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(sample_batches, synth_sae_bench_16k, std::string("synth-sae-bench-16k"))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(dense_hidden_gemm, synth_sae_bench_16k, std::string("synth-sae-bench-16k"))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(build_world, cpu_4k, std::string("cpu-4k"))
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  return run_kokkos_benchmarks(argc, argv, [] { world_cache().clear(); });
}
