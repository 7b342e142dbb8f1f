#pragma once
// Philox-4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as
// 1, 2, 3", SC'11): a keyed bijection on 128-bit counters. Ten rounds, the constants
// of the paper; verified against the Random123 known-answer vectors in tests/core.
#include <cstdint>

#include "synthsae/core/backend.hpp"

namespace synthsae {

struct U32x4 {
  std::uint32_t v[4];
  SYNTHSAE_HD std::uint32_t operator[](int i) const { return v[i]; }
  SYNTHSAE_HD friend bool operator==(const U32x4& a, const U32x4& b) {
    return a.v[0] == b.v[0] && a.v[1] == b.v[1] && a.v[2] == b.v[2] && a.v[3] == b.v[3];
  }
  SYNTHSAE_HD friend bool operator!=(const U32x4& a, const U32x4& b) { return !(a == b); }
};

struct U32x2 {
  std::uint32_t v[2];
};

namespace detail {

SYNTHSAE_HD void mulhilo32(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
  const std::uint64_t product = static_cast<std::uint64_t>(a) * static_cast<std::uint64_t>(b);
  hi = static_cast<std::uint32_t>(product >> 32);
  lo = static_cast<std::uint32_t>(product);
}

SYNTHSAE_HD U32x4 philox_round(const U32x4& c, const U32x2& k) {
  constexpr std::uint32_t kMul0 = 0xD2511F53u;
  constexpr std::uint32_t kMul1 = 0xCD9E8D57u;
  std::uint32_t hi0, lo0, hi1, lo1;
  mulhilo32(kMul0, c.v[0], hi0, lo0);
  mulhilo32(kMul1, c.v[2], hi1, lo1);
  return U32x4{{hi1 ^ c.v[1] ^ k.v[0], lo1, hi0 ^ c.v[3] ^ k.v[1], lo0}};
}

}  // namespace detail

/// Philox-4x32 with 10 rounds: the 128-bit output block for (counter, key).
SYNTHSAE_HD U32x4 philox4x32_10(U32x4 counter, U32x2 key) {
  constexpr std::uint32_t kWeyl0 = 0x9E3779B9u;  // golden ratio
  constexpr std::uint32_t kWeyl1 = 0xBB67AE85u;  // sqrt(3) - 1
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key.v[0] += kWeyl0;
      key.v[1] += kWeyl1;
    }
    counter = detail::philox_round(counter, key);
  }
  return counter;
}

}  // namespace synthsae
