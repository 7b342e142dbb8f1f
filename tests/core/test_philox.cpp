// Philox-4x32-10 against the Random123 known-answer vectors (kat_vectors, "philox4x32 10").
#include <catch2/catch.hpp>

#include "synthsae/core/philox.hpp"
#include "synthsae/core/philox_lanes.hpp"

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

TEST_CASE("the sampler's Philox lanes (AVX2 where compiled in) equal philox4x32_10 lane by lane", "[core][rng]") {
  // Seeds, streams and the counter's high word with both halves set, counters across the 32-bit range.
  std::uint32_t c[16], fast[4][16], plain[4][16];
  std::uint32_t* const fast_words[4] = {fast[0], fast[1], fast[2], fast[3]};
  std::uint32_t* const plain_words[4] = {plain[0], plain[1], plain[2], plain[3]};
  std::uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&] { return state = state * 6364136223846793005ull + 1442695040888963407ull; };
  int compared = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const std::uint64_t seed = next(), stream = next();
    const std::uint32_t c_hi = trial % 2 == 0 ? 0u : static_cast<std::uint32_t>(next() >> 32);
    for (auto& x : c) x = static_cast<std::uint32_t>(next() >> 32);
    synthsae::detail::philox_lanes<16>(seed, stream, c, c_hi, fast_words);
    synthsae::detail::philox_lanes_plain<16>(seed, stream, c, c_hi, plain_words);
    for (int l = 0; l < 16; ++l) {
      const U32x4 ref = synthsae::philox4x32_10(
          {{c[l], c_hi, static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)}},
          {{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}});
      for (int j = 0; j < 4; ++j) compared += (fast[j][l] == ref[j]) + (plain[j][l] == ref[j]);
    }
  }
  CHECK(compared == 200 * 16 * 8);
}

#if defined(SYNTHSAE_PHILOX_AVX2)
TEST_CASE("interleaved Philox jobs (four streams at once) equal philox4x32_10 lane by lane", "[core][rng]") {
  // Each job its own stream and counters, so a job reading another's state would show.
  constexpr int G = 4;
  std::uint32_t c[G][8], words[G][4][8];
  std::uint64_t state = 0x243F6A8885A308D3ull;
  auto next = [&] { return state = state * 6364136223846793005ull + 1442695040888963407ull; };
  int compared = 0;
  for (int trial = 0; trial < 100; ++trial) {
    const std::uint64_t seed = next();
    const std::uint32_t c_hi = static_cast<std::uint32_t>(next() >> 32);
    synthsae::detail::PhiloxJob8 jobs[G];
    for (int g = 0; g < G; ++g) {
      for (auto& x : c[g]) x = static_cast<std::uint32_t>(next() >> 32);
      jobs[g] = {next(), c[g], {words[g][0], words[g][1], words[g][2], words[g][3]}};
    }
    if (trial % 2 == 0) {
      synthsae::detail::philox_x8_jobs<G>(seed, c_hi, jobs);
    } else {
      for (int g = 0; g < G; ++g) synthsae::detail::philox_x8_jobs<1>(seed, c_hi, jobs + g);
    }
    for (int g = 0; g < G; ++g)
      for (int l = 0; l < 8; ++l) {
        const U32x4 ref = synthsae::philox4x32_10(
            {{c[g][l], c_hi, static_cast<std::uint32_t>(jobs[g].stream), static_cast<std::uint32_t>(jobs[g].stream >> 32)}},
            {{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}});
        for (int j = 0; j < 4; ++j) compared += words[g][j][l] == ref[j];
      }
  }
  CHECK(compared == 100 * G * 8 * 4);
}
#endif
