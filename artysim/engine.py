"""The only caller of the kernel: turns a scenario into kernel arrays, samples parameters, runs
batches of runs on all threads and accumulates the mergeable per-day statistics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numba
import numpy as np
from scipy import special

from artysim import histogram, kernel, rng
from artysim.distributions import Fixed, kernel_arrays
from artysim.errors import ScenarioError
from artysim.scenario import Import, Loaded, Production, Scenario, Stockpile, is_schedule

#: (field, role, unit) of the per-run parameters of each source kind, in role order; scheduled rates
#: (production ``annual``, import ``shipments_per_month``) are handled apart, as schedules
_SOURCE_FIELDS = {
    "stockpile": [("initial", kernel.R_INITIAL, "1"), ("dud_rate", kernel.R_DUD, "1"),
                  ("accuracy", kernel.R_ACCURACY, "1"), ("legacy", kernel.R_LEGACY, "1"),
                  ("legacy_serviceable", kernel.R_SERVICEABLE, "1"),
                  ("refurbish_per_day", kernel.R_REFURB_RATE, "day-1"),
                  ("refurbished_dud_rate", kernel.R_REFURB_DUD, "1")],
    "production": [("annual_end", kernel.R_ANNUAL_END, "year-1"),
                   ("daily_cv", kernel.R_DAILY_CV, "1"), ("dud_rate", kernel.R_DUD, "1"),
                   ("accuracy", kernel.R_ACCURACY, "1"), ("disruptions.per_year", kernel.R_DIS_RATE, "year-1")],
    "import": [("start_day", kernel.R_START, "days"),
               ("available", kernel.R_AVAILABLE, "1"), ("dud_rate", kernel.R_DUD, "1"),
               ("lot_concentration", kernel.R_LOTCONC, "1"), ("accuracy", kernel.R_ACCURACY, "1"),
               ("reject_on_receipt", kernel.R_REJECT, "1"), ("rework_days", kernel.R_REWORK_DAYS, "days"),
               ("rework_yield", kernel.R_REWORK_YIELD, "1")],
}
_SCHEDULED = {"production": ("annual", "year-1"), "import": ("shipments_per_month", "month-1")}
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
    groles: np.ndarray
    roles: np.ndarray
    kinds: np.ndarray
    sched_cols: np.ndarray
    sched_piece: np.ndarray
    sched_change: np.ndarray
    erows: np.ndarray
    dists: tuple  # coded-distribution table: code, par, discrete values, discrete cumulative weights
    regime_names: list[str]
    reg_mult: np.ndarray
    reg_days: np.ndarray
    reg_cum: np.ndarray
    reg_pi: np.ndarray
    issue: int
    order: np.ndarray
    threshold: float
    horizon: int
    n_sample: int
    ring: int
    corr_cols: np.ndarray  # columns (into sampled) of correlated parameters
    corr_factor: np.ndarray  # Gaussian-copula factor (len(corr_cols) square)
    corr_pairs: list[tuple[str, str, float]]
    design: object | None = None  # a design.SobolDesign: its rows replace the streams' uniforms

    @property
    def sampled(self) -> list[int]:
        """Columns of parameters that are random (these are written to the results)."""
        return [i for i, p in enumerate(self.params) if not p.dist.is_fixed]

    @property
    def n_regimes(self) -> int:
        return max(1, len(self.regime_names))

    def uniforms(self, seed: int, run0: int, n: int) -> np.ndarray:
        """Each sampled parameter's uniform for runs run0 .. run0+n-1 (n x sampled).

        A parameter's uniform comes from a stream keyed by its path, so two scenarios that share a
        parameter draw it identically run by run (common random numbers), whatever else differs.
        Correlated parameters then go through a Gaussian copula, run by run. With a design
        (``--design sobol``), run i takes row i of the design instead (independent inputs).
        """
        if self.design is not None:
            return self.design.uniforms(run0, n)
        cols = self.sampled
        u = np.empty((n, len(cols)))
        for j, i in enumerate(cols):
            u[:, j] = rng.stream_uniforms(np.uint64(seed), np.uint64(rng.path_domain("param:" + self.params[i].path)),
                                          run0, n, 1)[:, 0]
        if len(self.corr_cols):
            z = special.ndtri(u[:, self.corr_cols]) @ self.corr_factor.T
            u[:, self.corr_cols] = special.ndtr(z)
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
            if not np.isfinite(out[:, i]).all():  # a NaN dud rate would never leave the binomial sampler
                raise ScenarioError(f"{self.params[i].path}: its distribution gave a value that is not a finite "
                                    "number for some run; use less extreme parameters")
        return out

    def stream_keys(self, seed: int) -> np.ndarray:
        """Keys of the model's streams, keyed by name: demand; each source's arrivals, effect (duds
        and misses) and events (refurbishment, disruptions, rejection); regimes; depot strikes. Adding
        a mechanism or a source leaves the other random numbers unchanged."""
        src = [s.name for s in self.scenario.source]
        names = (["model:demand"] + [f"model:arrivals.{n}" for n in src] + [f"model:effect.{n}" for n in src]
                 + [f"model:events.{n}" for n in src] + ["model:regime", "model:strikes"])
        return np.array([rng.stream_key(np.uint64(seed), np.uint64(rng.path_domain(n))) for n in names],
                        dtype=np.uint64)


class _Builder:
    """Collects per-run parameters, schedules and in-kernel distributions."""

    def __init__(self, scn: Scenario):
        self.scn = scn
        self.params: list[Param] = []
        self.rows: list[tuple] = []

    def param(self, path: str, d, unit: str) -> int:
        self.params.append(Param(path, d, unit))
        return len(self.params) - 1

    def row(self, d) -> int:
        self.rows.append(kernel_arrays(d))
        return len(self.rows) - 1

    def schedule(self, path: str, v, unit: str, as_row: bool = False) -> list[tuple[int, int]]:
        """(first day, column or row) of each piece of a rate; one piece from day 0 if not a schedule."""
        if not is_schedule(v):
            return [(0, self.row(v) if as_row else self.param(path, v, unit))]
        start = self.scn.start_date
        out = []
        for piece in v:
            day = max(0, (piece.from_ - start).days)
            ref = self.row(piece.value) if as_row else self.param(f"{path}@{piece.from_.isoformat()}",
                                                                  piece.value, unit)
            out.append((day, ref))
        return out


def _stationary(P: np.ndarray) -> np.ndarray | None:
    """Stationary law of the jump chain P, or None if it is not unique."""
    n = len(P)
    A = np.vstack([P.T - np.eye(n), np.ones(n)])
    if np.linalg.matrix_rank(A, tol=1e-9) < n:
        return None
    pi, *_ = np.linalg.lstsq(A, np.r_[np.zeros(n), 1.0], rcond=None)
    return np.clip(pi, 0.0, None) / np.clip(pi, 0.0, None).sum()


def build(scn: Scenario) -> Model:
    bld = _Builder(scn)
    T = scn.horizon
    ns = len(scn.source)
    groles = np.full(kernel.N_GROLES, -1, dtype=np.int64)
    scheds: list[list[tuple[int, int]]] = [bld.schedule("demand.base", scn.demand.base, "day-1")]
    groles[kernel.GR_DCV] = bld.param("demand.daily_cv", scn.demand.daily_cv, "1")
    # regimes
    names_r: list[str] = []
    reg_mult = np.zeros(0, dtype=np.int64)
    reg_days = np.zeros(0, dtype=np.int64)
    reg_cum = np.zeros((0, 0))
    reg_pi = np.zeros(0)
    if scn.demand.regime:
        regs = scn.demand.regime
        names_r = [r.name for r in regs]
        nr = len(regs)
        reg_mult = np.array([bld.param(f"demand.regime.{r.name}.multiplier", r.multiplier, "1") for r in regs],
                            dtype=np.int64)
        reg_days = np.array([bld.param(f"demand.regime.{r.name}.mean_days", r.mean_days, "days") for r in regs],
                            dtype=np.int64)
        P = np.zeros((nr, nr))
        for i, r in enumerate(regs):
            if nr == 1:
                P[i, i] = 1.0
                continue
            w = {n: 1.0 for n in names_r if n != r.name} if r.to is None else dict(r.to)
            for k, x in w.items():
                P[i, names_r.index(k)] = x
            P[i] /= P[i].sum()
        reg_cum = np.cumsum(P, axis=1)
        reg_cum[:, -1] = 1.0
        pi = _stationary(P)
        if scn.demand.initial_regime is not None:
            groles[kernel.GR_REGIME_INIT] = names_r.index(scn.demand.initial_regime)
            reg_pi = pi if pi is not None else np.full(nr, 1.0 / nr)
        elif pi is None:
            raise ScenarioError("demand.regime: the transition weights split the regimes into groups that never "
                                "reach each other, so there is no single long-run mix to start from; "
                                "give demand.initial_regime")
        else:
            reg_pi = pi
    # ration policy, strikes
    pol = scn.policy
    if pol.reserve_days is not None:
        groles[kernel.GR_RESERVE] = bld.param("policy.reserve_days", pol.reserve_days, "days")
        groles[kernel.GR_RATION] = bld.param("policy.ration_fraction", pol.ration_fraction, "1")
    if scn.strikes is not None:
        groles[kernel.GR_STRIKE_RATE] = bld.param("strikes.per_year", scn.strikes.per_year, "year-1")
        groles[kernel.GR_STRIKE_ROW] = bld.row(scn.strikes.fraction)
    # sources
    roles = np.full((ns, kernel.N_ROLES), -1, dtype=np.int64)
    kinds = np.empty(ns, dtype=np.int64)
    erows = np.full((ns, kernel.N_EROWS), -1, dtype=np.int64)
    rate_scheds: list[list[tuple[int, int]]] = []
    size_scheds: list[list[tuple[int, int]]] = []
    for s, src in enumerate(scn.source):
        kinds[s] = _KINDS[src.kind]
        pre = f"source.{src.name}"
        if src.kind in _SCHEDULED:
            fname, unit = _SCHEDULED[src.kind]
            rate_scheds.append(bld.schedule(f"{pre}.{fname}", getattr(src, fname), unit))
        else:
            rate_scheds.append([(0, -1)])
        for fname, role, unit in _SOURCE_FIELDS[src.kind]:
            obj = src
            for part in fname.split(".")[:-1]:
                obj = getattr(obj, part)
                if obj is None:
                    break
            if obj is None:
                continue
            d = getattr(obj, fname.split(".")[-1])
            if fname == "accuracy" and d.is_fixed and d.mean() == 1.0:
                continue  # every non-dud round hits: the kernel skips the draw
            if fname == "reject_on_receipt" and d.is_fixed and d.mean() == 0.0:
                continue  # nothing rejected: the kernel skips the draw
            if fname in ("rework_days", "rework_yield") and getattr(src, "rework_days", None) is None:
                continue
            if fname in ("legacy_serviceable", "refurbish_per_day") and getattr(src, "legacy", None) is None:
                continue
            if d is None:
                if fname == "available":
                    d = Fixed(value=UNLIMITED)
                elif fname == "refurbished_dud_rate" and src.legacy is not None:
                    d = src.dud_rate
                else:
                    continue
            roles[s, role] = bld.param(f"{pre}.{fname}", d, unit)
        if isinstance(src, Import):
            size_scheds.append(bld.schedule(f"{pre}.shipment_size", src.shipment_size, "1", as_row=True))
            erows[s, kernel.E_TRANSIT] = bld.row(src.transit_days)
        else:
            size_scheds.append([(0, -1)])
        if isinstance(src, Production) and src.disruptions is not None:
            erows[s, kernel.E_CUT] = bld.row(src.disruptions.cut)
            erows[s, kernel.E_DIS_DAYS] = bld.row(src.disruptions.days)
        assert isinstance(src, (Stockpile, Production, Import))
    sched_cols, sched_piece, sched_change = _schedule_tables(scheds + rate_scheds + size_scheds, T)
    names = scn.source_names()
    if scn.policy.issue == "priority":
        issue = kernel.ISSUE_PRIORITY
        order = np.array([names.index(n) for n in scn.policy.order], dtype=np.int64)
    else:
        issue = kernel.ISSUE_PROPORTIONAL
        order = np.arange(ns, dtype=np.int64)
    if not bld.rows:
        bld.row(Fixed(value=0.0))
    dists = (np.array([r[0] for r in bld.rows], dtype=np.int64), np.array([r[1] for r in bld.rows]),
             np.array([r[2] for r in bld.rows]), np.array([r[3] for r in bld.rows]))
    corr_cols, corr_factor, corr_pairs = _copula(scn, bld.params)
    return Model(
        scenario=scn, params=bld.params, groles=groles, roles=roles, kinds=kinds,
        sched_cols=sched_cols, sched_piece=sched_piece, sched_change=sched_change, erows=erows, dists=dists,
        regime_names=names_r, reg_mult=reg_mult, reg_days=reg_days, reg_cum=reg_cum, reg_pi=reg_pi,
        issue=issue, order=order, threshold=scn.output.shortage_threshold, horizon=T,
        n_sample=scn.output.trajectory_sample, ring=_ring_days(scn),
        corr_cols=corr_cols, corr_factor=corr_factor, corr_pairs=corr_pairs,
    )


def _schedule_tables(scheds: list[list[tuple[int, int]]], T: int):
    """Rows of (column per piece), the piece of each day, and the days on which any piece starts."""
    pmax = max(len(x) for x in scheds)
    cols = np.full((len(scheds), pmax), -1, dtype=np.int64)
    piece = np.zeros((len(scheds), T), dtype=np.int64)
    change = np.zeros(T, dtype=np.bool_)
    days = np.arange(T)
    for k, pieces in enumerate(scheds):
        firsts = np.array([d for d, _ in pieces])
        for j, (_, ref) in enumerate(pieces):
            cols[k, j] = ref
        # the piece in force on day t: the last whose first day is <= t
        piece[k] = np.searchsorted(firsts, days, side="right") - 1
        piece[k] = np.maximum(piece[k], 0)
        for d in firsts:
            if 0 < d < T:
                change[d] = True
    return cols, piece, change


def _copula(scn: Scenario, params: list[Param]):
    """Gaussian-copula factor of the requested Spearman correlations (Pearson 2 sin(pi rho / 6) on
    the normal scores gives rank correlation rho exactly); refuses a matrix that is not positive
    semi-definite rather than silently changing what was asked."""
    if not scn.correlation:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0)), []
    sampled = [i for i, p in enumerate(params) if not p.dist.is_fixed]
    paths = [params[i].path for i in sampled]
    fixed = {p.path for p in params if p.dist.is_fixed}
    involved: list[str] = []
    pairs = []
    for k, c in enumerate(scn.correlation):
        for j, path in enumerate(c.between):
            if path not in paths:
                why = ("is fixed (a number, not a distribution): it has no uncertainty to correlate"
                       if path in fixed else f"is not a sampled parameter; sampled: {', '.join(paths)}")
                raise ScenarioError(f"correlation[{k}].between[{j}]: '{path}' {why}")
            if path not in involved:
                involved.append(path)
        pairs.append((c.between[0], c.between[1], c.spearman))
    m = len(involved)
    C = np.eye(m)
    seen: dict[tuple[int, int], int] = {}
    for k, (a, b, rho) in enumerate(pairs):
        i, j = involved.index(a), involved.index(b)
        key = (min(i, j), max(i, j))
        if key in seen:
            raise ScenarioError(f"correlation[{k}].between: the pair {a}, {b} is already given in "
                                f"correlation[{seen[key]}]")
        seen[key] = k
        C[i, j] = C[j, i] = 2.0 * np.sin(np.pi * rho / 6.0)
    w, V = np.linalg.eigh(C)
    if w.min() < -1e-10:
        raise ScenarioError(
            f"correlation: the requested rank correlations cannot hold together (their matrix is not positive "
            f"semi-definite: smallest eigenvalue {w.min():.3g}); weaken some of them")
    factor = V * np.sqrt(np.clip(w, 0.0, None))
    cols = np.array([paths.index(p) for p in involved], dtype=np.int64)
    return cols, factor, pairs


def _ring_days(scn: Scenario) -> int:
    """Days of goods in transit or rework an import must track: the longest possible transit or
    rework, capped by the horizon (an unbounded distribution needs the whole horizon)."""
    longest = 0
    for src in scn.source:
        if isinstance(src, Import):
            for d in (src.transit_days, src.rework_days):
                if d is None:
                    continue
                hi = d.support()[1]
                longest = max(longest, scn.horizon if not np.isfinite(hi) else int(np.ceil(hi)) + 2)
    return int(max(1, min(longest, scn.horizon)))


@dataclass
class Daily:
    """Mergeable per-day statistics: integer counts and sums only, so they add exactly."""

    hist: np.ndarray  # time x N_DAILY x bins
    sums: np.ndarray  # time x N_DAILY
    n_short: np.ndarray  # time
    n_first_short: np.ndarray  # time: runs whose first shortage day is that day
    src_sums: np.ndarray  # time x 2 x sources: rounds fired and effective by source, summed over runs
    sample_stock: np.ndarray  # sample x time
    sample_fired: np.ndarray  # sample x time

    @classmethod
    def empty(cls, T: int, n_sample: int, n_sources: int) -> Daily:
        return cls(
            hist=np.zeros((T, kernel.N_DAILY, histogram.NBINS), dtype=np.int64),
            sums=np.zeros((T, kernel.N_DAILY), dtype=np.int64),
            n_short=np.zeros(T, dtype=np.int64),
            n_first_short=np.zeros(T, dtype=np.int64),
            src_sums=np.zeros((T, 2, n_sources), dtype=np.int64),
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
    per_regime: np.ndarray


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
    src_sums = np.zeros((nthreads, T, 2, NS), dtype=np.int64)
    samp_s = np.full((max(n_sample, 1), T), -1, dtype=np.int64)
    samp_f = np.full((max(n_sample, 1), T), -1, dtype=np.int64)
    since_flush = 0
    for r0 in range(run_start, run_stop, batch_size):
        r1 = min(r0 + batch_size, run_stop)
        n = r1 - r0
        params = model.sample(seed, r0, n)
        totals = np.empty((n, kernel.N_TOTALS), dtype=np.int64)
        per_source = np.empty((n, NS, kernel.N_PER_SOURCE), dtype=np.int64)
        per_regime = np.empty((n, model.n_regimes, kernel.N_PER_REGIME), dtype=np.int64)
        kernel.simulate(
            r0, keys, T, params, model.groles, model.kinds, model.roles,
            model.sched_cols, model.sched_piece, model.sched_change, model.erows, *model.dists, model.ring,
            rng.LOGF, model.reg_mult, model.reg_days, model.reg_cum, model.reg_pi,
            model.issue, model.order, model.threshold, n_sample, chunks,
            totals, per_source, per_regime, hist, sums, src_sums, n_short, samp_s, samp_f,
        )
        fs = totals[:, kernel.O_FIRST_SHORT]
        daily.n_first_short += np.bincount(fs[fs >= 0], minlength=T)[:T]
        since_flush += n  # runs counted by one thread at most: int32 counts stay far from overflow
        if since_flush > 2**30:  # keep int32 chunk counts far from overflow
            daily.hist += hist.sum(axis=0, dtype=np.int64)
            hist[:] = 0
            since_flush = 0
        yield Batch(r0, r1, params, totals, per_source, per_regime)
    daily.hist += hist.sum(axis=0, dtype=np.int64)
    daily.sums += sums.sum(axis=0)
    daily.n_short += n_short.sum(axis=0)
    daily.src_sums += src_sums.sum(axis=0)
    ns = min(n_sample, daily.sample_stock.shape[0])
    rows = slice(run_start, min(run_stop, ns))
    daily.sample_stock[rows] = samp_s[rows]
    daily.sample_fired[rows] = samp_f[rows]


def simulate_in_memory(loaded: Loaded, runs: int, seed: int, run_start: int = 0,
                       threads: int | None = None, batch_size: int = 1 << 17):
    """All per-run outputs and per-day statistics in memory (for tests and small studies)."""
    model = build(loaded.scenario)
    daily = Daily.empty(model.horizon, model.n_sample, len(model.kinds))
    batches = list(run_batches(model, seed, run_start, run_start + runs, daily, threads, batch_size))
    cat = {
        "params": np.concatenate([b.params for b in batches]),
        "totals": np.concatenate([b.totals for b in batches]),
        "per_source": np.concatenate([b.per_source for b in batches]),
        "per_regime": np.concatenate([b.per_regime for b in batches]),
    }
    return model, cat, daily
