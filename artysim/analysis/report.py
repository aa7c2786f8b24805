"""``artysim report``: a study report an analyst can send, as ONE self-contained HTML file.

Nothing is fetched when it is opened: the style sheet is inline, the plots are inline SVG with their
text drawn as paths (no fonts), and there is no script. The only links are the sources of the cited
figures in the provenance table, plain ``<a href>`` that a reader may follow or not.

Every number shown comes from the functions behind ``summary --format json`` and ``compare --format
json`` (:func:`artysim.analysis.summary.summarize`, :func:`artysim.analysis.compare.compare`) and is
marked ``<span data-key="PATH" data-file="I">`` (or ``data-compare="I"``: file I against file 0), PATH
the dotted path of the value in that JSON (``fill_rate.0``, ``sources.2.received.0``,
``first_shortage_day.delay_where_a_short.mean.0``), ``data-unit="%"`` when it is shown in per cent:
a test reads the rendered page and checks each against the JSON.

Sections a file may add: :data:`SECTIONS` lists the optional ones (calibration weights, ...), each a
function of the report context returning HTML or ``None`` when the file has nothing for it; other
features register theirs with :func:`section`.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tomllib

from artysim.errors import ArtysimError, ResultsError
from artysim.results.atomic import AtomicFile, check_target
from artysim.version import __version__

if TYPE_CHECKING:
    import xarray as xr

FORMATS = ("html", "pdf")
#: single-file plot kinds in the report, in order, with a caption each
PLOTS = (
    ("fan", "Stock on hand over time: bands hold 50 % and 90 % of runs on each date; grey lines are single runs."),
    ("depletion", "Share of runs that have run short by each date (first shortage day), and that are short on it."),
    ("histogram", "When runs first run short, by month; the hatched bar is the runs never short within the horizon."),
    ("sources", "What each source delivered: rounds per day, and totals split into effective rounds, duds and misses."),
)
MAX_FILES = 8


# ----------------------------------------------------------------------------- context


@dataclass
class Item:
    """One results file of the report."""

    label: str  # what the reader calls it: "A: baseline-2023"
    path: str
    ds: xr.Dataset
    summary: dict
    sweep: bool


@dataclass
class Context:
    items: list[Item]
    comparisons: list[tuple[int, dict]] = field(default_factory=list)  # (index of B, compare(A=0, B))
    not_compared: list[tuple[int, str]] = field(default_factory=list)  # (index of B, why compare refused)


#: optional sections, each ``fn(ctx) -> html or None`` (None: the files have nothing for it)
SECTIONS: list[tuple[str, Callable[[Context], str | None]]] = []


def section(title: str):
    """Register an optional section (e.g. stress results): ``@section("Stress") def f(ctx): ...``."""

    def deco(fn):
        SECTIONS.append((title, fn))
        return fn

    return deco


# ----------------------------------------------------------------------------- formatting


def esc(x) -> str:
    return html.escape(str(x), quote=True)


def num(value, key: str, *, where: str, unit: str = "", digits: int = 0, sign: bool = False) -> str:
    """A number as shown, marked for the test: ``unit="%"`` shows a fraction in per cent."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return f'<span class="na" data-key="{esc(key)}" {where} data-null="1">n/a</span>'
    v = 100 * float(value) if unit == "%" else float(value)
    text = f"{v:+,.{digits}f}" if sign else f"{v:,.{digits}f}"
    text = text.replace("-", "−")
    u = ' data-unit="%"' if unit == "%" else ""
    return f'<span class="n" data-key="{esc(key)}" {where}{u} data-digits="{digits}">{text}</span>'


def pair(p, key: str, *, where: str, unit: str = "", digits: int = 0, sign: bool = False) -> str:
    """``value ± se`` of a [value, se] pair at ``key`` (``key.0`` and ``key.1``)."""
    pct = "\u00a0%" if unit == "%" else ""
    s = num(p[0], f"{key}.0", where=where, unit=unit, digits=digits, sign=sign) + pct
    if p[1] is not None and not (isinstance(p[1], float) and math.isnan(p[1])):
        s += ' <span class="se">± ' + num(p[1], f"{key}.1", where=where, unit=unit, digits=digits) + pct + "</span>"
    return s


def _fig_svg(fig) -> str:
    """A figure as inline SVG: no XML prolog, DOCTYPE or metadata (they name external URLs), scaled to
    the page width."""
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    s = buf.getvalue().decode("utf-8")
    s = s[s.index("<svg"):]
    s = re.sub(r"<metadata>.*?</metadata>", "", s, flags=re.S)
    # path coordinates to 1/100 pt: a third of the size, no visible change (only in d="...": scales stay exact)
    s = re.sub(r'\sd="([^"]*)"', lambda m: ' d="' + re.sub(r"(\.\d\d)\d+", r"\1", m.group(1)) + '"', s)
    s = re.sub(r'<svg([^>]*?)\swidth="([\d.]+)pt"\s+height="([\d.]+)pt"',
               lambda m: f'<svg{m.group(1)} width="100%" style="max-width:{m.group(2)}pt;height:auto"', s, count=1)
    return s


def _plot(kind: str, ds, caption: str, **kw) -> str:
    from artysim.analysis import plots

    try:
        fig = plots.plot(ds, kind, **kw)
    except ArtysimError as e:
        return f'<p class="note">{esc(kind)} plot not drawn: {esc(e)}</p>'
    return (f'<figure class="plot" data-kind="{esc(kind)}">{_fig_svg(fig)}'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def _scenario_doc(ds) -> dict:
    try:
        return tomllib.loads(str(ds.attrs.get("scenario_toml", "")))
    except tomllib.TOMLDecodeError:
        return {}


def _question(ds) -> str:
    """The scenario's description, and the "Question:" paragraph of its header comment if it has one."""
    text = str(ds.attrs.get("scenario_toml", ""))
    desc = str(_scenario_doc(ds).get("scenario", {}).get("description", "") or ds.attrs.get("comment", ""))
    q: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"#\s*Question:", line):
            q.append(line.lstrip("# ").removeprefix("Question:").strip())
            for nxt in lines[i + 1:]:
                body = nxt.lstrip("#").strip()
                if not nxt.startswith("#") or not body:
                    break
                q.append(body)
            break
    question = " ".join(q)
    if "?" in question:  # the question itself, not the notes that follow it
        question = question[: question.index("?") + 1]
    return desc, question[:1].upper() + question[1:]


# ----------------------------------------------------------------------------- sections


def _head_rows(items: list[Item]) -> str:
    single = [(i, it) for i, it in enumerate(items) if not it.sweep]
    if not single:
        return ""
    start = {i: dt.date.fromisoformat(it.summary["start_date"]) for i, it in single}

    def row(label, cell, note=""):
        cells = "".join("<td>" + cell(i, it.summary, f'data-file="{i}"') + "</td>" for i, it in single)
        return f"<tr><th>{esc(label)}</th>{cells}<td class='note'>{esc(note)}</td></tr>"

    def pct_cell(i, s, q, w):
        v = s["first_shortage_day_percentiles"][q]
        if v is None:
            return (f'<span class="beyond" data-key="first_shortage_day_percentiles.{q}" {w} data-null="1">'
                    "beyond the horizon</span>")
        day = start[i] + dt.timedelta(days=int(v))
        return (f"day {num(v, f'first_shortage_day_percentiles.{q}', where=w)} "
                f"<span class='date'>({day.isoformat()})</span>")

    rows = [
        row("P(any shortage day within the horizon)",
            lambda i, s, w: pair([s["p_any_shortage"], s["p_any_shortage_se"]], "p_any_shortage", where=w,
                                 unit="%", digits=2).replace('data-key="p_any_shortage.0"', 'data-key="p_any_shortage"')
            .replace('data-key="p_any_shortage.1"', 'data-key="p_any_shortage_se"')
            + " <span class='ci'>(95 % Wilson "
            + num(s["p_any_shortage_ci95"][0], "p_any_shortage_ci95.0", where=w, unit="%", digits=2) + "–"
            + num(s["p_any_shortage_ci95"][1], "p_any_shortage_ci95.1", where=w, unit="%", digits=2) + " %)</span>",
            "share of runs with at least one day short"),
    ]
    for q in items[single[0][0]].summary["first_shortage_day_percentiles"]:
        rows.append(row(f"first shortage day, {round(float(q) * 100)}th percentile",
                        lambda i, s, w, q=q: pct_cell(i, s, q, w),
                        "over all runs; never short = beyond the horizon" if q == "0.5" else ""))
    for key, label, digits, unit, note in (
            ("shortage_days", "shortage days per run", 2, "", "days"),
            ("shortfall_total", "shortfall per run", 0, "", "rounds wanted but not fired"),
            ("demand_total", "rounds wanted per run", 0, "", "rounds"),
            ("fired_total", "rounds fired per run", 0, "", "rounds"),
            ("effective_total", "effective rounds per run", 0, "", "not duds, on target"),
            ("fill_rate", "fill rate", 2, "%", "fired / wanted"),
            ("effective_fill_rate", "effective fill rate", 2, "%", "effective / wanted"),
            ("stock_final", "stock at the end", 0, "", "rounds, all sources"),
            ("stock_min", "lowest stock", 0, "", "rounds, all sources")):
        rows.append(row(label, lambda i, s, w, key=key, digits=digits, unit=unit:
                        pair(s[key], key, where=w, unit=unit, digits=digits), note))
    for key, label in (("rationed_days", "rationed days per run"), ("depot_strikes", "depot strikes per run")):
        if any(it.summary.get(key) and it.summary[key][0] > 0 for _, it in single):
            rows.append(row(label, lambda i, s, w, key=key: pair(s[key], key, where=w, digits=2)
                            if s.get(key) else "n/a"))
    heads = "".join(f"<th>{esc(it.label)}<br><span class='sub'>{it.summary['runs']:,} runs</span></th>"
                    for _, it in single)
    return (f"<table class='headline'><thead><tr><th></th>{heads}<th></th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _sweep_rows(i: int, it: Item) -> str:
    s = it.summary
    w = f'data-file="{i}"'
    rows = []
    for v in s["variants"]:
        k = f"variants.{v['variant']}"
        med = v["first_shortage_day_median"]
        med_s = ("beyond the horizon" if med is None else
                 "day " + num(med, f"{k}.first_shortage_day_median", where=w))
        rows.append(
            f"<tr><td>{v['variant']}</td><td>{esc(v['label'])}</td><td>{v['runs']:,}</td>"
            f"<td>{pair([v['p_any_shortage'], v['p_any_shortage_se']], k + '.p', where=w, unit='%', digits=1)}</td>"
            f"<td>{med_s}</td><td>"
            + pair(v["effective_fill_rate"], k + ".effective_fill_rate", where=w, unit="%", digits=2)
            + f"</td><td>{pair(v['shortfall_total'], k + '.shortfall_total', where=w)}</td></tr>")
    html_ = "".join(rows)
    html_ = re.sub(r'data-key="(variants\.\d+)\.p\.0"', r'data-key="\1.p_any_shortage"', html_)
    html_ = re.sub(r'data-key="(variants\.\d+)\.p\.1"', r'data-key="\1.p_any_shortage_se"', html_)
    return ("<table class='sources'><thead><tr><th>#</th><th>variant</th><th>runs</th><th>P(any shortage)</th>"
            "<th>median first shortage</th><th>effective fill rate</th><th>shortfall, rounds per run</th></tr>"
            f"</thead><tbody>{html_}</tbody></table>")


def _sources_table(i: int, it: Item) -> str:
    w = f'data-file="{i}"'
    rows = []
    for j, src in enumerate(it.summary["sources"]):
        k = f"sources.{j}"
        rows.append(
            f"<tr><th>{esc(src['name'])}</th><td>{esc(src['kind'])}</td>"
            + "".join(f"<td>{pair(src[v], f'{k}.{v}', where=w)}</td>"
                      for v in ("initial", "received", "fired", "duds", "effective"))
            + f"<td>{pair(src['dud_fraction'], f'{k}.dud_fraction', where=w, unit='%', digits=1)}</td>"
            + f"<td>{pair(src['share_of_effective'], f'{k}.share_of_effective', where=w, unit='%', digits=1)}</td>"
            "</tr>")
    return ("<table class='sources'><thead><tr><th>source</th><th>kind</th><th>on hand, day 0</th>"
            "<th>received</th><th>fired</th><th>duds</th><th>effective</th><th>duds / fired</th>"
            "<th>share of effective</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
            "<p class='note'>Rounds per run over the horizon, mean ± one Monte Carlo standard error.</p>")


def _calibrated_note(i: int, it: Item) -> str:
    """The line under the headline table saying a file is calibrated and its answers weighted."""
    cal = it.summary["calibration"]
    return (f"<p class='calibrated'><b>{esc(it.label)} is calibrated</b> on the observations "
            f"{esc(cal['calibrated_on'])}: every answer above is weighted by the runs' calibration weights, its ± "
            "from the effective sample size of "
            + num(cal["effective_sample_size"], "calibration.effective_sample_size", where=f'data-file="{i}"',
                  digits=1)
            + f" (of {it.summary['runs']:,} runs).</p>")


def _comparison(ctx: Context, bi: int, c: dict) -> str:
    from artysim.analysis.compare import calibration_text

    a, b = ctx.items[0], ctx.items[bi]
    w = f'data-compare="{bi}"'
    out = [f"<h3>{esc(b.label)} against {esc(a.label)}</h3>",
           f"<p class='pairing {'paired' if c['paired'] else 'unpaired'}'>"
           f"<b>{'paired' if c['paired'] else 'NOT paired'}</b>: {esc(c['pairing'])}</p>"]
    if c.get("calibration"):
        out.append(f"<p class='calibrated'>{esc(calibration_text(c))}</p>")
    p = c["p_any_shortage"]
    out.append("<table class='compare'><tbody>"
               "<tr><th>P(any shortage day)</th><td>A "
               + pair(p["a"][:2], "p_any_shortage.a", where=w, unit="%", digits=2)
               + f"</td><td>B {pair(p['b'][:2], 'p_any_shortage.b', where=w, unit='%', digits=2)}</td>"
               "<td>B − A " + pair(p["difference"], "p_any_shortage.difference", where=w, unit="%", digits=2, sign=True)
               + "</td></tr></tbody></table>")
    f = c["first_shortage_day"]
    if c["paired"]:
        d = f["delay_where_a_short"]
        ge = "≥ " if d["mean_is_lower_bound"] else ""
        pcts = []
        for q, v in d["percentiles"].items():
            exact = d["percentile_is_exact"][q]
            up = d["percentiles_upper"][q]
            key = f"first_shortage_day.delay_where_a_short.percentiles.{q}"
            if exact:
                s = num(v, key, where=w)
            elif up is not None:
                s = num(v, key, where=w) + "–" + num(up, key.replace(".percentiles.", ".percentiles_upper."), where=w)
            else:
                s = "≥ " + num(v, key, where=w)
            pcts.append(f"p{round(float(q) * 100)} {s}")
        out.append(
            "<p>Run by run, B's first shortage comes later in "
            + pair(f["p_b_later"], "first_shortage_day.p_b_later", where=w, unit="%", digits=1)
            + " of runs, earlier in "
            + pair(f["p_b_earlier"], "first_shortage_day.p_b_earlier", where=w, unit="%", digits=1)
            + f", the same in {pair(f['p_same'], 'first_shortage_day.p_same', where=w, unit='%', digits=1)}.</p>"
            + f"<p class='delay'>Delay of the first shortage where A runs short "
            f"({num(d['runs'], 'first_shortage_day.delay_where_a_short.runs', where=w)} runs): mean {ge}"
            + pair(d["mean"], "first_shortage_day.delay_where_a_short.mean", where=w, digits=1)
            + " days; " + ", ".join(pcts) + " days.</p>"
            + (f"<p class='note'>In {d['runs_b_never_short']:,} of these runs B never runs short within the "
               "horizon: their delay is only known to be at least horizon − A's day, so the mean is a lower "
               "bound and a percentile is a range (a–b) or a lower bound (≥).</p>" if d["runs_b_never_short"] else ""))
    rows = []
    from artysim.analysis.compare import OUTCOMES

    for name, (label, _) in OUTCOMES.items():
        o = c[name]
        digits = 2 if name == "shortage_days" else 0
        vr = (num(o["variance_reduction"], f"{name}.variance_reduction", where=w, unit="%", digits=1) + " %"
              if "variance_reduction" in o else "–")
        pb = o["p_b_better"]
        pb_s = (num(pb[0], f"{name}.p_b_better.0", where=w, unit="%", digits=1) + " %") if pb[0] is not None else "n/a"
        rows.append(f"<tr><th>{esc(label)}</th><td>{pair(o['a'], f'{name}.a', where=w, digits=digits)}</td>"
                    f"<td>{pair(o['b'], f'{name}.b', where=w, digits=digits)}</td>"
                    f"<td>{pair(o['difference'], f'{name}.difference', where=w, digits=digits, sign=True)}</td>"
                    f"<td>{pb_s}</td><td>{vr}</td></tr>")
    out.append("<table class='compare'><thead><tr><th>per run</th><th>A</th><th>B</th><th>B − A</th>"
               "<th>P(B better)</th><th>variance reduction</th></tr></thead><tbody>" + "".join(rows)
               + "</tbody></table>")
    e = c.get("effective_per_delivered_shell")
    if e and e.get("value") and e["value"][0] is not None and e.get("sources"):
        out.append("<p>Effective rounds per delivered shell (" + esc(", ".join(e["sources"])) + "): "
                   + pair(e["value"], "effective_per_delivered_shell.value", where=w, digits=3) + "</p>")
    out.append(_plot("compare", a.ds, "Left: share of runs that have run short by each date, A and B. Right: "
                     "where they pair, B's first shortage day minus A's among runs where A runs short.",
                     against=b.ds))
    return "\n".join(out)


def _sensitivity(i: int, it: Item, top: int = 8) -> str:
    from artysim.analysis import sensitivity
    from artysim.analysis.plots import swing_rows

    try:
        res = sensitivity.analyze(it.ds)
        swings = {r["parameter"]: r for r in swing_rows(it.ds)[0]}
    except ArtysimError as e:
        return f"<p class='note'>No sensitivity analysis: {esc(e)}</p>"
    rows = []
    for r in res["rows"][:top]:
        s = swings.get(r["parameter"])
        sw = f"{s['swing']:+.1f} ± {s['se']:.1f}".replace("-", "−") if s else "–"
        rows.append(f"<tr><td>{r['rank']}</td><th>{esc(r['parameter'])}</th><td>{r['prcc']:+.3f}".replace("-", "−")
                    + f" [{r['prcc_ci'][0]:+.2f}, {r['prcc_ci'][1]:+.2f}]".replace("-", "−")
                    + f"</td><td>{sw}</td></tr>")
    cal = ("<p class='calibrated'>Weighted: " + esc(res["method"].split(". ")[0]) + ".</p>"
           if res.get("calibration") else "")
    return (cal + f"<p>Outcome: {esc(res['outcome'])} ({esc(res.get('outcome_description', ''))}).</p>"
            "<table class='sens'><thead><tr><th>rank</th><th>input</th><th>PRCC [95 % CI]</th>"
            "<th>swing, days (top − bottom decile mean, ± 1 SE)</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table>"
            + _plot("swing", it.ds, "Left: the outcome's mean among runs in each input's top decile minus its "
                    "bottom decile, in days (±1.96 SE). Right: partial rank correlations, same order."))


def _cited(ds) -> str:
    from artysim.model import figures

    text = str(ds.attrs.get("scenario_toml", ""))
    try:
        table = figures.read_table()
        ids, files = figures.cited(text, table)
    except (ArtysimError, tomllib.TOMLDecodeError, OSError) as e:
        return f"<p class='note'>Cited figures not listed: {esc(e)}</p>"
    if not ids and not files:
        return "<p class='note'>The scenario cites no rows of the figures table.</p>"
    rows = []
    for rid in ids:
        r = table.get(rid)
        if r is None:
            rows.append(f"<tr><td>{esc(rid)}</td><td colspan='5' class='note'>not in this artysim's figures "
                        "table</td></tr>")
            continue
        url = r["url"].strip()
        link = (f"<a href='{esc(url)}' rel='noreferrer'>{esc(r['source_title'] or url)}</a>"
                if re.match(r"https?://", url) else esc(r["source_title"]))
        value = (r["value"] + " " + r["unit"]).strip()
        rows.append(f"<tr><td>{esc(rid)}</td><td>{esc(r['quantity'])}</td><td>{esc(value)}"
                    f"</td><td>{esc(r['period'])}</td><td>{esc(r['estimated_by'])}</td><td>{link}</td></tr>")
    extra = f"<p class='note'>Also cites: {esc(', '.join(files))}.</p>" if files else ""
    return ("<table class='citations'><thead><tr><th>id</th><th>quantity</th><th>value</th><th>period</th>"
            "<th>estimated by</th><th>source</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>" + extra)


def _provenance(i: int, it: Item) -> str:
    a = it.ds.attrs
    fields = [("file", Path(it.path).name), ("scenario", a.get("scenario_name")),
              ("scenario hash (SHA-256)", a.get("scenario_hash")), ("seed", a.get("seed")),
              ("runs", f"{int(a.get('run_start', 0))}..{int(a.get('run_stop', 0)) - 1} "
                       f"({it.ds.sizes.get('run', 0):,} runs of {a.get('runs_total', '?')})"),
              ("start date, horizon", f"{a.get('start_date')}, {a.get('horizon_days')} days"),
              ("overrides (--set)", a.get("scenario_overrides") or "none"),
              ("written by", f"artysim {a.get('artysim_version', '?')} (results schema "
                             f"{a.get('artysim_schema_version', '?')})"),
              ("history", a.get("history"))]
    if "missing_runs" in a:
        fields.append(("MISSING runs (partial)", a["missing_runs"]))
    if it.sweep:
        fields.append(("varied paths", a.get("sweep_paths")))
    rows = "".join(f"<tr><th>{esc(k)}</th><td><code>{esc(v)}</code></td></tr>" for k, v in fields if v is not None)
    return (f"<h3>{esc(it.label)}</h3><table class='prov' data-file='{i}'><tbody>{rows}</tbody></table>"
            f"<h4>Figures cited</h4>{_cited(it.ds)}"
            f"<details><summary>Scenario text (as run)</summary><pre class='scenario'>"
            f"{esc(a.get('scenario_toml', ''))}</pre></details>")


@section("Calibration")
def _calibration(ctx: Context) -> str | None:
    """Files with calibration weights (a per-run ``weight`` variable): the weighted answer beside the prior
    one (the plain share over all runs; the headline table is weighted), and how many runs the weights
    leave in effect."""
    parts = []
    for it in ctx.items:
        if it.sweep or "weight" not in it.ds.variables:
            continue
        wgt = np.asarray(it.ds["weight"].values, dtype=np.float64)
        short = np.isfinite(np.asarray(it.ds["first_shortage_day"].values, dtype=np.float64))
        tot = wgt.sum()
        if not tot > 0:
            continue
        ess = tot * tot / float(np.sum(wgt * wgt))
        p = float(np.sum(wgt * short) / tot)
        se = math.sqrt(max(p * (1 - p), 0.0) / ess)
        prior = float(short.mean())
        parts.append(f"<p>{esc(it.label)}: calibrated on {esc(str(it.ds.attrs.get('calibrated_on', '')))}: weighted "
                     f"(posterior) P(any shortage) {100 * p:.2f} ± {100 * se:.2f} % (prior, all runs unweighted, "
                     f"{100 * prior:.2f} %); effective sample size {ess:,.0f} of {len(wgt):,} runs.</p>")
    return "".join(parts) or None


# ----------------------------------------------------------------------------- page

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:2em auto;max-width:1100px;
padding:0 1.2em;color:#1a1a1a;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #0072B2;padding-bottom:.15em;margin-top:1.8em}
.sub,.note,.date,figcaption{color:#555;font-size:.9em}.question{font-size:1.1em;background:#f3f7fb;
border-left:4px solid #0072B2;padding:.6em 1em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{padding:.25em .6em;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top}td{font-variant-numeric:tabular-nums}thead th{border-bottom:2px solid #999}
.headline td,.sources td,.compare td{text-align:right;white-space:nowrap}.sources td:nth-child(2){text-align:left}
.headline td.note{text-align:left;white-space:normal}
.paired b{color:#009E73}.unpaired b{color:#D55E00}figure{margin:1em 0}svg{display:block}
pre.scenario{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.8em;white-space:pre-wrap}
code{font-size:.9em;word-break:break-all}nav ol{columns:2}table{max-width:100%}
.sources .se{display:block;font-size:.85em;color:#555}
.citations{table-layout:fixed;width:100%}.citations td{overflow-wrap:anywhere}.citations th:nth-child(1){width:3em}
@media print{body{max-width:none;margin:0}h2{break-after:avoid}figure,table{break-inside:avoid}
details{display:block}details>summary{display:none}}
"""


def build(paths: list[str | Path], *, title: str | None = None) -> str:
    """The report's HTML for one or more results files (file 0 is A; every other file is compared with it)."""
    from artysim.analysis import compare, summary
    from artysim.analysis.stats import jsonable
    from artysim.results.reader import open_results

    if not paths:
        raise ArtysimError("report needs at least one results file")
    if len(paths) > MAX_FILES:
        raise ArtysimError(f"report takes at most {MAX_FILES} results files (found {len(paths)})")
    items: list[Item] = []
    try:
        for k, p in enumerate(paths):
            ds = open_results(p)
            try:
                s = jsonable(summary.summarize(ds))
            except (OSError, RuntimeError) as e:
                raise ResultsError(f"{p}: cannot read its data, damaged? ({type(e).__name__}: {e})") from None
            name = str(ds.attrs.get("scenario_name", Path(str(p)).stem))
            letter = chr(ord("A") + k)
            items.append(Item(f"{letter}: {name}" if len(paths) > 1 else name, str(p), ds, s, "variant" in ds.dims))
        ctx = Context(items)
        for k, it in enumerate(items[1:], start=1):
            if it.sweep or items[0].sweep:
                continue
            try:
                ctx.comparisons.append((k, jsonable(compare.compare(items[0].ds, it.ds))))
            except compare.CompareError:
                continue  # other start dates or horizons: their runs do not line up (no comparison)
            except ResultsError as e:  # e.g. two files calibrated with different weights cannot pair
                ctx.not_compared.append((k, str(e)))
        return _page(ctx, title)
    finally:
        for it in items:
            it.ds.close()


def _page(ctx: Context, title: str | None) -> str:
    items = ctx.items
    names = " vs ".join(it.summary["scenario"] for it in items)
    title = title or f"artysim study report: {names}"
    body: list[str] = [f"<h1>{esc(title)}</h1>",
                       f"<p class='sub'>Made with artysim {esc(__version__)}. Every ± is one Monte Carlo standard "
                       "error (about 68 % of repeated studies would fall within it; 95 % within twice it).</p>"]
    toc: list[tuple[str, str]] = []

    def h2(anchor, text):
        toc.append((anchor, text))
        body.append(f"<h2 id='{anchor}'>{esc(text)}</h2>")

    h2("question", "The question")
    for it in items:
        desc, q = _question(it.ds)
        body.append(f"<div class='question'><b>{esc(it.label)}</b>: {esc(desc)}"
                    + (f"<br><i>{esc(q)}</i>" if q else "") + "</div>")
    h2("answers", "Headline answers")
    head = _head_rows(items)
    if head:
        body.append(head)
        body.append("<p class='note'>Runs that never run short are censored at the horizon: a percentile of the "
                    "first shortage day is a day only if at least that share of runs ran short.</p>")
        body += [_calibrated_note(i, it) for i, it in enumerate(items) if it.summary.get("calibration")]
    for i, it in enumerate(items):
        if it.sweep:
            body.append(f"<h3>{esc(it.label)}: sweep of {esc(', '.join(it.summary['sweep_paths']))}</h3>"
                        + _sweep_rows(i, it))
    if ctx.comparisons or ctx.not_compared:
        h2("comparison", "Comparison")
        for bi, c in ctx.comparisons:
            body.append(_comparison(ctx, bi, c))
        for bi, why in ctx.not_compared:
            body.append(f"<h3>{esc(items[bi].label)} against {esc(items[0].label)}</h3>"
                        f"<p class='note'>Not compared: {esc(why)}</p>")
    h2("plots", "Plots")
    for it in items:
        if len(items) > 1:
            body.append(f"<h3>{esc(it.label)}</h3>")
        if it.sweep:
            body.append(_plot("sweep", it.ds, "P(any shortage) per variant, 95 % Wilson intervals."))
            from artysim.analysis.plots import sweep_paths

            if len(sweep_paths(it.ds)) == 2:
                body.append(_plot("heatmap", it.ds, "P(any shortage) over the two varied parameters."))
            continue
        for kind, caption in PLOTS:
            body.append(_plot(kind, it.ds, caption))
    if any(not it.sweep for it in items):
        h2("sources", "By source")
        for i, it in enumerate(items):
            if not it.sweep:
                body.append((f"<h3>{esc(it.label)}</h3>" if len(items) > 1 else "") + _sources_table(i, it))
        h2("sensitivity", "What drives the answer")
        for i, it in enumerate(items):
            if not it.sweep:
                body.append((f"<h3>{esc(it.label)}</h3>" if len(items) > 1 else "") + _sensitivity(i, it))
    for k, (name, fn) in enumerate(SECTIONS):
        got = fn(ctx)
        if got:
            h2(f"extra-{k}", name)
            body.append(got)
    h2("provenance", "Provenance")
    body.append("<p class='note'>Re-running the scenario text below with the same seed and runs gives these "
                "numbers exactly (run i depends only on scenario, seed and i).</p>")
    for i, it in enumerate(items):
        body.append(_provenance(i, it))
    nav = "<nav><b>Contents</b><ol>" + "".join(f"<li><a href='#{a}'>{esc(t)}</a></li>" for a, t in toc) + "</ol></nav>"
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<meta name='generator' content='artysim {esc(__version__)}'>"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            + body[0] + body[1] + nav + "\n".join(body[2:]) + "</body></html>\n")


# ----------------------------------------------------------------------------- writing


def chromium() -> str | None:
    """The headless browser that prints PDFs: $ARTYSIM_CHROMIUM, else chromium / chromium-browser / chrome."""
    env = os.environ.get("ARTYSIM_CHROMIUM")
    if env:
        return shutil.which(env) or (env if Path(env).is_file() else None)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_args(exe: str) -> list[str]:
    args = [exe, "--headless", "--disable-gpu", "--no-first-run", "--disable-extensions",
            "--disable-background-networking", "--no-default-browser-check"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return args


def check_output(path: str | Path, fmt: str | None, force: bool) -> tuple[Path, str]:
    """The output path and format (from --format or the extension), refused before any work."""
    p = Path(path)
    ext = p.suffix.lower().lstrip(".")
    if fmt is None:
        fmt = "pdf" if ext == "pdf" else "html"
    if fmt not in FORMATS:
        raise ArtysimError(f"--format must be html or pdf (found {fmt!r})")
    want = ("html", "htm") if fmt == "html" else ("pdf",)
    if ext not in want:
        raise ArtysimError(f"-o {p}: expected a .{want[0]} file name for --format {fmt} "
                           f"(found {p.suffix or 'no extension'!r})")
    check_target(p, force)
    if fmt == "pdf" and chromium() is None:
        raise ArtysimError("--format pdf needs Chromium (chromium, chromium-browser or $ARTYSIM_CHROMIUM); "
                           "none found: write --format html and print it from a browser")
    return p, fmt


def write(paths: list[str | Path], output: str | Path, *, fmt: str | None = None, force: bool = False,
          title: str | None = None, timeout: float = 180.0) -> Path:
    """Write the report atomically; refuse an existing output without ``force``."""
    p, fmt = check_output(output, fmt, force)
    page = build(paths, title=title)
    tmp = AtomicFile(p, force=force, doing="writing the report")
    try:
        if fmt == "html":
            tmp.path.write_text(page, encoding="utf-8")
        else:
            with tempfile.TemporaryDirectory(prefix="artysim-report-") as d:
                src = Path(d) / "report.html"
                src.write_text(page, encoding="utf-8")
                args = browser_args(chromium() or "chromium") + [
                    "--no-pdf-header-footer", f"--print-to-pdf={tmp.path}", src.as_uri()]
                try:
                    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                                       env={**os.environ, "HOME": d})
                except subprocess.TimeoutExpired:
                    raise ArtysimError(f"Chromium did not print the PDF within {timeout:.0f} s") from None
                if r.returncode != 0 or not tmp.path.is_file() or tmp.path.stat().st_size == 0:
                    last = (r.stderr.strip().splitlines() or ["no message"])[-1]
                    raise ArtysimError(f"Chromium could not print the PDF (exit {r.returncode}: {last})")
        return tmp.commit()
    finally:
        tmp.discard()
