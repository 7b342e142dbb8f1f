#!/usr/bin/env bash
# End-to-end checks of `synthsae darkmatter`: on the tiny world with two trained SAEs (report
# keys, plots, ground truth), on the committed .npy fixtures (an SAE in .npy names and the same
# SAE's precomputed outputs agree; the position filter), bad flags exit 2, bad files exit 1,
# and failures leave no output directory.
#   test_darkmatter.sh SYNTHSAE_BINARY SOURCE_DIR WORK_DIR
set -u
bin="$1"
src="$2"
work="$3"
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/lib.sh"
npy="$src/tests/data/npy/darkmatter"

for w in 32 64 128; do
  "$bin" train --model tiny --arch topk --k 4 --width $w --samples 20480 --batch 512 --lr 2e-3 \
    --eval-samples 1024 --out "$work/topk-$w" >/dev/null 2>"$work/train.err" || fail "train width $w failed: $(tail -2 "$work/train.err")"
done
"$bin" darkmatter --model tiny --sae "$work/topk-32" --sae "$work/topk-64" --sae "$work/topk-128" --samples 6000 \
  --out "$work/dm" >"$work/dm.txt" 2>"$work/dm.err" || fail "darkmatter failed: $(tail -3 "$work/dm.err")"
for f in darkmatter.json breakdown.svg norm_battery.svg cross_width.svg token_norms.svg; do
  [ -s "$work/dm/$f" ] || fail "missing $f"
done
for key in '"fvu_nonlinear"' '"error_r2"' '"ground_truth"' '"r2_absent"' '"r2_introduced"' '"cross_width"' \
           '"fvu_decrease_percent"' '"breakdown"' '"oracle_c"' '"true_l0"' '"x_centered_sq"' '"condition_number"'; do
  grep -q "$key" "$work/dm/darkmatter.json" || fail "darkmatter.json lacks $key"
done
grep -q '"fitted": true' "$work/dm/darkmatter.json" || fail "three widths should fit the power law"
grep -q '"test": 2400' "$work/dm/darkmatter.json" || fail "6000 rows should split 3600 / 2400"
grep -q 'fit' "$work/dm.err" || fail "no progress line on stderr"
[ "$(grep -c '^topk-' "$work/dm.txt")" -eq 3 ] || fail "the summary table should list three SAEs"

# Inference-time optimisation: --pursuit adds each SAE's decoder with pursuit's codes as a row of
# its own (labelled +gp), and leaves the across-width analyses to the SAEs themselves.
"$bin" darkmatter --model tiny --sae "$work/topk-32" --sae "$work/topk-64" --pursuit gp --samples 4000 \
  --out "$work/gp" >"$work/gp.txt" 2>"$work/gp.err" || fail "darkmatter --pursuit gp failed: $(tail -3 "$work/gp.err")"
grep -q '^topk-64+gp ' "$work/gp.txt" || fail "the summary table should list topk-64+gp"
grep -q '"architecture": "topk+gp"' "$work/gp/darkmatter.json" || fail "darkmatter.json should mark the pursued rows"
expect 2 "--pursuit = lasso" -- "$bin" darkmatter --model tiny --sae "$work/topk-32" --pursuit lasso --out "$work/x"

# Oracle SAEs (read from the ground truth, exported as SAELens directories) and the paper's
# noise-injection test on each --sae.
"$bin" darkmatter --model tiny --sae "$work/topk-32" --oracle top:32 --oracle random:16,seed=2,isotropic=0.05 \
  --inject --inject-rows 3000 --samples 4000 --out "$work/or" >"$work/or.txt" 2>"$work/or.err" \
  || fail "darkmatter --oracle --inject failed: $(tail -3 "$work/or.err")"
grep -q '^oracle:top-32 ' "$work/or.txt" || fail "the summary table should list oracle:top-32"
grep -q '^oracle:random-16-seed2+isotropic-0.05 ' "$work/or.txt" || fail "the summary table should list the noisy oracle"
grep -q '^noise injection, topk-32 (3000 rows, 1000 held out)' "$work/or.txt" || fail "no noise-injection line for topk-32"
for key in '"architecture": "oracle"' '"noise_injection"' '"estimated_introduced"' '"masked_fraction"'; do
  grep -q "$key" "$work/or/darkmatter.json" || fail "darkmatter.json lacks $key"
done
[ -s "$work/or/noise_injection.svg" ] || fail "missing noise_injection.svg"
[ -s "$work/or/oracles/oracle-top-32/cfg.json" ] || fail "the oracle was not exported"
grep -q 'saved without its random isotropic error' "$work/or.err" || fail "no note that the export drops the random error"
"$bin" darkmatter --model tiny --sae "$work/or/oracles/oracle-top-32" --samples 2000 --out "$work/or2" >"$work/or2.txt" 2>&1 \
  || fail "an exported oracle does not load as an SAE: $(tail -3 "$work/or2.txt")"
grep -q '^oracle-top-32 .* 32 ' "$work/or2.txt" || fail "the exported oracle should have 32 latents"
expect 2 "--oracle needs --model" -- "$bin" darkmatter --activations "$npy/acts.npy" --sae "$npy/sae" --oracle top:3 --out "$work/x"
expect 2 "--oracle = top:x" -- "$bin" darkmatter --model tiny --oracle top:x --out "$work/x"
expect 2 "--oracle = top:3,blur=1" -- "$bin" darkmatter --model tiny --oracle top:3,blur=1 --out "$work/x"
expect 2 "--inject-rows goes with --inject" -- "$bin" darkmatter --model tiny --sae "$work/topk-32" --inject-rows 10 --out "$work/x"
expect 2 "--inject needs an --sae" -- "$bin" darkmatter --model tiny --oracle top:3 --inject --out "$work/x"
expect 2 "two SAEs are labelled oracle:top-3" -- "$bin" darkmatter --model tiny --oracle top:3 --oracle top:3 --out "$work/x"
expect 1 "oracle m = 100000" -- "$bin" darkmatter --model tiny --oracle top:100000 --out "$work/x"

# The downstream hook: both built-in losses for an SAE and an oracle; the expected values beside.
"$bin" darkmatter --model tiny --sae "$work/topk-32" --oracle top:64 --samples 3000 --downstream pinv,readout \
  --downstream-rows 3000 --out "$work/down" >"$work/down.txt" 2>"$work/down.err" \
  || fail "darkmatter --downstream failed: $(tail -3 "$work/down.err")"
python3 - "$work/down/darkmatter.json" <<'PY' || fail "darkmatter.json's downstream section is inconsistent"
import json, sys
d = json.load(open(sys.argv[1]))["downstream"]
assert [r["sae"] for r in d] == ["topk-32", "oracle:top-64"], [r["sae"] for r in d]
for r in d:
    assert r["train_rows"] == 1800 and r["test_rows"] == 1200, (r["train_rows"], r["test_rows"])
    assert [l["loss"] for l in r["losses"]] == ["pinv_recovery", "relu_readout"]
    for l in r["losses"]:
        assert l["loss_sae"] > l["loss_x"] >= 0, l
        for c in ("linear_error", "nonlinear_error"):
            # recovered is (L(Sae) - L(Sae + comp)) / (L(Sae) - L(x)), as the losses say
            want = (l["loss_sae"] - l[c]["loss"]) / (l["loss_sae"] - l["loss_x"])
            assert abs(l[c]["recovered"] - want) < 1e-9, (c, l)
    e = r["expected"]
    assert abs(e["linear_error"]["variance_share"] + e["nonlinear_error"]["variance_share"] - 1) < 0.5
PY
grep -q 'relu_readout' "$work/down.txt" || fail "the summary should list the readout loss"
expect 0 "note: --downstream-rows 3000 is more than the 2000 rows of --samples; using 2000" -- \
  "$bin" darkmatter --model tiny --oracle top:8 --samples 2000 --downstream pinv --downstream-rows 3000 --out "$work/down2"
expect 2 "'pinv' is listed twice" -- "$bin" darkmatter --model tiny --sae "$work/topk-32" --downstream pinv,pinv --out "$work/x"
expect 2 "unknown loss 'ce'" -- "$bin" darkmatter --model tiny --sae "$work/topk-32" --downstream pinv,ce --out "$work/x"
expect 2 "--downstream needs --model" -- "$bin" darkmatter --activations "$npy/acts.npy" --sae "$npy/sae" --downstream pinv --out "$work/x"
expect 2 "--downstream-rows goes with --downstream" -- "$bin" darkmatter --model tiny --sae "$work/topk-32" --downstream-rows 10 --out "$work/x"

# SAEs trained on a base SAE's LinearError and NonlinearError, streamed from fresh samples.
"$bin" darkmatter --model tiny --sae "$work/topk-64" --samples 3000 --out "$work/errsae" \
  --train-on-errors topk:128,k=4,samples=51200,batch=512,lr=2e-3,fit=4000,score=2000 >"$work/errsae.txt" 2>"$work/errsae.err" \
  || fail "darkmatter --train-on-errors failed: $(tail -3 "$work/errsae.err")"
grep -q '^  topk-64 *linear *topk:128 ' "$work/errsae.txt" || fail "no table row for the linear-error SAE"
grep -q '^  topk-64 *nonlinear *topk:128 ' "$work/errsae.txt" || fail "no table row for the nonlinear-error SAE"
for key in '"error_saes"' '"recovered_absent"' '"mean_max_cos_absent"' '"component": "nonlinear"'; do
  grep -q "$key" "$work/errsae/darkmatter.json" || fail "darkmatter.json lacks $key"
done
[ -s "$work/errsae/error_saes.svg" ] || fail "missing error_saes.svg"
for c in linear nonlinear; do
  [ -s "$work/errsae/error_saes/topk-64-$c-topk-128/sae_weights.safetensors" ] || fail "the $c-error SAE was not saved"
done
grep -q 'training topk:128 on topk-64.s nonlinear error' "$work/errsae.err" || fail "no progress line for the error SAEs"
expect 2 "--train-on-errors = topk: start with ARCH:WIDTH" -- "$bin" darkmatter --model tiny --sae "$work/topk-32" --train-on-errors topk --out "$work/x"
expect 2 "unknown architecture 'lasso'" -- "$bin" darkmatter --model tiny --sae "$work/topk-32" --train-on-errors lasso:8 --out "$work/x"
expect 2 "k = 100 is larger than the width" -- "$bin" darkmatter --model tiny --sae "$work/topk-32" --train-on-errors topk:64,k=100 --out "$work/x"
expect 2 "--k" -- "$bin" darkmatter --model tiny --sae "$work/topk-32" --train-on-errors standard:64,k=3 --out "$work/x"
expect 2 "unknown key 'width'" -- "$bin" darkmatter --model tiny --sae "$work/topk-32" --train-on-errors topk:64,width=3 --out "$work/x"
expect 2 "--train-on-errors needs --model" -- "$bin" darkmatter --activations "$npy/acts.npy" --sae "$npy/sae" --train-on-errors topk:8 --out "$work/x"

# A user's files: the SAE from its .npy weights, and its precomputed outputs, give the same FVU.
"$bin" darkmatter --activations "$npy/acts.npy" --sae "$npy/sae" --sae-outputs "$npy/sae_outputs.npy" \
  --out "$work/files" >"$work/files.txt" 2>"$work/files.err" || fail "darkmatter on files failed: $(tail -3 "$work/files.err")"
fvu_sae=$(awk 'NR > 1 && $1 == "sae" {print $4}' "$work/files.txt")
fvu_out=$(awk '$1 == "sae_outputs.npy" {print $4}' "$work/files.txt")
[ -n "$fvu_sae" ] && [ "$fvu_sae" = "$fvu_out" ] || fail "FVU of the SAE ($fvu_sae) and of its outputs ($fvu_out) differ"
grep -q '"ground_truth"' "$work/files/darkmatter.json" && fail "file sources have no ground truth"
# Positions: keeping positions >= 50 of 0..199 keeps 450 of 600 rows.
"$bin" darkmatter --activations "$npy/acts.npy" --positions "$npy/positions.npy" --min-position 50 \
  --sae "$npy/sae" --out "$work/pos" >/dev/null 2>&1 || fail "darkmatter with positions failed"
grep -q '"total": 450' "$work/pos/darkmatter.json" || fail "the position filter should keep 450 rows"

# Usage errors exit 2 and name the flag; bad files exit 1 and name the file; no partial output.
expect 2 "exactly one of --model and --activations" -- "$bin" darkmatter --sae "$npy/sae" --out "$work/x"
expect 2 "--out is required" -- "$bin" darkmatter --model tiny --sae "$work/topk-32"
expect 2 "at least one --sae or --oracle" -- "$bin" darkmatter --model tiny --out "$work/x"
expect 2 "--match-threshold = 2" -- "$bin" darkmatter --model tiny --sae "$work/topk-32" --match-threshold 2 --out "$work/x"
expect 2 "--min-position goes with --activations" -- "$bin" darkmatter --model tiny --sae "$work/topk-32" --min-position 3 --out "$work/x"
expect 2 "--sae-outputs and --sae-errors go with --activations" -- "$bin" darkmatter --model tiny --sae-outputs "$npy/acts.npy" --out "$work/x"
expect 1 "holds neither cfg.json" -- "$bin" darkmatter --model tiny --sae "$work" --out "$work/x"
printf 'not an npy file' >"$work/bad.npy"
expect 1 "bad.npy" -- "$bin" darkmatter --activations "$work/bad.npy" --sae "$npy/sae" --out "$work/x"
expect 1 "reads 8 dimensions" -- "$bin" darkmatter --model tiny --sae "$npy/sae" --out "$work/x"
expect 1 "train_rows" -- "$bin" darkmatter --model tiny --sae "$work/topk-32" --samples 100 --train-rows 100 --out "$work/x"
[ -e "$work/x" ] && fail "a failed run left $work/x behind"
ls "$work" | grep -q partial && fail "a failed run left a staging directory"

finish "cli.darkmatter: ok"
