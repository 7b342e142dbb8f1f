"""Makes the SAELens golden fixtures under tests/data/saelens/ with SAELens itself.

Run with a Python that has sae-lens installed (scripts/saelens_parity.sh makes one):
    python scripts/saelens_fixtures.py tests/data/saelens

Writes
  torch_randn.json     torch.randn(n, generator=Generator().manual_seed(seed)) for a few seeds
                       and sizes (both of torch's paths: n < 16 scalar, n >= 16 blocks of 16)
  world_tiny/          a small SAELens world directory (hierarchy, correlation, folded-normal
                       magnitudes), saved by SyntheticModel.save
  world_tiny.json      what SAELens holds once it loads that directory: the per-feature std and
                       mean magnitudes it redraws, the firing probabilities, and firing statistics
                       of 20,000 samples it draws (for comparisons within sampling error)
  sae_<arch>/          an SAE of each architecture SAELens trains, trained by SAELens on that
                       world (train_toy_sae, 300,000 samples) and saved by save_inference_model
  sae_<arch>.json      SAELens's eval_sae_on_synthetic_data of the saved SAE (loaded back with
                       SAE.load_from_disk) on 100,000 samples of the loaded world
  sae_standard_<mode>/ the standard SAE with cfg.json's normalize_activations set to <mode>, and
  sae_standard_<mode>.json  SAELens's encode and decode of 8 samples through it
  (--extras: only these, leaving the files above as they are)
  world_organisational/  world_tiny with a hierarchy.json that has organisational nodes
  world_organisational.json  SAELens's firing rates and mean active magnitudes of 20,000 samples
  whitening.json       ActivationScaler.estimate_whitening on fixed data, and the weights of a
                       standard and a gated SAE before and after fold_activation_whitening
                       (apply_b_dec_to_input true and false)
  correlation_repair.json  create_correlation_matrix_from_correlations on matrices that need
                       the eigenvalue repair and one that does not
  normalized_steps.json  (--steps: only this file) one training_forward_pass and its backward
                       of a standard, a JumpReLU and a matching-pursuit training SAE with
                       normalize_activations none, constant_norm_rescale and layer_norm: the
                       weights, the batch, every loss and every parameter's gradient
  topk_family_steps.json  (--steps too) the same for TopK, BatchTopK and Matryoshka BatchTopK
                       with dead latents: AuxK and the per-level Matryoshka aux loss
The regular test suite (tests/saelens/test_saelens_fixtures.cpp) reads them; no Python in CI.
"""
import json
import shutil
import sys
from pathlib import Path

import sae_lens
import torch
from safetensors.torch import load_file, save_file
from sae_lens import SAE
from sae_lens.saes.abstopk_sae import AbsTopKTrainingSAE, AbsTopKTrainingSAEConfig
from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
from sae_lens.saes.gated_sae import GatedTrainingSAE, GatedTrainingSAEConfig
from sae_lens.saes.jumprelu_sae import JumpReLUTrainingSAE, JumpReLUTrainingSAEConfig
from sae_lens.saes.matching_pursuit_sae import MatchingPursuitTrainingSAE, MatchingPursuitTrainingSAEConfig
from sae_lens.saes.matryoshka_batchtopk_sae import (
    MatryoshkaBatchTopKTrainingSAE,
    MatryoshkaBatchTopKTrainingSAEConfig,
)
from sae_lens.saes.sae import TrainStepInput
from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig
from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
from sae_lens.synthetic import SyntheticModel, SyntheticModelConfig
from sae_lens.synthetic.evals import eval_sae_on_synthetic_data
from sae_lens.synthetic.correlation import create_correlation_matrix_from_correlations
from sae_lens.synthetic.training import train_toy_sae
from sae_lens.training.activation_scaler import ActivationScaler

TINY_WORLD = {
    "num_features": 300,
    "hidden_dim": 24,
    "firing_probability": {"generator_name": "zipfian", "exponent": 0.5, "max_prob": 0.3, "min_prob": 0.005},
    "hierarchy": {
        "total_root_nodes": 12,
        "branching_factor": 3,
        "max_depth": 2,
        "mutually_exclusive_portion": 1.0,
        "mutually_exclusive_min_depth": 0,
        "mutually_exclusive_max_depth": None,
        "compensate_probabilities": True,
        "scale_children_by_parent": True,
    },
    "orthogonalization": {"num_steps": 20, "lr": 0.0003, "chunk_size": 1024},
    "correlation": {"rank": 4, "correlation_scale": 0.1, "seed": None},
    "mean_firing_magnitudes": {"generator_name": "linear", "start": 5.0, "end": 4.0},
    "std_firing_magnitudes": {"generator_name": "folded_normal", "mean": 0.5, "std": 0.5, "min_value": None,
                              "max_value": None},
    "bias": 0.5,
    "dtype": "float32",
    "seed": 7,
}
STAT_SAMPLES = 20_000
D_SAE = 64
SAE_TRAINING_SAMPLES = 300_000
# Precision and F1 average per-latent ratios, which nearly dead latents make noisy (SAELens's own
# precision of the BatchTopK fixture moves by 0.02 between two 100,000-sample seeds): evaluate on
# enough samples that the test's tolerance stays useful.
SAE_EVAL_SAMPLES = 100_000
# Every architecture SAELens trains and saves, with small-world settings (k = 5 of 64 latents).
SAES = {
    "standard": (StandardTrainingSAE, StandardTrainingSAEConfig, {"l1_coefficient": 2.0}),
    "topk": (TopKTrainingSAE, TopKTrainingSAEConfig, {"k": 5}),
    "abstopk": (AbsTopKTrainingSAE, AbsTopKTrainingSAEConfig, {"k": 5}),
    "batchtopk": (BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig, {"k": 5}),
    "matryoshka_batchtopk": (
        MatryoshkaBatchTopKTrainingSAE,
        MatryoshkaBatchTopKTrainingSAEConfig,
        {"k": 5, "matryoshka_widths": [16, 32, 64]},
    ),
    "jumprelu": (
        JumpReLUTrainingSAE,
        JumpReLUTrainingSAEConfig,
        {"l0_coefficient": 0.3, "jumprelu_init_threshold": 0.5, "jumprelu_bandwidth": 0.5},
    ),
    "gated": (GatedTrainingSAE, GatedTrainingSAEConfig, {"l1_coefficient": 2.0}),
    "matching_pursuit": (MatchingPursuitTrainingSAE, MatchingPursuitTrainingSAEConfig, {"max_iterations": 5}),
}


def make_sae_fixtures(out: Path) -> None:
    model = SyntheticModel.load_from_disk(out / "world_tiny")
    for name, (sae_class, cfg_class, extra) in SAES.items():
        torch.manual_seed(1)
        sae = sae_class(cfg_class(d_in=TINY_WORLD["hidden_dim"], d_sae=D_SAE, **extra))
        train_toy_sae(sae, model.feature_dict, model.activation_generator, training_samples=SAE_TRAINING_SAMPLES,
                      batch_size=1024, lr=3e-3)
        sae.save_inference_model(str(out / f"sae_{name}"))
        loaded = SAE.load_from_disk(str(out / f"sae_{name}"), device="cpu")
        torch.manual_seed(2)
        with torch.no_grad():
            result = eval_sae_on_synthetic_data(loaded, model.feature_dict, model.activation_generator,
                                                num_samples=SAE_EVAL_SAMPLES, batch_size=1000)
        stats = result.to_dict()
        stats["sae_lens_version"] = sae_lens.__version__
        stats["samples"] = SAE_EVAL_SAMPLES
        (out / f"sae_{name}.json").write_text(json.dumps(stats, indent=1))
        print(f"{name}: L0 {stats['sae_l0']:.2f}, EV {stats['explained_variance']:.3f}, MCC {stats['mcc']:.3f}")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    randn = {"torch_version": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(), "draws": []}
    for seed in [0, 1, 42, 12345, 2**32 + 7]:
        for n in [1, 5, 15, 16, 17, 40, 100, 1000]:
            g = torch.Generator().manual_seed(seed)
            randn["draws"].append({"seed": seed, "n": n, "values": torch.randn(n, generator=g).tolist()})
    (out / "torch_randn.json").write_text(json.dumps(randn))

    cfg = SyntheticModelConfig.from_dict(TINY_WORLD)
    SyntheticModel(cfg).save(out / "world_tiny")
    model = SyntheticModel.load_from_disk(out / "world_tiny")
    gen = model.activation_generator
    torch.manual_seed(0)
    _, feats = model.sample_with_features(STAT_SAMPLES)
    fired = (feats != 0).float()
    expected = {
        "sae_lens_version": sae_lens.__version__,
        "torch_version": torch.__version__,
        "std_magnitudes": gen.std_firing_magnitudes.tolist(),
        "mean_magnitudes": gen.mean_firing_magnitudes.tolist(),
        "firing_probabilities": gen.firing_probabilities.tolist(),
        "samples": STAT_SAMPLES,
        "firing_rates": fired.mean(0).tolist(),
        "mean_l0": fired.sum(1).mean().item(),
        "mean_active_magnitude": (feats.sum() / fired.sum()).item(),
    }
    (out / "world_tiny.json").write_text(json.dumps(expected))
    print(f"wrote {out}: mean L0 {expected['mean_l0']:.3f}")
    make_sae_fixtures(out)
    make_normalization_fixtures(out, model)


def make_normalization_fixtures(out: Path, model: SyntheticModel) -> None:
    torch.manual_seed(3)
    x = model.sample(8)
    for mode in ["constant_norm_rescale", "layer_norm", "expected_average_only_in"]:
        d = out / f"sae_standard_{mode}"
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(out / "sae_standard", d)
        cfg = json.loads((d / "cfg.json").read_text())
        cfg["normalize_activations"] = mode
        (d / "cfg.json").write_text(json.dumps(cfg))
        sae = SAE.load_from_disk(str(d), device="cpu")
        with torch.no_grad():
            z = sae.encode(x)
            x_hat = sae.decode(z)
        (out / f"sae_standard_{mode}.json").write_text(
            json.dumps({"x": x.tolist(), "z": z.tolist(), "x_hat": x_hat.tolist()}))
        print(f"{mode}: |x_hat - x| / |x| = {((x_hat - x).norm() / x.norm()).item():.3f}")


# Organisational nodes (feature_index null) over world_tiny's features: a root organisational ME
# group, organisational groups under a feature (one scaling, one not, one nested ME), and an
# organisational root above a plain feature.
ORGANISATIONAL_FOREST = {"roots": [
    {"feature_index": None, "mutually_exclusive_children": True, "scale_children_by_parent": True, "children": [
        {"feature_index": 0, "mutually_exclusive_children": True, "scale_children_by_parent": True, "children": [
            {"feature_index": 10}, {"feature_index": 11}, {"feature_index": 12}]},
        {"feature_index": 1}, {"feature_index": 2},
        {"feature_index": None, "children": [{"feature_index": 3}, {"feature_index": 4}]}]},
    {"feature_index": 5, "mutually_exclusive_children": True, "scale_children_by_parent": True, "children": [
        {"feature_index": None, "mutually_exclusive_children": True, "scale_children_by_parent": True, "children": [
            {"feature_index": 20}, {"feature_index": 21}, {"feature_index": 22}]},
        {"feature_index": None, "children": [
            {"feature_index": 23}, {"feature_index": 24},
            {"feature_index": None, "mutually_exclusive_children": True, "children": [
                {"feature_index": 25}, {"feature_index": 26}]}]},
        {"feature_index": 27}, {"feature_index": 28}]},
    {"feature_index": None, "children": [
        {"feature_index": 6, "children": [{"feature_index": 30}, {"feature_index": 31}]}]},
]}


def complete_node(node: dict) -> dict:
    return {"feature_index": node.get("feature_index"),
            "mutually_exclusive_children": node.get("mutually_exclusive_children", False),
            "scale_children_by_parent": node.get("scale_children_by_parent", False),
            "feature_id": None,
            "children": [complete_node(c) for c in node.get("children", [])]}


def make_extra_fixtures(out: Path) -> None:
    # A world with organisational nodes, sampled by SAELens.
    d = out / "world_organisational"
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(out / "world_tiny", d)
    (d / "hierarchy.json").write_text(json.dumps({"roots": [complete_node(r) for r in ORGANISATIONAL_FOREST["roots"]]},
                                                 indent=1))
    # Without the copula: SAELens's correlated firing uses thresholds it recomputes from the config's
    # probabilities compensated for the loaded forest, not the saved probabilities (which were
    # compensated for world_tiny's own forest); independent firing uses the saved ones, so the
    # fixture tests the hierarchy's sampling alone.
    cfg = json.loads((d / "synthetic_model_config.json").read_text())
    cfg["correlation"] = None
    (d / "synthetic_model_config.json").write_text(json.dumps(cfg, indent=1))
    tensors = load_file(d / "synthetic_model.safetensors")
    save_file({k: v for k, v in tensors.items() if not k.startswith("correlation_")}, d / "synthetic_model.safetensors")
    model = SyntheticModel.load_from_disk(d)
    torch.manual_seed(5)
    _, feats = model.sample_with_features(STAT_SAMPLES)
    fired = (feats != 0).float()
    count = fired.sum(0)
    total = feats.sum(0)
    squares = (feats * feats).sum(0)
    (out / "world_organisational.json").write_text(json.dumps({
        "sae_lens_version": sae_lens.__version__,
        "samples": STAT_SAMPLES,
        "firing_rates": (count / STAT_SAMPLES).tolist(),
        "active_count": count.tolist(),
        "active_sum": total.tolist(),
        "active_sum_squares": squares.tolist(),
    }))
    print(f"world_organisational: mean L0 {fired.sum(1).mean().item():.3f}")

    # Whitening statistics and the fold.
    torch.manual_seed(11)
    dim, n, d_sae = 4, 256, 6
    mix = torch.randn(dim, dim)
    x = torch.randn(n, dim) @ mix + torch.tensor([0.5, -1.0, 2.0, 0.0])
    scaler = ActivationScaler()
    scaler.estimate_whitening(d_in=dim, data_provider=iter(x.split(64)), n_batches_for_norm_estimate=4)
    w = scaler.whitening
    record = {"sae_lens_version": sae_lens.__version__, "x": x.tolist(), "mean": w.mean.tolist(),
              "matrix": w.matrix.tolist(), "inverse": w.inverse_matrix.tolist(), "folds": {}}
    # TopK last (the earlier entries keep their seeds): with rescale_acts_by_decoder_norm SAELens
    # folds the decoder norms first and turns the rescale off.
    for arch, cls, cfg_cls, extra in [("standard", StandardTrainingSAE, StandardTrainingSAEConfig, {}),
                                      ("gated", GatedTrainingSAE, GatedTrainingSAEConfig, {}),
                                      ("topk", TopKTrainingSAE, TopKTrainingSAEConfig,
                                       {"k": 2, "rescale_acts_by_decoder_norm": True})]:
        for apply in [True, False]:
            torch.manual_seed(12)
            sae = cls(cfg_cls(d_in=dim, d_sae=d_sae, apply_b_dec_to_input=apply, **extra))
            with torch.no_grad():
                for param in sae.parameters():
                    param.copy_(0.5 * torch.randn_like(param))
            before = {k: v.flatten().tolist() for k, v in sae.state_dict().items()}
            sae.fold_activation_whitening(mean=w.mean, whitening_matrix=w.matrix, unwhitening_matrix=w.inverse_matrix)
            after = {k: v.flatten().tolist() for k, v in sae.state_dict().items()}
            if arch == "topk":
                after["rescale_acts_by_decoder_norm"] = sae.cfg.rescale_acts_by_decoder_norm
            record["folds"][f"{arch}_{'apply' if apply else 'no_apply'}"] = {"before": before, "after": after}
    (out / "whitening.json").write_text(json.dumps(record))

    # Correlation matrices from pairs, with and without the repair.
    cases = [
        {"n": 3, "pairs": [[0, 1, 0.9], [0, 2, 0.9], [1, 2, -0.9]], "default": 0.0},
        {"n": 5, "pairs": [[0, 4, -0.8], [1, 2, 0.95], [1, 3, 0.95]], "default": 0.3},
        {"n": 4, "pairs": [[0, 1, 0.2], [2, 3, -0.1]], "default": 0.05},
    ]
    for case in cases:
        m = create_correlation_matrix_from_correlations(case["n"], {(i, j): v for i, j, v in case["pairs"]},
                                                        case["default"])
        case["matrix"] = m.tolist()
    (out / "correlation_repair.json").write_text(json.dumps({"sae_lens_version": sae_lens.__version__,
                                                             "cases": cases}))
    print("wrote the whitening and correlation-repair fixtures")


def make_step_fixtures(out: Path) -> None:
    """One training step of SAEs trained behind a per-row normalisation: SAELens normalises the
    rows on the way in, maps the reconstruction back on the way out and takes the MSE against the
    raw input, so the gradients differ from those of a plain step on normalised rows."""
    dim, d_sae, rows = 4, 6, 5
    torch.manual_seed(21)
    x = 1.5 * torch.randn(rows, dim) + torch.tensor([0.3, -0.2, 0.8, 0.1])
    record = {"sae_lens_version": sae_lens.__version__, "x": x.tolist(), "steps": {}}
    cases = [("standard", StandardTrainingSAE, StandardTrainingSAEConfig, {"l1_coefficient": 0.7}, {"l1": 0.7}),
             ("jumprelu", JumpReLUTrainingSAE, JumpReLUTrainingSAEConfig,
              {"l0_coefficient": 0.3, "jumprelu_init_threshold": 0.4, "jumprelu_bandwidth": 1.0}, {"l0": 0.3}),
             ("matching_pursuit", MatchingPursuitTrainingSAE, MatchingPursuitTrainingSAEConfig,
              {"max_iterations": 3}, {})]
    for arch, cls, cfg_cls, extra, coefficients in cases:
        for mode in ["none", "constant_norm_rescale", "layer_norm"]:
            torch.manual_seed(22)
            sae = cls(cfg_cls(d_in=dim, d_sae=d_sae, normalize_activations=mode, **extra))
            with torch.no_grad():
                for name, param in sae.named_parameters():
                    param.copy_(0.5 * torch.randn_like(param))
                    if name == "threshold":
                        param.copy_(0.3 + 0.2 * torch.rand_like(param))
            before = {k: v.flatten().tolist() for k, v in sae.state_dict().items()}
            output = sae.training_forward_pass(TrainStepInput(sae_in=x.clone(), coefficients=coefficients,
                                                              dead_neuron_mask=None, n_training_steps=0,
                                                              is_logging_step=False))
            output.loss.backward()
            record["steps"][f"{arch}_{mode}"] = {
                "before": before,
                "losses": {k: float(v) for k, v in output.losses.items()},
                "loss": float(output.loss),
                "grads": {k: p.grad.flatten().tolist() for k, p in sae.named_parameters() if p.grad is not None},
            }
            print(f"{arch} {mode}: loss {float(output.loss):.6f}")
    (out / "normalized_steps.json").write_text(json.dumps(record))

    # The TopK family with dead latents: AuxK (TopK, BatchTopK) and the per-level Matryoshka aux
    # loss, decoder-norm rescaling on, as the bench trains them.
    dim, d_sae, rows = 6, 8, 5
    torch.manual_seed(31)
    x = 1.5 * torch.randn(rows, dim) + 0.2
    dead = torch.tensor([False, True, False, True, False, True, True, False])
    record = {"sae_lens_version": sae_lens.__version__, "x": x.tolist(), "dead": dead.tolist(), "steps": {}}
    cases = [("topk", TopKTrainingSAE, TopKTrainingSAEConfig, {"k": 2, "rescale_acts_by_decoder_norm": True}),
             ("batchtopk", BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig, {"k": 2}),
             ("matryoshka_batchtopk", MatryoshkaBatchTopKTrainingSAE, MatryoshkaBatchTopKTrainingSAEConfig,
              {"k": 2, "matryoshka_widths": [2, 4], "use_matryoshka_aux_loss": True})]
    for arch, cls, cfg_cls, extra in cases:
        torch.manual_seed(32)
        sae = cls(cfg_cls(d_in=dim, d_sae=d_sae, aux_loss_coefficient=1.0, **extra))
        with torch.no_grad():
            for name, param in sae.named_parameters():
                param.copy_(0.5 * torch.randn_like(param))
        before = {k: v.flatten().tolist() for k, v in sae.state_dict().items()}
        output = sae.training_forward_pass(TrainStepInput(sae_in=x.clone(), coefficients={}, dead_neuron_mask=dead,
                                                          n_training_steps=0, is_logging_step=False))
        output.loss.backward()
        record["steps"][arch] = {
            "before": before,
            "rescale_acts_by_decoder_norm": bool(sae.cfg.rescale_acts_by_decoder_norm),
            "feature_acts": output.feature_acts.flatten().tolist(),
            "losses": {k: float(v) for k, v in output.losses.items()},
            "loss": float(output.loss),
            "grads": {k: p.grad.flatten().tolist() for k, p in sae.named_parameters() if p.grad is not None},
        }
        if hasattr(sae, "topk_threshold"):  # BatchTopK's running threshold after this one step
            record["steps"][arch]["topk_threshold_after"] = float(sae.topk_threshold)
        print(f"{arch} with dead latents: {record['steps'][arch]['losses']}")
    (out / "topk_family_steps.json").write_text(json.dumps(record))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    target = Path(args[0] if args else "tests/data/saelens")
    if "--steps" in sys.argv:
        make_step_fixtures(target)
    elif "--extras" in sys.argv:
        make_extra_fixtures(target)
    else:
        main(target)
        make_extra_fixtures(target)
        make_step_fixtures(target)
