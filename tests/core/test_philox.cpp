// Philox-4x32-10 against the Random123 known-answer vectors (kat_vectors, "philox4x32 10").
#include <catch2/catch.hpp>

#include "synthsae/core/philox.hpp"

using synthsae::U32x2;
using synthsae::U32x4;

TEST_CASE("philox4x32_10 reproduces the Random123 known-answer vectors", "[core][rng]") {
  CHECK(synthsae::philox4x32_10({{0, 0, 0, 0}}, {{0, 0}}) ==
        U32x4{{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}});
  CHECK(synthsae::philox4x32_10({{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, {{0xffffffffu, 0xffffffffu}}) ==
        U32x4{{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}});
  CHECK(synthsae::philox4x32_10({{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, {{0xa4093822u, 0x299f31d0u}}) ==
        U32x4{{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}});
}

TEST_CASE("philox4x32_10 is a different permutation for different keys", "[core][rng]") {
  const U32x4 ctr{{1, 2, 3, 4}};
  CHECK(synthsae::philox4x32_10(ctr, {{0, 0}}) != synthsae::philox4x32_10(ctr, {{1, 0}}));
  CHECK(synthsae::philox4x32_10(ctr, {{0, 0}}) != synthsae::philox4x32_10(ctr, {{0, 1}}));
}
