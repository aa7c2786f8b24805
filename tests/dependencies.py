"""Which per-run output may depend on which input: the table the whole-model leak test reads.

An output is a per-run variable of a results file, by name (``fired_total``), a per-source one with
its source (``received:north_korea``), or ``parameters:PATH`` (the column of one sampled parameter).
``DEPENDS`` maps an input (a parameter path pattern, ``{src}`` standing for the source it belongs to,
or a mechanism) to the outputs it may change; ``FLOW`` is everything downstream of issue (with
proportional issue every source's fire depends on every stock). Everything else must stay
bit-identical when only that input changes: that is the common-random-numbers promise.
"""

from __future__ import annotations

import re

import numpy as np

from artysim.core import layout
from artysim.results import schema

#: per-run totals and per-source outputs of the kernel, by results-file name
TOTALS = {v.name: v.column[1] for v in schema.PER_RUN if v.column and v.column[0] == "totals"}
PER_SOURCE = {v.name: v.column[1] for v in schema.PER_RUN if v.column and v.column[0] == "per_source"}
PER_REGIME = {v.name: v.column[1] for v in schema.PER_RUN if v.column and v.column[0] == "per_regime"}

#: downstream of issue: what was fired, by whom, what was left, what strikes destroyed
FLOW_TOTALS = {"fired_total", "effective_total", "shortfall_total", "stock_min", "stock_final", "shortage_days",
               "first_shortage_day", "rationed_days"}
FLOW_SOURCE = {"fired_by_source", "duds", "effective_by_source", "stock_final_by_source", "lost"}
FLOW = "FLOW"

_RATE = {"received:{src}", FLOW}  # what a production line makes
_SHIPPED = {"dispatched:{src}", "received:{src}", "rejected:{src}", "reworked:{src}", "containers:{src}", FLOW}
_QUALITY = {"duds:{src}", "effective_by_source:{src}", "effective_total"}

#: input -> outputs it may change (patterns are matched against the whole parameter path; a schedule
#: piece ``PATH@DATE`` is the input PATH)
DEPENDS: dict[str, set[str]] = {
    r"demand\.base": {"demand_total", FLOW},
    r"demand\.daily_cv": {"demand_total", FLOW},
    r"demand\.regime\.[^.]+\.multiplier": {"demand_total", FLOW},
    r"demand\.regime\.[^.]+\.mean_days": {"demand_total", "regime_days", "regime_entries", FLOW},
    r"policy\.(reserve_days|ration_fraction)": {FLOW},
    r"strikes\.per_year": {"depot_strikes", FLOW},
    # stockpiles
    r"source\.{src}\.initial": {"initial_stock:{src}", FLOW},
    r"source\.{src}\.(legacy|legacy_serviceable|refurbish_per_day)": {"refurbished:{src}", FLOW},
    r"source\.{src}\.refurbished_dud_rate": _QUALITY,
    # every source
    r"source\.{src}\.dud_rate": _QUALITY,
    r"source\.{src}\.accuracy": {"effective_by_source:{src}", "effective_total"},
    # production
    r"source\.{src}\.(annual|annual_end|daily_cv)": _RATE,
    r"source\.{src}\.disruptions\.per_year": {"disruptions:{src}"} | _RATE,
    # a production source's component lines (what it assembles is bounded by the scarcest)
    r"source\.{src}\.components\.[^.]+\.(annual|annual_end|daily_cv|initial)": _RATE,
    # imports
    r"source\.{src}\.(start_day|available|shipments_per_month|shipment_size\.rounds_per_container)": _SHIPPED,
    r"source\.{src}\.lot_concentration": _QUALITY,
    # per-shipment distributions, drawn in the kernel from streams keyed by the shipment
    r"source\.{src}\.shipment_size(\.containers)?": _SHIPPED,
    r"source\.{src}\.transit_days": {"received:{src}", "rejected:{src}", "reworked:{src}", "containers:{src}", FLOW},
    r"source\.{src}\.reject_on_receipt": {"received:{src}", "rejected:{src}", "reworked:{src}", FLOW},
    r"source\.{src}\.(rework_days|rework_yield)": {"received:{src}", "reworked:{src}", FLOW},
}

#: mechanisms switched off (name -> how, and the input whose dependencies it has)
MECHANISMS = {
    "accuracy": "source.{src}.accuracy = 1 (every non-dud round hits)",
    "lots": "no source.{src}.lot_concentration (every lot at the run's dud rate)",
    "strikes": "no [strikes]",
    "rationing": "no policy.reserve_days / ration_fraction",
    "disruptions": "no source.{src}.disruptions",
    "rejection": "no source.{src}.reject_on_receipt (nor rework)",
    "legacy": "no source.{src}.legacy (nor its refurbishment)",
    "schedule": "a single value PATH replaced by the schedule [{from = start_date, value = the same}]",
}
MECHANISM_INPUT = {"accuracy": "source.{src}.accuracy", "lots": "source.{src}.lot_concentration",
                   "strikes": "strikes.per_year", "rationing": "policy.reserve_days",
                   "disruptions": "source.{src}.disruptions.per_year", "rejection": "source.{src}.reject_on_receipt",
                   "legacy": "source.{src}.legacy"}


def outputs(names: list[str], params: list[str], regimes: bool) -> list[str]:
    """Every per-run output of a scenario with these sources and sampled parameters."""
    out = list(TOTALS) + [f"{v}:{s}" for v in PER_SOURCE for s in names] + [f"parameters:{p}" for p in params]
    return out + (list(PER_REGIME) if regimes else [])


def depends(path: str, names: list[str]) -> set[str]:
    """Outputs that input ``path`` (a parameter path, schedule pieces as their base path) may change."""
    base = path.split("@")[0]
    for pattern, outs in DEPENDS.items():
        for src in names if "{src}" in pattern else [None]:
            pat = pattern.replace("{src}", re.escape(src)) if src else pattern
            if re.fullmatch(pat, base):
                got: set[str] = set()
                for o in outs:
                    if o == FLOW:
                        got |= FLOW_TOTALS | {f"{v}:{s}" for v in FLOW_SOURCE for s in names}
                    else:
                        got.add(o.replace("{src}", src) if src else o)
                return got
    raise KeyError(f"no dependency row for input {path}: add it to tests/dependencies.py")


def values(sim, name: str) -> np.ndarray:
    """The per-run values of output ``name`` in a ``support.Sim``."""
    var, _, arg = name.partition(":")
    if var in TOTALS:
        return sim.totals[:, TOTALS[var]]
    if var in PER_REGIME:
        return sim.per_regime[:, :, PER_REGIME[var]]
    if var == "parameters":
        return sim.param(arg)
    return sim.per_source[:, sim.model.scenario.source_names().index(arg), PER_SOURCE[var]]


assert set(TOTALS) | set(PER_SOURCE) | set(PER_REGIME) | {"parameters"} == {v.name for v in schema.PER_RUN}
assert layout.N_PER_SOURCE == len(PER_SOURCE)


def locate(raw: dict, path: str):
    """(container, key) of parameter ``path`` in a scenario's raw dict (``source.NAME.x``,
    ``demand.regime.NAME.x``, ``PATH@DATE`` a schedule piece's value), or None when it is a default."""
    base, _, date = path.partition("@")
    keys = base.split(".")
    node, i = raw, 0
    while i < len(keys) - 1:
        k = keys[i]
        if k in ("source", "regime", "components") and isinstance(node.get(k), list):
            match = [x for x in node[k] if x.get("name") == keys[i + 1]]
            node, i = match[0], i + 2
            continue
        if k not in node:
            return None
        node, i = node[k], i + 1
    key = keys[-1]
    if key not in node:
        return None
    if date:
        piece = [p for p in node[key] if str(p["from"]) == date][0]
        return piece, "value"
    return node, key
