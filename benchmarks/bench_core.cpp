// Backend core throughput: GEMM at the SAE encoder's shape, counter-based normal draws,
// and a memory copy of the same bytes as the reference for what "fast" means here.
//   bench_core --benchmark_format=json
#include <benchmark/benchmark.h>

#include "benchmark_main.hpp"

#include <synthsae/synthsae.hpp>

using namespace synthsae;

namespace {

void BM_GemmEncoderShape(benchmark::State& state) {
  const int b = static_cast<int>(state.range(0)), d = static_cast<int>(state.range(1)),
            n = static_cast<int>(state.range(2));
  Matrix<float> x("x", b, d), w("w", d, n), y("y", b, n);
  Kokkos::deep_copy(x, 0.5f);
  Kokkos::deep_copy(w, 0.25f);
  for (auto _ : state) {
    gemm(Op::N, Op::N, 1.0f, x, w, 0.0f, y);
    ExecSpace().fence();
  }
  // Rate counter: GFLOP per iteration, divided by the measured time per iteration.
  state.counters["GFLOPS"] = benchmark::Counter(2e-9 * b * d * n, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_GemmEncoderShape)
    ->Args({1024, 768, 4096})
    ->Args({256, 128, 1024})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_NormalDraws(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  Vector<float> out("out", n);
  for (auto _ : state) {
    Kokkos::parallel_for(
        "normals", Kokkos::RangePolicy<ExecSpace>(0, n / 16), KOKKOS_LAMBDA(int i) {
          RandomStream s(3, static_cast<std::uint64_t>(i));
          for (int j = 0; j < 16; ++j) out(16 * i + j) = s.normal<float>();
        });
    ExecSpace().fence();
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_NormalDraws)->Arg(1 << 22)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_CopyReference(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  Vector<float> a("a", n), b("b", n);
  for (auto _ : state) {
    Kokkos::deep_copy(b, a);
    ExecSpace().fence();
  }
  state.SetBytesProcessed(state.iterations() * n * 2 * int64_t(sizeof(float)));
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_CopyReference)->Arg(1 << 22)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) { return run_kokkos_benchmarks(argc, argv); }
