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
The regular test suite (tests/saelens/test_saelens_fixtures.cpp) reads them; no Python in CI.
"""
import json
import shutil
import sys
from pathlib import Path

import sae_lens
import torch
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
from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig
from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
from sae_lens.synthetic import SyntheticModel, SyntheticModelConfig
from sae_lens.synthetic.evals import eval_sae_on_synthetic_data
from sae_lens.synthetic.training import train_toy_sae

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


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/saelens"))
