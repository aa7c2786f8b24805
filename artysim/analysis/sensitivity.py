"""Which input uncertainties drive an outcome: Spearman and partial rank correlation (PRCC) of every
sampled parameter against a per-run outcome, with Fisher-z confidence intervals; PRCC of "depleted by
day t" over the horizon; and Sobol first-order and total indices (SALib) for ``--design sobol`` files.

Rank-based measures are used because the model is monotone but far from linear in its inputs, and
because the default outcome (first shortage day) is censored: a run never short gets day
``horizon + 1``, i.e. a rank tied after every run that was short, which is exactly what is known of it.
Everything here reads the per-run variables of a results file; nothing is re-simulated.

A calibrated file (a per-run ``weight``) is analysed under its weights: each variable's ranks become
weighted mid-ranks (the weighted share of runs below a value plus half the share at it, the weighted
empirical CDF; for equal weights an affine map of the average ranks), Spearman is their weighted Pearson
correlation and PRCC the partial correlation from their weighted correlation matrix; Fisher-z intervals
use the effective sample size for n. For 0/1 weights this is exactly the unweighted analysis of the
accepted runs. Sobol indices need the design's runs unweighted, so a calibrated file has none.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from artysim.analysis.stats import effective_sample_size
from artysim.errors import ResultsError
from artysim.results import schema

if TYPE_CHECKING:
    import xarray as xr

DEFAULT_OUTCOME = "first_shortage_day"
#: per-run outcomes derived from two variables (ratios per run)
DERIVED = {
    "fill_rate": ("fired_total", "demand_total", "rounds fired / rounds wanted"),
    "effective_fill_rate": ("effective_total", "demand_total", "effective rounds / rounds wanted"),
}


# ----------------------------------------------------------------------------- outcome


def outcome_names(ds: xr.Dataset) -> list[str]:
    """Every outcome ``analyze`` accepts for this file (per-run variables, ``VAR:SOURCE``, ratios)."""
    names = [str(k) for k, v in ds.data_vars.items() if v.dims == ("run",)]
    names += list(DERIVED)
    for k, v in ds.data_vars.items():
        if v.dims == ("run", "source"):
            names += [f"{k}:{s}" for s in ds["source"].values.astype(str)]
    return names


def outcome_values(ds: xr.Dataset, outcome: str | None = None) -> tuple[np.ndarray, str, str]:
    """(values per run, name, one line saying what they are). Refuses unknown names with the choices."""
    name = outcome or DEFAULT_OUTCOME
    horizon = int(ds.attrs.get("horizon_days", ds.sizes.get("time", 0)))
    if name == "first_shortage_day" or name in DERIVED or name.partition(":")[0] in schema.PER_RUN_NAMES:
        needs = DERIVED[name][:2] if name in DERIVED else [name.partition(":")[0]]
        schema.require(ds, needs, f"--outcome {name}")
    if name == "first_shortage_day":
        x = np.asarray(ds["first_shortage_day"].values, dtype=np.float64)
        never = ~np.isfinite(x)
        x = np.where(never, horizon + 1, x)
        return x, name, (f"first shortage day; runs never short ({never.mean():.1%}) set to day {horizon + 1} "
                         "(horizon + 1: tied after every run that was short)")
    if name in DERIVED:
        num, den, what = DERIVED[name]
        a = np.asarray(ds[num].values, dtype=np.float64)
        b = np.asarray(ds[den].values, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(b > 0, a / np.where(b > 0, b, 1), 1.0)
        return r, name, f"{what} per run (1 where nothing was wanted)"
    var, _, src = name.partition(":")
    if var in ds.data_vars and ds[var].dims == ("run",) and not src:
        v = ds[var]
        desc = f"{v.attrs.get('long_name', var)} [{v.attrs.get('units', '')}]"
        return np.asarray(v.values, dtype=np.float64), name, desc
    if src and var in ds.data_vars and ds[var].dims == ("run", "source"):
        sources = list(ds["source"].values.astype(str))
        if src not in sources:
            raise ResultsError(f"--outcome {name}: no source {src!r} (sources: {', '.join(sources)})")
        v = ds[var].isel(source=sources.index(src))
        return (np.asarray(v.values, dtype=np.float64), name,
                f"{v.attrs.get('long_name', var)} [{v.attrs.get('units', '')}], source {src}")
    raise ResultsError(f"--outcome {name}: not a per-run outcome of this file; expected one of "
                       f"{', '.join(outcome_names(ds))}")


# ----------------------------------------------------------------------------- correlation


def fisher_ci(r: np.ndarray, n: int, k: int, conf: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CI and two-sided p-value of a (partial) correlation via Fisher's z with standard error
    1/sqrt(n - 3 - k), k the number of variables conditioned on (0 for a plain correlation)."""
    r = np.asarray(r, dtype=np.float64)
    dof = n - 3 - k
    if dof < 1:
        nan = np.full_like(r, np.nan)
        return nan, nan, nan
    se = 1.0 / math.sqrt(dof)
    zc = stats.norm.ppf(0.5 + conf / 2)
    with np.errstate(divide="ignore"):
        z = np.arctanh(np.clip(r, -1.0, 1.0))
    lo, hi = np.tanh(z - zc * se), np.tanh(z + zc * se)
    p = 2 * stats.norm.sf(np.abs(z) / se)
    return lo, hi, p


def _ranks(a: np.ndarray) -> np.ndarray:
    """Column-wise average ranks (ties share their mean rank, as scipy.stats.spearmanr does)."""
    return stats.rankdata(a, axis=0, method="average")


def _partial_from_corr(c: np.ndarray) -> np.ndarray:
    """Partial correlations of the last column with every other, given all the rest, from a correlation
    matrix: (c_jy - c_jO C_OO^-1 c_Oy) / sqrt((1 - c_jO C_OO^-1 c_Oj)(1 - c_yO C_OO^-1 c_Oy)), O the other
    inputs. Solved per input rather than from one inverse of the whole matrix, which is singular (and
    gives the wrong sign) when the outcome is an exact function of one input."""
    m = c.shape[0] - 1
    out = np.full(m, np.nan)
    for j in range(m):
        o = [i for i in range(m) if i != j]
        a = c[np.ix_([j, m], [j, m])]
        if o:
            b = c[np.ix_(o, [j, m])]
            a = a - b.T @ np.linalg.lstsq(c[np.ix_(o, o)], b, rcond=None)[0]
        den = a[0, 0] * a[1, 1]
        if den > 1e-300:
            out[j] = a[0, 1] / math.sqrt(den)
    return out


def _weighted_ranks(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted mid-ranks of a column: W(values below) + W(values equal) / 2 for each run (ties share
    theirs, as average ranks do)."""
    u, inv = np.unique(a, return_inverse=True)
    at = np.bincount(inv.ravel(), weights=w, minlength=len(u))
    below = np.cumsum(at) - at
    return (below + at / 2)[inv.ravel()]


class _WeightedRankedInputs:
    """Weighted mid-ranks of the sampled parameters of a calibrated file's runs of positive weight,
    standardised with weighted moments, computed once for every outcome asked of them."""

    def __init__(self, x: np.ndarray, w: np.ndarray):
        self.n, self.d = x.shape
        self.w = w / w.sum()
        self.z = np.zeros((self.n, self.d))
        self.varies = np.zeros(self.d, dtype=bool)
        for j in range(self.d):
            self.varies[j], self.z[:, j] = self._standard(x[:, j])
        self.z = self.z if self.varies.all() else self.z[:, self.varies]
        self.cxx = (self.z * self.w[:, None]).T @ self.z

    def _standard(self, a: np.ndarray) -> tuple[bool, np.ndarray]:
        r = _weighted_ranks(a, self.w)
        m = float(self.w @ r)
        sd = math.sqrt(max(float(self.w @ (r - m) ** 2), 0.0))
        if not sd > 1e-15:
            return False, np.zeros_like(r)
        return True, (r - m) / sd

    def correlate(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(weighted Spearman, weighted PRCC) of every parameter with outcome ``y``; NaN where undefined."""
        sp = np.full(self.d, np.nan)
        pr = np.full(self.d, np.nan)
        ok, zy = self._standard(y)
        if not ok or not self.varies.any():
            return sp, pr
        cxy = (self.z * self.w[:, None]).T @ zy
        sp[self.varies] = cxy
        m = int(self.varies.sum())
        c = np.empty((m + 1, m + 1))
        c[:m, :m] = self.cxx
        c[:m, m] = c[m, :m] = cxy
        c[m, m] = 1.0
        pr[self.varies] = np.clip(_partial_from_corr(c), -1.0, 1.0)
        return sp, pr


class _RankedInputs:
    """Ranks of the sampled parameters, computed once for every outcome asked of them."""

    def __init__(self, x: np.ndarray):
        self.n, self.d = x.shape
        # standardised ranks, column by column: one n x d array in memory besides x, not three
        self.z = np.zeros((self.n, self.d))
        self.varies = np.zeros(self.d, dtype=bool)  # a parameter with one value (degenerate law) gets NaN
        for j in range(self.d):
            r = _ranks(x[:, j])
            sd = r.std()
            if sd > 0:
                self.varies[j] = True
                self.z[:, j] = (r - r.mean()) / sd
        self.z = self.z if self.varies.all() else self.z[:, self.varies]  # only the inputs that vary
        zv = self.z
        self.cxx = zv.T @ zv / self.n

    def correlate(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Spearman, PRCC) of every parameter with outcome ``y``; NaN where undefined."""
        sp = np.full(self.d, np.nan)
        pr = np.full(self.d, np.nan)
        ry = _ranks(y)
        sd = ry.std()
        if sd == 0 or not self.varies.any():
            return sp, pr
        zy = (ry - ry.mean()) / sd
        cxy = self.z.T @ zy / self.n
        sp[self.varies] = cxy
        m = int(self.varies.sum())
        c = np.empty((m + 1, m + 1))
        c[:m, :m] = self.cxx
        c[:m, m] = c[m, :m] = cxy
        c[m, m] = 1.0
        pr[self.varies] = np.clip(_partial_from_corr(c), -1.0, 1.0)
        return sp, pr


# ----------------------------------------------------------------------------- Sobol


def _sobol(ds: xr.Dataset, y: np.ndarray, params: list[str], conf: float, num_resamples: int,
           seed: int) -> dict:
    """SALib Sobol indices when the file holds a complete ``--design sobol`` run, else a note why not."""
    if ds.attrs.get("design") != "sobol":
        return {"available": False, "note": "not a --design sobol file: no Sobol indices (PRCC only)"}
    n_base, d = int(ds.attrs["sobol_n"]), int(ds.attrs["sobol_d"])
    runs = np.asarray(ds["run"].values)
    if d != len(params) or str(ds.attrs.get("sobol_parameters", "")).split("\n") != params:
        return {"available": False, "note": "the file's parameter list does not match its Sobol design"}
    if len(runs) != n_base * (d + 2) or not np.array_equal(runs, np.arange(len(runs))):
        return {"available": False, "note": f"the file holds {len(runs)} of the design's {n_base * (d + 2)} runs "
                                            "(a shard or partial merge): Sobol indices need them all"}
    if np.std(y) == 0:
        return {"available": False, "note": "the outcome is the same in every run: no variance to apportion"}
    from SALib.analyze import sobol as sa

    problem = {"num_vars": d, "names": params, "bounds": [[0.0, 1.0]] * d}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sa.analyze(problem, np.asarray(y, dtype=np.float64), calc_second_order=False,
                         num_resamples=num_resamples, conf_level=conf, seed=seed)
    return {"available": True, "n_base": n_base, "conf_level": conf, "num_resamples": num_resamples,
            "note": f"Sobol indices (SALib.analyze.sobol, {num_resamples} bootstrap resamples for the "
                    f"{conf:.0%} intervals) from N = {n_base} base points. Each run also has its own randomness "
                    "(daily demand, shipments, duds), not shared by the runs of one design block: it adds a floor "
                    "to every ST (an input that changes nothing still shows it); S1 is not biased by it",
            "S1": np.asarray(res["S1"]), "S1_conf": np.asarray(res["S1_conf"]),
            "ST": np.asarray(res["ST"]), "ST_conf": np.asarray(res["ST_conf"])}


# ----------------------------------------------------------------------------- analysis


def _single(ds: xr.Dataset, variant: int | None) -> xr.Dataset:
    """A single-run dataset: a sweep file needs ``variant``."""
    if "variant" in ds.dims:
        nv = ds.sizes["variant"]
        if variant is None:
            raise ResultsError(f"this is a sweep file with {nv} variants; choose one with --variant 0..{nv - 1}")
        if not 0 <= variant < nv:
            raise ResultsError(f"--variant must be in 0..{nv - 1} (found {variant})")
        return ds.isel(variant=variant)
    if variant not in (None, 0):
        raise ResultsError(f"--variant {variant}: this file is not a sweep (it has no variant dimension)")
    return ds


def day_grid(horizon: int, points: int = 6) -> list[int]:
    """Days at which the time-resolved sensitivity is reported: ``points`` evenly spaced, ending on the
    last day of the horizon."""
    points = max(1, min(points, horizon))
    return sorted({int(round(horizon * (k + 1) / points)) - 1 for k in range(points)})


def analyze(ds: xr.Dataset, outcome: str | None = None, *, variant: int | None = None,
            days: list[int] | None = None, points: int = 6, conf: float = 0.95, num_resamples: int = 200,
            seed: int = 1) -> dict:
    """Spearman, PRCC (with CIs), Sobol indices where the design allows, and PRCC over time.

    ``rows`` are sorted by |PRCC|. ``over_time`` gives, for each day t of ``days`` (default: ``points``
    evenly spaced days), the PRCC of every parameter with the indicator "first shortage on or before
    day t" (NaN while no run, or every run, is depleted). ``seed`` seeds SALib's bootstrap (not 0: SALib
    treats 0 as "unseeded"), so the same file always gives the same intervals.
    """
    ds = _single(ds, variant)
    if ds.sizes.get("parameter", 0):
        schema.require(ds, ["parameters"], "sensitivity")
    if "parameters" not in ds.data_vars or ds.sizes.get("parameter", 0) == 0:
        raise ResultsError("this file has no sampled parameters: nothing to rank")
    params = [str(p) for p in ds["parameter"].values]
    units = ([str(u) for u in ds["parameter_units"].values] if "parameter_units" in ds.variables
             else [""] * len(params))
    x = np.asarray(ds["parameters"].values, dtype=np.float64)
    y, name, what = outcome_values(ds, outcome)
    fsd = np.asarray(ds["first_shortage_day"].values, dtype=np.float64)
    w = np.asarray(ds["weight"].values, dtype=np.float64) if "weight" in ds.variables else None
    if w is not None:  # calibrated: the runs of positive weight, under their weights
        keep = w > 0
        if name == "first_shortage_day":  # the share never short, under the weights
            prior = float(np.mean(np.isnan(fsd)))
            what = what.replace(f"({prior:.1%})", f"({float(np.dot(w, np.isnan(fsd)) / w.sum()):.1%}, weighted)")
        x, y, fsd, w = x[keep], y[keep], fsd[keep], w[keep]
    n_runs, d = x.shape
    n = n_runs if w is None else effective_sample_size(w)  # Fisher-z intervals use the ESS for n
    if n < d + 4:
        raise ResultsError(f"{n:,.0f} {'runs' if w is None else 'effective runs (calibration weights)'} are too "
                           f"few to rank {d} parameters (need at least {d + 4})")
    ranked = _RankedInputs(x) if w is None else _WeightedRankedInputs(x, w)
    sp, pr = ranked.correlate(y)
    if np.all(y == y[0]):
        what += f"; it is {y[0]:g} in every run, so no input can be ranked"
    k = int(ranked.varies.sum()) - 1
    sp_lo, sp_hi, sp_p = fisher_ci(sp, n, 0, conf)
    pr_lo, pr_hi, pr_p = fisher_ci(pr, n, k, conf)
    sob = (_sobol(ds, y, params, conf, num_resamples, seed) if w is None else
           {"available": False, "note": "calibrated file: no Sobol indices (they need the design's runs unweighted);"
                                        " weighted PRCC only"})
    rows = []
    for j in range(d):
        row = {"parameter": params[j], "units": units[j],
               "prcc": pr[j], "prcc_ci": [pr_lo[j], pr_hi[j]], "prcc_p": pr_p[j],
               "spearman": sp[j], "spearman_ci": [sp_lo[j], sp_hi[j]], "spearman_p": sp_p[j]}
        if sob["available"]:
            row |= {"S1": sob["S1"][j], "S1_conf": sob["S1_conf"][j], "ST": sob["ST"][j], "ST_conf": sob["ST_conf"][j]}
        rows.append(row)
    rows.sort(key=lambda r: -abs(r["prcc"]) if np.isfinite(r["prcc"]) else 1.0)
    for i, r in enumerate(rows):
        r["rank"] = i + 1

    horizon = int(ds.attrs.get("horizon_days", ds.sizes["time"]))
    grid = day_grid(horizon, points) if days is None else sorted({int(t) for t in days})
    if any(not 0 <= t < horizon for t in grid):
        raise ResultsError(f"days for the sensitivity over time must be in 0..{horizon - 1} (found {grid})")
    times = ds["time"].values if "time" in ds.variables else np.arange(horizon)
    over = {"days": grid, "dates": [str(np.datetime_as_string(times[t], unit="D")) if np.issubdtype(
                np.asarray(times).dtype, np.datetime64) else str(t) for t in grid],
            "p_depleted": [], "prcc": {p: [] for p in params}}
    for t in grid:
        ind = (np.nan_to_num(fsd, nan=np.inf) <= t).astype(np.float64)
        over["p_depleted"].append(float(ind.mean() if w is None else np.dot(w, ind) / w.sum()))
        _, prt = ranked.correlate(ind)
        for j, p in enumerate(params):
            over["prcc"][p].append(float(prt[j]))
    scen = str(ds.attrs.get("scenario_name", ""))
    if "variant_label" in ds.variables and ds["variant_label"].ndim == 0:
        scen += f" ({ds['variant_label'].item()})"
    method = (f"Spearman and partial rank correlation (PRCC: ranks of the outcome and of each parameter, "
              f"both with the ranks of the other {k} parameters regressed out); {conf:.0%} CIs by Fisher's z "
              f"with standard error 1/sqrt(n - 3) for Spearman and 1/sqrt(n - 3 - {k}) for PRCC")
    out = {
        "scenario": scen, "outcome": name, "outcome_description": what,
        "runs": int(n_runs) if w is None else int(ds.sizes["run"]), "parameters": d, "conf_level": conf,
        "method": method,
        "rows": rows, "sobol": {k2: v for k2, v in sob.items() if k2 not in ("S1", "S1_conf", "ST", "ST_conf")},
        "over_time": over,
    }
    if w is not None:
        out["calibration"] = {"calibrated_on": str(ds.attrs.get("calibrated_on", "")), "effective_sample_size": n,
                              "runs_with_weight": int(n_runs)}
        out["method"] = ("calibrated on " + out["calibration"]["calibrated_on"] + ": weighted by the runs' "
                         f"calibration weights (effective sample size {n:,.1f} of {int(ds.sizes['run']):,} runs): "
                         "ranks are weighted mid-ranks (the weighted empirical CDF), correlations weighted, n = the "
                         "effective sample size. " + method)
    return out


# ----------------------------------------------------------------------------- output


def _f(x: float, digits: int = 3) -> str:
    return "    n/a" if not np.isfinite(x) else f"{x:+.{digits}f}"


def format_table(res: dict) -> str:
    """A ranked table, then the ranking's evolution over the horizon."""
    lines = [f"Sensitivity of {res['outcome']} — {res['scenario']}, {res['runs']:,} runs"]
    lines += textwrap.wrap(f"outcome: {res['outcome_description']}", 110, initial_indent="  ",
                           subsequent_indent="    ")
    lines += textwrap.wrap(res["method"], 110, initial_indent="  ", subsequent_indent="    ") + [""]
    w = max(len(r["parameter"]) for r in res["rows"]) + 2
    sob = res["sobol"]["available"]
    head = f"{'rank':>4}  {'parameter':<{w}}{'PRCC [95% CI]':<27}{'Spearman [95% CI]':<27}"
    if sob:
        head += f"{'S1 ± CI':<17}{'ST ± CI':<17}"
    lines.append(head.rstrip())
    for r in res["rows"]:
        s = (f"{r['rank']:>4}  {r['parameter']:<{w}}"
             f"{_f(r['prcc'])} [{_f(r['prcc_ci'][0])}, {_f(r['prcc_ci'][1])}]  "
             f"{_f(r['spearman'])} [{_f(r['spearman_ci'][0])}, {_f(r['spearman_ci'][1])}]  ")
        if sob:
            s += f"{r['S1']:6.3f} ± {r['S1_conf']:.3f}   {r['ST']:6.3f} ± {r['ST_conf']:.3f}"
        lines.append(s.rstrip())
    lines += textwrap.wrap(res["sobol"]["note"], 110, initial_indent="  ", subsequent_indent="    ")
    ot = res["over_time"]
    lines += ["", "PRCC with 'first shortage on or before day t' (rank in parentheses):"]
    cw = max(11, max(len(d) for d in ot["dates"]) + 2)
    lines.append(f"{'':<{w + 6}}" + "".join(f"{d:>{cw}}" for d in ot["dates"]))
    lines.append(f"{'':<{w + 6}}" + "".join(f"{'day ' + str(t):>{cw}}" for t in ot["days"]))
    n_eff = res["calibration"]["effective_sample_size"] if res.get("calibration") else res["runs"]
    half = fisher_ci(np.array([0.0]), n_eff, res["parameters"] - 1, res["conf_level"])[1][0]
    lines[-3] += f" ({res['conf_level']:.0%} CI of a PRCC near 0: ±{half:.2f})"
    lines.append(f"{'  P(depleted by t)':<{w + 6}}" + "".join(f"{p:>{cw}.3f}" for p in ot["p_depleted"]))
    order = {}
    for i in range(len(ot["days"])):
        vals = sorted(((abs(v[i]), p) for p, v in ot["prcc"].items() if np.isfinite(v[i])), reverse=True)
        for rank, (_, p) in enumerate(vals):
            order[(p, i)] = rank + 1
    for r in res["rows"]:
        p = r["parameter"]
        cells = []
        for i, v in enumerate(ot["prcc"][p]):
            cells.append("n/a" if not np.isfinite(v) else f"{v:+.2f} ({order[(p, i)]})")
        lines.append(f"  {p:<{w + 4}}" + "".join(f"{c:>{cw}}" for c in cells))
    return "\n".join(lines)
