// One SAE training step (forward, hand-written backward, Adam) at the benchmark's shape,
// 768 -> 4,096 latents, batch 1,024, against one dense 1024 x 768 x 4096 GEMM (the encoder
// product no architecture avoids) measured in the same run.
//   bench_sae --benchmark_format=json
#include <benchmark/benchmark.h>

#include "benchmark_main.hpp"

#include <synthsae/core/counter_rng.hpp>
#include <synthsae/sae/gated_sae.hpp>
#include <synthsae/sae/matching_pursuit_sae.hpp>
#include <synthsae/sae/sae.hpp>
#include <synthsae/train/adam.hpp>

using namespace synthsae;

namespace {

constexpr int kBatch = 1024, kIn = 768, kLatents = 4096;

Matrix<float> input() {
  Matrix<float> x("x", kBatch, kIn);
  auto h = Kokkos::create_mirror_view(x);
  RandomStream s(7, 0);
  for (int i = 0; i < kBatch; ++i)
    for (int k = 0; k < kIn; ++k) h(i, k) = s.normal<float>();
  Kokkos::deep_copy(x, h);
  return x;
}

void BM_EncoderGemm(benchmark::State& state) {
  const auto x = input();
  Matrix<float> w("w", kIn, kLatents), h("h", kBatch, kLatents);
  Kokkos::deep_copy(w, 0.01f);
  for (auto _ : state) {
    gemm(Op::N, Op::N, 1.0f, x, w, 0.0f, h);
    Kokkos::fence();
  }
}
BENCHMARK(BM_EncoderGemm)->Unit(benchmark::kMillisecond)->UseRealTime();

/// Every `stride`-th latent marked dead (none for stride 0): AuxK then acts on them.
DeadMask dead_latents(int stride, std::size_t& count) {
  Kokkos::View<std::uint8_t*, MemSpace> dead("dead", kLatents);
  auto h = Kokkos::create_mirror_view(dead);
  count = 0;
  for (int j = 0; j < kLatents; ++j) h(j) = stride > 0 && j % stride == 0, count += h(j);
  Kokkos::deep_copy(dead, h);
  return dead;
}

template <class SaeT>
void train_steps(benchmark::State& state, SaeT sae, int dead_stride = 0) {
  const auto x = input();
  SaeParameters<float> grads = sae.parameters().zeros_like();
  Adam<float> adam(sae.parameters(), AdamConfig{});
  std::size_t num_dead = 0;
  const DeadMask dead = dead_latents(dead_stride, num_dead);
  for (auto _ : state) {
    sae.forward_backward(x, grads, dead, num_dead);
    adam.step(sae.parameters(), grads, 3e-4);
    Kokkos::fence();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void BM_StepBatchTopK(benchmark::State& s) { train_steps(s, BatchTopKSae<>(kIn, kLatents, BatchTopK{25, true, 0.01})); }
// A quarter of the latents dead: AuxK selects k_aux = 384 of them per sample.
void BM_StepBatchTopKQuarterDead(benchmark::State& s) {
  train_steps(s, BatchTopKSae<>(kIn, kLatents, BatchTopK{25, true, 0.01}), 4);
}
// The same step through the dense path (every product full-size): the previous version.
void BM_StepBatchTopKDense(benchmark::State& s) {
  BatchTopKSae<> sae(kIn, kLatents, BatchTopK{25, true, 0.01});
  sae.set_sparse_step(false);
  train_steps(s, std::move(sae));
}
void BM_StepMatryoshka(benchmark::State& s) {
  train_steps(
      s, MatryoshkaBatchTopKSae<>(kIn, kLatents, BatchTopK{25, true, 0.01}, {}, AuxK{}, Matryoshka{{128, 512, 2048}}));
}
void BM_StepTopK(benchmark::State& s) { train_steps(s, TopKSae<>(kIn, kLatents, TopK{25, true})); }
void BM_StepStandard(benchmark::State& s) { train_steps(s, StandardSae<>(kIn, kLatents, Relu{}, L1Penalty{2.0})); }
void BM_StepJumpRelu(benchmark::State& s) {
  train_steps(s, JumpReluSae<>(kIn, kLatents, JumpRelu{1.0, 1.0}, L0StepPenalty{1.0, 1.0}, {}, {}, 0.5));
}
// Matching Pursuit: 25 selections. Each selection would need r W_dec^T (B x S x D); the step
// computes the Gram matrix W_dec W_dec^T once (S x S x D) and updates the scores in place
// (B x S per selection).
void BM_StepMatchingPursuit(benchmark::State& s) {
  train_steps(s, MatchingPursuitSae<>(kIn, kLatents, MatchingPursuit{25, 0.0, false}));
}
void BM_StepGated(benchmark::State& s) { train_steps(s, GatedSae<>(kIn, kLatents, L1Penalty{2.0})); }
BENCHMARK(BM_StepBatchTopK)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepBatchTopKDense)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepBatchTopKQuarterDead)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepMatryoshka)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepTopK)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepStandard)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepJumpRelu)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepGated)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepMatchingPursuit)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) { return run_kokkos_benchmarks(argc, argv); }
