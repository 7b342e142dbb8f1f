"""Runs SAELens (PyPI) beside synthsae on the same worlds and jobs, and tabulates both.

Run through scripts/saelens_parity.sh, which makes the venv and builds the program:
    python scripts/saelens_parity.py --synthsae build/bin/synthsae --out out/parity [options]

Four parts, each written into OUT/parity.json and summarised in OUT/parity.md:

  world   One world config (a preset, saved by synthsae) built by both tools; each tool loads
          both directories and draws samples. The mean true L0 of every (tool, directory) pair
          is compared within sampling error; the per-feature firing rates of the two tools on
          the same directory are compared feature by feature.
  cross   Every SAE the job below trains (in either tool) is evaluated by both tools in its
          saved (inference) form on the same world directory: decoder metrics (MCC,
          uniqueness) must agree to 1e-5, sample metrics within 5 standard errors of their
          difference (each tool's evaluation is split into chunks to measure its spread).
  job     The same training job in both tools, seeds 1..N each: synthsae trains it and writes
          runner_config.json in SAELens's runner schema; SAELens's SyntheticSAERunner is
          built from that very file (synthsae's own keys dropped), so both run the same
          hyperparameters. The table shows every metric's mean and seed spread in each tool
          and flags a difference larger than twice the combined seed spread. With
          --reuse-runs the runs and cross-checks already in OUT/parity.json (same job) are
          kept and only the missing seeds train: --seeds 3 after a 2-seed report adds seed 3.
  speed   Generation (samples with ground truth), training and evaluation in samples/s in
          both tools on this machine, as ratios.

SAELens has no L0 autotuner, so the job uses fixed coefficients for the L1 and L0 families
(--l1, and JumpReLU's recipe coefficient); TopK-family SAEs train at k = --k.
"""
import argparse
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import sae_lens
from sae_lens import SAE
from sae_lens.synthetic import SyntheticModel, SyntheticModelConfig
from sae_lens.synthetic.evals import eval_sae_on_synthetic_data
from sae_lens.synthetic.synthetic_sae_runner import SyntheticSAERunner, SyntheticSAERunnerConfig

SAMPLE_METRICS = ["sae_l0", "explained_variance", "shrinkage", "precision", "recall", "f1_score"]
DECODER_METRICS = ["mcc", "uniqueness"]
# SAELens fields synthsae does not record because they cannot change the run: a speed switch of
# SAELens's TopK family (the same maths) and the scale of a loss mode synthsae's recipes do not use.
NO_EFFECT_FIELDS = {"use_sparse_activations", "jumprelu_tanh_scale"}
TABLE_METRICS = ["sae_l0", "mcc", "uniqueness", "f1_score", "precision", "recall", "explained_variance",
                 "shrinkage", "dead_latents"]


def log(msg: str) -> None:
    print(f"[parity {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def flat(stats: dict) -> dict:
    """SAELens's eval dict with the classification block lifted to the top."""
    out = {k: v for k, v in stats.items() if k != "classification"}
    out.update(stats.get("classification", {}))
    return out


def run_ours(exe: str, *args: str) -> tuple[str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([exe, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"synthsae {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout, seconds


def last_json(text: str) -> dict:
    """The last JSON object a synthsae command printed on stdout."""
    start = text.rfind("\n{")
    return json.loads(text[start + 1 if start >= 0 else text.find("{"):])


# --------------------------------------------------------------------------------------------
# world


def saelens_world_stats(model: SyntheticModel, samples: int, chunk: int = 10_000) -> dict:
    """Mean and spread of the true L0, per-feature firing counts, and samples/s of SAELens."""
    torch.manual_seed(0)
    l0_sum = l0_sq = 0.0
    counts = torch.zeros(model.cfg.num_features, dtype=torch.float64)
    t0 = time.perf_counter()
    done = 0
    while done < samples:
        b = min(chunk, samples - done)
        _, feats = model.sample_with_features(b)
        fired = (feats != 0)
        l0 = fired.sum(1).double()
        l0_sum += l0.sum().item()
        l0_sq += (l0 * l0).sum().item()
        counts += fired.sum(0).double()
        done += b
    seconds = time.perf_counter() - t0
    mean = l0_sum / samples
    return {"samples": samples, "true_l0": mean, "l0_sd": math.sqrt(max(0.0, l0_sq / samples - mean * mean)),
            "firing_counts": counts.tolist(), "samples_per_second": samples / seconds}


def world_part(args, out: Path) -> dict:
    ours_dir, theirs_dir = out / "world_synthsae", out / "world_saelens"
    log(f"world: synthsae model --preset {args.preset} --save {ours_dir}")
    _, build_ours = run_ours(args.synthsae, "model", "--preset", args.preset, "--save", str(ours_dir))
    cfg = json.loads((ours_dir / "synthetic_model_config.json").read_text())
    log("world: SAELens builds the same config")
    t0 = time.perf_counter()
    SyntheticModel(SyntheticModelConfig.from_dict(cfg)).save(theirs_dir)
    build_theirs = time.perf_counter() - t0

    rows = []
    per_feature = {}
    for name, d in [("synthsae", ours_dir), ("saelens", theirs_dir)]:
        log(f"world: both tools sample the {name}-built directory ({args.world_samples:,} samples each)")
        text, _ = run_ours(args.synthsae, "model", "--load", str(d), "--stats", "--samples", str(args.world_samples),
                           "--firing-rates", str(out / f"rates_{name}.json"))
        ours = last_json(text)
        ours_rates = json.loads((out / f"rates_{name}.json").read_text())
        model = SyntheticModel.load_from_disk(d)
        theirs = saelens_world_stats(model, args.world_samples)
        n = args.world_samples
        # Same distribution in both tools if the load is faithful: the L0 difference of two
        # independent means of n samples has sd l0_sd * sqrt(2 / n) (l0_sd measured by SAELens).
        se = theirs["l0_sd"] * math.sqrt(2.0 / n)
        diff = ours["true_l0"] - theirs["true_l0"]
        rows.append({"directory": name, "true_l0_synthsae": ours["true_l0"], "true_l0_saelens": theirs["true_l0"],
                     "l0_sd": theirs["l0_sd"], "difference": diff, "standard_error": se,
                     "within_5se": abs(diff) <= 5 * se,
                     "generation_samples_per_second_synthsae": ours["samples_per_second"],
                     "generation_samples_per_second_saelens": theirs["samples_per_second"]})
        # Per feature: both rates estimate p; the difference has sd sqrt(2 p (1 - p) / n) (+ 2/n
        # for features so rare that p from the pooled counts is 0 in one tool).
        ours_counts = [r * ours_rates["samples"] for r in ours_rates["firing_rates"]]
        outside = 0
        worst = 0.0
        for a, b in zip(ours_counts, theirs["firing_counts"]):
            p = 0.5 * (a + b) / n
            z = abs(a - b) / n / (math.sqrt(2 * p * (1 - p) / n) + 2.0 / n)
            worst = max(worst, z)
            outside += z > 5
        per_feature[name] = {"features": len(ours_counts), "outside_5_sigma": outside, "worst_sigma": worst}
        log(f"world: {name} dir: true L0 {ours['true_l0']:.4f} (synthsae) vs {theirs['true_l0']:.4f} (SAELens), "
            f"{diff / se:+.2f} SE; features beyond 5 sigma: {outside} of {len(ours_counts)} (worst {worst:.2f})")
    return {"preset": args.preset, "samples": args.world_samples, "build_seconds_synthsae": build_ours,
            "build_seconds_saelens": build_theirs, "rows": rows, "firing_rates": per_feature,
            "directory": str(ours_dir)}


# --------------------------------------------------------------------------------------------
# job


def knob_args(arch: str, args) -> list[str]:
    if arch in ("topk", "abstopk", "batchtopk", "matryoshka_batchtopk", "matching_pursuit"):
        return ["--k", str(args.k)]
    if arch in ("standard", "gated"):
        return ["--l1", str(args.l1)]
    return []


def train_ours(args, world: Path, arch: str, seed: int, d: Path) -> dict:
    _, seconds = run_ours(args.synthsae, "train", "--model", str(world), "--arch", arch, *knob_args(arch, args),
                             "--width", str(args.width), "--samples", str(args.samples), "--batch", "1024", "--lr",
                             str(args.lr), "--seed", str(seed), "--eval-samples", str(args.eval_samples),
                             "--gemm-math", getattr(args, "gemm_math", "fp32"), "--out", str(d))
    stats = flat(json.loads((d / "eval_stats.json").read_text()))
    # The training loop's own seconds (world load and final evaluation apart, as timed for
    # SAELens): the seconds column of metrics.csv's last row.
    rows = (d / "metrics.csv").read_text().splitlines()
    train_seconds = float(rows[-1].split(",")[rows[0].split(",").index("seconds")])
    return {"stats": stats, "wall_seconds": seconds, "train_seconds": train_seconds}


def train_saelens(args, world: Path, model: SyntheticModel, ours_dir: Path, seed: int, d: Path) -> dict:
    runner = json.loads((ours_dir / "runner_config.json").read_text())
    runner.pop("synthsae", None)
    runner["synthetic_model"] = str(world)
    runner["output_path"] = str(d)
    runner["checkpoint_path"] = None
    runner["eval_frequency"] = 0
    runner["run_final_eval"] = False  # evaluated below, timed apart from training
    runner["eval_samples"] = args.eval_samples
    runner["logger"] = {"log_to_wandb": False}  # files written before synthsae recorded it
    cfg = SyntheticSAERunnerConfig.from_dict(runner)
    # What SAELens filled in from its own defaults because synthsae's file did not record it: each
    # is a setting the two runs may not share (metadata aside).
    defaulted = sorted(f.name for f in dataclasses.fields(cfg.sae)
                       if f.name not in runner["sae"] and f.name != "metadata" and f.name not in NO_EFFECT_FIELDS)
    torch.manual_seed(seed)  # SAELens seeds nothing itself: the SAE's init and its data follow torch's global RNG
    t0 = time.perf_counter()
    result = SyntheticSAERunner(cfg, override_synthetic_model=model).run()
    train_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    final = eval_sae_on_synthetic_data(result.sae, model.feature_dict, model.activation_generator,
                                       num_samples=args.eval_samples, batch_size=cfg.batch_size)
    eval_seconds = time.perf_counter() - t0
    stats = final.to_dict()
    (d / "eval_stats.json").write_text(json.dumps(stats, indent=2))
    return {"stats": flat(stats), "train_seconds": train_seconds, "eval_seconds": eval_seconds,
            "saelens_defaulted_fields": defaulted}


def chunked_saelens_eval(model: SyntheticModel, sae_dir: Path, samples: int, chunks: int) -> dict:
    sae = SAE.load_from_disk(str(sae_dir), device="cpu")
    parts = []
    t0 = time.perf_counter()
    for c in range(chunks):
        torch.manual_seed(100 + c)
        r = eval_sae_on_synthetic_data(sae, model.feature_dict, model.activation_generator,
                                       num_samples=samples // chunks, batch_size=1024)
        parts.append(flat(r.to_dict()))
    return {"parts": parts, "seconds": time.perf_counter() - t0}


def chunked_ours_eval(args, world: Path, sae_dir: Path, samples: int, chunks: int) -> dict:
    parts = []
    seconds = 0.0
    for c in range(chunks):
        text, s = run_ours(args.synthsae, "eval", "--model", str(world), "--sae", str(sae_dir), "--samples",
                           str(samples // chunks), "--batch", "1024", "--first-sample", str(2**62 + c * (samples // chunks)))
        parts.append(flat(last_json(text)))
        seconds += s
    return {"parts": parts, "seconds": seconds}


def mean_and_se(parts: list[dict], key: str) -> tuple[float, float]:
    values = [float(p[key]) for p in parts]
    m = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return m, se


def cross_check(args, world: Path, model: SyntheticModel, sae_dir: Path, trained_by: str, arch: str, seed: int) -> dict:
    ours = chunked_ours_eval(args, world, sae_dir, args.cross_samples, args.chunks)
    theirs = chunked_saelens_eval(model, sae_dir, args.cross_samples, args.chunks)
    row = {"trained_by": trained_by, "arch": arch, "seed": seed, "metrics": {}, "agree": True,
           "eval_seconds_synthsae": ours["seconds"], "eval_seconds_saelens": theirs["seconds"]}
    for key in DECODER_METRICS:
        a, b = float(ours["parts"][0][key]), float(theirs["parts"][0][key])
        ok = abs(a - b) <= 1e-5
        row["metrics"][key] = {"synthsae": a, "saelens": b, "difference": a - b, "bound": 1e-5, "agree": ok}
        row["agree"] &= ok
    for key in SAMPLE_METRICS:
        (a, sa), (b, sb) = mean_and_se(ours["parts"], key), mean_and_se(theirs["parts"], key)
        bound = 5 * math.hypot(sa, sb) + 1e-6
        ok = abs(a - b) <= bound
        row["metrics"][key] = {"synthsae": a, "saelens": b, "difference": a - b, "bound": bound, "agree": ok}
        row["agree"] &= ok
    bad = [k for k, v in row["metrics"].items() if not v["agree"]]
    log(f"cross: {trained_by} {arch} seed {seed}: " + ("all metrics agree" if not bad else f"DIFFER in {bad}"))
    return row


def reusable_runs(args, previous: dict | None) -> tuple[dict, list]:
    """The previous report's runs and cross-checks of the same job (samples, width, k, l1, lr,
    evaluation samples), by (arch, seed): --reuse-runs adds seeds without retraining the others."""
    if not args.reuse_runs or not previous:
        return {}, []
    same = all(previous.get(key) == getattr(args, key) for key in ("samples", "width", "k", "l1", "lr", "eval_samples"))
    if not same:
        log("job: --reuse-runs: the previous report is of another job; training every run")
        return {}, []
    return {(r["arch"], r["seed"]): r for r in previous.get("runs", [])}, previous.get("cross", [])


def job_part(args, out: Path, world: Path, previous: dict | None = None) -> dict:
    model = SyntheticModel.load_from_disk(world)
    runs = []
    cross = []
    done_runs, done_cross = reusable_runs(args, previous)
    for arch in args.archs:
        for seed in range(1, args.seeds + 1):
            if (arch, seed) in done_runs:
                log(f"job: reusing {arch} seed {seed} from the previous report")
                runs.append(done_runs[(arch, seed)])
                cross.extend(c for c in done_cross if c["arch"] == arch and c["seed"] == seed)
                continue
            ours_dir = out / "runs" / "synthsae" / f"{arch}-{seed}"
            theirs_dir = out / "runs" / "saelens" / f"{arch}-{seed}"
            log(f"job: synthsae trains {arch} seed {seed} ({args.samples:,} samples)")
            ours = train_ours(args, world, arch, seed, ours_dir)
            log(f"job: SAELens trains {arch} seed {seed} from synthsae's runner_config.json")
            theirs = train_saelens(args, world, model, ours_dir, seed, theirs_dir)
            log(f"job: {arch} seed {seed}: L0 {ours['stats']['sae_l0']:.2f} / {theirs['stats']['sae_l0']:.2f}, "
                f"MCC {ours['stats']['mcc']:.3f} / {theirs['stats']['mcc']:.3f}, "
                f"F1 {ours['stats']['f1_score']:.3f} / {theirs['stats']['f1_score']:.3f}, "
                f"train {ours['train_seconds']:.0f} s / {theirs['train_seconds']:.0f} s")
            if theirs["saelens_defaulted_fields"]:
                log(f"job: {arch}: fields SAELens took from its own defaults: {theirs['saelens_defaulted_fields']}")
            runs.append({"arch": arch, "seed": seed, "synthsae": ours, "saelens": theirs})
            if seed == 1:
                cross.append(cross_check(args, world, model, ours_dir, "synthsae", arch, seed))
                cross.append(cross_check(args, world, model, theirs_dir, "saelens", arch, seed))
    table = []
    for arch in args.archs:
        mine = [r for r in runs if r["arch"] == arch]
        row = {"arch": arch, "metrics": {}, "flagged": []}
        for key in TABLE_METRICS:
            a = [float(r["synthsae"]["stats"][key]) for r in mine]
            b = [float(r["saelens"]["stats"][key]) for r in mine]
            sa = statistics.stdev(a) if len(a) > 1 else 0.0
            sb = statistics.stdev(b) if len(b) > 1 else 0.0
            diff = statistics.fmean(a) - statistics.fmean(b)
            spread = math.hypot(sa, sb)
            flagged = abs(diff) > 2 * spread + 1e-9
            row["metrics"][key] = {"synthsae": a, "saelens": b, "synthsae_mean": statistics.fmean(a),
                                   "saelens_mean": statistics.fmean(b), "synthsae_sd": sa, "saelens_sd": sb,
                                   "difference": diff, "combined_spread": spread, "flagged": flagged}
            if flagged and key != "dead_latents":
                row["flagged"].append(key)
        ours_rate = [args.samples / r["synthsae"]["train_seconds"] for r in mine if r["synthsae"]["train_seconds"]]
        theirs_rate = [args.samples / r["saelens"]["train_seconds"] for r in mine]
        row["train_samples_per_second"] = {"synthsae": statistics.fmean(ours_rate) if ours_rate else None,
                                           "saelens": statistics.fmean(theirs_rate)}
        table.append(row)
    return {"samples": args.samples, "width": args.width, "k": args.k, "l1": args.l1, "lr": args.lr,
            "seeds": args.seeds, "eval_samples": args.eval_samples, "runs": runs, "cross": cross, "table": table}


# --------------------------------------------------------------------------------------------
# assignment


def assignment_part(args) -> dict:
    """MCC's exact assignment at the SynthSAEBench-16k shape (4,096 latents x 16,384 features):
    synthsae's solver in bench_metrics (BM_AssignmentTrainedLike) against SAELens's (scipy's
    linear_sum_assignment on 1 - |cos| in float32, as sae_lens.synthetic.evals.mcc calls it) on a
    matrix of the same shape and distribution: one dominant |cos| in 0.55-0.95 per latent (every
    tenth latent sharing its feature) over |N(0, 1/768)|, the |cos| of unrelated directions."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment
    bench = Path(args.synthsae).resolve().parent.parent / "benchmarks" / "bench_metrics"
    log(f"assignment: {bench} (synthsae's solver, 4,096 x 16,384)")
    proc = subprocess.run([str(bench), "--benchmark_filter=BM_AssignmentTrainedLike", "--benchmark_format=json"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{bench} failed ({proc.returncode}):\n{proc.stderr}")
    row = json.loads(proc.stdout)["benchmarks"][0]
    assert row["time_unit"] == "ms"
    latents, features = 4096, 16384
    rng = np.random.default_rng(1)
    sim = np.abs(rng.standard_normal((latents, features), dtype=np.float32)) * np.float32(0.0361)
    i = np.arange(latents)
    target = np.where(i % 10 == 9, ((i - 1) * 4 + 1) % features, (i * 4 + 1) % features)
    sim[i, target] = np.float32(0.55) + np.float32(0.4) * rng.random(latents, dtype=np.float32)
    log("assignment: scipy's linear_sum_assignment on the same shape and distribution")
    t0 = time.perf_counter()
    r, c = linear_sum_assignment(1 - sim)
    theirs = time.perf_counter() - t0
    result = {"latents": latents, "features": features, "synthsae_seconds": row["real_time"] / 1000,
              "synthsae_mean_matched": row.get("mean_matched"), "saelens_seconds": theirs,
              "saelens_mean_matched": float(sim[r, c].mean())}
    log(f"assignment: synthsae {result['synthsae_seconds']:.2f} s, SAELens {theirs:.2f} s")
    return result


# --------------------------------------------------------------------------------------------
# report


def fmt(m: dict, key: str) -> tuple[str, str]:
    digits = 1 if key in ("sae_l0", "dead_latents") else 3
    return (f"{m['synthsae_mean']:.{digits}f} ± {m['synthsae_sd']:.{digits}f}",
            f"{m['saelens_mean']:.{digits}f} ± {m['saelens_sd']:.{digits}f}")


def flag_rate_sentence(job: dict) -> str:
    """How many bold cells chance alone gives when both tools sample the same distribution.

    With n seeds per tool and a common seed-to-seed sd s, the difference of the means is
    N(0, 2 s^2 / n) and sd1^2 + sd2^2 is s^2 chi2(2(n-1)) / (n-1), so a cell is bold exactly when
    |t| > 2 sqrt(n) for a Student t with 2(n-1) degrees of freedom."""
    n = job["seeds"]
    cells = [(row["arch"], k) for row in job["table"] for k, m in row["metrics"].items()
             if k != "dead_latents" and (m["synthsae_sd"] > 0 or m["saelens_sd"] > 0)]
    bold = sum(1 for row in job["table"] for k, m in row["metrics"].items()
               if k != "dead_latents" and (m["synthsae_sd"] > 0 or m["saelens_sd"] > 0) and m["flagged"])
    if n < 2 or not cells:
        return ""
    from scipy.stats import binom, t
    p = 2 * t.sf(2 * math.sqrt(n), 2 * (n - 1))
    tail = binom.sf(bold - 1, len(cells), p)
    return (f"With {n} seeds a cell is bold by chance with probability {p:.3f} when the two tools agree in "
            f"distribution; {bold} of the {len(cells)} cells with a spread (dead latents aside) are bold, "
            f"against {p * len(cells):.1f} expected (P(≥ {bold} by chance) = {tail:.2f}).")


def markdown(report: dict) -> str:
    lines = [f"SAELens {report['sae_lens_version']} (torch {report['torch_version']}) beside synthsae, "
             f"`{report.get('command', '')}`, {report['date']}.", ""]
    if report.get("commands", {}).get("assignment", report.get("command")) != report.get("command"):
        lines += [f"The assignment timing: `{report['commands']['assignment']}`.", ""]
    w = report.get("world")
    if w:
        lines += [f"### World: {w['preset']}, built by each tool, sampled by both ({w['samples']:,} samples)", "",
                  "| directory built by | true L0 synthsae | true L0 SAELens | difference / SE | features beyond 5σ |",
                  "| --- | --- | --- | --- | --- |"]
        for r in w["rows"]:
            f = w["firing_rates"][r["directory"]]
            lines.append(f"| {r['directory']} | {r['true_l0_synthsae']:.4f} | {r['true_l0_saelens']:.4f} | "
                         f"{r['difference'] / r['standard_error']:+.2f} | {f['outside_5_sigma']} of {f['features']} |")
        lines.append("")
    j = report.get("job")
    if j:
        lines += [f"### The same job in both tools: width {j['width']}, k {j['k']} (TopK family), L1 {j['l1']} "
                  f"(standard, gated), lr {j['lr']}, batch 1,024, {j['samples']:,} samples, seeds 1–{j['seeds']}, "
                  f"evaluation on {j['eval_samples']:,} samples", "",
                  "Each cell: synthsae mean ± seed sd / SAELens mean ± seed sd. **Bold**: the difference of the "
                  "means exceeds twice the combined seed spread sqrt(sd₁² + sd₂²). " + flag_rate_sentence(j), "",
                  "| architecture | " + " | ".join(TABLE_METRICS) + " |",
                  "| --- |" + " --- |" * len(TABLE_METRICS)]
        for row in j["table"]:
            cells = []
            for key in TABLE_METRICS:
                m = row["metrics"][key]
                a, b = fmt(m, key)
                cell = f"{a} / {b}"
                cells.append(f"**{cell}**" if m["flagged"] else cell)
            lines.append(f"| {row['arch']} | " + " | ".join(cells) + " |")
        lines += ["", "### Cross-evaluation: each saved SAE scored by both tools", "",
                  "| trained by | architecture | MCC Δ | uniqueness Δ | largest sample-metric |Δ| / bound | agree |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for c in j["cross"]:
            ratio = max(abs(v["difference"]) / v["bound"] for k, v in c["metrics"].items() if k in SAMPLE_METRICS)
            lines.append(f"| {c['trained_by']} | {c['arch']} | {c['metrics']['mcc']['difference']:.1e} | "
                         f"{c['metrics']['uniqueness']['difference']:.1e} | {ratio:.2f} | "
                         f"{'yes' if c['agree'] else 'NO'} |")
        lines += ["", "### Speed on this machine (samples/s; ratio synthsae / SAELens)", "",
                  "| work | synthsae | SAELens | ratio |", "| --- | --- | --- | --- |"]
        if w:  # each tool's faster of its two samplings (the first call of a process pays its warm-up)
            a = max(r["generation_samples_per_second_synthsae"] for r in w["rows"])
            b = max(r["generation_samples_per_second_saelens"] for r in w["rows"])
            lines.append(f"| generation with ground truth | {a:,.0f} | {b:,.0f} | {a / b:.1f}× |")
        for row in j["table"]:
            a, b = row["train_samples_per_second"]["synthsae"], row["train_samples_per_second"]["saelens"]
            if a:
                lines.append(f"| training {row['arch']} | {a:,.0f} | {b:,.0f} | {a / b:.1f}× |")
        a = report.get("assignment")
        if a:
            lines.append(f"| MCC's assignment, {a['latents']:,} × {a['features']:,} (seconds) | "
                         f"{a['synthsae_seconds']:.2f} s | {a['saelens_seconds']:.2f} s | "
                         f"{a['saelens_seconds'] / a['synthsae_seconds']:.1f}× |")
        ev_o = sum(c["eval_seconds_synthsae"] for c in j["cross"])
        ev_s = sum(c["eval_seconds_saelens"] for c in j["cross"])
        n = len(j["cross"]) * report["cross_samples"]
        lines.append(f"| evaluation of saved SAEs (synthsae: process start and world load included) | "
                     f"{n / ev_o:,.0f} | {n / ev_s:,.0f} | {ev_s / ev_o:.1f}× |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--synthsae", default="build/bin/synthsae")
    p.add_argument("--out", default="out/parity")
    p.add_argument("--preset", default="cpu-1k")
    p.add_argument("--archs", default="standard,topk,abstopk,batchtopk,matryoshka_batchtopk,jumprelu,gated,"
                                      "matching_pursuit")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--samples", type=int, default=3_000_000)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--l1", type=float, default=2.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-samples", type=int, default=100_000)
    p.add_argument("--cross-samples", type=int, default=50_000)
    p.add_argument("--chunks", type=int, default=5)
    p.add_argument("--world-samples", type=int, default=100_000)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--parts", default="world,job,assignment",
                   help="which parts to run (world,job,assignment); the others are kept from OUT/parity.json")
    p.add_argument("--reuse-runs", action="store_true",
                   help="keep the runs and cross-checks of the same job in OUT/parity.json; train only the missing seeds")
    p.add_argument("--markdown-from", metavar="JSON", help="only re-render parity.md from a parity.json")
    args = p.parse_args()
    if args.markdown_from:
        print(markdown(json.loads(Path(args.markdown_from).read_text())), end="")
        return
    args.archs = [a for a in args.archs.split(",") if a]
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = set(args.parts.split(","))
    if not parts <= {"world", "job", "assignment"}:
        sys.exit(f"--parts = {args.parts}: choose among world, job, assignment")
    previous = out / "parity.json"
    report = json.loads(previous.read_text()) if previous.exists() else {}
    command = "bash scripts/saelens_parity.sh " + " ".join(
        a for i, a in enumerate(sys.argv[1:]) if a != "--synthsae" and sys.argv[i] != "--synthsae")
    report.update({"sae_lens_version": sae_lens.__version__, "torch_version": torch.__version__,
                   "torch_threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d")})
    report.setdefault("commands", {})
    for part in sorted(parts):
        report["commands"][part] = command
    if "world" in parts or "job" in parts:
        report["command"] = command
        report["cross_samples"] = args.cross_samples
    if "world" in parts:
        report["world"] = world_part(args, out)
    if "job" in parts:
        world = Path(report["world"]["directory"]) if "world" in report else out / "world_synthsae"
        if not world.exists():
            sys.exit(f"the job needs a world: run the world part first ({world} is missing)")
        report["job"] = job_part(args, out, world, report.get("job"))
    if "assignment" in parts:
        report["assignment"] = assignment_part(args)
    tmp = out / "parity.json.tmp"
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, out / "parity.json")
    md = markdown(report)
    tmp = out / "parity.md.tmp"
    tmp.write_text(md)
    os.replace(tmp, out / "parity.md")
    print(md)


if __name__ == "__main__":
    main()
