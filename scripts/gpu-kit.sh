#!/usr/bin/env bash
# Packs the prebuilt programs that scripts/gpu-check.sh runs into one folder (default gpu-kit/,
# ignored by git), so a GPU machine runs them without compiling anything.
#
#   bash scripts/gpu-kit.sh BUILD_DIR [KIT_DIR]
#
# BUILD_DIR is a configured build: for the GPU, one against a CUDA Kokkos
# (docs/building-for-cuda.md, with -DSYNTHSAE_NATIVE=OFF -DCMAKE_CXX_FLAGS=-march=x86-64-v3 so
# that another machine's processor runs it); for a rehearsal on this machine, build/ itself.
# The script builds the four targets it packs, strips them and copies the shared libraries they
# need that are not part of a base system or of CUDA (Google Benchmark, Debian's Kokkos), so the
# kit stays well under the 64 MiB a device call carries.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${1:?usage: gpu-kit.sh BUILD_DIR [KIT_DIR]}"
kit="${2:-gpu-kit}"
[ -f "$build_dir/CMakeCache.txt" ] || { echo "gpu-kit: $build_dir is not a configured build" >&2; exit 2; }

# SYNTHSAE_KIT_TARGETS chooses (a first GPU call without the slow-to-build test binary, say);
# gpu-check.sh skips the parts whose program is missing.
targets="${SYNTHSAE_KIT_TARGETS:-synthsae_cli synthsae_tests bench_sae bench_world}"
# SYNTHSAE_KIT_NO_BUILD=1 packs the programs as they are built (no rebuild after a header edit).
if [ -z "${SYNTHSAE_KIT_NO_BUILD:-}" ]; then
  jobs="$(nproc 2>/dev/null || echo 2)"
  # shellcheck disable=SC2086
  cmake --build "$build_dir" -j"$jobs" --target $targets
fi

rm -rf "$kit.tmp"
mkdir -p "$kit.tmp/bin" "$kit.tmp/lib"
for t in $targets; do
  case "$t" in
    synthsae_cli) cp "$build_dir/bin/synthsae" "$kit.tmp/bin/" ;;
    synthsae_tests) cp "$build_dir/tests/synthsae_tests" "$kit.tmp/bin/" ;;
    bench_*) cp "$build_dir/benchmarks/$t" "$kit.tmp/bin/" ;;
    *) echo "gpu-kit: unknown target $t" >&2; exit 2 ;;
  esac
done
strip "$kit.tmp"/bin/*

# Shared libraries outside the base system and outside CUDA (the GPU machine has its own driver,
# runtime and cuBLAS, which must match it): copied beside the programs.
for exe in "$kit.tmp"/bin/*; do
  ldd "$exe" | awk '/=> \//{print $3}'
done | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libgcc_s.so*|libstdc++.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*) ;;
    libcuda.so*|libcudart.so*|libcublas*|libnvidia*) ;;
    *) cp -L "$lib" "$kit.tmp/lib/" ;;
  esac
done

# What the build was: tests read their data through the source path compiled into them.
{
  echo "source_dir=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build_dir/CMakeCache.txt")"
  echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo +dirty)"
  echo "cuda=$(ldd "$build_dir/bin/synthsae" | grep -q libcudart && echo yes || echo no)"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$kit.tmp/kit.info"

rm -rf "$kit"
mv "$kit.tmp" "$kit"
du -sh "$kit"
cat "$kit/kit.info"
