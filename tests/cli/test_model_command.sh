#!/usr/bin/env bash
# End-to-end checks of `synthsae model`: a world saved and loaded again gives the same
# statistics; bad flags and bad files exit 2 / 1 with a message naming the problem and leave
# no partial output behind.
#   test_model_command.sh SYNTHSAE_BINARY WORK_DIR
set -u
bin="$1"
work="$2"
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/lib.sh"

# Save, reload, compare the statistics (same samples, same world => identical numbers).
"$bin" model --preset tiny --save "$work/tiny" --stats --samples 2000 >"$work/a.json" 2>/dev/null || fail "save run failed"
for f in synthetic_model_config.json synthetic_model.safetensors hierarchy.json; do
  [ -f "$work/tiny/$f" ] || fail "missing $f"
done
"$bin" model --load "$work/tiny" --samples 2000 >"$work/b.json" 2>/dev/null || fail "load run failed"
strip() { grep -v -e build_seconds -e samples_per_second "$1"; }
[ "$(strip "$work/a.json")" = "$(strip "$work/b.json")" ] || fail "reloaded world gives different statistics"
grep -q '"hierarchical_features": 84' "$work/a.json" || fail "tiny preset should have 4+16+64 = 84 hierarchical features"
ls "$work" | grep -q partial && fail "staging directory left behind"

# Usage errors: exit 2, message names the flag/value.
expect 2 "exactly one of" -- "$bin" model
expect 2 "unknown argument '--bogus'" -- "$bin" model --preset tiny --bogus
expect 2 "--samples = -3" -- "$bin" model --preset tiny --samples -3
expect 2 "--samples = ten: not an integer" -- "$bin" model --preset tiny --samples ten
expect 2 "unknown; choose one of" -- "$bin" model --preset nope
expect 2 "--save needs a value" -- "$bin" model --preset tiny --save
expect 2 "unknown command 'modle'" -- "$bin" modle

# Bad files: exit 1, message names the file and the field.
echo '{"num_features": 10, "hidden_dim": 0}' >"$work/bad.json"
expect 1 "hidden_dim = 0" -- "$bin" model --config "$work/bad.json"
echo '{"num_features": 10, ' >"$work/broken.json"
expect 1 "broken.json: invalid JSON" -- "$bin" model --config "$work/broken.json"
cp -r "$work/tiny" "$work/truncated"
head -c 1000 "$work/tiny/synthetic_model.safetensors" >"$work/truncated/synthetic_model.safetensors"
expect 1 "synthetic_model.safetensors" -- "$bin" model --load "$work/truncated"

# A failure while saving leaves nothing behind: the target's parent is a file.
echo x >"$work/plainfile"
expect 1 "plainfile" -- "$bin" model --preset tiny --save "$work/plainfile/out"
[ -e "$work/plainfile/out" ] && fail "partial output exists"

"$bin" model --help >/dev/null || fail "--help should exit 0"
"$bin" --help | grep -q "model" || fail "top-level --help lists commands"

finish "all synthsae model checks passed"
