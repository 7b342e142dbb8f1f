// The dark-matter regression engine against its floor: the normal equations of 150k rows of
// 768 regressors (the paper's train split at Gemma-2-2B width), accumulated in double from
// float32 chunks, against one float32 GEMM xᵀx of the same shape and one float64 GEMM.
//   bench_analysis --benchmark_format=json
#include <benchmark/benchmark.h>

#include "benchmark_main.hpp"

#include <synthsae/analysis/linear_probe.hpp>
#include <synthsae/core/counter_rng.hpp>

using namespace synthsae;

namespace {

constexpr int kRows = 150'000, kDim = 768, kChunk = 4096;

template <class T>
Matrix<T> filled(int rows, int cols, std::uint64_t seed) {
  Matrix<T> m("m", rows, cols);
  Kokkos::parallel_for(
      "fill", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(int i) {
        RandomStream s(seed, static_cast<std::uint64_t>(i));
        for (int j = 0; j < cols; ++j) m(i, j) = static_cast<T>(s.normal<float>());
      });
  return m;
}

void flops(benchmark::State& state) {
  state.counters["GFLOPS"] =
      benchmark::Counter(2e-9 * double(kRows) * kDim * kDim, benchmark::Counter::kIsIterationInvariantRate);
}

/// One GEMM xᵀx [768 x 768] over all 150k rows, float32: the floor the issue measures against.
void BM_GemmXtX_Float(benchmark::State& state) {
  const auto x = filled<float>(kRows, kDim, 1);
  Matrix<float> c("c", kDim, kDim);
  for (auto _ : state) {
    gemm(Op::T, Op::N, 1.0f, x, x, 0.0f, c);
    ExecSpace().fence();
  }
  flops(state);
}
BENCHMARK(BM_GemmXtX_Float)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

/// The same product in float64.
void BM_GemmXtX_Double(benchmark::State& state) {
  const auto x = filled<double>(kRows, kDim, 1);
  Matrix<double> c("c", kDim, kDim);
  for (auto _ : state) {
    gemm(Op::T, Op::N, 1.0, x, x, 0.0, c);
    ExecSpace().fence();
  }
  flops(state);
}
BENCHMARK(BM_GemmXtX_Double)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

/// LinearProbe::add over the 150k rows in chunks (range(0) targets: 1 = a norm, 768 = the
/// error vector) and solve(): what one regression of the analysis costs.
void BM_ProbeFit(benchmark::State& state) {
  const int q = static_cast<int>(state.range(0));
  const auto x = filled<float>(kRows, kDim, 1);
  const auto y = filled<float>(kRows, q, 2);
  for (auto _ : state) {
    analysis::LinearProbe probe(kDim, q);
    for (int first = 0; first < kRows; first += kChunk) {
      const int n = std::min(kChunk, kRows - first);
      const auto rows = std::make_pair(first, first + n);
      probe.add(Kokkos::subview(x, rows, Kokkos::ALL), Kokkos::subview(y, rows, Kokkos::ALL));
    }
    benchmark::DoNotOptimize(probe.solve().condition_number());
  }
  flops(state);
}
BENCHMARK(BM_ProbeFit)->Arg(1)->Arg(768)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace

int main(int argc, char** argv) { return run_kokkos_benchmarks(argc, argv); }
