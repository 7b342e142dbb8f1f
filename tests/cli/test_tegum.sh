#!/usr/bin/env bash
# End-to-end checks of `synthsae tegum`: the reference's setting at a short run (mutex groups of
# five in 8 dimensions become pentagons: within-group share near 1, effective rank 2; the
# independent control does not), a co-activation sweep writes its plot, bad flags exit 2 and
# leave no output directory.
#   test_tegum.sh SYNTHSAE_BINARY SOURCE_DIR WORK_DIR
set -u
bin="$1"
work="$3"
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/lib.sh"

"$bin" tegum --groups 4x5 --hidden 8 --q 0.9 --steps 3000 --seeds 3 --controls independent --out "$work/t" \
  >"$work/t.txt" 2>"$work/t.err" || fail "tegum failed: $(tail -3 "$work/t.err")"
for f in tegum.json interference_mutex.svg interference_independent.svg geometry_mutex.svg geometry_independent.svg; do
  [ -s "$work/t/$f" ] || fail "missing $f"
done
python3 - "$work/t/tegum.json" <<'PY' || fail "tegum.json does not show the hypothesis"
import json, sys
r = json.load(open(sys.argv[1]))
s = {x["label"]: x for x in r["settings"]}
m, i = s["mutex"], s["independent"]
assert len(m["runs"]) == 3 and len(m["runs"][0]["W"]) == 8 and len(m["runs"][0]["W"][0]) == 20, "W is 8 x 20 per run"
# Toy models have local optima (one seed in five stalls at a higher loss): the lowest-loss run is
# the pentagons, and the mean over seeds is far above the independent control.
best = min(m["runs"], key=lambda x: x["loss"])
assert m["best_run"]["seed"] == best["seed"] and m["best_run"]["within_share"] == best["mean_within_share"]
assert best["mean_within_share"] > 0.99, best["mean_within_share"]
assert abs(best["mean_effective_rank"] - 2) < 0.01, best["mean_effective_rank"]
assert m["within_share"]["mean"] > 0.8, m["within_share"]
assert abs(m["chance"] - 4 / 19) < 1e-12, m["chance"]
assert i["within_share"]["mean"] < 0.5, i["within_share"]
assert i["effective_rank"]["mean"] > 3, i["effective_rank"]
PY
python3 - "$work/t/geometry_mutex.svg" <<'PY' || fail "geometry_mutex.svg should draw four regular pentagons"
import math, re, sys
# Each group's five W columns in their principal plane: spokes 72 degrees apart, of equal length.
lines = [tuple(map(float, m)) for m in re.findall(
    r"<line x1='([-\d.e+]+)' y1='([-\d.e+]+)' x2='([-\d.e+]+)' y2='([-\d.e+]+)'", open(sys.argv[1]).read())]
assert len(lines) == 20, len(lines)
for g in range(4):
    spokes = lines[5 * g:5 * g + 5]
    angles = sorted(math.degrees(math.atan2(y1 - y2, x2 - x1)) % 360 for x1, y1, x2, y2 in spokes)
    gaps = [(angles[(i + 1) % 5] - angles[i]) % 360 for i in range(5)]
    lengths = [math.hypot(x2 - x1, y2 - y1) for x1, y1, x2, y2 in spokes]
    assert max(abs(x - 72) for x in gaps) < 3, gaps
    assert max(lengths) - min(lengths) < 0.05 * max(lengths), lengths
PY
grep -q '^mutex ' "$work/t.txt" || fail "the table should have a mutex row"
grep -q '^independent ' "$work/t.txt" || fail "the table should have an independent row"

"$bin" tegum --groups 3,3 --hidden 3 --steps 200 --seeds 1 --coactivation 0,0.5,1 --controls none --out "$work/sweep" \
  >"$work/sweep.txt" 2>"$work/sweep.err" || fail "the sweep failed: $(tail -3 "$work/sweep.err")"
[ -s "$work/sweep/within_share.svg" ] || fail "a sweep should plot the share against rho_co"
for title in "within-group interference share" "effective rank per group" "cross-group subspace overlap"; do
  grep -q "$title" "$work/sweep/within_share.svg" || fail "within_share.svg lacks the panel '$title'"
done
[ "$(grep -c '^mutex' "$work/sweep.txt")" -eq 3 ] || fail "three mutex rows expected"

# An SAE trained on the tiny world: its never-co-active latent groups and their geometry.
"$bin" train --model tiny --arch topk --k 4 --width 64 --samples 20480 --batch 512 --lr 2e-3 --eval-samples 1024 \
  --out "$work/sae" >/dev/null 2>"$work/train.err" || fail "train failed: $(tail -2 "$work/train.err")"
"$bin" tegum --sae "$work/sae" --model tiny --rows 12000 --min-firing 10 --shuffles 20 --out "$work/lat" \
  >"$work/lat.txt" 2>"$work/lat.err" || fail "tegum --sae failed: $(tail -3 "$work/lat.err")"
[ -s "$work/lat/tegum_latents.json" ] || fail "missing tegum_latents.json"
python3 - "$work/lat/tegum_latents.json" <<'PY' || fail "tegum_latents.json is inconsistent"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["rows"] == 12000 and r["latents"] == 64, (r["rows"], r["latents"])
members = [i for g in r["group_list"] for i in g["latents"]]
assert len(members) == r["grouped_latents"] == len(set(members)), "each grouped latent in one group"
assert r["groups"] == len(r["group_list"]) and all(len(g["latents"]) >= 2 for g in r["group_list"])
assert r["null_within_share"]["shuffles"] == 20
for k in ("within_share", "chance", "within_share_z", "effective_rank", "effective_rank_z"):
    assert k in r, k
PY
grep -q "never-co-active groups" "$work/lat.txt" || fail "no summary line"
expect 2 "--hidden sets up the toy model" -- "$bin" tegum --sae "$work/sae" --model tiny --hidden 4 --out "$work/bad"
expect 2 "exactly one of --model and --activations" -- "$bin" tegum --sae "$work/sae" --out "$work/bad"
expect 2 "--rows goes with --sae" -- "$bin" tegum --rows 10 --out "$work/bad"
expect 1 "neither cfg.json" -- "$bin" tegum --sae "$work" --model tiny --out "$work/bad"

# A world with its features in tegum factors, saved in SAELens's layout with its ground truth; an
# SAE trained on it is scored against the true factors.
"$bin" tegum --save-world "$work/world" --hidden 12 --groups 4x3 --subspace-dim 2 --q 0.8 >/dev/null 2>"$work/w.err" ||
  fail "--save-world failed: $(tail -2 "$work/w.err")"
for f in synthetic_model_config.json synthetic_model.safetensors hierarchy.json tegum_groups.json; do
  [ -s "$work/world/$f" ] || fail "the saved world lacks $f"
done
"$bin" train --model "$work/world" --arch topk --k 4 --width 16 --samples 100000 --batch 256 --lr 3e-3 --eval-samples 2048 \
  --out "$work/wsae" >/dev/null 2>"$work/wtrain.err" || fail "train on the tegum world failed: $(tail -2 "$work/wtrain.err")"
"$bin" tegum --sae "$work/wsae" --model "$work/world" --rows 8000 --shuffles 10 --out "$work/wlat" >"$work/wlat.txt" 2>&1 ||
  fail "tegum --sae on the tegum world failed: $(tail -3 "$work/wlat.txt")"
python3 - "$work/wlat/tegum_latents.json" <<'PY' || fail "tegum_latents.json lacks the true factors"
import json, sys
t = json.load(open(sys.argv[1]))["true_factors"]
assert len(t["groups"]) == 4
for k in ("max_cos", "subspace", "coverage", "f1", "sibling_confusion", "fvu_in_factor", "error_share", "error_linear_r2"):
    assert k in t["mean"], k
for k in ("error_linear_r2", "fvu_nonlinear_in_factor", "nonlinear_error_share"):
    assert all(k in g for g in t["groups"]), k
assert t["linear_fit_rows"]["train"] + t["linear_fit_rows"]["test"] == 8000
assert 0 < t["mean"]["max_cos"] <= 1 and 0 <= t["mean"]["subspace"] <= 1 + 1e-9
PY
grep -q "true factors" "$work/wlat.txt" || fail "no true-factor line in the summary"
grep -q "error inside the factors" "$work/wlat.txt" || fail "no line on the error inside the factors"

# Reference §2.12 (A), dense regime, random (overlapping) factors, swept over rho_co: a TopK SAE
# recovers mutually exclusive groups (rho_co 0) better (mean max |cos|) and with less error inside
# the factors than the same features firing independently (rho_co 1, the control's exact draws).
# 4 factors of 5 in 3 of 12 dimensions, every group always firing, k = 4, width 20, 2M samples.
# Measured over world/training seeds 1, 2, 3: max-cos 0.887 / 0.931 / 0.924 (mutex) against
# 0.824 / 0.852 / 0.867, FVU in the factors 0.032 / 0.038 / 0.037 against 0.035 / 0.072 / 0.065;
# the check runs seed 2 with half its margin in max-cos.
"$bin" tegum --recovery-sweep --groups 4x5 --hidden 12 --subspace-dim 3 --q 1 --placement random --world-seed 2 \
  --seeds 1 --magnitude-mean 1.25 --magnitude-std 0.3 --k 4 --width 20 --samples 2000000 --coactivation 1,0 \
  --rows 50000 --out "$work/rec" >"$work/rec.txt" 2>"$work/rec.err" || fail "the recovery sweep failed: $(tail -3 "$work/rec.err")"
for title in "mean max |cos|" "subspace recovery" "FVU inside the factors" "sibling confusion"; do
  grep -qF "$title" "$work/rec/recovery.svg" || fail "recovery.svg lacks the panel '$title'"
done
# The sweep's figures are those of `tegum --sae` on the SAE and world it saved, bit for bit: the
# same rows, the dial read back from hierarchy.json (rho_co 1: raw rates q/S rounded to float).
"$bin" tegum --sae "$work/rec/saes/rho_1_seed_2" --model "$work/rec/worlds/rho_1_seed_2" --rows 50000 --shuffles 10 \
  --out "$work/rec-lat" >/dev/null 2>"$work/d.err" || fail "tegum --sae on the sweep's SAE: $(tail -2 "$work/d.err")"
grep -q '"synthsae_coactivation"' "$work/rec/worlds/rho_1_seed_2/hierarchy.json" || fail "rho_co 1 is not in hierarchy.json"
python3 - "$work/rec/recovery.json" "$work/rec-lat/tegum_latents.json" <<'PY' ||
import json, sys
r, lat = (json.load(open(f)) for f in sys.argv[1:])
p = {x["coactivation"]: x for x in r["points"]}
assert sorted(p) == [0, 1] and r["seeds"] == 1 and r["world"]["first_seed"] == 2, (sorted(p), r["seeds"])
m, i = p[0]["mean"], p[1]["mean"]
assert m["max_cos"] > i["max_cos"] + 0.04, (m["max_cos"], i["max_cos"])
assert m["fvu_in_factor"] < i["fvu_in_factor"], (m["fvu_in_factor"], i["fvu_in_factor"])
run = p[1]["runs"][0]
assert run["seed"] == 2 and run["sae"] == "saes/rho_1_seed_2" and run["world"] == "worlds/rho_1_seed_2"
for k in ("max_cos", "subspace", "coverage", "fvu_in_factor", "f1", "sibling_confusion", "cofiring_share"):
    assert run["true_factors"]["mean"][k] == lat["true_factors"]["mean"][k], k
# With the marginals held, co-firing comes with fewer active groups: 1 - 0.8^5 = 0.672 at rho_co 1
# (4 x 50,000 independent pairs: SE 0.00105, checked within 5 SE), every group at 0.
assert m["group_active_share"] == 1, m["group_active_share"]
assert abs(i["group_active_share"] - 0.67232) < 0.0053, i["group_active_share"]
# Ground truth of the dial: no group ever co-fires at rho_co 0; at 1 its members fire as
# Binomial(5, 0.2), so P(>= 2 | >= 1) = (1 - .8^5 - .8^4) / (1 - .8^5) = 0.3908, over ~134,000
# active (row, group) pairs: SE 0.0013, checked within 5 SE.
assert m["cofiring_share"] == 0, m["cofiring_share"]
assert abs(i["cofiring_share"] - 0.26272 / 0.67232) < 0.0067, i["cofiring_share"]
print(f"dense random factors: max-cos {m['max_cos']:.3f} vs {i['max_cos']:.3f}, FVU in factor "
      f"{m['fvu_in_factor']:.4f} vs {i['fvu_in_factor']:.4f}")
PY
  fail "mutual exclusion should give better recovery and less error on overlapping factors"
# --save-world with the dial: every group's root carries it; the control refuses it.
"$bin" tegum --save-world "$work/world-rho" --hidden 12 --groups 4x3 --coactivation 0.3 >/dev/null 2>"$work/wr.err" ||
  fail "--save-world --coactivation failed: $(tail -2 "$work/wr.err")"
python3 - "$work/world-rho/hierarchy.json" <<'PY' || fail "hierarchy.json lacks the dial"
import json, sys
roots = json.load(open(sys.argv[1]))["roots"]
assert len(roots) == 4 and all(r["synthsae_coactivation"] == 0.3 and r["mutually_exclusive_children"] for r in roots)
PY
expect 2 "does not go with --independent" -- "$bin" tegum --save-world "$work/bad" --hidden 12 --independent --coactivation 0.3
expect 2 "--k goes with --recovery-sweep" -- "$bin" tegum --k 4 --out "$work/bad"
expect 2 "--sae does not go with --recovery-sweep" -- "$bin" tegum --recovery-sweep --sae "$work/sae" --out "$work/bad"
expect 2 "larger than --width" -- "$bin" tegum --recovery-sweep --k 50 --out "$work/bad"
expect 2 "--coactivation = 1.5" -- "$bin" tegum --recovery-sweep --coactivation 0,1.5 --out "$work/bad"
expect 2 "--independent does not go with --recovery-sweep" -- "$bin" tegum --recovery-sweep --independent --out "$work/bad"
expect 2 "fewer than one batch" -- "$bin" tegum --recovery-sweep --samples 100 --out "$work/bad"
expect 2 "--rows = 10:" -- "$bin" tegum --recovery-sweep --rows 10 --out "$work/bad"
expect 2 "subspace" -- "$bin" tegum --recovery-sweep --placement orthogonal --hidden 12 --out "$work/bad"
expect 2 "too close to another value" -- "$bin" tegum --recovery-sweep --coactivation 0.1234561,0.1234562 --out "$work/bad"
expect 2 "--rows = 20:" -- "$bin" tegum --sae "$work/rec/saes/rho_1_seed_2" --model "$work/rec/worlds/rho_1_seed_2" --rows 20 --out "$work/bad"
# A rerun into the same --out replaces its worlds/ and saes/ (directories rename() cannot replace).
"$bin" tegum --recovery-sweep --groups 3x3 --hidden 9 --q 0.5 --k 2 --width 9 --samples 20480 --seeds 1 --coactivation 0.5 \
  --rows 2000 --out "$work/rerun" >/dev/null 2>&1 || fail "the small sweep failed"
"$bin" tegum --recovery-sweep --groups 3x3 --hidden 9 --q 0.5 --k 2 --width 9 --samples 20480 --seeds 1 --coactivation 0.5 \
  --rows 2000 --out "$work/rerun" >/dev/null 2>"$work/rerun.err" || fail "a rerun into the same --out failed: $(tail -2 "$work/rerun.err")"
[ -s "$work/rerun/saes/rho_0.5_seed_1/cfg.json" ] || fail "the rerun lost its SAE"
ls "$work/rerun" | grep -q "replaced" && fail "a previous directory was left beside the new one"
"$bin" tegum --save-world "$work/world-none" --hidden 12 --groups 4x3 --placement none --ungrouped 2 >/dev/null 2>"$work/wn.err" ||
  fail "--placement none with ungrouped features failed: $(tail -2 "$work/wn.err")"
expect 2 "magnitude_std" -- "$bin" tegum --save-world "$work/bad" --hidden 12 --magnitude-std 0.5
expect 2 "needs --hidden" -- "$bin" tegum --save-world "$work/bad"
expect 2 "subspace_dims" -- "$bin" tegum --save-world "$work/bad" --hidden 4 --groups 3x3 --subspace-dim 2
expect 2 "--independent goes with --save-world" -- "$bin" tegum --independent --out "$work/bad"
expect 2 "--placement" -- "$bin" tegum --save-world "$work/bad" --hidden 12 --placement diagonal

expect 2 "--groups = 4y5" -- "$bin" tegum --groups 4y5 --out "$work/bad"
expect 2 "--q = 1.5" -- "$bin" tegum --q 1.5 --out "$work/bad"
expect 2 "--coactivation = 2" -- "$bin" tegum --coactivation 0,2 --out "$work/bad"
expect 2 "'sometimes'" -- "$bin" tegum --controls sometimes --out "$work/bad"
expect 2 "given twice" -- "$bin" tegum --coactivation 0,0 --out "$work/bad"
expect 2 "--out is required" -- "$bin" tegum
[ ! -e "$work/bad" ] || fail "a refused run left $work/bad"
finish "cli.tegum: all checks passed"
