#!/usr/bin/env bash
# Builds everything (installing what is missing) and runs the whole test suite.
# --no-tests=error: a test discovery that finds nothing fails instead of passing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build
ctest --test-dir build --no-tests=error --output-on-failure -j"$(nproc 2>/dev/null || echo 2)"
