// Train one SAE from C++: a BatchTopK SAE on the cpu-1k world, then its ground-truth metrics,
// then save it in SAELens's layout.
//   train_sae [OUT_DIR]
#include <cstdio>

#include <synthsae/synthsae.hpp>

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  using namespace synthsae;
  SyntheticModel world(preset("cpu-1k"));  // 1,024 features in 128 dimensions

  BatchTopKSae<> sae(world.hidden_dim(), 256, BatchTopK{.k = 8});
  TrainerConfig cfg;
  cfg.training_samples = 300'000;
  cfg.batch_size = 1024;
  cfg.lr.lr = 1e-3;
  ProgressDisplay progress;
  Trainer(sae, world, cfg).fit(progress);

  const auto metrics = evaluate_all(sae, world, EvalOptions{.samples = 50'000});
  std::printf("%s\n", metrics.dump(2).c_str());
  io::save_sae(export_inference(sae), argc > 1 ? argv[1] : "out/train_sae");  // cfg.json + sae_weights.safetensors
  return 0;
}
