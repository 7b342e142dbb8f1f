"""Makes the .npy fixtures under tests/data/npy/ with numpy itself.

Run with a Python that has numpy:
    python3 scripts/npy_fixtures.py tests/data/npy

Every value is exact in its dtype, so tests/io/test_npy.cpp compares with ==. Files (< 1 KB):
  f4_3x4.npy         '<f4' (3, 4): i * 4 + j + 0.5
  f2_2x3.npy         '<f2' (2, 3): 0.5, -1.25, 2, 65504 (largest half), 2**-24 (smallest subnormal), -3
  f4_v2.npy          '<f4' (2, 2): 0.25, 0.5, 0.75, 1 with a version 2.0 header
  f4_v3.npy          '<f4' (2, 2): the same with a version 3.0 header
  f4_fortran.npy     '<f4' (2, 3) saved from a Fortran-ordered array (fortran_order True)
  f4_big_endian.npy  '>f4' (2, 2)
  i4_positions.npy   '<i4' (5,): 0, 7, 123456, 2147483647, -1
  i8_positions.npy   '<i8' (2, 2): 0, 1, 2**40, -2**40
  f4_rank1.npy       '<f4' (4,): 1.5, -2.5, 3.25, 0
  f4_2x2x2.npy       '<f4' (2, 2, 2): k + 0.25 for k = 0..7 (row width 4)
  f4_scalar.npy      '<f4' (): 42.5

and, for the `synthsae darkmatter` end-to-end test (tests/cli/test_darkmatter.sh), darkmatter/:
  acts.npy           '<f4' (600, 8): sparse non-negative sums of 12 random unit directions + an offset
  positions.npy      '<i8' (600,): row % 200 (three "contexts" of 200 tokens)
  sae/               a ReLU SAE in SAELens's .npy names: W_enc (8, 6), b_enc (6), W_dec (6, 8), b_dec (8),
                     its latents six of the twelve directions
  sae_outputs.npy    '<f4' (600, 8): that SAE's reconstructions of acts.npy
"""
import sys
from pathlib import Path

import numpy as np


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    i, j = np.meshgrid(np.arange(3), np.arange(4), indexing="ij")
    np.save(out / "f4_3x4.npy", (i * 4 + j + 0.5).astype("<f4"))
    np.save(out / "f2_2x3.npy", np.array([[0.5, -1.25, 2.0], [65504.0, 2.0**-24, -3.0]], dtype="<f2"))
    quarter = (np.arange(1, 5, dtype="<f4") * 0.25).reshape(2, 2)
    for version in (2, 3):
        with open(out / f"f4_v{version}.npy", "wb") as f:
            np.lib.format.write_array(f, quarter, version=(version, 0))
    np.save(out / "f4_fortran.npy", np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
    np.save(out / "f4_big_endian.npy", np.arange(4, dtype=">f4").reshape(2, 2))
    np.save(out / "i4_positions.npy", np.array([0, 7, 123456, 2147483647, -1], dtype="<i4"))
    np.save(out / "i8_positions.npy", np.array([[0, 1], [2**40, -(2**40)]], dtype="<i8"))
    np.save(out / "f4_rank1.npy", np.array([1.5, -2.5, 3.25, 0.0], dtype="<f4"))
    np.save(out / "f4_2x2x2.npy", (np.arange(8, dtype="<f4") + 0.25).reshape(2, 2, 2))
    np.save(out / "f4_scalar.npy", np.array(42.5, dtype="<f4"))
    for path in sorted(out.glob("*.npy")):
        assert path.stat().st_size < 1024, path
    darkmatter(out / "darkmatter")


def darkmatter(out: Path) -> None:
    (out / "sae").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(12, 8))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    coef = (rng.random((600, 12)) < 0.25) * rng.uniform(0.5, 1.5, (600, 12))
    offset = np.linspace(-0.5, 0.5, 8)
    acts = (coef @ dirs + offset).astype("<f4")
    np.save(out / "acts.npy", acts)
    np.save(out / "positions.npy", (np.arange(600) % 200).astype("<i8"))
    w_dec = dirs[:6].astype("<f4")
    np.save(out / "sae" / "W_enc.npy", np.ascontiguousarray(w_dec.T))
    np.save(out / "sae" / "b_enc.npy", np.zeros(6, dtype="<f4"))
    np.save(out / "sae" / "W_dec.npy", w_dec)
    np.save(out / "sae" / "b_dec.npy", offset.astype("<f4"))
    z = np.maximum((acts - offset.astype("<f4")) @ w_dec.T, 0)
    np.save(out / "sae_outputs.npy", (z @ w_dec + offset).astype("<f4"))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/npy"))
