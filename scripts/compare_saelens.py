"""Times the same work in SAELens (PyPI, on the CPU) and in synthsae on this machine, at equal thread
counts, and prints the ratios. Run through scripts/compare_saelens.sh, which makes the venv and
builds what is missing:
    python scripts/compare_saelens.py --synthsae build/bin/synthsae --out out/compare [--threads 2]

The work (each tool's samples/s or seconds; ratio = synthsae's speed / SAELens's):

  generation   SynthSAEBench-16k, batches of 1,024 hidden vectors with their sparse ground truth.
               synthsae: bench_world's sample_batches/synth_sae_bench_16k (Google Benchmark JSON;
               the preset built in process). SAELens: the same world, saved by synthsae and loaded
               by SAELens, model.sample_with_features(1024) for --generation-seconds (its first batch
               untimed).
  training     A BatchTopK SAE on cpu-1k (the main job's world), the same hyperparameters in both
               tools (SAELens's runner is built from synthsae's runner_config.json, as in
               scripts/saelens_parity.py); samples/s of the training loop alone. With
               --gemm-math bf16, synthsae's GEMMs take BF16 operands (AMX tiles or AVX-512
               BF16 where the CPU has them) and SAELens's SAE runs under its counterpart, autocast_sae (torch.autocast
               to bfloat16), both written in the one runner config.
  evaluation   That SAE evaluated on --eval-samples samples of the same world by each tool
               (synthsae: `synthsae eval`, process start and world load included).
  assignment   MCC's exact assignment at the 16k shape, 4,096 x 16,384: synthsae's solver
               (bench_metrics) against scipy's linear_sum_assignment, which SAELens calls.

Both tools get --threads threads: torch.set_num_threads for SAELens, OMP_NUM_THREADS for synthsae
(its OpenMP loops and Eigen's GEMM).
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import saelens_parity as parity  # noqa: E402  (the harness's runs, reused)
from sae_lens.synthetic import SyntheticModel  # noqa: E402


def bench_json(exe: Path, pattern: str) -> dict:
    proc = subprocess.run([str(exe), f"--benchmark_filter={pattern}", "--benchmark_format=json",
                           "--benchmark_min_time=3"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{exe} failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)["benchmarks"][0]


def generation(args, out: Path, bench_dir: Path) -> dict:
    world = out / "world_16k"
    if not (world / "synthetic_model_config.json").exists():
        parity.log(f"generation: synthsae model --preset synth-sae-bench-16k --save {world}")
        parity.run_ours(args.synthsae, "model", "--preset", "synth-sae-bench-16k", "--save", str(world))
    parity.log("generation: synthsae (bench_world sample_batches/synth_sae_bench_16k)")
    row = bench_json(bench_dir / "bench_world", "sample_batches/synth_sae_bench_16k/")
    ours = row["samples_per_s"]
    parity.log(f"generation: synthsae {ours:,.0f} samples/s; SAELens loads the world")
    model = SyntheticModel.load_from_disk(world)
    torch.manual_seed(0)
    model.sample_with_features(1024)  # first call: allocations, warm-up
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.generation_seconds:
        model.sample_with_features(1024)
        done += 1024
    theirs = done / (time.perf_counter() - t0)
    parity.log(f"generation: SAELens {theirs:,.0f} samples/s ({done:,} samples)")
    return {"world": "synth-sae-bench-16k", "batch": 1024, "synthsae_samples_per_second": ours,
            "saelens_samples_per_second": theirs, "saelens_samples": done}


def training_and_evaluation(args, out: Path) -> tuple[dict, dict]:
    world = out / "world_cpu_1k"
    if not (world / "synthetic_model_config.json").exists():
        parity.run_ours(args.synthsae, "model", "--preset", "cpu-1k", "--save", str(world))
    ours_dir, theirs_dir = out / "batchtopk_synthsae", out / "batchtopk_saelens"
    for d in (ours_dir, theirs_dir):
        d.mkdir(parents=True, exist_ok=True)
    parity.log(f"training: synthsae, BatchTopK width {args.width}, k {args.k}, {args.samples:,} samples")
    # The runs' own final evaluations are small; the timed evaluation is below.
    train_args = argparse.Namespace(**{**vars(args), "eval_samples": 10_000})
    ours = parity.train_ours(train_args, world, "batchtopk", 1, ours_dir)
    model = SyntheticModel.load_from_disk(world)
    parity.log("training: SAELens, the same runner config")
    theirs = parity.train_saelens(train_args, world, model, ours_dir, 1, theirs_dir)
    training = {"world": "cpu-1k", "arch": "batchtopk", "width": args.width, "k": args.k, "samples": args.samples,
                "gemm_math": args.gemm_math,
                "synthsae_samples_per_second": args.samples / ours["train_seconds"],
                "saelens_samples_per_second": args.samples / theirs["train_seconds"]}
    parity.log(f"training: synthsae {training['synthsae_samples_per_second']:,.0f}, "
               f"SAELens {training['saelens_samples_per_second']:,.0f} samples/s")

    n = args.eval_samples
    parity.log(f"evaluation: {n:,} samples of the synthsae-trained SAE in each tool")
    text, ours_seconds = parity.run_ours(args.synthsae, "eval", "--model", str(world), "--sae", str(ours_dir),
                                         "--samples", str(n), "--batch", "1024")
    sae = parity.SAE.load_from_disk(str(ours_dir), device="cpu")
    torch.manual_seed(7)
    t0 = time.perf_counter()
    parity.eval_sae_on_synthetic_data(sae, model.feature_dict, model.activation_generator, num_samples=n,
                                      batch_size=1024)
    theirs_seconds = time.perf_counter() - t0
    evaluation = {"samples": n, "synthsae_seconds": ours_seconds, "saelens_seconds": theirs_seconds,
                  "synthsae_mcc": parity.flat(parity.last_json(text)).get("mcc")}
    parity.log(f"evaluation: synthsae {ours_seconds:.1f} s, SAELens {theirs_seconds:.1f} s")
    return training, evaluation


def markdown(r: dict) -> str:
    lines = [f"SAELens {r['sae_lens_version']} (torch {r['torch_version']}) and synthsae on this machine, "
             f"{r['threads']} thread(s) each, `{r['command']}`, {r['date']}.", "",
             "| work | synthsae | SAELens | synthsae / SAELens |", "| --- | --- | --- | --- |"]
    g = r.get("generation")
    if g:
        a, b = g["synthsae_samples_per_second"], g["saelens_samples_per_second"]
        lines.append(f"| generation, SynthSAEBench-16k, batch 1,024 (samples/s) | {a:,.0f} | {b:,.0f} | {a / b:.1f}× |")
    t = r.get("training")
    if t:
        a, b = t["synthsae_samples_per_second"], t["saelens_samples_per_second"]
        math = t.get("gemm_math", "fp32")
        lines.append(f"| training BatchTopK on cpu-1k, width {t['width']}, k {t['k']}, {t['samples']:,} samples"
                     + (" (BF16 GEMMs; SAELens's autocast_sae)" if math == "bf16" else "") +
                     f" (samples/s) | {a:,.0f} | {b:,.0f} | {a / b:.1f}× |")
    e = r.get("evaluation")
    if e:
        a, b = e["synthsae_seconds"], e["saelens_seconds"]
        lines.append(f"| evaluation, {e['samples']:,} samples (seconds; synthsae's process start and world load "
                     f"included) | {a:.1f} s | {b:.1f} s | {b / a:.1f}× |")
    s = r.get("assignment")
    if s:
        a, b = s["synthsae_seconds"], s["saelens_seconds"]
        lines.append(f"| MCC's assignment, {s['latents']:,} × {s['features']:,} (seconds) | {a:.2f} s | {b:.2f} s | "
                     f"{b / a:.1f}× |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--synthsae", default="build/bin/synthsae")
    p.add_argument("--out", default="out/compare")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--parts", default="generation,training,assignment",
                   help="generation,training,assignment (training includes the evaluation)")
    p.add_argument("--generation-seconds", type=float, default=60.0)
    p.add_argument("--samples", type=int, default=1_000_000, help="training samples")
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-samples", type=int, default=500_000)
    p.add_argument("--gemm-math", choices=("fp32", "bf16"), default="fp32",
                   help="the training run's GEMM arithmetic (bf16: SAELens's autocast_sae)")
    p.add_argument("--markdown-from", metavar="JSON", help="only re-render compare.md from a compare.json")
    args = p.parse_args()
    if args.markdown_from:
        print(markdown(json.loads(Path(args.markdown_from).read_text())), end="")
        return
    parts = set(args.parts.split(","))
    if not parts <= {"generation", "training", "assignment"}:
        sys.exit(f"--parts = {args.parts}: choose among generation, training, assignment")
    if args.threads < 1:
        sys.exit(f"--threads = {args.threads}: at least 1")
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # synthsae's processes inherit it
    # No OMP_WAIT_POLICY here: torch read its own at import, so a passive policy set now would
    # reach synthsae's processes only, and a user's run of synthsae has libgomp's default.
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bench_dir = Path(args.synthsae).resolve().parent.parent / "benchmarks"
    report = {"sae_lens_version": parity.sae_lens.__version__, "torch_version": torch.__version__,
              "threads": args.threads, "date": time.strftime("%Y-%m-%d"),
              "command": "bash scripts/compare_saelens.sh " + " ".join(
                  a for i, a in enumerate(sys.argv[1:]) if a != "--synthsae" and sys.argv[i] != "--synthsae")}
    if "generation" in parts:
        report["generation"] = generation(args, out, bench_dir)
    if "training" in parts:
        report["training"], report["evaluation"] = training_and_evaluation(args, out)
    if "assignment" in parts:
        report["assignment"] = parity.assignment_part(args)
    for name, text in (("compare.json", json.dumps(report, indent=1)), ("compare.md", markdown(report))):
        tmp = out / (name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, out / name)
    print(markdown(report))


if __name__ == "__main__":
    main()
