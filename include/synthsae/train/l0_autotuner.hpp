#pragma once
// The L0 autotuner of the SynthSAEBench experiments (reference §7.7): a multiplier m on the
// sparsity coefficient, adjusted after each step from a smoothed batch L0.
#include <algorithm>
#include <cmath>

#include "synthsae/core/error.hpp"

namespace synthsae {

struct L0AutotunerConfig {
  double target_l0 = 25;
  long start_step = 0;
  double gain_scale = 10;
  double integral_gain = 3e-4;
  double convergence_gain = 1e-2;
  double deadband = 0;
  double smoothing = 0.99;  ///< EMA factor of the smoothed L0 (the reference's 0.99: ~100 steps)
  void validate() const {
    if (!(target_l0 > 0)) throw ConfigError("target_l0", std::to_string(target_l0), "must be > 0");
    if (!(smoothing >= 0 && smoothing < 1))
      throw ConfigError("autotune smoothing", std::to_string(smoothing), "must be in [0, 1)");
  }
};

struct L0Autotuner {
  L0AutotunerConfig cfg;
  double multiplier = 1.0;
  double smoothed = 0, rate = 0;
  bool started = false;

  /// Feeds the batch L0 of step `step`; returns the multiplier for the next step's loss.
  double update(double l0, long step) {
    if (!started) {
      smoothed = l0, rate = 0, started = true;
    } else {
      const double prev = smoothed;
      smoothed = cfg.smoothing * smoothed + (1 - cfg.smoothing) * l0;
      rate = 0.95 * rate + 0.05 * (smoothed - prev);
    }
    if (step < cfg.start_step) return multiplier;
    const double e = smoothed - cfg.target_l0;
    if (std::fabs(e) <= cfg.deadband) return multiplier;
    const double g = e * rate < 0 ? cfg.convergence_gain : 1.0;
    const double adj = cfg.integral_gain * g * std::tanh(cfg.gain_scale * std::fabs(e) / cfg.target_l0);
    multiplier = std::clamp(e > 0 ? multiplier * (1 + adj) : multiplier * (1 - adj), 0.01, 100.0);
    return multiplier;
  }
};

}  // namespace synthsae
