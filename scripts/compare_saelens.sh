#!/usr/bin/env bash
# Times the same work in SAELens (PyPI, CPU) and synthsae on this machine at equal thread counts
# and writes OUT/compare.json and OUT/compare.md (scripts/compare_saelens.py says what is timed):
# SynthSAEBench-16k generation, a cpu-1k BatchTopK training run, a 500k-sample evaluation and
# MCC's assignment at the 16k shape.
#
#   bash scripts/compare_saelens.sh [--out out/compare] [--threads 2] [options of compare_saelens.py ...]
#
# About 15 minutes on a 2-core machine once built (SAELens's training of 1M samples is most of it).
# The venv is made once (scripts/saelens_venv.sh); the program and the benchmarks are built if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/saelens_venv.sh

missing=()
[ -x build/bin/synthsae ] || missing+=(synthsae_cli)
[ -x build/benchmarks/bench_world ] || missing+=(bench_world)
[ -x build/benchmarks/bench_metrics ] || missing+=(bench_metrics)
if [ ${#missing[@]} -gt 0 ]; then
  [ -f build/CMakeCache.txt ] || SYNTHSAE_TARGET=synthsae_cli bash scripts/setup.sh build
  cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target "${missing[@]}"
fi
exec "$venv/bin/python" scripts/compare_saelens.py --synthsae build/bin/synthsae "$@"
