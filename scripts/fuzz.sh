#!/usr/bin/env bash
# Fuzzes every reader of outside bytes (tests/fuzz/fuzz_targets.cpp) with libFuzzer under
# AddressSanitizer and UndefinedBehaviorSanitizer, each for SECONDS (default 60; as many targets at
# a time as there are cores, FUZZ_JOBS to change it), starting from
# the committed seed corpus (tests/data/fuzz/<target>/). New interesting inputs stay in
# build-fuzz/corpus/<target>/; a crash is kept in build-fuzz/crashes/<target>/ and fails the
# run: copy it into tests/data/fuzz/<target>/ as a regression test once it is fixed.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Installs clang if missing; builds build-fuzz/ (SYNTHSAE_FUZZ=ON, only the fuzz driver).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
[ $# -gt 0 ] && shift

if ! command -v clang++ >/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "fuzz: installing clang"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends clang >/dev/null
fi
bash scripts/setup.sh build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DSYNTHSAE_FUZZ=ON -DSYNTHSAE_NATIVE=OFF \
  -DSYNTHSAE_BUILD_TESTS=OFF -DSYNTHSAE_BUILD_EXAMPLES=OFF -DSYNTHSAE_BUILD_BENCHMARKS=OFF >/dev/null
driver=build-fuzz/tests/fuzz/synthsae_fuzz

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=($(ls tests/data/fuzz))
fi

# One target: fuzz it, then write its row of the table (and FAILED on a finding).
fuzz_one() {
  local t="$1" corpus="build-fuzz/corpus/$1" crashes="build-fuzz/crashes/$1" log="build-fuzz/fuzz-$1.log"
  local status=ok runs took
  mkdir -p "$corpus" "$crashes"
  # -rss_limit_mb: a reader that allocates what a header claims before checking it is a finding.
  SYNTHSAE_FUZZ_TARGET="$t" "$driver" "$corpus" "tests/data/fuzz/$t" -max_total_time="$seconds" \
    -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 -artifact_prefix="$crashes/" >"$log" 2>&1 || status=FAILED
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  took="${took:-$seconds}"
  printf '%-16s %10s %8s %10s %8s %s\n' "$t" "${runs:-?}" "$took" "$(( ${runs:-0} / (took > 0 ? took : 1) ))" \
    "$(ls "$corpus" | wc -l)" "$status" >"build-fuzz/row-$t"
}

# As many targets at a time as there are cores (FUZZ_JOBS overrides): each is single-threaded.
jobs="${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}"
running=0
for t in "${targets[@]}"; do
  fuzz_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

printf '%-16s %10s %8s %10s %8s\n' target executions seconds "exec/s" corpus
failed=()
for t in "${targets[@]}"; do
  cat "build-fuzz/row-$t"
  grep -q FAILED "build-fuzz/row-$t" && failed+=("$t")
done
if [ ${#failed[@]} -gt 0 ]; then
  for t in "${failed[@]}"; do
    echo "fuzz: $t failed; its log: build-fuzz/fuzz-$t.log; the input: build-fuzz/crashes/$t/" >&2
    grep -m5 -E "ERROR|runtime error|violated|terminate|uncaught|what\(\)" "build-fuzz/fuzz-$t.log" >&2 || true
  done
  exit 1
fi
