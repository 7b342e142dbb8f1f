// The dark-matter regression engine against its floor: the normal equations of 150k rows of
// 768 regressors (the paper's train split at Gemma-2-2B width), accumulated in double from
// float32 chunks, against one float32 GEMM xᵀx of the same shape and one float64 GEMM.
// Inference-time optimisation on a frozen 4,096-latent decoder (768 inputs, batch 1,024, 32
// iterations per row: the dark-matter part-2 issue's shape) against one encoder GEMM of that
// batch, [1,024 x 768] x [768 x 4,096].
//   bench_analysis --benchmark_format=json
#include <benchmark/benchmark.h>

#include "benchmark_main.hpp"

#include <synthsae/analysis/linear_probe.hpp>
#include <synthsae/analysis/pursuit.hpp>
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

constexpr int kBatch = 1024, kLatents = 4096, kPursuitL0 = 32;

/// The encoder GEMM of one batch: the floor pursuit is measured against.
void BM_EncoderGemm(benchmark::State& state) {
  const auto x = filled<float>(kBatch, kDim, 3);
  const auto w = filled<float>(kLatents, kDim, 4);
  Matrix<float> h("h", kBatch, kLatents);
  for (auto _ : state) {
    gemm(Op::N, Op::T, 1.0f, x, w, 0.0f, h);
    ExecSpace().fence();
  }
}
BENCHMARK(BM_EncoderGemm)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);

/// One batch's pursuit at 32 iterations per row (range(0): 0 gradient, 1 orthogonal, 2 matching),
/// the dictionary's Gram matrix built once outside the loop (a frozen decoder).
void BM_Pursuit(benchmark::State& state) {
  const auto method = static_cast<analysis::PursuitMethod>(state.range(0));
  const auto x = filled<float>(kBatch, kDim, 3);
  const auto w = filled<float>(kLatents, kDim, 4);
  Kokkos::parallel_for(
      "unit_rows", Kokkos::RangePolicy<ExecSpace>(0, kLatents), KOKKOS_LAMBDA(int j) {
        float sq = 0;
        for (int k = 0; k < kDim; ++k) sq += w(j, k) * w(j, k);
        const float inv = 1.0f / kmath::sqrt(sq);
        for (int k = 0; k < kDim; ++k) w(j, k) *= inv;
      });
  const analysis::PursuitDictionary<float> dict(w);
  Kokkos::View<int*, MemSpace> budgets("budgets", kBatch);
  Kokkos::deep_copy(budgets, kPursuitL0);
  Matrix<float> codes("codes", kBatch, kLatents);
  for (auto _ : state) {
    analysis::pursue(x, dict, budgets, codes, {method, true});
    ExecSpace().fence();
  }
  state.SetLabel(analysis::pursuit_name(method));
}
BENCHMARK(BM_Pursuit)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

}  // namespace

int main(int argc, char** argv) { return run_kokkos_benchmarks(argc, argv); }
