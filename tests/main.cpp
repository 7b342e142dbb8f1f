// Catch2 runner with one Kokkos initialize/finalize per test process.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <Kokkos_Core.hpp>

namespace {

struct KokkosLifetime : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testRunStarting(const Catch::TestRunInfo&) override {
    if (!Kokkos::is_initialized()) Kokkos::initialize();
  }
  void testRunEnded(const Catch::TestRunStats&) override {
    if (Kokkos::is_initialized()) Kokkos::finalize();
  }
};

}  // namespace

CATCH_REGISTER_LISTENER(KokkosLifetime)
