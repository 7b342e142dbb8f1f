#!/usr/bin/env bash
# End-to-end checks of `synthsae circuits`: with oracle SAEs everywhere the concatenated component
# reconstructions explain the target's SaeError (R² ≥ 0.95, the reference's test of success) and
# injected noise leaves NonlinearError unexplained; a trained SAE can stand in for the target or a
# component; bad flags exit 2 and leave no output directory.
#   test_circuits.sh SYNTHSAE_BINARY WORK_DIR
set -u
bin="$1"
work="$2"
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/lib.sh"

"$bin" circuits --rows 20000 --noise 0,1 --out "$work/c" >"$work/c.txt" 2>"$work/c.err" ||
  fail "circuits failed: $(tail -3 "$work/c.err")"
for f in circuits.json r2_bars.svg noise.svg; do [ -s "$work/c/$f" ] || fail "missing $f"; done
python3 - "$work/c/circuits.json" <<'PY' || fail "circuits.json does not show the reference's results"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["circuit"]["prev_features"] == 48 and r["target_sae"] == "oracle:top-72", r["target_sae"]
clean, noisy = r["runs"]
assert clean["noise"] == 0 and noisy["noise"] == 1
row = lambda run, name: next(x for x in run["table"] if x["regressor"] == name)
assert row(clean, "sae_all")["explained_sae_error"] > 0.95, row(clean, "sae_all")
assert row(clean, "x_target")["explained_linear_error"] > 0.999
assert row(noisy, "sae_all")["explained_nonlinear_error"] < 0.15, row(noisy, "sae_all")
assert len(clean["table"]) == 16 and clean["rows"] == 20000 and clean["test_rows"] == 8000
PY
grep -q '^sae_all ' "$work/c.txt" || fail "the table should have a sae_all row"

# A trained SAE as the target (the tiny world's 32 dimensions) and as the x_prev component.
"$bin" train --model tiny --arch topk --k 4 --width 64 --samples 20480 --batch 512 --lr 2e-3 --eval-samples 1024 \
  --out "$work/sae" >/dev/null 2>"$work/train.err" || fail "train failed: $(tail -2 "$work/train.err")"
"$bin" circuits --hidden 32 --rows 4000 --target-sae "$work/sae" --component-sae "prev=$work/sae" --out "$work/t" \
  >"$work/t.txt" 2>"$work/t.err" || fail "circuits with trained SAEs failed: $(tail -3 "$work/t.err")"
python3 - "$work/t/circuits.json" <<'PY' || fail "circuits.json of the trained SAEs is inconsistent"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["target_sae"] == "sae" and r["component_saes"]["prev"]["sae"].endswith("sae")
assert len(r["runs"]) == 1 and r["runs"][0]["target_fvu"] > 0
PY

# TopK SAEs trained on the circuit's own stream for the target and every component.
"$bin" circuits --rows 4000 --train-saes samples=40960,width=32,k=4,lr=0.005 --out "$work/tr" >"$work/tr.txt" 2>"$work/tr.err" ||
  fail "circuits --train-saes failed: $(tail -3 "$work/tr.err")"
for part in target prev mlp attn; do [ -s "$work/tr/saes/$part/cfg.json" ] || fail "the trained $part SAE was not saved"; done
python3 - "$work/tr/circuits.json" <<'PY' || fail "circuits.json of --train-saes is inconsistent"
import json, sys
r = json.load(open(sys.argv[1]))
t = r["training"]
assert (t["width"], t["k"], t["samples"]) == (32, 4, 40960), t
assert r["target_sae"] == "topk-32-k4" and all(r["component_saes"][c]["trained"] == "topk-32-k4" for c in ("prev", "mlp", "attn"))
run = r["runs"][0]
# Trained SAEs leave error in every part (oracles capturing everything leave none).
assert 0 < run["target_fvu"] < 1 and all(0 < run["components"][c]["fvu"] < 1 for c in ("prev", "mlp", "attn")), run
PY
expect 2 "unknown key 'depth'" -- "$bin" circuits --train-saes depth=3 --out "$work/bad"
expect 2 "k = 40 is larger than the width 32" -- "$bin" circuits --train-saes width=32,k=40 --out "$work/bad"
expect 2 "does not go with --train-saes" -- "$bin" circuits --train-saes default --noise 0.1 --out "$work/bad"
expect 2 "capture = 2" -- "$bin" circuits --capture 1,2,1 --out "$work/bad"
expect 2 "unknown component 'ffn'" -- "$bin" circuits --component-sae "ffn=$work/sae" --out "$work/bad"
expect 2 "reads 32 dimensions" -- "$bin" circuits --component-sae "attn=$work/sae" --out "$work/bad"
expect 2 "does not go with --target-sae" -- "$bin" circuits --target-sae "$work/sae" --noise 0.1 --hidden 32 --out "$work/bad"
expect 2 "--fan-in: computed_fan_in = 100" -- "$bin" circuits --fan-in 100 --out "$work/bad"
expect 2 "--zipf: " -- "$bin" circuits --zipf 1,0.01,0.5 --out "$work/bad"
expect 2 "--rows = 100: 60 %" -- "$bin" circuits --rows 100 --out "$work/bad"
expect 2 "oracle m" -- "$bin" circuits --target top:0 --out "$work/bad"
expect 2 "out is required" -- "$bin" circuits
expect 1 "neither cfg.json" -- "$bin" circuits --target-sae "$work" --out "$work/bad"
[ ! -e "$work/bad" ] || fail "a failed run left $work/bad"
finish "circuits: all checks passed"
