"""Figures from a results file (matplotlib, no pyplot): every function takes a Dataset and an
optional Axes and returns the Figure, so notebooks can compose them and the CLI can save them.

pyplot is never imported: figures are plain ``matplotlib.figure.Figure`` objects rendered by Agg (PNG)
or the SVG backend, so nothing leaks into a user's global pyplot state and no display is needed.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import dates as mdates
from matplotlib import ticker
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from artysim.analysis import palette as pal
from artysim.analysis.stats import Z95, censored_percentile_ci, censored_percentiles, ratio_of_means, wilson
from artysim.errors import ArtysimError, OutputExistsError, ResultsError
from artysim.results.atomic import AtomicFile

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.axes import Axes

KINDS = ("fan", "depletion", "sources", "histogram", "tornado", "sweep", "solve", "compare", "heatmap", "swing",
         "stock", "calibration")
#: kinds that use a calibrated file's run weights (the others draw the prior runs and say so)
WEIGHTED_KINDS = ("depletion", "histogram", "calibration", "tornado", "swing", "compare", "sources")
#: kinds drawn from per-day statistics stored over all runs: a calibrated file's weights cannot reach them
#: (reweighting a per-day quantile needs each run's trajectory, which the file does not keep)
PRIOR_ONLY_KINDS = ("fan", "stock")
#: kinds drawn from two files (``against=`` the second)
TWO_FILE_KINDS = ("compare",)
FORMATS = ("png", "svg")
#: kinds drawn from per-run values only, so ``--where`` can draw them for a subset of runs
WHERE_KINDS = ("depletion", "histogram", "tornado")
_SIZE = (8.0, 4.6)


# ----------------------------------------------------------------------------- helpers


def _figure(ax: Axes | None, size=_SIZE) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, layout="constrained", dpi=100)
    return fig, fig.add_subplot()


def _single(ds: xr.Dataset, variant: int | None) -> xr.Dataset:
    from artysim.analysis.sensitivity import _single as single

    return single(ds, variant)


def _name(ds: xr.Dataset) -> str:
    """The scenario's name, and the variant's label when drawing one variant of a sweep file."""
    name = str(ds.attrs.get("scenario_name", "artysim results"))
    if "variant_label" in ds.variables and ds["variant_label"].ndim == 0:
        name += f" ({ds['variant_label'].item()})"
    return name


def _runs(ds: xr.Dataset) -> int:
    return int(ds.sizes.get("run", 0))


def _weights(ds: xr.Dataset) -> np.ndarray | None:
    return np.asarray(ds["weight"].values, dtype=np.float64) if "weight" in ds.variables else None


def _calibrated_note(ds: xr.Dataset, kind: str) -> str:
    if "weight" not in ds.variables:
        return ""
    from artysim.analysis.stats import effective_sample_size

    ess = effective_sample_size(_weights(ds))
    on = f"calibrated on {ds.attrs.get('calibrated_on', '')}"
    if kind == "sources":
        return (f"{on}: totals weighted (effective sample size {ess:,.0f}); per-day panel: PRIOR runs (per-day "
                "means are stored over all runs)")
    if kind in WEIGHTED_KINDS:
        return f"{on}: runs weighted, effective sample size {ess:,.0f}"
    if kind in PRIOR_ONLY_KINDS:
        return (f"PRIOR runs, not weighted ({on}): per-day quantiles are stored over all runs and cannot be "
                "reweighted without per-run trajectories")
    return "prior runs (this kind does not use the calibration weights)"


def _suptitle(fig: Figure, ds: xr.Dataset, text: str, **kw) -> None:
    """A figure title, with a calibrated file's note (weighted or prior runs) on a second line."""
    cal = ds.attrs.get("_artysim_plot_note", "")
    fig.suptitle(text + (f"\n{cal}" if cal else ""), **kw)


def _wmean(ds: xr.Dataset, var: str) -> np.ndarray:
    """Mean over runs of a per-run (or per-run, per-source) variable, weighted for a calibrated file."""
    w = _weights(ds)
    if w is None:
        return np.asarray(ds[var].mean("run").values, dtype=np.float64)
    v = np.asarray(ds[var].values, dtype=np.float64)
    keep = w > 0
    return np.tensordot(w[keep], v[keep], axes=(0, 0)) / w.sum()


def _depleted_by_day(ds: xr.Dataset, w: np.ndarray | None) -> tuple[np.ndarray, float]:
    """(share of runs depleted by each day, the run count behind it): the file's own curve, or with
    weights the weighted share from the per-run first shortage days and the effective sample size."""
    if w is None:
        return np.asarray(ds["p_depleted"].values, dtype=np.float64), float(_runs(ds))
    from artysim.analysis.stats import effective_sample_size

    T = int(ds.sizes["time"])
    fsd = np.asarray(ds["first_shortage_day"].values, dtype=np.float64)
    fin = np.isfinite(fsd)
    by_day = np.bincount(fsd[fin].astype(np.int64), weights=w[fin], minlength=T)[:T]
    return np.cumsum(by_day) / w.sum(), max(effective_sample_size(w), 1.0)


def _title(ax: Axes, ds: xr.Dataset, what: str, note: str = "") -> None:
    cal = ds.attrs.get("_artysim_plot_note", "")
    note = "; ".join(x for x in (note, cal) if x)
    sub = f"{_runs(ds):,} runs" + (f"; {note}" if note else "")
    ax.set_title(f"{_name(ds)}: {what}\n{sub}", fontsize=11, loc="left")


def _dates(ds: xr.Dataset) -> np.ndarray:
    t = ds["time"].values
    if not np.issubdtype(np.asarray(t).dtype, np.datetime64):  # undecoded time: build dates from start
        start = np.datetime64(str(ds.attrs["start_date"]), "D")
        t = start + np.asarray(t, dtype="timedelta64[D]")
    return np.asarray(t, dtype="datetime64[D]")


def _date_axis(ax: Axes, first=None, last=None) -> None:
    """Concise date labels; with ``first``/``last``, ticks only within the horizon (room beside it is
    used for other marks)."""
    loc = mdates.AutoDateLocator(minticks=4, maxticks=10)
    if first is not None:
        vals = loc.tick_values(mdates.num2date(mdates.date2num(first)), mdates.num2date(mdates.date2num(last)))
        loc = ticker.FixedLocator([v for v in vals if mdates.date2num(first) <= v <= mdates.date2num(last)])
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))


def _rounds_axis(ax: Axes, axis: str = "y") -> None:
    """Rounds as 1.5 M / 250 k: full numbers with six zeros are hard to read."""

    def fmt(v, _pos):
        a = abs(v)
        if a >= 1e6:
            return f"{v / 1e6:g} M"
        if a >= 1e3:
            return f"{v / 1e3:g} k"
        return f"{v:g}"

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(ticker.FuncFormatter(fmt))


# ----------------------------------------------------------------------------- kinds


def fan(ds: xr.Dataset, ax: Axes | None = None, *, samples: int = 5, variant: int | None = None,
        **_kw) -> Figure:
    """Stock on hand over time: quantile bands over runs, the median and a few whole runs."""
    ds = _single(ds, variant)
    fig, ax = _figure(ax)
    t = _dates(ds)
    qs = np.asarray(ds["quantile"].values, dtype=np.float64)
    sq = np.asarray(ds["stock_quantile"].values, dtype=np.float64)  # time x quantile
    order = np.argsort(qs)
    qs, sq = qs[order], sq[:, order]
    ns = min(samples, ds.sizes.get("sample", 0))
    for i in range(ns):
        ax.plot(t, np.asarray(ds["stock_sample"].values[i], dtype=np.float64), color="0.35", lw=0.7, alpha=0.7,
                label=f"{ns} single runs" if i == 0 else None, zorder=3)
    blues = list(pal.BANDS)
    for i in range(len(qs) // 2):
        lo, hi = qs[i], qs[len(qs) - 1 - i]
        ax.fill_between(t, sq[:, i], sq[:, len(qs) - 1 - i], color=blues[min(i, len(blues) - 1)], lw=0,
                        label=f"{lo:.0%}–{hi:.0%} of runs", zorder=1 + i * 0.1)
    if np.any(np.isclose(qs, 0.5)):
        ax.plot(t, sq[:, int(np.argmin(np.abs(qs - 0.5)))], color=pal.DARK_BLUE, lw=2, label="median", zorder=4)
    ax.set_ylim(bottom=0)
    ax.set_xlim(t[0], t[-1])
    ax.set_ylabel("rounds on hand, all sources (end of day)")
    _rounds_axis(ax)
    _date_axis(ax)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    _title(ax, ds, "stock on hand", "bands: share of runs between the quantiles on each day")
    return fig


def depletion(ds: xr.Dataset, ax: Axes | None = None, *, variant: int | None = None, **_kw) -> Figure:
    """P(first shortage on or before the date) and P(short on that day), with 95 % Wilson bands."""
    ds = _single(ds, variant)
    fig, ax = _figure(ax)
    t = _dates(ds)
    n = _runs(ds)
    pd_ = np.asarray(ds["p_depleted"].values, dtype=np.float64)
    w = _weights(ds)
    if w is not None:  # calibrated: the weighted share depleted by each day; Wilson bands with the ESS
        pd_, n = _depleted_by_day(ds, w)
        ds = ds.drop_vars("p_short", errors="ignore")  # per-day counts are kept over all runs, unweighted
    # a subset of runs (--where) has no per-day share short: those counts are kept over all runs only
    ps = np.asarray(ds["p_short"].values, dtype=np.float64) if "p_short" in ds.variables else np.zeros(0)
    curves = ((pd_, pal.VERMILLION, "depleted: first shortage day on or before the date", "-"),
              (ps, pal.BLUE, "short on that day", "--"))  # dashed: visible where they coincide
    for p, color, label, ls in curves[:1 if not len(ps) else 2]:
        lo, hi = wilson(np.round(p * n), n)
        ax.fill_between(t, 100 * lo, 100 * hi, color=color, alpha=0.2, lw=0)
        ax.plot(t, 100 * p, color=color, lw=2, label=label, ls=ls)
    ax.annotate(f"{100 * pd_[-1]:.1f} % by {np.datetime_as_string(t[-1])}", (t[-1], 100 * pd_[-1]),
                xytext=(-8, 8), textcoords="offset points", ha="right", color=pal.VERMILLION, fontsize=9)
    ax.set_ylim(0, max(5.0, min(100.0, 100 * float(max(pd_.max(), ps.max(initial=0.0))) * 1.15)))
    ax.set_xlim(t[0], t[-1])
    ax.set_ylabel("share of runs (%)")
    _date_axis(ax)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    thr = ds.attrs.get("shortage_threshold")
    note = "shaded: 95 % Wilson interval"
    if thr is not None:
        note = f"short = less than {100 * (1 - float(thr)):g} % of the wanted fire fired; " + note
    _title(ax, ds, "probability of running short", note)
    return fig


def sources(ds: xr.Dataset, ax: Axes | None = None, *, variant: int | None = None, **_kw) -> Figure:
    """What each source delivered: without ``ax``, a first panel shows fired (solid) and effective
    (dashed) rounds per day by source over time (mean over runs); the bars show the totals over the
    horizon (mean per run): fired rounds split into effective, duds and misses, plus rounds left
    unfired. Files without per-day data by source show the all-source total over time instead."""
    ds = _single(ds, variant)
    by_day = "fired_by_source_mean" in ds.variables
    if ax is None:
        fig = Figure(figsize=(11.5, 4.8), layout="constrained", dpi=100)
        ax_t, ax = fig.subplots(1, 2, width_ratios=[1, 1.15])
        t = _dates(ds)
        if by_day:
            for j, name in enumerate(str(x) for x in ds["source"].values):
                c = pal.category(j)
                ax_t.plot(t, ds["fired_by_source_mean"].values[:, j], color=c, lw=1.4, label=f"{name}: fired")
                ax_t.plot(t, ds["effective_by_source_mean"].values[:, j], color=c, lw=1.2, ls="--",
                          label=f"{name}: effective")
            ax_t.set_title("per day by source: fired (solid), effective (dashed)", fontsize=10, loc="left")
            ax_t.legend(fontsize=7, loc="upper right", ncol=2)
        else:
            ax_t.plot(t, ds["fired_mean"].values, color=pal.BLACK, lw=1.5, label="fired")
            ax_t.plot(t, ds["effective_mean"].values, color=pal.BLACK, lw=1.5, ls="--",
                      label="effective (not dud, on target)")
            ax_t.set_title("all sources, per day (this file has no per-day data by source)", fontsize=10, loc="left")
            ax_t.legend(fontsize=8, loc="lower left")
        ax_t.set_ylim(bottom=0)
        ax_t.set_xlim(t[0], t[-1])
        ax_t.set_ylabel("rounds per day (mean over runs)")
        _rounds_axis(ax_t)
        _date_axis(ax_t)
        ax_t.grid(alpha=0.3)
    else:
        fig = ax.figure
    names = [str(s) for s in ds["source"].values]
    mean = {v: _wmean(ds, v) for v in ("fired_by_source", "duds", "effective_by_source", "stock_final_by_source")}
    eff, duds = mean["effective_by_source"], mean["duds"]
    miss = np.maximum(mean["fired_by_source"] - duds - eff, 0)
    left = mean["stock_final_by_source"]
    y = np.arange(len(names))[::-1]
    # colour = source (as on the left); the parts of a bar differ by shade and hatching, never by colour
    parts = [(eff, 1.0, "", "fired: effective"), (duds, 0.55, "xx", "fired: duds"),
             (miss, 0.3, "///", "fired: missed target"), (left, 0.0, "", "not fired (on hand at the end)")]
    colors = [pal.category(j) for j in range(len(names))]
    acc = np.zeros(len(names))
    handles = []
    for vals, alpha, hatch, label in parts:
        # lightened by mixing with white, not by transparency: SVG draws a hatch in a transparent face's
        # colour, which hides it
        face = [tuple(alpha * np.array(to_rgba(c)[:3]) + (1 - alpha)) for c in colors]
        ax.barh(y, vals, left=acc, color=face, edgecolor=colors, hatch=hatch, height=0.6, lw=0.8, label=label)
        handles.append(Patch(facecolor=tuple(alpha * np.array(to_rgba(pal.GREY)[:3]) + (1 - alpha)), edgecolor=pal.GREY,
                             hatch=hatch, label=label))
        acc += vals
    for yi, f, e in zip(y, mean["fired_by_source"], eff):
        if f > 0:
            ax.text(acc.max() * 0.005, yi + 0.36, f"{e / f:.0%} of fired rounds effective", fontsize=7.5,
                    va="bottom")
    ax.set_yticks(y, names)
    ax.set_ylim(-0.6, len(names) - 0.2)
    ax.set_xlabel("rounds over the horizon (mean per run)")
    _rounds_axis(ax, "x")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    ax.set_title("by source (colour as on the left): totals over the horizon", fontsize=10, loc="left")
    _suptitle(fig, ds, f"{_name(ds)}: fired vs effective rounds, {_runs(ds):,} runs", x=0.01, ha="left", fontsize=11)
    return fig


def histogram(ds: xr.Dataset, ax: Axes | None = None, *, variant: int | None = None, bin_days: int | None = None,
              **_kw) -> Figure:
    """When runs first run short: share of runs per month (or ``bin_days``), and beside it one bar for
    the runs that never ran short within the horizon (censored: their day is unknown, not late)."""
    ds = _single(ds, variant)
    fig, ax = _figure(ax)
    t = _dates(ds)
    T = len(t)
    n = _runs(ds)
    fsd = np.asarray(ds["first_shortage_day"].values, dtype=np.float64)
    w = _weights(ds)
    fin = np.isfinite(fsd)
    short = fsd[fin].astype(np.int64)
    if bin_days:
        edges = np.arange(0, T + bin_days, bin_days)
        edges[-1] = T
        unit = f"{bin_days} days"
    else:  # calendar months
        months = np.unique(t.astype("datetime64[M]"))
        edges = np.array([max(0, int((m.astype("datetime64[D]") - t[0]).astype(int))) for m in months] + [T])
        edges = np.unique(edges)
        unit = "month"
    counts = np.histogram(short, bins=edges)[0]
    n_short = len(short)
    if w is not None:  # calibrated: shares of the total weight
        counts = np.histogram(short, bins=edges, weights=w[fin] * (n / w.sum()))[0]
        n_short = float(w[fin].sum() * n / w.sum())
    left = t[0] + edges[:-1].astype("timedelta64[D]")
    width = np.diff(edges)
    ax.bar(left, 100 * counts / n, width=width * 0.92, align="edge", color=pal.VERMILLION,
           label=f"first shortage in that {unit}")
    never = n - n_short
    p_never = 100 * never / n
    top = 100 * (counts.max() if len(counts) else 0) / n * 1.35
    cut = top > 0 and p_never > top  # the censored bar would flatten the others: cut it and say so
    gap = max(10, T // 25)
    cw = max(20, T // 10)
    cx = t[-1] + np.timedelta64(gap, "D")
    ax.bar([cx], [min(p_never, top * 0.93) if cut else p_never], width=cw, align="edge", color=pal.GREY,
           hatch="//", edgecolor="white", label="no shortage within the horizon" + (" (bar cut)" if cut else ""))
    mid = cx + np.timedelta64(cw // 2, "D")
    label = f"never short\nwithin the\nhorizon:\n{p_never:.0f} %"
    if cut:
        ax.text(mid, top * 0.5, label, ha="center", va="center", fontsize=8.5, color="white", weight="bold",
                bbox={"facecolor": pal.GREY, "edgecolor": "none", "pad": 2})
        ax.plot([mid - np.timedelta64(cw // 2 + 2, "D"), mid + np.timedelta64(cw // 2 + 2, "D")],
                [top * 0.9, top * 0.96], color="white", lw=3)
    else:
        ax.annotate(label, (mid, p_never), xytext=(0, 4), textcoords="offset points", ha="center", va="bottom",
                    fontsize=8)
        top = max(top, p_never * 1.3, 1.0)
    ax.axvline(t[-1] + np.timedelta64(1, "D"), color="0.3", lw=0.8, ls="--")
    ax.set_xlim(t[0] - np.timedelta64(3, "D"), cx + np.timedelta64(cw + 5, "D"))
    ax.set_ylim(0, top)
    ax.set_ylabel("share of all runs (%)")
    _date_axis(ax, t[0], t[-1])
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    _title(ax, ds, "date of the first shortage day",
           f"{100 * n_short / n:.1f} % of runs run short; bars add up to 100 % with the grey one")
    return fig


def tornado(ds: xr.Dataset, ax: Axes | None = None, *, outcome: str | None = None, top: int = 12,
            variant: int | None = None, **kw) -> Figure:
    """Inputs ranked by |PRCC| with the outcome, with 95 % CIs (bars) and Spearman (dots)."""
    from artysim.analysis import sensitivity

    res = sensitivity.analyze(ds, outcome, variant=variant, **kw)
    ds = _single(ds, variant)
    rows = [r for r in res["rows"] if np.isfinite(r["prcc"])][:top]
    fig, ax = _figure(ax, size=(8.5, 1.2 + 0.38 * max(len(rows), 3)))
    y = np.arange(len(rows))[::-1]
    pr = np.array([r["prcc"] for r in rows])
    lo = np.array([r["prcc_ci"][0] for r in rows])
    hi = np.array([r["prcc_ci"][1] for r in rows])
    sp = np.array([r["spearman"] for r in rows])
    colors = np.where(pr >= 0, pal.BLUE, pal.VERMILLION)
    ax.barh(y, pr, color=colors, height=0.6)
    ax.errorbar(pr, y, xerr=[pr - lo, hi - pr], fmt="none", ecolor="black", elinewidth=1, capsize=3,
                label="95 % CI")
    ax.plot(sp, y, "o", color="white", mec="black", ms=4, label="Spearman", zorder=5)
    ax.axvline(0, color="black", lw=0.8)
    if not rows:
        ax.text(0.5, 0.5, f"no ranking: {res['outcome']} is the same in every run", transform=ax.transAxes,
                ha="center", va="center", fontsize=10, bbox={"facecolor": "white", "edgecolor": "0.5"})
    ax.set_yticks(y, [r["parameter"] for r in rows], fontsize=8.5)
    ax.set_xlim(-1, 1)
    ax.set_xlabel("rank correlation with the outcome (blue: raises it, vermillion: lowers it)")
    ax.grid(axis="x", alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()  # the bars' two colours are explained, not one of them
    ax.legend(handles=[Patch(color=pal.BLUE, label="PRCC > 0"), Patch(color=pal.VERMILLION, label="PRCC < 0")]
              + handles, fontsize=8, loc="lower right")
    what = res["outcome"] + (" (never short = horizon + 1)" if res["outcome"] == "first_shortage_day" else "")
    _title(ax, ds, f"what drives {what}", f"partial rank correlation (PRCC), top {len(rows)} of {res['parameters']}")
    return fig


# ----------------------------------------------------------------------------- two files, sweeps, swing
# (A against B, the heat map of a two-parameter sweep, the tornado in outcome units)


def short_number(v) -> str:
    """2 M, 2.5 M, 21 k, 0.25: tick labels that fit (a string value is kept as it is)."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    a = abs(x)
    if a >= 1e6:
        return f"{x / 1e6:.3g} M"
    if a >= 1e4:
        return f"{x / 1e3:.3g} k"
    return f"{x:.4g}"


def sweep_paths(ds: xr.Dataset) -> list[str]:
    """The varied scenario paths of a sweep file, in --vary order (``[]`` for another file)."""
    if "variant" not in ds.dims:
        return []
    paths = json.loads(str(ds.attrs.get("sweep_paths", "[]")))
    if not paths:  # older files: the vary_<k> variables name them
        k = 0
        while f"vary_{k}" in ds.variables:
            paths.append(str(ds[f"vary_{k}"].attrs.get("path", f"vary_{k}")))
            k += 1
    return [str(p) for p in paths]


def _unit_of(ds: xr.Dataset, outcome: str) -> str:
    """days, rounds or fraction: the unit an analyst reads an outcome in."""
    if outcome in ("fill_rate", "effective_fill_rate"):
        return "fraction"
    var = outcome.partition(":")[0]
    if var in ds.variables:
        a = ds[var].attrs
        if str(a.get("units", "")) in ("days", "day", "d"):
            return "days"
        if "round" in str(a.get("long_name", "")) or var.endswith("_total") or var in (
                "received", "duds", "fired_by_source", "effective_by_source", "stock_min", "stock_final"):
            return "rounds"
        return str(a.get("units", "")) or "value"
    return "value"


class Stat:
    """One statistic of one variant: its value, 95 % interval, and how to print it."""

    def __init__(self, value: float, lo: float, hi: float, text: str, beyond: bool = False):
        self.value, self.lo, self.hi, self.text, self.beyond = value, lo, hi, text, beyond


def statistic(ds: xr.Dataset, outcome: str | None) -> tuple[Stat, str, str]:
    """(the statistic of ``outcome`` in this one-variant dataset, its axis label, its unit).

    ``None``/``p_any_shortage``: P(any shortage) in %, Wilson interval. ``first_shortage_day``: the
    *median* first shortage day over all runs, never-short runs censored beyond the horizon (a mean
    would count them at an arbitrary day); ``beyond`` is set when more than half the runs never run
    short, and the value is then the horizon (the median is only known to lie past it). Any other
    per-run outcome: its mean, ±1.96 standard errors."""
    horizon = int(ds.sizes["time"])
    if outcome in (None, "p_any_shortage"):
        f = np.asarray(ds["first_shortage_day"].values, dtype=np.float64)
        k, n = int(np.isfinite(f).sum()), len(f)
        lo, hi = wilson(k, n)
        p = 100 * k / n if n else math.nan
        return Stat(p, 100 * lo, 100 * hi, f"{p:.0f} %"), "P(any shortage day within the horizon)", "%"
    if outcome in ("first_shortage_day", "median_first_shortage_day"):
        f = np.asarray(ds["first_shortage_day"].values, dtype=np.float64)
        med = censored_percentiles(f, horizon, (0.5,))[0.5]
        lo, hi = censored_percentile_ci(f, (0.5,))[0.5]
        label = "median first shortage day (days from start; over all runs)"
        if med is None:
            return Stat(float(horizon), float(lo) if lo is not None else float(horizon), float(horizon),
                        f"> {horizon}", beyond=True), label, "days"
        return Stat(med, lo, float(horizon) if hi is None else hi, f"{med:.0f}"), label, "days"
    from artysim.analysis.sensitivity import DERIVED, outcome_values

    unit = _unit_of(ds, outcome)
    if outcome in DERIVED:  # a ratio of means over runs, as summary gives it
        num, den, _ = DERIVED[outcome]
        m, se = ratio_of_means(np.asarray(ds[num].values, dtype=np.float64),
                               np.asarray(ds[den].values, dtype=np.float64))
        label = outcome.replace("_", " ") + " (ratio of means over runs)"
    else:
        v, _, _ = outcome_values(ds, outcome)
        m = float(np.mean(v))
        se = float(np.std(v, ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
        label = f"mean {outcome} per run"
    if unit == "rounds":
        text = f"{m / 1e6:.3g} M" if abs(m) >= 1e6 else (f"{m / 1e3:.3g} k" if abs(m) >= 1e3 else f"{m:.0f}")
    else:
        text = f"{m:.3f}" if unit == "fraction" else f"{m:.3g}"
    return Stat(m, m - Z95 * se, m + Z95 * se, text), label, unit


def _variant_values(ds: xr.Dataset, k: int) -> list:
    v = ds[f"vary_{k}"].values
    return [x.item() if hasattr(x, "item") else x for x in v]


def _uniq(seq) -> list:
    out: list = []
    for x in seq:
        if x not in out:
            out.append(x)
    return out


def _numeric(vals) -> bool:
    try:
        [float(x) for x in vals]
    except (TypeError, ValueError):
        return False
    return True


# ----------------------------------------------------------------------------- compare


def _pdep_band(ax: Axes, t, p, n, color, label, ls="-"):
    lo, hi = wilson(np.round(p * n), n)
    ax.fill_between(t, 100 * lo, 100 * hi, color=color, alpha=0.18, lw=0)
    return ax.plot(t, 100 * p, color=color, lw=2, ls=ls, label=label)[0]


def compare(ds: xr.Dataset, ax: Axes | None = None, *, against: xr.Dataset | None = None,
            variant: int | None = None, bin_days: int | None = None, **_kw) -> Figure:
    """A (this file) against B (``against``): both depletion curves on one axis (A blue, B orange, one
    legend, both names in the title, y-axis fitting both), and beside them, where the files pair (same
    seed and runs), the distribution of B's first shortage day minus A's among runs where A runs short,
    with runs where B never runs short in a separate hatched bar (their delay is only a lower bound).
    Unpaired files get the curves and a panel saying why no run-by-run delay exists."""
    from artysim.analysis import compare as cmp

    if against is None:
        raise ArtysimError("--kind compare needs --against B.nc: the file to draw against this one")
    a = _single(ds, variant)
    b = _single(against, variant)
    na, nb = _name(a), _name(b)
    if ax is None:
        fig = Figure(figsize=(12.5, 4.9), layout="constrained", dpi=100)
        ax, ax_d = fig.subplots(1, 2, width_ratios=[1.25, 1])
    else:
        fig, ax_d = ax.figure, None
    ta, tb = _dates(a), _dates(b)
    paired, why = cmp.pairing(a, b)
    wa, wb, cal = cmp.weights_for(a, b, paired)  # a calibrated file's weights, as compare uses them
    (pa, n_a), (pb, n_b) = _depleted_by_day(a, wa), _depleted_by_day(b, wb)
    _pdep_band(ax, ta, pa, n_a, pal.A, f"A: {na} ({_runs(a):,} runs)")
    _pdep_band(ax, tb, pb, n_b, pal.B, f"B: {nb} ({_runs(b):,} runs)", ls="--")
    for t, p, c in ((ta, pa, pal.A), (tb, pb, pal.B)):
        ax.annotate(f"{100 * p[-1]:.1f} %", (t[-1], 100 * p[-1]), xytext=(4, 0), textcoords="offset points",
                    va="center", ha="left", color=c, fontsize=9, weight="bold")
    top = 100 * float(max(pa.max(initial=0), pb.max(initial=0)))
    ax.set_ylim(0, max(5.0, min(100.0, top * 1.18)))  # both curves and their bands fit
    first, last = min(ta[0], tb[0]), max(ta[-1], tb[-1])
    ax.set_xlim(first, last + np.timedelta64(max(12, int((last - first).astype(int)) // 12), "D"))  # room for labels
    _date_axis(ax, first, last)
    ax.set_ylabel("runs with a first shortage on or before the date (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8.5, framealpha=0.95)
    ax.set_title("probability of having run short by each date (shaded: 95 % Wilson interval)", fontsize=10,
                 loc="left")
    if ax_d is not None:
        _delay_panel(ax_d, a, b, paired, why, bin_days, wa)
    note = "" if cal is None else "\n" + cmp.calibration_text({"calibration": cal})
    fig.suptitle(f"A: {na}  vs  B: {nb}{note}", x=0.01, ha="left", fontsize=12 if cal is None else 10,
                 weight="bold")
    return fig


def delay_data(a: xr.Dataset, b: xr.Dataset, w: np.ndarray | None = None) -> dict:
    """Per-run delays B − A (days) among runs where A runs short: ``finite`` (B short too) and the
    number of runs where B never runs short (``censored``), with compare's own summary of them. With
    calibration weights ``w``, runs of weight 0 are left out, ``finite_weight`` holds each finite delay's
    weight and ``censored_share`` the weighted share of censored runs (else both are the plain counts)."""
    from artysim.analysis import compare as cmp

    fa = np.asarray(a["first_shortage_day"].values, dtype=np.float64)
    fb = np.asarray(b["first_shortage_day"].values, dtype=np.float64)
    sel = np.isfinite(fa) if w is None else np.isfinite(fa) & (w > 0)
    both = sel & np.isfinite(fb)
    cens = sel & ~np.isfinite(fb)
    ww = np.ones(len(fa)) if w is None else w
    tot = float(ww[sel].sum())
    return {"finite": fb[both] - fa[both], "censored": int(cens.sum()),
            "finite_weight": ww[both] / tot if tot > 0 else ww[both],
            "censored_share": float(ww[cens].sum()) / tot if tot > 0 else 0.0,
            "a_short": int(sel.sum()), "runs": len(fa),
            "summary": cmp._delay(fa, fb, int(a.sizes["time"]), w)}


def _delay_panel(ax: Axes, a, b, paired: bool, why: str, bin_days: int | None, w: np.ndarray | None = None) -> None:
    if not paired:
        ax.set_axis_off()
        ax.text(0.5, 0.55, "unpaired", ha="center", va="center", fontsize=16, weight="bold", color=pal.GREY,
                transform=ax.transAxes)
        ax.text(0.5, 0.38, f"{why}:\nruns of A and B did not face the same random numbers,\n"
                "so there is no run-by-run delay of B against A.\nCompare the curves on the left.",
                ha="center", va="center", fontsize=9, transform=ax.transAxes, wrap=True)
        ax.set_title("paired delay of the first shortage (B − A)", fontsize=10, loc="left")
        return
    d = delay_data(a, b, w)
    if d["a_short"] == 0:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "A never runs short: no delay to measure", ha="center", va="center", fontsize=10,
                transform=ax.transAxes)
        return
    x = d["finite"]
    width = bin_days or max(1, int(math.ceil((x.max() - x.min() + 1) / 30))) if len(x) else (bin_days or 7)
    lo = math.floor(x.min() / width) * width if len(x) else 0
    hi = (math.floor(x.max() / width) + 1) * width if len(x) else width
    edges = np.arange(lo, hi + width, width, dtype=np.float64)
    share = (100 * np.histogram(x, bins=edges, weights=d["finite_weight"])[0] if len(x)
             else np.zeros(len(edges) - 1))  # share of the runs (of the weight) where A runs short
    ax.bar(edges[:-1], share, width=width * 0.9, align="edge", color=pal.B,
           label=f"B short too ({len(x):,} runs): B's day − A's day")
    span = max(hi - lo, 30)
    cx = hi + span * 0.08
    cw = span * 0.12
    p_c = 100 * d["censored_share"]
    ax.bar([cx], [p_c], width=cw, align="edge", color=pal.LIGHT_GREY, hatch="//", edgecolor=pal.GREY,
           label=f"B never short ({d['censored']:,} runs): delay ≥ horizon − A's day")
    ax.annotate(f"{p_c:.0f} %", (cx + cw / 2, p_c), xytext=(0, 3), textcoords="offset points", ha="center",
                fontsize=8.5)
    ax.axvline(0, color=pal.BLACK, lw=0.8)
    ax.axvline(cx - span * 0.04, color=pal.GREY, lw=0.8, ls="--")  # the hatched bar is not on the day scale
    ticks = [v for v in ax.get_xticks() if min(lo, 0) <= v <= hi]
    ax.set_xticks(ticks + [cx + cw / 2], [f"{v:g}" for v in ticks] + ["B never\nshort"])
    ax.set_xlim(min(lo, 0) - span * 0.03, cx + cw + span * 0.04)
    ax.set_ylim(0, max(share.max(initial=0), p_c) * 1.25 + 0.5)
    ax.set_xlabel("delay of the first shortage, B − A (days; > 0: B runs short later)")
    ax.set_ylabel(f"share of the {d['a_short']:,} runs where A runs short (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.95)
    s = d["summary"]
    ge = "≥ " if s["mean_is_lower_bound"] else ""
    med = s["percentiles"]["0.5"]
    med_txt = (f"{'' if s['percentile_is_exact']['0.5'] else '≥ '}{med:.0f}") if med is not None else "n/a"
    ax.set_title(f"paired delay of the first shortage where A runs short ({d['a_short']:,} runs):\n"
                 f"mean {ge}{s['mean'][0]:.1f} ± {s['mean'][1]:.1f} days, median {med_txt} days", fontsize=10,
                 loc="left")


# ----------------------------------------------------------------------------- sweep and heatmap


def _variant_stats(ds: xr.Dataset, outcome: str | None) -> tuple[list[Stat], str, str]:
    stats, label, unit = [], "", ""
    for i in range(ds.sizes["variant"]):
        s, label, unit = statistic(ds.isel(variant=i), outcome)
        stats.append(s)
    return stats, label, unit


def _stat_title(outcome: str | None, unit: str) -> str:
    if outcome in (None, "p_any_shortage"):
        return "probability of any shortage"
    if outcome in ("first_shortage_day", "median_first_shortage_day"):
        return "median first shortage day"
    if outcome in ("fill_rate", "effective_fill_rate"):
        return outcome.replace("_", " ")
    return f"mean {outcome}"


def sweep(ds: xr.Dataset, ax: Axes | None = None, *, outcome: str | None = None, **_kw) -> Figure:
    """An outcome against the swept value: P(any shortage) with its 95 % Wilson interval (default), the
    median first shortage day (``first_shortage_day``: censoring-aware; "beyond the horizon" drawn as an
    open triangle at the horizon), or the mean of another per-run outcome with ±1.96 standard errors.
    Two varied paths give one line per value of the second against the first (no zig-zag through the
    grid); more give one point per variant."""
    if "variant" not in ds.dims:
        raise ResultsError("--kind sweep needs a sweep file (with a variant dimension); this file has none")
    fig, ax = _figure(ax)
    nv = ds.sizes["variant"]
    paths = sweep_paths(ds)
    stats, ylabel, unit = _variant_stats(ds, outcome)
    est = np.array([s.value for s in stats])
    lo = np.array([s.lo for s in stats])
    hi = np.array([s.hi for s in stats])
    beyond = np.array([s.beyond for s in stats])
    if len(paths) in (1, 2) and _numeric(_variant_values(ds, 0)):
        x = np.asarray(_variant_values(ds, 0), dtype=np.float64)
        groups = ([(None, np.arange(nv))] if len(paths) == 1 else
                  [(g, np.array([i for i, v in enumerate(_variant_values(ds, 1)) if v == g]))
                   for g in _uniq(_variant_values(ds, 1))])
        xlabel = paths[0]
        numeric_x = True
    else:
        x = np.arange(nv, dtype=np.float64)
        groups = [(None, np.arange(nv))]
        xlabel = "variant"
        numeric_x = False
    xs = _uniq(list(x))
    step = float(np.min(np.diff(sorted(xs)))) if len(xs) > 1 else 1.0
    x0 = x
    for gi, (g, idx) in enumerate(groups):
        c = pal.category(gi)
        # lines of a family side by side, not on top of each other where they agree (e.g. at 0 % or beyond)
        x = x0 + (gi - (len(groups) - 1) / 2) * 0.025 * step * (len(groups) > 1)
        label = None if g is None else f"{paths[1]} = {short_number(g)}"
        ok = idx[~beyond[idx]]
        if numeric_x:
            ax.plot(x[idx], est[idx], "-", color=c, lw=1.5, label=label)
        ax.errorbar(x[ok], est[ok], yerr=[np.maximum(est[ok] - lo[ok], 0), np.maximum(hi[ok] - est[ok], 0)],
                    fmt="o", color=c, capsize=4, label=None if numeric_x else label)
        bx = idx[beyond[idx]]
        if len(bx):
            ax.plot(x[bx], est[bx], "^", mfc="white", mec=c, ms=9, mew=1.6,
                    label="median beyond the horizon" if gi == 0 else None)
    x = x0
    if numeric_x:
        ax.set_xticks(_uniq(list(x)), [short_number(v) for v in _uniq(list(x))], fontsize=9)
    else:
        labels = ([str(v) for v in ds["variant_label"].values] if "variant_label" in ds.variables
                  else [str(i) for i in range(nv)])
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    if outcome in ("first_shortage_day", "median_first_shortage_day"):
        horizon = int(ds.sizes["time"])
        ax.axhline(horizon, color=pal.GREY, lw=0.8, ls=":")
        ax.annotate("horizon", (1.0, horizon), xycoords=("axes fraction", "data"), xytext=(-4, 3),
                    textcoords="offset points", ha="right", fontsize=8, color=pal.GREY)
        ax.set_ylim(0, horizon * 1.08)
    elif unit == "%":
        ax.set_ylim(0, min(100, max(5.0, float(np.nanmax(hi)) * 1.15)))
    if unit == "rounds":
        _rounds_axis(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel} ({unit})" if unit not in ylabel else ylabel, fontsize=9)
    ax.grid(alpha=0.3)
    if len(groups) > 1 or beyond.any():
        ax.legend(fontsize=8, loc="best", framealpha=0.95)
    runs = int(ds.sizes.get("run", 0))
    note = {"%": "bars: 95 % Wilson interval", "days": "bars: 95 % order-statistic interval"}.get(
        unit, "bars: ±1.96 Monte Carlo standard errors")
    ax.set_title(f"{_name(ds)}: {_stat_title(outcome, unit)} across {nv} variants\n{runs:,} runs per variant "
                 f"(common random numbers); {note}", fontsize=10.5, loc="left")
    return fig


def heatmap_grid(ds: xr.Dataset, outcome: str | None = None):
    """(rows = values of the first varied path, columns = values of the second, matrix of Stat or None,
    label, unit) of a two-parameter sweep; ResultsError for another file."""
    if "variant" not in ds.dims:
        raise ResultsError("--kind heatmap needs a sweep file of two varied parameters (artysim sweep "
                           "--vary A=... --vary B=...); this file has no variant dimension")
    paths = sweep_paths(ds)
    if len(paths) != 2:
        raise ResultsError(f"--kind heatmap needs a sweep of two varied parameters; this one varies {len(paths)} "
                           f"({', '.join(paths)}): use --kind sweep")
    v0, v1 = _variant_values(ds, 0), _variant_values(ds, 1)
    rows, cols = _uniq(v0), _uniq(v1)
    stats, label, unit = _variant_stats(ds, outcome)
    grid: list[list[Stat | None]] = [[None] * len(cols) for _ in rows]
    for i, s in enumerate(stats):
        grid[rows.index(v0[i])][cols.index(v1[i])] = s
    return paths, rows, cols, grid, label, unit


def heatmap(ds: xr.Dataset, ax: Axes | None = None, *, outcome: str | None = None, **_kw) -> Figure:
    """A two-parameter sweep as a heat map: the first varied path on the y-axis, the second on the x-axis,
    each cell coloured by the statistic (P(any shortage) by default; ``first_shortage_day``: the median
    first shortage day, "beyond" where more than half the runs never run short; else a mean) and labelled
    with its value; a colour bar with the unit."""
    paths, rows, cols, grid, label, unit = heatmap_grid(ds, outcome)
    w = min(13.0, max(7.0, 1.1 * len(cols) + 3.5))
    h = min(10.0, max(4.2, 0.6 * len(rows) + 2.4))
    fig, ax = _figure(ax, size=(w, h))
    m = np.array([[np.nan if s is None else s.value for s in r] for r in grid], dtype=np.float64)
    vmin, vmax = (0.0, 100.0) if unit == "%" and np.nanmax(m) > 50 else (np.nanmin(m), np.nanmax(m))
    if unit == "%":
        vmin = 0.0
    im = ax.imshow(m, origin="lower", aspect="auto", cmap=pal.CMAP, vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1)
    norm = im.norm
    for i, r in enumerate(grid):
        for j, s in enumerate(r):
            if s is None:
                ax.text(j, i, "–", ha="center", va="center", fontsize=9, color=pal.GREY)
                continue
            rgba = im.cmap(norm(s.value))
            lum = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
            txt = s.text + (f"\n[{s.lo:.0f}–{s.hi:.0f}]" if unit == "%" else "")
            ax.text(j, i, txt, ha="center", va="center", fontsize=8.5 if len(cols) <= 8 else 7,
                    color="black" if lum > 0.5 else "white")
    ax.set_xticks(range(len(cols)), [short_number(c) for c in cols], fontsize=9,
                  rotation=0 if len(cols) <= 8 else 45, ha="center" if len(cols) <= 8 else "right")
    ax.set_yticks(range(len(rows)), [short_number(r) for r in rows], fontsize=9)
    ax.set_xlabel(paths[1])
    ax.set_ylabel(paths[0])
    cb = fig.colorbar(im, ax=ax, shrink=0.95, pad=0.02)
    cb.set_label(f"{_stat_title(outcome, unit)} ({unit})", fontsize=9)
    if unit == "rounds":
        cb.ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _p: short_number(v)))
    runs = int(ds.sizes.get("run", 0))
    note = {"%": "cells: value [95 % Wilson interval]",
            "days": f"'> {int(ds.sizes['time'])}': beyond the horizon"}.get(unit, "cells: the mean")
    ax.set_title(f"{_name(ds)}: {_stat_title(outcome, unit)}\n{runs:,} runs per cell (common random "
                 f"numbers); {note}", fontsize=10.5, loc="left")
    return fig


# ----------------------------------------------------------------------------- swing


def swing_rows(ds: xr.Dataset, outcome: str | None = None, decile: float = 0.1) -> tuple[list[dict], str, str]:
    """For each sampled input that varies: the mean outcome among runs whose input lies in its top decile
    (value >= its 90th percentile) minus among runs in its bottom decile (<= its 10th percentile), with
    the standard error of that difference of two independent means. Sorted by |swing|, largest first."""
    from artysim.analysis.sensitivity import outcome_values

    if "parameters" not in ds.data_vars or ds.sizes.get("parameter", 0) == 0:
        raise ResultsError("this file has no sampled parameters: nothing to rank")
    y, name, desc = outcome_values(ds, outcome)
    x = np.asarray(ds["parameters"].values, dtype=np.float64)
    params = [str(p) for p in ds["parameter"].values]
    w = _weights(ds)
    if w is not None:
        return _swing_rows_weighted(x, y, w, params, decile), name, desc
    rows = []
    for j, p in enumerate(params):
        xj = x[:, j]
        q_lo, q_hi = np.quantile(xj, [decile, 1 - decile])
        if not q_hi > q_lo:
            continue
        lo, hi = y[xj <= q_lo], y[xj >= q_hi]
        if len(lo) < 2 or len(hi) < 2:
            continue
        se = math.sqrt(np.var(hi, ddof=1) / len(hi) + np.var(lo, ddof=1) / len(lo))
        rows.append({"parameter": p, "swing": float(hi.mean() - lo.mean()), "se": se, "low_mean": float(lo.mean()),
                     "high_mean": float(hi.mean()), "runs_low": len(lo), "runs_high": len(hi)})
    rows.sort(key=lambda r: -abs(r["swing"]))
    return rows, name, desc


def _swing_rows_weighted(x: np.ndarray, y: np.ndarray, w: np.ndarray, params: list[str], decile: float) -> list[dict]:
    """swing_rows under calibration weights: the deciles are weighted quantiles (inverted CDF) of each
    input over the runs of positive weight, the means weighted, the SEs from each decile's effective
    sample size (for 0/1 weights: the accepted runs' deciles, SEs with ddof 0)."""
    from artysim.analysis.stats import effective_sample_size, weighted_mean_se, weighted_quantile

    keep = w > 0
    x, y, w = x[keep], y[keep], w[keep]
    rows = []
    for j, p in enumerate(params):
        xj = x[:, j]
        q_lo, q_hi = weighted_quantile(xj, w, decile), weighted_quantile(xj, w, 1 - decile)
        if not q_hi > q_lo:
            continue
        lo, hi = xj <= q_lo, xj >= q_hi
        if effective_sample_size(w[lo]) < 2 or effective_sample_size(w[hi]) < 2:
            continue
        (ml, sl), (mh, sh) = weighted_mean_se(y[lo], w[lo]), weighted_mean_se(y[hi], w[hi])
        rows.append({"parameter": p, "swing": mh - ml, "se": math.sqrt(sl * sl + sh * sh), "low_mean": ml,
                     "high_mean": mh, "runs_low": int(lo.sum()), "runs_high": int(hi.sum()),
                     "effective_runs_low": effective_sample_size(w[lo]),
                     "effective_runs_high": effective_sample_size(w[hi])})
    rows.sort(key=lambda r: -abs(r["swing"]))
    return rows


def swing(ds: xr.Dataset, ax: Axes | None = None, *, outcome: str | None = None, top: int = 12,
          variant: int | None = None, **kw) -> Figure:
    """The tornado in outcome units (left): for each input, mean outcome among runs in the input's top
    decile minus among its bottom decile, ±1.96 standard errors; beside it (right) the partial rank
    correlation of the same inputs, in the same order. Blue: raising the input raises the outcome."""
    from artysim.analysis import sensitivity

    ds = _single(ds, variant)
    rows, name, desc = swing_rows(ds, outcome)
    rows = rows[:top]
    unit = _unit_of(ds, name)
    res = sensitivity.analyze(ds, outcome, **kw)
    prcc = {r["parameter"]: r for r in res["rows"]}
    hgt = 1.6 + 0.42 * max(len(rows), 3)
    if ax is None:
        fig = Figure(figsize=(12.5, hgt), layout="constrained", dpi=100)
        ax, ax_c = fig.subplots(1, 2, width_ratios=[1.4, 1], sharey=True)
    else:
        fig, ax_c = ax.figure, None
    y = np.arange(len(rows))[::-1]
    sw = np.array([r["swing"] for r in rows])
    se = np.array([r["se"] for r in rows])
    colors = [pal.BLUE if v >= 0 else pal.VERMILLION for v in sw]
    ax.barh(y, sw, color=colors, height=0.6)
    ax.errorbar(sw, y, xerr=Z95 * se, fmt="none", ecolor=pal.BLACK, elinewidth=1, capsize=3)
    ax.axvline(0, color=pal.BLACK, lw=0.8)
    ax.set_yticks(y, [r["parameter"] for r in rows], fontsize=8.5)
    if len(rows):
        lim = float(np.max(np.abs(sw) + Z95 * se)) * 1.1 or 1.0
        ax.set_xlim(-lim, lim)
    if unit == "rounds":
        _rounds_axis(ax, "x")
    never = name == "first_shortage_day"
    ax.set_xlabel(f"{name}: mean in the input's top decile − bottom decile ({unit})" +
                  (f"\nruns never short counted at day {int(ds.sizes['time']) + 1} (horizon + 1)" if never else ""),
                  fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"swing in {unit} (bars: ±1.96 Monte Carlo SE)", fontsize=10, loc="left")
    if ax_c is not None:
        pr = np.array([prcc.get(r["parameter"], {}).get("prcc", np.nan) for r in rows])
        lo = np.array([prcc.get(r["parameter"], {}).get("prcc_ci", (np.nan, np.nan))[0] for r in rows])
        hi = np.array([prcc.get(r["parameter"], {}).get("prcc_ci", (np.nan, np.nan))[1] for r in rows])
        ax_c.barh(y, pr, color=[pal.BLUE if v >= 0 else pal.VERMILLION for v in np.nan_to_num(pr)], height=0.6)
        ax_c.errorbar(pr, y, xerr=[pr - lo, hi - pr], fmt="none", ecolor=pal.BLACK, elinewidth=1, capsize=3)
        ax_c.axvline(0, color=pal.BLACK, lw=0.8)
        ax_c.set_xlim(-1, 1)
        ax_c.set_xlabel("partial rank correlation (PRCC) with the outcome, 95 % CI", fontsize=9)
        ax_c.grid(axis="x", alpha=0.3)
        ax_c.set_title("the correlation tornado, same order", fontsize=10, loc="left")
        ax_c.tick_params(labelleft=False)
    if not rows:
        ax.text(0.5, 0.5, "no input varies: nothing to rank", transform=ax.transAxes, ha="center", va="center")
    fig.legend(handles=[Patch(color=pal.BLUE, label="raising the input raises the outcome"),
                        Patch(color=pal.VERMILLION, label="raising the input lowers the outcome")],
               loc="outside lower center", ncol=2, fontsize=8.5, frameon=False)
    _suptitle(fig, ds, f"{_name(ds)}: what moves {name}, {_runs(ds):,} runs (deciles of "
              f"{rows[0]['runs_low'] if rows else 0:,} runs each)", x=0.01, ha="left", fontsize=11)
    return fig


def solve(ds: xr.Dataset, ax: Axes | None = None, **_kw) -> Figure:
    """The search of ``artysim solve`` (from a file it wrote with ``-o``): the target statistic against the
    lever at every evaluation with its 95 % interval, the threshold, the answer and the Monte Carlo
    interval."""
    import json

    if "solve_evaluations" not in ds.attrs:
        raise ResultsError("--kind solve needs a file written by 'artysim solve -o' (no solve_* attributes)")
    evs = sorted(json.loads(str(ds.attrs["solve_evaluations"])), key=lambda e: e["lever"])
    target = str(ds.attrs["solve_target"])
    m = re.search(r"(<=|>=|<|>)\s*([^\s]+)\s*$", target)
    thr = float(m.group(2).replace("_", "")) if m else math.nan
    fig, ax = _figure(ax)
    x = np.array([e["lever"] for e in evs], dtype=np.float64)
    y = np.array([math.nan if e["statistic"] is None else e["statistic"] for e in evs], dtype=np.float64)
    lo = np.array([math.nan if e["ci95"][0] is None else e["ci95"][0] for e in evs], dtype=np.float64)
    hi = np.array([math.nan if e["ci95"][1] is None else e["ci95"][1] for e in evs], dtype=np.float64)
    meets = np.array([bool(e["meets"]) for e in evs])
    ivl = json.loads(str(ds.attrs["solve_interval"]))
    ax.axvspan(ivl[0], ivl[1], color="#fdb863", alpha=0.35, lw=0, label="Monte Carlo interval")
    ax.axhline(thr, color="#b2182b", lw=1.2, ls="--", label=f"threshold {thr:g}")
    answer = float(ds.attrs["solve_value"])
    ax.axvline(answer, color="#1a9850", lw=1.5, label=f"answer {answer:.6g}")
    for sel, color, label in ((meets, "#1a9850", "meets the target"), (~meets, "#4d4d4d", "does not")):
        if sel.any():
            ax.errorbar(x[sel], y[sel], yerr=[np.nan_to_num(y[sel] - lo[sel]), np.nan_to_num(hi[sel] - y[sel])],
                        fmt="o", color=color, capsize=3, ms=4, label=label)
    if np.nanmax(np.abs(x)) >= 1e4:
        _rounds_axis(ax, "x")
    lever = str(ds.attrs["solve_lever"])
    ax.set_xlabel(f"{lever} (factor)" if int(ds.attrs.get("solve_scale", 0)) else lever)
    ax.set_ylabel(target.split("<")[0].split(">")[0].strip())
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _title(ax, ds, f"solve {target}", f"{len(evs)} evaluations, common random numbers; bars: 95 % intervals")
    return fig


# ----------------------------------------------------------------------------- saving


def _band(qs: np.ndarray) -> tuple[int, int] | None:
    """Columns of the quantile pair nearest 25 % and 75 % (the band drawn around a median), if any."""
    lo, hi = np.flatnonzero(qs < 0.5), np.flatnonzero(qs > 0.5)
    if not len(lo) or not len(hi):
        return None
    return int(lo[np.argmin(np.abs(qs[lo] - 0.25))]), int(hi[np.argmin(np.abs(qs[hi] - 0.75))])


def run_out_day(median: np.ndarray) -> int | None:
    """First day on which a median stock curve is at zero after having been above it (None: never
    within the horizon). A source whose stock starts at zero (an import before its first arrival) has
    not run out on day 0; one that never holds stock never runs out."""
    m = np.asarray(median)
    held = np.flatnonzero(m > 0)
    if not len(held):
        return None
    at = np.flatnonzero(m[held[0]:] <= 0)
    return int(held[0] + at[0]) if len(at) else None


def stock(ds: xr.Dataset, ax: Axes | None = None, *, variant: int | None = None, **_kw) -> Figure:
    """Stock by source over time: each source's median end-of-day stock over runs with the band of the
    quantiles nearest 25-75 % (and the day its median reaches zero), the mean arrivals per day by source,
    and the days of fire on hand (all stock over the day's base demand)."""
    ds = _single(ds, variant)
    if "stock_by_source_quantile" not in ds.variables:
        raise ArtysimError(f"{_name(ds)}: this results file has no per-day stock by source (written by an older "
                           "artysim); run the scenario again to plot --kind stock")
    qs = np.asarray(ds["quantile"].values, dtype=np.float64)
    if not np.any(np.isclose(qs, 0.5)):
        raise ArtysimError(f"{_name(ds)}: --kind stock draws medians, but the file's quantiles "
                           f"({', '.join(f'{q:g}' for q in qs)}) do not include 0.5")
    med = int(np.argmin(np.abs(qs - 0.5)))
    band = _band(qs)
    t = _dates(ds)
    names = [str(x) for x in ds["source"].values]
    if ax is None:
        fig = Figure(figsize=(14, 4.6), layout="constrained", dpi=100)
        ax, ax_a, ax_d = fig.subplots(1, 3, width_ratios=[1.3, 1, 1])
    else:
        fig, ax_a, ax_d = ax.figure, None, None
    sq = np.asarray(ds["stock_by_source_quantile"].values, dtype=np.float64)  # time x source x quantile
    for j, name in enumerate(names):
        c = pal.category(j)
        out = run_out_day(sq[:, j, med])
        label = name + ("" if out is None else f" (median run out {np.datetime_as_string(t[out])})")
        if band is not None:
            ax.fill_between(t, sq[:, j, band[0]], sq[:, j, band[1]], color=c, alpha=0.2, lw=0)
        ax.plot(t, sq[:, j, med], color=c, lw=1.8, label=label)
        if out is not None and out > 0:
            ax.plot([t[out]], [0], marker="v", color=c, ms=7, clip_on=False)
    ax.set_ylim(bottom=0)
    ax.set_xlim(t[0], t[-1])
    ax.set_ylabel("rounds on hand by source (end of day)")
    _rounds_axis(ax)
    _date_axis(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    note = "line: median over runs"
    if band is not None:
        note += f"; band: {qs[band[0]]:.0%}-{qs[band[1]]:.0%} of runs"
    ax.set_title(f"stock by source ({note})", fontsize=10, loc="left")
    if ax_a is not None:
        arr = np.asarray(ds["arrivals_by_source_mean"].values, dtype=np.float64)
        for j, name in enumerate(names):
            ax_a.plot(t, arr[:, j], color=pal.category(j), lw=1.3, label=name)
        ax_a.set_ylim(bottom=0)
        ax_a.set_xlim(t[0], t[-1])
        ax_a.set_ylabel("rounds arriving per day (mean over runs)")
        _rounds_axis(ax_a)
        _date_axis(ax_a)
        ax_a.grid(alpha=0.3)
        ax_a.legend(fontsize=8, loc="upper right")
        ax_a.set_title("arrivals by source (received, refurbished)", fontsize=10, loc="left")
        dq = np.asarray(ds["days_on_hand_quantile"].values, dtype=np.float64)
        if band is not None:
            ax_d.fill_between(t, dq[:, band[0]], dq[:, band[1]], color=pal.BANDS[1], lw=0,
                              label=f"{qs[band[0]]:.0%}-{qs[band[1]]:.0%} of runs")
        ax_d.plot(t, dq[:, med], color=pal.DARK_BLUE, lw=1.8, label="median")
        ax_d.set_ylim(bottom=0)
        ax_d.set_xlim(t[0], t[-1])
        ax_d.set_ylabel("days of fire on hand (stock / base demand)")
        _date_axis(ax_d)
        ax_d.grid(alpha=0.3)
        ax_d.legend(fontsize=8, loc="upper right")
        ax_d.set_title("days of fire on hand, all sources", fontsize=10, loc="left")
    _suptitle(fig, ds, f"{_name(ds)}: stock by source over time, {_runs(ds):,} runs", x=0.01, ha="left",
              fontsize=11)
    return fig


def runs_subset(ds: xr.Dataset, sub: xr.Dataset, info: dict) -> xr.Dataset:
    """``--where``: the selected runs, with the depletion curve recomputed from their first shortage days,
    the per-day statistics kept over all runs dropped, and the condition in the title."""
    fsd = np.asarray(sub["first_shortage_day"].values, dtype=np.float64)
    T = int(sub.sizes["time"])
    counts = np.bincount(fsd[np.isfinite(fsd)].astype(np.int64), minlength=T)[:T]
    keep = [v for v in sub.data_vars if "run" in sub[v].dims or "time" not in sub[v].dims]
    out = sub[keep]
    out["p_depleted"] = ("time", np.cumsum(counts) / max(int(sub.sizes["run"]), 1))
    out.attrs = dict(sub.attrs)
    out.attrs["scenario_name"] = f"{ds.attrs.get('scenario_name', 'artysim results')} where {info['condition']}"
    return out


def calibration(ds: xr.Dataset, ax: Axes | None = None, **_kw) -> Figure:
    """A calibrated file: each sampled parameter's prior (grey) against its posterior (the weighted
    runs, vermillion), and each observation's prior predictive against its band (or its error model's
    95 % range), one panel each."""
    import json as _json

    if "weight" not in ds.variables:
        raise ResultsError("--kind calibration needs a calibrated file (artysim calibrate RESULTS.nc -o OUT.nc)")
    from artysim.analysis.calibrate import _centre_and_band, evidence

    w = _weights(ds)
    params = [str(p) for p in ds["parameter"].values]
    defs = _json.loads(str(ds["observed"].attrs["definitions"]))
    n = len(params) + len(defs)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows + 0.6), layout="constrained", dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()

    def panel(a, x, title, band=None):
        x = np.asarray(x, dtype=np.float64)
        ok = np.isfinite(x)
        lo, hi = (np.quantile(x[ok], [0.001, 0.999]) if ok.any() else (0.0, 1.0))
        if band is not None:
            lo, hi = min(lo, band[0]), max(hi, band[1])
        edges = np.linspace(lo, hi if hi > lo else lo + 1, 41)
        a.hist(x[ok], bins=edges, density=True, color=pal.GREY, alpha=0.6, label="prior")
        a.hist(x[ok], bins=edges, weights=w[ok], density=True, histtype="step", lw=2, color=pal.VERMILLION,
               label="posterior")
        if band is not None:
            a.axvspan(band[0], band[1], color=pal.BLUE, alpha=0.15, label="evidence")
        a.set_title(title, fontsize=9, loc="left")
        a.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _p: short_number(v)))
        a.set_yticks([])

    P = np.asarray(ds["parameters"].values, dtype=np.float64) if params else np.zeros((0, 0))
    for j, name in enumerate(params):
        panel(axes[j], P[:, j], name)
    obs = np.asarray(ds["observed"].values, dtype=np.float64)
    for k, d in enumerate(defs):
        _, blo, bhi = _centre_and_band(evidence(d["value"]))
        panel(axes[len(params) + k], obs[:, k], f"observed: {d['name']}", (blo, bhi))
    for a in axes[n:]:
        a.set_visible(False)
    axes[0].legend(fontsize=7)
    from artysim.analysis.stats import effective_sample_size

    fig.suptitle(f"{_name(ds)}: calibration on {ds.attrs.get('calibrated_on', '')}\n{_runs(ds):,} runs, "
                 f"effective sample size {effective_sample_size(w):,.0f}", fontsize=11, x=0.01, ha="left")
    return fig


def plot(ds: xr.Dataset, kind: str, **kw) -> Figure:
    """The figure of one kind (dispatcher for the CLI and the accessor); a calibrated file's title says
    whether the kind used its weights."""
    if kind not in KINDS:
        raise ArtysimError(f"--kind must be one of {', '.join(KINDS)} (found {kind!r})")
    note = _calibrated_note(ds, kind)
    if note:
        ds = ds.copy()
        ds.attrs["_artysim_plot_note"] = note
    return globals()[kind](ds, **kw)


def check_output(path: str | Path, force: bool) -> tuple[Path, str]:
    """Refuse an unknown extension, a missing folder or an existing file (without force) before drawing."""
    p = Path(path)
    ext = p.suffix.lower().lstrip(".")
    if ext not in FORMATS:
        raise ArtysimError(f"-o {p}: expected a .png or .svg file name (found {p.suffix or 'no extension'!r})")
    if os.path.lexists(p) and not force:  # a dangling link too: the rename would replace it
        raise OutputExistsError(f"{p} exists; use --force to overwrite it")
    if p.is_dir():
        raise OutputExistsError(f"{p} is a folder, expected a file path")
    if not p.parent.exists():
        raise ArtysimError(f"output folder {p.parent} does not exist")
    return p, ext


def save(fig: Figure, path: str | Path, *, force: bool = False, dpi: int = 100) -> Path:
    """Write the figure atomically (a private temporary folder beside it, then rename)."""
    p, ext = check_output(path, force)
    tmp = None
    try:
        tmp = AtomicFile(p, force=force, doing="drawing")
        fig.savefig(tmp.path, format=ext, dpi=dpi, metadata={"Software": None} if ext == "png" else None)
        return tmp.commit()
    except OSError as e:  # a full disk, a read-only file system, a folder removed meanwhile: one line
        raise ResultsError(f"{p}: could not write the picture: {e.strerror or e}; nothing was written") from None
    finally:
        if tmp is not None:
            tmp.discard()
