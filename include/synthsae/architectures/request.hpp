#pragma once
// What an architecture needs to build and configure one run: shapes, the sparsity knobs a user
// gave (k for the TopK family and Matching Pursuit, an L1 coefficient or a target L0 for the
// coefficient architectures), the run length and the seed. Which knobs an architecture takes is
// its `knobs` (architectures/*.hpp); the CLI rejects the others from that, not from names.
#include <cstddef>
#include <cstdint>
#include <optional>

namespace synthsae::architectures {

struct Request {
  std::size_t d_in = 0, width = 0;
  int k = 25;                                      ///< active latents per sample (TopK family), selections (MP)
  std::optional<double> l1 = std::nullopt;         ///< L1 coefficient (the recipe's when unset)
  std::optional<double> target_l0 = std::nullopt;  ///< autotune the sparsity coefficient to this L0
  long total_steps = 1;
  std::uint64_t seed = 0;
};

/// The knobs of Request an architecture reads.
struct Knobs {
  bool k = false, l1 = false, target_l0 = false;
};

}  // namespace synthsae::architectures
