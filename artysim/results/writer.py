"""netCDF results: incremental, atomic writing (CF-1.9) and checked reading.

Per-run variables are written batch by batch straight into a temporary file beside the target,
so memory never holds a runs x days array nor the whole file twice; the file is renamed into place
only when complete. Per-day statistics are derived from mergeable integer counts that are stored
alongside them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import sys
from pathlib import Path

import netCDF4
import numpy as np

from artysim.core import bins, layout
from artysim.errors import ResultsError
from artysim.results import schema
from artysim.results.atomic import AtomicFile, DeferSignals, check_target
from artysim.results.daily import derive_daily, mergeable
from artysim.version import __version__

RUN_CHUNK = 1 << 16
COMPRESSION = {"zlib": True, "complevel": 1, "shuffle": True}

_PER_SOURCE_INDEX = {
    "initial_stock": layout.P_INITIAL,
    "received": layout.P_RECEIVED,
    "fired_by_source": layout.P_FIRED,
    "duds": layout.P_DUDS,
    "effective_by_source": layout.P_EFFECTIVE,
    "stock_final_by_source": layout.P_FINAL,
    "dispatched": layout.P_DISPATCHED,
    "refurbished": layout.P_REFURBISHED,
    "lost": layout.P_LOST,
    "rejected": layout.P_REJECTED,
    "reworked": layout.P_REWORKED,
    "disruptions": layout.P_DISRUPTIONS,
}
_PER_REGIME_INDEX = {"regime_days": layout.Q_DAYS, "regime_entries": layout.Q_ENTRIES}
_TOTAL_INDEX = {
    "first_shortage_day": layout.O_FIRST_SHORT,
    "shortage_days": layout.O_SHORT_DAYS,
    "demand_total": layout.O_DEMAND,
    "fired_total": layout.O_FIRED,
    "effective_total": layout.O_EFFECTIVE,
    "shortfall_total": layout.O_SHORTFALL,
    "stock_min": layout.O_STOCK_MIN,
    "stock_final": layout.O_STOCK_FINAL,
    "rationed_days": layout.O_RATIONED,
    "depot_strikes": layout.O_STRIKES,
}


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
        nc = self.nc
        m = self.model
        scn = m.scenario
        n = self.n_runs
        sampled = m.sampled
        qs = np.asarray(scn.output.quantiles, dtype=np.float64)
        n_sample = len(self.sample_runs)
        nc.createDimension("run", n)
        nc.createDimension("parameter", len(sampled))
        nc.createDimension("source", len(scn.source))
        nc.createDimension("time", m.horizon)
        nc.createDimension("quantile", len(qs))
        nc.createDimension("sample", n_sample)
        nc.createDimension("bin", bins.NBINS)
        regimes = m.regime_names or ["constant"]
        nc.createDimension("regime", len(regimes))
        if m.corr_pairs:
            nc.createDimension("correlation", len(m.corr_pairs))

        v = nc.createVariable("run", "i8", ("run",), chunksizes=(max(1, min(n, RUN_CHUNK)),), **COMPRESSION)
        v.set_var_chunk_cache(size=2 * 8 * max(1, min(n, RUN_CHUNK)), nelems=7, preemption=1.0)
        v.long_name = "run index (results of a run depend only on scenario, seed and this index)"
        v.standard_name = "realization"
        v.units = "1"
        if self.run_index is not None:
            v[:] = self.run_index
        else:
            for i0 in range(0, n, RUN_CHUNK):
                i1 = min(n, i0 + RUN_CHUNK)
                v[i0:i1] = np.arange(self.run_start + i0, self.run_start + i1, dtype=np.int64)

        v = nc.createVariable("time", "i4", ("time",))
        v.standard_name = "time"
        v.long_name = "day of the scenario (day 0 is start_date)"
        v.units = f"days since {scn.start_date.isoformat()}"
        v.calendar = "standard"
        v.axis = "T"
        v[:] = np.arange(m.horizon, dtype=np.int32)

        v = nc.createVariable("quantile", "f8", ("quantile",))
        v.long_name = "quantile level over runs"
        v.units = "1"
        v[:] = qs

        v = nc.createVariable("source", str, ("source",))
        v.long_name = "ammunition source"
        for i, name in enumerate(scn.source_names()):
            v[i] = name
        v = nc.createVariable("source_kind", str, ("source",))
        v.long_name = "kind of ammunition source (stockpile, production, import)"
        for i, s in enumerate(scn.source):
            v[i] = s.kind

        v = nc.createVariable("regime", str, ("regime",))
        v.long_name = "intensity regime of demand (\"constant\" when the scenario has none)"
        for i, name in enumerate(regimes):
            v[i] = name
        if m.corr_pairs:
            a = nc.createVariable("correlation_between", str, ("correlation",))
            a.long_name = "the two parameters of a requested rank correlation, as 'path_a ~ path_b'"
            r = nc.createVariable("correlation_requested", "f8", ("correlation",))
            r.long_name = "requested Spearman rank correlation"
            r.units = "1"
            r = nc.createVariable("correlation_achieved", "f8", ("correlation",))
            r.long_name = "Spearman rank correlation of the parameters over the runs of this file"
            r.units = "1"
            for k, (pa, pb, rho) in enumerate(m.corr_pairs):
                a[k] = f"{pa} ~ {pb}"
                nc["correlation_requested"][k] = rho

        v = nc.createVariable("parameter", str, ("parameter",))
        v.long_name = "scenario path of a sampled input parameter"
        u = nc.createVariable("parameter_units", str, ("parameter",))
        u.long_name = "UDUNITS unit of each sampled parameter"
        for j, i in enumerate(sampled):
            v[j] = m.params[i].path
            u[j] = m.params[i].unit

        v = nc.createVariable("sample", "i8", ("sample",))
        v.long_name = "run index of a sampled trajectory"
        v.units = "1"
        if n_sample:
            v[:] = self.sample_runs

        lower, upper = bins.bin_edges()
        v = nc.createVariable("bin", "i8", ("bin",))
        v.long_name = "lower edge (inclusive) of a value bin of the per-day histograms"
        v.units = "1"
        v[:] = lower
        v = nc.createVariable("bin_upper", "i8", ("bin",))
        v.long_name = "upper edge (exclusive) of a value bin of the per-day histograms"
        v.units = "1"
        v[:] = upper

        chunk = max(1, min(n, RUN_CHUNK))
        for var in schema.PER_RUN:
            shape = {"run": chunk, "parameter": max(1, len(sampled)), "source": len(scn.source),
                     "regime": len(regimes)}
            fill = var.fill if var.fill is not None else False
            x = nc.createVariable(var.name, var.dtype, var.dims, fill_value=fill,
                                  chunksizes=tuple(shape[d] for d in var.dims), **COMPRESSION)
            # a small chunk cache: a filled chunk is compressed and written out instead of being kept,
            # so memory does not grow with the run count (netCDF's default cache is per variable)
            nbytes = int(np.prod([shape[d] for d in var.dims])) * np.dtype(var.dtype).itemsize
            x.set_var_chunk_cache(size=2 * nbytes, nelems=7, preemption=1.0)
            x.units = var.units
            x.long_name = var.long_name
        nc["parameters"].coordinates = "parameter_units"
        for var in schema.PER_DAY + schema.MERGEABLE:
            comp = COMPRESSION if "bin" in var.dims or "sample" in var.dims else {}
            x = nc.createVariable(var.name, var.dtype, var.dims, fill_value=False, **comp)
            x.units = var.units
            x.long_name = var.long_name
        self._attrs()

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
        }
        if scn.scenario.description:  # CF: comment, if present, is a non-empty string
            a["comment"] = scn.scenario.description
        a.update(self.extra_attrs)
        for k, val in a.items():
            self.nc.setncattr(k, val)

    # -- data
    def write_batch(self, batch) -> None:
        self._signals.check()
        nc = self.nc
        i0 = batch.start - self.run_start
        i1 = batch.stop - self.run_start
        sampled = self.model.sampled
        if sampled:
            nc["parameters"][i0:i1, :] = batch.params[:, sampled]
        for name, k in _TOTAL_INDEX.items():
            nc[name][i0:i1] = batch.totals[:, k]
        for name, k in _PER_SOURCE_INDEX.items():
            nc[name][i0:i1, :] = batch.per_source[:, :, k]
        for name, k in _PER_REGIME_INDEX.items():
            nc[name][i0:i1, :] = batch.per_regime[:, :, k]

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
        self._signals.check()
        nc = self.nc
        stats = mergeable(daily)
        for k, val in stats.items():
            nc[k][:] = val
        derived = derive_daily(stats, np.asarray(nc["quantile"][:]), self.n_runs)
        for k, val in derived.items():
            nc[k][:] = val
        if len(self.sample_runs):
            rows = self.sample_runs
            nc["stock_sample"][:] = daily.sample_stock[rows]
            nc["fired_sample"][:] = daily.sample_fired[rows]

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
