"""netCDF results: incremental, atomic writing (CF-1.9) and checked reading.

Per-run variables are written batch by batch straight into a temporary file beside the target,
so memory never holds a runs x days array nor the whole file twice; the file is renamed into place
only when complete. Per-day statistics are derived from mergeable integer counts that are stored
alongside them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import netCDF4
import numpy as np

from artysim.core import bins
from artysim.errors import ResultsError
from artysim.results import schema
from artysim.results.atomic import AtomicFile, DeferSignals, check_target
from artysim.results.daily import derive_daily, mergeable
from artysim.version import __version__

RUN_CHUNK = 1 << 16
COMPRESSION = {"zlib": True, "complevel": 1, "shuffle": True}

class ResultsWriter:
    """Writes one results file; use as a context manager (removes the partial file on failure)."""

    def __init__(self, path: str | Path, *, force: bool, model, loaded, seed: int, run_start: int,
                 run_stop: int, runs_total: int, shard: int = 0, shards: int = 1, command: str = "",
                 run_index: np.ndarray | None = None, sample_runs: np.ndarray | None = None,
                 extra_attrs: dict | None = None):
        """``run_index``/``sample_runs`` default to the contiguous runs [run_start, run_stop) and the
        sampled runs among them; a partial merge passes the runs it really holds."""
        self.path = Path(path)
        check_target(self.path, force)
        self.force = force
        self.model = model
        self.loaded = loaded
        self.seed = seed
        self.run_start = run_start
        self.run_stop = run_stop
        self.runs_total = runs_total
        self.shard = shard
        self.shards = shards
        self.command = command
        # contiguous runs are not materialised (10^7 runs would cost 80 MB for nothing)
        self.run_index = None if run_index is None else np.asarray(run_index, dtype=np.int64)
        self.n_runs = run_stop - run_start if run_index is None else len(self.run_index)
        if sample_runs is None:
            if self.run_index is None:
                sample_runs = np.arange(run_start, max(run_start, min(run_stop, model.n_sample)), dtype=np.int64)
            else:
                sample_runs = self.run_index[self.run_index < model.n_sample]
        self.sample_runs = np.asarray(sample_runs, dtype=np.int64)
        self.extra_attrs = dict(extra_attrs or {})
        self.per_run = schema.per_run_kept(model)
        if len(self.per_run) < len(schema.PER_RUN):
            self.extra_attrs[schema.KEPT_ATTR] = " ".join(v.name for v in self.per_run)
        self.tmp: AtomicFile | None = None
        self.nc: netCDF4.Dataset | None = None
        self._signals = DeferSignals()

    # -- lifecycle
    def __enter__(self) -> ResultsWriter:
        self._signals.__enter__()
        try:
            self.tmp = AtomicFile(self.path, force=self.force)
            self.nc = netCDF4.Dataset(self.tmp.path, "w", format="NETCDF4")
            self._define()
        except BaseException as e:
            self._discard()
            self._signals.__exit__(type(e), e, None)
            err = self._write_error(e)
            if err is not None:
                raise err from None
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is not None:
                self._discard()
                err = self._write_error(exc)
                if err is not None:
                    raise err from None
        finally:
            self._signals.__exit__(exc_type, exc, tb)
        return False

    def _write_error(self, exc: BaseException) -> ResultsError | None:
        """A failure of the file system or of HDF5 while writing (a full disk, a quota, a folder
        removed under us) as one line; anything else (a bug, an interrupt) is left as it is."""
        if isinstance(exc, ResultsError) or not isinstance(exc, (OSError, RuntimeError)):
            return None
        if isinstance(exc, RuntimeError) and not str(exc).startswith("NetCDF"):
            return None
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else (str(exc).splitlines() or [""])[0]
        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError:
            free = None
        full = free is not None and free < 64 * 2**20
        hint = f" with {free // 1024} KiB free in {self.path.parent} (disk full?)" if full else ""
        kept = "; the existing file is unchanged" if self.path.exists() else ""
        return ResultsError(f"{self.path}: could not write the results file: {detail}{hint}; "
                            f"no partial file was kept{kept}")

    def _discard(self) -> None:
        if self.nc is not None:
            with contextlib.suppress(Exception):
                self.nc.close()
            self.nc = None
        if self.tmp is not None:
            self.tmp.discard()

    # -- structure
    def _define(self) -> None:
        """Dimensions, coordinates and every variable, all from ``schema``: nothing is declared here."""
        nc = self.nc
        frame = schema.Frame(self.model, self.run_start, self.n_runs, self.run_index, self.sample_runs)
        sizes = frame.sizes()
        for dim, size in sizes.items():
            nc.createDimension(dim, size)
        chunk = max(1, min(self.n_runs, RUN_CHUNK))
        for var in schema.COORDS:
            if not all(d in sizes for d in var.dims):
                continue  # an optional coordinate (no correlations requested, no observations)
            kw = {}
            if var.dims == ("run",):  # compressed in blocks of runs, like the per-run variables
                kw = dict(chunksizes=(chunk,), **COMPRESSION)
            x = nc.createVariable(var.name, str if var.dtype == "str" else var.dtype, var.dims, **kw)
            if var.dims == ("run",):
                x.set_var_chunk_cache(size=2 * 8 * chunk, nelems=7, preemption=1.0)
            self._describe(x, var)
            if var.name == "time":
                x.units = schema.time_units(self.model)
            if var.values is None:
                continue
            if var.dims == ("run",):  # a block at a time: 10^7 contiguous runs are never materialised
                for i0 in range(0, self.n_runs, RUN_CHUNK):
                    i1 = min(self.n_runs, i0 + RUN_CHUNK)
                    x[i0:i1] = frame.runs(i0, i1)
                continue
            vals = var.values(frame)
            if var.dtype == "str":
                for k, val in enumerate(vals):
                    x[k] = val
            elif len(vals):
                x[:] = vals
        shape = {"run": chunk, "parameter": max(1, sizes["parameter"]), "source": sizes["source"],
                 "regime": sizes["regime"], "observation": sizes.get("observation", 1),
                 "component": sizes.get("component", 1)}
        for var in self.per_run + schema.optional_per_run(sizes):
            fill = var.fill if var.fill is not None else False
            x = nc.createVariable(var.name, var.dtype, var.dims, fill_value=fill,
                                  chunksizes=tuple(shape[d] for d in var.dims), **COMPRESSION)
            # a small chunk cache: a filled chunk is compressed and written out instead of being kept,
            # so memory does not grow with the run count (netCDF's default cache is per variable)
            nbytes = int(np.prod([shape[d] for d in var.dims])) * np.dtype(var.dtype).itemsize
            x.set_var_chunk_cache(size=2 * nbytes, nelems=7, preemption=1.0)
            self._describe(x, var)
            if var.name == "observed":
                x.definitions = json.dumps([schema.observation_definition(o) for o in self.model.observations])
        for var in schema.PER_DAY + schema.MERGEABLE:
            comp = COMPRESSION if "bin" in var.dims or "sample" in var.dims else {}
            x = nc.createVariable(var.name, var.dtype, var.dims, fill_value=False, **comp)
            self._describe(x, var)
        self._attrs()

    @staticmethod
    def _describe(x: netCDF4.Variable, var: schema.Var) -> None:
        if var.units is not None:
            x.units = var.units
        x.long_name = var.long_name
        for k, val in var.attrs.items():
            x.setncattr(k, val)

    def _attrs(self) -> None:
        scn = self.model.scenario
        L = self.loaded
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
        cmd = self.command or " ".join([Path(sys.argv[0]).name] + sys.argv[1:])
        a = {
            "Conventions": "CF-1.9",
            "title": f"artysim results: {scn.scenario.name}",
            "institution": "artysim users",
            "source": f"artysim {__version__}",
            "history": f"{now} {cmd}",
            "references": "https://pypi.org/project/artysim (scenario figures cite their sources)",
            "artysim_version": __version__,
            "artysim_schema_version": schema.SCHEMA_VERSION,
            "scenario_name": scn.scenario.name,
            "scenario_caliber": scn.scenario.caliber,
            "scenario_file": L.origin,
            "scenario_toml": L.text,
            "scenario_overrides": "\n".join(L.overrides),
            "scenario_hash": L.hash,
            "start_date": scn.start_date.isoformat(),
            "horizon_days": scn.horizon,
            "shortage_threshold": scn.output.shortage_threshold,
            "seed": str(self.seed),
            "run_start": self.run_start,
            "run_stop": self.run_stop,
            "runs_total": self.runs_total,
            "shard": self.shard,
            "shards": self.shards,
            "trajectory_sample": self.model.n_sample,
            "histogram_bins": f"{bins.EXACT} exact then {bins.SUB} per doubling",
            "stream_keys": schema.stream_table(self.model, int(self.seed)),
        }
        if scn.scenario.description:  # CF: comment, if present, is a non-empty string
            a["comment"] = scn.scenario.description
        a.update(self.extra_attrs)
        for k, val in a.items():
            self.nc.setncattr(k, val)

    # -- data
    def write_batch(self, batch) -> None:
        """A batch's per-run outputs, each schema variable from its declared kernel column."""
        self._signals.check()
        nc = self.nc
        i0 = batch.start - self.run_start
        i1 = batch.stop - self.run_start
        sampled = self.model.sampled
        for var in self.per_run:  # observed, component_*: below
            kind = var.column[0]
            if kind == "params":
                if sampled:
                    nc[var.name][i0:i1, :] = batch.params[:, sampled]
            elif kind == "totals":
                nc[var.name][i0:i1] = batch.totals[:, var.column[1]]
            else:  # per_source, per_regime: run x source (or regime) x column
                nc[var.name][i0:i1, :] = getattr(batch, kind)[:, :, var.column[1]]
        if self.model.observations:
            nc["observed"][i0:i1, :] = self.model.observed(batch.observed)
        nc_ = len(self.model.component_names)
        for var in schema.COMPONENTS if nc_ else []:
            nc[var.name][i0:i1, :] = batch.per_component[:, :nc_, var.column[1]]

    def write_runs_raw(self, offset: int, arrays: dict) -> None:
        """Per-run variables by name (as stored in a results file) at run positions offset.. ."""
        self._signals.check()
        for name, arr in arrays.items():
            n = arr.shape[0]
            if arr.size == 0:
                continue
            if arr.ndim == 1:
                self.nc[name][offset:offset + n] = arr
            else:
                self.nc[name][offset:offset + n, ...] = arr

    def write_daily(self, daily) -> None:
        """The per-day statistics of an accumulator (``core.engine.Daily``)."""
        self.write_stats(mergeable(daily), daily.sample_stock, daily.sample_fired)

    def write_stats(self, stats: dict, sample_stock: np.ndarray, sample_fired: np.ndarray) -> None:
        """The mergeable counts and sums (``schema.MERGEABLE``, by name), the per-day statistics derived
        from them, and the sampled trajectories (rows indexed by run)."""
        self._signals.check()
        nc = self.nc
        for k, val in stats.items():
            nc[k][:] = val
        derived = derive_daily(stats, np.asarray(nc["quantile"][:]), self.n_runs)
        for k, val in derived.items():
            nc[k][:] = val
        if len(self.sample_runs):
            rows = self.sample_runs
            nc["stock_sample"][:] = sample_stock[rows]
            nc["fired_sample"][:] = sample_fired[rows]

    def _achieved_correlations(self) -> None:
        """Rank correlation of each requested pair over this file's runs (reads two columns back)."""
        from scipy import stats

        m = self.model
        paths = [m.params[i].path for i in m.sampled]
        for k, (pa, pb, _) in enumerate(m.corr_pairs):
            x = np.asarray(self.nc["parameters"][:, paths.index(pa)])
            y = np.asarray(self.nc["parameters"][:, paths.index(pb)])
            rho = stats.spearmanr(x, y).statistic if len(x) > 2 else np.nan
            self.nc["correlation_achieved"][k] = rho

    def commit(self) -> Path:
        """Close and move the finished file into place."""
        self._signals.check()
        if self.model.corr_pairs:
            self._achieved_correlations()
        self.nc.close()
        self.nc = None
        return self.tmp.commit()
