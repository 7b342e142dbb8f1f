// Counter-based streams: layout, determinism across execution (serial loop vs Kokkos
// parallel_for on the default space, any thread count), and distribution moments.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "synthsae/core/counter_rng.hpp"

using synthsae::RandomStream;

TEST_CASE("philox_block packs (seed, stream, counter) as documented", "[core][rng]") {
  const std::uint64_t seed = 0x299f31d0a4093822ull;
  const std::uint64_t stream = 0x0370734413198a2eull;
  const std::uint64_t counter = 0x85a308d3243f6a88ull;
  // The Random123 "pi" known answer, reached through the documented packing.
  CHECK(synthsae::philox_block(seed, stream, counter) ==
        synthsae::U32x4{{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}});
}

TEST_CASE("RandomStream consumes the words of successive blocks in order", "[core][rng]") {
  RandomStream s(7, 11, 5);
  const auto b5 = synthsae::philox_block(7, 11, 5);
  const auto b6 = synthsae::philox_block(7, 11, 6);
  for (int i = 0; i < 4; ++i) CHECK(s.next_u32() == b5[i]);
  CHECK(s.next_counter() == 6);
  CHECK(s.next_u32() == b6[0]);
  CHECK(s.next_counter() == 7);
}

TEST_CASE("uniform draws stay strictly inside (0, 1), including at the extreme words", "[core][rng]") {
  CHECK(synthsae::u32_to_open01_float(0u) > 0.0f);
  CHECK(synthsae::u32_to_open01_float(0xffffffffu) < 1.0f);
  CHECK(synthsae::u64_to_open01_double(0ull) > 0.0);
  CHECK(synthsae::u64_to_open01_double(~0ull) < 1.0);
  CHECK(synthsae::u32_to_open01_float(0x80000000u) == 0.5f + 0.5f / 8388608.0f);  // (2^22 + 1/2) 2^-23
}

TEST_CASE("draws do not depend on how a kernel is scheduled", "[core][rng]") {
  constexpr int kSamples = 4096;
  constexpr int kPerSample = 7;  // odd, so normals straddle Box-Muller pairs and blocks
  Kokkos::View<double**> device("draws", kSamples, kPerSample);
  Kokkos::parallel_for(
      "fill", Kokkos::RangePolicy<>(0, kSamples), KOKKOS_LAMBDA(int i) {
        RandomStream s(42, static_cast<std::uint64_t>(i));
        for (int j = 0; j < kPerSample; ++j) device(i, j) = (j % 2) ? s.normal<double>() : s.uniform<double>();
      });
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), device);
  int mismatches = 0;
  for (int i = kSamples - 1; i >= 0; --i) {  // reverse order on purpose
    RandomStream s(42, static_cast<std::uint64_t>(i));
    for (int j = 0; j < kPerSample; ++j) {
      const double expected = (j % 2) ? s.normal<double>() : s.uniform<double>();
      mismatches += expected != host(i, j);
    }
  }
  CHECK(mismatches == 0);
}

TEMPLATE_TEST_CASE("normal draws have the moments of N(0, 1)", "[core][rng]", float, double) {
  // n = 2^20 draws. Standard errors: mean 1/sqrt(n) = 9.8e-4; variance sqrt(2/n) = 1.4e-3;
  // fourth moment sqrt((E z^8 - (E z^4)^2)/n) = sqrt(96/n) = 9.6e-3. Tolerances are 5 SE,
  // so a correct generator fails with probability below 1e-6 per check (and the seed is fixed).
  constexpr std::size_t n = std::size_t(1) << 20;
  double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
  std::size_t beyond3 = 0;
  for (std::size_t stream = 0; stream < 256; ++stream) {
    RandomStream s(2024, stream);
    for (std::size_t i = 0; i < n / 256; ++i) {
      const double z = s.template normal<TestType>();
      s1 += z, s2 += z * z, s3 += z * z * z, s4 += z * z * z * z;
      beyond3 += std::fabs(z) > 3.0;
    }
  }
  const double mean = s1 / n, m2 = s2 / n, m3 = s3 / n, m4 = s4 / n;
  CHECK(std::fabs(mean) < 5 * 9.8e-4);
  CHECK(std::fabs(m2 - 1.0) < 5 * 1.4e-3);
  CHECK(std::fabs(m3) < 5 * std::sqrt(15.0 / n));  // Var(z^3) = E z^6 = 15
  CHECK(std::fabs(m4 - 3.0) < 5 * 9.6e-3);
  // P(|z| > 3) = 0.0026998; binomial SE sqrt(p(1-p)/n) = 5.1e-5: tests the tails, not just moments.
  CHECK(std::fabs(double(beyond3) / n - 0.0026998) < 5 * 5.1e-5);
}

TEMPLATE_TEST_CASE("uniform draws are uniform", "[core][rng]", float, double) {
  // Histogram of n = 2^20 draws in 64 bins: each count is Binomial(n, 1/64) with SE
  // sqrt(n p (1-p)) = 127; 6 SE per bin keeps the family-wise false alarm rate below 1e-7.
  // The chi-square statistic (63 dof: mean 63, sd 11.2) must stay below 63 + 6*11.2.
  constexpr std::size_t n = std::size_t(1) << 20;
  constexpr int bins = 64;
  std::vector<double> count(bins, 0.0);
  RandomStream s(99, 3);
  std::size_t outside = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double u = s.template uniform<TestType>();
    if (!(u > 0.0 && u < 1.0)) {
      ++outside;
      continue;
    }
    count[static_cast<int>(u * bins)] += 1;
  }
  REQUIRE(outside == 0);
  const double expected = double(n) / bins;
  double chi2 = 0;
  for (double c : count) {
    CHECK(std::fabs(c - expected) < 6 * 127.0);
    chi2 += (c - expected) * (c - expected) / expected;
  }
  CHECK(chi2 < 63 + 6 * 11.2);
}

TEST_CASE("uniform_below covers its range evenly", "[core][rng]") {
  // 7 outcomes, n = 70000: each count ~ Binomial(n, 1/7), SE = sqrt(n (1/7)(6/7)) = 92.6; 6 SE.
  RandomStream s(5, 5);
  std::vector<int> count(7, 0);
  for (int i = 0; i < 70000; ++i) {
    ++count.at(s.uniform_below(7));  // .at: a value >= 7 throws and fails the test
  }
  for (int c : count) CHECK(std::abs(c - 10000) < 6 * 92.6);
}

TEST_CASE("mix_stream separates nearby identifiers", "[core][rng]") {
  CHECK(synthsae::mix_stream(1, 2) != synthsae::mix_stream(2, 1));
  CHECK(synthsae::mix_stream(0, 0) != synthsae::mix_stream(0, 1));
  CHECK(synthsae::mix_stream(3, 4) == synthsae::mix_stream(3, 4));
}
