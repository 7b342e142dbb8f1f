#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus, tests/data/fuzz/<target>/ (committed; run again only to
change it). Seeds come from the committed test data (SAELens's own SAE and world directories,
the .npy fixtures) plus small hand-made inputs. Files named valid-* must be accepted by their
target and refused-* refused with a synthsae error (tests/fuzz/test_fuzz_corpus.cpp checks
both); any other file must only not crash. Standard library only.

    python3 scripts/fuzz_seeds.py
"""
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
OUT = DATA / "fuzz"
MARK = b"\n--8<--\n"  # tests/fuzz/fuzz_targets.hpp: kSectionMarker


def safetensors(tensors, metadata=None):
    """tensors: name -> (dtype, shape, raw bytes)."""
    header, offset, blob = {}, 0, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blob += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def f32(*v):
    return struct.pack(f"<{len(v)}f", *v)


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def bundle(*parts):
    return MARK.join(parts)


def main():
    # Inputs that once crashed a target (regression-*) are kept: they are findings, not seeds.
    for old in OUT.glob("*/*"):
        if not old.name.startswith("regression-"):
            old.unlink()

    # safetensors
    write("safetensors", "valid-sae_standard", (DATA / "saelens/sae_standard/sae_weights.safetensors").read_bytes())
    write("safetensors", "valid-mixed", safetensors({
        "a": ("F32", [2, 2], f32(1, 2, 3, 4)),
        "h": ("F16", [2], struct.pack("<2e", 0.5, -2.0)),
        "b": ("BF16", [1], b"\x80\x3f"),
        "i": ("I64", [1], struct.pack("<q", -7)),
        "s": ("F64", [], struct.pack("<d", 3.25)),
    }, {"format": "pt"}))
    write("safetensors", "valid-empty", safetensors({}))
    write("safetensors", "refused-offsets", safetensors({"a": ("F32", [3], f32(1, 2))}))
    write("safetensors", "refused-short", b"\x08\x00\x00")

    # npy
    # refused by design: Fortran order and big-endian (test_npy.cpp); the target reads floats, not positions
    refused_npy = {"f4_fortran", "f4_big_endian", "i4_positions", "i8_positions"}
    for p in sorted((DATA / "npy").glob("*.npy")):
        write("npy", ("refused-" if p.stem in refused_npy else "valid-") + p.stem, p.read_bytes())
    write("npy", "refused-magic", b"\x93NUMPX\x01\x00")

    # world_config
    for w in ("world_tiny", "world_organisational"):
        write("world_config", f"valid-{w}", (DATA / "saelens" / w / "synthetic_model_config.json").read_bytes())
    small = {"num_features": 12, "hidden_dim": 6, "seed": 3,
             "firing_probability": {"generator_name": "zipfian", "exponent": 0.5, "max_prob": 0.4, "min_prob": 0.05},
             "correlation": {"rank": 2, "correlation_scale": 0.1},
             "hierarchy": {"total_root_nodes": 2, "branching_factor": 2, "max_depth": 1,
                           "mutually_exclusive_portion": 0.5}}
    write("world_config", "valid-small", json.dumps(small))
    write("world_config", "refused-unknown-key", json.dumps({**small, "num_featurez": 3}))
    write("world_config", "refused-negative", json.dumps({**small, "hidden_dim": -1}))

    # hierarchy (64 features)
    leaf = lambda i: {"feature_index": i, "children": []}
    write("hierarchy", "valid-small", json.dumps({"roots": [
        {"feature_index": 0, "mutually_exclusive_children": True, "children": [leaf(1), leaf(2)]},
        {"feature_index": None, "children": [leaf(3), {"feature_index": 4, "children": [leaf(5)]}]}]}))
    write("hierarchy", "refused-index", json.dumps({"roots": [leaf(64)]}))
    write("hierarchy", "refused-shape", "[1, 2]")
    # synthsae's one extension of hierarchy.json: a co-activation probability on an exclusive node
    def dial(value, exclusive=True, index=None, n=3):
        return json.dumps({"roots": [{"feature_index": index, "mutually_exclusive_children": exclusive,
                                      "synthsae_coactivation": value, "children": [leaf(i) for i in range(n)]}]})
    write("hierarchy", "valid-coactivation", dial(0.25))
    write("hierarchy", "refused-coactivation-range", dial(1.5, n=2))
    write("hierarchy", "refused-coactivation-not-exclusive", dial(0.5, exclusive=False, index=3, n=2))
    write("hierarchy", "refused-coactivation-type", dial("half", index=3, n=2))

    # model_directory: config, safetensors, hierarchy.json
    for w in ("world_tiny", "world_organisational"):
        d = DATA / "saelens" / w
        write("model_directory", f"valid-{w}", bundle((d / "synthetic_model_config.json").read_bytes(),
                                                      (d / "synthetic_model.safetensors").read_bytes(),
                                                      (d / "hierarchy.json").read_bytes()))
    d = DATA / "saelens/world_organisational"
    write("model_directory", "valid-missing-hierarchy", bundle((d / "synthetic_model_config.json").read_bytes(),
                                                               (d / "synthetic_model.safetensors").read_bytes()))
    write("model_directory", "refused-no-weights", (d / "synthetic_model_config.json").read_bytes())

    # sae_directory: cfg.json, sae_weights.safetensors (every architecture SAELens saved for us)
    for d in sorted((DATA / "saelens").glob("sae_*")):
        if d.is_dir():
            write("sae_directory", f"valid-{d.name}", bundle((d / "cfg.json").read_bytes(),
                                                            (d / "sae_weights.safetensors").read_bytes()))
    cfg = json.loads((DATA / "saelens/sae_standard/cfg.json").read_text())
    write("sae_directory", "refused-d-in", bundle(json.dumps({**cfg, "d_in": 25}).encode(),
                                                  (DATA / "saelens/sae_standard/sae_weights.safetensors").read_bytes()))

    # cli_args: argv split at NUL
    argv = lambda *a: "\0".join(a)
    write("cli_args", "valid-flags", argv("--samples", "1000", "--lr=3e-4", "--k", "25", "--sae", "a", "--sae", "b", "--stats"))
    write("cli_args", "valid-help", argv("--help"))
    write("cli_args", "refused-range", argv("--k", "0"))
    write("cli_args", "refused-number", argv("--lr", "1e-3x"))
    write("cli_args", "refused-unknown", argv("--kk", "3"))
    write("cli_args", "refused-twice", argv("--out", "a", "--out", "b"))


if __name__ == "__main__":
    main()
