#pragma once
// Training settings that depend on a run's length. The reference's settings are tuned for its
// 195,312-step runs; shorter runs (every CPU run) keep the same proportions, or the dead-latent
// window outlasts the run (AuxK never acts) and the autotuner lags. Every architecture's recipe
// (architectures/*.hpp) starts from these; the README's numbers come from them.
#include <algorithm>

#include "synthsae/train/l0_autotuner.hpp"
#include "synthsae/train/trainer.hpp"

namespace synthsae::recipes {

/// The reference's run length in steps (200M samples at batch 1,024: 195,312).
inline constexpr double kReferenceSteps = 195312.0;

/// The reference's 1,000-step dead window is 0.5 % of its run; a short run scales it (>= 10 steps).
inline long dead_feature_window(long total_steps) { return std::clamp<long>(total_steps / 20, 10, 1000); }

/// The reference's integral gain 3e-4 gives the same total adjustment capacity over any run
/// length (capped at 0.05 per step).
inline double autotune_gain(long total_steps) {
  return std::min(0.05, 3e-4 * kReferenceSteps / double(std::max<long>(total_steps, 1)));
}

/// The reference's L0 smoothing (0.99, ~100 steps) is 0.05 % of its run; a short run keeps that
/// proportion (at least 5 steps), or the smoothed L0 lags the real one and the controller overshoots.
inline double autotune_smoothing(long total_steps) {
  const double steps = std::max(5.0, 100.0 * double(total_steps) / kReferenceSteps);
  return std::min(0.99, 1.0 - 1.0 / steps);
}

/// The L0 autotuner for a run of `total_steps`, acting from `start`.
inline L0AutotunerConfig autotune(double target_l0, long start, long total_steps) {
  L0AutotunerConfig c{target_l0, start, 10, autotune_gain(total_steps), 1e-2, 0};
  c.smoothing = autotune_smoothing(total_steps);
  return c;
}

/// The sample stream of a training run with seed `run_seed` on a world: seed 0 reads the world's
/// own stream, every other seed its own stream (splitmix64 of both), so that runs with different
/// seeds see different data, as SAELens's runs (whose data come from the unseeded global
/// generator) do, and the reported seed spread includes the data's share.
inline std::uint64_t data_stream_seed(std::uint64_t world_stream, std::uint64_t run_seed) {
  if (run_seed == 0) return world_stream;
  std::uint64_t z = world_stream + 0x9E3779B97F4A7C15ull * (run_seed + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// A TrainerConfig for `samples` training samples at `batch` and learning rate `lr`, with the
/// run-length-scaled dead-latent window. Architectures add their own settings (configure()).
inline TrainerConfig trainer_config(std::size_t samples, std::size_t batch, double lr) {
  TrainerConfig cfg;
  cfg.training_samples = samples;
  cfg.batch_size = batch;
  cfg.lr.lr = lr;
  cfg.dead_feature_window = dead_feature_window(cfg.total_steps());
  return cfg;
}

}  // namespace synthsae::recipes
