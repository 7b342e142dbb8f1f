#!/usr/bin/env bash
# Crash safety: a training run killed with SIGKILL at 50 random moments (it checkpoints every
# step, so some kills land inside a checkpoint write). After each kill the output directory
# either does not exist, or holds only the checkpoint, or is complete and loads; a run resumed
# from the checkpoint finishes with weights equal, byte for byte, to an uninterrupted run's.
#   test_kill.sh SYNTHSAE_BINARY WORK_DIR [KILLS]
set -u
bin="$1"
work="$2"
kills="${3:-50}"
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/lib.sh"
RANDOM=2026  # the same moments on every run of the test

job=(train --model tiny --arch topk --k 4 --width 64 --samples 51200 --batch 256 --eval-samples 2048
     --checkpoint-every 1)
train() { "$bin" "${job[@]}" "$@"; }

start=$(date +%s%N)
train --out "$work/ref" >/dev/null 2>&1 || fail "the uninterrupted run failed"
run_ms=$(( ($(date +%s%N) - start) / 1000000 ))

complete=0 resumed=0 empty=0 torn_writes=0
for i in $(seq 1 "$kills"); do
  out="$work/k$i"
  # The program itself in the background (not a shell function's subshell), so that $! is the
  # process the signal must kill.
  "$bin" "${job[@]}" --out "$out" >/dev/null 2>&1 &
  pid=$!
  delay_ms=$(( RANDOM % (run_ms + run_ms / 5 + 1) ))  # a few land after the run has finished
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if [ -f "$out/cfg.json" ]; then
    complete=$((complete + 1))
    "$bin" eval --sae "$out" --model tiny --samples 1000 >/dev/null 2>&1 || fail "kill $i: a complete output does not load"
    cmp -s "$out/sae_weights.safetensors" "$work/ref/sae_weights.safetensors" || fail "kill $i: complete output differs"
  elif [ -d "$out/checkpoint" ]; then
    ls "$out" | grep -qv '^checkpoint$' && fail "kill $i: $out holds more than the checkpoint: $(ls "$out")"
    ls "$out/checkpoint" | grep -q '\.tmp-' && torn_writes=$((torn_writes + 1))
    if [ -f "$out/checkpoint/checkpoint.safetensors" ]; then
      resumed=$((resumed + 1))
      train --resume "$out/checkpoint" --out "$out" >/dev/null 2>"$work/err" \
        || fail "kill $i: the resumed run failed: $(head -c 300 "$work/err")"
      cmp -s "$out/sae_weights.safetensors" "$work/ref/sae_weights.safetensors" \
        || fail "kill $i: the resumed run's weights differ from the uninterrupted run's"
      ls "$work" | grep -q "k$i.partial" && fail "kill $i: a staging directory is left after the resumed run"
    else
      empty=$((empty + 1))
    fi
  else
    [ -e "$out" ] && fail "kill $i: $out exists without a checkpoint or a result: $(ls "$out")"
    empty=$((empty + 1))
  fi
  rm -rf "$out" "$out".partial-*
done
echo "kills: $kills; complete $complete, resumed $resumed, nothing yet $empty; killed inside a checkpoint write: $torn_writes; run ${run_ms} ms"
[ "$resumed" -ge $((kills / 4)) ] || fail "only $resumed of $kills kills landed while checkpointing: the moments do not cover the run"
finish "kill: all checks passed"
