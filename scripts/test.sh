#!/usr/bin/env bash
# Builds everything (installing what is missing) and runs the whole test suite; then part of the
# suite again under AddressSanitizer + UndefinedBehaviorSanitizer (tests/sanitize/CMakeLists.txt
# says which part and why; SYNTHSAE_SANITIZE=0 skips it); then a smoke run of every fuzz target
# under the same sanitizers (scripts/fuzz.sh, SYNTHSAE_FUZZ_SECONDS each, default 15; 0 skips it).
# --no-tests=error: a test discovery that finds nothing fails instead of passing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build
# Tests run side by side, each with its own OpenMP team: idle members must sleep, not spin
# (libgomp's default spin took the L0-autotuner test from 22 s to 75 s beside another test).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
ctest --test-dir build --no-tests=error --output-on-failure -j"$(nproc 2>/dev/null || echo 2)"
if [ "${SYNTHSAE_SANITIZE:-1}" != 0 ]; then
  bash scripts/setup.sh build-sanitize -DCMAKE_BUILD_TYPE=Sanitize -DSYNTHSAE_SANITIZE=ON -DSYNTHSAE_BUILD_TESTS=OFF \
    -DSYNTHSAE_BUILD_EXAMPLES=OFF -DSYNTHSAE_BUILD_BENCHMARKS=OFF
  # Any finding aborts the run (-fno-sanitize-recover=all); leaks are reported at exit.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    build-sanitize/tests/sanitize/synthsae_sanitized_tests
fi
fuzz_seconds="${SYNTHSAE_FUZZ_SECONDS:-15}"
if [ "$fuzz_seconds" != 0 ]; then
  bash scripts/fuzz.sh "$fuzz_seconds"
fi
