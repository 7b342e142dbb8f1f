// libFuzzer's entry points for the synthsae fuzz targets: one program, the target chosen by
// SYNTHSAE_FUZZ_TARGET (scripts/fuzz.sh sets it; a list is printed when it is unset or wrong).
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <Kokkos_Core.hpp>

#include "fuzz/fuzz_targets.hpp"

namespace {
const synthsae::fuzz::Target* chosen = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* name = std::getenv("SYNTHSAE_FUZZ_TARGET");
  chosen = name ? synthsae::fuzz::find_target(name) : nullptr;
  if (!chosen) {
    std::fprintf(stderr, "SYNTHSAE_FUZZ_TARGET = %s: set it to one of\n", name ? name : "(unset)");
    for (const auto& t : synthsae::fuzz::targets())
      std::fprintf(stderr, "  %-16s %s\n", std::string(t.name).c_str(), std::string(t.what).c_str());
    std::exit(2);
  }
  Kokkos::initialize();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)chosen->run({reinterpret_cast<const std::byte*>(data), size});
  return 0;
}
