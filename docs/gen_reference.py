"""Generate docs/scenario-reference.md (from the validation models) and docs/results-reference.md (from
the results schema), so that neither can drift from the code.

    python docs/gen_reference.py            # rewrite both files
    python docs/gen_reference.py --check    # exit 1 if either is out of date (tests/test_docs.py runs this)

Keys, units, ranges and defaults come from the pydantic models of ``artysim.model.scenario``; what each key
means comes from ``MEANING`` below: a key without a meaning fails ``--check``, so a new key gets one.
"""

from __future__ import annotations

import functools
import sys
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from artysim.model import distributions as dists  # noqa: E402
from artysim.model import scenario as scn  # noqa: E402
from artysim.results import schema  # noqa: E402

#: what each key means (keyed "table.key"; "source.*" for keys every source kind has)
MEANING = {
    "scenario.name": "the scenario's name: results files, default output names (letters, digits, _ and -)",
    "scenario.caliber": "the caliber studied, for the record (e.g. `152mm`)",
    "scenario.start_date": "day 0 of the horizon, `YYYY-MM-DD`",
    "scenario.horizon_days": "number of days simulated",
    "scenario.description": "the question the scenario answers (shown by `report`)",
    "*.sources": "where the figures of this table come from: row ids of `data/figures.csv` or text",
    "run.runs": "runs when `--runs` is not given",
    "run.seed": "seed when `--seed` is not given; run *i* depends only on (scenario, seed, *i*)",
    "demand.base": "the fire wanted per day, before regimes and noise (a number, a distribution drawn per run, "
                   "or a schedule by date)",
    "demand.refire": "share of the day's failed rounds (duds, misses) fired again the same day from stock, "
                     "salvo after salvo while stock lasts (a fraction in [0, 1] or a distribution; default 0)",
    "demand.daily_cv": "coefficient of variation of the mean-one lognormal day-to-day noise of demand",
    "demand.regime": "intensity regimes: a Markov chain of named regimes (table `[[demand.regime]]`)",
    "demand.initial_regime": "the regime of day 0 (default: drawn from the chain's long-run law)",
    "regime.name": "the regime's name",
    "regime.multiplier": "factor on `demand.base` while in this regime",
    "regime.mean_days": "mean stay in the regime (geometric)",
    "regime.to": "weights of the regimes it moves to, `{ other = weight }` (default: equal)",
    "source.name": "the source's name (used by `--set source.NAME.key=...`, `policy.order`, results)",
    "source.kind": "`stockpile`, `production` or `import`",
    "source.dud_rate": "probability that a round fired from this source is a dud (fails to function)",
    "source.accuracy": "share of its non-dud rounds that achieve the intended effect (the rest miss)",
    "stockpile.initial": "serviceable rounds on hand on day 0",
    "stockpile.legacy": "legacy rounds that need refurbishment before use",
    "stockpile.legacy_serviceable": "share of the legacy stock that can be refurbished at all",
    "stockpile.refurbish_per_day": "legacy rounds refurbished into the stock per day",
    "stockpile.refurbished_dud_rate": "dud rate of refurbished rounds (default: the source's `dud_rate`)",
    "production.annual": "output per year (spread evenly over 365 days); a number, a distribution or a schedule",
    "production.annual_end": "output per year at the end of the horizon: a linear ramp from `annual`",
    "production.daily_cv": "coefficient of variation of the day-to-day output noise",
    "production.components": "instead of `annual`: component lines `{ name, annual, annual_end, daily_cv, initial }`; "
                             "each day's output is the minimum of their inventories",
    "production.disruptions": "stoppages: `{ per_year, cut, days }` (table below)",
    "disruptions.per_year": "mean number of disruptions per year (Poisson)",
    "disruptions.cut": "share of output lost during a disruption (drawn per event)",
    "disruptions.days": "length of a disruption (drawn per event)",
    "import.start_day": "day the first shipments are dispatched (past the horizon: no deal)",
    "import.shipments_per_month": "mean shipments dispatched per month (Poisson per day; a month is 365/12 days)",
    "import.shipment_size": "rounds per shipment (drawn per shipment)",
    "import.transit_days": "days from dispatch to arrival (drawn per shipment)",
    "import.available": "the supplier's whole stock: shipping stops when it is exhausted (default: unlimited)",
    "import.lot_concentration": "lot-to-lot variation: each shipment's dud rate is Beta(mean = `dud_rate`, "
                                "this concentration) (default: every lot has the run's dud rate)",
    "import.reject_on_receipt": "share of each delivered lot rejected as unusable on receipt",
    "import.rework_days": "rejected rounds come back after this many days (default: never)",
    "import.rework_yield": "share of rejected rounds that come back from rework",
    "policy.issue": "`proportional` (fire from every source in proportion to its stock) or `priority` "
                    "(in the order `order`)",
    "policy.order": "source names, first fired first (needed by `priority`)",
    "policy.reserve_days": "rationing: a reserve of this many days of base fire is held back",
    "policy.ration_fraction": "rationing: at the reserve, at most this share of the demand is issued",
    "strikes.per_year": "mean depot strikes per year (Poisson)",
    "strikes.fraction": "share of every stock destroyed by a strike (drawn per strike)",
    "correlation.between": "two sampled parameter paths, as in the results' `parameter` coordinate",
    "correlation.spearman": "their Spearman rank correlation (Gaussian copula; marginals unchanged)",
    "output.shortage_threshold": "a day is a shortage day when more than this share of its wanted fire is unmet",
    "output.quantiles": "levels of the per-day quantiles in the results file",
    "output.trajectory_sample": "whole trajectories kept for spaghetti plots (runs 0 .. N-1)",
    "output.per_run": "the per-run variables the results file keeps (default all); for very large studies",
    "piece.from": "the date from which this piece holds",
    "piece.value": "the value from that date on",
}

#: the TOML tables, in reading order: (heading, model, meaning prefix)
TABLES = [
    ("[scenario]", scn.Meta, "scenario"),
    ("[run]", scn.RunCfg, "run"),
    ("[demand]", scn.Demand, "demand"),
    ("[[demand.regime]]", scn.Regime, "regime"),
    ("[[source]] kind = \"stockpile\"", scn.Stockpile, "stockpile"),
    ("[[source]] kind = \"production\"", scn.Production, "production"),
    ("production `disruptions = { ... }`", scn.Disruptions, "disruptions"),
    ("[[source]] kind = \"import\"", scn.Import, "import"),
    ("[policy]", scn.Policy, "policy"),
    ("[strikes]", scn.Strikes, "strikes"),
    ("[[correlation]]", scn.Correlation, "correlation"),
    ("[output]", scn.Output, "output"),
]
COMMON_SOURCE_KEYS = {"name", "kind", "dud_rate", "accuracy"}


def _walk(tp, found: dict) -> None:
    """Collect what an annotation (or a field's metadata) says: the unit and range of a quantity, a
    schedule, a plain type."""
    metas = list(getattr(tp, "__metadata__", ()))
    if not hasattr(tp, "__metadata__") and not isinstance(tp, type) and not typing.get_args(tp):
        metas.append(tp)  # an AfterValidator or Tag given directly (a field's metadata)
    for meta in metas:
        f = getattr(meta, "func", None)
        if isinstance(f, functools.partial) and f.func is scn._in:
            lo, hi, lo_open, hi_open, what = f.args
            found.setdefault("unit", what)
            found.setdefault("range", f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}")
        if getattr(meta, "tag", None) == "__tag_schedule":
            found["schedule"] = True
    if tp is dists.Fixed:
        found["quantity"] = True
    if isinstance(tp, type) and tp in (int, float, str, bool):
        found.setdefault("type", {"str": "text", "float": "number", "int": "whole number",
                                  "bool": "true/false"}[tp.__name__])
    for a in typing.get_args(tp):
        if not isinstance(a, (str, int, float)):
            _walk(a, found)


def _kind(info) -> tuple[str, str]:
    """(what the key takes, its unit or range) of a model field."""
    found: dict = {}
    _walk(info.annotation, found)
    for m in info.metadata:
        _walk(m, found)
    for m in info.metadata:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            v = getattr(m, attr, None)
            if v is not None:
                found.setdefault("bounds", []).append(f"{sym} {v:g}" if isinstance(v, (int, float)) else f"{sym} {v}")
    ann = str(info.annotation)
    if found.get("quantity"):
        what = "number or distribution" + (", or a schedule" if found.get("schedule") else "")
        unit = found.get("unit", "")
        if unit.startswith("a ") or unit.startswith("an "):
            unit = unit.split(" ", 1)[1]
        return what, f"{unit} {found.get('range', '')}".strip()
    if "datetime.date" in ann:
        return "date", "YYYY-MM-DD"
    if "Literal" in ann:
        return "one of " + ", ".join(f"`{x}`" for x in _literals(info.annotation)), ""
    if "list[" in ann or "dict[" in ann:
        return _container(ann), " ".join(found.get("bounds", []))
    if isinstance(typing.get_args(info.annotation)[:1] and typing.get_args(info.annotation)[0], type) and \
            issubclass(typing.get_args(info.annotation)[0], BaseModel):
        sub = typing.get_args(info.annotation)[0]
        return "table `{ " + ", ".join(f.alias or k for k, f in sub.model_fields.items() if k != "sources") + " }`", ""
    return found.get("type", ann.replace("typing.", "")), " ".join(found.get("bounds", []))


def _literals(tp) -> list:
    out = []
    if typing.get_origin(tp) is typing.Literal:
        return list(typing.get_args(tp))
    for a in typing.get_args(tp):
        out += _literals(a)
    return out


def _container(ann: str) -> str:
    if "Regime" in ann:
        return "tables `[[demand.regime]]`"
    if "dict[str, float]" in ann:
        return "table `{ name = weight }`"
    if "list[str]" in ann:
        return "text or list of texts" if ann.startswith(("typing.Union[str", "str |")) else "list of texts"
    if "list[float]" in ann:
        return "list of numbers"
    return ann


def _default(info) -> str:
    if info.is_required():
        return "required"
    d = info.default
    if d is PydanticUndefined and info.default_factory is not None:
        d = info.default_factory()
    if isinstance(d, BaseModel):
        return "–"
    if d is None:
        return "none"
    if d == "":
        return '`""`'
    if isinstance(d, float) and d.is_integer():
        d = int(d) if abs(d) < 1e15 else d
    return f"`{d}`"


def _meaning(prefix: str, key: str) -> str | None:
    if key == "sources":
        return MEANING["*.sources"]
    if prefix in ("stockpile", "production", "import") and key in COMMON_SOURCE_KEYS:
        return MEANING.get(f"source.{key}")
    return MEANING.get(f"{prefix}.{key}")


def scenario_reference() -> tuple[str, list[str]]:
    """The page, and the keys that have no meaning in MEANING."""
    lacking: list[str] = []
    out = ["# Scenario reference", "",
           "Generated by `python docs/gen_reference.py` from the validation models (`artysim/model/scenario.py`);",
           "do not edit by hand. Every key, what it takes, its unit and allowed range, and its default.",
           "The worked explanation is in [scenarios.md](scenarios.md) and the semantics in [model.md](model.md).",
           "",
           "Any *number or distribution* may be written as a number or as a distribution table "
           "`{ dist = ... }`:", ""]
    out += ["| `dist` | parameters |", "| --- | --- |"]
    for cls in _dist_classes():
        params = [f.alias or k for k, f in cls.model_fields.items() if k != "dist"]
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        name = typing.get_args(cls.model_fields["dist"].annotation)[0]
        out.append(f"| `{name}` | {', '.join(f'`{p}`' for p in params)}"
                   f"{' — ' + doc if doc else ''} |")
    out += ["", "A *schedule* is a list of pieces `[{ from = DATE, value = ... }, ...]`, piecewise constant "
            "from each date on (dates increasing, the first on or before `start_date`); each sampled piece is "
            "its own parameter, `demand.base@2024-01-01`.", ""]
    for heading, model, prefix in TABLES:
        out += [f"## {heading}", "", "| key | takes | unit / range | default | meaning |",
                "| --- | --- | --- | --- | --- |"]
        for name, info in model.model_fields.items():
            key = info.alias or name
            if prefix in ("stockpile", "production", "import") and key in COMMON_SOURCE_KEYS - {"kind"} \
                    and prefix != "stockpile":
                continue  # listed once, under the first source kind
            what, unit = _kind(info)
            m = _meaning(prefix, key)
            if m is None:
                lacking.append(f"{prefix}.{key}")
                m = "?"
            out.append(f"| `{key}` | {what} | {unit} | {_default(info)} | {m} |")
        if prefix == "stockpile":
            out += ["", "`name`, `kind`, `dud_rate`, `accuracy` and `sources` are keys of every source kind."]
        out.append("")
    return "\n".join(out).rstrip() + "\n", lacking


def _dist_classes() -> list:
    return [dists.Fixed, dists.Uniform, dists.Triangular, dists.Pert, dists.Normal, dists.Lognormal, dists.Beta,
            dists.Gamma, dists.Discrete]


def results_reference() -> str:
    out = ["# Results file reference", "",
           "Generated by `python docs/gen_reference.py` from the results schema (`artysim/results/schema.py`);",
           "do not edit by hand. Units are UDUNITS strings as CF requires (`1` for counts of rounds, `day-1` for",
           "daily rates); the word *rounds* is in the long name. See [results.md](results.md) for the file as a "
           "whole.", "",
           f"Schema version {schema.SCHEMA_VERSION}.", ""]
    for title, vs in (("Coordinates and labels", schema.COORDS), ("Per run", schema.PER_RUN),
                      ("Per day, over all runs", schema.PER_DAY),
                      ("Mergeable statistics (the per-day variables are derived from them)", schema.MERGEABLE)):
        out += [f"## {title}", "", "| variable | dims | type | units | long name |", "| --- | --- | --- | --- | --- |"]
        for v in vs:
            units = "`days since start_date`" if v.name == "time" else "–" if v.units is None else f"`{v.units}`"
            out.append(f"| `{v.name}` | {', '.join(v.dims)} | {v.dtype} | {units} | {v.long_name} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    scen, lacking = scenario_reference()
    pages = {REPO / "docs" / "scenario-reference.md": scen, REPO / "docs" / "results-reference.md": results_reference()}
    if lacking:
        print(f"keys without a meaning in docs/gen_reference.py MEANING: {', '.join(lacking)}", file=sys.stderr)
        return 1
    stale = [p for p, text in pages.items() if not p.is_file() or p.read_text() != text]
    if check:
        for p in stale:
            print(f"{p.relative_to(REPO)} is out of date: run python docs/gen_reference.py", file=sys.stderr)
        return 1 if stale else 0
    for p, text in pages.items():
        p.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
