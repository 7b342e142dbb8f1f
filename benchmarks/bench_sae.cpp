// One SAE training step (forward, hand-written backward, Adam) at the benchmark's shape,
// 768 -> 4,096 latents, batch 1,024, against one dense 1024 x 768 x 4096 GEMM (the encoder
// product no architecture avoids) measured in the same run.
//   bench_sae --benchmark_format=json
#include <benchmark/benchmark.h>

#include "benchmark_main.hpp"

#include <vector>

#include <synthsae/core/counter_rng.hpp>
#include <synthsae/core/kernel_timer.hpp>
#include <synthsae/core/normal_distribution.hpp>
#include <synthsae/sae/gated_sae.hpp>
#include <synthsae/sae/kernels/row_top_k_lists.hpp>
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

// The same product in each GemmMath (arg: 0 fp32, 1 tf32, 2 bf16; on the host tf32 runs as fp32,
// bf16 on AMX tiles or AVX-512 BF16 where the processor has them).
constexpr GemmMath kMaths[] = {GemmMath::fp32, GemmMath::tf32, GemmMath::bf16};
void BM_EncoderGemmMath(benchmark::State& state) {
  ScopedGemmMath math(kMaths[state.range(0)]);
  BM_EncoderGemm(state);
}
BENCHMARK(BM_EncoderGemmMath)->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->UseRealTime();

/// 1,024 rows of 1,024 normal keys (cpu-1k's width): the per-row selections below read them.
std::vector<float> selection_keys() {
  std::vector<float> keys(std::size_t{kBatch} * 1024);
  RandomStream s(9, 0);
  for (float& v : keys) v = s.normal<float>();
  return keys;
}

// TopK's per-row choice (arg: k) over every row of 1,024 keys: the pivot, the listing at or
// above it and the short list's k largest (row_top_k_lists' work after the keys).
void BM_RowTopK(benchmark::State& state) {
  const auto keys = selection_keys();
  const int k = static_cast<int>(state.range(0)), s = 1024;
  std::vector<detail::OrderedBits<float>> bits(s);
  std::vector<int> listed(s), out(s);
  for (auto _ : state)
    for (int i = 0; i < kBatch; ++i)
      benchmark::DoNotOptimize(
          detail::row_top_k_columns(&keys[std::size_t(i) * s], s, k, bits.data(), listed.data(), out.data()));
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_RowTopK)->Arg(8)->Arg(25)->Unit(benchmark::kMicrosecond)->UseRealTime();

// AuxK's per-row choice of d_in / 2 = 64 among n dead columns (arg: n) of rows of 1,024 keys.
void BM_TopKAmong(benchmark::State& state) {
  const auto keys = selection_keys();
  const int n = static_cast<int>(state.range(0)), s = 1024;
  std::vector<int> candidates(n);
  for (int q = 0; q < n; ++q) candidates[q] = static_cast<int>(std::int64_t{q} * s / n);
  std::vector<detail::OrderedBits<float>> bits(n);
  std::vector<int> kept(n), out(64);
  for (auto _ : state)
    for (int i = 0; i < kBatch; ++i)
      benchmark::DoNotOptimize(detail::top_k_among(&keys[std::size_t(i) * s], candidates.data(), n, 64, bits.data(),
                                                   kept.data(), out.data()));
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_TopKAmong)->Arg(100)->Arg(600)->Unit(benchmark::kMicrosecond)->UseRealTime();

// BatchTopK's threshold over a batch of 1,024 rows (arg: latents), k = 8: the ranking keys
// (pre-activations times decoder norms) written and the candidates at or above a sampled floor
// listed, then the m-th largest of the list (keep_threshold; the pass of a training step).
void BM_BatchTopKThreshold(benchmark::State& state) {
  const int s = static_cast<int>(state.range(0));
  StepBuffers<float> b;
  b.resize(kBatch, 16, s);
  auto h = Kokkos::create_mirror_view(b.h);
  auto norms = Kokkos::create_mirror_view(b.norms);
  RandomStream r(11, 0);
  for (int i = 0; i < kBatch; ++i)
    for (int j = 0; j < s; ++j) h(i, j) = r.normal<float>();
  for (int j = 0; j < s; ++j) norms(j) = 0.75f + 0.5f * r.uniform<float>();
  Kokkos::deep_copy(b.h, h), Kokkos::deep_copy(b.norms, norms);
  BatchTopK act;
  act.k = 8;
  float tau = 0;
  for (auto _ : state) benchmark::DoNotOptimize(tau = act.keep_threshold(b));
  state.counters["tau"] = tau;
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_BatchTopKThreshold)->Arg(1024)->Arg(4096)->Unit(benchmark::kMicrosecond)->UseRealTime();

/// Every `stride`-th latent marked dead (none for stride 0): AuxK then acts on them.
DeadMask dead_latents(int stride, std::size_t& count) {
  Kokkos::View<std::uint8_t*, MemSpace> dead("dead", kLatents);
  auto h = Kokkos::create_mirror_view(dead);
  count = 0;
  for (int j = 0; j < kLatents; ++j) h(j) = stride > 0 && j % stride == 0, count += h(j);
  Kokkos::deep_copy(dead, h);
  return dead;
}

/// Mean number of nonzero feature activations per sample in the last step.
template <class SaeT>
double last_l0(const SaeT& sae) {
  auto z = Kokkos::create_mirror_view_and_copy(HostSpace(), sae.last_activations());
  std::size_t n = 0;
  for (std::size_t e = 0; e < z.size(); ++e) n += z.data()[e] != 0.0f;
  return double(n) / double(z.extent(0));
}

template <class SaeT>
void train_steps(benchmark::State& state, SaeT sae, int dead_stride = 0, double lr = 3e-4) {
  const auto x = input();
  SaeParameters<float> grads = sae.parameters().zeros_like();
  Adam<float> adam(sae.parameters(), AdamConfig{});
  std::size_t num_dead = 0;
  const DeadMask dead = dead_latents(dead_stride, num_dead);
  for (auto _ : state) {
    sae.forward_backward(x, grads, dead, num_dead);
    adam.step(sae.parameters(), grads, lr);
    Kokkos::fence();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["L0"] = last_l0(sae);
  if constexpr (requires { sae.last_step_was_sparse(); }) state.counters["sparse"] = sae.last_step_was_sparse();
  if constexpr (requires { sae.last_step_entries_per_row(); })
    state.counters["entries_per_row"] = sae.last_step_entries_per_row();
  if constexpr (requires { sae.encoder_screen().last_recomputed; }) {
    if (sae.encoder_screening()) {  // the last step's recomputed share of B x S, and whether it fell back
      state.counters["recomputed"] = double(sae.encoder_screen().last_recomputed) / (double(kBatch) * kLatents);
      state.counters["fell_back"] = sae.encoder_screen().last_fell_back;
    }
  }
}

// ---- decoding an evaluation batch: x_hat = z W_dec + b_dec, 4,096 -> 768, batch 1,024 ------
// Arg 0: nonzero entries per row of z (25 is the trained regime; 410 is 10 %, 600 15 %); arg 1: 1 = the
// sparse form, 0 = the GEMM, whatever the density. The crossover in kernels/adaptive_decode.hpp
// comes from where the two meet here.
void BM_Decode(benchmark::State& state) {
  const int per_row = static_cast<int>(state.range(0));
  Matrix<float> z("z", kBatch, kLatents), w("w_dec", kLatents, kIn), x_hat("x_hat", kBatch, kIn);
  Vector<float> bias("b_dec", kIn);
  {
    auto zh = Kokkos::create_mirror_view(z);
    auto wh = Kokkos::create_mirror_view(w);
    RandomStream s(11, 0);
    for (int i = 0; i < kBatch; ++i)
      for (int q = 0; q < per_row; ++q)  // distinct latents: a random start, a stride coprime to 4,096
        zh(i, (static_cast<int>(s.uniform<float>() * kLatents) + q * 97) % kLatents) = 1.0f + s.uniform<float>();
    for (std::size_t e = 0; e < wh.size(); ++e) wh.data()[e] = 0.01f * s.normal<float>();
    Kokkos::deep_copy(z, zh);
    Kokkos::deep_copy(w, wh);
    Kokkos::deep_copy(bias, 0.1f);
  }
  AdaptiveDecode<float> decoder;
  decoder.set_max_density(state.range(1) != 0 ? 1.0 : 0.0);
  for (auto _ : state) {
    decoder.decode(z, Vector<float>(), w, bias, x_hat);
    Kokkos::fence();
  }
  state.counters["sparse"] = decoder.last_was_sparse();
}
BENCHMARK(BM_Decode)
    ->ArgsProduct({{25, 100, 200, 410, 600}, {1, 0}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// ---- the ReLU family in the trained regime (about 25 of 4,096 latents firing) -------------
// Pre-activations of the initial SAE on N(0, 1) inputs are N(0, 0.1^2) (decoder rows of norm
// 0.1, W_enc = W_dec^T): a bias (or threshold) of -0.1 Phi^-1(1 - rho) leaves a fraction rho
// firing. lr 1e-6 keeps that density through the measured steps (Adam's cost does not depend on
// lr). Arg 0: the fraction firing in units of 1e-4; arg 1: 1 = adaptive step, 0 = dense step.
float firing_cut(double rho) { return static_cast<float>(0.1 * normal_quantile(1.0 - rho)); }

void BM_StepStandardDensity(benchmark::State& s) {
  const double rho = double(s.range(0)) * 1e-4;
  StandardSae<> sae(kIn, kLatents, Relu{}, L1Penalty{2.0});
  Kokkos::deep_copy(sae.parameters().b_enc, -firing_cut(rho));
  sae.set_sparse_step(s.range(1) != 0);
  sae.set_sparse_step_max_density(1.0);  // the crossover is what this benchmark measures
  train_steps(s, std::move(sae), 0, 1e-6);
}
void BM_StepStandardTrained(benchmark::State& s) {
  StandardSae<> sae(kIn, kLatents, Relu{}, L1Penalty{2.0});
  Kokkos::deep_copy(sae.parameters().b_enc, -firing_cut(25.0 / kLatents));
  sae.set_sparse_step(s.range(0) != 0);
  train_steps(s, std::move(sae), 0, 1e-6);
}
void BM_StepJumpReluTrained(benchmark::State& s) {
  // theta = the 25-of-4,096 cut, bandwidth 0.05 (SAELens's default): another ~1% of entries sit
  // in the pseudo-gradient's window and join the active set.
  JumpReluSae<> sae(kIn, kLatents, JumpRelu{firing_cut(25.0 / kLatents), 0.05}, L0StepPenalty{1.0});
  sae.set_sparse_step(s.range(0) != 0);
  train_steps(s, std::move(sae), 0, 1e-6);
}
void BM_StepGatedTrained(benchmark::State& s) {
  GatedSae<> sae(kIn, kLatents, L1Penalty{2.0});
  Kokkos::deep_copy(sae.parameters().extra.at("b_gate"), -firing_cut(25.0 / kLatents));
  sae.set_sparse_step(s.range(0) != 0);
  train_steps(s, std::move(sae), 0, 1e-6);
}
void BM_StepGatedDensity(benchmark::State& s) {
  const double rho = double(s.range(0)) * 1e-4;
  GatedSae<> sae(kIn, kLatents, L1Penalty{2.0});
  Kokkos::deep_copy(sae.parameters().extra.at("b_gate"), -firing_cut(rho));
  sae.set_sparse_step(s.range(1) != 0);
  sae.set_sparse_step_max_density(1.0);
  train_steps(s, std::move(sae), 0, 1e-6);
}

void BM_StepBatchTopK(benchmark::State& s) { train_steps(s, BatchTopKSae<>(kIn, kLatents, BatchTopK{25, true, 0.01})); }
// BatchTopK with every product in GemmMath arg (0 fp32, 1 tf32, 2 bf16).
void BM_StepBatchTopKMath(benchmark::State& s) {
  ScopedGemmMath math(kMaths[s.range(0)]);
  BM_StepBatchTopK(s);
}
// Where a BatchTopK step's time goes: milliseconds per step of each kernel label (counters),
// measured with fences around every kernel (core/kernel_timer.hpp), so their sum exceeds the
// plain step's time; the label "(between kernels...)" holds the cuBLAS products and copies, and
// on Debian's Serial Kokkos also host_rows' OpenMP loops, which are no Kokkos kernels.
void BM_StepBatchTopKKernels(benchmark::State& state) {
  ScopedGemmMath math(kMaths[state.range(0)]);
  if (state.range(1) != 0 && !BatchTopKSae<>::supports_encoder_screening)
    return state.SkipWithError("the screened encoder runs on host builds");
  BatchTopKSae<> sae(kIn, kLatents, BatchTopK{25, true, 0.01});
  sae.set_encoder_screening(state.range(1) != 0);  // arg 1: the screened encoder
  const auto x = input();
  SaeParameters<float> grads = sae.parameters().zeros_like();
  Adam<float> adam(sae.parameters(), AdamConfig{});
  std::size_t num_dead = 0;
  const DeadMask dead = dead_latents(0, num_dead);
  sae.forward_backward(x, grads, dead, num_dead);  // first-use allocations stay out of the profile
  adam.step(sae.parameters(), grads, 3e-4);
  KernelTimer timer;
  for (auto _ : state) {
    sae.forward_backward(x, grads, dead, num_dead);
    adam.step(sae.parameters(), grads, 3e-4);
  }
  timer.stop();
  const double steps = double(state.iterations());
  for (const auto& [label, entry] : timer.entries())
    state.counters[label] = benchmark::Counter(1e3 * entry.seconds / steps);
  state.counters["sum_ms"] = 1e3 * timer.total_seconds() / steps;
}
// A quarter of the latents dead: AuxK selects k_aux = 384 of them per sample.
void BM_StepBatchTopKQuarterDead(benchmark::State& s) {
  train_steps(s, BatchTopKSae<>(kIn, kLatents, BatchTopK{25, true, 0.01}), 4);
}
// A sixteenth dead (256 <= k_aux = 384): AuxK takes every dead latent in every row. Arg 1: its GEMM
// form over the 256 dead columns; arg 0: the sparse kernels over the same entries.
void BM_StepBatchTopKFewDead(benchmark::State& s) {
  BatchTopKSae<> sae(kIn, kLatents, BatchTopK{25, true, 0.01});
  sae.aux_state().sparse.dense_when_all = s.range(0) != 0;
  train_steps(s, std::move(sae), 16);
}
// The screened encoder (kernels/screened_encoder.hpp): the product in BF16, FP32 dots where the
// selections read them. Arg: 0 no dead latent, 16 a sixteenth dead (AuxK takes them all), 4 a
// quarter (past an eighth: the screen runs the plain product): to set beside BM_StepBatchTopK,
// BM_StepBatchTopKFewDead/1 and BM_StepBatchTopKQuarterDead of the same run.
void BM_StepBatchTopKScreened(benchmark::State& s) {
  if (!BatchTopKSae<>::supports_encoder_screening) return s.SkipWithError("the screened encoder runs on host builds");
  BatchTopKSae<> sae(kIn, kLatents, BatchTopK{25, true, 0.01});
  sae.set_encoder_screening(true);
  train_steps(s, std::move(sae), static_cast<int>(s.range(0)));
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
void BM_StepMatryoshkaScreened(benchmark::State& s) {  // beside BM_StepMatryoshka: the screened encoder
  if (!BatchTopKSae<>::supports_encoder_screening) return s.SkipWithError("the screened encoder runs on host builds");
  MatryoshkaBatchTopKSae<> sae(kIn, kLatents, BatchTopK{25, true, 0.01}, {}, AuxK{}, Matryoshka{{128, 512, 2048}});
  sae.set_encoder_screening(true);
  train_steps(s, std::move(sae));
}
void BM_StepTopK(benchmark::State& s) { train_steps(s, TopKSae<>(kIn, kLatents, TopK{25, true})); }
// A sixteenth of TopK's latents dead (AuxK takes them all): beside BM_StepTopKScreened/16.
void BM_StepTopKFewDead(benchmark::State& s) { train_steps(s, TopKSae<>(kIn, kLatents, TopK{25, true}), 16); }
// TopK with the screened encoder: each row's candidates from its k-th largest lower end. Arg as
// BM_StepBatchTopKScreened's (0 no dead latent, 16 a sixteenth dead).
void BM_StepTopKScreened(benchmark::State& s) {
  if (!TopKSae<>::supports_encoder_screening) return s.SkipWithError("the screened encoder runs on host builds");
  TopKSae<> sae(kIn, kLatents, TopK{25, true});
  sae.set_encoder_screening(true);
  train_steps(s, std::move(sae), static_cast<int>(s.range(0)));
}
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
// The other steps with every product in BF16 (GemmMath::bf16: AMX tiles or AVX-512 BF16 on a host that has them),
// to set beside their FP32 rows and BM_EncoderGemmMath/2 of the same run.
template <void (*Step)(benchmark::State&)>
void BM_Bf16(benchmark::State& s) {
  ScopedGemmMath math(GemmMath::bf16);
  Step(s);
}
BENCHMARK(BM_StepBatchTopK)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepBatchTopKMath)->DenseRange(1, 2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepBatchTopKKernels)->Args({0, 0})->Args({2, 0})->Args({0, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepBatchTopKDense)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepBatchTopKScreened)->Arg(0)->Arg(16)->Arg(4)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepBatchTopKQuarterDead)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepBatchTopKFewDead)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepMatryoshka)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepMatryoshkaScreened)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepTopK)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepTopKFewDead)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepTopKScreened)->Arg(0)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepStandard)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepJumpRelu)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepGated)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepMatchingPursuit)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepStandardTrained)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepJumpReluTrained)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepGatedTrained)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Bf16, BM_StepMatryoshka)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Bf16, BM_StepTopK)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Bf16, BM_StepStandard)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Bf16, BM_StepJumpRelu)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Bf16, BM_StepGated)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Bf16, BM_StepMatchingPursuit)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Bf16, BM_StepStandardTrained)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Bf16, BM_StepJumpReluTrained)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Bf16, BM_StepGatedTrained)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StepStandardDensity)
    ->ArgsProduct({{100, 300, 600, 1000, 1500}, {1, 0}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_StepGatedDensity)
    ->ArgsProduct({{300, 600, 1000}, {1, 0}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) { return run_kokkos_benchmarks(argc, argv); }
