#!/usr/bin/env bash
# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer (GCC), in build-asan/.
# Not part of scripts/test.sh: it doubles the build time of CI on two cores. CI runs part of the
# suite under the same sanitizers (tests/sanitize/) and the fuzz targets under clang's
# (scripts/fuzz.sh); run this before changing kernels. -O1 with line tables: the build is about
# half as long as at -O2 -g and reports still name the line.
#
#   bash scripts/sanitize.sh [ctest arguments...]
#
# The install-and-consume and compile-fail tests are skipped: they build other projects.
set -euo pipefail
cd "$(dirname "$0")/.."
flags="-O1 -g1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
bash scripts/setup.sh build-asan -DCMAKE_BUILD_TYPE=Sanitize -DSYNTHSAE_BUILD_BENCHMARKS=OFF \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags"
# detect_leaks=0: Kokkos 3.4 keeps allocations until exit by design; every other error aborts.
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  ctest --test-dir build-asan --no-tests=error --output-on-failure -j"$(nproc 2>/dev/null || echo 2)" \
  -E '^(package\.|compile_fail\.)' "$@"
