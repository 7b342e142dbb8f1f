// Evaluate an SAE saved by SAELens (or by synthsae) against a world saved in SAELens's layout:
// every SynthSAEBench metric, and the BatchTopK-style comparison of an exported threshold.
//   evaluate_saelens_sae WORLD_DIR SAE_DIR [SAMPLES]
#include <cstdio>
#include <cstdlib>

#include <synthsae/synthsae.hpp>

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: evaluate_saelens_sae WORLD_DIR SAE_DIR [SAMPLES]\n");
    return 2;
  }
  try {
    synthsae::SyntheticModel world = synthsae::saelens::load_synthetic_model(argv[1]);
    synthsae::InferenceSae sae = synthsae::saelens::load_sae(argv[2]);
    synthsae::EvalOptions options;
    if (argc > 3) options.samples = std::strtoull(argv[3], nullptr, 10);
    std::printf("%s\n", synthsae::evaluate_all(sae, world, options).dump(2).c_str());
  } catch (const synthsae::Error& e) {
    std::fprintf(stderr, "evaluate_saelens_sae: %s\n", e.what());
    return 1;
  }
  return 0;
}
