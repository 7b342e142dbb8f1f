#pragma once
// Counter-based random numbers: a draw is a pure function of (seed, stream, counter),
// never of thread scheduling, so CPU and GPU produce identical data at any thread count
// and a resumed run continues the same sequence.
//
// Layout of one Philox block: key = seed (64 bits), counter words 0-1 = counter (64 bits),
// words 2-3 = stream (64 bits). Callers give each independent consumer (a sample, a feature,
// a purpose) its own stream and advance the counter; see docs/architecture.md.
#include <cstdint>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/philox.hpp"

namespace synthsae {

/// Stateless: the raw 128-bit block for (seed, stream, counter).
SYNTHSAE_HD U32x4 philox_block(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
  const U32x4 ctr{{static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32),
                   static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)}};
  const U32x2 key{{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}};
  return philox4x32_10(ctr, key);
}

/// Uniform in the open interval (0, 1) from 23 random bits: (k + 1/2) 2^-23 is exact in float,
/// never 0 and never 1 (so log(u) and log(1-u) are finite).
SYNTHSAE_HD float u32_to_open01_float(std::uint32_t x) {
  return (static_cast<float>(x >> 9) + 0.5f) * (1.0f / 8388608.0f);
}

/// Uniform in (0, 1) from 52 random bits, likewise exact and never 0 or 1.
SYNTHSAE_HD double u64_to_open01_double(std::uint64_t x) {
  return (static_cast<double>(x >> 12) + 0.5) * (1.0 / 4503599627370496.0);
}

/// A sequential view of one (seed, stream): draws consume the 32-bit words of successive
/// Philox blocks. Cheap to create inside a kernel, one per independent consumer.
class RandomStream {
 public:
  SYNTHSAE_HD RandomStream(std::uint64_t seed, std::uint64_t stream, std::uint64_t first_counter = 0)
      : seed_(seed), stream_(stream), counter_(first_counter) {}

  SYNTHSAE_HD std::uint32_t next_u32() {
    if (word_ == 4) {
      block_ = philox_block(seed_, stream_, counter_++);
      word_ = 0;
    }
    return block_.v[word_++];
  }

  SYNTHSAE_HD std::uint64_t next_u64() {
    const std::uint64_t lo = next_u32();
    const std::uint64_t hi = next_u32();
    return (hi << 32) | lo;
  }

  /// Uniform in the open interval (0, 1).
  template <class T>
  SYNTHSAE_HD T uniform() {
    if constexpr (sizeof(T) <= 4) {
      return static_cast<T>(u32_to_open01_float(next_u32()));
    } else {
      return static_cast<T>(u64_to_open01_double(next_u64()));
    }
  }

  /// Uniform integer in [0, n), n >= 1 (Lemire's multiply-shift; bias below 2^-32 * n).
  SYNTHSAE_HD std::uint32_t uniform_below(std::uint32_t n) {
    return static_cast<std::uint32_t>((static_cast<std::uint64_t>(next_u32()) * n) >> 32);
  }

  /// Standard normal by Box-Muller; the second value of each pair is kept for the next call.
  template <class T>
  SYNTHSAE_HD T normal() {
    if (has_spare_) {
      has_spare_ = false;
      return static_cast<T>(spare_);
    }
    using Work = std::conditional_t<(sizeof(T) <= 4), float, double>;
    const Work u1 = uniform<Work>();
    const Work u2 = uniform<Work>();
    const Work radius = kmath::sqrt(Work(-2) * kmath::log(u1));
    const Work angle = Work(6.283185307179586476925286766559) * u2;
    spare_ = static_cast<double>(radius * kmath::sin(angle));
    has_spare_ = true;
    return static_cast<T>(radius * kmath::cos(angle));
  }

  /// Position for checkpoints: the next block's counter (a stream restarted there
  /// continues the sequence exactly when no partially used block or spare is pending).
  SYNTHSAE_HD std::uint64_t next_counter() const { return counter_; }

 private:
  std::uint64_t seed_;
  std::uint64_t stream_;
  std::uint64_t counter_;
  U32x4 block_{{0, 0, 0, 0}};
  int word_ = 4;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

/// Mixes several identifiers into one 64-bit stream id (SplitMix64 finaliser), for
/// callers that key streams by (purpose, step, sample, ...).
SYNTHSAE_HD std::uint64_t mix_stream(std::uint64_t a, std::uint64_t b) {
  std::uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace synthsae
