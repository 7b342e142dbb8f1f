// Compose SAE architectures the paper did not publish from the same policies, and train them
// (the penalty takes its bandwidth from the JumpReLU activation: one source):
//   * Matryoshka levels over a JumpReLU activation (with its L0 step penalty);
//   * TopK with an extra L1 term on the decoder-norm-weighted activations.
#include <cstdio>

#include <synthsae/synthsae.hpp>

using namespace synthsae;

using MatryoshkaJumpRelu = Sae<JumpRelu, L0StepPenalty, NoAux, Matryoshka>;
using TopKWithL1 = Sae<TopK, L1Penalty, AuxK>;

template <class S>
void train_and_report(const char* name, S sae, SyntheticModel& world) {
  TrainerConfig cfg;
  cfg.training_samples = 200'000;
  cfg.lr.lr = 1e-3;
  Trainer(sae, world, cfg).fit();
  const nlohmann::json m = evaluate_all(sae, world, EvalOptions{.samples = 20'000});
  std::printf("%-22s L0 %5.1f  MCC %.3f  F1 %.3f  explained variance %.3f\n", name, m["sae_l0"].get<double>(),
              m["mcc"].get<double>(), m["classification"]["f1_score"].get<double>(),
              m["explained_variance"].get<double>());
}

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  SyntheticModel world(preset("cpu-1k"));
  const std::size_t d = world.hidden_dim(), width = 256;
  train_and_report("Matryoshka JumpReLU",
                   MatryoshkaJumpRelu(d, width, JumpRelu{.init_threshold = 0.5, .bandwidth = 0.5},
                                      L0StepPenalty{.coefficient = 0.3}, {}, Matryoshka{{32, 128}}, 0.5),
                   world);
  train_and_report("TopK + L1", TopKWithL1(d, width, TopK{.k = 8}, L1Penalty{.coefficient = 0.05}), world);
  return 0;
}
