#!/usr/bin/env bash
# Runs SAELens (PyPI) beside synthsae on the same world and jobs and writes OUT/parity.json and
# OUT/parity.md (scripts/saelens_parity.py says what is compared and how).
#
#   bash scripts/saelens_parity.sh [--quick] [options of saelens_parity.py ...]
#
# The venv with sae-lens (and torch, ~1 GB) is made once under $SAELENS_VENV (default
# ~/.cache/synthsae/saelens-venv) and reused. The synthsae program is built if missing.
# Defaults: out/parity, the cpu-1k world, every architecture both tools train, 2 seeds each,
# 3,000,000 samples per SAE — SAELens trains at a few thousand samples/s on a 2-core CPU, so this
# runs for hours there; --quick (300,000 samples, 2 seeds) finishes in about an hour. Long runs:
#   nohup bash scripts/saelens_parity.sh > parity.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/saelens_venv.sh

if [ ! -x build/bin/synthsae ]; then
  SYNTHSAE_TARGET=synthsae_cli bash scripts/setup.sh build
fi
if [ ! -x build/benchmarks/bench_metrics ]; then  # the assignment timing
  cmake --build build --target bench_metrics
fi

args=()
for a in "$@"; do
  if [ "$a" = "--quick" ]; then
    args+=(--samples 300000 --eval-samples 50000 --cross-samples 50000 --world-samples 50000)
  else
    args+=("$a")
  fi
done
exec "$venv/bin/python" scripts/saelens_parity.py --synthsae build/bin/synthsae "${args[@]}"
