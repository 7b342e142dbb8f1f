// Backend core throughput: GEMM at the SAE encoder's shape, counter-based normal draws,
// and a memory copy of the same bytes as the reference for what "fast" means here.
//   bench_core --benchmark_format=json
#include <benchmark/benchmark.h>

#include <algorithm>
#include <vector>

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

// The encoder product in FP32 (arg 3: 0) and BF16 (2; AMX tiles or AVX-512 BF16 where the
// processor has them, else emulated): 1,024 x 128 x 1,024 is cpu-1k training's one dense product.
void BM_GemmEncoderShapeMath(benchmark::State& state) {
  ScopedGemmMath math(state.range(3) == 2 ? GemmMath::bf16 : GemmMath::fp32);
  BM_GemmEncoderShape(state);
}
BENCHMARK(BM_GemmEncoderShapeMath)
    ->Args({1024, 128, 1024, 0})
    ->Args({1024, 128, 1024, 2})
    ->Args({1024, 768, 4096, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The encoder's h = b_enc + x W_enc as a training step meets it: C last touched a step ago, so
// out of cache (a 64 MB write between iterations, untimed, pushes it out). Arg 3: 0 fills C's
// rows with the bias in one pass, then the product with beta = 1 (the previous version); 1 is
// gemm_onto_rows, which fills each panel just before its product (FP32), or starts the BF16 units'
// sums from the bias (arg 4: 0 FP32, 1 BF16).
void BM_GemmOntoBias(benchmark::State& state) {
  const int b = static_cast<int>(state.range(0)), d = static_cast<int>(state.range(1)),
            n = static_cast<int>(state.range(2));
  const bool fused = state.range(3) != 0;
  const GemmMath math = state.range(4) != 0 ? GemmMath::bf16 : GemmMath::fp32;
  Matrix<float> x("x", b, d), w("w", d, n), y("y", b, n);
  Vector<float> bias("bias", n);
  Kokkos::deep_copy(x, 0.5f);
  Kokkos::deep_copy(w, 0.25f);
  Kokkos::deep_copy(bias, 0.125f);
  std::vector<char> elsewhere(std::size_t(64) << 20);
  for (auto _ : state) {
    state.PauseTiming();
    std::fill(elsewhere.begin(), elsewhere.end(), char(state.iterations()));
    benchmark::DoNotOptimize(elsewhere.data());
    state.ResumeTiming();
    if (fused) {
      gemm_onto_rows(Op::N, Op::N, 1.0f, x, w, bias, y, math);
    } else {
      kernels::fill_rows(y, bias);
      gemm(Op::N, Op::N, 1.0f, x, w, 1.0f, y, math);
    }
    ExecSpace().fence();
  }
  state.counters["GFLOPS"] = benchmark::Counter(2e-9 * b * d * n, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_GemmOntoBias)
    ->ArgsProduct({{1024}, {128}, {1024}, {0, 1}, {0, 1}})
    ->ArgsProduct({{1024}, {768}, {4096}, {0, 1}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The other products of a training step at 768 -> 4,096, batch 1,024, and a short one (few rows
// of C): arguments (transpose A, transpose B, m, n, k) of C [m, n] = op(A) op(B).
void BM_GemmStepShapes(benchmark::State& state) {
  const bool ta = state.range(0) != 0, tb = state.range(1) != 0;
  const int m = static_cast<int>(state.range(2)), n = static_cast<int>(state.range(3)), k = static_cast<int>(state.range(4));
  Matrix<float> a("a", ta ? k : m, ta ? m : k), b("b", tb ? n : k, tb ? k : n), c("c", m, n);
  Kokkos::deep_copy(a, 0.5f);
  Kokkos::deep_copy(b, 0.25f);
  for (auto _ : state) {
    gemm(ta ? Op::T : Op::N, tb ? Op::T : Op::N, 1.0f, a, b, 0.0f, c);
    ExecSpace().fence();
  }
  state.counters["GFLOPS"] = benchmark::Counter(2e-9 * m * n * k, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_GemmStepShapes)
    ->Args({0, 0, 1024, 768, 4096})  // decoder: z W_dec
    ->Args({1, 0, 4096, 768, 1024})  // dW_dec = zᵀ e
    ->Args({1, 0, 768, 4096, 1024})  // dW_enc = xᵀ g
    ->Args({0, 1, 1024, 768, 4096})  // g W_encᵀ
    ->Args({0, 0, 64, 4096, 768})    // a short batch
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

// A training step's input copy (1,024 x 768 floats, 3 MB) and Matching Pursuit's activation
// reset (1,024 x 4,096, 16 MB): arg 0 = Kokkos::deep_copy, 1 = copy_view / fill_view (threaded
// on Debian's Serial Kokkos, core/host_copy.hpp).
void BM_HostCopy(benchmark::State& state) {
  Matrix<float> a("a", 1024, 768), b("b", 1024, 768);
  Kokkos::deep_copy(a, 1.5f);
  for (auto _ : state) {
    if (state.range(0) == 0)
      Kokkos::deep_copy(b, a);
    else
      copy_view(b, a);
    ExecSpace().fence();
  }
  state.SetBytesProcessed(state.iterations() * int64_t(a.span() * 2 * sizeof(float)));
}
BENCHMARK(BM_HostCopy)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_HostFill(benchmark::State& state) {
  Matrix<float> z("z", 1024, 4096);
  for (auto _ : state) {
    if (state.range(0) == 0)
      Kokkos::deep_copy(z, 0.0f);
    else
      fill_view(z, 0.0f);
    ExecSpace().fence();
  }
  state.SetBytesProcessed(state.iterations() * int64_t(z.span() * sizeof(float)));
}
BENCHMARK(BM_HostFill)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) { return run_kokkos_benchmarks(argc, argv); }
