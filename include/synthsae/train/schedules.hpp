#pragma once
// Learning-rate schedules (reference §7.3) and coefficient warm-up (§7.5).
#include <algorithm>
#include <cmath>
#include <string>

#include "synthsae/core/error.hpp"
#include "synthsae/sae/step_interface.hpp"  // CoefficientWarmUp

namespace synthsae {

/// Factor-based schedule over `total_steps` optimiser steps: linear warm-up from 1/W to 1 over
/// W steps; then constant, or cosine annealing to lr_end (SAELens "cosineannealing"), or cosine
/// annealing restarted `restart_cycles` times (SAELens "cosineannealingwarmrestarts": torch's
/// CosineAnnealingWarmRestarts with T_0 = main steps / cycles, T_mult 1); then (if D > 0) a linear
/// decay from lr_end (lr for "constant") to 0 over the last D steps.
struct LrSchedule {
  enum class Kind { constant, cosine, cosine_warm_restarts };
  Kind kind = Kind::constant;
  double lr = 3e-4;
  double lr_end = -1;  ///< < 0: lr / 10 (ignored by "constant", whose decay starts from lr)
  long warm_up_steps = 0;
  long decay_steps = 0;
  long total_steps = 1;
  long restart_cycles = 1;  ///< n_restart_cycles (cosine_warm_restarts only)

  void validate() const {
    if (restart_cycles < 1) throw ConfigError("n_restart_cycles", std::to_string(restart_cycles), "must be >= 1");
    if (!(lr > 0 && std::isfinite(lr))) throw ConfigError("lr", show(lr), "must be finite and > 0");
    if (warm_up_steps < 0) throw ConfigError("lr_warm_up_steps", std::to_string(warm_up_steps), "must be >= 0");
    if (decay_steps < 0) throw ConfigError("lr_decay_steps", std::to_string(decay_steps), "must be >= 0");
    if (warm_up_steps + decay_steps > total_steps) {
      throw ConfigError("lr_warm_up_steps + lr_decay_steps", std::to_string(warm_up_steps + decay_steps),
                        "exceeds the " + std::to_string(total_steps) + " training steps");
    }
    if (kind != Kind::constant && decay_steps > 0 && end() == 0)
      throw ConfigError("lr_end", "0", "cannot be 0 with lr_decay_steps > 0");
  }

  double end() const {
    if (kind == Kind::constant) return lr;
    return lr_end < 0 ? lr / 10 : lr_end;
  }

  /// Learning rate of optimiser step t (0-based).
  double at(long t) const {
    const long w = warm_up_steps, d = decay_steps, main = total_steps - w - d;
    if (t < w) return lr * (w == 1 ? 1.0 : 1.0 / double(w) + (1.0 - 1.0 / double(w)) * double(t) / double(w - 1));
    if (t >= total_steps - d && d > 0) {
      const double frac = double(t - (total_steps - d)) / double(d);
      return end() * (1.0 - frac);
    }
    if (kind == Kind::constant || main <= 1) return lr;
    double progress = double(t - w) / double(main);
    if (kind == Kind::cosine_warm_restarts) {
      const long period = std::max<long>(main / restart_cycles, 1);
      progress = double((t - w) % period) / double(period);
    }
    return end() + (lr - end()) * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
};

/// SAELens's lr_scheduler_name of a schedule kind.
inline const char* lr_scheduler_name(LrSchedule::Kind k) {
  switch (k) {
    case LrSchedule::Kind::cosine: return "cosineannealing";
    case LrSchedule::Kind::cosine_warm_restarts: return "cosineannealingwarmrestarts";
    case LrSchedule::Kind::constant: break;
  }
  return "constant";
}

}  // namespace synthsae
