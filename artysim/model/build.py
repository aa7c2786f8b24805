"""The model of a scenario, built once: the per-run parameters with their paths and units, the
kernel's role, schedule and coded-distribution tables, the regime chain and the copula, and the
sampling of per-run parameters. Pure numpy and scipy: numba is imported only to sample (validating and
reading never compile anything)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import special

from artysim.core import contract, layout
from artysim.errors import ScenarioError
from artysim.model.distributions import Fixed, kernel_arrays
from artysim.model.scenario import Containers, Import, Production, Scenario, Stockpile, is_schedule

#: (field, role, unit) of the per-run parameters of each source kind, in role order; scheduled rates
#: (production ``annual``, import ``shipments_per_month``) are handled apart, as schedules
_SOURCE_FIELDS = {
    "stockpile": [("initial", layout.R_INITIAL, "1"), ("dud_rate", layout.R_DUD, "1"),
                  ("accuracy", layout.R_ACCURACY, "1"), ("legacy", layout.R_LEGACY, "1"),
                  ("legacy_serviceable", layout.R_SERVICEABLE, "1"),
                  ("refurbish_per_day", layout.R_REFURB_RATE, "day-1"),
                  ("refurbished_dud_rate", layout.R_REFURB_DUD, "1")],
    "production": [("annual_end", layout.R_ANNUAL_END, "year-1"),
                   ("daily_cv", layout.R_DAILY_CV, "1"), ("dud_rate", layout.R_DUD, "1"),
                   ("accuracy", layout.R_ACCURACY, "1"), ("disruptions.per_year", layout.R_DIS_RATE, "year-1")],
    "import": [("start_day", layout.R_START, "days"),
               ("available", layout.R_AVAILABLE, "1"), ("dud_rate", layout.R_DUD, "1"),
               ("lot_concentration", layout.R_LOTCONC, "1"), ("accuracy", layout.R_ACCURACY, "1"),
               ("reject_on_receipt", layout.R_REJECT, "1"), ("rework_days", layout.R_REWORK_DAYS, "days"),
               ("rework_yield", layout.R_REWORK_YIELD, "1")],
}
_SCHEDULED = {"production": ("annual", "year-1"), "import": ("shipments_per_month", "month-1")}
_KINDS = {"stockpile": layout.KIND_STOCKPILE, "production": layout.KIND_PRODUCTION,
          "import": layout.KIND_IMPORT}
UNLIMITED = 1e18  # an import without `available`


@dataclass
class Param:
    path: str
    dist: object  # a distributions._Dist
    unit: str
    stream: str = ""  # the path its uniform is keyed by, when not its own (a schedule's first piece)

    @property
    def stream_name(self) -> str:
        """Name of the stream this parameter draws from (``layout.key_of`` gives its key)."""
        return "param:" + (self.stream or self.path)


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
    obs: np.ndarray = field(default_factory=lambda: np.zeros((0, layout.N_OB), dtype=np.int64))  # kernel rows
    comp_src: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # source of each line
    comp_roles: np.ndarray = field(default_factory=lambda: np.zeros((0, layout.N_CROLES), dtype=np.int64))
    component_names: list[str] = field(default_factory=list)  # "source.component" of each line, in kernel order

    @property
    def observations(self) -> list:
        """The scenario's ``[[observation]]`` tables (``scenario.Observation``), in order."""
        return list(self.scenario.observation or [])

    def observed(self, sums: np.ndarray) -> np.ndarray:
        """Each run's observed values (runs x observations, float64) from the kernel's window sums
        (runs x observations x 2): a sum as it is, a mean per day divided by the window's days, a
        share of fire divided by all rounds fired in the window (NaN where none were fired)."""
        out = np.asarray(sums[:, :, 0], dtype=np.float64).copy()
        for k, o in enumerate(self.observations):
            if o.statistic == "mean_per_day":
                t0, t1 = self.obs[k, layout.OB_T0], self.obs[k, layout.OB_T1]
                out[:, k] /= float(t1 - t0 + 1)
            elif o.statistic == "share_of_fired":
                den = np.asarray(sums[:, k, 1], dtype=np.float64)
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[:, k] = np.where(den > 0, out[:, k] / np.where(den > 0, den, 1.0), np.nan)
        return out

    @property
    def sampled(self) -> list[int]:
        """Columns of parameters that are random (these are written to the results)."""
        return [i for i, p in enumerate(self.params) if not p.dist.is_fixed]

    @property
    def kernel(self) -> contract.KernelModel:
        """The kernel's static tables of this scenario (``core.contract.KernelModel``), by name."""
        from artysim.core import rng  # numba: only when simulating (the binomial sampler's log(k!) table)

        dcode, dpar, ddv, ddc = self.dists
        return contract.KernelModel(
            horizon=int(self.horizon), ring=int(self.ring), groles=self.groles, kinds=self.kinds, roles=self.roles,
            erows=self.erows, sched_cols=self.sched_cols, sched_piece=self.sched_piece,
            sched_change=self.sched_change, dcode=dcode, dpar=dpar, ddv=ddv, ddc=ddc, logf=rng.LOGF,
            reg_mult=self.reg_mult, reg_days=self.reg_days, reg_cum=self.reg_cum, reg_pi=self.reg_pi,
            issue=int(self.issue), order=self.order, threshold=float(self.threshold), obs=self.obs,
            comp_src=self.comp_src, comp_roles=self.comp_roles,
        )

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
        from artysim.core import rng  # numba: only when sampling

        cols = self.sampled
        u = np.empty((n, len(cols)))
        for j, i in enumerate(cols):
            domain = np.uint64(layout.path_domain(self.params[i].stream_name))
            u[:, j] = rng.stream_uniforms(np.uint64(seed), domain, run0, n, 1)[:, 0]
        # each group of parameters linked by correlations on its own (the factor is block diagonal):
        # a correlation added or removed in one group never changes another group's numbers
        for block in _blocks(self.corr_factor):
            cols = self.corr_cols[block]
            z = special.ndtri(u[:, cols]) @ self.corr_factor[np.ix_(block, block)].T
            u[:, cols] = special.ndtr(z)
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

    def stream_names(self) -> list[str]:
        """Names of the model's streams, in kernel order (``layout.stream_names``)."""
        return layout.stream_names([s.name for s in self.scenario.source])

    def stream_keys(self, seed: int) -> np.ndarray:
        """Keys of the model's streams, keyed by name: demand; each source's arrivals, effect (duds
        and misses) and events (refurbishment, disruptions, rejection); regimes; depot strikes. Adding
        a mechanism or a source leaves the other random numbers unchanged."""
        from artysim.core import rng  # numba: only when sampling

        names = layout.stream_names([s.name for s in self.scenario.source], self.component_names)
        return np.array([rng.stream_key(np.uint64(seed), np.uint64(layout.path_domain(n))) for n in names],
                        dtype=np.uint64)


class _Builder:
    """Collects per-run parameters, schedules and in-kernel distributions."""

    def __init__(self, scn: Scenario):
        self.scn = scn
        self.params: list[Param] = []
        self.rows: list[tuple] = []

    def param(self, path: str, d, unit: str, stream: str = "") -> int:
        self.params.append(Param(path, d, unit, stream))
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
        for k, piece in enumerate(v):
            day = max(0, (piece.from_ - start).days)
            # the first piece keeps the stream of the single value it replaces: a schedule that starts
            # with the old value pairs run by run with the file without the schedule
            ref = self.row(piece.value) if as_row else self.param(f"{path}@{piece.from_.isoformat()}",
                                                                  piece.value, unit, path if k == 0 else "")
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
    groles = np.full(layout.N_GROLES, -1, dtype=np.int64)
    scheds: list[list[tuple[int, int]]] = [bld.schedule("demand.base", scn.demand.base, "day-1")]
    groles[layout.GR_DCV] = bld.param("demand.daily_cv", scn.demand.daily_cv, "1")
    rf = scn.demand.refire
    if not (rf.is_fixed and rf.mean() == 0.0):  # refire = 0: today's model exactly, no parameter, no draws
        groles[layout.GR_REFIRE] = bld.param("demand.refire", rf, "1")
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
            groles[layout.GR_REGIME_INIT] = names_r.index(scn.demand.initial_regime)
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
        groles[layout.GR_RESERVE] = bld.param("policy.reserve_days", pol.reserve_days, "days")
        groles[layout.GR_RATION] = bld.param("policy.ration_fraction", pol.ration_fraction, "1")
    if scn.strikes is not None:
        groles[layout.GR_STRIKE_RATE] = bld.param("strikes.per_year", scn.strikes.per_year, "year-1")
        groles[layout.GR_STRIKE_ROW] = bld.row(scn.strikes.fraction)
    # sources
    roles = np.full((ns, layout.N_ROLES), -1, dtype=np.int64)
    kinds = np.empty(ns, dtype=np.int64)
    erows = np.full((ns, layout.N_EROWS), -1, dtype=np.int64)
    rate_scheds: list[list[tuple[int, int]]] = []
    size_scheds: list[list[tuple[int, int]]] = []
    comp_scheds: list[list[tuple[int, int]]] = []
    comp_src: list[int] = []
    comp_roles: list[np.ndarray] = []
    comp_names: list[str] = []
    for s, src in enumerate(scn.source):
        kinds[s] = _KINDS[src.kind]
        pre = f"source.{src.name}"
        if isinstance(src, Production) and src.components is not None:
            rate_scheds.append([(0, -1)])  # assembled: the lines have the rates
        elif src.kind in _SCHEDULED:
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
        if isinstance(src, Import) and isinstance(src.shipment_size, Containers):
            _containers(bld, roles, erows, s, pre, src.shipment_size)
            size_scheds.append([(0, erows[s, layout.E_CONTAINERS])])  # unused: the kernel sizes by container
            erows[s, layout.E_TRANSIT] = bld.row(src.transit_days)
        elif isinstance(src, Import):
            size_scheds.append(bld.schedule(f"{pre}.shipment_size", src.shipment_size, "1", as_row=True))
            erows[s, layout.E_TRANSIT] = bld.row(src.transit_days)
        else:
            size_scheds.append([(0, -1)])
        if isinstance(src, Production) and src.disruptions is not None:
            erows[s, layout.E_CUT] = bld.row(src.disruptions.cut)
            erows[s, layout.E_DIS_DAYS] = bld.row(src.disruptions.days)
        for comp in (src.components or []) if isinstance(src, Production) else []:
            cpre = f"{pre}.components.{comp.name}"  # each parameter on the stream keyed by its path
            comp_scheds.append([(0, -1)] if comp.annual is None else bld.schedule(f"{cpre}.annual", comp.annual,
                                                                                  "year-1"))
            cr = np.full(layout.N_CROLES, -1, dtype=np.int64)
            if comp.annual_end is not None:
                cr[layout.CR_ANNUAL_END] = bld.param(f"{cpre}.annual_end", comp.annual_end, "year-1")
            if not (comp.daily_cv.is_fixed and comp.daily_cv.mean() == 0.0):
                cr[layout.CR_DAILY_CV] = bld.param(f"{cpre}.daily_cv", comp.daily_cv, "1")
            if comp.initial is not None:
                cr[layout.CR_INITIAL] = bld.param(f"{cpre}.initial", comp.initial, "1")
            comp_src.append(s)
            comp_roles.append(cr)
            comp_names.append(f"{src.name}.{comp.name}")
        assert isinstance(src, (Stockpile, Production, Import))
    sched_cols, sched_piece, sched_change = _schedule_tables(scheds + rate_scheds + size_scheds + comp_scheds, T)
    names = scn.source_names()
    if scn.policy.issue == "priority":
        issue = layout.ISSUE_PRIORITY
        order = np.array([names.index(n) for n in scn.policy.order], dtype=np.int64)
    else:
        issue = layout.ISSUE_PROPORTIONAL
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
        corr_cols=corr_cols, corr_factor=corr_factor, corr_pairs=corr_pairs, obs=_observation_rows(scn),
        comp_src=np.array(comp_src, dtype=np.int64),
        comp_roles=np.array(comp_roles, dtype=np.int64).reshape(len(comp_src), layout.N_CROLES),
        component_names=comp_names,
    )


def _observation_rows(scn: Scenario) -> np.ndarray:
    """The kernel's table of the scenario's observations (``layout.OB_*`` columns), one row each."""
    obs = scn.observation or []
    rows = np.zeros((len(obs), layout.N_OB), dtype=np.int64)
    names = scn.source_names()
    for k, o in enumerate(obs):
        ctot, cps = layout.OBS_QUANTITIES[o.quantity]
        src = -1 if o.source is None else names.index(o.source)
        if o.quantity == "stock":
            mode = layout.OM_STOCK_END if o.statistic == "at_end" else layout.OM_STOCK_SUM
        else:
            mode = layout.OM_FLOW
        rows[k, layout.OB_MODE] = mode
        rows[k, layout.OB_T0] = 0 if o.from_ is None else (o.from_ - scn.start_date).days
        rows[k, layout.OB_T1] = (o.to - scn.start_date).days
        rows[k, layout.OB_SRC] = src
        rows[k, layout.OB_TOT] = ctot if src < 0 else -1
        rows[k, layout.OB_PS] = cps
        rows[k, layout.OB_SHARE] = 1 if o.statistic == "share_of_fired" else 0
    return rows


def _containers(bld: _Builder, roles: np.ndarray, erows: np.ndarray, s: int, pre: str, c: Containers) -> None:
    """An import by the container: rounds per container, a per-run parameter (sampled when uncertain,
    so it appears in ``parameters``); containers per shipment, drawn in the kernel on a keyed stream."""
    roles[s, layout.R_RPC] = bld.param(f"{pre}.shipment_size.rounds_per_container", c.rounds_per_container, "1")
    erows[s, layout.E_CONTAINERS] = bld.row(c.containers)


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
    factor = np.zeros((m, m))
    for block in _blocks(C):  # each connected group of correlated parameters factored on its own
        w, V = np.linalg.eigh(C[np.ix_(block, block)])
        if w.min() < -1e-10:
            raise ScenarioError(
                f"correlation: the requested rank correlations cannot hold together (their matrix is not positive "
                f"semi-definite: smallest eigenvalue {w.min():.3g}); weaken some of them")
        factor[np.ix_(block, block)] = V * np.sqrt(np.clip(w, 0.0, None))
    cols = np.array([paths.index(p) for p in involved], dtype=np.int64)
    return cols, factor, pairs


def _blocks(M: np.ndarray) -> list[np.ndarray]:
    """Indices of the connected groups of a symmetric matrix's nonzero off-diagonal pattern, in order."""
    n = len(M)
    seen = np.zeros(n, dtype=bool)
    out = []
    for i in range(n):
        if seen[i]:
            continue
        group, todo = [], [i]
        seen[i] = True
        while todo:
            k = todo.pop()
            group.append(k)
            for j in np.flatnonzero((M[k] != 0) | (M[:, k] != 0)):
                if not seen[j]:
                    seen[j] = True
                    todo.append(j)
        out.append(np.array(sorted(group), dtype=np.int64))
    return out


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
