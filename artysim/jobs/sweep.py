"""``artysim sweep``: a grid of scenario variants run with common random numbers into one file.

Every variant is run by the ordinary runner with the same seed, so run *i* of each variant faces the
same random inputs and differences between variants are the varied values' doing, run by run. The
variants are written to a temporary folder beside the output, then combined variable by variable
into one netCDF file with a leading ``variant`` dimension on the variables that differ, and renamed
into place: no half-written file is ever left, and memory stays bounded by a block of runs.

File contract (plots rely on it): every variable of a single-run file keeps its name; those that
differ by variant get ``variant`` as an extra leading dimension; coordinate ``variant`` = 0..V-1;
``variant_label(variant)`` strings like ``"source.north_korea.available=2e6, demand.base=20000"``;
``vary_<k>(variant)`` float values of the k-th varied path (k = 0, 1, ... in --vary order) with
attribute ``path``; global attribute ``sweep_paths`` (JSON list of the paths). ``ds.isel(variant=i)``
is a valid single-scenario results dataset.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import netCDF4
import numpy as np
import tomllib

from artysim.errors import ArtysimError, ResultsError
from artysim.jobs import run as runner
from artysim.jobs.bundled import resolve
from artysim.model.base import shorten
from artysim.model.load import Loaded, load
from artysim.model.scenario import _toml
from artysim.results.atomic import AtomicFile, DeferSignals, TempDir, check_target
from artysim.results.writer import COMPRESSION, RUN_CHUNK


@dataclass(frozen=True)
class Vary:
    path: str
    texts: tuple[str, ...]  # the values as the user wrote them (for --set and labels)
    values: tuple[float | str, ...]  # numbers as floats; words, distributions and schedules as written

    @property
    def numeric(self) -> bool:
        """Whether every value is a number (the file's ``vary_<k>`` is then f8, else strings)."""
        return all(isinstance(v, float) for v in self.values)


#: a value that is not TOML but may stand as a word (``proportional``), as ``--set`` takes it
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-.:]*")


def split_values(rhs: str) -> list[str]:
    """``a,{ dist = "uniform", low = 1, high = 2 },[1, 2]`` -> its values: commas inside braces,
    brackets or quotes do not separate (iterative: a value may nest deeper than the stack)."""
    out, depth, quote, start, escaped = [], 0, "", 0, False
    for i, c in enumerate(rhs):
        if quote:
            if c == "\\" and quote == '"':
                escaped = not escaped
                continue
            if c == quote and not escaped:
                quote = ""
            escaped = False
        elif c in "\"'":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth = max(0, depth - 1)
        elif c == "," and depth == 0:
            out.append(rhs[start:i].strip())
            start = i + 1
    out.append(rhs[start:].strip())
    return out


def _value(path: str, t: str) -> float | str:
    """One --vary value: a number (float), or the text of a word, distribution or schedule."""
    if not t:
        raise ArtysimError(f"--vary {shorten(path)}: an empty value (two commas in a row?)")
    try:
        v = _toml(f"v = {t}")["v"]
    except tomllib.TOMLDecodeError:
        if _WORD.fullmatch(t):
            return t  # a bare word, as --set takes it (policy.issue=priority)
        raise ArtysimError(f"--vary {shorten(path)}: expected numbers, words or TOML values such as "
                           f"{{ dist = \"uniform\", low = 1, high = 2 }} separated by commas, found "
                           f"{shorten(t)!r}") from None
    except ValueError as e:  # nested deeper than a scenario may be
        raise ArtysimError(f"--vary {shorten(path)}: {shorten(t)!r}: {e}") from None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if not math.isfinite(v):
            raise ArtysimError(f"--vary {shorten(path)}: expected finite values, found {shorten(t)!r}")
        return float(v)
    return t  # a string, a boolean, a distribution table or a schedule: the scenario's checks judge it


def parse_vary(items: list[str]) -> list[Vary]:
    """``path=v1,v2,...`` -> Vary. Values are numbers (TOML syntax: 2e6, 20_000, 0.3), words
    (``policy.issue=proportional,priority``) or TOML values such as distribution tables
    (``source.x.dud_rate=0.1,{ dist = "beta", mean = 0.2, concentration = 20 }``)."""
    if not items:
        raise ArtysimError("sweep needs at least one --vary PATH=V1,V2,...")
    out: list[Vary] = []
    for item in items:
        if "=" not in item:
            raise ArtysimError(f"--vary {shorten(item)!r}: expected PATH=V1,V2,... (e.g. demand.base=15000,20000)")
        path, rhs = (x.strip() for x in item.split("=", 1))
        if not path:
            raise ArtysimError(f"--vary {shorten(item)!r}: empty path")
        texts = tuple(split_values(rhs))
        values = tuple(_value(path, t) for t in texts)
        keys = [repr(v) if isinstance(v, float) else " ".join(v.split()) for v in values]
        if len(set(keys)) != len(keys):
            raise ArtysimError(f"--vary {shorten(path)}: a value is repeated ({shorten(rhs)})")
        if any(v.path == path for v in out):
            raise ArtysimError(f"--vary {shorten(path)}: the same path is varied twice")
        out.append(Vary(path, texts, values))
    return out


@dataclass
class Variant:
    index: int
    label: str
    sets: list[str]
    values: tuple[float | str, ...]
    loaded: Loaded


def plan(scenario_path: str, varies: list[Vary], sets: list[str]) -> list[Variant]:
    """Every variant of the grid (first --vary slowest), each validated before any work."""
    src = resolve(scenario_path)
    variants = []
    for i, combo in enumerate(itertools.product(*[range(len(v.values)) for v in varies])):
        extra = [f"{v.path}={v.texts[j]}" for v, j in zip(varies, combo)]
        try:
            loaded = load(src, list(sets) + extra, flags=["--set"] * len(sets) + ["--vary"] * len(extra))
        except ArtysimError as e:
            if str(e).startswith(("--vary ", "--set ")):  # blamed on the value that brought it
                raise
            raise type(e)(f"--vary {shorten(', '.join(extra), 200)}: {e}") from None
        variants.append(Variant(i, ", ".join(extra), list(sets) + extra,
                                tuple(v.values[j] for v, j in zip(varies, combo)), loaded))
    first = variants[0].loaded.model
    params = tuple(first.params[i].path for i in first.sampled)
    for x in variants[1:]:
        m = x.loaded.model
        if tuple(m.params[i].path for i in m.sampled) != params:
            raise ArtysimError(f"variant {x.label} samples different parameters than {variants[0].label}; "
                               "a sweep varies values, not which inputs are random")
    return variants


def _units(loaded: Loaded, path: str) -> str:
    for p in loaded.model.params:
        if p.path == path:
            return p.unit
    return "1"


def run_sweep(scenario_path: str, vary_items: list[str], output: str | Path, *, runs: int | None = None,
              seed: int | None = None, sets: list[str] | None = None, threads: int | None = None,
              force: bool = False, quiet: bool = False,
              on_variant: Callable[[Variant, int], None] | None = None, resource_check: bool = True) -> Path:
    """Run the grid and write one sweep file; returns its path."""
    out = Path(output)
    varies = parse_vary(list(vary_items))
    check_target(out, force)
    variants = plan(scenario_path, varies, list(sets or []))
    the_seed = variants[0].loaded.scenario.run.seed if seed is None else seed
    # SIGINT/SIGTERM between variants or while combining: noted, acted on at the next check (each
    # variant's own writer defers them while it writes), and the temporary folder removed
    with DeferSignals() as signals:
        try:  # a short name: a legal 248-byte output name must not make an illegal temporary one
            tmp = TempDir(out.parent, purpose=f"sweep into {out.name}")
        except OSError as e:
            raise ResultsError(f"{out}: cannot write in {out.parent}: {e.strerror or e}") from None
        try:
            files = []
            for v in variants:
                signals.check()
                if on_variant:
                    on_variant(v, len(variants))
                signals.check()
                f = tmp.dir / f"variant-{v.index}.nc"
                runner.run_loaded(v.loaded, runs=runs, seed=the_seed, output=f, threads=threads, quiet=quiet,
                                  resource_check=resource_check)
                files.append(f)
            signals.check()
            base = load(resolve(scenario_path), list(sets or []))
            combine(files, variants, varies, out, force=force, base=base, check=signals.check)
        finally:
            tmp.discard()
    return out


def _same(a: netCDF4.Variable, b: netCDF4.Variable) -> bool:
    """Whether two variables hold the same values, read a block of runs at a time."""
    if a.shape != b.shape or a.dimensions != b.dimensions:
        return False
    if a.ndim == 0:
        return bool(np.array_equal(a[...], b[...]))
    n = a.shape[0]
    step = RUN_CHUNK if a.dimensions[0] == "run" else max(n, 1)
    for i0 in range(0, n, step):
        x, y = a[i0:i0 + step], b[i0:i0 + step]
        if x.dtype.kind == "f":
            if not np.array_equal(x, y, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def combine(files: list[Path], variants: list[Variant], varies: list[Vary], out: Path, *, force: bool,
            base: Loaded, check: Callable[[], None] = lambda: None) -> Path:
    """Variant files -> one file with a leading ``variant`` dimension where values differ (atomic);
    ``check`` is called between blocks (it raises KeyboardInterrupt on a signal noted meanwhile)."""
    tmp = AtomicFile(out, force=force)
    srcs: list[netCDF4.Dataset] = []
    try:
        for f in files:
            srcs.append(netCDF4.Dataset(f))
        for s in srcs:
            s.set_auto_maskandscale(False)
        s0 = srcs[0]
        for s in srcs[1:]:
            for name, d in s0.dimensions.items():
                if s.dimensions[name].size != d.size:
                    raise ResultsError(f"variants differ in the size of dimension {name}; cannot combine them")
        V = len(srcs)
        with netCDF4.Dataset(tmp.path, "w", format="NETCDF4") as dst:
            for name, d in s0.dimensions.items():
                dst.createDimension(name, d.size)
            dst.createDimension("variant", V)
            v = dst.createVariable("variant", "i4", ("variant",))
            v.long_name = "index of the sweep variant (see variant_label)"
            v.units = "1"
            v[:] = np.arange(V, dtype=np.int32)
            v = dst.createVariable("variant_label", str, ("variant",))
            v.long_name = "the scenario values of this variant (path=value, ...)"
            for x in variants:
                v[x.index] = x.label
            for k, vy in enumerate(varies):
                if vy.numeric:
                    v = dst.createVariable(f"vary_{k}", "f8", ("variant",))
                    v.units = _units(variants[0].loaded, vy.path)
                    v[:] = np.array([x.values[k] for x in variants], dtype=np.float64)
                else:  # words, distributions, schedules: the values as written (TOML text)
                    v = dst.createVariable(f"vary_{k}", str, ("variant",))
                    for x in variants:
                        v[x.index] = x.sets[len(x.sets) - len(varies) + k].split("=", 1)[1]
                v.long_name = f"value of {vy.path} in each variant"
                v.setncattr("path", vy.path)
            v = dst.createVariable("variant_scenario_hash", str, ("variant",))
            v.long_name = "scenario_hash of each variant (the scenario with its overrides)"
            for x in variants:
                v[x.index] = x.loaded.hash
            for name, var in s0.variables.items():
                _copy_var(name, var, srcs, dst, check)
            attrs = {k: s0.getncattr(k) for k in s0.ncattrs()}
            now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
            attrs.update({
                "title": f"artysim sweep: {attrs.get('scenario_name')}",
                "history": f"{now} {' '.join([Path(sys.argv[0]).name] + sys.argv[1:])}",
                "scenario_overrides": "\n".join(base.overrides),
                "scenario_hash": base.hash,
                "sweep_paths": json.dumps([vy.path for vy in varies]),
                "sweep_variants": V,
                "comment": (str(attrs.get("comment", "")) + " | sweep over " + ", ".join(
                    f"{vy.path} in ({', '.join(vy.texts)})" for vy in varies)).lstrip(" |"),
            })
            for k, val in attrs.items():
                dst.setncattr(k, val)
        check()
    except BaseException as e:
        tmp.discard()
        if isinstance(e, OSError) or (isinstance(e, RuntimeError) and "NetCDF" in str(e)):  # full disk, quota
            free = shutil.disk_usage(out.parent).free if out.parent.exists() else None
            hint = f" ({free // 1024} KiB free: disk full?)" if free is not None and free < 64 * 2**20 else ""
            raise ResultsError(f"{out}: could not write the sweep file while combining its variants: "
                               f"{getattr(e, 'strerror', None) or str(e).splitlines()[0]}{hint}; "
                               "no partial file was kept") from None
        raise
    finally:
        for s in srcs:
            s.close()
    return tmp.commit()


def _copy_var(name: str, var: netCDF4.Variable, srcs: list, dst: netCDF4.Dataset, check) -> None:
    differs = any(not _same(var, s[name]) for s in srcs[1:])
    dims = (("variant",) if differs else ()) + var.dimensions
    is_str = var.dtype is str
    kw: dict = {}
    attrs = {k: var.getncattr(k) for k in var.ncattrs()}
    fill = attrs.pop("_FillValue", None)
    if not is_str:
        filters = var.filters() or {}
        if filters.get("zlib"):
            kw.update(COMPRESSION)
        chunking = var.chunking()
        if chunking != "contiguous" and chunking is not None:
            kw["chunksizes"] = ((1,) if differs else ()) + tuple(max(1, c) for c in chunking)
        elif differs and var.ndim:
            kw["chunksizes"] = (1,) + tuple(max(1, s) for s in var.shape)
        kw["fill_value"] = fill if fill is not None else False
    x = dst.createVariable(name, str if is_str else var.dtype, dims, **kw)
    if not is_str and var.ndim:
        nbytes = int(np.prod([c for c in kw.get("chunksizes", var.shape)])) * var.dtype.itemsize
        x.set_var_chunk_cache(size=max(2 * nbytes, 1 << 16), nelems=7, preemption=1.0)
    x.setncatts(attrs)
    x.set_auto_maskandscale(False)
    sources = srcs if differs else srcs[:1]
    for i, s in enumerate(sources):
        src = s[name]
        if is_str:
            vals = src[...]
            if differs:
                x[i, ...] = vals
            else:
                x[...] = vals
            continue
        if src.ndim == 0:
            x[...] = src[...]
            continue
        n = src.shape[0]
        step = RUN_CHUNK if src.dimensions[0] == "run" else max(n, 1)
        for i0 in range(0, n, step):
            check()
            block = src[i0:i0 + step]
            if differs:
                x[i, i0:i0 + step] = block
            else:
                x[i0:i0 + step] = block
