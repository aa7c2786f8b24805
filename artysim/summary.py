"""Headline answers from a results file, each with its Monte Carlo uncertainty."""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

Z = 1.959963984540054  # two-sided 95 %


def wilson(k: int, n: int, z: float = Z) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def ratio_of_means(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """sum(num)/sum(den) and its delta-method standard error over runs."""
    n = len(num)
    mx, my = float(np.mean(num)), float(np.mean(den))
    if my == 0 or n < 2:
        return (math.nan, math.nan)
    r = mx / my
    resid = num - r * den
    se = float(np.std(resid, ddof=1)) / (my * math.sqrt(n))
    return r, se


def censored_percentiles(days: np.ndarray, horizon: int, qs=(0.05, 0.25, 0.5, 0.75, 0.95)) -> dict:
    """Percentiles of the first shortage day over *all* runs, never-short runs counted as beyond
    the horizon: a percentile is a day only if at least that share of runs ran short."""
    n = len(days)
    short = np.sort(days[~np.isnan(days)])
    out = {}
    for q in qs:
        k = math.ceil(q * n)  # order statistic (1-based) of the q-quantile over all runs
        out[q] = float(short[k - 1]) if 1 <= k <= len(short) else None
    return out


def mean_se(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return float(np.mean(x)) if len(x) else math.nan, math.nan
    return float(np.mean(x)), float(np.std(x, ddof=1) / math.sqrt(len(x)))


BLOCK = 1 << 18  # runs read at a time


class Moments:
    """Running means and co-moments of columns over blocks of runs (Chan et al.'s pairwise update),
    so summaries of 10^7 runs need one block in memory, and stay numerically stable."""

    def __init__(self, k: int):
        self.n = 0
        self.mean = np.zeros(k)
        self.C = np.zeros((k, k))

    def add(self, X: np.ndarray) -> None:
        nb = X.shape[0]
        if nb == 0:
            return
        mb = X.mean(axis=0)
        Xc = X - mb
        Cb = Xc.T @ Xc
        n = self.n + nb
        delta = mb - self.mean
        self.C += Cb + np.outer(delta, delta) * (self.n * nb / n)
        self.mean += delta * (nb / n)
        self.n = n

    def mean_se(self, j: int) -> tuple[float, float]:
        if self.n < 2:
            return (float(self.mean[j]) if self.n else math.nan, math.nan)
        return float(self.mean[j]), math.sqrt(max(self.C[j, j], 0.0) / (self.n - 1) / self.n)

    def ratio(self, j: int, k: int) -> tuple[float, float]:
        """mean_j / mean_k and its delta-method standard error."""
        my = self.mean[k]
        if self.n < 2 or my == 0:
            return (math.nan, math.nan)
        r = self.mean[j] / my
        var = (self.C[j, j] - 2 * r * self.C[j, k] + r * r * self.C[k, k]) / (self.n - 1)
        return float(r), math.sqrt(max(var, 0.0) / self.n) / abs(my)


def summarize(ds: xr.Dataset) -> dict:
    """The summary as a plain dict (stable keys, used by the table printer and scripts)."""
    n = int(ds.sizes["run"])
    horizon = int(ds.sizes["time"])
    start = dt.date.fromisoformat(str(ds.attrs["start_date"]))
    fsd = np.asarray(ds["first_shortage_day"].values, dtype=np.float64)
    n_short = int(np.sum(~np.isnan(fsd)))
    lo, hi = wilson(n_short, n)
    pct = censored_percentiles(fsd, horizon)
    del fsd
    names = [str(x) for x in ds["source"].values]
    ns = len(names)
    per_run = ["demand_total", "fired_total", "effective_total", "shortage_days", "stock_final"]
    per_src = ["initial_stock", "received", "fired_by_source", "duds", "effective_by_source"]
    mom = Moments(len(per_run) + len(per_src) * ns)
    for i0 in range(0, n, BLOCK):  # bounded memory whatever the run count
        i1 = min(n, i0 + BLOCK)
        cols = [ds[v][i0:i1].values.astype(np.float64) for v in per_run]
        for v in per_src:
            block = ds[v][i0:i1, :].values.astype(np.float64)
            cols += [block[:, j] for j in range(ns)]
        mom.add(np.column_stack(cols))
    col = {v: k for k, v in enumerate(per_run)}
    for a, v in enumerate(per_src):
        for j in range(ns):
            col[(v, j)] = len(per_run) + a * ns + j
    D, F, E = col["demand_total"], col["fired_total"], col["effective_total"]
    sources = []
    for j, name in enumerate(names):
        sources.append({
            "name": name,
            "kind": str(ds["source_kind"].values[j]),
            "initial": mom.mean_se(col[("initial_stock", j)]),
            "received": mom.mean_se(col[("received", j)]),
            "fired": mom.mean_se(col[("fired_by_source", j)]),
            "duds": mom.mean_se(col[("duds", j)]),
            "effective": mom.mean_se(col[("effective_by_source", j)]),
            "dud_fraction": mom.ratio(col[("duds", j)], col[("fired_by_source", j)]),
            "share_of_effective": mom.ratio(col[("effective_by_source", j)], E),
        })
    fill, fill_se = mom.ratio(F, D)
    efill, efill_se = mom.ratio(E, D)
    return {
        "scenario": str(ds.attrs.get("scenario_name")),
        "runs": n,
        "run_range": [int(ds.attrs["run_start"]), int(ds.attrs["run_stop"])],
        "seed": str(ds.attrs.get("seed")),
        "start_date": start.isoformat(),
        "horizon_days": horizon,
        "p_any_shortage": n_short / n if n else math.nan,
        "p_any_shortage_se": math.sqrt(max(n_short / n * (1 - n_short / n), 0) / n) if n else math.nan,
        "p_any_shortage_ci95": [lo, hi],
        "first_shortage_day_percentiles": {str(q): v for q, v in pct.items()},
        "shortage_days": mom.mean_se(col["shortage_days"]),
        "demand_total": mom.mean_se(D),
        "fired_total": mom.mean_se(F),
        "effective_total": mom.mean_se(E),
        "fill_rate": (fill, fill_se),
        "effective_fill_rate": (efill, efill_se),
        "stock_final": mom.mean_se(col["stock_final"]),
        "sources": sources,
    }


def _fmt(x: float, se: float | None = None, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    s = f"{x:,.{digits}f}"
    if se is not None and not math.isnan(se):
        s += f" ± {se:,.{digits}f}"
    return s


def format_table(s: dict) -> str:
    """A readable plain-text table (± values are Monte Carlo standard errors)."""
    start = dt.date.fromisoformat(s["start_date"])
    lines = [
        f"scenario {s['scenario']}: {s['runs']:,} runs (runs {s['run_range'][0]}..{s['run_range'][1] - 1}), "
        f"seed {s['seed']}, {s['horizon_days']} days from {s['start_date']}",
        "(± is one Monte Carlo standard error)",
        "",
        f"P(any shortage day)        {s['p_any_shortage']:.4f} ± {s['p_any_shortage_se']:.4f}"
        f"   (95% Wilson {s['p_any_shortage_ci95'][0]:.4f}-{s['p_any_shortage_ci95'][1]:.4f})",
        "first shortage day          " + "  ".join(
            f"p{round(float(q) * 100)}: " + (
                f"day {int(v)} ({(start + dt.timedelta(days=int(v))).isoformat()})" if v is not None
                else "beyond horizon")
            for q, v in s["first_shortage_day_percentiles"].items()
        ),
        f"shortage days per run       {_fmt(*s['shortage_days'], digits=2)}",
        f"demand, rounds              {_fmt(*s['demand_total'])}",
        f"fired, rounds               {_fmt(*s['fired_total'])}",
        f"effective, rounds           {_fmt(*s['effective_total'])}",
        f"fill rate                   {_fmt(*s['fill_rate'], digits=4)}",
        f"effective fill rate         {_fmt(*s['effective_fill_rate'], digits=4)}",
        f"final stock, rounds         {_fmt(*s['stock_final'])}",
        "",
        f"{'source':<14}{'kind':<11}{'received':>22}{'fired':>22}{'duds':>20}{'effective':>22}"
        f"{'dud frac':>10}{'eff share':>11}",
    ]
    for src in s["sources"]:
        lines.append(
            f"{src['name']:<14}{src['kind']:<11}{_fmt(*src['received']):>22}{_fmt(*src['fired']):>22}"
            f"{_fmt(*src['duds']):>20}{_fmt(*src['effective']):>22}"
            f"{_fmt(src['dud_fraction'][0], digits=3):>10}{_fmt(src['share_of_effective'][0], digits=3):>11}"
        )
    return "\n".join(lines)

