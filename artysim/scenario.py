"""Scenario files: TOML text -> frozen, validated objects, with every problem named by key path."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from functools import partial
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
import tomllib
from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

from artysim.distributions import DIST_NAMES, Quantity
from artysim.errors import ScenarioError
from artysim.modelbase import Strict

NAME_RE = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
MAX_ROUNDS = 1e13  # refuse quantities that could overflow 64-bit totals over long horizons
MAX_HORIZON = 36500


def _in(lo: float, hi: float, lo_open: bool, hi_open: bool, what: str, d):
    """Refuse a distribution whose support leaves the field's domain.

    Upper bounds of counts (``hi_open`` false and ``hi`` >= 1e6) are overflow guards: a long upper
    tail is accepted while its 1 - 1e-12 quantile stays below them.
    """
    a, b = d.support()
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
        if isinstance(v, str):
            try:
                return dt.date.fromisoformat(v)
            except ValueError:
                raise ValueError(f"expected a date YYYY-MM-DD, found '{v}'") from None
        if isinstance(v, dt.datetime):
            raise ValueError("expected a date without a time of day")
        return v

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


class Demand(Strict):
    base: RoundsPerDay
    daily_cv: CV = 0.0
    sources: Sources = None


class _SourceBase(Strict):
    name: str = Field(pattern=NAME_RE, max_length=64)
    dud_rate: Fraction = 0.0
    accuracy: OpenFraction = 1.0
    sources: Sources = None


class Stockpile(_SourceBase):
    kind: Literal["stockpile"]
    initial: Rounds


class Production(_SourceBase):
    kind: Literal["production"]
    annual: RoundsPerYear
    annual_end: RoundsPerYear | None = None
    daily_cv: CV = 0.0


class Import(_SourceBase):
    kind: Literal["import"]
    start_day: Days = 0.0
    shipments_per_month: PerMonth
    shipment_size: Rounds
    transit_days: Days = 0.0
    available: Rounds | None = None
    lot_concentration: Concentration | None = None


Source = Annotated[Stockpile | Production | Import, Field(discriminator="kind")]


class Policy(Strict):
    issue: Literal["proportional", "priority"] = "proportional"
    order: list[str] | None = None
    sources: Sources = None


class Output(Strict):
    shortage_threshold: float = Field(0.05, ge=0, lt=1)
    quantiles: list[float] = Field(default_factory=lambda: [0.05, 0.25, 0.5, 0.75, 0.95],
                                   min_length=1, max_length=99)
    trajectory_sample: int = Field(100, ge=0, le=10000)

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
    source: list[Source] = Field(min_length=1, max_length=64)
    policy: Policy = Field(default_factory=Policy)
    output: Output = Field(default_factory=Output)
    sources: Sources = None

    @model_validator(mode="after")
    def _cross(self):
        names = [s.name for s in self.source]
        seen = set()
        for i, n in enumerate(names):
            if n in seen:
                raise _PathError(f"source[{i}].name", f"duplicate source name '{n}'")
            seen.add(n)
        p = self.policy
        if p.issue == "priority":
            if not p.order:
                raise _PathError("policy.order", "issue = \"priority\" needs order = [source names]")
            unknown = [o for o in p.order if o not in seen]
            if unknown:
                raise _PathError("policy.order", f"unknown source '{unknown[0]}'; sources are {names}")
            if sorted(p.order) != sorted(names):
                missing = sorted(set(names) - set(p.order))
                raise _PathError(
                    "policy.order", f"must name every source exactly once (missing or repeated: {missing})"
                )
        elif p.order is not None:
            raise _PathError("policy.order", "order is only used with issue = \"priority\"")
        return self

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
        parts.append(("." if parts else "") + s)
    return "".join(parts)


_DIST_FIELDS = {
    "base", "daily_cv", "dud_rate", "accuracy", "initial", "annual", "annual_end", "start_day",
    "shipments_per_month", "shipment_size", "transit_days", "available", "lot_concentration",
}


def _format(err: dict) -> str:
    loc = tuple(err.get("loc", ()))
    path = _loc_to_path(loc)
    ctx = err.get("ctx") or {}
    typ = err.get("type", "")
    if typ == "unknown_key":
        path = f"{path}.{ctx['key']}" if path else ctx["key"]
        return f"{path}: {err['msg']}"
    if typ == "value_error" and isinstance(ctx.get("error"), _PathError):
        e = ctx["error"]
        return f"{e.path}: {e}"
    msg = err.get("msg", "")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if typ == "missing":
        msg = "required key is missing"
    elif typ in ("model_attributes_type", "dict_type") and loc and loc[-1] in _DIST_FIELDS:
        msg = "expected a number or a distribution table { dist = ... }"
    elif typ == "union_tag_invalid":
        field = "kind" if ctx.get("discriminator") == "'kind'" else "dist"
        path = f"{path}.{field}" if path else field
        msg = f"expected one of {ctx.get('expected_tags')}, found '{ctx.get('tag')}'"
    elif typ == "union_tag_not_found":
        field = "kind" if ctx.get("discriminator") == "'kind'" else "dist"
        msg = f"a table here needs a '{field}' key ({'source kind' if field == 'kind' else 'distribution name'})"
    found = err.get("input")
    if (typ not in ("missing", "union_tag_invalid", "union_tag_not_found")
            and not isinstance(found, dict) and "found" not in msg):
        shown = repr(found)
        msg = f"{msg} (found {shown if len(shown) <= 80 else shown[:72] + ' ...' + shown[-1]})"
    return f"{path or '(top level)'}: {msg}"


def parse(raw: dict, origin: str = "<scenario>") -> Scenario:
    """Validate a scenario document; raises ScenarioError naming the file and key path."""
    try:
        return Scenario.model_validate(raw)
    except ValidationError as e:
        errs = e.errors(include_url=False)
        first = _format(errs[0])
        more = f" (and {len(errs) - 1} more problem{'s' if len(errs) > 2 else ''})" if len(errs) > 1 else ""
        raise ScenarioError(f"{origin}: {first}{more}") from None


def read_text(path: str | Path) -> str:
    p = Path(path)
    if not p.exists():
        raise ScenarioError(f"{p}: no such scenario file")
    if p.is_dir():
        raise ScenarioError(f"{p}: is a folder, expected a scenario .toml file")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(f"{p}: not a UTF-8 text file") from None


def parse_toml(text: str, origin: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{origin}: not valid TOML: {e}") from None


def apply_overrides(raw: dict, sets: list[str]) -> dict:
    """Apply ``path=value`` overrides (value in TOML syntax, bare words as strings)."""
    doc = json.loads(json.dumps(raw, default=str))
    for item in sets:
        if "=" not in item:
            raise ScenarioError(f"--set {item!r}: expected path=value")
        path, value_text = item.split("=", 1)
        path = path.strip()
        try:
            value = tomllib.loads(f"v = {value_text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = value_text.strip()
        if isinstance(value, (dt.date, dt.datetime)):
            value = value.isoformat()
        keys = path.split(".")
        if not all(keys):
            raise ScenarioError(f"--set {item!r}: empty part in key path '{path}'")
        node = doc
        walked: list[str] = []
        i = 0
        while i < len(keys) - 1:
            k = keys[i]
            if k == "source" and isinstance(node.get("source"), list):
                if i + 2 > len(keys) - 1:
                    raise ScenarioError(f"--set {item!r}: name a field of the source, e.g. source.NAME.dud_rate")
                name = keys[i + 1]
                match = [s for s in node["source"] if isinstance(s, dict) and s.get("name") == name]
                if not match:
                    names = [s.get("name") for s in node["source"] if isinstance(s, dict)]
                    raise ScenarioError(f"--set {item!r}: no source named '{name}' (sources: {names})")
                node = match[0]
                walked += [k, name]
                i += 2
                continue
            if k not in node:
                node[k] = {}
            if not isinstance(node[k], dict):
                raise ScenarioError(
                    f"--set {item!r}: '{'.'.join(walked + [k])}' is a value, not a table"
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


class Loaded:
    """A scenario as validated, with the text and overrides it came from."""

    def __init__(self, scenario: Scenario, text: str, raw: dict, overrides: list[str], origin: str):
        self.scenario = scenario
        self.text = text
        self.raw = raw
        self.overrides = list(overrides)
        self.origin = origin
        self.hash = scenario_hash(raw)


def load(path: str | Path, overrides: list[str] | None = None) -> Loaded:
    """Read, override and validate a scenario file."""
    origin = str(path)
    text = read_text(path)
    raw = parse_toml(text, origin)
    raw = apply_overrides(raw, overrides or [])
    scn = parse(raw, origin)
    return Loaded(scn, text, raw, overrides or [], origin)


def loads(text: str, overrides: list[str] | None = None, origin: str = "<string>") -> Loaded:
    raw = apply_overrides(parse_toml(text, origin), overrides or [])
    return Loaded(parse(raw, origin), text, raw, overrides or [], origin)


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-]", "_", name)
