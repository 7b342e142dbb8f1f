#!/usr/bin/env bash
# Builds everything (installing what is missing) and runs the whole test suite, then a smoke
# run of every fuzz target under AddressSanitizer + UndefinedBehaviorSanitizer (scripts/fuzz.sh,
# SYNTHSAE_FUZZ_SECONDS each, default 15; 0 skips it).
# --no-tests=error: a test discovery that finds nothing fails instead of passing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build
# Tests run side by side, each with its own OpenMP team: idle members must sleep, not spin
# (libgomp's default spin took the L0-autotuner test from 22 s to 75 s beside another test).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
ctest --test-dir build --no-tests=error --output-on-failure -j"$(nproc 2>/dev/null || echo 2)"
fuzz_seconds="${SYNTHSAE_FUZZ_SECONDS:-15}"
if [ "$fuzz_seconds" != 0 ]; then
  bash scripts/fuzz.sh "$fuzz_seconds"
fi
