"""Compare two results files, run by run when they share common random numbers.

Two files of the same seed and run indices faced the same random inputs in run *i* (every parameter
and component draws from its own stream keyed by name), so the per-run difference B - A isolates what
changed between the scenarios and its standard error is usually far smaller than the unpaired one.
Files that do not pair are compared as independent samples (Welch standard errors), and say so.

Never-short runs are censored at the horizon: their first shortage day is only known to be beyond
it, so delays involving them are lower bounds and are reported as such.

Calibrated files (``artysim calibrate``: a per-run ``weight``) are compared under their weights, every
estimate self-normalised and its SE from the effective sample size (``stats.weighted_mean_se``):
- paired: run i of A and of B share their random inputs, so the weight of run i (the likelihood of the
  evidence given those inputs) applies to both; one file's weights, or both when they are equal, weigh
  every paired statistic. Two different sets of weights are refused: their product would count evidence
  twice (or mix two posteriors), and a paired difference needs one posterior over the shared runs.
- unpaired: independent samples, each under its own weights (none for an uncalibrated file); Welch SEs
  with each file's effective sample size.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from artysim.analysis.stats import (
    censored_percentiles,
    delivered,
    effective_sample_size,
    mean_se,
    weighted_mean_se,
    weighted_quantile,
    wilson,
)
from artysim.analysis.stats import fmt_value as _f
from artysim.errors import ArtysimError, ResultsError
from artysim.results import schema
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
    """The runs whose index both files hold (in order), and what was dropped (None: the same runs, or
    files of different seeds, whose runs are independent samples and pair on no index)."""
    ra, rb = np.asarray(a["run"].values), np.asarray(b["run"].values)
    if (len(ra) == len(rb) and np.array_equal(ra, rb)) or str(a.attrs.get("seed")) != str(b.attrs.get("seed")):
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


def _weights(ds: xr.Dataset) -> np.ndarray | None:
    return np.asarray(ds["weight"].values, dtype=np.float64) if "weight" in ds.variables else None


def weights_for(a: xr.Dataset, b: xr.Dataset, paired: bool) -> tuple[np.ndarray | None, np.ndarray | None, dict | None]:
    """(weights of A's runs, of B's runs, what the comparison says of them); see the module docstring.
    Raises ResultsError for a paired comparison of two files with different weights."""
    wa, wb = _weights(a), _weights(b)
    if wa is None and wb is None:
        return None, None, None
    on = {k: str(ds.attrs.get("calibrated_on", "")) for k, ds in (("a", a), ("b", b)) if _weights(ds) is not None}
    if not paired:
        info = {"weights_from": "each file its own", "calibrated_on": on,
                "effective_sample_size": {k: effective_sample_size(w) for k, w in (("a", wa), ("b", wb))
                                          if w is not None},
                "note": "independent samples: each calibrated file weighted by its own runs' weights (an "
                        "uncalibrated one unweighted); SEs from each file's effective sample size"}
        return wa, wb, info
    if wa is not None and wb is not None:
        if not np.allclose(wa, wb, rtol=1e-12, atol=0.0):
            raise ResultsError(
                f"A (calibrated on {on['a']}) and B (calibrated on {on['b']}) carry different calibration weights: "
                "a paired comparison needs one posterior over the shared runs (the product would count evidence "
                "twice); compare B's uncalibrated file against A, or A's against B, and the weights of the "
                "calibrated one apply to both")
        src = "both (equal)"
    else:
        src = "a" if wa is not None else "b"
    w = wa if wa is not None else wb
    info = {"weights_from": src, "calibrated_on": on["a" if src != "b" else "b"],
            "effective_sample_size": effective_sample_size(w),
            "note": f"paired: runs weighted by {'A' if src == 'a' else 'B' if src == 'b' else 'A and B'}'s "
                    "calibration weights (run i of both files shares its inputs, so one weight applies to both); "
                    "estimates weighted, SEs from the effective sample size"}
    return w, w, info


def _ms(x: np.ndarray, w: np.ndarray | None) -> list:
    """Mean and SE: plain, or weighted with the SE from the effective sample size."""
    return list(mean_se(x)) if w is None else list(weighted_mean_se(x, w))


def _var(x: np.ndarray, w: np.ndarray | None) -> float:
    """Variance over runs (ddof 1), or the weighted variance times ESS / (ESS - 1) (ddof 1 for 0/1 weights)."""
    if w is None:
        return float(np.var(x, ddof=1))
    keep = w > 0
    x, w = np.asarray(x, np.float64)[keep], w[keep]
    n = effective_sample_size(w)
    if n <= 1:
        return math.nan
    m = float(np.dot(w, x) / w.sum())
    return float(np.dot(w, (x - m) ** 2) / w.sum()) * n / (n - 1)


def _n(x: np.ndarray, w: np.ndarray | None) -> float:
    return float(len(x)) if w is None else effective_sample_size(w)


def _share(ind: np.ndarray, w: np.ndarray | None) -> list:
    """A share of runs [p, se]; weighted: sum w ind / sum w, se sqrt(p (1 - p) / ESS)."""
    if w is None:
        return _p_se(int(np.sum(ind)), len(ind))
    n = effective_sample_size(w)
    p = weighted_mean_se(ind.astype(np.float64), w)[0] if n > 0 else math.nan
    return [p, math.sqrt(max(p * (1 - p), 0.0) / n) if n > 0 else math.nan]


def _quantile(x: np.ndarray, w: np.ndarray | None, q: float) -> float:
    return float(np.quantile(x, q, method="inverted_cdf")) if w is None else weighted_quantile(x, w, q)


def _pct(fsd: np.ndarray, horizon: int, w: np.ndarray | None) -> dict:
    """Censored first-shortage-day percentiles (None: beyond the horizon), weighted for a calibrated file."""
    if w is None:
        return {str(q): v for q, v in censored_percentiles(fsd, horizon, QS).items()}
    x = np.where(np.isnan(fsd), np.inf, fsd)
    return {str(q): (v if math.isfinite(v := weighted_quantile(x, w, q)) else None) for q in QS}


def _p_b_greater(xa: np.ndarray, wa: np.ndarray | None, xb: np.ndarray, wb: np.ndarray | None) -> float:
    """P(a random B run > a random A run) + P(tie) / 2 for independent samples, each under its weights
    (Mann-Whitney's U / (na nb) without weights)."""
    wa = np.ones(len(xa)) if wa is None else wa
    wb = np.ones(len(xb)) if wb is None else wb
    order = np.argsort(xa, kind="stable")
    sa, cw = xa[order], np.concatenate([[0.0], np.cumsum(wa[order])])
    below = cw[np.searchsorted(sa, xb, side="left")]
    tied = cw[np.searchsorted(sa, xb, side="right")] - below
    return float(np.dot(wb, below + tied / 2) / (wa.sum() * wb.sum()))


def _per_run(ds: xr.Dataset, name: str) -> np.ndarray:
    return np.asarray(ds[name].values, dtype=np.float64)


def _supplied(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Rounds each source delivered in a run (``stats.delivered``: day-0 stock, plus rounds that reached
    the depots, accepted or rejected on receipt, each counted once)."""
    vals = delivered(ds)
    return {str(s): vals[:, j] for j, s in enumerate(ds["source"].values)}


def _ratio_paired(num: np.ndarray, den: np.ndarray, w: np.ndarray | None = None) -> list:
    n = len(num)
    if w is not None:
        from artysim.analysis.stats import weighted_ratio

        return list(weighted_ratio(num, den, w))
    md = float(np.mean(den)) if n else math.nan
    if n < 2 or md == 0:
        return [math.nan, math.nan]
    r = float(np.mean(num)) / md
    return [r, float(np.std(num - r * den, ddof=1)) / (abs(md) * math.sqrt(n))]


def _ratio_unpaired(na: np.ndarray, da: np.ndarray, nb: np.ndarray, db: np.ndarray,
                    wa: np.ndarray | None = None, wb: np.ndarray | None = None) -> list:
    """(mean nb - mean na) / (mean db - mean da), delta-method SE for independent samples (each file's
    means under its own weights, SEs from its effective sample size)."""
    den = _ms(db, wb)[0] - _ms(da, wa)[0]
    if den == 0 or _n(na, wa) < 2 or _n(nb, wb) < 2:
        return [math.nan, math.nan]
    r = (_ms(nb, wb)[0] - _ms(na, wa)[0]) / den
    var = _var(nb - r * db, wb) / _n(nb, wb) + _var(na - r * da, wa) / _n(na, wa)
    return [r, float(math.sqrt(var)) / abs(den)]


def _delay(fa: np.ndarray, fb: np.ndarray, horizon: int, w: np.ndarray | None = None) -> dict:
    """Days by which B delays A's first shortage, among runs where A runs short. A run where B never
    runs short contributes horizon - A's day, a lower bound (B's day is only known to be >= horizon).
    With weights, the runs of weight 0 are left out and the mean and percentiles are weighted."""
    sel = ~np.isnan(fa) if w is None else ~np.isnan(fa) & (w > 0)
    a, b = fa[sel], fb[sel]
    ws = None if w is None else w[sel]
    cens = np.isnan(b)
    d = np.where(cens, horizon, b) - a
    n, c = len(d), int(cens.sum())
    out: dict = {"runs": n, "runs_b_never_short": c, "mean": _ms(d, ws) if n else [math.nan, math.nan],
                 "mean_is_lower_bound": c > 0, "percentiles": {}, "percentiles_upper": {},
                 "percentile_is_exact": {}}
    if n == 0:
        return out
    # the true percentile lies between that of the bounds (censored delays at their bound) and that with
    # censored delays unbounded; it is known exactly where the two agree
    if ws is not None:
        out["effective_runs"] = effective_sample_size(ws)
    low = np.sort(d)
    high = np.sort(np.where(cens, np.inf, d))
    for q in QS:
        if ws is None:
            k = max(1, math.ceil(q * n))
            lo, hi = float(low[k - 1]), float(high[k - 1])
        else:
            lo, hi = weighted_quantile(d, ws, q), weighted_quantile(np.where(cens, np.inf, d), ws, q)
        out["percentiles"][str(q)] = lo
        out["percentiles_upper"][str(q)] = hi if math.isfinite(hi) else None
        out["percentile_is_exact"][str(q)] = lo == hi
    return out


def compare(a: xr.Dataset, b: xr.Dataset, common_window: bool = False) -> dict:
    """The comparison of B against A as a dict (keys documented in docs/summary-json.md). Files of
    different horizons are refused unless ``common_window`` (then only the days both cover are
    compared: first shortage days, and no totals over the horizon); different run counts are compared on
    their common runs. Calibrated files are compared under their weights (module docstring) and the
    dict's ``calibration`` says how."""
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
    for name, ds in (("A", a), ("B", b)):
        schema.require(ds, COMPARE_NEEDS, f"compare (file {name})")
    wa, wb, cal = weights_for(a, b, paired)
    out: dict = {"compare_version": COMPARE_VERSION, "a": desc_a, "b": desc_b,
                 "paired": paired, "pairing": why, "common_runs": runs_info, "common_window_days": win,
                 "parameters": parameter_streams(a, b)}
    if cal is not None:
        out["calibration"] = cal
    if win is not None:
        a, b = _censor(a, win), _censor(b, win)
    na, nb = int(a.sizes["run"]), int(b.sizes["run"])
    fa, fb = _per_run(a, "first_shortage_day"), _per_run(b, "first_shortage_day")
    sa, sb = ~np.isnan(fa), ~np.isnan(fb)

    def with_wilson(ind: np.ndarray, w: np.ndarray | None) -> list:
        p, se = _share(ind, w)
        n = _n(ind, w)
        return [p, se, list(wilson(p * n, n) if w is not None else wilson(int(ind.sum()), len(ind)))]

    short = {"a": with_wilson(sa, wa), "b": with_wilson(sb, wb)}
    if paired:
        diff = sb.astype(np.float64) - sa.astype(np.float64)
        short["difference"] = _ms(diff, wa)
    else:
        (pa, _, _), (pb, _, _) = short["a"], short["b"]
        short["difference"] = [pb - pa, math.sqrt(pa * (1 - pa) / _n(sa, wa) + pb * (1 - pb) / _n(sb, wb))]
    out["p_any_shortage"] = short

    T = win if win is not None else int(a.sizes["time"])
    fsd: dict = {
        "censoring": f"runs never short are censored at the horizon ({T} days): their first shortage day is "
                     f"only known to be >= {T}",
        "percentiles_a": _pct(fa, T, wa),
        "percentiles_b": _pct(fb, T, wb),
    }
    if paired:
        ea, eb = np.where(sa, fa, np.inf), np.where(sb, fb, np.inf)  # never short = later than any day
        fsd["p_b_later"] = _share(eb > ea, wa)
        fsd["p_b_earlier"] = _share(eb < ea, wa)
        fsd["p_same"] = _share(eb == ea, wa)
        both = ~sa & ~sb if wa is None else ~sa & ~sb & (wa > 0)
        fsd["runs_both_never_short"] = int(np.sum(both))
        fsd["delay_where_a_short"] = _delay(fa, fb, T, wa)
    out["first_shortage_day"] = fsd

    if win is not None:  # totals over different horizons measure different things
        return out
    for name in OUTCOMES:
        xa, xb = _per_run(a, name), _per_run(b, name)
        larger_better = OUTCOMES[name][1]
        va, vb = _var(xa, wa), _var(xb, wb)
        item: dict = {"a": _ms(xa, wa), "b": _ms(xb, wb), "larger_is_better": larger_better}
        se_unpaired = math.sqrt(va / _n(xa, wa) + vb / _n(xb, wb))
        if paired:
            d = xb - xa
            m, se = _ms(d, wa)
            vd = _var(d, wa)
            better = d > 0 if larger_better else d < 0
            item.update({
                "difference": [m, se],
                "difference_percentiles": {str(q): _quantile(d, wa, q) for q in QS},
                "p_b_better": _share(better, wa),
                "p_b_worse": _share((d < 0) if larger_better else (d > 0), wa),
                "var_difference": vd, "var_a_plus_var_b": va + vb,
                "variance_reduction": 1 - vd / (va + vb) if va + vb > 0 else math.nan,
                "se_if_unpaired": se_unpaired,
            })
        else:
            if wa is None and wb is None:
                from scipy.stats import mannwhitneyu

                u = float(mannwhitneyu(xb, xa).statistic) / (na * nb)  # P(B > A) + P(tie)/2, independent runs
            else:
                u = _p_b_greater(xa, wa, xb, wb)
            item.update({"difference": [item["b"][0] - item["a"][0], se_unpaired],
                         "p_b_better": [u if larger_better else 1 - u, math.nan]})
        out[name] = item

    ra, rb = _supplied(a), _supplied(b)
    more = []  # sources that clearly (by more than 3 standard errors) supply more rounds in B
    for s in rb:
        xa = ra.get(s, np.zeros(na))
        if paired:
            m, se = _ms(rb[s] - xa, wa)
        else:
            m = _ms(rb[s], wb)[0] - _ms(xa, wa)[0]
            se = math.sqrt(_var(rb[s], wb) / _n(rb[s], wb) + _var(xa, wa) / _n(xa, wa))
        if m > 3 * (0.0 if math.isnan(se) else se):
            more.append(s)
    ea_, eb_ = _per_run(a, "effective_total"), _per_run(b, "effective_total")
    rec_a = sum((ra[s] for s in more if s in ra), np.zeros(na))
    rec_b = sum((rb[s] for s in more), np.zeros(nb))
    if paired:
        ratio = _ratio_paired(eb_ - ea_, rec_b - rec_a, wa)
        extra_rec, extra_eff = _ms(rec_b - rec_a, wa), _ms(eb_ - ea_, wa)
    else:
        ratio = _ratio_unpaired(ea_, rec_a, eb_, rec_b, wa, wb)
        extra_rec = [_ms(rec_b, wb)[0] - _ms(rec_a, wa)[0],
                     math.sqrt(_var(rec_b, wb) / _n(rec_b, wb) + _var(rec_a, wa) / _n(rec_a, wa))]
        extra_eff = out["effective_total"]["difference"]
    out["effective_per_delivered_shell"] = {
        "value": ratio, "sources": more, "extra_supplied": extra_rec, "extra_effective": extra_eff,
        "meaning": "extra effective rounds in B per extra round delivered (day-0 stock + rounds that reached "
                   "the depots, accepted or rejected on receipt, reworked ones counted once) by the sources that "
                   "deliver more in B",
    }
    return out


def calibration_text(c: dict) -> str | None:
    """The line a comparison of calibrated files prints: whose weights, on what, and the ESS."""
    cal = c.get("calibration")
    if not cal:
        return None
    if isinstance(cal["effective_sample_size"], dict):
        ess = ", ".join(f"{k.upper()} {v:,.1f}" for k, v in cal["effective_sample_size"].items())
        on = "; ".join(f"{k.upper()} on {v}" for k, v in cal["calibrated_on"].items())
        return f"calibrated ({on}): {cal['note']} (effective sample size {ess})"
    return (f"calibrated on {cal['calibrated_on']}: {cal['note']} (effective sample size "
            f"{cal['effective_sample_size']:,.1f})")


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
    cal_line = calibration_text(c)
    if cal_line is not None:
        lines.append(cal_line)
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
