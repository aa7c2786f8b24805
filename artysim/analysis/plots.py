"""Figures from a results file (matplotlib, no pyplot): every function takes a Dataset and an
optional Axes and returns the Figure, so notebooks can compose them and the CLI can save them.

pyplot is never imported: figures are plain ``matplotlib.figure.Figure`` objects rendered by Agg (PNG)
or the SVG backend, so nothing leaks into a user's global pyplot state and no display is needed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import dates as mdates
from matplotlib import ticker
from matplotlib.figure import Figure

from artysim.analysis.stats import Z95, wilson
from artysim.errors import ArtysimError, OutputExistsError, ResultsError
from artysim.results.atomic import AtomicFile

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.axes import Axes

KINDS = ("fan", "depletion", "sources", "histogram", "tornado", "sweep")
FORMATS = ("png", "svg")
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


def _title(ax: Axes, ds: xr.Dataset, what: str, note: str = "") -> None:
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
    blues = ["#c6dbef", "#6baed6", "#2171b5"]
    for i in range(len(qs) // 2):
        lo, hi = qs[i], qs[len(qs) - 1 - i]
        ax.fill_between(t, sq[:, i], sq[:, len(qs) - 1 - i], color=blues[min(i, len(blues) - 1)], lw=0,
                        label=f"{lo:.0%}–{hi:.0%} of runs", zorder=1 + i * 0.1)
    if np.any(np.isclose(qs, 0.5)):
        ax.plot(t, sq[:, int(np.argmin(np.abs(qs - 0.5)))], color="#08306b", lw=2, label="median", zorder=4)
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
    ps = np.asarray(ds["p_short"].values, dtype=np.float64)
    for p, color, label in ((pd_, "#b2182b", "depleted: first shortage day on or before the date"),
                            (ps, "#2166ac", "short on that day")):
        lo, hi = wilson(np.round(p * n), n)
        ax.fill_between(t, 100 * lo, 100 * hi, color=color, alpha=0.2, lw=0)
        ax.plot(t, 100 * p, color=color, lw=2, label=label)
    ax.annotate(f"{100 * pd_[-1]:.1f} % by {np.datetime_as_string(t[-1])}", (t[-1], 100 * pd_[-1]),
                xytext=(-8, 8), textcoords="offset points", ha="right", color="#b2182b", fontsize=9)
    ax.set_ylim(0, max(5.0, min(100.0, 100 * float(max(pd_.max(), ps.max())) * 1.15)))
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
            colors = ["#2166ac", "#b2182b", "#1a9850", "#762a83", "#e08214", "#4d4d4d"]
            for j, name in enumerate(str(x) for x in ds["source"].values):
                c = colors[j % len(colors)]
                ax_t.plot(t, ds["fired_by_source_mean"].values[:, j], color=c, lw=1.4, label=f"{name}: fired")
                ax_t.plot(t, ds["effective_by_source_mean"].values[:, j], color=c, lw=1.2, ls="--",
                          label=f"{name}: effective")
            ax_t.set_title("per day by source: fired (solid), effective (dashed)", fontsize=10, loc="left")
            ax_t.legend(fontsize=7, loc="upper right", ncol=2)
        else:
            ax_t.plot(t, ds["fired_mean"].values, color="#4d4d4d", lw=1.5, label="fired")
            ax_t.plot(t, ds["effective_mean"].values, color="#1a9850", lw=1.5, label="effective (not dud, on target)")
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
    mean = {v: np.asarray(ds[v].mean("run").values, dtype=np.float64)
            for v in ("fired_by_source", "duds", "effective_by_source", "stock_final_by_source")}
    eff, duds = mean["effective_by_source"], mean["duds"]
    miss = np.maximum(mean["fired_by_source"] - duds - eff, 0)
    left = mean["stock_final_by_source"]
    y = np.arange(len(names))[::-1]
    parts = [(eff, "#1a9850", "fired: effective"), (duds, "#d73027", "fired: duds"),
             (miss, "#fdae61", "fired: missed target"), (left, "#bdbdbd", "not fired (on hand at the end)")]
    acc = np.zeros(len(names))
    for vals, color, label in parts:
        ax.barh(y, vals, left=acc, color=color, label=label, height=0.6)
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
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    ax.set_title("by source: totals over the horizon", fontsize=10, loc="left")
    fig.suptitle(f"{_name(ds)}: fired vs effective rounds, {_runs(ds):,} runs", x=0.01, ha="left", fontsize=11)
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
    short = fsd[np.isfinite(fsd)].astype(np.int64)
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
    left = t[0] + edges[:-1].astype("timedelta64[D]")
    width = np.diff(edges)
    ax.bar(left, 100 * counts / n, width=width * 0.92, align="edge", color="#b2182b",
           label=f"first shortage in that {unit}")
    never = n - len(short)
    p_never = 100 * never / n
    top = 100 * (counts.max() if len(counts) else 0) / n * 1.35
    cut = top > 0 and p_never > top  # the censored bar would flatten the others: cut it and say so
    gap = max(10, T // 25)
    cw = max(20, T // 10)
    cx = t[-1] + np.timedelta64(gap, "D")
    ax.bar([cx], [min(p_never, top * 0.93) if cut else p_never], width=cw, align="edge", color="#878787",
           hatch="//", edgecolor="white", label="no shortage within the horizon" + (" (bar cut)" if cut else ""))
    mid = cx + np.timedelta64(cw // 2, "D")
    label = f"never short\nwithin the\nhorizon:\n{p_never:.0f} %"
    if cut:
        ax.text(mid, top * 0.5, label, ha="center", va="center", fontsize=8.5, color="white", weight="bold",
                bbox={"facecolor": "#878787", "edgecolor": "none", "pad": 2})
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
           f"{100 * len(short) / n:.1f} % of runs run short; bars add up to 100 % with the grey one")
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
    colors = np.where(pr >= 0, "#2166ac", "#b2182b")
    ax.barh(y, pr, color=colors, height=0.6, label="PRCC")
    ax.errorbar(pr, y, xerr=[pr - lo, hi - pr], fmt="none", ecolor="black", elinewidth=1, capsize=3,
                label="95 % CI")
    ax.plot(sp, y, "o", color="white", mec="black", ms=4, label="Spearman", zorder=5)
    ax.axvline(0, color="black", lw=0.8)
    if not rows:
        ax.text(0.5, 0.5, f"no ranking: {res['outcome']} is the same in every run", transform=ax.transAxes,
                ha="center", va="center", fontsize=10, bbox={"facecolor": "white", "edgecolor": "0.5"})
    ax.set_yticks(y, [r["parameter"] for r in rows], fontsize=8.5)
    ax.set_xlim(-1, 1)
    ax.set_xlabel("rank correlation with the outcome (blue: raises it, red: lowers it)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    what = res["outcome"] + (" (never short = horizon + 1)" if res["outcome"] == "first_shortage_day" else "")
    _title(ax, ds, f"what drives {what}", f"partial rank correlation (PRCC), top {len(rows)} of {res['parameters']}")
    return fig


def sweep(ds: xr.Dataset, ax: Axes | None = None, *, outcome: str | None = None, **_kw) -> Figure:
    """An outcome against the swept value: P(any shortage) with its 95 % Wilson interval (default), or
    the mean of a per-run variable with ±1.96 standard errors."""
    if "variant" not in ds.dims:
        raise ResultsError("--kind sweep needs a sweep file (with a variant dimension); this file has none")
    fig, ax = _figure(ax)
    nv = ds.sizes["variant"]
    vary = [k for k in ds.variables if str(k).startswith("vary_")]
    if len(vary) == 1:
        x = np.asarray(ds[vary[0]].values, dtype=np.float64)
        xlabel = str(ds[vary[0]].attrs.get("path", vary[0]))
        ticks = None
    else:
        x = np.arange(nv, dtype=np.float64)
        xlabel = "variant"
        ticks = ([str(v) for v in ds["variant_label"].values] if "variant_label" in ds.variables
                 else [str(i) for i in range(nv)])
    est, lo, hi = np.empty(nv), np.empty(nv), np.empty(nv)
    if outcome in (None, "p_any_shortage"):
        for i in range(nv):
            f = np.asarray(ds["first_shortage_day"].isel(variant=i).values, dtype=np.float64)
            k, n = int(np.isfinite(f).sum()), len(f)
            est[i] = 100 * k / n
            lo_i, hi_i = wilson(np.array([k]), n)
            lo[i], hi[i] = 100 * lo_i[0], 100 * hi_i[0]
        ylabel, what, note = "P(any shortage day within the horizon) (%)", "probability of any shortage", \
            "bars: 95 % Wilson interval"
    else:
        from artysim.analysis.sensitivity import outcome_values

        for i in range(nv):
            v, _, desc = outcome_values(ds.isel(variant=i), outcome)
            est[i] = float(np.mean(v))
            se = float(np.std(v, ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
            lo[i], hi[i] = est[i] - Z95 * se, est[i] + Z95 * se
        ylabel, what, note = f"mean {desc}", f"mean {outcome}", "bars: ±1.96 Monte Carlo standard errors"
        if outcome != "first_shortage_day" and "rounds" in desc:
            _rounds_axis(ax)
    ax.errorbar(x, est, yerr=[np.maximum(est - lo, 0), np.maximum(hi - est, 0)], fmt="o-", color="#2166ac",
                capsize=4, lw=1.5)
    if ticks is not None:
        ax.set_xticks(x, ticks, rotation=20, ha="right", fontsize=8)
    elif np.nanmax(np.abs(x)) >= 1e4:  # 2 M rather than 2 with a "1e6" offset in the corner
        _rounds_axis(ax, "x")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    runs = int(ds.sizes.get("run", 0))
    ax.set_title(f"{_name(ds)}: {what} across {nv} variants\n{runs:,} runs per variant "
                 f"(common random numbers); {note}", fontsize=11, loc="left")
    return fig


# ----------------------------------------------------------------------------- saving


def plot(ds: xr.Dataset, kind: str, **kw) -> Figure:
    """The figure of one kind (dispatcher for the CLI and the accessor)."""
    if kind not in KINDS:
        raise ArtysimError(f"--kind must be one of {', '.join(KINDS)} (found {kind!r})")
    return globals()[kind](ds, **kw)


def check_output(path: str | Path, force: bool) -> tuple[Path, str]:
    """Refuse an unknown extension, a missing folder or an existing file (without force) before drawing."""
    p = Path(path)
    ext = p.suffix.lower().lstrip(".")
    if ext not in FORMATS:
        raise ArtysimError(f"-o {p}: expected a .png or .svg file name (found {p.suffix or 'no extension'!r})")
    if p.exists() and not force:
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
