"""The results schema: one table of variables that drives writing, checking and the docs.

Units are UDUNITS strings as CF requires: counts of rounds are ``1``, daily rates ``day-1``,
durations ``days``; the word "rounds" lives in ``long_name``. Per-run counts of days are in ``day``
(the same UDUNITS unit), not ``days``: xarray decodes variables whose units are exactly ``days`` into
timedeltas (older versions) or into integers with -2**63 where a value is missing (xarray 2026.9),
instead of plain numbers with NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from artysim.core import bins, layout
from artysim.model.scenario import PER_RUN_NAMES

SCHEMA_VERSION = 3  # 2: mechanisms of model depth (regimes, rationing, refurbishment, losses, rework);
#                     3: stream keys (parameter_stream, attribute stream_keys), containers
FILL_DAY = -1  # first_shortage_day of a run never short


@dataclass(frozen=True)
class Var:
    """One variable of a results file: everything the writer, the reader's checks and the docs need.

    ``column`` says where the kernel puts a per-run variable: ``("totals", O_*)``, ``("per_source",
    P_*)``, ``("per_regime", Q_*)`` or ``("params",)`` (the sampled columns of the parameter matrix)."""

    name: str
    dims: tuple[str, ...]
    dtype: str
    units: str | None
    long_name: str
    fill: int | float | None = None
    column: tuple = ()
    attrs: dict = field(default_factory=dict)
    since: int = 1  # the schema version that added it (older files are read without it)


@dataclass(frozen=True)
class Coord(Var):
    """A coordinate (or a run-free label variable): its values come from the file's ``Frame``.

    ``values(frame)`` gives the whole array; the ``run`` coordinate is written a block at a time."""

    values: Callable | None = None
    optional: bool = False  # written only when its dimensions exist (correlations, observations)


@dataclass
class Frame:
    """What a file's coordinates are made of: the model, its runs and its sampled trajectories."""

    model: object  # artysim.model.build.Model
    run_start: int
    n_runs: int
    run_index: np.ndarray | None  # None: the contiguous runs run_start .. run_start + n_runs - 1
    sample_runs: np.ndarray

    def sizes(self) -> dict[str, int]:
        m = self.model
        out = {"run": self.n_runs, "parameter": len(m.sampled), "source": len(m.kinds), "time": m.horizon,
               "quantile": len(m.scenario.output.quantiles), "sample": len(self.sample_runs),
               "bin": bins.NBINS, "regime": len(regime_labels(m))}
        if m.corr_pairs:
            out["correlation"] = len(m.corr_pairs)
        if m.observations:
            out["observation"] = len(m.observations)
        if m.component_names:
            out["component"] = len(m.component_names)
        return out

    def runs(self, i0: int, i1: int) -> np.ndarray:
        """Run indices of positions i0 .. i1 - 1 (contiguous runs are never materialised whole)."""
        if self.run_index is not None:
            return self.run_index[i0:i1]
        return np.arange(self.run_start + i0, self.run_start + i1, dtype=np.int64)


def regime_labels(model) -> list[str]:
    return model.regime_names or ["constant"]


def _obs_labels(what):
    """One text label per observation (the ``observation_*`` coordinates)."""
    def values(f: Frame) -> list[str]:
        return [what(o) for o in f.model.observations]
    return values


def observation_definition(o) -> dict:
    """An observation as plain JSON values: what the ``observed`` variable's ``definitions`` attribute
    holds, and what ``calibrate`` reads back."""
    return {"name": o.name, "quantity": o.quantity, "source": o.source, "from": None if o.from_ is None else
            o.from_.isoformat(), "to": o.to.isoformat(), "statistic": o.statistic,
            "value": o.value.model_dump(by_alias=True, exclude_none=True), "cite": list(o.cite)}


def _sampled(model, what: str) -> list[str]:
    return [getattr(model.params[i], what) for i in model.sampled]


def _lower(_f) -> np.ndarray:
    return bins.bin_edges()[0]


def _upper(_f) -> np.ndarray:
    return bins.bin_edges()[1]


#: coordinates and run-free labels, in the order they are written
COORDS = [
    Coord("run", ("run",), "i8", "1", "run index (results of a run depend only on scenario, seed and this index)",
          attrs={"standard_name": "realization"}, values=lambda f: f.runs(0, f.n_runs)),
    Coord("time", ("time",), "i4", None, "day of the scenario (day 0 is start_date)",
          attrs={"standard_name": "time", "calendar": "standard", "axis": "T"},
          values=lambda f: np.arange(f.model.horizon, dtype=np.int32)),
    Coord("quantile", ("quantile",), "f8", "1", "quantile level over runs",
          values=lambda f: np.asarray(f.model.scenario.output.quantiles, dtype=np.float64)),
    Coord("source", ("source",), "str", None, "ammunition source", values=lambda f: f.model.scenario.source_names()),
    Coord("source_kind", ("source",), "str", None, "kind of ammunition source (stockpile, production, import)",
          values=lambda f: [s.kind for s in f.model.scenario.source]),
    Coord("regime", ("regime",), "str", None,
          "intensity regime of demand (\"constant\" when the scenario has none)",
          values=lambda f: regime_labels(f.model)),
    Coord("correlation_between", ("correlation",), "str", None,
          "the two parameters of a requested rank correlation, as 'path_a ~ path_b'", optional=True,
          values=lambda f: [f"{a} ~ {b}" for a, b, _ in f.model.corr_pairs]),
    Coord("correlation_requested", ("correlation",), "f8", "1", "requested Spearman rank correlation", optional=True,
          values=lambda f: np.array([rho for _, _, rho in f.model.corr_pairs], dtype=np.float64)),
    Coord("correlation_achieved", ("correlation",), "f8", "1",
          "Spearman rank correlation of the parameters over the runs of this file", optional=True),
    Coord("observation", ("observation",), "str", None, "name of an observation ([[observation]] of the scenario)",
          optional=True, values=_obs_labels(lambda o: o.name)),
    Coord("observation_quantity", ("observation",), "str", None,
          f"quantity observed ({', '.join(layout.OBS_QUANTITIES)})",
          optional=True, values=_obs_labels(lambda o: o.quantity)),
    Coord("observation_source", ("observation",), "str", None, "source observed (\"all\": every source)",
          optional=True, values=_obs_labels(lambda o: o.source or "all")),
    Coord("observation_window", ("observation",), "str", None, "first and last date of the window, inclusive",
          optional=True, values=lambda f: [f"{(o.from_ or f.model.scenario.start_date).isoformat()}/"
                                           f"{o.to.isoformat()}" for o in f.model.observations]),
    Coord("observation_statistic", ("observation",), "str", None,
          "statistic of the window (sum, mean_per_day, at_end, share_of_fired)",
          optional=True, values=_obs_labels(lambda o: o.statistic)),
    Coord("observation_cite", ("observation",), "str", None,
          "rows of the figures table the observation's evidence rests on (comma-separated ids)",
          optional=True, values=_obs_labels(lambda o: ", ".join(o.cite))),
    Coord("component", ("component",), "str", None,
          "component line of a production source assembled from components, as source.component",
          optional=True, values=lambda f: list(f.model.component_names)),
    Coord("component_source", ("component",), "str", None, "production source the component line belongs to",
          optional=True, values=lambda f: [n.split(".", 1)[0] for n in f.model.component_names]),
    Coord("parameter", ("parameter",), "str", None, "scenario path of a sampled input parameter",
          values=lambda f: _sampled(f.model, "path")),
    Coord("parameter_units", ("parameter",), "str", None, "UDUNITS unit of each sampled parameter",
          values=lambda f: _sampled(f.model, "unit")),
    Coord("parameter_stream", ("parameter",), "str", None,
          "random stream each sampled parameter is drawn from (its key under the seed is in the attribute "
          "stream_keys); a schedule's first piece keeps the stream of the single value it replaced",
          values=lambda f: _sampled(f.model, "stream_name"), since=3),
    Coord("sample", ("sample",), "i8", "1", "run index of a sampled trajectory", values=lambda f: f.sample_runs),
    Coord("bin", ("bin",), "i8", "1", "lower edge (inclusive) of a value bin of the per-day histograms",
          values=_lower),
    Coord("bin_upper", ("bin",), "i8", "1", "upper edge (exclusive) of a value bin of the per-day histograms",
          values=_upper),
]


def time_units(model) -> str:
    return f"days since {model.scenario.start_date.isoformat()}"


PER_RUN = [
    Var("parameters", ("run", "parameter"), "f8", "1",
        "sampled input parameters of each run (units per parameter in parameter_units)", column=("params",),
        attrs={"coordinates": "parameter_units"}),
    Var("first_shortage_day", ("run",), "i4", "day",
        "days from start_date to the first shortage day (missing if never short)", FILL_DAY,
        column=("totals", layout.O_FIRST_SHORT)),
    Var("shortage_days", ("run",), "i4", "day", "number of shortage days in the horizon",
        column=("totals", layout.O_SHORT_DAYS)),
    Var("demand_total", ("run",), "i8", "1", "rounds demanded over the horizon", column=("totals", layout.O_DEMAND)),
    Var("fired_total", ("run",), "i8", "1", "rounds fired over the horizon", column=("totals", layout.O_FIRED)),
    Var("effective_total", ("run",), "i8", "1", "effective rounds (not duds, on target) over the horizon",
        column=("totals", layout.O_EFFECTIVE)),
    Var("shortfall_total", ("run",), "i8", "1", "rounds demanded but not fired over the horizon",
        column=("totals", layout.O_SHORTFALL)),
    Var("stock_min", ("run",), "i8", "1", "minimum end-of-day rounds on hand, all sources",
        column=("totals", layout.O_STOCK_MIN)),
    Var("stock_final", ("run",), "i8", "1", "rounds on hand at the end of the horizon, all sources",
        column=("totals", layout.O_STOCK_FINAL)),
    Var("initial_stock", ("run", "source"), "i8", "1", "rounds on hand on day 0 by source",
        column=("per_source", layout.P_INITIAL)),
    Var("received", ("run", "source"), "i8", "1", "rounds received over the horizon by source",
        column=("per_source", layout.P_RECEIVED)),
    Var("fired_by_source", ("run", "source"), "i8", "1", "rounds fired over the horizon by source",
        column=("per_source", layout.P_FIRED)),
    Var("duds", ("run", "source"), "i8", "1", "dud rounds fired over the horizon by source",
        column=("per_source", layout.P_DUDS)),
    Var("effective_by_source", ("run", "source"), "i8", "1",
        "effective rounds over the horizon by source", column=("per_source", layout.P_EFFECTIVE)),
    Var("stock_final_by_source", ("run", "source"), "i8", "1",
        "rounds on hand at the end of the horizon by source", column=("per_source", layout.P_FINAL)),
    Var("dispatched", ("run", "source"), "i8", "1",
        "rounds shipped by an import supplier (received, rejected, or still in transit or rework at the end)",
        column=("per_source", layout.P_DISPATCHED)),
    Var("refurbished", ("run", "source"), "i8", "1", "legacy rounds refurbished into a stockpile over the horizon",
        column=("per_source", layout.P_REFURBISHED)),
    Var("lost", ("run", "source"), "i8", "1", "rounds destroyed by depot strikes over the horizon by source",
        column=("per_source", layout.P_LOST)),
    Var("rejected", ("run", "source"), "i8", "1", "imported rounds rejected on receipt as unusable",
        column=("per_source", layout.P_REJECTED)),
    Var("reworked", ("run", "source"), "i8", "1",
        "rejected rounds returned usable from rework (included in received)", column=("per_source", layout.P_REWORKED)),
    Var("disruptions", ("run", "source"), "i4", "1", "production disruption events (strikes on plants)",
        column=("per_source", layout.P_DISRUPTIONS)),
    Var("refired", ("run", "source"), "i8", "1",
        "rounds fired again after duds and misses (demand.refire) by source; included in fired_by_source",
        column=("per_source", layout.P_REFIRED)),
    Var("refire_asked_total", ("run",), "i8", "1",
        "rounds asked by the re-fire corrections over the horizon (fired or not; unfired ones are shortfall)",
        column=("totals", layout.O_REFIRE_ASKED)),
    Var("rationed_days", ("run",), "i4", "day", "days on which the ration policy held fire below demand",
        column=("totals", layout.O_RATIONED)),
    Var("depot_strikes", ("run",), "i4", "1", "depot strikes over the horizon", column=("totals", layout.O_STRIKES)),
    Var("containers", ("run", "source"), "i8", "1",
        "containers received over the horizon by source (imports by the container; 0 for other sources)",
        column=("per_source", layout.P_CONTAINERS), since=3),
    Var("regime_days", ("run", "regime"), "i4", "day", "days spent in each intensity regime",
        column=("per_regime", layout.Q_DAYS)),
    Var("regime_entries", ("run", "regime"), "i4", "1",
        "times each intensity regime was entered (the initial regime counts once)",
        column=("per_regime", layout.Q_ENTRIES)),
]

#: per-run variables of scenarios with observations (dimension ``observation``); written after PER_RUN
OBSERVED = [
    Var("observed", ("run", "observation"), "f8", "1",
        "each run's value of each observation (rounds for sum and at_end, rounds per day for mean_per_day, a "
        "fraction for share_of_fired; NaN: a share of no fire); definitions in the attribute definitions",
        column=("observed",)),
]
#: per-run variables of scenarios with components (dimension ``component``); written after OBSERVED
COMPONENTS = [
    Var("component_initial", ("run", "component"), "i8", "1",
        "component units in inventory on day 0", column=("per_component", layout.C_INITIAL)),
    Var("component_produced", ("run", "component"), "i8", "1",
        "component units made by each component line over the horizon", column=("per_component", layout.C_PRODUCED)),
    Var("component_final", ("run", "component"), "i8", "1",
        "component units left in inventory at the end of the horizon (initial + produced - assembled)",
        column=("per_component", layout.C_FINAL)),
    Var("component_bound_days", ("run", "component"), "i4", "day",
        "days on which the component's inventory was the minimum, bounding the assembled output (on a tie "
        "every component at the minimum counts)", column=("per_component", layout.C_BOUND)),
]
#: written by ``artysim calibrate`` into a copy of a results file
WEIGHT = Var("weight", ("run",), "f8", "1",
             "calibration weight of each run: the likelihood of the evidence (the observations in the global "
             "attribute calibrated_on) given the run's observed values, uniform bands as 0/1")


def optional_per_run(sizes) -> list[Var]:
    """The per-run variables a file has only with these dimensions (observations, components)."""
    return (OBSERVED if "observation" in sizes else []) + (COMPONENTS if "component" in sizes else [])


def per_run(sizes, attrs: dict | None = None) -> list[Var]:
    """The per-run variables of a file with these dimensions and global attributes: those its
    ``[output] per_run`` keeps (all by default), ``observed`` only with observations and
    ``component_*`` only with components."""
    return per_run_of_attrs(attrs or {}) + optional_per_run(sizes)


DAILY_NAMES = ("stock", "fired", "effective", "shortfall")
_DAILY_LONG = {
    "stock": "end-of-day rounds on hand, all sources",
    "fired": "rounds fired per day",
    "effective": "effective rounds per day",
    "shortfall": "rounds demanded but not fired per day",
}
_DAILY_UNITS = {"stock": "1", "fired": "day-1", "effective": "day-1", "shortfall": "day-1"}

PER_DAY = (
    [Var(f"{n}_quantile", ("time", "quantile"), "f8", _DAILY_UNITS[n],
         f"quantiles over runs of {_DAILY_LONG[n]}") for n in DAILY_NAMES]
    + [Var(f"{n}_mean", ("time",), "f8", _DAILY_UNITS[n], f"mean over runs of {_DAILY_LONG[n]}")
       for n in DAILY_NAMES]
    + [
        Var("p_short", ("time",), "f8", "1", "fraction of runs short on that day"),
        Var("p_depleted", ("time",), "f8", "1",
            "fraction of runs whose first shortage day is on or before that day"),
        Var("fired_by_source_mean", ("time", "source"), "f8", "day-1",
            "mean over runs of rounds fired per day by source"),
        Var("effective_by_source_mean", ("time", "source"), "f8", "day-1",
            "mean over runs of effective rounds per day by source"),
        Var("stock_by_source_quantile", ("time", "source", "quantile"), "f8", "1",
            "quantiles over runs of end-of-day rounds on hand by source"),
        Var("stock_by_source_mean", ("time", "source"), "f8", "1",
            "mean over runs of end-of-day rounds on hand by source"),
        Var("arrivals_by_source_mean", ("time", "source"), "f8", "day-1",
            "mean over runs of rounds arriving per day by source (received and refurbished)"),
        Var("days_on_hand_quantile", ("time", "quantile"), "f8", "days",
            "quantiles over runs of days of fire on hand: end-of-day stock over that day's base demand "
            "(binned in hundredths of a day)"),
        Var("stock_sample", ("sample", "time"), "i8", "1",
            "end-of-day rounds on hand, all sources, in sampled runs"),
        Var("fired_sample", ("sample", "time"), "i8", "day-1", "rounds fired per day in sampled runs"),
    ]
)

# Sufficient statistics kept so that shards merge exactly (sums and counts add).
MERGEABLE = (
    [Var(f"{n}_hist", ("time", "bin"), "i8", "1",
         f"count of runs per value bin of {_DAILY_LONG[n]}") for n in DAILY_NAMES]
    + [Var(f"{n}_sum", ("time",), "i8", _DAILY_UNITS[n], f"sum over runs of {_DAILY_LONG[n]}")
       for n in DAILY_NAMES]
    + [Var("n_short", ("time",), "i8", "1", "number of runs short on that day"),
       Var("n_first_short", ("time",), "i8", "1", "number of runs whose first shortage day is that day"),
       Var("fired_by_source_sum", ("time", "source"), "i8", "day-1", "sum over runs of rounds fired per day by source"),
       Var("effective_by_source_sum", ("time", "source"), "i8", "day-1",
           "sum over runs of effective rounds per day by source"),
       Var("stock_by_source_hist", ("time", "source", "bin"), "i8", "1",
           "count of runs per value bin of end-of-day rounds on hand by source"),
       Var("stock_by_source_sum", ("time", "source"), "i8", "1",
           "sum over runs of end-of-day rounds on hand by source"),
       Var("arrivals_by_source_sum", ("time", "source"), "i8", "day-1",
           "sum over runs of rounds arriving per day by source (received and refurbished)"),
       Var("days_on_hand_hist", ("time", "bin"), "i8", "1",
           "count of runs per value bin of days of fire on hand in hundredths of a day (stock x 100 / base "
           "demand, rounded down)")]
)

ALL = PER_RUN + PER_DAY + MERGEABLE
if tuple(v.name for v in PER_RUN) != PER_RUN_NAMES:  # the scenario validates [output] per_run against these
    raise ImportError("results.schema.PER_RUN and model.scenario.PER_RUN_NAMES disagree")
#: global attribute of a file that keeps only some per-run variables ([output] per_run): their names
KEPT_ATTR = "per_run_variables"


def per_run_kept(model) -> list[Var]:
    """The per-run variables a model's results file keeps (all unless ``[output] per_run`` chooses)."""
    chosen = model.scenario.output.per_run
    return list(PER_RUN) if chosen is None else [v for v in PER_RUN if v.name in set(chosen)]


def per_run_of_attrs(attrs: dict) -> list[Var]:
    """The per-run variables a file says it keeps (files without the attribute keep all)."""
    names = str(attrs.get(KEPT_ATTR, "")).split()
    return [v for v in PER_RUN if v.name in set(names)] if names else list(PER_RUN)


BY_NAME = {v.name: v for v in ALL}  # every file has these (observed, weight, component_*: OBSERVED, WEIGHT, COMPONENTS)


def require(ds, names, what: str) -> None:
    """Refuse, naming them, what needs per-run variables that a file does not keep (``[output] per_run``)."""
    missing = [n for n in dict.fromkeys(names) if n not in ds.variables]
    if missing:
        from artysim.errors import ResultsError

        kept = str(ds.attrs.get(KEPT_ATTR, "")) or "all"
        raise ResultsError(f"{what} needs the per-run variable{'s' if len(missing) > 1 else ''} "
                           f"{', '.join(missing)}, which this results file does not keep (its [output] per_run "
                           f"keeps {', '.join(kept.split())}); add {'them' if len(missing) > 1 else 'it'} to "
                           "output.per_run and run again")


def stream_table(model, seed: int) -> str:
    """The global attribute ``stream_keys``: one line per random stream, ``name<TAB>key`` (16 hex digits),
    the model's streams then every parameter's (fixed ones too) as ``param-path<TAB>stream name<TAB>key
    <TAB>distribution`` so that ``compare`` can tell which parameters differ and whether they share draws."""
    lines = [f"{n}\t{layout.key_of(seed, n):016x}" for n in model.stream_names()]
    for p in model.params:
        lines.append(f"{p.path}\t{p.stream_name}\t{layout.key_of(seed, p.stream_name):016x}\t"
                     f"{p.dist.model_dump_json()}")
    return "\n".join(lines)


def parse_stream_table(text: str) -> tuple[dict[str, str], dict[str, tuple[str, str, str]]]:
    """(model stream name -> key, parameter path -> (stream name, key, distribution)) of ``stream_keys``."""
    streams: dict[str, str] = {}
    params: dict[str, tuple[str, str, str]] = {}
    for line in str(text).splitlines():
        parts = line.split("\t")
        if len(parts) == 2:
            streams[parts[0]] = parts[1]
        elif len(parts) == 4:
            params[parts[0]] = (parts[1], parts[2], parts[3])
    return streams, params
