"""The results schema: one table of variables that drives writing, checking and the docs.

Units are UDUNITS strings as CF requires: counts of rounds are ``1``, daily rates ``day-1``,
durations ``days``; the word "rounds" lives in ``long_name``. Per-run counts of days are in ``day``
(the same UDUNITS unit), not ``days``: xarray decodes variables whose units are exactly ``days`` into
timedeltas (older versions) or into integers with -2**63 where a value is missing (xarray 2026.9),
instead of plain numbers with NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 2  # 2: mechanisms of model depth (regimes, rationing, refurbishment, losses, rework)
FILL_DAY = -1  # first_shortage_day of a run never short


@dataclass(frozen=True)
class Var:
    name: str
    dims: tuple[str, ...]
    dtype: str
    units: str
    long_name: str
    fill: int | float | None = None


PER_RUN = [
    Var("parameters", ("run", "parameter"), "f8", "1",
        "sampled input parameters of each run (units per parameter in parameter_units)"),
    Var("first_shortage_day", ("run",), "i4", "day",
        "days from start_date to the first shortage day (missing if never short)", FILL_DAY),
    Var("shortage_days", ("run",), "i4", "day", "number of shortage days in the horizon"),
    Var("demand_total", ("run",), "i8", "1", "rounds demanded over the horizon"),
    Var("fired_total", ("run",), "i8", "1", "rounds fired over the horizon"),
    Var("effective_total", ("run",), "i8", "1", "effective rounds (not duds, on target) over the horizon"),
    Var("shortfall_total", ("run",), "i8", "1", "rounds demanded but not fired over the horizon"),
    Var("stock_min", ("run",), "i8", "1", "minimum end-of-day rounds on hand, all sources"),
    Var("stock_final", ("run",), "i8", "1", "rounds on hand at the end of the horizon, all sources"),
    Var("initial_stock", ("run", "source"), "i8", "1", "rounds on hand on day 0 by source"),
    Var("received", ("run", "source"), "i8", "1", "rounds received over the horizon by source"),
    Var("fired_by_source", ("run", "source"), "i8", "1", "rounds fired over the horizon by source"),
    Var("duds", ("run", "source"), "i8", "1", "dud rounds fired over the horizon by source"),
    Var("effective_by_source", ("run", "source"), "i8", "1",
        "effective rounds over the horizon by source"),
    Var("stock_final_by_source", ("run", "source"), "i8", "1",
        "rounds on hand at the end of the horizon by source"),
    Var("dispatched", ("run", "source"), "i8", "1",
        "rounds shipped by an import supplier (received, rejected, or still in transit or rework at the end)"),
    Var("refurbished", ("run", "source"), "i8", "1", "legacy rounds refurbished into a stockpile over the horizon"),
    Var("lost", ("run", "source"), "i8", "1", "rounds destroyed by depot strikes over the horizon by source"),
    Var("rejected", ("run", "source"), "i8", "1", "imported rounds rejected on receipt as unusable"),
    Var("reworked", ("run", "source"), "i8", "1",
        "rejected rounds returned usable from rework (included in received)"),
    Var("disruptions", ("run", "source"), "i4", "1", "production disruption events (strikes on plants)"),
    Var("rationed_days", ("run",), "i4", "day", "days on which the ration policy held fire below demand"),
    Var("depot_strikes", ("run",), "i4", "1", "depot strikes over the horizon"),
    Var("regime_days", ("run", "regime"), "i4", "day", "days spent in each intensity regime"),
    Var("regime_entries", ("run", "regime"), "i4", "1",
        "times each intensity regime was entered (the initial regime counts once)"),
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
