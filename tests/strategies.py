"""Hypothesis strategies for scenario documents: valid ones, and mutations of them.

One place to extend when the model grows: add a field to ``SOURCE_FIELDS`` (or ``DEMAND_FIELDS``)
with its domain from ``DOMAINS``, or a new source kind, and every fuzz and invariant suite generates
it. Generated values stay small (short horizons, few rounds) so that a simulation of each example
takes milliseconds; the loader's limits are exercised by the mutations instead.

Example counts come from ``examples(n)``: ``n`` scaled by ``ARTYSIM_FUZZ_SCALE`` (default 1), with a
fixed seed (``derandomize``) so a CI run is deterministic.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import os
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# ----------------------------------------------------------------------------- settings


def examples(n: int, **kw) -> settings:
    """Bounded, deterministic Hypothesis settings: ``n`` examples times ``ARTYSIM_FUZZ_SCALE``."""
    scale = float(os.environ.get("ARTYSIM_FUZZ_SCALE", "1"))
    return settings(
        max_examples=max(1, int(n * scale)), deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        **kw,
    )


# ----------------------------------------------------------------------------- domains


@dataclass(frozen=True)
class Domain:
    """Where generated values of a field lie (inside what the loader accepts).

    ``unbounded`` means the loader accepts a long upper tail (lognormal, gamma, untruncated normal
    above ``lo``); ``beta`` that a Beta on [0, 1] fits (closed fractions)."""

    lo: float
    hi: float
    integer: bool = False
    unbounded: bool = False
    beta: bool = False


DOMAINS = {
    "rounds": Domain(0, 2e6, integer=True, unbounded=True),
    "shipment": Domain(1, 2e5, integer=True, unbounded=True),
    "rounds_per_day": Domain(0, 3e4, integer=True, unbounded=True),
    "rounds_per_year": Domain(0, 5e6, integer=True, unbounded=True),
    "fraction": Domain(0, 1, beta=True),
    "open_fraction": Domain(0.05, 1),
    "cv": Domain(0, 1),
    "days": Domain(0, 60, unbounded=True),
    "per_month": Domain(0, 12),
    "concentration": Domain(1, 500),
    "multiplier": Domain(0, 5),
    "mean_days": Domain(2, 60),  # the loader's floor is 1; 2 keeps generated ranges clear of it
    "per_year": Domain(0, 50),
    "refurb_rate": Domain(0, 5e3, integer=True, unbounded=True),
    "containers": Domain(0, 500, integer=True, unbounded=True),
    "rounds_per_container": Domain(0, 1000, unbounded=True),
}

#: field -> (domain, required) by table; add new model keys here
DEMAND_FIELDS = {"base": ("rounds_per_day", True), "daily_cv": ("cv", False), "refire": ("fraction", False)}
COMMON_SOURCE_FIELDS = {"dud_rate": ("fraction", False), "accuracy": ("open_fraction", False)}
SOURCE_FIELDS = {
    "stockpile": {"initial": ("rounds", True)},
    "production": {"annual": ("rounds_per_year", True), "annual_end": ("rounds_per_year", False),  # or components
                   "daily_cv": ("cv", False)},
    "import": {"start_day": ("days", False), "shipments_per_month": ("per_month", True),
               "shipment_size": ("shipment", True), "transit_days": ("days", False),
               "available": ("rounds", False), "lot_concentration": ("concentration", False)},
}
#: further forms a quantity may take (e.g. a schedule of values by date): name -> function of a
#: Domain returning a strategy of documents whose values lie in it
EXTRA_QUANTITIES: dict = {}
#: fields of any table whose values are fractions (mutated to lie outside [0, 1])
FRACTION_FIELDS = {"dud_rate", "accuracy", "shortage_threshold", "mean", "legacy_serviceable",
                   "refurbished_dud_rate", "reject_on_receipt", "rework_yield", "ration_fraction", "cut",
                   "fraction", "spearman", "refire"}


# ----------------------------------------------------------------------------- valid documents


def _num(lo: float, hi: float, integer: bool = False) -> st.SearchStrategy:
    if integer:
        return st.integers(int(math.ceil(lo)), int(math.floor(hi)))
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def quantity(draw, domain: str) -> object:
    """A number or a distribution table whose support lies in ``domain``."""
    d = DOMAINS[domain]
    lo, hi = d.lo, d.hi
    kinds = ["plain", "fixed", "uniform", "triangular", "pert", "discrete", "normal"]
    if d.beta:
        kinds.append("beta")
    if d.unbounded:
        kinds += ["lognormal", "gamma"]
    kinds += sorted(EXTRA_QUANTITIES)
    kind = draw(st.sampled_from(kinds))
    if kind in EXTRA_QUANTITIES:
        return draw(EXTRA_QUANTITIES[kind](d))
    if kind == "plain":
        return draw(_num(lo, hi, d.integer))
    if kind == "fixed":
        return {"dist": "fixed", "value": draw(_num(lo, hi))}
    if kind in ("uniform", "triangular", "pert", "normal"):
        a = draw(_num(lo, hi))
        b = draw(_num(lo, hi))
        a, b = min(a, b), max(a, b)
        if not b - a > 1e-6 * max(1.0, abs(b)):
            b = a + max(1e-3, 1e-3 * abs(a)) if a + 1e-3 <= hi else hi
            a = min(a, b - 1e-3)
        if kind == "uniform":
            return {"dist": "uniform", "low": a, "high": b}
        if kind == "normal":
            m = draw(st.floats(a, b))
            sd = draw(st.floats(1e-3, 1.0)) * (b - a)
            return {"dist": "normal", "mean": m, "sd": sd, "low": a, "high": b}
        mode = draw(st.floats(a, b))
        doc = {"dist": kind, "min": a, "mode": mode, "max": b}
        if kind == "pert" and draw(st.booleans()):
            doc["lambda"] = draw(st.floats(0.5, 10))
        return doc
    if kind == "discrete":
        vals = draw(st.lists(_num(lo, hi, d.integer), min_size=1, max_size=5))
        doc = {"dist": "discrete", "values": vals}
        if draw(st.booleans()):
            doc["weights"] = draw(st.lists(st.floats(0.1, 10), min_size=len(vals), max_size=len(vals)))
        return doc
    if kind == "beta":
        if draw(st.booleans()):
            return {"dist": "beta", "mean": draw(st.floats(0.01, 0.99)), "concentration": draw(st.floats(1, 500))}
        return {"dist": "beta", "alpha": draw(st.floats(0.5, 50)), "beta": draw(st.floats(0.5, 50))}
    median = draw(st.floats(max(lo, 1.0), max(hi, 2.0)))
    if kind == "lognormal":
        if draw(st.booleans()):
            return {"dist": "lognormal", "median": median, "sigma": draw(st.floats(0.01, 0.8))}
        return {"dist": "lognormal", "median": median, "p95": median * draw(st.floats(1.01, 3.0))}
    return {"dist": "gamma", "mean": median, "sd": median * draw(st.floats(0.01, 0.8))}


NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
names = st.text(NAME_ALPHABET, min_size=1, max_size=12).map(lambda s: "s" + s)


@st.composite
def source_doc(draw, kind: str | None = None, name: str | None = None) -> dict:
    kind = kind or draw(st.sampled_from(sorted(SOURCE_FIELDS)))
    doc: dict = {"name": name or draw(names), "kind": kind}
    fields = {**SOURCE_FIELDS[kind], **COMMON_SOURCE_FIELDS}
    for f, (domain, required) in fields.items():
        if required or draw(st.booleans()):
            doc[f] = draw(quantity(domain))
    return doc


@st.composite
def scenario_doc(draw, max_horizon: int = 60, max_sources: int = 4, need_stockpile: bool = False) -> dict:
    """A valid scenario document (the dict a TOML file parses to)."""
    n = draw(st.integers(1, max_sources))
    src_names = draw(st.lists(names, min_size=n, max_size=n, unique=True))
    kinds = [draw(st.sampled_from(sorted(SOURCE_FIELDS))) for _ in range(n)]
    if need_stockpile and "stockpile" not in kinds:
        kinds[draw(st.integers(0, n - 1))] = "stockpile"
    sources = [draw(source_doc(k, nm)) for k, nm in zip(kinds, src_names)]
    doc: dict = {
        "scenario": {
            "name": draw(names),
            "start_date": draw(st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31))),
            "horizon_days": draw(st.integers(1, max_horizon)),
        },
        "demand": {f: draw(quantity(dom)) for f, (dom, req) in DEMAND_FIELDS.items() if req or draw(st.booleans())},
        "source": sources,
    }
    if draw(st.booleans()):
        doc["scenario"]["description"] = draw(st.text(max_size=40))
    if draw(st.booleans()):
        doc["run"] = {"runs": draw(st.integers(1, 1000)), "seed": draw(st.integers(0, 2**63 - 1))}
    if draw(st.booleans()):
        doc["policy"] = {"issue": "priority", "order": draw(st.permutations(src_names))}
    elif draw(st.booleans()):
        doc["policy"] = {"issue": "proportional"}
    out: dict = {}
    if draw(st.booleans()):
        out["shortage_threshold"] = draw(st.floats(0, 0.5))
    if draw(st.booleans()):
        qs = draw(st.lists(st.floats(0.01, 0.99), min_size=1, max_size=5, unique=True))
        out["quantiles"] = sorted(set(qs))
    if draw(st.booleans()):
        out["trajectory_sample"] = draw(st.integers(0, 5))
    if out:
        doc["output"] = out
    if draw(st.booleans()):
        draw(mechanisms(doc))
    if draw(st.booleans()):
        draw(observations(doc))
    return doc


OBS_QUANTITIES = ("demand", "fired", "effective", "duds", "received", "dispatched", "stock", "shortfall")


@st.composite
def observations(draw, doc: dict) -> dict:
    """Add 1-3 valid [[observation]] tables (windows inside the horizon, cites that resolve), in place."""
    start, horizon = doc["scenario"]["start_date"], doc["scenario"]["horizon_days"]
    srcs = doc["source"]
    out = []
    for i in range(draw(st.integers(1, 3))):
        by_container = [s["name"] for s in srcs if s["kind"] == "import" and isinstance(s.get("shipment_size"), dict)
                        and "containers" in s["shipment_size"]]
        q = draw(st.sampled_from(OBS_QUANTITIES + (("containers",) if by_container else ())))
        o: dict = {"name": f"obs_{i}", "quantity": q}
        imports = [s["name"] for s in srcs if s["kind"] == "import"]
        pool = [] if q in ("demand", "shortfall") else imports if q == "dispatched" else [s["name"] for s in srcs]
        if q == "containers":  # containers received: a source that ships by the container, always named
            o["source"] = draw(st.sampled_from(by_container))
        elif pool and draw(st.booleans()):
            o["source"] = draw(st.sampled_from(pool))
        a = draw(st.integers(0, horizon - 1))
        b = draw(st.integers(a, horizon - 1))
        if a > 0 or draw(st.booleans()):
            o["from"] = start + dt.timedelta(days=a)
        o["to"] = start + dt.timedelta(days=b)
        stats = ["sum", "mean_per_day"] + (["at_end"] if q == "stock" else []) + (
            ["share_of_fired"] if "source" in o and q not in ("stock", "containers") else [])
        o["statistic"] = draw(st.sampled_from(stats))
        o["value"] = draw(st.sampled_from([{"dist": "uniform", "low": 0, "high": 1},
                                           {"dist": "normal", "mean": 1000, "sd": 100},
                                           {"dist": "lognormal", "median": 1000, "sigma": 0.5}]))
        o["cite"] = draw(st.lists(st.sampled_from(["N33", "D01", "R01"]), min_size=1, max_size=2))
        out.append(o)
    doc["observation"] = out
    return doc


@st.composite
def schedule(draw, domain: str, start: dt.date, horizon: int) -> list:
    """A schedule: 1-3 pieces, the first on (or before) ``start``, dates increasing."""
    n = draw(st.integers(1, 3))
    offsets = sorted(set([0] + draw(st.lists(st.integers(1, max(1, horizon + 5)), max_size=n - 1))))
    first_back = draw(st.integers(0, 30))
    out = []
    for i, off in enumerate(offsets):
        day = start - dt.timedelta(days=first_back) if i == 0 else start + dt.timedelta(days=off)
        out.append({"from": day, "value": draw(quantity(domain))})
    return out


@st.composite
def component(draw, name: str, start: dt.date, horizon: int) -> dict:
    """A valid component line: an initial inventory above 0 (so it never lacks both output and
    inventory), an annual output or schedule, optionally a ramp and daily noise."""
    c: dict = {"name": name, "initial": draw(st.integers(1, 10**5))}
    if draw(st.booleans()):
        c["annual"] = draw(schedule("rounds_per_year", start, horizon))
    elif draw(st.booleans()):
        c["annual"] = draw(quantity("rounds_per_year"))
        if draw(st.booleans()):
            c["annual_end"] = draw(quantity("rounds_per_year"))
    if draw(st.booleans()):
        c["daily_cv"] = draw(quantity("cv"))
    return c


@st.composite
def mechanisms(draw, doc: dict) -> dict:
    """Add some of the model-depth mechanisms (valid combinations) to a valid document, in place."""
    start, horizon = doc["scenario"]["start_date"], doc["scenario"]["horizon_days"]
    if start.year < 1901 or start.year > 2099:
        return doc  # schedule dates before start must stay valid dates
    demand = doc["demand"]
    if draw(st.booleans()):
        demand["base"] = draw(schedule("rounds_per_day", start, horizon))
    if draw(st.booleans()):
        n = draw(st.integers(1, 3))
        rnames = [f"r{i}" for i in range(n)]
        regs = []
        for name in rnames:
            r = {"name": name, "multiplier": draw(quantity("multiplier")), "mean_days": draw(quantity("mean_days"))}
            if n > 1 and draw(st.booleans()):
                others = [o for o in rnames if o != name]
                w = draw(st.lists(st.floats(0.1, 5), min_size=len(others), max_size=len(others)))
                r["to"] = dict(zip(others, w))
            regs.append(r)
        demand["regime"] = regs
        if draw(st.booleans()):
            demand["initial_regime"] = draw(st.sampled_from(rnames))
    if draw(st.booleans()):
        pol = doc.setdefault("policy", {"issue": "proportional"})
        pol["reserve_days"] = draw(quantity("days"))
        pol["ration_fraction"] = draw(quantity("fraction"))
    if draw(st.booleans()):
        doc["strikes"] = {"per_year": draw(quantity("per_year")), "fraction": draw(quantity("fraction"))}
    for src in doc["source"]:
        if not draw(st.booleans()):
            continue
        if src["kind"] == "stockpile":
            src["legacy"] = draw(quantity("rounds"))
            src["refurbish_per_day"] = draw(quantity("refurb_rate"))
            if draw(st.booleans()):
                src["legacy_serviceable"] = draw(quantity("fraction"))
            if draw(st.booleans()):
                src["refurbished_dud_rate"] = draw(quantity("fraction"))
        elif src["kind"] == "production":
            if draw(st.booleans()):  # assembled from 1-3 component lines instead of annual
                for k in ("annual", "annual_end", "daily_cv"):
                    src.pop(k, None)
                src["components"] = [draw(component(f"c{i}", start, horizon)) for i in range(draw(st.integers(1, 3)))]
            elif "annual_end" not in src and draw(st.booleans()):
                src["annual"] = draw(schedule("rounds_per_year", start, horizon))
            src["disruptions"] = {"per_year": draw(quantity("per_year")), "cut": draw(quantity("fraction")),
                                  "days": draw(quantity("days"))}
        else:
            if draw(st.booleans()):
                src["shipments_per_month"] = draw(schedule("per_month", start, horizon))
            if draw(st.booleans()):
                src["shipment_size"] = draw(schedule("shipment", start, horizon))
            elif draw(st.booleans()):  # by the container: containers per shipment x rounds per container
                src["shipment_size"] = {"containers": draw(quantity("containers")),
                                        "rounds_per_container": draw(quantity("rounds_per_container"))}
            src["reject_on_receipt"] = draw(quantity("fraction"))
            if draw(st.booleans()):
                src["rework_days"] = draw(quantity("days"))
                src["rework_yield"] = draw(quantity("fraction"))
    continuous = ("uniform", "triangular", "pert", "normal", "lognormal", "gamma", "beta")  # never fixed
    if all(isinstance(demand.get(k), dict) and demand[k].get("dist") in continuous for k in ("base", "daily_cv")) \
            and draw(st.booleans()):
        doc["correlation"] = [{"between": ["demand.base", "demand.daily_cv"],
                               "spearman": draw(st.floats(-0.9, 0.9))}]
    return doc


# ----------------------------------------------------------------------------- mutations


def paths(doc, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a document (dict keys and list indices), containers included."""
    out = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    for k, v in items:
        p = prefix + (k,)
        out.append(p)
        out += paths(v, p)
    return out


def path_str(p: tuple) -> str:
    """``("source", 2, "dud_rate", "mean")`` -> ``source[2].dud_rate.mean`` (the loader's spelling)."""
    s = ""
    for k in p:
        if isinstance(k, int):
            s += f"[{k}]"
            continue
        k = str(k) if str(k).isprintable() else str(k).encode("unicode_escape").decode()  # as messages show it
        s += ("." if s else "") + k
    return s


def get(doc, p: tuple):
    for k in p:
        doc = doc[k]
    return doc


def _parent(doc, p: tuple):
    return get(doc, p[:-1]), p[-1]


@dataclass
class Mutation:
    """A mutated document; ``path`` is where it was changed and ``must_fail`` whether the loader
    has to refuse it (then its message must name ``expect`` or a path below it)."""

    doc: dict
    kind: str
    path: str
    must_fail: bool
    expect: str | None = None


WRONG_TYPES = st.sampled_from(["abc", "", [1, 2], [], True, False, {"x": 1}, {}, dt.date(2020, 1, 1)])
BAD_NUMBERS = st.sampled_from([-1, -1e-9, -1e300, math.nan, math.inf, -math.inf, 1e300, 10**30, -(10**30), 1e16])
UNICODE = st.text(min_size=1, max_size=12)
BAD_DATES = st.sampled_from(["0000-01-01", "2023-02-30", "2023-13-01", "99999-01-01", "yesterday", "",
                             "2023-9-1", "2023-09-01T00:00:00", dt.datetime(2023, 9, 1, 12, 0),
                             dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(9999, 1, 1)])
ABSURD = st.sampled_from([("scenario", "horizon_days", 10**9), ("scenario", "horizon_days", 0),
                          ("scenario", "horizon_days", 36500), ("run", "runs", 10**20), ("run", "seed", 2**64),
                          ("run", "runs", 0), ("scenario", "name", "x" * 5000), ("output", "trajectory_sample", 10**7),
                          ("output", "quantiles", [i / 1000 for i in range(1, 1000)]), ("demand", "base", 1e12),
                          ("demand", "base", 1e14), ("demand", "daily_cv", 1e6)])


def known_keys() -> set[str]:
    """Every key any scenario table accepts (a generated 'unknown' key must not be one)."""
    from pydantic import BaseModel

    from artysim.model import distributions, scenario

    keys: set[str] = set()
    for mod in (scenario, distributions):
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, BaseModel):
                keys |= {f.alias or name for name, f in obj.model_fields.items()}
    return keys


def _numeric_paths(doc) -> list[tuple]:
    return [p for p in paths(doc) if isinstance(get(doc, p), (int, float)) and not isinstance(get(doc, p), bool)]


@st.composite
def mutated_doc(draw, base: st.SearchStrategy | None = None) -> Mutation:
    """A valid document with one thing broken (or bent: some mutations stay valid)."""
    doc = copy.deepcopy(draw(base if base is not None else scenario_doc()))
    kind = draw(st.sampled_from(sorted(MUTATIONS)))
    return MUTATIONS[kind](draw, doc)


def _m_wrong_type(draw, doc):
    p = draw(st.sampled_from(paths(doc)))
    parent, k = _parent(doc, p)
    old = parent[k]
    new = draw(WRONG_TYPES.filter(lambda v: type(v) is not type(old)))
    parent[k] = new
    return Mutation(doc, "wrong type", path_str(p), False)


def _m_delete(draw, doc):
    p = draw(st.sampled_from([q for q in paths(doc) if isinstance(get(doc, q[:-1]), dict)]))
    parent, k = _parent(doc, p)
    del parent[k]
    return Mutation(doc, "missing key", path_str(p), False)


def _m_unknown_key(draw, doc):
    tables = [()] + [p for p in paths(doc) if isinstance(get(doc, p), dict)]
    p = draw(st.sampled_from(tables))
    table = get(doc, p)
    key = draw(st.one_of(UNICODE, st.sampled_from([k + "s" for k in table] or ["x"]),
                         st.sampled_from([k[:-1] for k in table if len(k) > 1] or ["y"])))
    if key in table or key in known_keys():
        key = key + "_unknown"
    table[key] = draw(st.one_of(st.integers(0, 9), UNICODE))
    return Mutation(doc, "unknown key", path_str(p + (key,)), True, path_str(p + (key,)))


def _m_bad_number(draw, doc):
    p = draw(st.sampled_from(_numeric_paths(doc)))
    parent, k = _parent(doc, p)
    parent[k] = draw(BAD_NUMBERS)
    nan = isinstance(parent[k], float) and not math.isfinite(parent[k])
    return Mutation(doc, "bad number", path_str(p), nan, path_str(p) if nan else None)


def _m_fraction(draw, doc):
    ps = [p for p in _numeric_paths(doc) if p[-1] in FRACTION_FIELDS or (len(p) > 1 and p[-2] in FRACTION_FIELDS)]
    if not ps:
        doc["source"][0]["dud_rate"] = 0.1
        ps = [("source", 0, "dud_rate")]
    p = draw(st.sampled_from(ps))
    parent, k = _parent(doc, p)
    parent[k] = draw(st.sampled_from([1.5, -0.1, 1.0000001, 2, -1]))
    return Mutation(doc, "probability outside [0, 1]", path_str(p), False)


def _m_min_max(draw, doc):
    pairs = []
    for p in paths(doc):
        v = get(doc, p)
        if isinstance(v, dict):
            for lo, hi in (("low", "high"), ("min", "max")):
                if lo in v and hi in v and v[lo] != v[hi]:
                    pairs.append((p, lo, hi))
    if not pairs:
        doc["demand"]["base"] = {"dist": "uniform", "low": 10, "high": 20}
        pairs = [(("demand", "base"), "low", "high")]
    p, lo, hi = draw(st.sampled_from(pairs))
    t = get(doc, p)
    t[lo], t[hi] = t[hi], t[lo]
    return Mutation(doc, "min > max", path_str(p), True, path_str(p))


def _m_empty_sources(draw, doc):
    doc["source"] = []
    doc.pop("policy", None)
    return Mutation(doc, "empty source list", "source", True, "source")


def _m_duplicate_name(draw, doc):
    if len(doc["source"]) < 2:
        doc["source"].append(copy.deepcopy(doc["source"][0]))
    else:
        doc["source"][1]["name"] = doc["source"][0]["name"]
    return Mutation(doc, "duplicate source name", "source[1].name", True, "source[1].name")


def _m_date(draw, doc):
    doc["scenario"]["start_date"] = draw(BAD_DATES)
    if draw(st.booleans()):
        doc["scenario"]["horizon_days"] = 36500
    return Mutation(doc, "date out of range", "scenario.start_date", False)


def _m_absurd(draw, doc):
    table, key, value = draw(ABSURD)
    doc.setdefault(table, {})[key] = value
    return Mutation(doc, "absurd value", f"{table}.{key}", False)


def _m_unicode(draw, doc):
    ps = [p for p in paths(doc) if isinstance(get(doc, p), str)]
    p = draw(st.sampled_from(ps))
    parent, k = _parent(doc, p)
    parent[k] = draw(UNICODE)
    return Mutation(doc, "unicode string", path_str(p), False)


def _m_many_sources(draw, doc):
    n = draw(st.sampled_from([65, 200]))
    doc["source"] = [dict(copy.deepcopy(doc["source"][0]), name=f"s{i}") for i in range(n)]
    doc.pop("policy", None)
    return Mutation(doc, "too many sources", "source", True, "source")


def _m_observation(draw, doc):
    """One bad [[observation]]: a window outside the horizon or reversed, an unknown quantity or source,
    share_of_fired without a source, a band with low > high, a cite that does not resolve."""
    start, horizon = doc["scenario"]["start_date"], doc["scenario"]["horizon_days"]
    if start.year > 2099 or start.year < 1901:
        doc["scenario"]["start_date"] = start = dt.date(2024, 1, 1)
    last = start + dt.timedelta(days=horizon - 1)
    o = {"name": "bad", "quantity": "fired", "to": last, "statistic": "sum",
         "value": {"dist": "uniform", "low": 0, "high": 1}, "cite": ["N33"]}
    how = draw(st.sampled_from(["after", "before", "reversed", "quantity", "source", "share", "band", "cite"]))
    key = {"after": "to", "before": "from", "reversed": "to", "quantity": "quantity", "source": "source",
           "share": "source", "band": "value", "cite": "cite"}[how]
    if how == "after":
        o["to"] = last + dt.timedelta(days=draw(st.integers(1, 400)))
    elif how == "before":
        o["from"] = start - dt.timedelta(days=draw(st.integers(1, 400)))
    elif how == "reversed":
        if horizon < 2:
            doc["scenario"]["horizon_days"] = horizon = 2
            last = start + dt.timedelta(days=1)
        o["from"], o["to"] = last, start
    elif how == "quantity":
        o["quantity"] = draw(st.sampled_from(["firing", "stocks", "", "Fired"]))
    elif how == "source":
        o["source"] = draw(names.filter(lambda n: n not in [s["name"] for s in doc["source"]]))
    elif how == "share":
        o["statistic"] = "share_of_fired"
    elif how == "band":
        o["value"] = {"dist": "uniform", "low": 2, "high": draw(st.sampled_from([1, 2, -5]))}
    else:
        o["cite"] = ["N33", draw(st.sampled_from(["Z99", "N999", "n33", "", "X01"]))]
    doc["observation"] = [o]
    path = f"observation[0].{key}"
    return Mutation(doc, f"bad observation ({how})", path, True, path)


def _m_components(draw, doc):
    """One bad ``components`` list: a line with neither output nor inventory, two lines of one name,
    components beside annual, or components on a source that is not production."""
    i = draw(st.integers(0, len(doc["source"]) - 1))
    src = doc["source"][i]
    how = draw(st.sampled_from(["empty line", "duplicate", "with annual", "not production"]))
    if how == "not production":
        if src["kind"] == "production":
            src.update(kind="stockpile", initial=1000)
            for k in ("annual", "annual_end", "daily_cv", "disruptions"):
                src.pop(k, None)
        src["components"] = [{"name": "body", "initial": 10}]
        return Mutation(doc, "bad components", f"source[{i}].components", True, f"source[{i}].components")
    for k in list(src):
        if k not in ("name", "dud_rate", "accuracy"):
            del src[k]
    src["kind"] = "production"
    src["components"] = [{"name": "body", "annual": 36500}, {"name": "fuze", "annual": 18250}]
    if how == "empty line":
        src["components"][1] = {"name": "fuze"}
        where = f"source[{i}].components[1].annual"
    elif how == "duplicate":
        src["components"][1]["name"] = "body"
        where = f"source[{i}].components[1].name"
    else:
        src["annual"] = 36500
        where = f"source[{i}].annual"
    return Mutation(doc, "bad components", where, True, where)


def _m_half_containers(draw, doc):
    """Containers without their loading, or a loading without containers."""
    i = next((k for k, s in enumerate(doc["source"]) if s["kind"] == "import"), None)
    if i is None:
        doc["source"].append({"name": "imp_c", "kind": "import", "shipments_per_month": 2, "shipment_size": 10})
        i = len(doc["source"]) - 1
    keep = draw(st.sampled_from(["containers", "rounds_per_container"]))
    doc["source"][i]["shipment_size"] = {keep: draw(quantity(keep))}
    gone = "rounds_per_container" if keep == "containers" else "containers"
    path = f"source[{i}].shipment_size.{gone}"
    return Mutation(doc, "containers without loading", path, True, path)


MUTATIONS = {
    "wrong type": _m_wrong_type, "missing key": _m_delete, "unknown key": _m_unknown_key,
    "bad number": _m_bad_number, "probability outside [0, 1]": _m_fraction, "min > max": _m_min_max,
    "empty source list": _m_empty_sources, "duplicate source name": _m_duplicate_name,
    "date out of range": _m_date, "absurd value": _m_absurd, "unicode string": _m_unicode,
    "too many sources": _m_many_sources, "bad observation": _m_observation, "bad components": _m_components,
    "containers without loading": _m_half_containers,
}


# ----------------------------------------------------------------------------- TOML text


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def _toml_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(k) -> str:
    k = str(k)
    return k if k and all(c in NAME_ALPHABET for c in k) else _toml_string(k)


def to_toml(doc: dict) -> str:
    """TOML text of a document: top-level tables as [headers], lists of tables as [[headers]]."""
    lines = []
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"[{_toml_key(k)}]")
            lines += [f"{_toml_key(kk)} = {_toml_value(vv)}" for kk, vv in v.items()]
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for item in v:
                lines.append(f"[[{_toml_key(k)}]]")
                lines += [f"{_toml_key(kk)} = {_toml_value(vv)}" for kk, vv in item.items()]
        else:
            lines.insert(0, f"{_toml_key(k)} = {_toml_value(v)}")
        lines.append("")
    return "\n".join(lines)
