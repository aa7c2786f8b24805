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

from artysim.analysis.stats import censored_percentiles, delivered, mean_se, wilson
from artysim.analysis.stats import fmt_value as _f
from artysim.errors import ArtysimError
from artysim.results.schema import parse_stream_table

if TYPE_CHECKING:
    import xarray as xr

COMPARE_VERSION = 2  # 2: streams, common runs, common window, delivered = accepted + rejected


class CompareError(ArtysimError):
    """Files that cannot be compared as asked (one line, exit 2)."""

QS = (0.05, 0.25, 0.5, 0.75, 0.95)

#: per-run outcomes compared, and whether a larger value is better for the army
OUTCOMES = {
    "effective_total": ("effective rounds", True),
    "fired_total": ("rounds fired", True),
    "shortfall_total": ("shortfall, rounds", False),
    "shortage_days": ("shortage days", False),
}


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


def window(a: xr.Dataset, b: xr.Dataset, common_window: bool) -> int | None:
    """Refuse files of different start dates, and of different horizons unless ``common_window``; then
    the days both cover (first shortage days beyond it are censored at it). None: same horizon."""
    sa, sb = str(a.attrs.get("start_date")), str(b.attrs.get("start_date"))
    if sa != sb:
        raise CompareError(f"A starts on {sa} and B on {sb}: their days do not line up, so runs cannot be compared "
                           "(run both scenarios from the same start_date)")
    ta, tb = int(a.sizes["time"]), int(b.sizes["time"])
    if ta == tb:
        return None
    if not common_window:
        raise CompareError(f"A covers {ta} days and B {tb} days from {sa}: compare files of the same horizon, or "
                           f"add --common-window to compare their first {min(ta, tb)} days only")
    return min(ta, tb)


def common_runs(a: xr.Dataset, b: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset, dict | None]:
    """The runs whose index both files hold (in order), and what was dropped (None: the same runs)."""
    ra, rb = np.asarray(a["run"].values), np.asarray(b["run"].values)
    if len(ra) == len(rb) and np.array_equal(ra, rb):
        return a, b, None
    both, ia, ib = np.intersect1d(ra, rb, assume_unique=True, return_indices=True)
    info = {"runs_a": int(len(ra)), "runs_b": int(len(rb)), "common": int(len(both))}
    if len(both) < 2:
        return a, b, info
    return a.isel(run=ia), b.isel(run=ib), info


def _streams(ds: xr.Dataset):
    text = ds.attrs.get("stream_keys")
    return None if text is None else parse_stream_table(str(text))


def parameter_streams(a: xr.Dataset, b: xr.Dataset) -> dict | None:
    """Which parameters differ between the files and whether each pair draws from one stream (the files'
    ``stream_keys``); None when a file does not record its streams (written before schema 3)."""
    sa, sb = _streams(a), _streams(b)
    if sa is None or sb is None:
        return None
    (_, pa), (_, pb) = sa, sb
    by_key_b = {v[1]: k for k, v in pb.items()}
    differ, only_a, only_b, renamed = [], [], [], []
    for path, (stream, key, dist) in pa.items():
        if path in pb:
            if pb[path][2] != dist:
                differ.append({"parameter": path, "shared_stream": pb[path][1] == key, "stream_a": stream,
                               "stream_b": pb[path][0]})
        elif key in by_key_b:  # e.g. a value that became a schedule: its first piece keeps the stream
            other = by_key_b[key]
            renamed.append({"a": path, "b": other, "stream": stream, "same_distribution": pb[other][2] == dist})
        else:
            only_a.append(path)
    matched_b = {r["b"] for r in renamed}
    only_b = [p for p in pb if p not in pa and p not in matched_b]
    return {"differ": differ, "renamed": renamed, "only_a": only_a, "only_b": only_b,
            "unshared": [d["parameter"] for d in differ if not d["shared_stream"]]}


def pairing(a: xr.Dataset, b: xr.Dataset) -> tuple[bool, str]:
    """Whether run i of A and run i of B share their random numbers, and why (not). Call it on the
    common runs (``common_runs``) of files of one start date."""
    if str(a.attrs.get("seed")) != str(b.attrs.get("seed")):
        return False, f"different seeds ({a.attrs.get('seed')} vs {b.attrs.get('seed')})"
    if a.sizes["run"] != b.sizes["run"] or not np.array_equal(a["run"].values, b["run"].values):
        return False, "no common run indices"
    ps = parameter_streams(a, b)
    if ps is not None and ps["unshared"]:
        return False, f"the parameters {', '.join(ps['unshared'][:3])} differ and draw from different streams"
    r = a["run"].values
    rng = f"runs {int(r.min())}..{int(r.max())}" if len(r) else "no runs"
    how = "" if ps is not None else " (the files do not record their streams: judged from seed and runs only)"
    return True, f"same seed {a.attrs.get('seed')} and {rng}: common random numbers, differences taken run by run{how}"


def _p_se(k: int, n: int) -> list:
    p = k / n if n else math.nan
    return [p, math.sqrt(max(p * (1 - p), 0.0) / n) if n else math.nan]


def _per_run(ds: xr.Dataset, name: str) -> np.ndarray:
    return np.asarray(ds[name].values, dtype=np.float64)


def _supplied(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Rounds each source delivered in a run (``stats.delivered``: day-0 stock, plus rounds that reached
    the depots, accepted or rejected on receipt, each counted once)."""
    vals = delivered(ds)
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


def compare(a: xr.Dataset, b: xr.Dataset, common_window: bool = False) -> dict:
    """The comparison of B against A as a dict (keys documented in docs/summary-json.md). Files of
    different horizons are refused unless ``common_window`` (then only the days both cover are
    compared: first shortage days, and no totals over the horizon); different run counts are compared on
    their common runs."""
    for name, ds in (("A", a), ("B", b)):
        if "variant" in ds.dims:
            raise CompareError(f"{name} is a sweep file; pick a variant with --variant I[,J] (ds.isel(variant=i))")
    win = window(a, b, common_window)
    desc_a, desc_b = _describe(a), _describe(b)
    a, b, runs_info = common_runs(a, b)
    if runs_info is not None and runs_info["common"] < 2:
        raise CompareError(f"A and B hold {runs_info['common']} common run indices (A {runs_info['runs_a']:,} runs, "
                           f"B {runs_info['runs_b']:,}): nothing to pair; compare files of overlapping runs")
    paired, why = pairing(a, b)
    out: dict = {"compare_version": COMPARE_VERSION, "a": desc_a, "b": desc_b,
                 "paired": paired, "pairing": why, "common_runs": runs_info, "common_window_days": win,
                 "parameters": parameter_streams(a, b)}
    if win is not None:
        a, b = _censor(a, win), _censor(b, win)
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

    T = win if win is not None else int(a.sizes["time"])
    fsd: dict = {
        "censoring": f"runs never short are censored at the horizon ({T} days): their first shortage day is "
                     f"only known to be >= {T}",
        "percentiles_a": {str(q): v for q, v in censored_percentiles(fa, T, QS).items()},
        "percentiles_b": {str(q): v for q, v in censored_percentiles(fb, T, QS).items()},
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

    if win is not None:  # totals over different horizons measure different things
        return out
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
        "meaning": "extra effective rounds in B per extra round delivered (day-0 stock + rounds that reached "
                   "the depots, accepted or rejected on receipt, reworked ones counted once) by the sources that "
                   "deliver more in B",
    }
    return out


def _censor(ds: xr.Dataset, days: int) -> xr.Dataset:
    """First shortage days on or after ``days`` are beyond the common window (never short in it)."""
    f = ds["first_shortage_day"]
    return ds.assign(first_shortage_day=f.where(~(f >= days)))


def format_table(c: dict) -> str:
    """Readable text; ± is one Monte Carlo standard error of B − A (paired or Welch)."""
    A, B = c["a"], c["b"]
    lines = [
        f"A: {A['scenario']} ({A['runs']:,} runs, seed {A['seed']})   B: {B['scenario']} ({B['runs']:,} runs, "
        f"seed {B['seed']})",
        ("paired: " if c["paired"] else "NOT paired: ") + c["pairing"]
        + ("" if c["paired"] else "; compared as independent samples (Welch standard errors)"),
    ]
    cr = c.get("common_runs")
    if cr is not None:
        lines.append(f"common runs: A has {cr['runs_a']:,} runs and B {cr['runs_b']:,}; the {cr['common']:,} run "
                     "indices both hold are compared")
    if c.get("common_window_days") is not None:
        lines.append(f"common window: the first {c['common_window_days']} days only (the horizons differ); totals "
                     "over the horizon are not compared")
    ps = c.get("parameters")
    if ps is not None:
        for d in ps["differ"]:
            lines.append(f"parameter {d['parameter']} differs; " + ("same stream (its draws are paired)"
                         if d["shared_stream"] else "different streams (its draws are not paired)"))
        for r in ps["renamed"]:
            lines.append(f"parameter {r['a']} (A) is {r['b']} (B), drawn from the same stream"
                         + ("" if r["same_distribution"] else "; its distribution differs"))
        for side in ("a", "b"):
            if ps[f"only_{side}"]:
                lines.append(f"only in {side.upper()}: {', '.join(ps[f'only_{side}'][:6])}"
                             + (" ..." if len(ps[f"only_{side}"]) > 6 else ""))
    else:
        lines.append("(the files do not record their random streams: pairing judged from seed and runs only)")
    lines += ["(± is one Monte Carlo standard error)", ""]
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
    if c.get("common_window_days") is not None:
        return "\n".join(lines)
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
                      f"   (extra effective {_f(e['extra_effective'][0])} / extra rounds delivered "
                      f"{_f(e['extra_supplied'][0])} per run)"]
    return "\n".join(lines)
