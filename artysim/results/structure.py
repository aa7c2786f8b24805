"""The one check of a results file before anything reads its data.

Every reader (``reader.open_file`` behind summary, compare, plot and sensitivity; ``shards.read_info``
behind merge and ``combine_shards``) calls ``check`` first. It looks at netCDF metadata only (file type,
dimensions, variables' dimensions and dtypes, attributes and their types), refuses a file that would
need more memory to read than this process has, and only then reads the few small values that
everything downstream indexes with (quantile levels, the run and sample coordinates, per-day counts),
and the per-run counts in blocks. A file crafted to look like artysim's (attributes missing or of
the wrong type, a time dimension of 0, sample indices out of range, variables of the wrong shape or
dtype, negative counts, NaN quantile levels, arrays claiming petabytes, a FIFO named ``*.nc``) is
refused with one line naming the file and what is wrong, instead of a traceback, a hang or an
out-of-memory kill.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import netCDF4
import numpy as np

from artysim.core import bins
from artysim.errors import ResultsError
from artysim.results import schema
from artysim.results.memory import available_memory

MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n")
DIMS = ("run", "parameter", "source", "time", "quantile", "sample", "bin", "regime")
#: resident memory of a reading command before it reads any data (Python, numpy, xarray, netCDF4)
READ_BASE = 200 * 2**20
#: bytes a variable-length string element is counted as
STR_BYTES = 64
#: runs read at a time by the per-run value checks
BLOCK = 1 << 16
#: per-day histograms up to this size [bytes, uncompressed] are checked here (a horizon of 3 years)
HIST_CHECK_BYTES = 64 * 2**20


@dataclass
class Structure:
    """What ``check`` found: attributes as Python values, dimension sizes, and whether it is a sweep."""

    path: Path
    attrs: dict
    sizes: dict
    sweep: bool
    memory: int  # bytes of every variable, uncompressed
    nbytes: dict  # bytes of each variable, uncompressed


class _Bad(Exception):
    """One inconsistency, said in words; ``check`` adds the file name."""


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} PB"  # pragma: no cover


def _shown(v) -> str:
    s = repr(v.tolist() if isinstance(v, np.ndarray) else v.item() if isinstance(v, np.generic) else v)
    return s if len(s) <= 60 else s[:48] + " ..."


def regular_file(path: str | Path) -> Path:
    """Refuse what is not a regular file before opening it (a FIFO would block every reader)."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise ResultsError(f"{p}: no such file") from None
    except OSError as e:
        raise ResultsError(f"{p}: cannot read ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ResultsError(f"{p}: is a folder, expected a results .nc file")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
        raise ResultsError(f"{p}: is {kind}, expected a results .nc file")
    try:
        with open(p, "rb") as f:
            magic = f.read(8)
    except OSError as e:
        raise ResultsError(f"{p}: cannot read ({e.strerror or e})") from None
    if not magic.startswith(MAGIC):
        raise ResultsError(f"{p}: not a netCDF file (an artysim results file is netCDF-4)")
    return p


def _int(attrs: dict, name: str, lo: int | None = None, hi: int | None = None, *, required: bool = True,
         text_ok: bool = False) -> int | None:
    if name not in attrs:
        if required:
            raise _Bad(f"attribute {name} is missing")
        return None
    v = attrs[name]
    if isinstance(v, np.ndarray) and v.shape == (1,):
        v = v[0]
    if text_ok and isinstance(v, str) and v.strip().lstrip("-").isdigit() and len(v) < 30:
        v = int(v)
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise _Bad(f"attribute {name} must be an integer (found {_shown(v)})")
    v = int(v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise _Bad(f"attribute {name} = {v} is out of range "
                   f"[{'' if lo is None else lo}, {'' if hi is None else hi}]")
    return v


def _str(attrs: dict, name: str, *, required: bool = True) -> str | None:
    if name not in attrs:
        if required:
            raise _Bad(f"attribute {name} is missing")
        return None
    v = attrs[name]
    if not isinstance(v, str):
        raise _Bad(f"attribute {name} must be text (found {_shown(v)})")
    return v


def _attributes(a: dict) -> dict:
    """The attributes readers use, typed; anything of the wrong type or out of range refused."""
    out = dict(a)
    out["run_start"] = _int(a, "run_start", 0)
    out["run_stop"] = _int(a, "run_stop", 1)
    out["runs_total"] = _int(a, "runs_total", 1)
    out["shard"] = _int(a, "shard", 0)
    out["shards"] = _int(a, "shards", 1)
    out["horizon_days"] = _int(a, "horizon_days", 1)
    out["trajectory_sample"] = _int(a, "trajectory_sample", 0)
    seed = _int(a, "seed", 0, 2**63 - 1, text_ok=True)
    if not out["run_start"] < out["run_stop"] <= out["runs_total"]:
        raise _Bad(f"run range {out['run_start']}..{out['run_stop'] - 1} does not lie within runs_total "
                   f"{out['runs_total']}")
    if out["shard"] >= out["shards"]:
        raise _Bad(f"shard {out['shard']} is not below shards {out['shards']}")
    for name in ("artysim_version", "scenario_hash", "scenario_toml"):
        _str(a, name)
    for name in ("scenario_name", "scenario_file", "scenario_overrides", "missing_runs", "design",
                 "sobol_parameters", "combined_files"):
        _str(a, name, required=False)
    start = _str(a, "start_date")
    try:
        d0 = dt.date.fromisoformat(start)
    except ValueError:
        raise _Bad(f"attribute start_date is not a date YYYY-MM-DD (found {_shown(start)})") from None
    if (dt.date.max - d0).days < out["horizon_days"] - 1:
        raise _Bad(f"a horizon of {out['horizon_days']} days from {d0} ends after {dt.date.max}")
    if "shortage_threshold" in a:
        thr = a["shortage_threshold"]
        if not isinstance(thr, (float, int, np.floating, np.integer)) or isinstance(thr, (bool, np.bool_)) \
                or not 0 <= float(thr) < 1:
            raise _Bad(f"attribute shortage_threshold must be a number in [0, 1) (found {_shown(thr)})")
    for name in ("partial", "merged_from", "combined_from"):
        _int(a, name, 0, required=False)
    if a.get("design") == "sobol":
        _int(a, "sobol_n", 1)
        _int(a, "sobol_d", 0)
    out["seed"] = str(seed)
    if "calibrated_on" in a or "effective_sample_size" in a:
        _str(a, "calibrated_on")
        ess = a.get("effective_sample_size")
        if isinstance(ess, np.ndarray) and ess.shape == (1,):
            ess = ess[0]
        if isinstance(ess, (bool, np.bool_)) or not isinstance(ess, (float, int, np.floating, np.integer)) \
                or not 0 <= float(ess) < 1e300:
            raise _Bad(f"attribute effective_sample_size must be a number >= 0 (found {_shown(ess)})")
    if schema.KEPT_ATTR in a:  # [output] per_run: the per-run variables kept, known names
        kept = _str(a, schema.KEPT_ATTR).split()
        unknown = [n for n in kept if n not in schema.PER_RUN_NAMES]
        if not kept or unknown or len(set(kept)) != len(kept):
            raise _Bad(f"attribute {schema.KEPT_ATTR} is not a list of distinct per-run variables "
                       f"(found {_shown(a[schema.KEPT_ATTR])})")
    if "sweep_paths" in a:
        text = _str(a, "sweep_paths")
        try:
            paths = json.loads(text)
        except ValueError:
            raise _Bad(f"attribute sweep_paths is not a JSON list (found {_shown(text)})") from None
        if not isinstance(paths, list) or not paths or not all(isinstance(x, str) for x in paths):
            raise _Bad(f"attribute sweep_paths is not a list of scenario paths (found {_shown(text)})")
        out["sweep_paths_list"] = paths
        _int(a, "sweep_variants", 1, required=False)  # written by artysim sweep; files made by hand may lack it
    return out


def _dtype_ok(x: netCDF4.Variable, want: str) -> bool:
    if want == "str":
        return x.dtype is str
    return x.dtype is not str and np.dtype(x.dtype) == np.dtype(want)


def _itemsize(x: netCDF4.Variable) -> int:
    return STR_BYTES if x.dtype is str else np.dtype(x.dtype).itemsize


def _variables(nc: netCDF4.Dataset, a: dict, sizes: dict, sweep: bool) -> None:
    ver = _int(a, "artysim_schema_version", 1)
    expected: list[schema.Var] = [c for c in schema.COORDS
                                  if not (c.optional and not all(d in sizes for d in c.dims))]
    expected += schema.per_run(sizes, a) + schema.PER_DAY + schema.MERGEABLE
    expected = [v for v in expected if v.since <= ver]  # older files lack what later schemas added
    if "weight" in nc.variables or "calibrated_on" in a:
        expected.append(schema.WEIGHT)
        if "observation" not in sizes:
            raise _Bad("a weight variable (calibrated) without observations")
    missing = [v.name for v in expected if v.name not in nc.variables]
    if missing:
        raise ResultsError(f"incomplete artysim results file (missing {', '.join(missing[:5])})")
    for v in expected:
        x = nc.variables[v.name]
        dims = tuple(x.dimensions)
        if dims != v.dims and not (sweep and dims == ("variant",) + v.dims):
            raise _Bad(f"variable {v.name} has dimensions {dims}, expected {v.dims}")
        if not _dtype_ok(x, v.dtype):
            raise _Bad(f"variable {v.name} has type {x.dtype if x.dtype is str else np.dtype(x.dtype)}, "
                       f"expected {v.dtype}")
    if sweep:
        for k in range(len(a["sweep_paths_list"])):
            name = f"vary_{k}"
            if name not in nc.variables or tuple(nc.variables[name].dimensions) != ("variant",):
                raise _Bad(f"sweep file without a variable {name}(variant)")
            if nc.variables[name].dtype is not str and np.dtype(nc.variables[name].dtype).kind not in "fiu":
                raise _Bad(f"variable {name} has type {nc.variables[name].dtype}, expected numbers or strings "
                           "(the values varied)")
            if not isinstance(getattr(nc.variables[name], "path", None), str):
                raise _Bad(f"variable {name} has no text attribute path (the scenario path varied)")


def _memory(nc: netCDF4.Dataset, path: Path, memory: int | None) -> dict:
    """Bytes of every variable uncompressed; refuse what cannot be read in the memory available (a whole
    variable, or one compressed chunk of it, which HDF5 inflates whole however little is asked for)."""
    total = 0
    biggest = ("", 0)
    each = {}
    for name, x in nc.variables.items():
        n = _itemsize(x) * int(np.prod([int(s) for s in x.shape], dtype=object))
        each[name] = n
        total += n
        if n > biggest[1]:
            biggest = (name, n)
        chunks = x.chunking()
        if isinstance(chunks, list):
            c = _itemsize(x) * int(np.prod([int(s) for s in chunks], dtype=object))
            if memory is not None and c > memory:
                raise ResultsError(f"{path}: one chunk of variable {name} holds {human(c)}, more than the "
                                   f"{human(memory)} of memory available; damaged or not written by artysim?")
    if memory is not None and READ_BASE + total > memory:
        raise ResultsError(f"{path}: reading it would need about {human(READ_BASE + total)} of memory "
                           f"({biggest[0]} alone {human(biggest[1])}), but only {human(memory)} is available; "
                           f"read it on a larger machine (or it claims sizes it does not hold: damaged?)")
    return each


def _rows_equal(x, want: np.ndarray) -> bool:
    """Each row of ``x`` (one per variant in a sweep file) equals ``want``."""
    x = np.asarray(x)
    return x.shape[-1:] == want.shape and bool(np.all(x == want))


def _values(nc: netCDF4.Dataset, a: dict, sizes: dict) -> None:
    """The few values everything downstream indexes with, and every count, checked."""
    nc.set_auto_mask(False)
    T = sizes["time"]
    q = np.asarray(nc["quantile"][:], dtype=np.float64)
    if not (np.all(np.isfinite(q)) and np.all((q > 0) & (q < 1)) and np.all(np.diff(q) > 0)):
        raise _Bad(f"quantile levels {_shown(q)} are not increasing numbers strictly between 0 and 1")
    if nc["quantile"].size != sizes["quantile"]:  # pragma: no cover - netCDF keeps them equal
        raise _Bad("quantile coordinate does not match its dimension")
    if not _rows_equal(nc["time"][:], np.arange(T)):
        raise _Bad(f"time coordinate is not the days 0..{T - 1}")
    lo_edges, hi_edges = bins.bin_edges()
    if not (_rows_equal(nc["bin"][:], lo_edges) and _rows_equal(nc["bin_upper"][:], hi_edges)):
        raise _Bad("bin edges are not artysim's")
    for name in ("source", "regime", "parameter") + (("component",) if "component" in sizes else ()):
        labels = [str(x) for x in np.asarray(nc[name][:], dtype=object).ravel()]
        if len(set(labels)) != len(labels) or not all(labels):
            raise _Bad(f"{name} labels {_shown(labels)} are not distinct names")
    sample = np.asarray(nc["sample"][:], dtype=np.int64)
    top = min(a["trajectory_sample"], a["runs_total"])
    if len(sample) and (sample.min() < 0 or sample.max() >= top or np.any(np.diff(sample) <= 0)):
        raise _Bad(f"sample run indices {_shown(sample)} are not increasing runs in 0..{top - 1}")
    n = sizes["run"]
    lo, hi = a["run_start"], a["run_stop"]
    prev = lo - 1
    for i0 in range(0, n, BLOCK):
        r = np.asarray(nc["run"][i0:i0 + BLOCK], dtype=np.int64)
        if len(r) and (r[0] <= prev or np.any(np.diff(r) <= 0) or r[-1] >= hi):
            raise _Bad(f"run indices are not increasing runs within its run range {lo}..{hi - 1}")
        prev = int(r[-1]) if len(r) else prev
    for v in schema.per_run_of_attrs(a) + (schema.COMPONENTS if "component" in sizes else []):
        if np.dtype(v.dtype).kind != "i" or v.name not in nc.variables:  # absent: an older schema's file
            continue
        floor = v.fill if v.fill is not None else 0
        x = nc[v.name]
        at = x.dimensions.index("run")
        for i0 in range(0, n, BLOCK):
            block = np.asarray(x[tuple(slice(i0, i0 + BLOCK) if k == at else slice(None) for k in range(x.ndim))])
            if block.size and block.min() < floor:
                raise _Bad(f"variable {v.name} holds negative counts ({int(block.min())})")
            if v.name in ("first_shortage_day", "shortage_days", "rationed_days") and block.size \
                    and block.max() > T:
                raise _Bad(f"variable {v.name} holds {int(block.max())} days, beyond the horizon of {T}")
    partial = "partial" in a
    for v in schema.MERGEABLE:
        if "bin" in v.dims:
            x = nc[v.name]
            if x.size * 8 > HIST_CHECK_BYTES:
                continue  # long horizons: checked where they are read (merge, combine_shards)
            at = x.dimensions.index("time")
            for t0 in range(0, T, 1024):
                block = np.asarray(x[tuple(slice(t0, t0 + 1024) if k == at else slice(None) for k in range(x.ndim))])
                if block.size and block.min() < 0:
                    raise _Bad(f"variable {v.name} holds negative counts ({int(block.min())})")
                if not partial and block.size and np.any(block.sum(axis=-1) != n):
                    raise _Bad(f"variable {v.name} does not count each of its {n} runs once a day")
            continue
        vals = np.asarray(nc[v.name][:])
        if vals.size and vals.min() < 0:
            raise _Bad(f"variable {v.name} holds negative counts ({int(vals.min())})")
        if v.name in ("n_short", "n_first_short") and vals.size and vals.max() > n:
            raise _Bad(f"variable {v.name} counts {int(vals.max())} runs, more than the file's {n}")


def check(path: str | Path, *, memory: int | None = -1, values: bool = True, nc=None) -> Structure:
    """Check a results file's structure against ``schema`` before reading it; ``memory`` is what may be
    used [bytes] (-1: what this machine has now, None: no limit); ``values`` also checks the small
    values and the counts; ``nc``: a netCDF4 handle of the file already open (xarray's, which
    ``reader.open_file`` checks and then reads through: opening the file a second time directly with
    netCDF4 while xarray held it crashed netCDF-C/HDF5 in a later open). Raises ResultsError naming the
    file and the first thing that is wrong."""
    p = regular_file(path)
    if nc is not None:
        return _check(p, nc, memory, values)
    try:
        nc = netCDF4.Dataset(p)
    except Exception as e:  # netCDF4/HDF5 raise a variety of errors for broken files
        detail = (str(e).splitlines() or [""])[0]
        raise ResultsError(
            f"{p}: not a readable netCDF file, truncated or damaged? ({type(e).__name__}: {detail})"
        ) from None
    with nc:
        return _check(p, nc, memory, values)


def _check(p: Path, nc, memory, values) -> Structure:
    try:
        try:
            a = {k: nc.getncattr(k) for k in nc.ncattrs()}
        except Exception as e:  # an attribute of a type netCDF4 cannot decode
            raise _Bad(f"unreadable attributes ({type(e).__name__}: {(str(e).splitlines() or [''])[0]})") \
                from None
        if "artysim_schema_version" not in a:
            raise ResultsError(f"{p}: not an artysim results file (no artysim_schema_version attribute)")
        ver = _int(a, "artysim_schema_version", 1)
        if ver > schema.SCHEMA_VERSION:
            raise ResultsError(f"{p}: written with results schema {ver}, newer than this artysim understands "
                               f"({schema.SCHEMA_VERSION}); upgrade artysim")
        if nc.groups:
            raise _Bad(f"groups {sorted(nc.groups)[:3]} (artysim writes none)")
        a = _attributes(a)
        sizes = {d: len(x) for d, x in nc.dimensions.items()}
        sweep = "sweep_paths" in a
        for d in DIMS + (("variant",) if sweep else ()):
            if d not in sizes:
                raise _Bad(f"dimension {d} is missing")
        if sizes["time"] != a["horizon_days"]:
            raise _Bad(f"time dimension of {sizes['time']} days, but horizon_days = {a['horizon_days']}")
        for d in ("quantile", "source", "regime") + (("component",) if "component" in sizes else ()):
            if sizes[d] < 1:
                raise _Bad(f"{d} dimension of 0")
        if sizes["bin"] != bins.NBINS:
            raise _Bad(f"bin dimension of {sizes['bin']}, expected {bins.NBINS}")
        span = a["run_stop"] - a["run_start"]
        if not 1 <= sizes["run"] <= span or ("partial" not in a and sizes["run"] != span):
            raise _Bad(f"run dimension of {sizes['run']} for its run range {a['run_start']}.."
                       f"{a['run_stop'] - 1} ({span} runs)")
        if sizes["sample"] > min(a["trajectory_sample"], a["runs_total"]):
            raise _Bad(f"sample dimension of {sizes['sample']}, more than its trajectory_sample "
                       f"{a['trajectory_sample']} or runs_total {a['runs_total']}")
        if sweep and "sweep_variants" in a and sizes["variant"] != a["sweep_variants"]:
            raise _Bad(f"variant dimension of {sizes['variant']}, but sweep_variants = {a['sweep_variants']}")
        try:
            _variables(nc, a, sizes, sweep)
        except ResultsError as e:
            raise ResultsError(f"{p}: {e}") from None
        mem = available_memory() if memory == -1 else memory
        each = _memory(nc, p, mem)
        if values:
            try:
                _values(nc, a, sizes)
            except (OSError, RuntimeError, ValueError, IndexError) as e:
                raise ResultsError(f"{p}: cannot read its data, damaged? ({type(e).__name__}: "
                                   f"{(str(e).splitlines() or [''])[0]})") from None
    except _Bad as e:
        raise ResultsError(f"{p}: inconsistent artysim results file: {e}") from None
    return Structure(p, a, sizes, sweep, sum(each.values()), each)
