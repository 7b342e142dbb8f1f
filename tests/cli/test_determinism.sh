#!/usr/bin/env bash
# Bitwise determinism on one build: the same seed and configuration give byte-identical world
# files and SAE weights, run again and with another number of host threads (OMP_NUM_THREADS: the
# Debian build threads its GEMMs with OpenMP; a Kokkos OpenMP build threads every kernel); two
# bench runs give identical tables apart from their timing columns. (A resumed run equal to an
# uninterrupted one: test_kill.sh.)
#   test_determinism.sh SYNTHSAE_BINARY WORK_DIR
set -u
bin="$1"
work="$2"
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/lib.sh"

same_files() {  # same_files DIR_A DIR_B FILE...: every FILE byte for byte
  local a="$1" b="$2"
  shift 2
  for f in "$@"; do
    cmp -s "$a/$f" "$b/$f" || fail "$a/$f and $b/$f differ"
  done
}
without_seconds() {  # a CSV without its "seconds" column
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds") s = i } { o = ""; for (i = 1; i <= NF; i++) if (i != s) o = o $i ","; print o }' "$1"
}

for threads in 2 2 1; do
  run="$work/t$threads-$RANDOM"
  OMP_NUM_THREADS=$threads "$bin" model --preset tiny --save "$run/world" --samples 100 >/dev/null 2>&1 \
    || fail "model --save failed"
  OMP_NUM_THREADS=$threads "$bin" train --model tiny --arch jumprelu --samples 20480 --batch 512 --eval-samples 4096 \
    --eval-every 10 --out "$run/sae" >/dev/null 2>&1 || fail "train failed"
  runs+=("$run")
done
# World and SAE are the same at 1 and 2 threads: the host GEMM splits C into panels fixed by the
# shape and runs Eigen single-threaded in each (core/gemm_host.hpp), so no sum depends on the
# thread count.
for run in "${runs[@]:1}"; do
  same_files "${runs[0]}/world" "$run/world" synthetic_model_config.json synthetic_model.safetensors hierarchy.json
  same_files "${runs[0]}/sae" "$run/sae" cfg.json sae_weights.safetensors sparsity.safetensors eval_stats.json
  [ "$(without_seconds "${runs[0]}/sae/metrics.csv")" = "$(without_seconds "$run/sae/metrics.csv")" ] \
    || fail "metrics.csv differs between ${runs[0]} and $run"
done

for i in 1 2; do
  "$bin" bench --preset tiny --archs topk,standard --l0 3 --samples 8192 --eval-samples 2048 --no-probes \
    --out "$work/bench$i" >/dev/null 2>&1 || fail "bench $i failed"
done
[ "$(without_seconds "$work/bench1/results.csv")" = "$(without_seconds "$work/bench2/results.csv")" ] \
  || fail "two bench runs give different tables"
same_files "$work/bench1/runs/topk-l03-seed0" "$work/bench2/runs/topk-l03-seed0" sae_weights.safetensors

finish "determinism: all checks passed"
