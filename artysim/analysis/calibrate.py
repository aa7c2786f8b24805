"""``artysim calibrate``: weight each run by the likelihood of the evidence about its observations.

A run's weight is the product over the scenario's observations of the likelihood of what was published
given the run's observed value ``x`` (the ``observed`` variable): a uniform band is an accept/reject
indicator (1 when low <= x <= high); a normal error model ``{mean, sd}`` is the density of the published
``mean`` when the truth is x (published = x + sd Z); a lognormal one ``{median, sigma or p95}`` that of the
published ``median`` when published = x exp(sigma Z). Runs are draws from the prior, so the weighted runs
are draws from the posterior (importance sampling with the prior as proposal): every reading command
then uses self-normalised weighted estimators with standard errors from the effective sample size
(``stats.weighted_*``). The weights are written into a copy of the file; the input is never changed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np

from artysim.analysis.stats import (
    effective_sample_size,
    weighted_mean_se,
    weighted_quantile,
    weighted_ratio,
)
from artysim.errors import ResultsError
from artysim.model.distributions import Lognormal, Normal, Uniform
from artysim.results import schema
from artysim.results.atomic import AtomicFile, check_target
from artysim.results.reader import open_file, reading
from artysim.version import __version__

ESS_WARN = 200  # below this effective sample size calibrate warns
ESS_GOAL = 1000  # ... and says how many runs would give this one
LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)  # prior predictive quantiles printed


def evidence(value: dict):
    """The evidence of an observation's definition (``observed``'s ``definitions``) as a distribution."""
    from pydantic import TypeAdapter

    from artysim.model.scenario import Evidence

    return TypeAdapter(Evidence).validate_python(value)


def likelihood(ev, x: np.ndarray) -> np.ndarray:
    """Likelihood of the evidence ``ev`` given each run's observed value (0 where x is NaN)."""
    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    out = np.zeros(len(x))
    if isinstance(ev, Uniform):
        out[ok] = ((x[ok] >= ev.low) & (x[ok] <= ev.high)).astype(np.float64)
    elif isinstance(ev, Normal):
        out[ok] = stats.norm.pdf(ev.mean_, loc=x[ok], scale=ev.sd)
    elif isinstance(ev, Lognormal):
        pos = ok & (x > 0)
        out[pos] = stats.lognorm.pdf(ev.median, ev.s, scale=x[pos])
    else:  # pragma: no cover - the scenario admits only these
        raise TypeError(f"no likelihood for {type(ev).__name__}")
    return out


def weights(observed: np.ndarray, evidences: list) -> tuple[np.ndarray, list[np.ndarray]]:
    """(product of the likelihoods, each observation's likelihood) over runs (observed: runs x K)."""
    each = [likelihood(ev, observed[:, k]) for k, ev in enumerate(evidences)]
    w = np.ones(observed.shape[0])
    for lk in each:
        w = w * lk
    return w, each


def _centre_and_band(ev) -> tuple[float, float, float]:
    """Centre of the evidence and its band: the uniform's, or the error model's 95 % range."""
    if isinstance(ev, Uniform):
        return 0.5 * (ev.low + ev.high), ev.low, ev.high
    if isinstance(ev, Normal):
        return ev.mean_, ev.mean_ - 1.96 * ev.sd, ev.mean_ + 1.96 * ev.sd
    return ev.median, ev.median * math.exp(-1.96 * ev.s), ev.median * math.exp(1.96 * ev.s)


def num(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a" if x is None or math.isnan(x) else "beyond horizon"
    ax = abs(x)
    if ax >= 1e5:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:,.1f}"
    return f"{x:.4g}"


def describe(d: dict, start: str) -> str:
    """An observation's definition in words: ``received of north_korea, sum, 2023-09-01..2024-02-23``."""
    src = f" of {d['source']}" if d.get("source") else ""
    return f"{d['quantity']}{src}, {d['statistic']}, {d.get('from') or start}..{d['to']}"


def evidence_text(ev) -> str:
    if isinstance(ev, Uniform):
        return f"band {num(ev.low)}..{num(ev.high)}"
    if isinstance(ev, Normal):
        return f"normal error model, mean {num(ev.mean_)}, sd {num(ev.sd)}"
    return f"lognormal error model, median {num(ev.median)}, sigma {ev.s:.3g}"


def _first_day(fsd: np.ndarray, w: np.ndarray, horizon: int) -> float | None:
    v = weighted_quantile(np.where(np.isnan(fsd), np.inf, fsd), w, 0.5)
    return None if not math.isfinite(v) else v


def _outcomes(ds, w: np.ndarray) -> dict:
    """Headline outcomes under weights w: P(any shortage), median first shortage day, fill rates and
    each source's effective rounds and share of them (value, SE)."""
    fsd = np.asarray(ds["first_shortage_day"].values, dtype=np.float64)
    dem = np.asarray(ds["demand_total"].values, dtype=np.float64)
    fired = np.asarray(ds["fired_total"].values, dtype=np.float64)
    eff = np.asarray(ds["effective_total"].values, dtype=np.float64)
    n = effective_sample_size(w)
    p = weighted_mean_se((~np.isnan(fsd)).astype(np.float64), w)[0]
    out = {
        "p_any_shortage": (p, math.sqrt(max(p * (1 - p), 0.0) / n) if n > 0 else math.nan),
        "first_shortage_day_median": _first_day(fsd, w, int(ds.sizes["time"])),
        "fill_rate": weighted_ratio(fired, dem, w),
        "effective_fill_rate": weighted_ratio(eff, dem, w),
        "sources": [],
    }
    by = np.asarray(ds["effective_by_source"].values, dtype=np.float64)
    rec = np.asarray(ds["received"].values, dtype=np.float64)
    for j, name in enumerate(str(s) for s in ds["source"].values):
        out["sources"].append({"name": name, "received": weighted_mean_se(rec[:, j], w),
                               "effective": weighted_mean_se(by[:, j], w),
                               "share_of_effective": weighted_ratio(by[:, j], eff, w)})
    return out


def _interval(x: np.ndarray, w: np.ndarray) -> dict:
    return {"mean": weighted_mean_se(x, w)[0], "p5": weighted_quantile(x, w, 0.05),
            "p95": weighted_quantile(x, w, 0.95)}


def _same_file(a: Path, b: Path) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def calibrate(path: str | Path, output: str | Path, *, force: bool = False) -> dict:
    """Weight the runs of results file ``path`` by the evidence of its observations, write a copy with
    ``weight(run)`` to ``output`` and return the report (``format_report``). Refuses (ResultsError, one
    line, nothing written) a file without observations, one already calibrated, a sweep file, and
    evidence no run is compatible with."""
    src, out = Path(path), Path(output)
    if _same_file(src, out):
        raise ResultsError(f"-o {out} is the input file; write the calibrated copy elsewhere")
    check_target(out, force)
    with open_file(src) as ds, reading(src):
        if "variant" in ds.dims:
            raise ResultsError(f"{src}: is a sweep file; calibrate the results of one scenario")
        if "observation" not in ds.dims or "observed" not in ds:
            raise ResultsError(f"{src}: written without observations (the scenario has no [[observation]] "
                               "tables); nothing to calibrate on")
        if "calibrated_on" in ds.attrs or "weight" in ds:
            raise ResultsError(f"{src}: already calibrated (on {ds.attrs.get('calibrated_on', '?')}); calibrate "
                               "the file as run")
        try:
            defs = json.loads(str(ds["observed"].attrs["definitions"]))
            evs = [evidence(d["value"]) for d in defs]
        except Exception as e:  # a crafted or damaged attribute
            raise ResultsError(f"{src}: inconsistent artysim results file: the observed variable's definitions "
                               f"cannot be read ({type(e).__name__})") from None
        names = [str(x) for x in ds["observation"].values]
        if len(defs) != len(names) or [d.get("name") for d in defs] != names:
            raise ResultsError(f"{src}: inconsistent artysim results file: the observed variable's definitions "
                               "do not match the observation coordinate")
        start = str(ds.attrs["start_date"])
        observed = np.asarray(ds["observed"].values, dtype=np.float64)
        w, each = weights(observed, evs)
        runs = len(w)
        if not w.sum() > 0:
            raise ResultsError(f"{src}: {_incompatible(observed, evs, each, defs, start)}")
        ess = effective_sample_size(w)
        prior = np.ones(runs)
        report = {"input": str(src), "output": str(out), "runs": runs, "scenario": str(ds.attrs["scenario_name"]),
                  "acceptance": float(np.count_nonzero(w > 0)) / runs, "effective_sample_size": ess,
                  "observations": [], "parameters": [], "prior": _outcomes(ds, prior),
                  "posterior": _outcomes(ds, w)}
        for k, (d, ev) in enumerate(zip(defs, evs)):
            x = observed[:, k]
            _, lo, hi = _centre_and_band(ev)
            fin = np.isfinite(x)
            report["observations"].append({
                "name": d["name"], "definition": describe(d, start), "evidence": evidence_text(ev),
                "cite": d.get("cite", []),
                "inside": float(np.count_nonzero(fin & (x >= lo) & (x <= hi))) / runs,
                "band": [lo, hi], "band_is_uniform": isinstance(ev, Uniform),
                "prior_predictive": {str(q): weighted_quantile(x[fin], prior[fin], q) for q in LEVELS},
                "posterior_predictive": {str(q): weighted_quantile(x, w, q) for q in LEVELS},
                "acceptance": float(np.count_nonzero(each[k] > 0)) / runs,
            })
        params = [str(p) for p in ds["parameter"].values]
        if params:
            P = np.asarray(ds["parameters"].values, dtype=np.float64)
            for j, name in enumerate(params):
                report["parameters"].append({"path": name, "prior": _interval(P[:, j], prior),
                                             "posterior": _interval(P[:, j], w)})
        if ess < ESS_WARN:
            report["warning"] = (f"effective sample size {ess:,.0f} is below {ESS_WARN}: the calibrated estimates rest "
                                 f"on few runs; about {math.ceil(runs * ESS_GOAL / ess):,} runs would give "
                                 f"{ESS_GOAL:,} (it grows in proportion to the runs)")
    _write_copy(src, out, w, names, ess, force)
    return report


def _incompatible(observed, evs, each, defs, start) -> str:
    """The all-weights-0 message: the observation furthest from where the prior runs put it."""
    best = None
    for k, (ev, d) in enumerate(zip(evs, defs)):
        x = observed[:, k]
        x = x[np.isfinite(x)]
        c, lo, hi = _centre_and_band(ev)
        if len(x) == 0:
            score, where = (1.0, math.inf), "nowhere (no run has a value: a share of no fire)"
        else:
            q5, q50, q95 = (float(np.quantile(x, q, method="inverted_cdf")) for q in (0.05, 0.5, 0.95))
            spread = (q95 - q5) / 3.29 or abs(q50) or 1.0
            share = float(np.count_nonzero(each[k] > 0)) / len(each[k])
            score = (1.0 - share, abs(c - q50) / spread)
            where = f"median {num(q50)}, 5%..95% {num(q5)}..{num(q95)}, {share:.1%} of runs compatible"
        if best is None or score > best[0]:
            best = (score, d, ev, where)
    _, d, ev, where = best
    return (f"no run is compatible with the evidence (every weight is 0); furthest from the prior predictive: "
            f"observation '{d['name']}' ({describe(d, start)}), {evidence_text(ev)}, where the runs put it at "
            f"{where}; widen the priors that drive it, run more runs, or check the evidence")


def _write_copy(src: Path, out: Path, w: np.ndarray, names: list[str], ess: float, force: bool) -> None:
    """A copy of the file with ``weight(run)`` and the calibration attributes, all or nothing."""
    import netCDF4

    tmp = AtomicFile(out, force=force, doing="calibrating")
    try:
        shutil.copyfile(src, tmp.path)
        with netCDF4.Dataset(tmp.path, "a") as nc:
            v = schema.WEIGHT
            x = nc.createVariable(v.name, v.dtype, v.dims, zlib=True, complevel=1, shuffle=True)
            x.units = v.units
            x.long_name = v.long_name
            x[:] = w
            nc.setncattr("calibrated_on", ", ".join(names))
            nc.setncattr("effective_sample_size", float(ess))
            now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
            nc.setncattr("history", f"{nc.getncattr('history')}\n{now} artysim {__version__} calibrate {src.name}")
        tmp.commit()
    except BaseException:
        tmp.discard()
        raise


def _pair(v, digits: int = 4) -> str:
    value, se = v
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f} ± {se:.{digits}f}" if se is not None and math.isfinite(se) else f"{value:.{digits}f}"


def _day(v) -> str:
    return "beyond horizon" if v is None else f"day {int(v)}"


def format_report(r: dict) -> str:
    """The printed report: where the prior runs put each observation, joint acceptance and ESS, every
    sampled parameter prior -> posterior, and the headline outcomes prior -> posterior."""
    lines = [f"calibrated {r['input']} -> {r['output']}: scenario {r['scenario']}, {r['runs']:,} runs", ""]
    for o in r["observations"]:
        pp = o["prior_predictive"]
        inside = "inside the band" if o["band_is_uniform"] else "within the error model's 95% range"
        lines += [f"observation {o['name']}: {o['definition']} [{', '.join(o['cite'])}]",
                  f"  evidence {o['evidence']}; {o['inside']:.1%} of prior runs {inside}",
                  "  prior predictive   " + "  ".join(f"p{round(float(q) * 100)} {num(v)}" for q, v in pp.items()),
                  "  posterior predictive " + "  ".join(
                      f"p{round(float(q) * 100)} {num(v)}" for q, v in o["posterior_predictive"].items())]
    lines += ["", f"joint acceptance {r['acceptance']:.2%} of runs (weight > 0); effective sample size "
                  f"{r['effective_sample_size']:,.1f}"]
    if r["parameters"]:
        lines += ["", f"{'parameter':<44}{'prior mean [90%]':>34}    {'posterior mean [90%]':>34}"]
        for p in r["parameters"]:
            a, b = p["prior"], p["posterior"]
            lines.append(f"{p['path']:<44}{num(a['mean']) + ' [' + num(a['p5']) + ', ' + num(a['p95']) + ']':>34}"
                         f" -> {num(b['mean']) + ' [' + num(b['p5']) + ', ' + num(b['p95']) + ']':>34}")
    a, b = r["prior"], r["posterior"]
    lines += ["", f"{'outcome (± one Monte Carlo SE)':<34}{'prior':>22}    {'posterior':>22}",
              f"{'P(any shortage day)':<34}{_pair(a['p_any_shortage']):>22} -> {_pair(b['p_any_shortage']):>22}",
              f"{'median first shortage day':<34}{_day(a['first_shortage_day_median']):>22} -> "
              f"{_day(b['first_shortage_day_median']):>22}",
              f"{'fill rate':<34}{_pair(a['fill_rate']):>22} -> {_pair(b['fill_rate']):>22}",
              f"{'effective fill rate':<34}{_pair(a['effective_fill_rate']):>22} -> "
              f"{_pair(b['effective_fill_rate']):>22}"]
    for sa, sb in zip(a["sources"], b["sources"]):
        lines.append(f"{'share of effective: ' + sa['name']:<34}{_pair(sa['share_of_effective'], 3):>22} -> "
                     f"{_pair(sb['share_of_effective'], 3):>22}")
    return "\n".join(lines)
