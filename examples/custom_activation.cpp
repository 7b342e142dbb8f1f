// Write your own activation (docs/policies.md#write-your-own-activation): GainedRelu, a ReLU with
// a learned per-latent gain (gained_relu.hpp), composed with the library's L1 penalty and trained
// on the cpu-1k world. Nothing in the library changes: the Sae template, the Trainer, the
// evaluation and checkpoints take it as it is.
#include <cstdio>

#include <synthsae/synthsae.hpp>

#include "gained_relu.hpp"

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  using namespace synthsae;
  SyntheticModel world(preset("cpu-1k"));
  using GainedSae = Sae<example::GainedRelu, L1Penalty>;
  GainedSae sae(world.hidden_dim(), 256, example::GainedRelu{}, L1Penalty{.coefficient = 1.0});
  TrainerConfig cfg = recipes::trainer_config(300'000, 1024, 1e-3);
  cfg.coefficient_warm_up_steps = cfg.total_steps() / 3;
  Trainer(sae, world, cfg).fit();
  const nlohmann::json m = evaluate_all(sae, world, EvalOptions{.samples = 20'000});
  std::printf("GainedRelu + L1: L0 %.1f  MCC %.3f  F1 %.3f  explained variance %.3f\n", m["sae_l0"].get<double>(),
              m["mcc"].get<double>(), m["classification"]["f1_score"].get<double>(),
              m["explained_variance"].get<double>());
  return 0;
}
