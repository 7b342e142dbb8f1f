#!/usr/bin/env bash
# End-to-end check of `synthsae bench` on the tiny preset: the table, results.csv/json with one
# row per (architecture, L0), the three SVG plots and every run directory; bad flags exit 2 and
# leave nothing behind.
#   test_bench.sh SYNTHSAE_BINARY WORK_DIR
set -u
bin="$1"
work="$2"
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/lib.sh"

"$bin" bench --preset tiny --archs batchtopk,gated,matching_pursuit --l0 2,3 --samples 8500 --eval-samples 2048 \
  --no-probes --out "$work/b" >"$work/table.txt" 2>"$work/bench.err" || fail "bench failed: $(tail -3 "$work/bench.err")"
for f in results.csv results.json metrics_vs_l0.svg training_curves.svg decoder_heatmap.svg; do
  [ -s "$work/b/$f" ] || fail "missing or empty $f"
done
[ "$(grep -c '' "$work/b/results.csv")" -eq 7 ] || fail "results.csv should have a header and 3 x 2 rows"
for a in batchtopk gated matching_pursuit; do
  grep -q "^$a" "$work/table.txt" || fail "the table lacks $a"
  for l in 2 3; do
    [ -f "$work/b/runs/$a-l0$l-seed0/cfg.json" ] || fail "missing run $a-l0$l"
  done
done
grep -q '"architecture": "gated"' "$work/b/runs/gated-l02-seed0/cfg.json" || fail "gated run not saved as gated"
grep -q '<svg' "$work/b/metrics_vs_l0.svg" || fail "metrics_vs_l0.svg is not SVG"
# Where the time went: every phase in results.json (summed over runs) and in each run's entry,
# and the summary line under the table; the loop's phases cannot exceed the run's seconds.
for key in world generation steps periodic_evaluation final_evaluation probes total; do
  grep -q "\"$key\":" "$work/b/results.json" || fail "results.json phase_seconds lacks $key"
done
grep -q '^time (s): world' "$work/table.txt" || fail "the table lacks the time summary"
grep -q '"gemm_math": "fp32"' "$work/b/results.json" || fail "results.json lacks the job's gemm_math"
awk '/"generation":/ {g=$2} /"steps":/ {s=$2} /"seconds":/ {t=$2; if (g + s > t + 1e-6) bad=1} END {exit bad}' \
  <(tr ',' '\n' <"$work/b/results.json") || fail "a run's generation + steps exceed its seconds"

# The runs of one L0 and seed train side by side on batches drawn once: the same SAEs, bit for
# bit, as `synthsae train` makes of the same requests one at a time. 8,500 samples are 9 steps
# of 1,024 (the last batch overruns, as train's), so 2 L0s draw 18 batches and their 3 runs each
# read all 9: 54 reused. A second job adds JumpReLU (it scales its batches in place, which a
# shared batch must survive) and a second seed (its own stream).
grep -q '"reused": 54' "$work/b/results.json" || fail "results.json should count 54 reused batches"
grep -q '"drawn": 18' "$work/b/results.json" || fail "results.json should count 18 drawn batches"
"$bin" bench --preset tiny --archs batchtopk,jumprelu --l0 3 --seeds 2 --samples 4000 --eval-samples 1024 \
  --no-probes --out "$work/j" >/dev/null 2>"$work/bench2.err" || fail "bench with jumprelu failed: $(tail -3 "$work/bench2.err")"
train_alone() {  # NAME ARGS...: the same request as bench's run, trained alone
  local name="$1"; shift
  "$bin" train --model tiny "$@" --lr 1e-3 --eval-every 1 --out "$work/t_$name" >/dev/null 2>"$work/train.err" ||
    fail "train $name failed: $(tail -3 "$work/train.err")"
}
train_alone gated --arch gated --target-l0 3 --samples 8500 --eval-samples 2048
train_alone batchtopk --arch batchtopk --k 2 --samples 8500 --eval-samples 2048
train_alone jumprelu --arch jumprelu --target-l0 3 --seed 1 --samples 4000 --eval-samples 1024
for pair in "gated b/runs/gated-l03-seed0" "batchtopk b/runs/batchtopk-l02-seed0" "jumprelu j/runs/jumprelu-l03-seed1"; do
  set -- $pair
  cmp -s "$work/t_$1/sae_weights.safetensors" "$work/$2/sae_weights.safetensors" ||
    fail "bench's $2 differs from the same request trained alone"
done
cmp -s "$work/j/runs/jumprelu-l03-seed0/sae_weights.safetensors" "$work/j/runs/jumprelu-l03-seed1/sae_weights.safetensors" &&
  fail "the two seeds' JumpReLU runs are the same"
# --screen-encoder: the runs that can take it (batchtopk) do, the others train as before, and each
# run's runner_config.json says which; the screened batchtopk equals `train --screen-encoder` alone.
"$bin" bench --preset tiny --archs batchtopk,jumprelu --l0 3 --samples 4000 --eval-samples 1024 --no-probes \
  --screen-encoder --out "$work/s" >/dev/null 2>"$work/bench3.err" || fail "bench --screen-encoder failed: $(tail -3 "$work/bench3.err")"
grep -q '"screen_encoder": true' "$work/s/results.json" || fail "results.json lacks screen_encoder: true"
grep -q '"screen_encoder": true' "$work/s/runs/batchtopk-l03-seed0/runner_config.json" || fail "the screened batchtopk run is not recorded"
grep -q '"screen_encoder": false' "$work/s/runs/jumprelu-l03-seed0/runner_config.json" || fail "jumprelu cannot be screened"
cmp -s "$work/s/runs/jumprelu-l03-seed0/sae_weights.safetensors" "$work/j/runs/jumprelu-l03-seed0/sae_weights.safetensors" ||
  fail "--screen-encoder changed the jumprelu run"
train_alone screened --arch batchtopk --k 3 --samples 4000 --eval-samples 1024 --screen-encoder
cmp -s "$work/t_screened/sae_weights.safetensors" "$work/s/runs/batchtopk-l03-seed0/sae_weights.safetensors" ||
  fail "bench's screened batchtopk differs from train --screen-encoder alone"

expect 2 "unknown architecture 'nope'" -- "$bin" bench --preset tiny --archs batchtopk,nope --out "$work/x"
expect 2 "--l0" -- "$bin" bench --preset tiny --l0 2.5 --out "$work/x"
expect 2 "'batchtopk' is given twice" -- "$bin" bench --preset tiny --archs batchtopk,gated,batchtopk --out "$work/x"
expect 2 "--l0: 3 is given twice" -- "$bin" bench --preset tiny --l0 3,2,3 --out "$work/x"
expect 2 "--samples" -- "$bin" bench --preset tiny --samples 10 --out "$work/x"
expect 2 "--gemm-math = fp16" -- "$bin" bench --preset tiny --gemm-math fp16 --out "$work/x"
[ -e "$work/x" ] && fail "a usage error left output behind"

finish "all synthsae bench checks passed"
