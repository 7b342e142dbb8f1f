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


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/npy"))
