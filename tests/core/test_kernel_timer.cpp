// KernelTimer: every launch is counted under its label, nothing is charged twice, and the time
// charged adds up to the wall time of the measured interval.
#include <catch2/catch.hpp>

#include <synthsae/core/backend.hpp>
#include <synthsae/core/kernel_timer.hpp>

#include <chrono>

using namespace synthsae;

namespace {
// n terms of a sum of reciprocals, kept live through the reduction's result.
double busy(const char* label, int n) {
  double sum = 0;
  Kokkos::parallel_reduce(
      label, Kokkos::RangePolicy<ExecSpace>(0, n), KOKKOS_LAMBDA(int i, double& s) { s += 1.0 / (1.0 + i); },
      sum);
  return sum;
}
}  // namespace

TEST_CASE("KernelTimer counts launches per label and its charges add up to the wall time", "[core]") {
  Vector<float> v("v", 1000);
  const auto t0 = std::chrono::steady_clock::now();
  double keep = 0;
  KernelTimer timer;
  for (int r = 0; r < 3; ++r) keep += busy("test::small", 1 << 12);
  keep += busy("test::large", 1 << 22);
  Kokkos::parallel_for(
      "test::fill", Kokkos::RangePolicy<ExecSpace>(0, 1000), KOKKOS_LAMBDA(int i) { v(i) = float(i); });
  timer.stop();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(keep != 0);

  const auto& e = timer.entries();
  REQUIRE(e.count("test::small") == 1);
  REQUIRE(e.count("test::large") == 1);
  REQUIRE(e.count("test::fill") == 1);
  CHECK(e.at("test::small").calls == 3);
  CHECK(e.at("test::large").calls == 1);
  CHECK(e.at("test::fill").calls == 1);
  // 1024x the work of one small launch, 341x that of all three: far beyond timing noise.
  CHECK(e.at("test::large").seconds > e.at("test::small").seconds);
  // Every interval is charged once: the sum lies within the wall time around the timer.
  CHECK(timer.total_seconds() <= wall);
  // And it covers most of it: the 4M-term launch (milliseconds) dominates the interval; outside
  // the charges lie only the timer's constructor, stop() and the gaps between launches
  // (microseconds), so half the wall time is a bound that only a lost interval breaks.
  CHECK(timer.total_seconds() > 0.5 * wall);
  // After stop() nothing more is seen.
  busy("test::after", 16);
  CHECK(timer.entries().count("test::after") == 0);
  // One timer at a time: the callbacks are process-wide.
  KernelTimer second;
  CHECK_THROWS_AS(KernelTimer(), std::logic_error);
}
