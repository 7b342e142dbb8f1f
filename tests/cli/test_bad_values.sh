#!/usr/bin/env bash
# Bad values through the program, one table (the library's table: tests/train/test_bad_values.cpp):
# a bad flag exits 2, a bad file exits 1, and stderr names the field and the value; nothing is
# left behind in --out.
#   test_bad_values.sh SYNTHSAE_BINARY SOURCE_DIR WORK_DIR
set -u
bin="$1"
src="$2"
work="$3"
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/lib.sh"

# config NAME PYTHON: the committed tiny SAELens world's config with one edit, as $work/NAME.json.
base="$src/tests/data/saelens/world_tiny/synthetic_model_config.json"
config() {
  python3 - "$base" "$work/$1.json" "$2" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
exec(sys.argv[3])
open(sys.argv[2], "w").write(json.dumps(c) if not isinstance(c, str) else c)
PY
}
config zero_features "c['num_features'] = 0"
config nested_typo "c['correlation']['rnak'] = 2"
config wrong_type "c['num_features'] = '300'"
config too_big "c['num_features'] = 2**30; c['hidden_dim'] = 2**20; c['hierarchy'] = None"
config nan_literal "c = json.dumps(c).replace('\"bias\": 0.5', '\"bias\": NaN')"
config overflow "c = json.dumps(c).replace('\"bias\": 0.5', '\"bias\": 1e999')"
config min_over_max "c['firing_probability']['min_prob'] = 0.5"
config big_hierarchy "c['hierarchy']['total_root_nodes'] = 200"
config wide "c['num_features'] = 16; c['hidden_dim'] = 768; c['hierarchy'] = None; c['orthogonalization'] = None; c['correlation'] = None"

# A world directory with a truncated safetensors file, and an SAE with one.
"$bin" model --preset tiny --save "$work/world" --samples 100 >/dev/null 2>&1 || fail "saving the tiny world failed"
cp -r "$work/world" "$work/world_cut"
head -c 1000 "$work/world/synthetic_model.safetensors" >"$work/world_cut/synthetic_model.safetensors"
"$bin" model --config "$work/wide.json" --save "$work/wide" --samples 100 >/dev/null 2>&1 || fail "saving the wide world failed"
cp -r "$src/tests/data/saelens/sae_standard" "$work/sae_cut"
head -c 500 "$src/tests/data/saelens/sae_standard/sae_weights.safetensors" >"$work/sae_cut/sae_weights.safetensors"

# expect() keeps stdout in $work/out, so the runs write to $work/run. --samples 2048 unless a row gives its own.
train() {
  local samples=(--samples 2048)
  [[ " $* " == *" --samples "* ]] && samples=()
  "$bin" train --model tiny --arch topk "${samples[@]}" --out "$work/run" "$@"
}

# CODE | what stderr must say | the command
while IFS='|' read -r code pattern cmd; do
  [ -z "$code" ] && continue
  eval "expect $code \"\$pattern\" -- $cmd"
  [ -e "$work/run" ] && fail "'$cmd' left $work/run behind"
done <<EOF_TABLE
1|num_features = 0: must be >= 1|"$bin" model --config "$work/zero_features.json"
1|correlation.rnak = 2: is not a key of correlation|"$bin" model --config "$work/nested_typo.json"
1|num_features = "300": must be an integer|"$bin" model --config "$work/wrong_type.json"
1|num_features x hidden_dim = 1073741824 x 1048576: the world's feature dictionary needs at least|"$bin" model --config "$work/too_big.json"
1|invalid JSON|"$bin" model --config "$work/nan_literal.json"
1|number overflow|"$bin" model --config "$work/overflow.json"
1|firing_probability.min_prob/max_prob = 0.5/0.3|"$bin" model --config "$work/min_over_max.json"
1|synthetic_model.safetensors|"$bin" model --load "$work/world_cut"
1|sae_weights.safetensors|"$bin" eval --sae "$work/sae_cut" --model tiny --samples 1000
2|--k = 0|train --k 0
2|--k = 300: larger than the width 64|train --k 300
2|--lr = 0|train --lr 0
2|--lr = nan: not a number|train --lr nan
2|--lr = inf: not a number|train --lr inf
2|--batch = 0|train --batch 0
2|--samples = 99999999999999999999: not an integer|train --samples 99999999999999999999
2|--samples = 100: must be at least one batch|train --samples 100
2|d_in x d_sae = 768 x 16777216: training this SAE needs at least|"$bin" train --model "$work/wide" --arch standard --width 16777216 --samples 2048 --out "$work/run"
2|--width = 0|train --width 0
2|--eval-samples = 0|train --eval-samples 0
EOF_TABLE

# A hierarchy that needs more features than the world has: built cut, as SAELens does, and said.
expect 0 "asks for more features than num_features = 300" -- "$bin" model --config "$work/big_hierarchy.json" --samples 100

finish "bad values: all checks passed"
