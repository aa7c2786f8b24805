"""Scenario files: TOML text -> frozen, validated objects, with every problem named by key path."""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import math
import re
from functools import partial
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
import tomllib
from pydantic import AfterValidator, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from artysim.core import layout
from artysim.errors import ScenarioError
from artysim.model.base import Strict, shorten
from artysim.model.distributions import DIST_NAMES, Lognormal, Normal, Quantity, Uniform

NAME_RE = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
MAX_ROUNDS = 1e13  # refuse quantities that could overflow 64-bit totals over long horizons
MAX_HORIZON = 36500
MAX_SOURCES = 64
MAX_CORRELATIONS = 200
MAX_DEPTH = 32  # tables and arrays nested deeper than this are no scenario (tomllib recurses per level)


def _in(lo: float, hi: float, lo_open: bool, hi_open: bool, what: str, d):
    """Refuse a distribution whose support leaves the field's domain.

    Upper bounds of counts (``hi_open`` false and ``hi`` >= 1e6) are overflow guards: a long upper
    tail is accepted while its 1 - 1e-12 quantile stays below them.
    """
    a, b = d.support()
    if not d.is_fixed:  # parameters so extreme that scipy returns NaN would stall the samplers
        probe = np.asarray(d.ppf(np.array([1e-9, 0.5, 1 - 1e-9])), dtype=np.float64)
        if not np.isfinite(probe).all():
            raise ValueError(f"the {d.dist} distribution cannot be evaluated with these parameters (its quantiles "
                             "are not finite numbers); use less extreme values")
    soft_hi = hi >= 1e6
    if soft_hi and math.isinf(b):
        b_check = float(d.ppf(np.array([1 - 1e-12]))[0])
    else:
        b_check = b
    bad_lo = a < lo or (lo_open and a <= lo)
    bad_hi = b_check > hi or (hi_open and b_check >= hi)
    if bad_lo or bad_hi:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        kind = "value" if d.is_fixed else f"{d.dist} distribution's range"
        hint = ""
        if not d.is_fixed and bad_lo and math.isinf(a):
            hint = " (truncate it with low/high, or use a distribution that is never negative)"
        raise ValueError(f"expected {what} in {left}{lo:g}, {hi:g}{right}; the {kind} is [{a:g}, {b:g}]{hint}")
    return d


Rounds = Annotated[Quantity, AfterValidator(partial(_in, 0, MAX_ROUNDS, False, False, "rounds"))]
RoundsPerDay = Annotated[Quantity, AfterValidator(partial(_in, 0, MAX_ROUNDS, False, False, "rounds/day"))]
RoundsPerYear = Annotated[
    Quantity, AfterValidator(partial(_in, 0, 365 * MAX_ROUNDS, False, False, "rounds/year"))
]
Fraction = Annotated[Quantity, AfterValidator(partial(_in, 0, 1, False, False, "a fraction"))]
OpenFraction = Annotated[Quantity, AfterValidator(partial(_in, 0, 1, True, False, "a fraction"))]
CV = Annotated[Quantity, AfterValidator(partial(_in, 0, 10, False, False, "a coefficient of variation"))]
Days = Annotated[Quantity, AfterValidator(partial(_in, 0, 1e6, False, False, "days"))]
PerMonth = Annotated[Quantity, AfterValidator(partial(_in, 0, 1e4, False, False, "shipments/month"))]
Concentration = Annotated[Quantity, AfterValidator(partial(_in, 0, 1e9, True, False, "a concentration"))]
PerYear = Annotated[Quantity, AfterValidator(partial(_in, 0, 1e4, False, False, "events/year"))]
Multiplier = Annotated[Quantity, AfterValidator(partial(_in, 0, 100, False, False, "a fire multiplier"))]
MeanDays = Annotated[Quantity, AfterValidator(partial(_in, 1, 1e6, False, False, "days (at least 1)"))]


def _date_or_error(v):
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            raise ValueError(f"expected a date YYYY-MM-DD, found '{shorten(v)}'") from None
    if isinstance(v, dt.datetime):
        raise ValueError("expected a date without a time of day")
    return v


def _schedule_type(value_type, what: str):
    """A rate that is either one quantity or a schedule: ``[{ from = DATE, value = ... }, ...]``,
    piecewise constant from each date on (dates increasing; the first on or before start_date)."""

    class Piece(Strict):
        from_: dt.date = Field(alias="from")
        value: value_type

        @field_validator("from_", mode="before")
        @classmethod
        def _d(cls, v):
            return _date_or_error(v)

    Piece.__name__ = f"Piece_{what}"

    def _increasing(pieces):
        for i in range(1, len(pieces)):
            if pieces[i].from_ <= pieces[i - 1].from_:
                raise _RelPathError(f"[{i}].from", f"schedule dates must increase (found {pieces[i].from_} after "
                                 f"{pieces[i - 1].from_})")
        return pieces

    sched = Annotated[list[Piece], Field(min_length=1, max_length=1000), AfterValidator(_increasing)]
    return Annotated[
        Annotated[value_type, Tag("__tag_value")] | Annotated[sched, Tag("__tag_schedule")],
        Discriminator(lambda v: "__tag_schedule" if isinstance(v, list) else "__tag_value"),
    ]


RoundsPerDaySched = _schedule_type(RoundsPerDay, "rounds_per_day")
RoundsPerYearSched = _schedule_type(RoundsPerYear, "rounds_per_year")
PerMonthSched = _schedule_type(PerMonth, "per_month")
RoundsSched = _schedule_type(Rounds, "rounds")


def is_schedule(v) -> bool:
    return isinstance(v, list)
Sources = Union[str, list[str], None]


class Meta(Strict):
    name: str = Field(pattern=NAME_RE, max_length=100)
    caliber: str = ""
    start_date: dt.date
    horizon_days: int = Field(ge=1, le=MAX_HORIZON)
    description: str = ""
    sources: Sources = None

    @field_validator("start_date", mode="before")
    @classmethod
    def _date(cls, v):
        return _date_or_error(v)

    @model_validator(mode="after")
    def _last_day(self):
        # every day of the horizon must be a calendar date (summaries and time axes print them)
        if (dt.date.max - self.start_date).days < self.horizon_days - 1:
            raise _PathError("scenario.horizon_days", f"the horizon of {self.horizon_days} days from "
                             f"{self.start_date} ends after {dt.date.max} (the last date supported)")
        return self


class RunCfg(Strict):
    runs: int = Field(10000, ge=1, le=10**9)
    seed: int = Field(0, ge=0, lt=2**63)


class Regime(Strict):
    """An intensity regime: fire multiplier, geometric sojourn of mean ``mean_days``, and transition
    weights to the other regimes (default: equal)."""

    name: str = Field(pattern=NAME_RE, max_length=64)
    multiplier: Multiplier
    mean_days: MeanDays
    to: dict[str, float] | None = None
    sources: Sources = None

    @field_validator("to")
    @classmethod
    def _weights(cls, v):
        if v is not None:
            for k, w in v.items():
                if not (math.isfinite(w) and w >= 0):
                    raise ValueError(f"transition weight to '{k}' must be a finite number >= 0 (found {w})")
            top = max(v.values(), default=0.0)
            if top > 0:  # only ratios matter; [1e308, 1e308] would sum to inf and normalise to zeros
                v = {k: w / top for k, w in v.items()}
        return v


class Demand(Strict):
    base: RoundsPerDaySched
    daily_cv: CV = 0.0
    refire: Fraction = 0.0  # share of each salvo's failed rounds (duds, misses) fired again the same day
    regime: list[Regime] | None = Field(None, min_length=1, max_length=16)
    initial_regime: str | None = None
    sources: Sources = None

    @model_validator(mode="after")
    def _regimes(self):
        if self.regime is None:
            if self.initial_regime is not None:
                raise _RelPathError("initial_regime", "needs [[demand.regime]] entries")
            return self
        names = [r.name for r in self.regime]
        for i, n in enumerate(names):
            if n in names[:i]:
                raise _RelPathError(f"regime[{i}].name", f"duplicate regime name '{n}'")
        for i, r in enumerate(self.regime):
            if r.to is None:
                continue
            for k in r.to:
                if k not in names:
                    raise _RelPathError(f"regime[{i}].to.{k}", f"unknown regime '{shorten(k)}'; regimes are {names}")
                if k == r.name:
                    raise _RelPathError(f"regime[{i}].to.{k}",
                                     "a regime cannot move to itself (its stay is set by mean_days)")
            if len(names) > 1 and sum(r.to.values()) <= 0:
                raise _RelPathError(f"regime[{i}].to", "needs a positive weight to at least one other regime")
        if self.initial_regime is not None and self.initial_regime not in names:
            raise _RelPathError("initial_regime", f"unknown regime '{self.initial_regime}'; regimes are {names}")
        return self


class _SourceBase(Strict):
    name: str = Field(pattern=NAME_RE, max_length=64)
    dud_rate: Fraction = 0.0
    accuracy: OpenFraction = 1.0
    sources: Sources = None

    @model_validator(mode="before")
    @classmethod
    def _components_only_production(cls, data):
        if isinstance(data, dict) and "components" in data and data.get("kind") != "production":
            raise _RelPathError("components", f"only a production source is assembled from components (this "
                                f"source is kind = \"{shorten(str(data.get('kind')))}\")")
        return data


class Stockpile(_SourceBase):
    kind: Literal["stockpile"]
    initial: Rounds
    legacy: Rounds | None = None
    legacy_serviceable: Fraction = 1.0
    refurbish_per_day: RoundsPerDay | None = None
    refurbished_dud_rate: Fraction | None = None

    @model_validator(mode="after")
    def _legacy(self):
        if self.legacy is not None and self.refurbish_per_day is None:
            raise _RelPathError("refurbish_per_day", "a legacy stock needs refurbish_per_day (rounds/day)")
        if self.legacy is None:
            for k in ("refurbish_per_day", "refurbished_dud_rate"):
                if getattr(self, k) is not None:
                    raise _RelPathError(k, "only used with a legacy stock (legacy = rounds)")
        return self


class Disruptions(Strict):
    """Production stoppages (strikes on plants): Poisson events, each cutting output by a random
    fraction for a random number of days (both drawn per event)."""

    per_year: PerYear
    cut: Fraction
    days: Days
    sources: Sources = None


def _never_positive(v) -> bool:
    """A quantity (or every piece of a schedule) that can only be 0."""
    if v is None:
        return True
    if is_schedule(v):
        return all(_never_positive(p.value) for p in v)
    return v.support()[1] <= 0.0


class Component(Strict):
    """One component line of a production source (shell bodies, fuzes, charges, fill): its own output
    (annual, ramp, daily noise) into its own inventory, from an initial inventory."""

    name: str = Field(pattern=NAME_RE, max_length=64)
    annual: RoundsPerYearSched | None = None
    annual_end: RoundsPerYear | None = None
    daily_cv: CV = 0.0
    initial: Rounds | None = None
    sources: Sources = None

    @model_validator(mode="after")
    def _something(self):
        if self.annual_end is not None and is_schedule(self.annual):
            raise _RelPathError("annual_end", "a ramp (annual_end) cannot be combined with an annual schedule")
        if self.annual_end is not None and self.annual is None:
            raise _RelPathError("annual_end", "a ramp needs the line's annual output at the start (annual)")
        if _never_positive(self.annual) and _never_positive(self.annual_end) and _never_positive(self.initial):
            raise _RelPathError("annual", "a component needs some output (annual, rounds/year) or an initial "
                                "inventory (initial, rounds): without either, the source never assembles a round")
        return self


class Production(_SourceBase):
    kind: Literal["production"]
    annual: RoundsPerYearSched | None = None
    annual_end: RoundsPerYear | None = None
    daily_cv: CV = 0.0
    disruptions: Disruptions | None = None
    components: list[Component] | None = Field(None, min_length=1, max_length=16)

    @model_validator(mode="after")
    def _ramp(self):
        if self.components is not None:
            if self.annual is not None:
                raise _RelPathError("annual", "give either annual or components (the output is then the "
                                    "scarcest component's), not both")
            for k in ("annual_end", "daily_cv"):
                if k in self.model_fields_set:
                    raise _RelPathError(k, "with components, give it per component (components[i]." + k + ")")
            names = [c.name for c in self.components]
            for i, n in enumerate(names):
                if n in names[:i]:
                    raise _RelPathError(f"components[{i}].name", f"duplicate component name '{n}'")
            return self
        if self.annual is None:
            raise _RelPathError("annual", "a production source needs annual (rounds/year) or components")
        if self.annual_end is not None and is_schedule(self.annual):
            raise _RelPathError("annual_end", "a ramp (annual_end) cannot be combined with an annual schedule")
        return self


MAX_CONTAINERS = 1e6  # containers in one shipment (an overflow guard, like MAX_ROUNDS)
ContainerCount = Annotated[Quantity, AfterValidator(partial(_in, 0, MAX_CONTAINERS, False, False, "containers"))]
RoundsPerContainer = Annotated[Quantity, AfterValidator(partial(_in, 0, 1e6, False, False, "rounds per container"))]


class Containers(Strict):
    """A shipment counted in containers: ``containers`` drawn per shipment (the voyage's load, aleatory),
    ``rounds_per_container`` drawn once per run (the loading nobody knows, epistemic)."""

    containers: ContainerCount | None = None
    rounds_per_container: RoundsPerContainer | None = None
    sources: Sources = None

    @model_validator(mode="after")
    def _both(self):
        if self.containers is None:
            raise _RelPathError("containers", "needed with rounds_per_container (containers per shipment)")
        if self.rounds_per_container is None:
            raise _RelPathError("rounds_per_container", "needed with containers (the loading: rounds per "
                                "container, drawn once per run)")
        return self


def _is_containers(v) -> bool:
    return isinstance(v, Containers) or (isinstance(v, dict) and "dist" not in v
                                         and ("containers" in v or "rounds_per_container" in v))


ShipmentSize = Annotated[
    Annotated[RoundsSched, Tag("__tag_rounds")] | Annotated[Containers, Tag("__tag_containers")],
    Discriminator(lambda v: "__tag_containers" if _is_containers(v) else "__tag_rounds"),
]


class Import(_SourceBase):
    kind: Literal["import"]
    start_day: Days = 0.0
    shipments_per_month: PerMonthSched
    shipment_size: ShipmentSize
    transit_days: Days = 0.0
    available: Rounds | None = None
    lot_concentration: Concentration | None = None
    reject_on_receipt: Fraction = 0.0
    rework_days: Days | None = None
    rework_yield: Fraction = 1.0

    @model_validator(mode="after")
    def _rework(self):
        if self.rework_days is None and "rework_yield" in self.model_fields_set:
            raise _RelPathError("rework_yield", "needs rework_days (without it, rejected rounds never return)")
        return self


Source = Annotated[Stockpile | Production | Import, Field(discriminator="kind")]


class Policy(Strict):
    issue: Literal["proportional", "priority"] = "proportional"
    order: list[str] | None = None
    reserve_days: Days | None = None
    ration_fraction: Fraction | None = None
    sources: Sources = None

    @model_validator(mode="after")
    def _ration(self):
        if (self.reserve_days is None) != (self.ration_fraction is None):
            missing = "ration_fraction" if self.ration_fraction is None else "reserve_days"
            raise _RelPathError(missing,
                             "rationing needs both reserve_days (days of base fire) and ration_fraction")
        return self


class Strikes(Strict):
    """Depot strikes: Poisson events, each destroying a random fraction of every stock."""

    per_year: PerYear
    fraction: Fraction
    sources: Sources = None


class Correlation(Strict):
    """A Spearman rank correlation between two sampled parameters (paths as in the results)."""

    between: list[str] = Field(min_length=2, max_length=2)
    spearman: float = Field(ge=-1, le=1)
    sources: Sources = None

    @field_validator("between")
    @classmethod
    def _two(cls, v):
        if v[0] == v[1]:
            raise ValueError(f"needs two different parameters (found '{v[0]}' twice)")
        return v


OBS_NAME_RE = r"^[a-z0-9_]+$"
#: what an observation may count: the kernel's table of observable quantities, in its order
QUANTITIES = tuple(layout.OBS_QUANTITIES)
STATISTICS = ("sum", "mean_per_day", "at_end", "share_of_fired")
#: the evidence about an observation: a band (accept or reject) or an error model (a density)
Evidence = Annotated[Uniform | Normal | Lognormal, Field(discriminator="dist")]


class Observation(Strict):
    """A quantity the simulation produces per run, over a window of days, with the evidence about it
    (``value``: a uniform band, or a normal or lognormal error model) and the figures rows it rests on."""

    name: str = Field(pattern=OBS_NAME_RE, max_length=64)
    quantity: Literal[QUANTITIES]
    source: str | None = None
    from_: dt.date | None = Field(None, alias="from")
    to: dt.date
    statistic: Literal["sum", "mean_per_day", "at_end", "share_of_fired"]
    value: Evidence
    cite: list[str] = Field(min_length=1, max_length=100)
    sources: Sources = None

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _d(cls, v):
        return _date_or_error(v)

    @field_validator("value", mode="before")
    @classmethod
    def _evidence(cls, v):
        if isinstance(v, dict) and v.get("dist") not in (None, "uniform", "normal", "lognormal"):
            raise ValueError(f"expected a band {{ dist = \"uniform\", low, high }} or an error model (normal, "
                             f"lognormal), found dist = '{shorten(str(v.get('dist')))}'")
        if not isinstance(v, dict) and not isinstance(v, bool):
            raise ValueError("expected a band { dist = \"uniform\", low, high } or an error model { dist = "
                             "\"normal\", mean, sd } / { dist = \"lognormal\", median, sigma }")
        if isinstance(v, dict) and v.get("dist") == "normal" and ("low" in v or "high" in v):
            raise ValueError("a normal error model takes mean and sd (no low/high truncation)")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        q, stat = self.quantity, self.statistic
        if self.source is not None and q in ("demand", "shortfall"):
            raise _RelPathError("source", f"{q} is not counted by source (leave source out)")
        if stat == "share_of_fired":
            if self.source is None:
                raise _RelPathError("source", "statistic = \"share_of_fired\" needs a source (whose share of "
                                    "all rounds fired)")
            if q in ("stock", "demand", "shortfall", "containers"):
                what = "containers are not rounds" if q == "containers" else f"{q} is not one"
                raise _RelPathError("statistic", f"share_of_fired divides a flow by source by all rounds fired; "
                                    f"{what}")
        if stat == "at_end" and q != "stock":
            raise _RelPathError("statistic", "at_end is the stock on `to`: use quantity = \"stock\" (a flow "
                                "is a sum or a mean_per_day)")
        if self.from_ is not None and self.from_ > self.to:
            raise _RelPathError("to", f"the window is reversed: to = {self.to} is before from = {self.from_}")
        if stat == "share_of_fired" and isinstance(self.value, Uniform) and not (0 <= self.value.low
                                                                               and self.value.high <= 1):
            raise _RelPathError("value", "a share of fire lies in [0, 1]; the band "
                                f"[{self.value.low:g}, {self.value.high:g}] leaves it")
        return self


#: the per-run variables of a results file, in file order (results/schema.py declares each and checks
#: that it declares exactly these); ``[output] per_run`` keeps a subset
PER_RUN_NAMES = (
    "parameters", "first_shortage_day", "shortage_days", "demand_total", "fired_total", "effective_total",
    "shortfall_total", "stock_min", "stock_final", "initial_stock", "received", "fired_by_source", "duds",
    "effective_by_source", "stock_final_by_source", "dispatched", "refurbished", "lost", "rejected", "reworked",
    "disruptions", "refired", "refire_asked_total", "rationed_days", "depot_strikes", "containers", "regime_days",
    "regime_entries",
)


class Output(Strict):
    shortage_threshold: float = Field(0.05, ge=0, lt=1)
    quantiles: list[float] = Field(default_factory=lambda: [0.05, 0.25, 0.5, 0.75, 0.95],
                                   min_length=1, max_length=99)
    trajectory_sample: int = Field(100, ge=0, le=10000)
    #: the per-run variables kept in the results file (None: all); per-day statistics are always kept
    per_run: list[str] | None = Field(None, min_length=1, max_length=len(PER_RUN_NAMES))

    @field_validator("quantiles")
    @classmethod
    def _qs(cls, v):
        if any(not 0 < q < 1 for q in v):
            raise ValueError("quantiles must lie strictly between 0 and 1")
        if sorted(set(v)) != list(v):
            raise ValueError("quantiles must be increasing and distinct")
        return v


class Scenario(Strict):
    scenario: Meta
    run: RunCfg = Field(default_factory=RunCfg)
    demand: Demand
    source: list[Source] = Field(min_length=1, max_length=MAX_SOURCES)
    policy: Policy = Field(default_factory=Policy)
    strikes: Strikes | None = None
    correlation: list[Correlation] | None = Field(None, max_length=MAX_CORRELATIONS)
    output: Output = Field(default_factory=Output)
    observation: list[Observation] | None = Field(None, max_length=256)
    sources: Sources = None

    @field_validator("source", "correlation", mode="before")
    @classmethod
    def _not_too_many(cls, v, info):
        """Too many tables are refused before each is validated (a list of 10^5 sources took minutes)."""
        most = {"source": MAX_SOURCES, "correlation": MAX_CORRELATIONS}[info.field_name]
        if isinstance(v, list) and len(v) > most:
            raise ValueError(f"at most {most} [[{info.field_name}]] tables, found {len(v)}")
        return v

    @model_validator(mode="after")
    def _cross(self):
        names = [s.name for s in self.source]
        seen = set()
        for i, n in enumerate(names):
            if n in seen:
                raise _PathError(f"source[{i}].name", f"duplicate source name '{n}'")
            seen.add(n)
        for i, name in enumerate(self.output.per_run or []):  # [output] per_run: known, distinct names
            if name not in PER_RUN_NAMES:
                near = difflib.get_close_matches(name[:200], PER_RUN_NAMES, n=1, cutoff=0.5)
                hint = f"; did you mean '{near[0]}'?" if near else f"; per-run variables are {', '.join(PER_RUN_NAMES)}"
                raise _PathError(f"output.per_run[{i}]", f"unknown per-run variable '{shorten(name)}'{hint}")
            if name in self.output.per_run[:i]:
                raise _PathError(f"output.per_run[{i}]", f"'{name}' is listed twice")
        p = self.policy
        if p.issue == "priority" and not p.order:
            raise _PathError("policy.order", "issue = \"priority\" needs order = [source names]")
        if p.order is not None:  # checked with either policy: --set/--vary policy.issue switches between them
            unknown = [o for o in p.order if o not in seen]
            if unknown:
                raise _PathError("policy.order", f"unknown source '{shorten(str(unknown[0]))}'; sources are {names}")
            if sorted(p.order) != sorted(names):
                missing = sorted(set(names) - set(p.order))
                raise _PathError(
                    "policy.order", f"must name every source exactly once (missing or repeated: {missing})"
                )
        self._observations(names)
        start = self.scenario.start_date
        sched = [("demand.base", self.demand.base)]
        for i, src in enumerate(self.source):
            for f in ("annual", "shipments_per_month", "shipment_size"):
                if hasattr(src, f):
                    sched.append((f"source[{i}].{f}", getattr(src, f)))
            for j, comp in enumerate(getattr(src, "components", None) or []):
                sched.append((f"source[{i}].components[{j}].annual", comp.annual))
        for path, v in sched:
            if is_schedule(v) and v[0].from_ > start:
                raise _PathError(f"{path}[0].from", f"the first piece of a schedule must start on or before "
                                 f"scenario.start_date ({start}); found {v[0].from_}")
        return self

    def _observations(self, names: list[str]) -> None:
        """Names unique, sources known (dispatched: an import), windows inside the horizon, cites in the
        figures table."""
        if not self.observation:
            return
        start = self.scenario.start_date
        last = start + dt.timedelta(days=self.scenario.horizon_days - 1)
        seen: dict[str, int] = {}
        table = None
        for i, o in enumerate(self.observation):
            at = f"observation[{i}]"
            if o.name in seen:
                raise _PathError(f"{at}.name", f"duplicate observation name '{o.name}' (also "
                                 f"observation[{seen[o.name]}])")
            seen[o.name] = i
            if o.source is not None:
                if o.source not in names:
                    raise _PathError(f"{at}.source", f"unknown source '{shorten(o.source)}'; sources are {names}")
                kind = self.source[names.index(o.source)].kind
                if o.quantity == "dispatched" and kind != "import":
                    raise _PathError(f"{at}.source", f"dispatched counts what an import supplier ships; "
                                     f"'{o.source}' is a {kind}")
                if o.quantity == "containers" and not (kind == "import" and isinstance(
                        self.source[names.index(o.source)].shipment_size, Containers)):
                    raise _PathError(f"{at}.source", f"containers counts an import by the container "
                                     f"(shipment_size = {{ containers, rounds_per_container }}); '{o.source}' "
                                     f"is {'an import by the round' if kind == 'import' else 'a ' + kind}")
            for key, d in (("from", o.from_), ("to", o.to)):
                if d is not None and not start <= d <= last:
                    raise _PathError(f"{at}.{key}", f"{d} is outside the horizon {start} .. {last}")
            if table is None:
                from artysim.model import figures  # the figures table: read once, only with observations

                try:
                    path = figures.figures_path()
                    table = figures.read_table(path)
                except Exception as e:  # no table, or a damaged one
                    raise _PathError(f"{at}.cite", f"cannot resolve citations: {_one_line(str(e))}") from None
                known = figures.row_ids(table)
            for j, c in enumerate(o.cite):
                if c not in known:
                    raise _PathError(f"{at}.cite[{j}]", f"'{shorten(c)}' is not a row of {path.name} "
                                     f"(rows look like N33, D01)")

    @property
    def start_date(self) -> dt.date:
        return self.scenario.start_date

    @property
    def horizon(self) -> int:
        return self.scenario.horizon_days

    def source_names(self) -> list[str]:
        return [s.name for s in self.source]


class _PathError(ValueError):
    """A cross-field problem whose key path is known."""

    def __init__(self, path: str, msg: str):
        super().__init__(msg)
        self.path = path


class _RelPathError(_PathError):
    """As _PathError, with a path relative to the table whose validator raised it."""


_TAGS = set(DIST_NAMES) | {"stockpile", "production", "import"}


def _loc_to_path(loc: tuple) -> str:
    """pydantic's error location -> ``source[2].dud_rate.mean`` (dropping union tags it inserts)."""
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int):
            parts.append(f"[{item}]")
            continue
        s = str(item)
        prev = loc[i - 1] if i > 0 else None
        is_tag = s in _TAGS and (isinstance(prev, int) or prev in _DIST_FIELDS)
        if is_tag or s.startswith("function-"):
            continue
        parts.append(("." if parts else "") + shorten(s))
    return "".join(parts)


_DIST_FIELDS = {
    "base", "daily_cv", "dud_rate", "accuracy", "initial", "annual", "annual_end", "start_day",
    "shipments_per_month", "shipment_size", "transit_days", "available", "lot_concentration",
    "value", "multiplier", "mean_days", "legacy", "legacy_serviceable", "refurbish_per_day", "refurbished_dud_rate",
    "per_year", "cut", "days", "fraction", "reject_on_receipt", "rework_days", "rework_yield", "reserve_days",
    "ration_fraction", "refire", "containers", "rounds_per_container",
}


def _format(err: dict) -> str:
    # the tags of the schedule-or-value union are not keys of the document
    loc = tuple(x for x in err.get("loc", ()) if not (isinstance(x, str) and x.startswith("__tag_")))
    path = _loc_to_path(loc)
    ctx = err.get("ctx") or {}
    typ = err.get("type", "")
    if typ == "unknown_key":
        path = f"{path}.{ctx['key']}" if path else ctx["key"]
        return f"{path}: {err['msg']}"
    if typ == "value_error" and isinstance(ctx.get("error"), _PathError):
        e = ctx["error"]
        if isinstance(e, _RelPathError) and path:
            return f"{path}{'' if e.path.startswith('[') else '.'}{e.path}: {e}"
        return f"{e.path}: {e}"
    msg = err.get("msg", "")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if typ == "missing":
        msg = "required key is missing"
    elif typ == "model_type" and "Piece" in msg:
        msg = "expected a schedule piece { from = DATE, value = <number or distribution> }"
    elif typ in ("model_attributes_type", "dict_type") and loc and loc[-1] in _DIST_FIELDS:
        msg = "expected a number or a distribution table { dist = ... }"
    elif typ == "union_tag_invalid":
        field = "kind" if ctx.get("discriminator") == "'kind'" else "dist"
        path = f"{path}.{field}" if path else field
        msg = f"expected one of {ctx.get('expected_tags')}, found '{shorten(str(ctx.get('tag')))}'"
    elif typ == "union_tag_not_found":
        field = "kind" if ctx.get("discriminator") == "'kind'" else "dist"
        msg = f"a table here needs a '{field}' key ({'source kind' if field == 'kind' else 'distribution name'})"
    found = err.get("input")
    if isinstance(found, bool) and typ not in ("missing",):
        want = "an integer" if "integer" in msg else "a number"
        kind = " or a distribution table" if "distribution" in msg else ""
        return f"{path or '(top level)'}: expected {want}{kind}, found {str(found).lower()} (a boolean is not a number)"
    if (typ not in ("missing", "union_tag_invalid", "union_tag_not_found")
            and not isinstance(found, dict) and "found" not in msg):
        shown = repr(found)
        msg = f"{msg} (found {shown if len(shown) <= 80 else shown[:72] + ' ...' + shown[-1]})"
    return f"{path or '(top level)'}: {msg}"


def _one_line(text: str) -> str:
    """A newline or control character from the document (a name, a tag, a key) shown escaped."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def parse(raw: dict, origin: str = "<scenario>") -> Scenario:
    """Validate a scenario document; raises ScenarioError naming the file and key path.

    Checks that need the whole model (correlations between sampled parameters, regimes that form
    one chain) run when the model is built (``artysim.model.load``), which every command does first."""
    try:
        scn = Scenario.model_validate(raw)
    except ValidationError as e:
        errs = e.errors(include_url=False)
        first = shorten(_one_line(_format(errs[0])), 400)  # every echoed key and value is shortened already
        more = f" (and {len(errs) - 1} more problem{'s' if len(errs) > 2 else ''})" if len(errs) > 1 else ""
        raise ScenarioError(f"{origin}: {first}{more}") from None
    return scn


def read_text(path: str | Path) -> str:
    p = Path(path)
    if not p.exists():
        raise ScenarioError(f"{p}: no such scenario file")
    if p.is_dir():
        raise ScenarioError(f"{p}: is a folder, expected a scenario .toml file")
    if not p.is_file():  # a FIFO or a device would block or never end
        raise ScenarioError(f"{p}: not a regular file, expected a scenario .toml file")
    try:
        size = p.stat().st_size
        if size > MAX_TEXT:
            raise ScenarioError(f"{p}: {size} bytes is too large for a scenario file (at most {MAX_TEXT})")
        return p.read_text(encoding="utf-8-sig")  # a UTF-8 byte order mark (some editors write one) is skipped
    except UnicodeDecodeError:
        raise ScenarioError(f"{p}: not a UTF-8 text file") from None
    except OSError as e:
        raise ScenarioError(f"{p}: cannot read ({e.strerror or e})") from None


MAX_TEXT = 16 * 2**20  # bytes of a scenario file


def _depth(doc) -> int:
    """How deeply tables and arrays nest (iteratively: the document may be deeper than the stack)."""
    deepest, todo = 0, [(doc, 1)]
    while todo:
        node, d = todo.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            break
        kids = node.values() if isinstance(node, dict) else node
        todo.extend((k, d + 1) for k in kids if isinstance(k, (dict, list)))
    return deepest


#: a key of more than MAX_DEPTH dotted parts (tomllib's time and memory grow with the square of the parts:
#: 100 000 of them took 10s of GB); each try walks at most MAX_DEPTH parts, so the search is linear
_LONG_KEY = re.compile(r"(?<![A-Za-z0-9_\-.\"'])(?:(?:[A-Za-z0-9_\-]+|\"[^\"\n]*\"|'[^'\n]*')[ \t]*\.[ \t]*)"
                       + f"{{{MAX_DEPTH}}}")


def _toml(text: str):
    """tomllib.loads, refusing nesting deeper than MAX_DEPTH: dotted keys before parsing, arrays and
    inline tables after (tomllib overflows the stack at a few hundred levels: that RecursionError is
    turned into the same refusal)."""
    if _LONG_KEY.search(text):
        raise ValueError(f"tables nested more than {MAX_DEPTH} deep (a key of more than {MAX_DEPTH} dotted parts)")
    try:
        doc = tomllib.loads(text)
    except RecursionError:
        raise ValueError(f"tables or arrays nested more than {MAX_DEPTH} deep") from None
    if _depth(doc) > MAX_DEPTH:
        raise ValueError(f"tables or arrays nested more than {MAX_DEPTH} deep")
    return doc


def parse_toml(text: str, origin: str) -> dict:
    text = text.removeprefix("\ufeff")
    try:
        return _toml(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{origin}: not valid TOML: {_one_line(shorten(str(e), 200))}") from None
    except ValueError as e:
        raise ScenarioError(f"{origin}: not a scenario: {e}") from None


def apply_overrides(raw: dict, sets: list[str]) -> dict:
    """Apply ``path=value`` overrides (value in TOML syntax, bare words as strings)."""
    doc = json.loads(json.dumps(raw, default=str))
    for item in sets:
        shown = repr(shorten(item))
        if "=" not in item:
            raise ScenarioError(f"--set {shown}: expected path=value")
        path, value_text = item.split("=", 1)
        path = path.strip()
        try:
            value = _toml(f"v = {value_text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = value_text.strip()
        except ValueError as e:
            raise ScenarioError(f"--set {shown}: {e}") from None
        if isinstance(value, (dt.date, dt.datetime)):
            value = value.isoformat()
        keys = path.split(".")
        if not all(keys):
            raise ScenarioError(f"--set {shown}: empty part in key path '{shorten(path)}'")
        node = doc
        walked: list[str] = []
        i = 0
        while i < len(keys) - 1:
            k = keys[i]
            if k == "source" and isinstance(node.get("source"), list):
                if i + 2 > len(keys) - 1:
                    raise ScenarioError(f"--set {shown}: name a field of the source, e.g. source.NAME.dud_rate")
                name = keys[i + 1]
                match = [s for s in node["source"] if isinstance(s, dict) and s.get("name") == name]
                if not match:
                    names = [s.get("name") for s in node["source"] if isinstance(s, dict)]
                    raise ScenarioError(f"--set {shown}: no source named '{shorten(name)}' "
                                        f"(sources: {shorten(str(names))})")
                node = match[0]
                walked += [k, name]
                i += 2
                continue
            if k not in node:
                node[k] = {}
            if not isinstance(node[k], dict):
                raise ScenarioError(
                    f"--set {shown}: '{shorten('.'.join(walked + [k]))}' is a value, not a table"
                )
            node = node[k]
            walked.append(k)
            i += 1
        node[keys[-1]] = value
    return doc


def canonical_json(raw: dict) -> str:
    return json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)


def scenario_hash(raw: dict) -> str:
    """SHA-256 of the effective scenario, without the [run] table (runs and seed are recorded apart)."""
    doc = {k: v for k, v in raw.items() if k != "run"}
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-]", "_", name)
