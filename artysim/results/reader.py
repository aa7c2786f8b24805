"""Reading results: one file checked (``open_file``), or many shard files as one lazy dataset
(``open_results``, the Python entry point for notebooks).

Shards are combined without copying and without loading runs x days: each per-run variable becomes a
lazy concatenation of the shards' variables in run order (only the rows asked for are read), and the
per-day statistics are recomputed from the shards' mergeable integer counts and sums, exactly as
``artysim merge`` would write them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import netCDF4
import numpy as np

from artysim.errors import ResultsError
from artysim.results import schema, shards
from artysim.results.daily import derive_daily

if TYPE_CHECKING:
    import xarray as xr


def open_file(path: str | Path) -> xr.Dataset:
    """One results file written by artysim, checked; anything else is refused with a clear message."""
    p = Path(path)
    if not p.exists():
        raise ResultsError(f"{p}: no such file")
    if p.is_dir():
        raise ResultsError(f"{p}: is a folder, expected a results .nc file")
    try:
        with open(p, "rb") as f:
            magic = f.read(8)
    except OSError as e:
        raise ResultsError(f"{p}: cannot read ({e.strerror or e})") from None
    if not magic.startswith((b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n")):
        raise ResultsError(f"{p}: not a netCDF file (an artysim results file is netCDF-4)")
    try:
        import xarray as xr

        ds = xr.open_dataset(p, decode_timedelta=False)
    except Exception as e:  # netCDF4/HDF5 raise a variety of errors for broken files
        detail = (str(e).splitlines() or [""])[0]
        raise ResultsError(
            f"{p}: not a readable netCDF file, truncated or damaged? ({type(e).__name__}: {detail})"
        ) from None
    if "artysim_schema_version" not in ds.attrs:
        ds.close()
        raise ResultsError(f"{p}: not an artysim results file (no artysim_schema_version attribute)")
    ver = int(ds.attrs["artysim_schema_version"])
    if ver > schema.SCHEMA_VERSION:
        ds.close()
        raise ResultsError(
            f"{p}: written with results schema {ver}, newer than this artysim understands "
            f"({schema.SCHEMA_VERSION}); upgrade artysim"
        )
    missing = [v.name for v in schema.ALL if v.name not in ds.variables]
    if missing:
        ds.close()
        raise ResultsError(f"{p}: incomplete artysim results file (missing {', '.join(missing[:5])})")
    return ds


def open_results(path_or_paths: str | Path | Iterable[str | Path]) -> xr.Dataset:
    """A results file, a folder of shards, a glob, or a list of those -> one checked xarray Dataset."""
    items = [path_or_paths] if isinstance(path_or_paths, (str, Path)) else list(path_or_paths)
    if not items:
        raise ResultsError("no results files given")
    if len(items) == 1 and Path(items[0]).is_file():
        return open_file(items[0])
    for x in items:
        if Path(x).is_dir() and not any(Path(x).glob("*.nc")):
            raise ResultsError(f"{x}: folder holds no .nc results files")
    paths = shards.expand([str(x) for x in items])
    if len(paths) == 1:
        return open_file(paths[0])
    return combine_shards(paths)


class _ConcatRuns:
    """Rows of one per-run variable across shards, read on demand (an xarray BackendArray)."""

    def __init__(self, parts: list):
        self.parts = parts
        self.sizes = np.array([p.shape[0] for p in parts], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)])
        self.shape = (int(self.offsets[-1]),) + tuple(parts[0].shape[1:])
        self.dtype = parts[0].dtype

    def __getitem__(self, key):
        from xarray.core import indexing

        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC, self._read)

    def _read(self, key: tuple):
        k0, rest = key[0], tuple(key[1:])
        if isinstance(k0, (int, np.integer)):
            j = int(np.searchsorted(self.offsets, k0, side="right") - 1)
            return np.asarray(self.parts[j][(int(k0) - int(self.offsets[j]),) + rest].values)
        idx = np.arange(self.shape[0])[k0]
        out = []
        for j, p in enumerate(self.parts):
            a, b = int(self.offsets[j]), int(self.offsets[j + 1])
            mine = idx[(idx >= a) & (idx < b)] - a
            if len(mine) == 0:
                continue
            lo, hi = int(mine.min()), int(mine.max()) + 1
            block = np.asarray(p[(slice(lo, hi),) + rest].values)
            out.append((idx[(idx >= a) & (idx < b)], block[mine - lo]))
        if not out:
            return np.empty((0,) + tuple(self._rest_shape(rest)), dtype=self.dtype)
        pos = np.concatenate([o[0] for o in out])
        vals = np.concatenate([o[1] for o in out])
        order = np.argsort(np.argsort(idx, kind="stable"), kind="stable")  # back to the requested order
        return vals[np.argsort(pos, kind="stable")][order]

    def _rest_shape(self, rest: tuple) -> list[int]:
        shape = []
        for k, n in zip(rest, self.shape[1:]):
            if isinstance(k, slice):
                shape.append(len(range(*k.indices(n))))
        return shape


def combine_shards(paths: list[Path]) -> xr.Dataset:
    """Shards of one job (checked like ``merge``) as one dataset; missing shards are named in attrs."""
    import xarray as xr
    from xarray.backends import BackendArray
    from xarray.core import indexing

    infos = [shards.read_info(p) for p in paths]
    for i in infos:
        if "sweep_paths" in i.attrs:
            raise ResultsError(f"{i.path.name} is a sweep file; sweep files cannot be read as shards of one run, "
                               "open one at a time")
    gaps = shards.check(infos)  # refuses mixed or overlapping shards; sorts by run range
    dss = [open_file(i.path) for i in infos]

    class _Backend(_ConcatRuns, BackendArray):
        pass

    first = dss[0]
    n = sum(int(d.sizes["run"]) for d in dss)
    data_vars = {}
    for v in schema.PER_RUN:
        parts = [d[v.name].variable for d in dss]
        lazy = indexing.LazilyIndexedArray(_Backend(parts))
        data_vars[v.name] = xr.Variable(first[v.name].dims, lazy, attrs=dict(first[v.name].attrs))
    # counts are read with netCDF4, one shard at a time: xarray would keep each shard's copy cached
    stats = {v.name: np.zeros(first[v.name].shape, dtype=np.int64) for v in schema.MERGEABLE}
    for i in infos:
        with netCDF4.Dataset(i.path) as nc:
            nc.set_auto_mask(False)
            for v in schema.MERGEABLE:
                stats[v.name] += np.asarray(nc[v.name][:], dtype=np.int64)
    for v in schema.MERGEABLE:
        data_vars[v.name] = xr.Variable(first[v.name].dims, stats[v.name], attrs=dict(first[v.name].attrs))
    qs = np.asarray(first["quantile"].values, dtype=np.float64)
    for name, val in derive_daily(stats, qs, n).items():
        data_vars[name] = xr.Variable(first[name].dims, val, attrs=dict(first[name].attrs))
    samples = [d for d in dss if d.sizes["sample"]]
    sample_idx = np.concatenate([d["sample"].values for d in samples]) if samples else np.zeros(0, np.int64)
    order = np.argsort(sample_idx, kind="stable")
    for name in ("stock_sample", "fired_sample"):
        if samples:
            val = np.concatenate([d[name].values for d in samples])[order]
        else:
            val = np.zeros((0, first.sizes["time"]), dtype=first[name].dtype)
        data_vars[name] = xr.Variable(first[name].dims, val, attrs=dict(first[name].attrs))
    coords = {c: first[c].variable for c in first.coords if "run" not in first[c].dims and c != "sample"}
    coords["run"] = xr.Variable(("run",), np.concatenate([d["run"].values for d in dss]),
                                attrs=dict(first["run"].attrs))
    coords["sample"] = xr.Variable(("sample",), sample_idx[order], attrs=dict(first["sample"].attrs))
    for name in first.data_vars:  # other run-free variables (source_kind, parameter_units, bin_upper, ...)
        if name not in data_vars and "run" not in first[name].dims:
            data_vars[name] = first[name].variable
    attrs = dict(first.attrs)
    runs = coords["run"].values
    attrs.update(run_start=int(runs.min()), run_stop=int(runs.max()) + 1, shard=0, shards=1,
                 combined_from=len(dss), combined_files="\n".join(str(i.path) for i in infos))
    if gaps:
        attrs["partial"] = 1
        attrs["missing_runs"] = shards.describe_gaps(gaps, infos)
    ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    ds.set_close(lambda: [d.close() for d in dss])
    return ds
