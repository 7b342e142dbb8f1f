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

# --firing-rates: one rate per feature over the same samples; they sum to the true L0 exactly
# (both are the total firing count over the sample count), up to the printing of doubles.
"$bin" model --load "$work/tiny" --samples 2000 --firing-rates "$work/rates.json" >"$work/c.json" 2>/dev/null \
  || fail "--firing-rates run failed"
sum_check=$(tr -d '[]{}"' <"$work/rates.json" | tr ',' '\n' | awk -v l0="$(sed -n 's/.*"true_l0": *\([0-9.eE+-]*\).*/\1/p' "$work/c.json")" '
  /^firing_rates:/ { sub(/^firing_rates:/, "") } /^samples:/ { samples = substr($0, 9); next }
  { n++; s += $1; if ($1 < 0 || $1 > 1) bad++ }
  END { d = s - l0; if (d < 0) d = -d; print (n == 256 && samples == 2000 && !bad && d < 1e-9) ? "ok" : "n=" n " samples=" samples " sum=" s " l0=" l0 }')
[ "$sum_check" = ok ] || fail "firing rates do not match the statistics: $sum_check"
expect 1 "nodir" -- "$bin" model --preset tiny --samples 100 --firing-rates "$work/nodir/rates.json"

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

# A staging directory left by a killed run (its process is gone: no PID is that large) is removed
# by the next run on the same output; a live process's (this shell's) is left alone.
mkdir -p "$work/again.partial-2147483646/sub" "$work/again.partial-$$"
"$bin" model --preset tiny --save "$work/again" --samples 100 >/dev/null 2>"$work/again.err" || fail "save over stale staging failed"
[ -e "$work/again.partial-2147483646" ] && fail "the stale staging directory should be gone"
grep -q "again.partial-2147483646" "$work/again.err" || fail "the removal should be said on stderr"
[ -d "$work/again.partial-$$" ] || fail "a live process's staging directory must stay"
[ -f "$work/again/synthetic_model_config.json" ] || fail "the world should be saved"

"$bin" model --help >/dev/null || fail "--help should exit 0"
# A command's --help is the command's: Kokkos sees only --kokkos-* arguments before the command
# (Kokkos 3.4 answers a bare --help with its own text).
for c in model train eval bench darkmatter; do
  "$bin" "$c" --help 2>&1 | head -1 | grep -q "^usage: synthsae $c" || fail "$c --help does not start with its usage"
  "$bin" "$c" --help 2>&1 | grep -q "Kokkos command line" && fail "$c --help prints Kokkos's help"
done
"$bin" --kokkos-disable-warnings model --preset tiny --samples 100 >/dev/null 2>&1 || fail "a --kokkos-* flag before the command"
"$bin" --help | grep -q "model" || fail "top-level --help lists commands"

finish "all synthsae model checks passed"
