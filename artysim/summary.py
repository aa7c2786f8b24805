"""Headline answers from a results file, each with its Monte Carlo uncertainty."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
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


def summarize(ds: xr.Dataset) -> dict:
    """The summary as a plain dict (stable keys, used by the table printer and scripts)."""
    n = int(ds.sizes["run"])
    horizon = int(ds.sizes["time"])
    start = dt.date.fromisoformat(str(ds.attrs["start_date"]))
    fsd = np.asarray(ds["first_shortage_day"].values, dtype=np.float64)
    n_short = int(np.sum(~np.isnan(fsd)))
    lo, hi = wilson(n_short, n)
    demand = ds["demand_total"].values.astype(np.float64)
    fired = ds["fired_total"].values.astype(np.float64)
    eff = ds["effective_total"].values.astype(np.float64)
    fill, fill_se = ratio_of_means(fired, demand)
    efill, efill_se = ratio_of_means(eff, demand)
    pct = censored_percentiles(fsd, horizon)
    sources = []
    eff_all = eff.sum()
    for i, name in enumerate(ds["source"].values):
        rec = ds["received"].values[:, i]
        fs = ds["fired_by_source"].values[:, i]
        du = ds["duds"].values[:, i]
        ef = ds["effective_by_source"].values[:, i]
        share, share_se = ratio_of_means(ef.astype(float), eff)
        sources.append({
            "name": str(name),
            "kind": str(ds["source_kind"].values[i]),
            "initial": mean_se(ds["initial_stock"].values[:, i]),
            "received": mean_se(rec),
            "fired": mean_se(fs),
            "duds": mean_se(du),
            "effective": mean_se(ef),
            "dud_fraction": ratio_of_means(du.astype(float), fs.astype(float)),
            "share_of_effective": (share, share_se) if eff_all > 0 else (math.nan, math.nan),
        })
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
        "shortage_days": mean_se(ds["shortage_days"].values),
        "demand_total": mean_se(demand),
        "fired_total": mean_se(fired),
        "effective_total": mean_se(eff),
        "fill_rate": (fill, fill_se),
        "effective_fill_rate": (efill, efill_se),
        "stock_final": mean_se(ds["stock_final"].values),
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

