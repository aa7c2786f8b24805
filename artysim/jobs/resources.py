"""Resource guard: before a run, estimate its peak memory and output size, and refuse a run that
would exhaust the machine (or overflow 64-bit counts) rather than fail hours into it.

The estimate follows what ``core.engine.run_batches``, the kernel and ``results.writer.ResultsWriter`` allocate:
per-thread day histograms (threads x T x 4 x NBINS int32) dominate long horizons, per-thread goods
in transit (sources x 256 x ring days) imports with long transits, per-run batches (two alive while
the writer thread compresses one) large run counts. ``benchmarks/resources.py`` compares it with
measured peak RSS and file sizes.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from artysim.core import bins, layout
from artysim.errors import ArtysimError
from artysim.model.scenario import Containers
from artysim.results import schema
from artysim.results.memory import available_memory, cgroup_room  # noqa: F401 (re-exported: one probe)

#: resident memory of a run process before any run-dependent allocation: Python, numpy, numba and
#: its compiled kernel, netCDF4/HDF5, thread stacks (measured: 310-330 MB on Linux x86-64)
BASE_BYTES = 340 * 2**20
#: compressed bytes per uncompressed byte of per-run variables (zlib level 1 with shuffle); measured
#: 0.35-0.4 on the bundled scenarios, taken high so that the disk check errs on the safe side
COMPRESSION_RATIO = 0.6
#: runs the summary printed after a run reads at a time (summary.BLOCK)
SUMMARY_BLOCK = 1 << 18
#: stop well short of 2**63 in any count
COUNT_LIMIT = 2**62
#: standard normal quantile taken as the largest daily noise draw (P = 1e-19 per draw)
Z_MAX = 9.0

OVERRIDE = "--no-resource-check"

#: Run-days per batch and thread at most: a signal (Ctrl-C, SLURM's SIGTERM before its SIGKILL) is
#: handled between batches, so a batch must take seconds, not minutes, whatever the horizon.
BATCH_RUN_DAYS_PER_THREAD = 1 << 22


def batch_size_for(horizon: int, threads: int, requested: int = 1 << 17) -> int:
    """Runs per batch: the request, capped so that a batch stays seconds long on ``threads`` threads."""
    return max(1, min(requested, BATCH_RUN_DAYS_PER_THREAD * threads // max(horizon, 1)))


@dataclass
class Estimate:
    """Peak memory and output size of a run [bytes], with the parts they are made of."""

    memory: int
    file: int
    memory_parts: dict = field(default_factory=dict)

    def describe(self) -> str:
        big = sorted(self.memory_parts.items(), key=lambda kv: -kv[1])[:3]
        parts = ", ".join(f"{k} {human(v)}" for k, v in big)
        return f"about {human(self.memory)} of memory ({parts}) and {human(self.file)} of disk"


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} TB"  # pragma: no cover


def _per_run_bytes(n_params: int, n_sources: int, kept=None, n_components: int = 0) -> int:
    """Uncompressed bytes of one run in the results file (the run coordinate included); ``kept``: the
    per-run variables the file keeps (default all)."""
    b = 8  # run index
    for v in (schema.PER_RUN if kept is None else kept) + (schema.COMPONENTS if n_components else []):
        width = (n_params if "parameter" in v.dims else n_sources if "source" in v.dims
                 else n_components if "component" in v.dims else 1)
        b += width * np.dtype(v.dtype).itemsize
    return b


def estimate(model, runs: int, threads: int, batch_size: int, *, summary: bool = False,
             run_stop: int | None = None) -> Estimate:
    """Peak memory and file size of ``runs`` runs of ``model`` on ``threads`` threads (the runs ending at
    global run ``run_stop``, default ``runs``: a later shard holds more of the trajectory sample)."""
    T = model.horizon
    NS = len(model.kinds)
    NC = len(model.component_names)
    P = len(model.params)
    S = len(model.sampled)
    Q = len(model.scenario.output.quantiles)
    n_sample = min(model.n_sample, runs)  # sampled runs in the file
    n_engine = max(min(model.n_sample, run_stop or runs), 1)  # the engine's rows: up to the last run's index
    nb = min(batch_size, runs)
    i8 = 8
    # histogram rows per day: the N_DAILY totals, stock by source and days of fire on hand
    day_cells = T * (layout.N_DAILY + NS + 1) * bins.NBINS
    parts = {
        "per-thread day histograms": threads * day_cells * 4,
        # Daily.hist (int64) and the sum over threads into it; the cumulative counts of one variable's
        # quantiles and the contiguous copy of one variable netCDF writes
        "merged day histograms": 2 * day_cells * i8 + 2 * T * bins.NBINS * i8,
        # kernel block state per thread: goods in transit (int64 + float64 per source, run, ring day)
        "goods in transit": threads * NS * layout.BLOCK * model.ring * 16,
        # a batch: uniforms, parameters, totals, per-source totals; two alive (one being written),
        # plus the next batch's uniforms and parameters (sampled ahead) and the writer's contiguous
        # copies of one
        "run batches": nb * (2 * (S * i8 + P * i8 + layout.N_TOTALS * i8 + NS * layout.N_PER_SOURCE * i8
                                  + max(NC, 1) * layout.N_PER_COMPONENT * i8)
                             + S * i8 + P * i8 + S * i8 + NS * i8 + i8),
        # jobs.run's Daily holds trajectory_sample rows however few the runs (stock and fired), the
        # engine its own up to the last run's index, and the writer a copy of the file's rows: a
        # trajectory_sample above the run count was counted as the run count (10.6 GB for 14.5 measured)
        "trajectory sample": (2 * max(model.n_sample, 1) + 2 * n_engine + 2 * n_sample) * T * i8,
        # netCDF chunk caches: two chunks of each per-run variable, and a chunk being compressed
        "file buffers": 3 * min(runs, 1 << 16) * _per_run_bytes(S, NS, schema.per_run_kept(model), NC),
    }
    if summary:  # the summary printed after the run: a block of columns and the first shortage days
        parts["summary"] = min(runs, SUMMARY_BLOCK) * (S + 8 + 4 * NS) * i8 * 2 + runs * 16
    mem = BASE_BYTES + sum(parts.values())
    per_day = (T * (2 * Q + 2 + 4) * i8 + layout.N_DAILY * T * i8 * 2 + 2 * n_sample * T * i8)
    hist_bytes = (layout.N_DAILY + NS + 1) * T * bins.NBINS * i8 * 0.01  # mostly zeros: compress ~100x
    run_bytes = _per_run_bytes(S, NS, schema.per_run_kept(model), NC)
    file = int(runs * run_bytes * COMPRESSION_RATIO + per_day + hist_bytes + 64 * 1024)
    return Estimate(memory=int(mem), file=file, memory_parts=parts)


def default_threads() -> int:
    """Threads a run would use by default, as numba counts them (``NUMBA_NUM_THREADS``, else the CPUs this
    process may run on), without importing numba: ``validate`` compiles nothing."""
    env = os.environ.get("NUMBA_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def free_disk(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


#: what reduces each part of the estimate, for the message of a run that does not fit
REMEDY = {
    "per-thread day histograms": "a shorter horizon or fewer --threads (day histograms are kept per thread; "
                                 "--shards does not reduce them)",
    "merged day histograms": "a shorter horizon",
    "goods in transit": "fewer --threads (goods in transit are kept per thread; --shards does not reduce them) "
                        "or shorter transit or rework times",
    "run batches": "fewer runs per shard (--shards)",
    "file buffers": "fewer runs per shard (--shards)",
    "summary": "-q (no summary) or fewer runs per shard (--shards)",
    "trajectory sample": "a smaller output.trajectory_sample or a shorter horizon",
}


def check(model, runs: int, threads: int, batch_size: int, output: Path, *, runs_total: int | None = None,
          summary: bool = False, memory: int | None = None, disk: int | None = None,
          run_stop: int | None = None) -> Estimate:
    """Refuse (ArtysimError naming the estimate and ``--no-resource-check``) a run that would not fit.

    ``memory``/``disk`` default to what this machine has now (tests pass their own)."""
    check_magnitudes(model, runs_total or runs)
    est = estimate(model, runs, threads, batch_size, summary=summary, run_stop=run_stop)
    memory = available_memory() if memory is None else memory
    disk = free_disk(Path(output).resolve().parent) if disk is None else disk
    if memory is not None and est.memory > memory:
        top = max(est.memory_parts, key=est.memory_parts.get)  # the remedy of the largest part
        hint = REMEDY.get(top, "fewer runs per shard (--shards)")
        raise ArtysimError(f"this run needs {est.describe()}, but only {human(memory)} of memory is available; "
                           f"use {hint}, or {OVERRIDE} to run anyway")
    if disk is not None and est.file > disk:
        raise ArtysimError(f"the results file will take about {human(est.file)}, but only {human(disk)} is free "
                           f"in {Path(output).resolve().parent}; free space, write elsewhere (-o), or use "
                           f"{OVERRIDE} to run anyway")
    return est


# ----------------------------------------------------------------------------- 64-bit counts


def _hi(dist) -> float:
    """Largest value a distribution (or a schedule of them) gives in practice: its upper bound, or
    its 1 - 1e-12 quantile."""
    if isinstance(dist, list):
        return max(_hi(piece.value) for piece in dist)
    lo, hi = dist.support()
    if math.isfinite(hi):
        return float(hi)
    return float(dist.ppf(np.array([1 - 1e-12]))[0])


def _noise_hi(cv: float) -> float:
    """Largest mean-one lognormal noise factor with this CV (Z_MAX standard deviations up)."""
    s = math.sqrt(math.log1p(cv * cv))
    return math.exp(-0.5 * s * s + Z_MAX * s)


def _line_hi(annual, annual_end, daily_cv, T: int) -> tuple[float, float]:
    """Upper bounds [rounds] of a production line's output in a day and over the horizon."""
    if annual is None:
        return 0.0, 0.0
    rate = max(_hi(annual), _hi(annual_end) if annual_end is not None else 0.0) / 365.0
    cv = _hi(daily_cv)
    # over the horizon the mean-one noise sums to about T (sd cv sqrt(T)), plus one extreme day
    return rate * _noise_hi(cv), rate * (T + 10 * cv * math.sqrt(T) + _noise_hi(cv))


def magnitudes(model) -> dict:
    """Upper bounds [rounds] of the per-day and per-run counts of one run."""
    scn = model.scenario
    T = model.horizon
    mult = max((_hi(r.multiplier) for r in scn.demand.regime or []), default=1.0)
    demand_day = _hi(scn.demand.base) * max(mult, 1.0) * _noise_hi(_hi(scn.demand.daily_cv))
    stock = 0.0
    arrivals_day = 0.0
    for src in scn.source:
        if src.kind == "stockpile":
            stock += _hi(src.initial)
            if src.legacy is not None:
                stock += _hi(src.legacy)
                arrivals_day = max(arrivals_day, min(_hi(src.legacy), _hi(src.refurbish_per_day) + 1))
        elif src.kind == "production" and src.components is not None:
            # assembled: never more than the scarcest line ever holds (its initial inventory and all it makes)
            most = min(_line_hi(c.annual, c.annual_end, c.daily_cv, T)[1] + (_hi(c.initial) if c.initial is not None
                       else 0.0) for c in src.components)
            arrivals_day = max(arrivals_day, most)
            stock += most
        elif src.kind == "production":
            day, total = _line_hi(src.annual, src.annual_end, src.daily_cv, T)
            arrivals_day = max(arrivals_day, day)
            stock += total
        else:
            lam = _hi(src.shipments_per_month) / (365.0 / 12.0)
            ships_day = lam + 10 * math.sqrt(lam) + 10
            size = src.shipment_size
            if isinstance(size, Containers):  # the largest shipment: most containers at the heaviest loading
                day = ships_day * _hi(size.containers) * _hi(size.rounds_per_container)
            else:
                day = ships_day * _hi(size)
            cap = _hi(src.available) if src.available is not None else math.inf
            arrivals_day = max(arrivals_day, min(day, cap))
            stock += min(day * T, cap)
    return {"demand per day": demand_day, "arrivals per day": arrivals_day,
            "demand over the horizon": demand_day * T, "stock": stock}


def check_magnitudes(model, runs: int) -> None:
    """Refuse scenarios whose counts could overflow 64-bit integers: per run (totals over the
    horizon) and per day over all runs (the sums behind the per-day means)."""
    m = magnitudes(model)
    for what, v in m.items():
        if v >= COUNT_LIMIT:
            raise ArtysimError(f"the scenario's {what} could reach {v:.3g} rounds, beyond what 64-bit counts "
                               f"hold (overflow); reduce the values or their spread")
    per_day = max(m["stock"], m["demand per day"])
    if runs * per_day >= COUNT_LIMIT:
        raise ArtysimError(f"{runs} runs of up to {per_day:.3g} rounds a day each could overflow the per-day sums "
                           f"over runs (64-bit); use fewer runs or smaller values")
    top = float(bins.bin_edges()[1][-1])
    if per_day >= top:
        raise ArtysimError(f"the scenario's stock or daily demand could reach {per_day:.3g} rounds, beyond the "
                           f"{top:.3g} that per-day quantiles resolve; reduce the values")

