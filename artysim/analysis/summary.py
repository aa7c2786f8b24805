"""Headline answers from a results file, each with its Monte Carlo uncertainty."""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING

import numpy as np

from artysim.analysis.stats import (
    Z95,
    Moments,
    censored_percentile_ci,
    censored_percentiles,
    delivered,
    effective_sample_size,
    fmt_value,
    jsonable,
    weighted_mean_se,
    weighted_quantile,
    weighted_quantile_ci,
    wilson,
)
from artysim.results import schema

if TYPE_CHECKING:
    import xarray as xr

BLOCK = 1 << 18  # runs read at a time


SUMMARY_VERSION = 1  # bump when a key of the summary dict changes meaning (docs/summary-json.md)


#: per-run and per-source outputs of the optional mechanisms (schema 2); null in older files
MECHANISM_RUN_VARS = ("rationed_days", "depot_strikes", "refire_asked_total")
MECHANISM_SOURCE_VARS = ("refurbished", "lost", "rejected", "reworked", "refired", "containers")


def weights_of(ds: xr.Dataset) -> np.ndarray | None:
    """A calibrated file's run weights (``artysim calibrate``), or None."""
    return np.asarray(ds["weight"].values, dtype=np.float64) if "weight" in ds.variables else None


def calibration_info(ds: xr.Dataset) -> dict | None:
    """What a calibrated file says of its weights: the observations and the effective sample size."""
    if "weight" not in ds.variables:
        return None
    w = weights_of(ds)
    return {"calibrated_on": str(ds.attrs.get("calibrated_on", "")), "effective_sample_size":
            effective_sample_size(w)}


def calibration_line(info: dict | None) -> str | None:
    """The line every reading command prints for a calibrated file."""
    if not info:
        return None
    return (f"calibrated: runs weighted by the evidence on {info['calibrated_on']} (effective sample size "
            f"{info['effective_sample_size']:,.1f}); estimates are weighted, their SEs from the effective sample size")


def _weighted_percentiles(fsd: np.ndarray, w: np.ndarray, qs) -> tuple[dict, dict]:
    """Censored first-shortage-day percentiles and their intervals under weights (None: beyond)."""
    x = np.where(np.isnan(fsd), np.inf, fsd)

    def fin(v):
        return float(v) if math.isfinite(v) else None

    pct = {q: fin(weighted_quantile(x, w, q)) for q in qs}
    ci = {q: tuple(fin(v) for v in weighted_quantile_ci(x, w, q)) for q in qs}
    return pct, ci


def _regime_shares(ds: xr.Dataset, n: int, horizon: int) -> list[dict] | None:
    """Share of days in each intensity regime, with its standard error over runs (runs are
    independent, so the SE of the mean of per-run shares is honest despite the chain's memory)."""
    if "regime_days" not in ds.variables:
        return None
    names = [str(x) for x in ds["regime"].values]
    mom = Moments(len(names))
    w = weights_of(ds)
    for i0 in range(0, n, BLOCK):
        i1 = min(n, i0 + BLOCK)
        mom.add(ds["regime_days"][i0:i1, :].values.astype(np.float64) / horizon, None if w is None else w[i0:i1])
    return [{"name": name, "share_of_days": mom.mean_se(j)} for j, name in enumerate(names)]


#: the per-run variables the summary reads (a file keeping fewer, [output] per_run, is refused naming them)
SUMMARY_NEEDS = ("first_shortage_day", "demand_total", "fired_total", "effective_total", "shortage_days",
                 "stock_final", "shortfall_total", "stock_min", "initial_stock", "received", "fired_by_source",
                 "duds", "effective_by_source")
def _components(ds: xr.Dataset, n: int, horizon: int, w: np.ndarray | None) -> list[dict] | None:
    """Each component line's mean units made, final inventory, binding days and share of days it bound
    (None when the scenario assembles nothing from components)."""
    if "component" not in ds.dims:
        return None
    names = [str(x) for x in ds["component"].values]
    k = len(names)
    mom = Moments(3 * k)
    for i0 in range(0, n, BLOCK):
        i1 = min(n, i0 + BLOCK)
        cols = [ds[v][i0:i1, :].values.astype(np.float64)
                for v in ("component_produced", "component_final", "component_bound_days")]
        mom.add(np.column_stack(cols), None if w is None else w[i0:i1])
    out = []
    for j, name in enumerate(names):
        bound = mom.mean_se(2 * k + j)
        out.append({"name": name, "source": str(ds["component_source"].values[j]),
                    "produced": mom.mean_se(j), "final": mom.mean_se(k + j), "bound_days": bound,
                    "share_of_days_bound": (bound[0] / horizon, bound[1] / horizon) if horizon else (math.nan,) * 2})
    return out


def summarize(ds: xr.Dataset) -> dict:
    """The summary as a plain dict (stable keys, documented in docs/summary-json.md); a sweep file
    (with a ``variant`` dimension) gives one compact row per variant instead."""
    if "variant" in ds.dims:
        return summarize_sweep(ds)
    schema.require(ds, SUMMARY_NEEDS, "the summary")
    n = int(ds.sizes["run"])
    horizon = int(ds.sizes["time"])
    start = dt.date.fromisoformat(str(ds.attrs["start_date"]))
    fsd = np.asarray(ds["first_shortage_day"].values, dtype=np.float64)
    n_short = int(np.sum(~np.isnan(fsd)))
    w = weights_of(ds)
    short = fsd[~np.isnan(fsd)]  # among the runs that ran short: when they did
    sf = np.asarray(ds["shortfall_total"].values, dtype=np.float64)  # one per-run column, as fsd
    if w is None:
        lo, hi = wilson(n_short, n)
        p_short = n_short / n if n else math.nan
        p_se = math.sqrt(max(p_short * (1 - p_short), 0) / n) if n else math.nan
        pct = censored_percentiles(fsd, horizon)
        pct_ci = censored_percentile_ci(fsd, tuple(pct))
        med_short = censored_percentiles(short, horizon, (0.5,))[0.5]
        med_short_ci = censored_percentile_ci(short, (0.5,))[0.5]
        sf_pct = censored_percentiles(sf, horizon, tuple(pct))
        sf_ci = censored_percentile_ci(sf, tuple(pct))
    else:  # calibrated: weighted share, Wilson interval and SE with the effective sample size for n
        ess = effective_sample_size(w)
        p_short = weighted_mean_se((~np.isnan(fsd)).astype(np.float64), w)[0]
        p_se = math.sqrt(max(p_short * (1 - p_short), 0) / ess) if ess > 0 else math.nan
        lo, hi = wilson(p_short * ess, ess) if ess > 0 else (math.nan, math.nan)
        pct, pct_ci = _weighted_percentiles(fsd, w, (0.05, 0.25, 0.5, 0.75, 0.95))
        ws = w[~np.isnan(fsd)]
        if short.size and ws.sum() > 0:
            m, mc = _weighted_percentiles(short, ws, (0.5,))
            med_short, med_short_ci = m[0.5], mc[0.5]
        else:
            med_short, med_short_ci = None, (None, None)
        sf_pct, sf_ci = _weighted_percentiles(sf, w, tuple(pct))
    del fsd, short, sf
    names = [str(x) for x in ds["source"].values]
    ns = len(names)
    per_run = ["demand_total", "fired_total", "effective_total", "shortage_days", "stock_final", "shortfall_total",
               "stock_min"] + [v for v in MECHANISM_RUN_VARS if v in ds.variables]
    per_src = ["initial_stock", "received", "fired_by_source", "duds", "effective_by_source"] + [
        v for v in MECHANISM_SOURCE_VARS if v in ds.variables]
    mom = Moments(len(per_run) + (len(per_src) + 1) * ns)
    for i0 in range(0, n, BLOCK):  # bounded memory whatever the run count
        i1 = min(n, i0 + BLOCK)
        cols = [ds[v][i0:i1].values.astype(np.float64) for v in per_run]
        blocks = {}
        for v in per_src:
            blocks[v] = block = ds[v][i0:i1, :].values.astype(np.float64)
            cols += [block[:, j] for j in range(ns)]
        deliv = delivered(blocks)  # the one definition of a delivered shell
        cols += [deliv[:, j] for j in range(ns)]
        mom.add(np.column_stack(cols), None if w is None else w[i0:i1])
    col = {v: k for k, v in enumerate(per_run)}
    for a, v in enumerate(per_src + ["delivered"]):
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
            "delivered": mom.mean_se(col[("delivered", j)]),
            "effective_per_delivered": mom.ratio(col[("effective_by_source", j)], col[("delivered", j)]),
        })
        for v in MECHANISM_SOURCE_VARS:  # files from before these mechanisms: null
            sources[-1][v] = mom.mean_se(col[(v, j)]) if (v, j) in col else None
    fill, fill_se = mom.ratio(F, D)
    efill, efill_se = mom.ratio(E, D)
    out = {
        "summary_version": SUMMARY_VERSION,
        "scenario": str(ds.attrs.get("scenario_name")),
        "runs": n,
        "runs_total": int(ds.attrs.get("runs_total", n)),
        "run_range": [int(ds.attrs["run_start"]), int(ds.attrs["run_stop"])],
        "seed": str(ds.attrs.get("seed")),
        "start_date": start.isoformat(),
        "horizon_days": horizon,
        "p_any_shortage": p_short,
        "p_any_shortage_se": p_se,
        "p_any_shortage_ci95": [lo, hi],
        "runs_short": n_short,
        "first_shortage_day_percentiles": {str(q): v for q, v in pct.items()},
        "first_shortage_day_ci95": {str(q): list(v) for q, v in pct_ci.items()},
        "first_shortage_day_median_if_short": med_short,
        "first_shortage_day_median_if_short_ci95": list(med_short_ci),
        "shortfall_total_percentiles": {str(q): v for q, v in sf_pct.items()},
        "shortfall_total_ci95": {str(q): list(v) for q, v in sf_ci.items()},
        "shortage_days": mom.mean_se(col["shortage_days"]),
        "demand_total": mom.mean_se(D),
        "fired_total": mom.mean_se(F),
        "effective_total": mom.mean_se(E),
        "fill_rate": (fill, fill_se),
        "effective_fill_rate": (efill, efill_se),
        "shortfall_total": mom.mean_se(col["shortfall_total"]),
        "stock_final": mom.mean_se(col["stock_final"]),
        "stock_min": mom.mean_se(col["stock_min"]),
        "sources": sources,
    }
    for v in MECHANISM_RUN_VARS:
        out[v] = mom.mean_se(col[v]) if v in col else None
    out["regimes"] = _regime_shares(ds, n, horizon)
    comps = _components(ds, n, horizon, w)
    if comps is not None:
        out["components"] = comps
    cal = calibration_info(ds)
    if cal is not None:
        out["calibration"] = cal
    if "missing_runs" in ds.attrs:  # a partial set of shards: say which runs are not counted
        out["missing_runs"] = str(ds.attrs["missing_runs"])
    return out


def format_table(s: dict) -> str:
    """A readable plain-text table (± values are Monte Carlo standard errors)."""
    start = dt.date.fromisoformat(s["start_date"])

    def day(v) -> str:
        return BEYOND if v is None else f"day {int(v)} ({(start + dt.timedelta(days=int(v))).isoformat()})"

    if "missing_runs" in s:  # said first: every number below counts only the runs present
        runs = (f"PARTIAL: {s['runs']:,} of {s.get('runs_total', s['runs']):,} runs; {s['missing_runs']} "
                "are missing and not counted")
    else:
        runs = f"{s['runs']:,} runs (runs {s['run_range'][0]}..{s['run_range'][1] - 1})"
    med = s.get("first_shortage_day_median_if_short")
    mci = s.get("first_shortage_day_median_if_short_ci95") or [None, None]
    lines = [
        f"scenario {s['scenario']}: {runs}, seed {s['seed']}, {s['horizon_days']} days from {s['start_date']}",
        _where_line(s),
        calibration_line(s.get("calibration")),
        "(± is one Monte Carlo standard error)",
        "",
        f"P(any shortage day)        {s['p_any_shortage']:.4f} ± {s['p_any_shortage_se']:.4f}"
        f"   (95% Wilson {s['p_any_shortage_ci95'][0]:.4f}-{s['p_any_shortage_ci95'][1]:.4f})",
        "first shortage day          " + "  ".join(
            f"p{round(float(q) * 100)}: {day(v)}" for q, v in s["first_shortage_day_percentiles"].items()
        ),
        "  (95% interval, days)      " + "  ".join(
            f"p{round(float(q) * 100)}: " + "-".join("beyond" if x is None else str(int(x)) for x in ci)
            for q, ci in s["first_shortage_day_ci95"].items() if ci[0] is not None
        ) if any(ci[0] is not None for ci in s["first_shortage_day_ci95"].values()) else None,
        (f"  among the runs short      median {day(med)}"
         + (f" (95% interval, days: {int(mci[0])}-{int(mci[1])})" if None not in mci else "")
         + f", over {s['runs_short']:,} runs") if med is not None else None,
        f"shortage days per run       {fmt_value(*s['shortage_days'], digits=2)}",
        f"shortfall, rounds           {fmt_value(*s['shortfall_total'])}",
        ("  percentiles over runs     " + "  ".join(
            f"p{round(float(q) * 100)}: {fmt_value(v)}" for q, v in s["shortfall_total_percentiles"].items()))
        if s.get("shortfall_total_percentiles") else None,
        f"demand, rounds              {fmt_value(*s['demand_total'])}",
        f"fired, rounds               {fmt_value(*s['fired_total'])}",
        f"effective, rounds           {fmt_value(*s['effective_total'])}",
        f"fill rate                   {fmt_value(*s['fill_rate'], digits=4)}",
        f"effective fill rate         {fmt_value(*s['effective_fill_rate'], digits=4)}",
        f"final stock, rounds         {fmt_value(*s['stock_final'])}",
        _opt_line("rationed days per run", s.get("rationed_days"), 2),
        _opt_line("depot strikes per run", s.get("depot_strikes"), 2),
        _opt_line("re-fire asked, rounds", s.get("refire_asked_total"), 0),
        ("days by regime              " + "  ".join(
            f"{r['name']} {r['share_of_days'][0]:.3f} ± {r['share_of_days'][1]:.3f}" for r in s["regimes"]))
        if s.get("regimes") and len(s["regimes"]) > 1 else None,
        "",
        f"{'source':<14}{'kind':<11}{'received':>22}{'fired':>22}{'duds':>20}{'effective':>22}"
        f"{'dud frac':>10}{'eff share':>11}",
    ]
    for src in s["sources"]:
        lines.append(
            f"{src['name']:<14}{src['kind']:<11}{fmt_value(*src['received']):>22}{fmt_value(*src['fired']):>22}"
            f"{fmt_value(*src['duds']):>20}{fmt_value(*src['effective']):>22}"
            f"{fmt_value(src['dud_fraction'][0], digits=3):>10}{fmt_value(src['share_of_effective'][0], digits=3):>11}"
        )
    flows = [v for v in MECHANISM_SOURCE_VARS
             if any(src.get(v) is not None and src[v][0] > 0 for src in s["sources"])]
    if flows:  # only the mechanisms this scenario uses
        lines += ["", f"{'source':<14}{'kind':<11}" + "".join(f"{v:>22}" for v in flows)]
        for src in s["sources"]:
            lines.append(f"{src['name']:<14}{src['kind']:<11}" + "".join(f"{fmt_value(*src[v]):>22}" for v in flows))
    if s.get("components"):
        lines += ["", f"{'component':<24}{'made':>22}{'final inventory':>22}{'days bound':>18}{'share':>8}"]
        for c in s["components"]:
            lines.append(f"{c['name']:<24}{fmt_value(*c['produced']):>22}{fmt_value(*c['final']):>22}"
                         f"{fmt_value(*c['bound_days'], digits=1):>18}{c['share_of_days_bound'][0]:>8.3f}")
    imports = [src for src in s["sources"] if src["kind"] == "import" and src.get("effective_per_delivered")
               and src["delivered"][0] > 0]
    for src in imports:  # delivered: accepted or rejected on receipt, each round once (stats.delivered)
        lines.append(f"effective rounds per delivered {src['name']} shell: "
                     f"{fmt_value(*src['effective_per_delivered'], digits=3)}")
    if "missing_runs" in s:  # and again at the end, beside the numbers
        lines += ["", f"partial: {s['missing_runs']} are missing and not counted"]
    return "\n".join(x for x in lines if x is not None)


def format_stats(s: dict, est: dict) -> str:
    """``summary --stat``: a heading and one line ``EXPR = value ± se`` per statistic."""
    from artysim.analysis.statistics import format_estimate

    lines = [f"scenario {s['scenario']}: {s['runs']:,} runs, seed {s['seed']}, {s['horizon_days']} days from "
             f"{s['start_date']}", _where_line(s), calibration_line(s.get("calibration")),
             "(± is one Monte Carlo standard error)", ""]
    lines += [format_estimate(t, e) for t, e in est.items()]
    return "\n".join(x for x in lines if x is not None)


def _where_line(s: dict) -> str | None:
    """``--where``: the condition and how many runs satisfy it (None without one)."""
    if not s.get("where"):
        return None
    from artysim.analysis.statistics import where_line

    return where_line(s["where"])


def _opt_line(label: str, pair, digits: int) -> str | None:
    """A line for a mechanism's per-run mean, shown only when the scenario uses it."""
    if pair is None or not pair[0] > 0:
        return None
    return f"{label:<28}{fmt_value(*pair, digits=digits)}"


CSV_COLUMNS = ("quantity", "source", "value", "se", "ci_low", "ci_high", "unit")

#: unit of each quantity in the CSV (means per run unless the name says otherwise)
_UNITS = {
    "runs": "runs", "runs_short": "runs", "p_any_shortage": "fraction", "shortage_days": "days",
    "demand_total": "rounds", "fired_total": "rounds", "effective_total": "rounds", "shortfall_total": "rounds",
    "fill_rate": "fraction", "effective_fill_rate": "fraction", "stock_final": "rounds", "stock_min": "rounds",
    "initial": "rounds", "received": "rounds", "fired": "rounds", "duds": "rounds", "effective": "rounds",
    "dud_fraction": "fraction", "share_of_effective": "fraction", "rationed_days": "days",
    "depot_strikes": "strikes", "refurbished": "rounds", "lost": "rounds", "rejected": "rounds",
    "reworked": "rounds", "share_of_days": "fraction", "refire_asked_total": "rounds", "refired": "rounds",
    "component_produced": "units", "component_final": "units", "component_bound_days": "days",
    "component_share_of_days_bound": "fraction", "containers": "containers", "delivered": "rounds",
    "effective_per_delivered": "fraction",
}


BEYOND = "beyond horizon"


def _beyond(v):
    """A first-shortage day as a CSV cell: None (more runs never short than the percentile) is a value,
    "beyond horizon", not an empty cell (which reads as unknown)."""
    return BEYOND if v is None else v


def csv_rows(s: dict) -> list[tuple]:
    """The summary in long format: one row per quantity (and source); empty cells are unknown; a
    first-shortage-day percentile (or interval bound) past the horizon is written "beyond horizon"."""
    rows: list[tuple] = [("runs", "", s["runs"], None, None, None, "runs"),
                         ("runs_short", "", s["runs_short"], None, None, None, "runs")]
    cal = s.get("calibration")
    if cal:  # a calibrated file: every row below is weighted; say on what, and the runs in effect
        rows += [("calibrated_on", "", cal["calibrated_on"], None, None, None, "observations"),
                 ("effective_sample_size", "", cal["effective_sample_size"], None, None, None, "runs")]
    lo, hi = s["p_any_shortage_ci95"]
    rows.append(("p_any_shortage", "", s["p_any_shortage"], s["p_any_shortage_se"], lo, hi, "fraction"))
    for q, v in s["first_shortage_day_percentiles"].items():
        clo, chi = s["first_shortage_day_ci95"][q]
        rows.append((f"first_shortage_day_p{round(float(q) * 100)}", "", _beyond(v), None, _beyond(clo),
                     _beyond(chi), "days"))
    if s.get("runs_short"):
        clo, chi = s["first_shortage_day_median_if_short_ci95"]
        rows.append(("first_shortage_day_median_if_short", "", s["first_shortage_day_median_if_short"], None,
                     clo, chi, "days"))
    for q, v in (s.get("shortfall_total_percentiles") or {}).items():
        clo, chi = s["shortfall_total_ci95"][q]
        rows.append((f"shortfall_total_p{round(float(q) * 100)}", "", v, None, clo, chi, "rounds"))
    for key in ("shortage_days", "demand_total", "fired_total", "effective_total", "shortfall_total", "fill_rate",
                "effective_fill_rate", "stock_final", "stock_min"):
        m, se = s[key]
        rows.append((key, "", m, se, m - Z95 * se, m + Z95 * se, _UNITS[key]))
    for key in MECHANISM_RUN_VARS:
        if s.get(key) is not None:
            m, se = s[key]
            rows.append((key, "", m, se, m - Z95 * se, m + Z95 * se, _UNITS[key]))
    for src in s["sources"]:
        for key in ("initial", "received", "fired", "duds", "effective", "dud_fraction", "share_of_effective",
                    "delivered", "effective_per_delivered", *MECHANISM_SOURCE_VARS):
            if src.get(key) is None:
                continue
            m, se = src[key]
            rows.append((key, src["name"], m, se, m - Z95 * se, m + Z95 * se, _UNITS[key]))
    for r in s.get("regimes") or []:
        m, se = r["share_of_days"]
        rows.append(("share_of_days", f"regime:{r['name']}", m, se, m - Z95 * se, m + Z95 * se, "fraction"))
    for c in s.get("components") or []:
        for key, field in (("component_produced", "produced"), ("component_final", "final"),
                           ("component_bound_days", "bound_days"),
                           ("component_share_of_days_bound", "share_of_days_bound")):
            m, se = c[field]
            rows.append((key, f"component:{c['name']}", m, se, m - Z95 * se, m + Z95 * se, _UNITS[key]))
    for text, e in (s.get("stats") or {}).items():  # summary --stat: the expression is the quantity
        rows.append((text, "", e["value"], e["se"], e["ci95"][0], e["ci95"][1], ""))
    return rows


def _cell(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return repr(x) if not x.is_integer() or abs(x) >= 1e16 else str(int(x))
    return str(x)


def format_csv(s: dict) -> str:
    """CSV text of ``csv_rows`` (or, for a sweep, with the variant and its label in front)."""
    import csv
    import io as _io

    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if "variants" in s:
        w.writerow(("variant", "label") + CSV_COLUMNS)
        for v in s["variants"]:
            for row in sweep_csv_rows(v):
                w.writerow([v["variant"], v["label"]] + [_cell(x) for x in row])
    else:
        w.writerow(CSV_COLUMNS)
        for row in csv_rows(s):
            w.writerow([_cell(x) for x in row])
    return buf.getvalue()


# -- sweep files (a ``variant`` dimension): one compact row per variant

def summarize_sweep(ds: xr.Dataset) -> dict:
    """One compact row per variant of a sweep file: P(short) with its Wilson interval, the median first
    shortage day (None = beyond the horizon) and the (effective) fill rates with standard errors."""
    import json

    paths = json.loads(str(ds.attrs.get("sweep_paths", "[]")))
    variants = []
    for i in range(int(ds.sizes["variant"])):
        one = summarize(ds.isel(variant=i))
        variants.append({
            "variant": i,
            "label": str(ds["variant_label"].values[i]),
            "vary": {str(ds[f"vary_{k}"].attrs["path"]): _vary_value(ds[f"vary_{k}"].values[i])
                     for k in range(len(paths))},
            "runs": one["runs"],
            "p_any_shortage": one["p_any_shortage"],
            "p_any_shortage_se": one["p_any_shortage_se"],
            "p_any_shortage_ci95": one["p_any_shortage_ci95"],
            "first_shortage_day_median": one["first_shortage_day_percentiles"].get("0.5"),
            "first_shortage_day_median_ci95": one["first_shortage_day_ci95"].get("0.5"),
            "fill_rate": one["fill_rate"],
            "effective_fill_rate": one["effective_fill_rate"],
            "shortfall_total": one["shortfall_total"],
        })
    return {
        "summary_version": SUMMARY_VERSION,
        "scenario": str(ds.attrs.get("scenario_name")),
        "seed": str(ds.attrs.get("seed")),
        "start_date": str(ds.attrs["start_date"]),
        "horizon_days": int(ds.sizes["time"]),
        "sweep_paths": paths,
        "variants": variants,
    }


def _vary_value(x) -> float | str:
    """A varied value as a number, or as its text (words, distributions: ``--vary`` takes those too)."""
    return str(x) if isinstance(x, str) else float(x)


def sweep_csv_rows(v: dict) -> list[tuple]:
    lo, hi = v["p_any_shortage_ci95"]
    mlo, mhi = v["first_shortage_day_median_ci95"] or (None, None)
    rows = [("runs", "", v["runs"], None, None, None, "runs"),
            ("p_any_shortage", "", v["p_any_shortage"], v["p_any_shortage_se"], lo, hi, "fraction"),
            ("first_shortage_day_p50", "", _beyond(v["first_shortage_day_median"]), None, _beyond(mlo),
             _beyond(mhi), "days")]
    for key, unit in (("fill_rate", "fraction"), ("effective_fill_rate", "fraction"), ("shortfall_total", "rounds")):
        m, se = v[key]
        rows.append((key, "", m, se, m - Z95 * se, m + Z95 * se, unit))
    return rows


def format_sweep_table(s: dict) -> str:
    """A row per variant (± is one Monte Carlo standard error; the interval is Wilson's 95 %)."""
    width = max([len("variant")] + [len(v["label"]) for v in s["variants"]])
    lines = [
        f"sweep of scenario {s['scenario']}: {len(s['variants'])} variants of {', '.join(s['sweep_paths'])}; "
        f"seed {s['seed']} (common random numbers), {s['horizon_days']} days from {s['start_date']}",
        "(± is one Monte Carlo standard error)",
        "",
        f"{'#':>3}  {'variant':<{width}}  {'runs':>7}  {'P(any shortage) [95% Wilson]':>30}  "
        f"{'median first shortage':>22}  {'effective fill rate':>20}",
    ]
    for v in s["variants"]:
        lo, hi = v["p_any_shortage_ci95"]
        med = v["first_shortage_day_median"]
        med_s = f"day {int(med)}" if med is not None else "beyond horizon"
        p_s = f"{v['p_any_shortage']:.4f} [{lo:.4f}, {hi:.4f}]"
        lines.append(f"{v['variant']:>3}  {v['label']:<{width}}  {v['runs']:>7,}  {p_s:>30}  {med_s:>22}  "
                     f"{fmt_value(*v['effective_fill_rate'], digits=4):>20}")
    return "\n".join(lines)


def format_any(s: dict, fmt: str) -> str:
    """table | json | csv text of a summary dict (single file or sweep)."""
    import json

    if fmt == "json":
        return json.dumps(jsonable(s), indent=2)
    if fmt == "csv":
        return format_csv(s).rstrip("\n")
    return format_sweep_table(s) if "variants" in s else format_table(s)

