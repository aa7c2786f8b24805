"""The only caller of the kernel: turns a scenario into kernel arrays, samples parameters, runs
batches of runs on all threads and accumulates the mergeable per-day statistics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numba
import numpy as np

from artysim import histogram, kernel, rng
from artysim.distributions import Fixed, kernel_arrays
from artysim.scenario import Import, Loaded, Production, Scenario, Stockpile

#: (field, role, unit) of the per-run parameters of each source kind, in role order
_SOURCE_FIELDS = {
    "stockpile": [("initial", kernel.R_INITIAL, "1"), ("dud_rate", kernel.R_DUD, "1"),
                  ("accuracy", kernel.R_ACCURACY, "1")],
    "production": [("annual", kernel.R_ANNUAL, "year-1"), ("annual_end", kernel.R_ANNUAL_END, "year-1"),
                   ("daily_cv", kernel.R_DAILY_CV, "1"), ("dud_rate", kernel.R_DUD, "1"),
                   ("accuracy", kernel.R_ACCURACY, "1")],
    "import": [("start_day", kernel.R_START, "days"), ("shipments_per_month", kernel.R_SPM, "month-1"),
               ("available", kernel.R_AVAILABLE, "1"), ("dud_rate", kernel.R_DUD, "1"),
               ("lot_concentration", kernel.R_LOTCONC, "1"), ("accuracy", kernel.R_ACCURACY, "1")],
}
_KINDS = {"stockpile": kernel.KIND_STOCKPILE, "production": kernel.KIND_PRODUCTION,
          "import": kernel.KIND_IMPORT}
UNLIMITED = 1e18  # an import without `available`


@dataclass
class Param:
    path: str
    dist: object  # a distributions._Dist
    unit: str


@dataclass
class Model:
    """Kernel-ready arrays of one scenario."""

    scenario: Scenario
    params: list[Param]
    roles: np.ndarray
    kinds: np.ndarray
    base_col: int
    dcv_col: int
    ship: tuple
    transit: tuple
    issue: int
    order: np.ndarray
    threshold: float
    horizon: int
    n_sample: int
    ring: int
    design: object | None = None  # a design.SobolDesign: its rows replace the streams' uniforms

    @property
    def sampled(self) -> list[int]:
        """Columns of parameters that are random (these are written to the results)."""
        return [i for i, p in enumerate(self.params) if not p.dist.is_fixed]

    def uniforms(self, seed: int, run0: int, n: int) -> np.ndarray:
        """Each sampled parameter's uniform for runs run0 .. run0+n-1 (n x sampled).

        A parameter's uniform comes from a stream keyed by its path, so two scenarios that share a
        parameter draw it identically run by run (common random numbers), whatever else differs.
        With a design (``--design sobol``), run i takes row i of the design instead.
        """
        if self.design is not None:
            return self.design.uniforms(run0, n)
        cols = self.sampled
        u = np.empty((n, len(cols)))
        for j, i in enumerate(cols):
            u[:, j] = rng.stream_uniforms(np.uint64(seed), np.uint64(rng.path_domain("param:" + self.params[i].path)),
                                          run0, n, 1)[:, 0]
        return u

    def sample(self, seed: int, run0: int, n: int) -> np.ndarray:
        """Per-run parameter matrix (n x all params) by inverse CDF of the runs' uniforms."""
        u = self.uniforms(seed, run0, n)
        out = np.empty((n, len(self.params)))
        for i, p in enumerate(self.params):
            if p.dist.is_fixed:
                out[:, i] = p.dist.ppf(np.zeros(1))[0]
        for j, i in enumerate(self.sampled):
            out[:, i] = self.params[i].dist.ppf(u[:, j])
        return out

    def stream_keys(self, seed: int) -> np.ndarray:
        """Keys of the model's streams, keyed by name: demand, each source's arrivals, each source's
        duds (so adding a source, or firing differently, leaves the other random numbers unchanged)."""
        src = [s.name for s in self.scenario.source]
        names = ["model:demand"] + [f"model:arrivals.{n}" for n in src] + [f"model:effect.{n}" for n in src]
        return np.array([rng.stream_key(np.uint64(seed), np.uint64(rng.path_domain(n))) for n in names],
                        dtype=np.uint64)


def build(scn: Scenario) -> Model:
    params: list[Param] = [Param("demand.base", scn.demand.base, "day-1"),
                           Param("demand.daily_cv", scn.demand.daily_cv, "1")]
    ns = len(scn.source)
    roles = np.full((ns, kernel.N_ROLES), -1, dtype=np.int64)
    kinds = np.empty(ns, dtype=np.int64)
    ship = [np.zeros(ns, dtype=np.int64), np.zeros((ns, 6)), np.zeros((ns, 64)), np.ones((ns, 64))]
    transit = [np.zeros(ns, dtype=np.int64), np.zeros((ns, 6)), np.zeros((ns, 64)), np.ones((ns, 64))]
    for s, src in enumerate(scn.source):
        kinds[s] = _KINDS[src.kind]
        for fname, role, unit in _SOURCE_FIELDS[src.kind]:
            d = getattr(src, fname)
            if fname == "accuracy" and d.is_fixed and d.mean() == 1.0:
                continue  # every non-dud round hits: the kernel skips the draw
            if d is None:
                if fname == "available":
                    d = Fixed(value=UNLIMITED)
                else:
                    continue
            roles[s, role] = len(params)
            params.append(Param(f"source.{src.name}.{fname}", d, unit))
        if isinstance(src, Import):
            for arrs, d in ((ship, src.shipment_size), (transit, src.transit_days)):
                code, par, vals, cum = kernel_arrays(d)
                arrs[0][s] = code
                arrs[1][s] = par
                arrs[2][s] = vals
                arrs[3][s] = cum
        assert isinstance(src, (Stockpile, Production, Import))
    names = scn.source_names()
    if scn.policy.issue == "priority":
        issue = kernel.ISSUE_PRIORITY
        order = np.array([names.index(n) for n in scn.policy.order], dtype=np.int64)
    else:
        issue = kernel.ISSUE_PROPORTIONAL
        order = np.arange(ns, dtype=np.int64)
    return Model(
        scenario=scn, params=params, roles=roles, kinds=kinds, base_col=0, dcv_col=1,
        ship=tuple(ship), transit=tuple(transit), issue=issue, order=order,
        threshold=scn.output.shortage_threshold, horizon=scn.horizon,
        n_sample=scn.output.trajectory_sample, ring=_ring_days(scn),
    )


def _ring_days(scn: Scenario) -> int:
    """Days of goods in transit an import must track: the longest possible transit, capped by
    the horizon (an unbounded transit distribution needs the whole horizon)."""
    longest = 0
    for src in scn.source:
        if isinstance(src, Import):
            hi = src.transit_days.support()[1]
            longest = max(longest, scn.horizon if not np.isfinite(hi) else int(np.ceil(hi)) + 2)
    return int(max(1, min(longest, scn.horizon)))


@dataclass
class Daily:
    """Mergeable per-day statistics: integer counts and sums only, so they add exactly."""

    hist: np.ndarray  # time x N_DAILY x bins
    sums: np.ndarray  # time x N_DAILY
    n_short: np.ndarray  # time
    n_first_short: np.ndarray  # time: runs whose first shortage day is that day
    sample_stock: np.ndarray  # sample x time
    sample_fired: np.ndarray  # sample x time

    @classmethod
    def empty(cls, T: int, n_sample: int) -> Daily:
        return cls(
            hist=np.zeros((T, kernel.N_DAILY, histogram.NBINS), dtype=np.int64),
            sums=np.zeros((T, kernel.N_DAILY), dtype=np.int64),
            n_short=np.zeros(T, dtype=np.int64),
            n_first_short=np.zeros(T, dtype=np.int64),
            sample_stock=np.full((n_sample, T), -1, dtype=np.int64),
            sample_fired=np.full((n_sample, T), -1, dtype=np.int64),
        )


@dataclass
class Batch:
    """Per-run outputs of runs ``start .. stop - 1``."""

    start: int
    stop: int
    params: np.ndarray
    totals: np.ndarray
    per_source: np.ndarray


def resolve_threads(threads: int | None) -> int:
    """Threads to use: the request, capped by what numba has (default: all)."""
    n = numba.config.NUMBA_NUM_THREADS if threads is None else int(threads)
    return max(1, min(n, numba.config.NUMBA_NUM_THREADS))


def run_batches(
    model: Model, seed: int, run_start: int, run_stop: int, daily: Daily,
    threads: int | None = None, batch_size: int = 1 << 17,
) -> Iterator[Batch]:
    """Simulate runs [run_start, run_stop) batch by batch, adding per-day statistics to ``daily``.

    Yields each batch's per-run outputs; memory is bounded by the batch, not by the run count.
    """
    nthreads = resolve_threads(threads)
    numba.set_num_threads(nthreads)
    T = model.horizon
    NS = len(model.kinds)
    n_sample = min(model.n_sample, run_stop)
    keys = model.stream_keys(seed)
    # more chunks than threads, handed out one at a time: a thread slowed by other work (the file
    # writer, another process) does not hold the others up
    chunks = 8 * nthreads
    numba.set_parallel_chunksize(1)
    hist = np.zeros((nthreads, T, kernel.N_DAILY, histogram.NBINS), dtype=np.int32)
    sums = np.zeros((nthreads, T, kernel.N_DAILY), dtype=np.int64)
    n_short = np.zeros((nthreads, T), dtype=np.int64)
    samp_s = np.full((max(n_sample, 1), T), -1, dtype=np.int64)
    samp_f = np.full((max(n_sample, 1), T), -1, dtype=np.int64)
    since_flush = 0
    for r0 in range(run_start, run_stop, batch_size):
        r1 = min(r0 + batch_size, run_stop)
        n = r1 - r0
        params = model.sample(seed, r0, n)
        totals = np.empty((n, kernel.N_TOTALS), dtype=np.int64)
        per_source = np.empty((n, NS, kernel.N_PER_SOURCE), dtype=np.int64)
        kernel.simulate(
            r0, keys, T, params, model.base_col, model.dcv_col, model.kinds, model.roles,
            *model.ship, *model.transit, model.ring, rng.LOGF, model.issue, model.order, model.threshold,
            n_sample, chunks,
            totals, per_source, hist, sums, n_short, samp_s, samp_f,
        )
        fs = totals[:, kernel.O_FIRST_SHORT]
        daily.n_first_short += np.bincount(fs[fs >= 0], minlength=T)[:T]
        since_flush += n  # runs counted by one thread at most: int32 counts stay far from overflow
        if since_flush > 2**30:  # keep int32 chunk counts far from overflow
            daily.hist += hist.sum(axis=0, dtype=np.int64)
            hist[:] = 0
            since_flush = 0
        yield Batch(r0, r1, params, totals, per_source)
    daily.hist += hist.sum(axis=0, dtype=np.int64)
    daily.sums += sums.sum(axis=0)
    daily.n_short += n_short.sum(axis=0)
    ns = min(n_sample, daily.sample_stock.shape[0])
    rows = slice(run_start, min(run_stop, ns))
    daily.sample_stock[rows] = samp_s[rows]
    daily.sample_fired[rows] = samp_f[rows]


def simulate_in_memory(loaded: Loaded, runs: int, seed: int, run_start: int = 0,
                       threads: int | None = None, batch_size: int = 1 << 17):
    """All per-run outputs and per-day statistics in memory (for tests and small studies)."""
    model = build(loaded.scenario)
    daily = Daily.empty(model.horizon, model.n_sample)
    batches = list(run_batches(model, seed, run_start, run_start + runs, daily, threads, batch_size))
    cat = {
        "params": np.concatenate([b.params for b in batches]),
        "totals": np.concatenate([b.totals for b in batches]),
        "per_source": np.concatenate([b.per_source for b in batches]),
    }
    return model, cat, daily
