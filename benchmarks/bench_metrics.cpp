// Exact assignment on the MCC shape: 4,096 latents x 16,384 features.
//   * trained-like: each latent has one dominant feature (|cos| 0.55-0.95; 10 % of latents
//     share their feature with another latent) over a noise floor of |N(0, 1/768)|, the
//     |cos| of unrelated unit vectors in 768 dimensions;
//   * uniform: every entry U(0, 1), the hard case.
// A full pass over the matrix (finding each row's maximum) is the reference figure: no exact
// method can read less.
//   bench_metrics --benchmark_format=json
#include <benchmark/benchmark.h>

#include "benchmark_main.hpp"

#include <cmath>
#include <vector>

#include <cstdlib>

#include <synthsae/core/counter_rng.hpp>
#include <synthsae/metrics/assignment.hpp>
#include <synthsae/metrics/evaluate.hpp>
#include <synthsae/sae/sae.hpp>
#include <synthsae/world/presets.hpp>

using namespace synthsae;

namespace {

constexpr std::size_t kLatents = 4096, kFeatures = 16384;

const std::vector<double>& trained_like() {
  static const std::vector<double> sim = [] {
    std::vector<double> m(kLatents * kFeatures);
    for (std::size_t i = 0; i < kLatents; ++i) {
      RandomStream r(1, i);
      for (std::size_t j = 0; j < kFeatures; ++j) m[i * kFeatures + j] = std::fabs(r.normal<double>()) * 0.0361;
      const std::size_t target = (i % 10 == 9) ? ((i - 1) * 4 + 1) % kFeatures : (i * 4 + 1) % kFeatures;
      m[i * kFeatures + target] = 0.55 + 0.4 * r.uniform<double>();
    }
    return m;
  }();
  return sim;
}

const std::vector<double>& uniform() {
  static const std::vector<double> sim = [] {
    std::vector<double> m(kLatents * kFeatures);
    for (std::size_t i = 0; i < kLatents; ++i) {
      RandomStream r(2, i);
      for (std::size_t j = 0; j < kFeatures; ++j) m[i * kFeatures + j] = r.uniform<double>();
    }
    return m;
  }();
  return sim;
}

void BM_AssignmentTrainedLike(benchmark::State& state) {
  const auto& sim = trained_like();
  double total = 0;
  for (auto _ : state) total = solve_assignment_max(sim, kLatents, kFeatures).total;
  state.counters["mean_matched"] = total / kLatents;
}
BENCHMARK(BM_AssignmentTrainedLike)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

void BM_AssignmentUniform(benchmark::State& state) {
  const auto& sim = uniform();
  double total = 0;
  for (auto _ : state) total = solve_assignment_max(sim, kLatents, kFeatures).total;
  state.counters["mean_matched"] = total / kLatents;
}
BENCHMARK(BM_AssignmentUniform)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

void BM_RowMaxReference(benchmark::State& state) {
  const auto& sim = trained_like();
  for (auto _ : state) {
    double acc = 0;
    for (std::size_t i = 0; i < kLatents; ++i) {
      double best = sim[i * kFeatures];
      for (std::size_t j = 1; j < kFeatures; ++j) best = std::max(best, sim[i * kFeatures + j]);
      acc += best;
    }
    benchmark::DoNotOptimize(acc);
  }
}
BENCHMARK(BM_RowMaxReference)->Unit(benchmark::kMillisecond)->UseRealTime();

// A full evaluation of a 4,096-latent BatchTopK SAE (k = 25, untrained: the cost does not depend
// on the weights) on the SynthSAEBench-16k world; SYNTHSAE_EVAL_SAMPLES overrides 500,000.
// Counters give the seconds of each phase.
void BM_Evaluate16k(benchmark::State& state) {
  const char* env = std::getenv("SYNTHSAE_EVAL_SAMPLES");
  const std::size_t samples = env ? std::strtoull(env, nullptr, 10) : 500'000;
  SyntheticModel world(preset("synth-sae-bench-16k"));
  BatchTopKSae<> sae(768, 4096, BatchTopK{25, true, 0.01});
  EvalTimings t;
  for (auto _ : state) {
    t = {};
    EvalOptions opts;
    opts.samples = samples;
    opts.timings = &t;
    benchmark::DoNotOptimize(evaluate_all(sae, world, opts));
  }
  state.counters["samples"] = double(samples);
  state.counters["s_similarity"] = t.similarity;
  state.counters["s_assignment_begin"] = t.begin;
  state.counters["s_sampling"] = t.sampling;
  state.counters["s_encode"] = t.encode;
  state.counters["s_decode"] = t.decode;
  state.counters["s_metric_updates"] = t.update;
}
BENCHMARK(BM_Evaluate16k)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(1);

}  // namespace

int main(int argc, char** argv) { return run_kokkos_benchmarks(argc, argv); }
