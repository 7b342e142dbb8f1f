#!/usr/bin/env bash
# Installs synthsae's Debian packages (only those missing; one quiet apt-get update), then
# configures and builds the project.
#
#   bash scripts/setup.sh [BUILD_DIR] [extra cmake arguments...]
#
# BUILD_DIR defaults to build/. Extra arguments go to cmake, e.g. -DKokkos_ROOT=/opt/kokkos.
# SYNTHSAE_TARGET=name builds only that target (the demo builds only the synthsae program).
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${1:-build}"
[ $# -gt 0 ] && shift

packages=(cmake make g++ pkg-config libeigen3-dev libboost-dev catch2 libtrilinos-kokkos-dev
          nlohmann-json3-dev libbenchmark-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jobs="$(nproc 2>/dev/null || echo 2)"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
if [ -n "${SYNTHSAE_TARGET:-}" ]; then
  cmake --build "$build_dir" -j"$jobs" --target "$SYNTHSAE_TARGET"
else
  cmake --build "$build_dir" -j"$jobs"
fi
