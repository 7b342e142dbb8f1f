// Exact assignment on the MCC shape: 4,096 latents x 16,384 features.
//   * trained-like: each latent has one dominant feature (|cos| 0.55-0.95; 10 % of latents
//     share their feature with another latent) over a noise floor of |N(0, 1/768)|, the
//     |cos| of unrelated unit vectors in 768 dimensions;
//   * uniform: every entry U(0, 1), the hard case.
// A full pass over the matrix (finding each row's maximum) is the reference figure: no exact
// method can read less.
//   bench_metrics --benchmark_format=json
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include <synthsae/core/counter_rng.hpp>
#include <synthsae/metrics/assignment.hpp>

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

}  // namespace

BENCHMARK_MAIN();
