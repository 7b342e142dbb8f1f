#!/usr/bin/env bash
# The main job on its embedded default: installs what is missing, builds the synthsae program,
# then benchmarks BatchTopK, Matryoshka BatchTopK, JumpReLU, Standard L1 and Matching Pursuit on
# the cpu-1k world (1,024 features in 128 dimensions with the SynthSAEBench-16k structure) at
# L0 = 8, 3,000,000 training samples each, with the supervised-probe ceiling; prints the table
# and writes results.csv, results.json and SVG plots under out/bench.
set -euo pipefail
cd "$(dirname "$0")/.."
SYNTHSAE_TARGET=synthsae_cli bash scripts/setup.sh build
./build/bin/synthsae bench --out out/bench
