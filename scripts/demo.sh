#!/usr/bin/env bash
# The main job on its embedded default: builds what is missing, then builds the cpu-4k
# synthetic world (4,096 features in 256 dimensions, the SynthSAEBench-16k structure), prints
# its statistics as JSON and saves it in SAELens's layout under out/cpu-4k.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build
./build/bin/synthsae model --preset cpu-4k --stats --save out/cpu-4k
