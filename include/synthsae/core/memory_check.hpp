#pragma once
// Refusing, before allocating, what cannot fit: a world or an SAE whose arrays need more bytes
// than this machine's physical memory is a ConfigError that says how much it would need,
// instead of std::bad_alloc, a Kokkos allocation failure or the kernel's OOM killer later.
// The bound is host RAM on every backend: an estimate of a lower bound, so a request it lets
// through can still fail on a small GPU, but one it refuses could never run.
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>

#include <unistd.h>

#include "synthsae/core/error.hpp"

namespace synthsae {

/// This host's physical memory in bytes; 0 when the system does not say.
inline std::uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return 0;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
}

/// "3.2 GiB", "512 MiB", "4096 GiB": sizes as a person reads them.
inline std::string human_bytes(long double bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) bytes /= 1024, ++u;
  char text[48];
  std::snprintf(text, sizeof text, u == 0 ? "%.0Lf %s" : "%.1Lf %s", bytes, units[u]);
  return text;
}

/// ConfigError naming `field` and `value` when `bytes` (in long double: a product of sizes
/// must not wrap around) exceeds `available` (this machine's memory by default).
inline void require_memory(std::string_view field, const std::string& value, long double bytes,
                           std::string_view what, std::uint64_t available = physical_memory_bytes()) {
  if (available == 0 || bytes <= static_cast<long double>(available)) return;
  throw ConfigError(std::string(field), value,
                    std::string(what) + " needs at least " + human_bytes(bytes) + ", and this machine has " +
                        human_bytes(static_cast<long double>(available)) + " of memory");
}

}  // namespace synthsae
