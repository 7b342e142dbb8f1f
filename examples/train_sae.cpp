// Train one SAE from C++: a BatchTopK SAE on the cpu-1k world with the recipe behind the README's
// numbers (architectures/batchtopk.hpp, train/run_recipes.hpp), then its ground-truth metrics,
// then save it in SAELens's layout.
//   train_sae [OUT_DIR]
#include <cstdio>

#include <synthsae/synthsae.hpp>

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  using namespace synthsae;
  SyntheticModel world(preset("cpu-1k"));  // 1,024 features in 128 dimensions

  // 300,000 samples = 292 steps: the recipe scales the dead-latent window to the run (14 steps,
  // not the reference's 1,000), so AuxK acts on latents that die.
  TrainerConfig cfg = recipes::trainer_config(300'000, 1024, 1e-3);
  const architectures::Request request{
      .d_in = world.hidden_dim(), .width = 256, .k = 8, .total_steps = cfg.total_steps()};
  architectures::BatchTopK::configure(cfg, request);
  auto sae = architectures::BatchTopK::make(request);  // BatchTopKSae<float>
  ProgressDisplay progress;
  Trainer(sae, world, cfg).fit(progress);

  const auto metrics = evaluate_all(sae, world, EvalOptions{.samples = 50'000});
  std::printf("%s\n", metrics.dump(2).c_str());
  saelens::save_sae(export_inference(sae), argc > 1 ? argv[1] : "out/train_sae");  // cfg.json + sae_weights.safetensors
  return 0;
}
