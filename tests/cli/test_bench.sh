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

"$bin" bench --preset tiny --archs batchtopk,gated,matching_pursuit --l0 2,3 --samples 8192 --eval-samples 2048 \
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
awk '/"generation":/ {g=$2} /"steps":/ {s=$2} /"seconds":/ {t=$2; if (g + s > t + 1e-6) bad=1} END {exit bad}' \
  <(tr ',' '\n' <"$work/b/results.json") || fail "a run's generation + steps exceed its seconds"

# The runs of one L0 train side by side on batches drawn once: the same SAEs, bit for bit, as
# `synthsae train` makes of the same requests one at a time.
grep -q '"reused": 48' "$work/b/results.json" || fail "results.json should count 48 reused batches (2 L0s x 3 runs x 8 steps)"
grep -q '"drawn": 16' "$work/b/results.json" || fail "results.json should count 16 drawn batches (8 steps per L0)"
"$bin" train --model tiny --arch gated --target-l0 3 --samples 8192 --lr 1e-3 --eval-samples 2048 --eval-every 1 \
  --out "$work/t_gated" >/dev/null 2>"$work/train.err" || fail "train gated failed: $(tail -3 "$work/train.err")"
"$bin" train --model tiny --arch batchtopk --k 2 --samples 8192 --lr 1e-3 --eval-samples 2048 --eval-every 1 \
  --out "$work/t_batchtopk" >/dev/null 2>"$work/train.err" || fail "train batchtopk failed: $(tail -3 "$work/train.err")"
cmp -s "$work/t_gated/sae_weights.safetensors" "$work/b/runs/gated-l03-seed0/sae_weights.safetensors" ||
  fail "bench's gated-l03 differs from the same request trained alone"
cmp -s "$work/t_batchtopk/sae_weights.safetensors" "$work/b/runs/batchtopk-l02-seed0/sae_weights.safetensors" ||
  fail "bench's batchtopk-l02 differs from the same request trained alone"

expect 2 "unknown architecture 'nope'" -- "$bin" bench --preset tiny --archs batchtopk,nope --out "$work/x"
expect 2 "--l0" -- "$bin" bench --preset tiny --l0 2.5 --out "$work/x"
expect 2 "--samples" -- "$bin" bench --preset tiny --samples 10 --out "$work/x"
[ -e "$work/x" ] && fail "a usage error left output behind"

finish "all synthsae bench checks passed"
