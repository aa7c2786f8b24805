"""A structure-aware fuzzer over artysim's own results files (issue 11): a small real shard and a sweep
file are copied with netCDF4 while attributes and variables are dropped, retyped, resized and their
values corrupted, and raw bytes overwritten; every reading command then either works (exit 0) or
refuses with one line (exit 2), never a traceback and never a hang.

Seeded and deterministic: ``ARTYSIM_FUZZ_SCALE`` (default 1) scales the number of mutants (about
40 s at 1 on two cores); ``ARTYSIM_FUZZ_SEED`` picks another sequence. A failure names the seed
and the mutations, so that it can be replayed with ``mutants(seed)``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from crafted import commands, outcome
from ncmutate import copy_with, corrupt_bytes, drop_attr, drop_var, read, redim, resize, retype, set_attr, set_values

SCALE = float(os.environ.get("ARTYSIM_FUZZ_SCALE", "1"))
SEED = int(os.environ.get("ARTYSIM_FUZZ_SEED", "20261202"))
N_MUTANTS = max(4, int(24 * SCALE))
DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint64, np.float32, np.float64, str]


def _attr_value(rng: np.random.Generator):
    kinds = [lambda: int(rng.integers(-5, 5)), lambda: int(rng.integers(2**40, 2**62)), lambda: float(rng.normal()),
             lambda: float("nan"), lambda: float("inf"), lambda: "", lambda: "x" * int(rng.integers(1, 3000)),
             lambda: "2024-02-30", lambda: "12", lambda: np.arange(int(rng.integers(0, 4))),
             lambda: np.array([1.5, -2.0]), lambda: "[\"demand.base\"]", lambda: "\u00e9\n\t"]
    return kinds[int(rng.integers(len(kinds)))]()


def _values_fn(rng: np.random.Generator):
    fns = [("negate", lambda a: -a if a.dtype.kind in "if" else a),
           ("nan", lambda a: a * np.nan if a.dtype.kind == "f" else a),
           ("huge", lambda a: a * 0 + (2**62 if a.dtype.kind in "iu" else 1e300) if a.dtype.kind in "iuf" else a),
           ("reverse", lambda a: a[::-1]),
           ("zero", lambda a: a * 0 if a.dtype.kind in "iuf" else a),
           ("minus one", lambda a: a * 0 - 1 if a.dtype.kind in "if" else a),
           ("shift", lambda a: a + 7 if a.dtype.kind in "iuf" else a)]
    return fns[int(rng.integers(len(fns)))]


def mutants(seed: int, doc_names: tuple[list, list, dict]):
    """(description, mutations, bytes to corrupt) for one seed; doc_names: attribute names, variable
    names, dimension sizes of the base file."""
    rng = np.random.default_rng(seed)
    attrs, variables, dims = doc_names
    out = []
    for _ in range(int(rng.integers(1, 4))):
        # value changes most often: they pass the structure check and reach the analyses
        k = int(rng.choice(7, p=[0.08, 0.12, 0.04, 0.08, 0.08, 0.1, 0.5]))
        if k == 0:
            a = attrs[int(rng.integers(len(attrs)))]
            out.append((f"drop attribute {a}", drop_attr(a)))
        elif k == 1:
            a = attrs[int(rng.integers(len(attrs)))]
            v = _attr_value(rng)
            out.append((f"attribute {a} = {v!r:.40}", set_attr(a, v)))
        elif k == 2:
            v = variables[int(rng.integers(len(variables)))]
            out.append((f"drop variable {v}", drop_var(v)))
        elif k == 3:
            v = variables[int(rng.integers(len(variables)))]
            t = DTYPES[int(rng.integers(len(DTYPES)))]
            out.append((f"variable {v} as {getattr(t, '__name__', t)}", retype(v, t)))
        elif k == 4:
            v = variables[int(rng.integers(len(variables)))]
            names = list(dims)
            new = tuple(names[int(i)] for i in rng.choice(len(names), size=int(rng.integers(0, 3)), replace=False))
            out.append((f"variable {v} on {new}", redim(v, new)))
        elif k == 5:
            d = list(dims)[int(rng.integers(len(dims)))]
            n = [0, 1, max(0, dims[d] - 1), dims[d] + 1, 2 * dims[d] + 3, 10**9, 2**44][int(rng.integers(7))]
            out.append((f"dimension {d} = {n}", resize(d, n)))
        else:
            v = variables[int(rng.integers(len(variables)))]
            what, fn = _values_fn(rng)
            out.append((f"values of {v}: {what}", set_values(v, fn)))
    corrupt = int(rng.choice([0, 0, 0, 16, 256]))
    return out, corrupt


@pytest.fixture(scope="module")
def files(crafted_files):
    return crafted_files  # made once for the session (conftest.py), read only


def _names(path):
    doc = read(path)
    return sorted(doc.attrs), sorted(doc.vars), dict(doc.dims)


@pytest.mark.parametrize("which", ["shard", "sweep"])
@pytest.mark.parametrize("i", range(N_MUTANTS))
def test_reading_commands_on_mutants(files, tmp_path, which, i):
    base = files["shards"] / "c.shard-0-of-2.nc" if which == "shard" else files["sweep"]
    seed = SEED + 1000 * (which == "sweep") + i
    muts, corrupt = mutants(seed, _names(base))
    what = f"seed {seed}: " + "; ".join(d for d, _ in muts) + (f"; {corrupt} bytes overwritten" if corrupt else "")
    bad = tmp_path / "bad.nc"
    try:
        copy_with(base, bad, *(m for _, m in muts))
    except (RuntimeError, ValueError, TypeError, OverflowError, IndexError, MemoryError, AttributeError, KeyError):
        pytest.skip(f"netCDF4 cannot write this mutant ({what})")
    if corrupt:
        corrupt_bytes(bad, np.random.default_rng(seed), n=corrupt)
    cmds = commands(bad, files, tmp_path)
    rng = np.random.default_rng(seed)
    picked = ["summary"] + [list(cmds)[int(j)] for j in rng.choice(len(cmds), size=3, replace=False)]
    if which == "sweep":
        cmds["plot-sweep"] = ["plot", bad, "--kind", "sweep", "-o", tmp_path / "sw.png", "--force"]
        picked.append("plot-sweep")
    for name in dict.fromkeys(picked):
        try:
            outcome(cmds[name])
        except AssertionError as e:
            raise AssertionError(f"{name} on a mutant ({what}): {e}") from None
