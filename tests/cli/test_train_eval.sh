#!/usr/bin/env bash
# End-to-end checks of `synthsae train` and `synthsae eval` on the tiny preset: the files
# exist and load, `eval` on the saved SAE reproduces the in-process metrics, bad flags exit 2,
# bad files exit 1, and failures leave no partial output.
#   test_train_eval.sh SYNTHSAE_BINARY WORK_DIR
set -u
bin="$1"
work="$2"
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/lib.sh"

# A standard SAE: its saved inference form is the trained one, so eval must match exactly.
"$bin" train --model tiny --arch standard --width 32 --samples 25600 --batch 512 --lr 1e-3 \
  --eval-samples 4096 --eval-every 25 --out "$work/std" >"$work/train.json" 2>"$work/train.err" || fail "train failed: $(tail -3 "$work/train.err")"
for f in cfg.json sae_weights.safetensors sparsity.safetensors eval_stats.json metrics.csv runner_config.json; do
  [ -f "$work/std/$f" ] || fail "missing $f"
done
grep -q '"architecture": "standard"' "$work/std/cfg.json" || fail "cfg.json lacks the architecture"
# cfg.json's metadata as SAELens writes it (key "metadata", not the "meta" we once wrote).
grep -q '"metadata": {' "$work/std/cfg.json" || fail "cfg.json lacks SAELens's metadata key"
for key in l0 num_dead_features; do
  grep -q "\"$key\":" "$work/std/cfg.json" || fail "cfg.json metadata lacks $key"
done
# runner_config.json in SAELens's runner schema: its top-level keys, the SAE's fields nested.
for key in synthetic_model sae training_samples lr_scheduler_name lr_end adam_beta1 eval_frequency \
           dead_feature_window feature_sampling_window n_batches_for_norm_estimate logger; do
  grep -q "\"$key\":" "$work/std/runner_config.json" || fail "runner_config.json lacks $key"
done
grep -q '"l1_coefficient":' "$work/std/runner_config.json" || fail "runner_config.json lacks the SAE's l1_coefficient"
[ "$(grep -c '' "$work/std/metrics.csv")" -ge 3 ] || fail "metrics.csv has too few rows"
grep -q '^25,' "$work/std/metrics.csv" || fail "metrics.csv lacks the step-25 evaluation row"
"$bin" eval --model tiny --sae "$work/std" --samples 4096 --batch 512 >"$work/eval.json" 2>/dev/null || fail "eval failed"
cmp -s "$work/train.json" "$work/eval.json" || fail "eval of the saved SAE differs from the in-process metrics"
grep -q '"mcc"' "$work/eval.json" || fail "eval output lacks mcc"
# --timings: the phases of the run; with --profile-kernels each kernel label's seconds and launches
# (a TopK step lists its per-row top-k once per step: 10 steps, at least 10 launches).
"$bin" train --model tiny --arch topk --k 4 --width 32 --samples 5120 --batch 512 --eval-samples 1024 \
  --out "$work/timed" --timings "$work/timings.json" --profile-kernels >"$work/timed.json" 2>"$work/timed.err" \
  || fail "train --timings --profile-kernels failed: $(tail -3 "$work/timed.err")"
python3 - "$work/timings.json" "$work/timed.json" <<'PY' || fail "--timings file is wrong: $(head -c 400 "$work/timings.json")"
import json, sys
t = json.load(open(sys.argv[1]))
assert t["samples"] == 5120 and t["batch"] == 512, t
assert t["world_seconds"] >= 0 and t["training_seconds"] > 0 and t["samples_per_second"] > 0, t
assert set(t["phase_seconds"]) == {"generation", "steps", "periodic_evaluation", "loop_other", "final_evaluation"}, t
k = {e["label"]: e for e in t["kernels"]}
assert k["synthsae::row_top_k_lists"]["calls"] >= 10, k.get("synthsae::row_top_k_lists")
secs = [e["seconds"] for e in t["kernels"]]
assert secs == sorted(secs, reverse=True) and abs(sum(secs) - t["kernels_total_seconds"]) < 1e-6 * max(1, sum(secs))
assert "seconds" not in json.load(open(sys.argv[2]))  # stdout stays eval_stats.json
PY
expect 2 "--profile-kernels needs --timings" -- "$bin" train --model tiny --arch topk --profile-kernels --out "$work/x"
# Without --eval-samples the final evaluation uses SAELens's runner's 500,000 samples.
"$bin" train --model tiny --arch topk --k 4 --width 32 --samples 5120 --batch 512 --out "$work/evdef" \
  >/dev/null 2>"$work/evdef.err" || fail "train with the default evaluation failed: $(tail -3 "$work/evdef.err")"
grep -q '"eval_samples": 500000' "$work/evdef/runner_config.json" || fail "the final evaluation should default to 500,000 samples"
# --first-sample: the default start is 2^62; another start draws other samples (same decoder
# metrics, other sample metrics).
"$bin" eval --model tiny --sae "$work/std" --samples 4096 --batch 512 --first-sample 4611686018427387904 \
  >"$work/eval_first.json" 2>/dev/null || fail "eval --first-sample failed"
cmp -s "$work/eval.json" "$work/eval_first.json" || fail "--first-sample 2^62 should equal the default"
"$bin" eval --model tiny --sae "$work/std" --samples 4096 --batch 512 --first-sample 12345 \
  >"$work/eval_other.json" 2>/dev/null || fail "eval --first-sample 12345 failed"
cmp -s "$work/eval.json" "$work/eval_other.json" && fail "another --first-sample should draw other samples"
grep -q "$(grep '"mcc"' "$work/eval.json")" "$work/eval_other.json" || fail "MCC must not depend on the samples"
expect 2 "--first-sample = -1" -- "$bin" eval --model tiny --sae "$work/std" --first-sample -1

# Behind a per-row normalisation: the mode is saved in cfg.json and applied by the loaded SAE,
# so eval of the directory reproduces the in-process metrics exactly.
"$bin" train --model tiny --arch standard --width 32 --samples 10240 --batch 512 --eval-samples 2048 \
  --normalize-activations layer_norm --out "$work/ln" >"$work/ln_train.json" 2>/dev/null || fail "layer_norm train failed"
grep -q '"normalize_activations": "layer_norm"' "$work/ln/cfg.json" || fail "cfg.json should keep normalize_activations layer_norm"
grep -q '"normalize_activations": "layer_norm"' "$work/ln/runner_config.json" || fail "runner_config.json should record layer_norm"
"$bin" eval --model tiny --sae "$work/ln" --samples 2048 --batch 512 >"$work/ln_eval.json" 2>/dev/null || fail "layer_norm eval failed"
cmp -s "$work/ln_train.json" "$work/ln_eval.json" || fail "eval of the saved layer_norm SAE differs from the in-process metrics"
expect 2 "--normalize-activations = constant_norm_rescale" -- "$bin" train --model tiny --arch topk \
  --normalize-activations constant_norm_rescale --out "$work/x"
expect 2 "--normalize-activations = layer_norm" -- "$bin" train --model tiny --arch gated --normalize-activations layer_norm --out "$work/x"
expect 2 "--normalize-activations = rms" -- "$bin" train --model tiny --arch standard --normalize-activations rms --out "$work/x"

# A BatchTopK SAE exports as JumpReLU with its threshold.
"$bin" train --model tiny --arch batchtopk --k 3 --width 32 --samples 10240 --batch 512 --eval-samples 1024 \
  --out "$work/btk" >/dev/null 2>&1 || fail "batchtopk train failed"
grep -q '"architecture": "jumprelu"' "$work/btk/cfg.json" || fail "batchtopk should be saved as jumprelu"

# A Gated SAE saves as itself (b_gate, r_mag, b_mag): eval of the directory matches exactly.
"$bin" train --model tiny --arch gated --l1 1.0 --width 32 --samples 10240 --batch 512 --eval-samples 2048 \
  --out "$work/gated" >"$work/gated_train.json" 2>/dev/null || fail "gated train failed"
grep -q '"architecture": "gated"' "$work/gated/cfg.json" || fail "gated cfg.json lacks its architecture"
"$bin" eval --model tiny --sae "$work/gated" --samples 2048 --batch 512 >"$work/gated_eval.json" 2>/dev/null || fail "gated eval failed"
cmp -s "$work/gated_train.json" "$work/gated_eval.json" || fail "eval of the saved gated SAE differs from the in-process metrics"

# Without SAELens's apply_b_dec_to_input: recorded in cfg.json and runner_config.json, and eval
# of the saved tied matching-pursuit SAE (b_dec then in neither input nor output) matches exactly.
"$bin" train --model tiny --arch matching_pursuit --k 3 --width 32 --samples 5120 --batch 512 --eval-samples 1024 \
  --apply-b-dec-to-input false --out "$work/mp" >"$work/mp_train.json" 2>/dev/null || fail "mp train without b_dec on input failed"
grep -q '"apply_b_dec_to_input": false' "$work/mp/cfg.json" || fail "cfg.json should record apply_b_dec_to_input false"
grep -q '"apply_b_dec_to_input": false' "$work/mp/runner_config.json" || fail "runner_config.json should record it"
"$bin" eval --model tiny --sae "$work/mp" --samples 1024 --batch 512 >"$work/mp_eval.json" 2>/dev/null || fail "mp eval failed"
cmp -s "$work/mp_train.json" "$work/mp_eval.json" || fail "eval of the saved mp SAE (no b_dec on input) differs from the in-process metrics"
# Recipe settings SAELens would otherwise fill with its own defaults are recorded: Matching
# Pursuit's unit decoder rows, no residual threshold, no duplicate-support stop (SAELens: 0.01, true).
for kv in '"decoder_init_norm": 1.0' '"residual_threshold": 0.0' '"stop_on_duplicate_support": false'; do
  grep -q "$kv" "$work/mp/runner_config.json" || fail "mp runner_config.json lacks $kv"
done
grep -q '"decoder_init_norm": 0.1' "$work/std/runner_config.json" || fail "standard runner_config.json lacks decoder_init_norm"
grep -q '"aux_loss_coefficient": 1.0' "$work/btk/runner_config.json" || fail "batchtopk runner_config.json lacks aux_loss_coefficient"
grep -q '"topk_threshold_lr": 0.01' "$work/btk/runner_config.json" || fail "batchtopk runner_config.json lacks topk_threshold_lr"

# The unpublished example architecture topk_l1 through the program: saved as topk, its L1
# coefficient and the GEMM arithmetic recorded in runner_config.json.
"$bin" train --model tiny --arch topk_l1 --k 3 --l1 0.1 --width 32 --samples 10240 --batch 512 --eval-samples 1024 \
  --gemm-math tf32 --out "$work/tl1" >/dev/null 2>&1 || fail "topk_l1 train failed"
grep -q '"architecture": "topk"' "$work/tl1/cfg.json" || fail "topk_l1 should be saved as topk"
grep -q '"l1_coefficient": 0.1' "$work/tl1/runner_config.json" || fail "topk_l1 runner_config lacks its L1 coefficient"
grep -q '"gemm_math": "tf32"' "$work/tl1/runner_config.json" || fail "runner_config lacks gemm_math"
grep -q '"autocast_sae": false' "$work/tl1/runner_config.json" || fail "a tf32 run is not SAELens's autocast_sae"
# BF16 GEMMs on the host (AMX tiles, AVX-512 BF16 or their emulation): recorded as SAELens's autocast_sae, and
# the weights differ from the same run in FP32 (the host no longer ignores the setting).
for math in fp32 bf16; do
  "$bin" train --model tiny --arch topk --k 3 --width 32 --samples 10240 --batch 512 --eval-samples 1024 \
    --gemm-math "$math" --out "$work/gm_$math" >/dev/null 2>&1 || fail "topk train --gemm-math $math failed"
done
grep -q '"autocast_sae": true' "$work/gm_bf16/runner_config.json" || fail "a bf16 run should be recorded as autocast_sae"
cmp -s "$work/gm_fp32/sae_weights.safetensors" "$work/gm_bf16/sae_weights.safetensors" &&
  fail "--gemm-math bf16 trained the same weights as fp32"
# Where the BF16 products ran is in --timings; SYNTHSAE_HOST_BF16=emulated forces the emulation,
# which says so; a value outside amx, avx512 and emulated is an error that names it.
SYNTHSAE_HOST_BF16=emulated "$bin" train --model tiny --arch topk --k 3 --width 32 --samples 2048 --batch 512 --eval-samples 1024 \
  --gemm-math bf16 --timings "$work/gm_emu.json" --out "$work/gm_emu" >/dev/null 2>"$work/gm_emu.err" ||
  fail "bf16 train with SYNTHSAE_HOST_BF16=emulated failed"
grep -q '"bf16_products": "emulated"' "$work/gm_emu.json" || fail "timings should say the bf16 products were emulated"
grep -q 'products are emulated' "$work/gm_emu.err" || fail "an emulated bf16 run should say so on stderr"
SYNTHSAE_HOST_BF16=avx2 "$bin" train --model tiny --arch topk --k 3 --width 32 --samples 2048 --batch 512 \
  --eval-samples 1024 --gemm-math bf16 --out "$work/gm_bad" >/dev/null 2>"$work/gm_bad.err"
[ $? -eq 2 ] || fail "SYNTHSAE_HOST_BF16=avx2 should be refused as a usage error (exit 2)"
grep -q 'SYNTHSAE_HOST_BF16 = avx2' "$work/gm_bad.err" || fail "the SYNTHSAE_HOST_BF16 error should name the value"
test -e "$work/gm_bad/sae_weights.safetensors" && fail "a refused SYNTHSAE_HOST_BF16 left weights behind"
# --screen-encoder (batchtopk, matryoshka_batchtopk, topk): the screened product trains, is
# recorded, and writes weights close to the plain FP32 run's (the same arithmetic up to the order
# of each dot's sums), not equal to them; any other architecture, or another --gemm-math, is a
# usage error.
#
# screened_pair ARCH: plain and screened 10,240-sample runs of ARCH; both recorded as such, the
# screened EV within 0.01 of the plain one, the weights not equal.
screened_pair() {
  for mode in plain screen; do
    flag=""; [ "$mode" = screen ] && flag="--screen-encoder"
    "$bin" train --model tiny --arch "$1" --k 3 --width 64 --samples 10240 --batch 512 --eval-samples 1024 \
      $flag --out "$work/scr_$1_$mode" >/dev/null 2>&1 || fail "$1 train ($mode encoder) failed"
  done
  grep -q '"screen_encoder": true' "$work/scr_$1_screen/runner_config.json" || fail "the screened $1 run is not recorded"
  grep -q '"screen_encoder": false' "$work/scr_$1_plain/runner_config.json" || fail "the plain $1 run is recorded as screened"
  ev_plain=$(sed -n 's/.*"explained_variance": \([-0-9.e]*\).*/\1/p' "$work/scr_$1_plain/eval_stats.json")
  ev_screen=$(sed -n 's/.*"explained_variance": \([-0-9.e]*\).*/\1/p' "$work/scr_$1_screen/eval_stats.json")
  [ -n "$ev_plain" ] && [ -n "$ev_screen" ] || fail "a $1 run's eval_stats.json lacks explained_variance"
  awk -v a="$ev_plain" -v b="$ev_screen" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 0.01) }' ||
    fail "screened $1 explained variance $ev_screen is not within 0.01 of the plain run's $ev_plain"
  cmp -s "$work/scr_$1_plain/sae_weights.safetensors" "$work/scr_$1_screen/sae_weights.safetensors" &&
    fail "$1 --screen-encoder trained the plain run's weights bit for bit (was the screen used?)"
}
screened_pair batchtopk
screened_pair topk  # per-row screen
"$bin" train --model tiny --arch matryoshka_batchtopk --k 3 --width 64 --samples 4096 --batch 512 --eval-samples 1024 \
  --screen-encoder --out "$work/scr_mat" >/dev/null 2>&1 || fail "matryoshka_batchtopk train --screen-encoder failed"
grep -q '"screen_encoder": true' "$work/scr_mat/runner_config.json" || fail "the screened matryoshka_batchtopk run is not recorded"
expect 2 "--screen-encoder: abstopk has no selection to screen" -- "$bin" train --model tiny --arch abstopk --screen-encoder --out "$work/x"
expect 2 "--screen-encoder with --gemm-math bf16" -- "$bin" train --model tiny --arch batchtopk --gemm-math bf16 --screen-encoder --out "$work/x"

"$bin" architectures >"$work/arch.md" || fail "synthsae architectures failed"
for a in standard topk batchtopk matryoshka_batchtopk jumprelu gated matching_pursuit topk_l1; do
  grep -q "^| \`$a\` |" "$work/arch.md" || fail "synthsae architectures lacks $a"
done
"$bin" train --help | grep -q "topk_l1" || fail "train --help should list the architectures from the library's list"

# Usage errors (exit 2).
expect 2 "--apply-b-dec-to-input = yes" -- "$bin" train --model tiny --arch topk --apply-b-dec-to-input yes --out "$work/x"
expect 2 "--gemm-math = fp16" -- "$bin" train --model tiny --arch topk --gemm-math fp16 --out "$work/x"
expect 2 "--target-l0 applies to standard, jumprelu, gated" -- "$bin" train --model tiny --arch topk --target-l0 4 --out "$work/x"
expect 2 "--arch is required" -- "$bin" train --model tiny --out "$work/x"
expect 2 "--arch = nope" -- "$bin" train --model tiny --arch nope --out "$work/x"
expect 2 "--k applies to" -- "$bin" train --model tiny --arch standard --k 5 --out "$work/x"
expect 2 "--l1 applies to" -- "$bin" train --model tiny --arch topk --l1 2 --out "$work/x"
expect 2 "--lr = -1" -- "$bin" train --model tiny --arch topk --lr -1 --out "$work/x"
expect 2 "neither a preset" -- "$bin" train --model nowhere --arch topk --out "$work/x"
expect 2 "--sae is required" -- "$bin" eval --model tiny
[ -e "$work/x" ] && fail "a usage error left output behind"

# Bad files (exit 1).
cp -r "$work/std" "$work/bad"
echo '{"architecture": "standard", "d_in": 32, "d_sae": 31}' >"$work/bad/cfg.json"
expect 1 "W_enc" -- "$bin" eval --model tiny --sae "$work/bad" --samples 512
head -c 100 "$work/std/sae_weights.safetensors" >"$work/bad/sae_weights.safetensors"
cp "$work/std/cfg.json" "$work/bad/cfg.json"
expect 1 "sae_weights.safetensors" -- "$bin" eval --model tiny --sae "$work/bad" --samples 512
# A world whose hidden_dim does not match the SAE.
"$bin" model --preset cpu-1k --save "$work/w1k" >/dev/null 2>&1
expect 1 "does not match" -- "$bin" eval --model "$work/w1k" --sae "$work/std" --samples 512

finish "all synthsae train/eval checks passed"
