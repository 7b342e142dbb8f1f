#!/usr/bin/env bash
# The main job on its embedded default: installs what is missing, builds the synthsae program,
# then benchmarks BatchTopK, Matryoshka BatchTopK, JumpReLU, Standard L1 and Matching Pursuit on
# the cpu-4k world (4,096 features in 256 dimensions with the SynthSAEBench-16k structure) at
# one L0, printing the table and writing results and plots under out/bench.
set -euo pipefail
cd "$(dirname "$0")/.."
SYNTHSAE_TARGET=synthsae_cli bash scripts/setup.sh build
./build/bin/synthsae bench --preset cpu-4k --l0 16 --samples 500000 --out out/bench
