#pragma once
// Trained SAEs for a circuit (reference dark-matter.md §2.11: "component SAEs are trained
// separately, or are oracles"): one TopK SAE for the target x_L and one per component, trained
// together on one stream of the circuit's rows (each batch is drawn once and every SAE takes a
// step on its own part). The stream starts at sample 0, the analysis reads from 2^62 + 2^61: no
// row is both trained on and scored.
//
// The loop is the core of Trainer without what a circuit does not need (Trainer draws from a
// SyntheticModel; a circuit's rows come from CircuitWorld): Adam at a constant learning rate,
// TopK with its keys rescaled by decoder norms, no AuxK (dead latents are not revived).
#include <array>
#include <cstdint>
#include <functional>
#include <string>

#include "synthsae/analysis/circuit_world.hpp"
#include "synthsae/architectures/topk.hpp"
#include "synthsae/sae/inference/export.hpp"
#include "synthsae/train/adam.hpp"

namespace synthsae::analysis {

struct CircuitTrainingOptions {
  std::size_t width = 128;
  int k = 8;
  std::uint64_t samples = 2'000'000;
  std::size_t batch = 1024;
  double lr = 3e-3;
  std::uint64_t seed = 1;
  /// Called as (rows done, rows).
  std::function<void(std::uint64_t, std::uint64_t)> progress;

  void validate(std::size_t smallest_dim) const {
    if (width < 1) throw ConfigError("width", show(width), "must be >= 1");
    if (k < 1 || std::size_t(k) > width) throw ConfigError("k", show(k), "must be in [1, width = " + show(width) + "]");
    if (batch < 1) throw ConfigError("batch", show(batch), "must be >= 1");
    if (samples < batch) throw ConfigError("samples", show(samples), "must be at least one batch (" + show(batch) + ")");
    if (!(lr > 0 && std::isfinite(lr))) throw ConfigError("lr", show(lr), "must be finite and > 0");
    if (smallest_dim < 1) throw ConfigError("hidden_dim/attn_dim", show(smallest_dim), "must be >= 1");
  }
};

/// The trained SAEs: [0] target, [1 + c] component c.
struct CircuitTrainedSaes {
  std::array<InferenceSae, 4> sae;
  std::array<double, 4> last_mse{};  ///< each SAE's reconstruction loss (the mse term) on its last batch
};

inline CircuitTrainedSaes train_circuit_saes(const CircuitConfig& cfg, const CircuitTrainingOptions& opt) {
  cfg.validate();
  opt.validate(static_cast<std::size_t>(std::min(cfg.hidden_dim, cfg.attn_dim)));
  const std::uint64_t steps = opt.samples / opt.batch;
  CircuitWorld stream(cfg, steps * opt.batch, 0);
  const std::array<std::size_t, 4> dims{stream.dim(), stream.component_dim(CircuitComponent::prev),
                                        stream.component_dim(CircuitComponent::mlp),
                                        stream.component_dim(CircuitComponent::attn)};
  using Arch = architectures::TopK;
  std::array<Arch::sae_type, 4> saes{
      Arch::make({dims[0], opt.width, opt.k, {}, {}, 1, opt.seed * 4 + 0}),
      Arch::make({dims[1], opt.width, opt.k, {}, {}, 1, opt.seed * 4 + 1}),
      Arch::make({dims[2], opt.width, opt.k, {}, {}, 1, opt.seed * 4 + 2}),
      Arch::make({dims[3], opt.width, opt.k, {}, {}, 1, opt.seed * 4 + 3})};
  std::array<Adam<float>, 4> adam{Adam<float>(saes[0].parameters(), {}), Adam<float>(saes[1].parameters(), {}),
                                  Adam<float>(saes[2].parameters(), {}), Adam<float>(saes[3].parameters(), {})};
  std::array<SaeParameters<float>, 4> grads{saes[0].parameters().zeros_like(), saes[1].parameters().zeros_like(),
                                            saes[2].parameters().zeros_like(), saes[3].parameters().zeros_like()};
  CircuitTrainedSaes out;
  CircuitChunk chunk;
  for (std::uint64_t step = 0; step < steps; ++step) {
    stream.read_circuit(step * opt.batch, opt.batch, chunk);
    for (int s = 0; s < 4; ++s) {
      const Matrix<float>& x = s == 0 ? chunk.target.x : chunk.component[s - 1].x;
      const StepLosses losses = saes[s].forward_backward(x, grads[s]);
      if (!adam[s].step(saes[s].parameters(), grads[s], opt.lr))
        throw NumericalError("circuit SAE " + show(s) + ": a non-finite loss or gradient at step " + show(step + 1));
      out.last_mse[s] = losses.mse;
    }
    if (opt.progress) opt.progress((step + 1) * opt.batch, steps * opt.batch);
  }
  for (int s = 0; s < 4; ++s) out.sae[s] = export_inference(saes[s]);
  return out;
}

}  // namespace synthsae::analysis
