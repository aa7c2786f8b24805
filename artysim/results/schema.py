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
    optional: bool = False  # written only when its dimension exists (correlations)


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
        return out

    def runs(self, i0: int, i1: int) -> np.ndarray:
        """Run indices of positions i0 .. i1 - 1 (contiguous runs are never materialised whole)."""
        if self.run_index is not None:
            return self.run_index[i0:i1]
        return np.arange(self.run_start + i0, self.run_start + i1, dtype=np.int64)


def regime_labels(model) -> list[str]:
    return model.regime_names or ["constant"]


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
           "sum over runs of effective rounds per day by source")]
)

ALL = PER_RUN + PER_DAY + MERGEABLE
BY_NAME = {v.name: v for v in ALL}


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
