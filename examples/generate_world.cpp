// Generate a synthetic world from a preset, print its statistics and save it in SAELens's layout
// (synthetic_model_config.json, synthetic_model.safetensors, hierarchy.json).
//   generate_world [PRESET] [OUT_DIR]
#include <cstdio>
#include <string>

#include <synthsae/synthsae.hpp>

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  using namespace synthsae;
  const std::string name = argc > 1 ? argv[1] : "cpu-1k";
  SyntheticModel world(preset(name));
  const FiringStats firing = firing_stats(world, 10'000, 1024);
  const SuperpositionStats sup = superposition_stats(world.feature_vectors());
  std::printf("%s: %zu features in %zu dimensions, %zu in the hierarchy\n", name.c_str(), world.num_features(),
              world.hidden_dim(), world.hierarchy().num_hierarchical_features());
  std::printf("true L0 %.2f (first 1024 features: %.2f), rho_mm %.3f\n", firing.true_l0, firing.true_l0_first_k,
              sup.rho_mm);
  saelens::save_synthetic_model(world, argc > 2 ? argv[2] : "out/" + name);
  return 0;
}
