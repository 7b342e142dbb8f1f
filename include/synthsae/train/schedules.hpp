#pragma once
// Learning-rate schedules (reference §7.3) and coefficient warm-up (§7.5).
#include <cmath>
#include <string>

#include "synthsae/core/error.hpp"
#include "synthsae/sae/step_interface.hpp"  // CoefficientWarmUp

namespace synthsae {

/// Factor-based schedule over `total_steps` optimiser steps: linear warm-up from 1/W to 1 over
/// W steps; then constant, or cosine annealing to lr_end; then (if D > 0) a linear decay from
/// lr_end (lr for "constant") to 0 over the last D steps.
struct LrSchedule {
  enum class Kind { constant, cosine };
  Kind kind = Kind::constant;
  double lr = 3e-4;
  double lr_end = -1;  ///< < 0: lr / 10 (ignored by "constant", whose decay starts from lr)
  long warm_up_steps = 0;
  long decay_steps = 0;
  long total_steps = 1;

  void validate() const {
    if (!(lr > 0)) throw ConfigError("lr", std::to_string(lr), "must be > 0");
    if (warm_up_steps < 0) throw ConfigError("lr_warm_up_steps", std::to_string(warm_up_steps), "must be >= 0");
    if (decay_steps < 0) throw ConfigError("lr_decay_steps", std::to_string(decay_steps), "must be >= 0");
    if (warm_up_steps + decay_steps > total_steps) {
      throw ConfigError("lr_warm_up_steps + lr_decay_steps", std::to_string(warm_up_steps + decay_steps),
                        "exceeds the " + std::to_string(total_steps) + " training steps");
    }
    if (kind == Kind::cosine && decay_steps > 0 && end() == 0)
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
    const double progress = double(t - w) / double(main);
    return end() + (lr - end()) * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
};

}  // namespace synthsae
