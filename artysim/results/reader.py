"""Reading results: one file checked (``open_file``), or many shard files as one lazy dataset
(``open_results``, the Python entry point for notebooks).

Shards are combined without copying and without loading runs x days: each per-run variable becomes a
lazy concatenation of the shards' variables in run order (only the rows asked for are read), and the
per-day statistics are recomputed from the shards' mergeable integer counts and sums, exactly as
``artysim merge`` would write them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from artysim.errors import ResultsError
from artysim.results import schema, shards
from artysim.results.daily import derive_daily
from artysim.results.memory import available_memory
from artysim.results.structure import check as check_structure
from artysim.results.structure import human, regular_file

if TYPE_CHECKING:
    import xarray as xr


def open_file(path: str | Path, *, memory: int | None = -1) -> xr.Dataset:
    """One results file written by artysim, checked (``check_structure``) before xarray reads anything;
    anything else is refused with a clear message. The check and the dataset share one handle."""
    return _open_checked(path, memory)[0]


def _open_checked(path: str | Path, memory: int | None = -1):
    """(dataset, its netCDF4 store, its Structure): one open of the file for the check and the reading
    (a second, direct netCDF4 open of a file xarray holds made netCDF-C/HDF5 fail or crash)."""
    p = regular_file(path)  # before opening: a FIFO would block
    try:
        import xarray as xr
        from xarray.backends import NetCDF4DataStore

        store = NetCDF4DataStore.open(str(p), mode="r")
    except Exception as e:  # netCDF4/HDF5 raise a variety of errors for broken files
        detail = (str(e).splitlines() or [""])[0]
        raise ResultsError(
            f"{p}: not a readable netCDF file, truncated or damaged? ({type(e).__name__}: {detail})"
        ) from None
    try:
        st = check_structure(p, memory=memory, nc=store.ds)
        return xr.open_dataset(store, decode_timedelta=False), store, st
    except BaseException as e:
        store.close()
        if isinstance(e, ResultsError) or not isinstance(e, Exception):
            raise
        detail = (str(e).splitlines() or [""])[0]
        raise ResultsError(
            f"{p}: not a readable netCDF file, truncated or damaged? ({type(e).__name__}: {detail})"
        ) from None


@contextlib.contextmanager
def reading(what: str | Path):
    """Errors of netCDF4/HDF5 while data is read (a damaged chunk found only then) as one line naming
    ``what``; the structure was checked before, so anything else is a bug and left as it is."""
    try:
        yield
    except (OSError, RuntimeError) as e:
        if isinstance(e, RuntimeError) and "NetCDF" not in str(e) and "HDF" not in str(e):
            raise
        raise ResultsError(f"{what}: cannot read its data, damaged? ({type(e).__name__}: "
                           f"{(str(e).splitlines() or [''])[0]})") from None


def open_results(path_or_paths: str | Path | Iterable[str | Path]) -> xr.Dataset:
    """A results file, a folder of shards, a glob, or a list of those -> one checked xarray Dataset."""
    items = [path_or_paths] if isinstance(path_or_paths, (str, Path)) else list(path_or_paths)
    if not items:
        raise ResultsError("no results files given")
    if len(items) == 1 and not Path(items[0]).is_dir() and Path(items[0]).exists():
        return open_file(items[0])  # a file (a FIFO or device too: refused there, not globbed)
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

    opened = []
    try:
        for p in paths:  # each checked (check_structure) through the handle it is then read with
            opened.append(_open_checked(p, memory=None))
            st = opened[-1][2]
            if st.sweep:
                raise ResultsError(f"{p}: is a sweep file (variants of one scenario, made by artysim sweep); only "
                                   "shards of one run can be read as one, open a sweep file on its own")
        infos = shards.drop_merged([shards.ShardInfo(p, st.attrs, st.attrs["run_start"], st.attrs["run_stop"], st)
                                    for p, (_, _, st) in zip(paths, opened)])
        gaps = shards.check(infos)  # refuses mixed or overlapping shards; sorts by run range
        need = sum(i.structure.memory for i in infos)
        room = available_memory()
        if room is not None and need > room:
            raise ResultsError(f"{len(infos)} shards would need about {human(need)} of memory to read as one, but "
                               f"only {human(room)} is available; merge them (artysim merge) and read the merged "
                               "file")
    except BaseException:
        for ds, _, _ in opened:
            ds.close()
        raise
    by_path = {str(p): (ds, store) for p, (ds, store, _) in zip(paths, opened)}
    dss = [by_path[str(i.path)][0] for i in infos]
    stores = [by_path[str(i.path)][1] for i in infos]
    kept = {str(i.path) for i in infos}
    for p, (ds, _, _) in zip(paths, opened):
        if str(p) not in kept:  # a merged file left out (shards.drop_merged)
            ds.close()

    class _Backend(_ConcatRuns, BackendArray):
        pass

    first = dss[0]
    n = sum(int(d.sizes["run"]) for d in dss)
    data_vars = {}
    for d, i in zip(dss, infos):
        if "calibrated_on" in d.attrs:
            raise ResultsError(f"{i.path}: is a calibrated file (artysim calibrate); read shards as run, or "
                               "calibrate their merged file")
    for v in schema.per_run(first.dims, infos[0].attrs):
        if any(v.name not in d.variables for d in dss):
            continue  # added by a later schema than some shard's
        parts = [d[v.name].variable for d in dss]
        lazy = indexing.LazilyIndexedArray(_Backend(parts))
        data_vars[v.name] = xr.Variable(first[v.name].dims, lazy, attrs=dict(first[v.name].attrs))
    # counts are read with netCDF4, one shard at a time: xarray would keep each shard's copy cached
    stats = {v.name: np.zeros(first[v.name].shape, dtype=np.int64) for v in schema.MERGEABLE}
    for i, store in zip(infos, stores):
        with reading(i.path):
            nc = store.ds  # the handle the dataset reads through
            for v in schema.MERGEABLE:
                part = np.asarray(nc[v.name][:], dtype=np.int64)
                if part.size and part.min() < 0:
                    raise ResultsError(f"{i.path}: inconsistent artysim results file: variable {v.name} holds "
                                       f"negative counts ({int(part.min())})")
                if "bin" in v.dims and np.any(part.sum(axis=-1) != i.run_stop - i.run_start) \
                        and "partial" not in i.attrs:
                    raise ResultsError(f"{i.path}: inconsistent artysim results file: variable {v.name} does not "
                                       f"count each of its {i.run_stop - i.run_start} runs once a day")
                stats[v.name] += part
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
