// The same source on every backend: nothing below names one. Built against Debian's Kokkos it
// runs Serial; against an OpenMP Kokkos, threaded; against a CUDA Kokkos (docs/building-for-cuda.md)
// every kernel runs on the GPU and every product goes to cuBLAS. It trains BatchTopK on a world,
// times the training steps, and evaluates.
//   same_source_on_cuda [PRESET] [SAMPLES]     (defaults: cpu-1k, 1,000,000; on an H100 try
//                                               synth-sae-bench-16k 20000000)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <synthsae/synthsae.hpp>

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  using namespace synthsae;
  const std::string name = argc > 1 ? argv[1] : "cpu-1k";
  const long samples = argc > 2 ? std::atol(argv[2]) : 1'000'000;
  if (samples < 1024) {
    std::fprintf(stderr, "same_source_on_cuda: SAMPLES = %s: must be at least one batch (1024)\n",
                 argc > 2 ? argv[2] : "");
    return 2;
  }
  try {
    std::printf("backend: %s (Kokkos %d)\n", ExecSpace::name(), kokkos_version);
    SyntheticModel world(preset(name));
    const std::size_t width = std::max<std::size_t>(world.num_features() / 4, 1);
    BatchTopKSae<> sae(world.hidden_dim(), width, BatchTopK{.k = 25});
    TrainerConfig cfg;
    cfg.training_samples = static_cast<std::size_t>(samples);
    cfg.batch_size = 1024;
    cfg.lr.lr = 3e-4;
    const auto start = std::chrono::steady_clock::now();
    const StepInfo last = Trainer(sae, world, cfg).fit();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s: %zu -> %zu latents, %ld steps in %.1f s (%.0f samples/s, data generation included)\n",
                name.c_str(), world.hidden_dim(), width, last.step, seconds, double(last.samples) / seconds);
    const auto m = evaluate_all(sae, world, EvalOptions{.samples = 50'000});
    std::printf("L0 %.2f  MCC %.4f  F1 %.4f  explained variance %.4f\n", m["sae_l0"].get<double>(),
                m["mcc"].get<double>(), m["classification"]["f1_score"].get<double>(),
                m["explained_variance"].get<double>());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "same_source_on_cuda: %s\n", e.what());
    return 1;
  }
  return 0;
}
