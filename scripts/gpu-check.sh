#!/usr/bin/env bash
# The prepared GPU check: runs the prebuilt kit (scripts/gpu-kit.sh) on a machine with a GPU,
# compiling nothing there, and writes a results folder. In order, each part within a share of a
# wall-clock budget (default 330 s, SYNTHSAE_GPU_CHECK_SECONDS) so a second try fits a
# 15-minute GPU window:
#   1. env.txt: the GPU, its driver, the kit's commit;
#   2. bench_sae.json, bench_world.json: the encoder GEMM and the training steps at 768 -> 4096,
#      batch 1,024, and SynthSAEBench-16k generation (Google Benchmark JSON);
#   3. a 50-step run of the SynthSAEBench-16k BatchTopK job (width 4,096, k 25, batch 1,024,
#      lr 3e-4) with each kernel's seconds, then a 200-step probe with per-phase seconds, which
#      projects the longer runs;
#   4. tests.log: the whole test suite, in shards run side by side (the GPU is shared);
#   5. the same job for 20M samples with the 500,000-sample evaluation when the probe projects it
#      within the time left, and for the full 200M samples when that projects to <= 3 minutes.
# jobs.json holds every job's metrics and phase seconds; results.tgz every log.
#
#   bash scripts/gpu-check.sh [KIT_DIR] [RESULTS_DIR]
#
# KIT_DIR defaults to gpu-kit, RESULTS_DIR to $OUT (the device tool's) or gpu-check-results.
# SYNTHSAE_GPU_CHECK_MATH (default bf16) is the jobs' --gemm-math, a list runs each
# ("bf16,fp32": the same seed in both, to compare their metrics).
# SYNTHSAE_GPU_CHECK_PARTS (default bench,probe,profile,tests,jobs) chooses parts; profile
# runs the job's first 50 steps with every kernel timed (synthsae train --profile-kernels).
# With a kit built without CUDA (a rehearsal on the CPU), parts 1-4 run at small sizes (the job
# on cpu-1k at width 256) and part 5 is skipped; with a CUDA kit and no GPU, everything that
# needs the GPU is skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

kit="$(cd "${1:-gpu-kit}" 2>/dev/null && pwd)" || { echo "gpu-check: no kit at ${1:-gpu-kit} (scripts/gpu-kit.sh makes it)" >&2; exit 2; }
res="${2:-${OUT:-gpu-check-results}}"
mkdir -p "$res" || exit 2
res="$(cd "$res" && pwd)"
budget="${SYNTHSAE_GPU_CHECK_SECONDS:-330}"
maths="${SYNTHSAE_GPU_CHECK_MATH:-bf16}"
parts=",${SYNTHSAE_GPU_CHECK_PARTS:-bench,probe,profile,tests,jobs},"
work="$(mktemp -d /tmp/gpu-check.XXXXXX)"
logs="$work/logs"
mkdir -p "$logs"
started=$SECONDS
left() { echo $((budget - (SECONDS - started))); }
say() { echo "[$((SECONDS - started))s] $*" | tee -a "$res/summary.txt"; }
wants() { [[ "$parts" == *",$1,"* ]]; }
: > "$res/summary.txt"

# ---- the kit and its libraries ---------------------------------------------------------------
source_dir="$(sed -n 's/^source_dir=//p' "$kit/kit.info")"
kit_cuda="$(sed -n 's/^cuda=//p' "$kit/kit.info")"
# Tests read their data through the source path compiled into them: point it at this checkout.
if [ -n "$source_dir" ] && [ ! -e "$source_dir" ]; then
  mkdir -p "$(dirname "$source_dir")" && ln -s "$repo" "$source_dir" || say "cannot link $source_dir: data-reading tests will fail"
fi
export LD_LIBRARY_PATH="$kit/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ "$kit_cuda" = yes ] && ! ldconfig -p 2>/dev/null | grep -q 'libcublas.so.13'; then
  # cuBLAS of the machine's own CUDA: the toolkit's folder, else a Python wheel's.
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
           $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, s) for p in nvidia.__path__ for s in ("cu13/lib", "cublas/lib", "cuda_runtime/lib")))' 2>/dev/null); do
    [ -e "$d/libcublas.so.13" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
  done
fi
export OMP_WAIT_POLICY=passive
bin="$kit/bin"

gpu=no
nvidia-smi -L > /dev/null 2>&1 && gpu=yes
{
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  cat "$kit/kit.info"
  echo "gpu=$gpu cpus=$(nproc)"
  [ "$gpu" = yes ] && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  ldd "$bin/synthsae" | grep -E 'not found|cublas|cudart|libcuda' || true
} > "$res/env.txt" 2>&1
say "kit $(sed -n 's/^commit=//p' "$kit/kit.info") (cuda=$kit_cuda), gpu=$gpu, budget ${budget}s"
if ldd "$bin/synthsae" | grep -q 'not found'; then
  say "FAIL: libraries not found: $(ldd "$bin/synthsae" | grep 'not found' | tr -s ' \t' ' ')"
fi
if [ "$kit_cuda" = yes ] && [ "$gpu" = no ]; then
  say "no GPU here: every part needs one with a CUDA kit; all skipped"
  exit 0
fi
full=no
[ "$kit_cuda" = yes ] && full=yes
# The rehearsal's world is small: building SynthSAEBench-16k alone takes a minute on two cores.
job_world=synth-sae-bench-16k job_width=4096
[ $full = yes ] || job_world=cpu-1k job_width=256
status=0

# ---- 2. benchmarks ---------------------------------------------------------------------------
have() { [ -x "$bin/$1" ] || { say "$1 not in the kit: its part is skipped"; return 1; }; }
if wants bench && have bench_sae && have bench_world; then
  if [ $full = yes ]; then
    # (names end in /real_time: benchmarks measure wall time)
    sae_filter='^BM_EncoderGemm|^BM_StepBatchTopK|^BM_Step(TopK|Matryoshka|Standard|JumpRelu|Gated)/'
    world_filter='sample_batches/synth_sae_bench_16k|dense_hidden_gemm/synth_sae_bench_16k'
  else
    sae_filter='^BM_EncoderGemm/|^BM_StepBatchTopK/|^BM_StepBatchTopKKernels/0'
    world_filter='sample_batches/cpu_4k'
  fi
  timeout 90 "$bin/bench_sae" --benchmark_filter="$sae_filter" --benchmark_min_time=0.2 \
    --benchmark_out="$res/bench_sae.json" --benchmark_out_format=json > "$logs/bench_sae.log" 2>&1
  rc=$?; say "bench_sae rc=$rc"; [ $rc -eq 0 ] || status=1
  python3 - "$res/bench_sae.json" <<'PY' 2>/dev/null | tee -a "$res/summary.txt"
import json, sys
skip = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads", "iterations",
        "real_time", "cpu_time", "time_unit", "family_index", "per_family_instance_index",
        "items_per_second", "sum_ms", "L0", "sparse", "aggregate_name"}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    print(f"    {b['name']}: {b['real_time']:.3f} {b['time_unit']}")
    if "Kernels" in b["name"]:  # ms per step by kernel label, largest first
        rows = sorted(((v, k) for k, v in b.items() if k not in skip and isinstance(v, (int, float))), reverse=True)
        print(f"      sum of kernels {b.get('sum_ms', 0):.3f} ms/step:", "; ".join(f"{k} {v:.3f}" for v, k in rows[:14]))
PY
  timeout 60 "$bin/bench_world" --benchmark_filter="$world_filter" --benchmark_min_time=0.2 \
    --benchmark_out="$res/bench_world.json" --benchmark_out_format=json > "$logs/bench_world.log" 2>&1
  rc=$?; say "bench_world rc=$rc"; [ $rc -eq 0 ] || status=1
  grep -E '^(sample|dense)' "$logs/bench_world.log" | tee -a "$res/summary.txt"
fi

# ---- 3 and 5: the SynthSAEBench-16k BatchTopK job ----------------------------------------------
# run_job NAME SAMPLES EVAL_SAMPLES MATH TIMEOUT [extra flags]: one training run; its metrics go
# to NAME.json and into jobs.json, its --timings (world build, loop phases, final evaluation,
# samples/s; with --profile-kernels each kernel's seconds) to NAME.timings.json.
echo "{" > "$work/jobs.json"
first_job=yes
run_job() {
  local name="$1" samples="$2" eval="$3" math="$4" limit="$5"
  shift 5
  timeout "$limit" "$bin/synthsae" train --model "$job_world" --arch batchtopk --k 25 --width "$job_width" \
    --batch 1024 --lr 3e-4 --seed 0 --samples "$samples" --eval-samples "$eval" --gemm-math "$math" \
    --eval-every 5000 --out "$work/$name" --timings "$logs/$name.timings.json" "$@" \
    > "$logs/$name.json" 2> "$logs/$name.err"
  local rc=$?
  say "job $name: $samples samples, eval $eval, $math $*: rc=$rc"
  if [ $rc -eq 0 ]; then
    [ $first_job = yes ] || echo "," >> "$work/jobs.json"
    first_job=no
    printf '"%s": {"eval": ' "$name" >> "$work/jobs.json"
    cat "$logs/$name.json" >> "$work/jobs.json"
    printf ', "timings": ' >> "$work/jobs.json"
    cat "$logs/$name.timings.json" >> "$work/jobs.json"
    echo "}" >> "$work/jobs.json"
    python3 - "$logs/$name.json" "$logs/$name.timings.json" <<'PY' | tee -a "$res/summary.txt"
import json, sys
r = json.load(open(sys.argv[1])); t = json.load(open(sys.argv[2]))
r["f1"] = r.get("classification", {}).get("f1_score")
keys = ["mcc", "f1", "uniqueness", "explained_variance", "sae_l0", "true_l0", "shrinkage", "dead_latents"]
print("   ", ", ".join(f"{k} {r[k]:.4f}" for k in keys if isinstance(r.get(k), (int, float))))
print("    world %.1f s, training %.1f s (%.0f samples/s):" % (t["world_seconds"], t["training_seconds"], t["samples_per_second"]),
      ", ".join(f"{k} {v:.2f}" for k, v in t["phase_seconds"].items()))
if "kernels" in t:
    print("    kernels (fenced, %.1f s in all):" % t["kernels_total_seconds"])
    for k in t["kernels"][:18]:
        print(f"      {k['seconds']:9.3f} s {k['calls']:8d}x  {k['label']}")
PY
    cp "$work/$name/metrics.csv" "$logs/$name.metrics.csv" 2>/dev/null
  else
    status=1
    tail -5 "$logs/$name.err" | tee -a "$res/summary.txt"
  fi
  return $rc
}
# projected SAMPLES EVAL: seconds a job would take, from the probe's timings.
projected() {
  python3 - "$logs/probe.timings.json" "$1" "$2" "$probe_samples" "$probe_eval" <<'PY'
import json, sys
t = json.load(open(sys.argv[1])); n, e, pn, pe = map(float, sys.argv[2:])
p = t["phase_seconds"]
loop = p["generation"] + p["steps"] + p["periodic_evaluation"] + p["loop_other"]
print(int(t["world_seconds"] + loop * n / pn + p["final_evaluation"] * e / pe + 10))
PY
}

probe_ok=no
# 200 steps: long enough to project from, short enough when a step is slow.
probe_samples=204800; probe_eval=65536
[ $full = yes ] || probe_eval=16384
first_math="${maths%%,*}"
if wants profile && have synthsae; then
  # 50 steps with every kernel fenced and timed: where a step's time goes (first, and short,
  # so that a slow step still leaves its profile).
  run_job profile 51200 16384 "$first_math" 90 --profile-kernels
fi
if { wants probe || wants jobs; } && have synthsae; then
  run_job probe $probe_samples $probe_eval "$first_math" 150 && probe_ok=yes
fi

# ---- 4. the test suite -----------------------------------------------------------------------
if wants tests && have synthsae_tests; then
  "$bin/synthsae_tests" --list-test-names-only 2>/dev/null | grep -v '^$' > "$work/names.txt"
  shards=$(( $(nproc) < 8 ? $(nproc) : 8 ))
  [ "$shards" -ge 1 ] || shards=1
  rm -f "$work"/shard.*
  # Round-robin so long tests spread; backslash and comma escaped (Catch2 reads ',' in a test
  # spec as "or", even quoted; no name has '[' or '*').
  awk -v n="$shards" -v dir="$work" '{ gsub(/\\/, "\\\\"); gsub(/,/, "\\,"); print > (dir "/shard." (NR % n)) }' "$work/names.txt"
  ran_expected=$(wc -l < "$work/names.txt")
  limit=$(( $(left) - 60 )); [ $limit -gt 240 ] && limit=240; [ $limit -lt 30 ] && limit=30
  say "tests: $(wc -l < "$work/names.txt") test cases in $shards shards, ${limit}s limit"
  pids=()
  for f in "$work"/shard.*; do
    i="${f##*.}"
    timeout "$limit" "$bin/synthsae_tests" -f "$f" -d yes > "$logs/tests.$i.log" 2>&1 &
    pids+=($!)
  done
  failed_shards=0
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed_shards=$((failed_shards + 1))
  done
  cat "$logs"/tests.*.log > "$res/tests.log"
  passed=$(grep -hE '^(All tests passed|test cases:)' "$logs"/tests.*.log)
  # Every listed test case must have run: "... in N test cases" or "test cases: N | ...".
  ran=$(echo "$passed" | sed -nE 's/.* in ([0-9]+) test cases?\)?$/\1/p; s/^test cases: *([0-9]+) .*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
  say "tests: $failed_shards of $shards shards failed or timed out; ${ran:-0} of $ran_expected test cases ran"
  echo "$passed" | tee -a "$res/summary.txt"
  grep -h -E '^/.*: FAILED:$' -A3 "$logs"/tests.*.log | head -40 >> "$res/summary.txt"
  [ $failed_shards -eq 0 ] && [ "${ran:-0}" -eq "$ran_expected" ] || status=1
fi

# ---- 5. 20M and 200M -------------------------------------------------------------------------
if wants jobs && [ $full = yes ] && [ $probe_ok = yes ]; then
  IFS=',' read -r -a math_list <<< "$maths"
  for math in "${math_list[@]}"; do
    need=$(projected 20000000 500000)
    if [ "$need" -lt "$(left)" ]; then
      run_job "job20m_$math" 20000000 500000 "$math" $(( $(left) ))
    else
      # What fits in half the time left, in whole millions (at least one): metrics at some length.
      fit=$(python3 -c "import sys; n, l = int(sys.argv[1]), int(sys.argv[2]); print(max(1, int(20 * 0.5 * l / max(n, 1))))" "$need" "$(left)")
      say "job20m_$math skipped: projects to ${need}s, $(left)s left; ${fit}M samples instead"
      [ "$fit" -lt 20 ] && run_job "job${fit}m_$math" $((fit * 1000000)) 100000 "$math" $(( $(left) - 10 ))
    fi
  done
  need=$(projected 200000000 500000)
  say "200M samples project to ${need}s"
  if [ "$need" -le 195 ] && [ "$need" -lt "$(left)" ]; then
    run_job "job200m_${maths%%,*}" 200000000 500000 "${maths%%,*}" $(( $(left) ))
  else
    say "job200m skipped (needs <= 195 s projected and within the $(left)s left)"
  fi
fi

echo "}" >> "$work/jobs.json"
cp "$work/jobs.json" "$res/jobs.json"
tar -C "$work" -czf "$res/results.tgz" logs jobs.json 2>/dev/null
say "done in $((SECONDS - started))s, status $status"
rm -rf "$work"
exit $status
