#pragma once
// The main() of every benchmark program: Kokkos around Google Benchmark, with an optional
// hook that releases Kokkos objects held in statics before Kokkos::finalize.
#include <functional>

#include <benchmark/benchmark.h>
#include <Kokkos_Core.hpp>

inline int run_kokkos_benchmarks(int argc, char** argv, const std::function<void()>& before_finalize = {}) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (before_finalize) before_finalize();
  return 0;
}
