// F16 / BF16 conversions against hand-derived bit patterns, and exhaustive round trips.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>

#include "synthsae/core/float16.hpp"

using namespace synthsae;

TEST_CASE("float_to_f16 matches hand-derived IEEE binary16 patterns", "[core][float16]") {
  CHECK(float_to_f16(1.0f) == 0x3C00);
  CHECK(float_to_f16(-2.0f) == 0xC000);
  CHECK(float_to_f16(65504.0f) == 0x7BFF);                      // largest finite half
  CHECK(float_to_f16(65520.0f) == 0x7C00);                      // halfway to 2^16 rounds (to even) to inf
  CHECK(float_to_f16(0.1f) == 0x2E66);                          // 0.0999755859375
  CHECK(float_to_f16(std::ldexp(1.0f, -24)) == 0x0001);         // smallest subnormal
  CHECK(float_to_f16(std::ldexp(1.0f, -25)) == 0x0000);         // exactly half of it: ties to even (0)
  CHECK(float_to_f16(std::ldexp(1.5f, -25)) == 0x0001);         // above half: rounds up
  CHECK(float_to_f16(std::ldexp(3.0f, -25)) == 0x0002);         // 1.5 ulp ties to even (2)
  CHECK(float_to_f16(std::ldexp(1.0f, -14)) == 0x0400);         // smallest normal
  CHECK(float_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);  // tie between 1 and 1+2^-10: even
  CHECK(float_to_f16(1.0f + std::ldexp(3.0f, -11)) == 0x3C02);  // tie between odd and even: even
  CHECK(float_to_f16(std::numeric_limits<float>::infinity()) == 0x7C00);
  CHECK((float_to_f16(std::numeric_limits<float>::quiet_NaN()) & 0x7FFF) > 0x7C00);
  CHECK(float_to_f16(-0.0f) == 0x8000);
}

TEST_CASE("float_to_bf16 rounds to nearest even", "[core][float16]") {
  CHECK(float_to_bf16(1.0f) == 0x3F80);
  CHECK(float_to_bf16(0.1f) == 0x3DCD);                     // 0x3DCCCCCD: dropped half 0xCCCD > 0x8000 rounds up
  CHECK(float_to_bf16(bits_float(0x3F808000u)) == 0x3F80);  // exact tie, even stays
  CHECK(float_to_bf16(bits_float(0x3F818000u)) == 0x3F82);  // exact tie, odd rounds up
  CHECK((float_to_bf16(std::numeric_limits<float>::quiet_NaN()) & 0x7FFF) > 0x7F80);
}

TEST_CASE("every finite F16 and BF16 value survives a round trip through float", "[core][float16]") {
  int f16_failures = 0, bf16_failures = 0;
  for (std::uint32_t h = 0; h <= 0xFFFF; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    if ((bits & 0x7C00) != 0x7C00 && float_to_f16(f16_to_float(bits)) != bits) ++f16_failures;
    if ((bits & 0x7F80) != 0x7F80 && float_to_bf16(bf16_to_float(bits)) != bits) ++bf16_failures;
  }
  CHECK(f16_failures == 0);
  CHECK(bf16_failures == 0);
  CHECK(f16_to_float(0x0001) == std::ldexp(1.0f, -24));
  CHECK(f16_to_float(0x3555) == 0.333251953125f);
}
