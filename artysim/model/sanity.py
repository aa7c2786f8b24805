"""Warnings, not refusals: inputs that are valid but look like a unit mistake.

A yearly figure typed where a daily one belongs (or the reverse) passes every range check, runs, and
gives confident nonsense. ``validate`` and ``run`` print these so the analyst looks again; nothing is
refused, because an extreme scenario may mean it. The bounds are generous on purpose (the 99th
percentile of every supply input, the median of demand) so that a warning is worth reading.
"""

from __future__ import annotations

import math

import numpy as np

from artysim.model.distributions import _Dist
from artysim.model.scenario import Import, Production, Scenario, Stockpile, is_schedule

HIGH = 0.99  # the quantile an input's "at most" is read at (a lognormal has no upper bound)
SHORT_BY = 10  # demand this many times the most the sources could supply looks like a unit mistake


def _pieces(v) -> list:
    """The values of a schedule (or the one value)."""
    return [p.value for p in v] if is_schedule(v) else [v]


def _q(v, q: float) -> float | None:
    """Quantile ``q`` of a number or distribution (None for what this module does not know)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, _Dist):
        x = float(v.ppf(np.array([q]))[0])
        return x if math.isfinite(x) else None
    return None


def _high(v) -> float | None:
    """The largest of a schedule's pieces at the HIGH quantile; None if any piece is unknown."""
    xs = [_q(p, HIGH) for p in _pieces(v)]
    return None if any(x is None for x in xs) else max(xs)


def _low_median(v) -> float | None:
    """The smallest median among a schedule's pieces."""
    xs = [_q(p, 0.5) for p in _pieces(v)]
    return None if any(x is None for x in xs) else min(xs)


def _supply_bound(scn: Scenario) -> float | None:
    """Rounds every source together could at most deliver over the horizon (each input at its HIGH
    quantile); None when a source has a form this bound does not cover."""
    T = scn.horizon
    total = 0.0
    for src in scn.source:
        if isinstance(src, Stockpile):
            parts = [_high(src.initial)] + ([_high(src.legacy)] if src.legacy is not None else [])
        elif isinstance(src, Production):
            annual = getattr(src, "annual", None)
            if annual is None:  # another form of output (components): no bound here
                return None
            ends = [_high(annual)] + ([_high(src.annual_end)] if src.annual_end is not None else [])
            parts = [None if any(x is None for x in ends) else max(ends) * T / 365]
        elif isinstance(src, Import):
            if src.available is None:  # an unlimited supplier: no bound
                return None
            parts = [_high(src.available)]
        else:
            return None
        if any(x is None for x in parts):
            return None
        total += sum(parts)
    return total


def _m(x: float) -> str:
    return f"{x / 1e6:.3g} M" if x >= 1e6 else (f"{x / 1e3:.3g} k" if x >= 1e4 else f"{x:.4g}")


def warnings(scn: Scenario) -> list[str]:
    """One line per input that looks like a unit mistake (empty for a plausible scenario)."""
    out: list[str] = []
    day = _low_median(scn.demand.base)
    supply = _supply_bound(scn)
    if day is not None and supply is not None and day > SHORT_BY * supply / scn.horizon:
        out.append(f"demand.base: a median fire demand of {_m(day)} rounds/day is more than {SHORT_BY} times what "
                   f"the sources could supply (at most {_m(supply / scn.horizon)} rounds/day over the "
                   f"{scn.horizon} days, every input at its {HIGH:.0%} quantile); is a yearly figure entered as "
                   "rounds/day?")
    for src in scn.source:
        annual = getattr(src, "annual", None) if isinstance(src, Production) else None
        if annual is None or day is None or out:  # a demand already flagged explains this too
            continue
        hi = _high(annual)
        if hi is not None and 0 < hi < day:
            out.append(f"source.{src.name}.annual: at most {_m(hi)} rounds/year, less than one day's fire "
                       f"demand ({_m(day)} rounds/day); is a daily figure entered as rounds/year?")
    if scn.policy.issue == "proportional" and scn.policy.order is not None:
        out.append("policy.order: not used with issue = \"proportional\" (kept for --set/--vary "
                   "policy.issue=priority)")
    return out
