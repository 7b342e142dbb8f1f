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
The regular test suite (tests/saelens/test_saelens_fixtures.cpp) reads them; no Python in CI.
"""
import json
import sys
from pathlib import Path

import sae_lens
import torch
from sae_lens.synthetic import SyntheticModel, SyntheticModelConfig

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


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/saelens"))
