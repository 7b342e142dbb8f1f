#pragma once
// The vocabulary of one training step, shared by every SAE and the trainer: the dead-latent mask
// the auxiliary losses read, the losses a step returns, and how the trainer scales a penalty's
// own coefficient (warm-up and autotuner).
#include <algorithm>
#include <cstdint>

#include "synthsae/core/backend.hpp"

namespace synthsae {

/// Per-latent flags: 1 where a latent has not fired for longer than the dead-latent window.
using DeadMask = Kokkos::View<const std::uint8_t*, MemSpace>;

struct StepLosses {
  double mse = 0, inner_mse = 0, penalty = 0, aux = 0;
  double total() const { return mse + inner_mse + penalty + aux; }
};

/// value(t) = final * min(t, W) / W (final when W = 0): the linear warm-up of a coefficient.
struct CoefficientWarmUp {
  double final_value = 1.0;
  long warm_up_steps = 0;
  double at(long t) const {
    if (warm_up_steps <= 0) return final_value;
    return final_value * double(std::min(t, warm_up_steps)) / double(warm_up_steps);
  }
};

/// The factor the trainer applies to a penalty's own coefficient at one step: the linear warm-up
/// over warm_up_steps, then the L0 autotuner's multiplier. lambda = (c min(t, W) / W) m, in that
/// order (the arithmetic of the published runs). A plain double is a multiplier with no warm-up.
struct PenaltyScale {
  double multiplier = 1.0;
  long step = 0;
  long warm_up_steps = 0;

  PenaltyScale(double m = 1.0) : multiplier(m) {}  // NOLINT: implicit on purpose (a bare multiplier)
  PenaltyScale(double m, long t, long warm_up) : multiplier(m), step(t), warm_up_steps(warm_up) {}

  /// lambda_t for a penalty whose own (final) coefficient is `coefficient`.
  double lambda(double coefficient) const {
    return CoefficientWarmUp{coefficient, warm_up_steps}.at(step) * multiplier;
  }
};

}  // namespace synthsae
