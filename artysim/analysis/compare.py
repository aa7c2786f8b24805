"""Compare two results files, run by run when they share common random numbers.

Two files of the same seed and run indices faced the same random inputs in run *i* (every parameter
and component draws from its own stream keyed by name), so the per-run difference B - A isolates what
changed between the scenarios and its standard error is usually far smaller than the unpaired one.
Files that do not pair are compared as independent samples (Welch standard errors), and say so.

Never-short runs are censored at the horizon: their first shortage day is only known to be beyond
it, so delays involving them are lower bounds and are reported as such.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from artysim.analysis.stats import censored_percentiles, mean_se, wilson
from artysim.analysis.stats import fmt_value as _f
from artysim.errors import ResultsError
from artysim.results import schema

if TYPE_CHECKING:
    import xarray as xr

COMPARE_VERSION = 1
QS = (0.05, 0.25, 0.5, 0.75, 0.95)

#: per-run outcomes compared, and whether a larger value is better for the army
OUTCOMES = {
    "effective_total": ("effective rounds", True),
    "fired_total": ("rounds fired", True),
    "shortfall_total": ("shortfall, rounds", False),
    "shortage_days": ("shortage days", False),
}


#: the per-run variables compare reads (pairing itself needs only the run indices and seeds)
COMPARE_NEEDS = ("first_shortage_day", *OUTCOMES, "received", "initial_stock")


def _describe(ds: xr.Dataset) -> dict:
    return {
        "scenario": str(ds.attrs.get("scenario_name")),
        "scenario_hash": str(ds.attrs.get("scenario_hash")),
        "seed": str(ds.attrs.get("seed")),
        "runs": int(ds.sizes["run"]),
        "run_range": [int(ds.attrs.get("run_start", 0)), int(ds.attrs.get("run_stop", 0))],
        "start_date": str(ds.attrs.get("start_date")),
        "horizon_days": int(ds.sizes["time"]),
    }


def pairing(a: xr.Dataset, b: xr.Dataset) -> tuple[bool, str]:
    """Whether run i of A and run i of B share their random numbers, and why (not)."""
    if str(a.attrs.get("seed")) != str(b.attrs.get("seed")):
        return False, f"different seeds ({a.attrs.get('seed')} vs {b.attrs.get('seed')})"
    if a.sizes["run"] != b.sizes["run"] or not np.array_equal(a["run"].values, b["run"].values):
        return False, "different run indices"
    if a.sizes["time"] != b.sizes["time"] or str(a.attrs.get("start_date")) != str(b.attrs.get("start_date")):
        return False, "different start dates or horizons"
    r = a["run"].values
    rng = f"runs {int(r.min())}..{int(r.max())}" if len(r) else "no runs"
    return True, f"same seed {a.attrs.get('seed')} and {rng}: common random numbers, differences taken run by run"


def _p_se(k: int, n: int) -> list:
    p = k / n if n else math.nan
    return [p, math.sqrt(max(p * (1 - p), 0.0) / n) if n else math.nan]


def _per_run(ds: xr.Dataset, name: str) -> np.ndarray:
    return np.asarray(ds[name].values, dtype=np.float64)


def _supplied(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Rounds each source put at the army's disposal in a run: day-0 stock plus rounds received."""
    vals = np.asarray(ds["received"].values, dtype=np.float64) + np.asarray(ds["initial_stock"].values,
                                                                           dtype=np.float64)
    return {str(s): vals[:, j] for j, s in enumerate(ds["source"].values)}


def _ratio_paired(num: np.ndarray, den: np.ndarray) -> list:
    n = len(num)
    md = float(np.mean(den)) if n else math.nan
    if n < 2 or md == 0:
        return [math.nan, math.nan]
    r = float(np.mean(num)) / md
    return [r, float(np.std(num - r * den, ddof=1)) / (abs(md) * math.sqrt(n))]


def _ratio_unpaired(na: np.ndarray, da: np.ndarray, nb: np.ndarray, db: np.ndarray) -> list:
    """(mean nb - mean na) / (mean db - mean da), delta-method SE for independent samples."""
    den = float(np.mean(db) - np.mean(da))
    if den == 0 or len(na) < 2 or len(nb) < 2:
        return [math.nan, math.nan]
    r = float(np.mean(nb) - np.mean(na)) / den
    var = np.var(nb - r * db, ddof=1) / len(nb) + np.var(na - r * da, ddof=1) / len(na)
    return [r, float(math.sqrt(var)) / abs(den)]


def _delay(fa: np.ndarray, fb: np.ndarray, horizon: int) -> dict:
    """Days by which B delays A's first shortage, among runs where A runs short. A run where B never
    runs short contributes horizon - A's day, a lower bound (B's day is only known to be >= horizon)."""
    sel = ~np.isnan(fa)
    a, b = fa[sel], fb[sel]
    cens = np.isnan(b)
    d = np.where(cens, horizon, b) - a
    n, c = len(d), int(cens.sum())
    out: dict = {"runs": n, "runs_b_never_short": c, "mean": list(mean_se(d)) if n else [math.nan, math.nan],
                 "mean_is_lower_bound": c > 0, "percentiles": {}, "percentiles_upper": {},
                 "percentile_is_exact": {}}
    if n == 0:
        return out
    # the true percentile lies between that of the bounds (censored delays at their bound) and that with
    # censored delays unbounded; it is known exactly where the two agree
    low = np.sort(d)
    high = np.sort(np.where(cens, np.inf, d))
    for q in QS:
        k = max(1, math.ceil(q * n))
        lo, hi = float(low[k - 1]), float(high[k - 1])
        out["percentiles"][str(q)] = lo
        out["percentiles_upper"][str(q)] = hi if math.isfinite(hi) else None
        out["percentile_is_exact"][str(q)] = lo == hi
    return out


def compare(a: xr.Dataset, b: xr.Dataset) -> dict:
    """The comparison of B against A as a dict (keys documented in docs/summary-json.md)."""
    for name, ds in (("A", a), ("B", b)):
        if "variant" in ds.dims:
            raise ResultsError(f"{name} is a sweep file; compare one variant of it (ds.isel(variant=i))")
    paired, why = pairing(a, b)
    for name, ds in (("A", a), ("B", b)):
        schema.require(ds, COMPARE_NEEDS, f"compare (file {name})")
    out: dict = {"compare_version": COMPARE_VERSION, "a": _describe(a), "b": _describe(b),
                 "paired": paired, "pairing": why}
    na, nb = int(a.sizes["run"]), int(b.sizes["run"])
    fa, fb = _per_run(a, "first_shortage_day"), _per_run(b, "first_shortage_day")
    sa, sb = ~np.isnan(fa), ~np.isnan(fb)
    ka, kb = int(sa.sum()), int(sb.sum())
    short = {"a": _p_se(ka, na) + [list(wilson(ka, na))], "b": _p_se(kb, nb) + [list(wilson(kb, nb))]}
    if paired:
        diff = sb.astype(np.float64) - sa.astype(np.float64)
        short["difference"] = list(mean_se(diff))
    else:
        pa, pb = ka / na, kb / nb
        short["difference"] = [pb - pa, math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)]
    out["p_any_shortage"] = short

    T = int(a.sizes["time"])
    fsd: dict = {
        "censoring": f"runs never short are censored at the horizon ({T} days): their first shortage day is "
                     f"only known to be >= {T}",
        "percentiles_a": {str(q): v for q, v in censored_percentiles(fa, T, QS).items()},
        "percentiles_b": {str(q): v for q, v in censored_percentiles(fb, int(b.sizes["time"]), QS).items()},
    }
    if paired:
        ea, eb = np.where(sa, fa, np.inf), np.where(sb, fb, np.inf)  # never short = later than any day
        n = na
        fsd["p_b_later"] = _p_se(int(np.sum(eb > ea)), n)
        fsd["p_b_earlier"] = _p_se(int(np.sum(eb < ea)), n)
        fsd["p_same"] = _p_se(int(np.sum(eb == ea)), n)
        fsd["runs_both_never_short"] = int(np.sum(~sa & ~sb))
        fsd["delay_where_a_short"] = _delay(fa, fb, T)
    out["first_shortage_day"] = fsd

    for name in OUTCOMES:
        xa, xb = _per_run(a, name), _per_run(b, name)
        larger_better = OUTCOMES[name][1]
        va, vb = float(np.var(xa, ddof=1)), float(np.var(xb, ddof=1))
        item: dict = {"a": list(mean_se(xa)), "b": list(mean_se(xb)), "larger_is_better": larger_better}
        se_unpaired = math.sqrt(va / na + vb / nb)
        if paired:
            d = xb - xa
            m, se = mean_se(d)
            vd = float(np.var(d, ddof=1))
            better = d > 0 if larger_better else d < 0
            item.update({
                "difference": [m, se],
                "difference_percentiles": {str(q): float(np.quantile(d, q, method="inverted_cdf")) for q in QS},
                "p_b_better": _p_se(int(better.sum()), na),
                "p_b_worse": _p_se(int(((d < 0) if larger_better else (d > 0)).sum()), na),
                "var_difference": vd, "var_a_plus_var_b": va + vb,
                "variance_reduction": 1 - vd / (va + vb) if va + vb > 0 else math.nan,
                "se_if_unpaired": se_unpaired,
            })
        else:
            from scipy.stats import mannwhitneyu

            u = float(mannwhitneyu(xb, xa).statistic) / (na * nb)  # P(B > A) + P(tie)/2, independent runs
            item.update({"difference": [float(xb.mean() - xa.mean()), se_unpaired],
                         "p_b_better": [u if larger_better else 1 - u, math.nan]})
        out[name] = item

    ra, rb = _supplied(a), _supplied(b)
    more = []  # sources that clearly (by more than 3 standard errors) supply more rounds in B
    for s in rb:
        xa = ra.get(s, np.zeros(na))
        if paired:
            m, se = mean_se(rb[s] - xa)
        else:
            m = float(rb[s].mean() - xa.mean())
            se = math.sqrt(np.var(rb[s], ddof=1) / nb + np.var(xa, ddof=1) / na)
        if m > 3 * (0.0 if math.isnan(se) else se):
            more.append(s)
    ea_, eb_ = _per_run(a, "effective_total"), _per_run(b, "effective_total")
    rec_a = sum((ra[s] for s in more if s in ra), np.zeros(na))
    rec_b = sum((rb[s] for s in more), np.zeros(nb))
    if paired:
        ratio = _ratio_paired(eb_ - ea_, rec_b - rec_a)
        extra_rec, extra_eff = list(mean_se(rec_b - rec_a)), list(mean_se(eb_ - ea_))
    else:
        ratio = _ratio_unpaired(ea_, rec_a, eb_, rec_b)
        extra_rec = [float(rec_b.mean() - rec_a.mean()),
                     math.sqrt(np.var(rec_b, ddof=1) / nb + np.var(rec_a, ddof=1) / na)]
        extra_eff = out["effective_total"]["difference"]
    out["effective_per_delivered_shell"] = {
        "value": ratio, "sources": more, "extra_supplied": extra_rec, "extra_effective": extra_eff,
        "meaning": "extra effective rounds in B per extra round supplied (day-0 stock + received) by the "
                   "sources that supply more in B",
    }
    return out


def format_table(c: dict) -> str:
    """Readable text; ± is one Monte Carlo standard error of B − A (paired or Welch)."""
    A, B = c["a"], c["b"]
    lines = [
        f"A: {A['scenario']} ({A['runs']:,} runs, seed {A['seed']})   B: {B['scenario']} ({B['runs']:,} runs, "
        f"seed {B['seed']})",
        ("paired: " if c["paired"] else "NOT paired: ") + c["pairing"]
        + ("" if c["paired"] else "; compared as independent samples (Welch standard errors)"),
        "(± is one Monte Carlo standard error)",
        "",
    ]
    p = c["p_any_shortage"]
    lines.append(f"P(any shortage day)   A {_f(p['a'][0], p['a'][1], 4)}   B {_f(p['b'][0], p['b'][1], 4)}   "
                 f"B − A {_f(p['difference'][0], p['difference'][1], 4, sign=True)}")
    f = c["first_shortage_day"]

    def pct(d: dict) -> str:
        return "  ".join(f"p{round(float(q) * 100)} " + (f"day {int(v)}" if v is not None else "beyond")
                         for q, v in d.items())

    lines.append(f"first shortage day    A: {pct(f['percentiles_a'])}")
    lines.append(f"                      B: {pct(f['percentiles_b'])}")
    if c["paired"]:
        lines.append(
            f"run by run, B's first shortage is later in {_f(100 * f['p_b_later'][0], 100 * f['p_b_later'][1], 1)} %"
            f" of runs, earlier in {_f(100 * f['p_b_earlier'][0], 100 * f['p_b_earlier'][1], 1)} %, the same in "
            f"{_f(100 * f['p_same'][0], 100 * f['p_same'][1], 1)} % ({f['runs_both_never_short']:,} runs never "
            "short in either)")
        d = f["delay_where_a_short"]
        if d["runs"]:
            ge = "≥ " if d["mean_is_lower_bound"] else ""
            def one(q, v):
                hi = d["percentiles_upper"][q]
                return f"{v:,.0f}" if d["percentile_is_exact"][q] else f"≥{v:,.0f}" if hi is None else \
                    f"{v:,.0f}-{hi:,.0f}"

            qtxt = "  ".join(f"p{round(float(q) * 100)} {one(q, v)}" for q, v in d["percentiles"].items())
            lines.append(f"days of delay where A runs short ({d['runs']:,} runs): mean {ge}{_f(*d['mean'], 1)};"
                         f" {qtxt}")
            if d["runs_b_never_short"]:
                lines.append(f"  (B never runs short within the horizon in {d['runs_b_never_short']:,} of them: "
                             "their delay is only known to be ≥ horizon − A's day; a-b is a percentile's range, "
                             "≥ a lower bound)")
    lines.append(f"  ({f['censoring']})")
    lines.append("")
    head = f"{'per run':<20}{'A':>22}{'B':>22}{'B − A':>24}{'P(B better)':>14}"
    if c["paired"]:
        head += f"{'var. reduction':>16}"
    lines.append(head)
    for name, (label, _) in OUTCOMES.items():
        it = c[name]
        digits = 2 if name == "shortage_days" else 0
        row = (f"{label:<20}{_f(*it['a'], digits):>22}{_f(*it['b'], digits):>22}"
               f"{_f(*it['difference'], digits, sign=True):>24}{_f(it['p_b_better'][0], digits=3):>14}")
        if c["paired"]:
            row += f"{_f(100 * it['variance_reduction'], digits=1) + ' %':>16}"
        lines.append(row)
    if c["paired"]:
        lines.append("(variance reduction = 1 − var(B − A) / (var A + var B): what pairing saves against "
                     "independent runs)")
    e = c["effective_per_delivered_shell"]
    if e["sources"]:
        r, se = e["value"]
        lines += ["", f"effective rounds per delivered shell ({', '.join(e['sources'])}): {_f(r, se, 3)}"
                      f"   (extra effective {_f(e['extra_effective'][0])} / extra rounds supplied "
                      f"{_f(e['extra_supplied'][0])} per run)"]
    return "\n".join(lines)
