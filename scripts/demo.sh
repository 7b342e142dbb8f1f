#!/usr/bin/env bash
# The main job on its embedded default: builds what is missing, then runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build
./build/examples/backend_tour --out out/backend_tour
