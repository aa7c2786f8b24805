"""The plot kinds of issue 15: compare (A against B), heatmap (two-parameter sweep), swing (tornado in outcome
units), the censoring-aware sweep statistic, and the colour-blind-safe palette. What is drawn is checked
against numbers computed here from the files, and wrong requests are refused with one line."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from support import assert_refused, header

from artysim.analysis import compare as cmp
from artysim.analysis import palette, plots
from artysim.analysis.sensitivity import outcome_values
from artysim.analysis.stats import censored_percentiles
from artysim.cli import main
from artysim.jobs import run as runner
from artysim.jobs import sweep as sweeper
from artysim.results.reader import open_file

SCENARIO = header(150, name="kinds", sample=10) + """
[demand]
base = { dist = "uniform", low = 2000, high = 6000 }
daily_cv = 0.2

[[source]]
name = "depot"
kind = "stockpile"
initial = { dist = "uniform", low = 150000, high = 600000 }
dud_rate = { dist = "uniform", low = 0, high = 0.3 }

[[source]]
name = "factory"
kind = "production"
annual = { dist = "triangular", min = 200000, mode = 400000, max = 600000 }
dud_rate = 0.05
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("kinds")
    (d / "s.toml").write_text(SCENARIO)
    s = str(d / "s.toml")
    out = {"dir": d}
    out["a"] = runner.run(s, runs=800, seed=5, output=d / "a.nc", quiet=True)
    out["b"] = runner.run(s, runs=800, seed=5, output=d / "b.nc", quiet=True, sets=["demand.base=3000"])
    out["c"] = runner.run(s, runs=800, seed=6, output=d / "c.nc", quiet=True, sets=["demand.base=3000"])
    out["sweep2"] = sweeper.run_sweep(s, ["source.factory.annual=2e5,6e5", "demand.base=2500,4000,5500"],
                                      d / "sweep2.nc", runs=300, seed=5, quiet=True)
    out["sweep1"] = sweeper.run_sweep(s, ["demand.base=2500,4000,5500"], d / "sweep1.nc", runs=300, seed=5,
                                      quiet=True)
    return out


def _open(p):
    with open_file(p) as ds:
        return ds.load()


@pytest.fixture(scope="module")
def a(files):
    return _open(files["a"])


@pytest.fixture(scope="module")
def b(files):
    return _open(files["b"])


@pytest.fixture(scope="module")
def sw2(files):
    return _open(files["sweep2"])


def test_compare_draws_both_depletion_curves_and_the_paired_delays(a, b):
    fig = plots.plot(a, "compare", against=b)
    left, right = fig.axes
    la, lb = left.lines[:2]
    np.testing.assert_allclose(la.get_ydata(), 100 * a.p_depleted.values, rtol=1e-12)
    np.testing.assert_allclose(lb.get_ydata(), 100 * b.p_depleted.values, rtol=1e-12)
    assert la.get_color() != lb.get_color()
    labels = [t.get_text() for t in left.get_legend().get_texts()]
    assert len(labels) == 2 and labels[0].startswith("A: kinds") and labels[1].startswith("B: kinds")
    assert "A: kinds" in fig._suptitle.get_text() and "B: kinds" in fig._suptitle.get_text()
    top = max(la.get_ydata().max(), lb.get_ydata().max())
    assert left.get_ylim()[1] > top  # nothing clipped
    # the delays: B's first shortage day minus A's among runs where A runs short
    fa, fb = a.first_shortage_day.values, b.first_shortage_day.values
    sel = np.isfinite(fa)
    both = sel & np.isfinite(fb)
    assert 50 < sel.sum() < 800 and (sel & ~np.isfinite(fb)).sum() > 10  # both kinds of runs exist
    finite, censored = right.containers
    shares = np.array([p.get_height() for p in finite.patches])
    edges = [p.get_x() for p in finite.patches] + [finite.patches[-1].get_x() + finite.patches[-1].get_width() / 0.9]
    counts = np.histogram(fb[both] - fa[both], bins=np.array(edges))[0]
    np.testing.assert_allclose(shares, 100 * counts / sel.sum(), rtol=1e-9)
    assert counts.sum() == both.sum()
    assert censored.patches[0].get_height() == pytest.approx(100 * (sel & ~np.isfinite(fb)).sum() / sel.sum())
    mean = cmp.compare(a, b)["first_shortage_day"]["delay_where_a_short"]["mean"][0]
    assert f"mean ≥ {mean:.1f}" in right.get_title(loc="left")


def test_compare_of_unpaired_files_says_unpaired(a, files):
    c = _open(files["c"])
    fig = plots.plot(a, "compare", against=c)
    texts = " ".join(t.get_text() for t in fig.axes[1].texts)
    assert "unpaired" in texts and "different seeds" in texts
    assert not fig.axes[1].containers


def test_heatmap_cells_are_p_any_shortage_by_the_two_varied_values(sw2):
    fig = plots.plot(sw2, "heatmap")
    ax = fig.axes[0]
    m = ax.images[0].get_array()
    assert m.shape == (2, 3)
    for i in range(sw2.sizes["variant"]):
        v = sw2.isel(variant=i)
        r = [2e5, 6e5].index(float(v.vary_0))
        c = [2500, 4000, 5500].index(float(v.vary_1))
        assert m[r, c] == pytest.approx(100 * np.isfinite(v.first_shortage_day.values).mean())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2500", "4000", "5500"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["200 k", "600 k"]
    assert ax.get_xlabel() == "demand.base" and ax.get_ylabel() == "source.factory.annual"
    assert "(%)" in fig.axes[1].get_ylabel()  # the colour bar says its unit
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.get_xticklabels()]
    assert not any(b1.overlaps(b2) for b1, b2 in zip(boxes, boxes[1:]))


def test_heatmap_and_sweep_of_first_shortage_day_use_the_censored_median(sw2):
    horizon = sw2.sizes["time"]
    want = []
    for i in range(sw2.sizes["variant"]):
        f = sw2.isel(variant=i).first_shortage_day.values
        want.append(censored_percentiles(f, horizon, (0.5,))[0.5])
    assert any(w is None for w in want) and any(w is not None for w in want)  # both cases drawn
    ax = plots.plot(sw2, "heatmap", outcome="first_shortage_day").axes[0]
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == sorted(f"> {horizon}" if w is None else f"{w:.0f}" for w in want)
    ax = plots.plot(sw2, "sweep", outcome="first_shortage_day").axes[0]
    drawn = {}
    for line in ax.lines:  # one line per value of the second path, points in variant order
        if line.get_linestyle() == "-" and len(line.get_ydata()) == 2:
            drawn[line.get_label()] = list(line.get_ydata())
    assert sorted(drawn) == [f"demand.base = {v}" for v in ("2500", "4000", "5500")]
    for k, v in enumerate((2500, 4000, 5500)):
        got = drawn[f"demand.base = {v}"]
        exp = [horizon if want[i] is None else want[i] for i in (k, 3 + k)]
        assert got == pytest.approx(exp)


def test_swing_bars_are_top_minus_bottom_decile_means(a):
    fig = plots.plot(a, "swing", outcome="shortfall_total")
    ax = fig.axes[0]
    y, _, _ = outcome_values(a, "shortfall_total")
    x = a.parameters.values
    names = [str(p) for p in a.parameter.values]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    widths = [p.get_width() for p in ax.containers[0].patches]
    assert len(labels) == 4  # the four sampled inputs (the factory's dud rate is fixed)
    for lab, w in zip(labels, widths):
        xj = x[:, names.index(lab)]
        lo, hi = np.quantile(xj, [0.1, 0.9])
        assert w == pytest.approx(y[xj >= hi].mean() - y[xj <= lo].mean())
    assert [abs(w) for w in widths] == sorted((abs(w) for w in widths), reverse=True)
    assert labels[0] == "demand.base" and widths[0] > 0  # more demand, more shortfall
    assert "rounds" in ax.get_xlabel()
    assert fig.axes[1].get_title(loc="left").startswith("the correlation tornado")


def test_sources_colour_means_the_source_only(a):
    fig = plots.plot(a, "sources")
    left, right = fig.axes
    line_colours = {line.get_label().split(":")[0]: line.get_color() for line in left.lines}
    assert len(set(line_colours.values())) == 2
    names = [str(s) for s in a.source.values]
    assert len(right.containers) == 4  # effective, duds, missed, not fired
    for container in right.containers:
        for name, patch in zip(names, container.patches):  # one bar per source, in file order
            assert patch.get_edgecolor() == pytest.approx(to_rgba(line_colours[name]))


@pytest.mark.parametrize("kind", ["fan", "depletion", "sources", "histogram", "tornado", "swing", "stock"])
def test_every_kind_uses_the_palette(kind, a):
    from matplotlib.colors import to_hex

    fig = plots.plot(a, kind)
    old = {"#b2182b", "#2166ac", "#1a9850", "#d73027", "#fdae61"}  # the red/green pairs of before
    for ax in fig.axes:
        for artist in list(ax.lines) + list(ax.patches) + list(ax.collections):
            for getter in ("get_color", "get_facecolor", "get_edgecolor"):
                try:
                    c = getattr(artist, getter)()
                except AttributeError:
                    continue
                cs = np.atleast_2d(c) if not isinstance(c, str) else [c]
                for one in cs:
                    if len(one):
                        assert to_hex(one) not in old, (kind, artist)
    assert palette.CYCLE[0] == palette.BLUE


def test_cli_new_kinds_write_pictures_and_refuse_wrong_requests(files, tmp_path):
    r = CliRunner()
    out = tmp_path / "cmp.png"
    res = r.invoke(main, ["plot", str(files["a"]), "--kind", "compare", "--against", str(files["b"]), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert_refused(r.invoke(main, ["plot", str(files["a"]), "--kind", "compare", "-o", str(tmp_path / "x.png")]),
                   "--against")
    assert_refused(r.invoke(main, ["plot", str(files["a"]), "--kind", "fan", "--against", str(files["b"]),
                                   "-o", str(tmp_path / "x.png")]), "--against")
    assert_refused(r.invoke(main, ["plot", str(files["sweep1"]), "--kind", "heatmap", "-o",
                                   str(tmp_path / "x.png")]), "two varied parameters", "varies 1")
    assert_refused(r.invoke(main, ["plot", str(files["a"]), "--kind", "heatmap", "-o", str(tmp_path / "x.png")]),
                   "sweep file")
    res = r.invoke(main, ["plot", str(files["sweep2"]), "--kind", "heatmap", "-o", str(tmp_path / "h.svg")])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["plot", str(files["a"]), "--kind", "swing", "-o", str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp.png", "h.svg", "s.png"]


def test_accessor_draws_the_new_kinds(a, files, sw2):
    assert isinstance(a.artysim.plot.compare(files["b"]), Figure)
    assert isinstance(a.artysim.plot.swing(), Figure)
    assert isinstance(sw2.artysim.plot.heatmap(), Figure)


def test_sweep_of_a_fill_rate_plots_summary_s_ratio_of_means(sw2):
    from artysim.analysis import summary

    ax = plots.plot(sw2, "sweep", outcome="effective_fill_rate").axes[0]
    s = summary.summarize(sw2)["variants"]
    drawn = {line.get_label(): list(line.get_ydata()) for line in ax.lines if line.get_label().startswith("demand")}
    for k, v in enumerate((2500, 4000, 5500)):
        want = [s[i]["effective_fill_rate"][0] for i in (k, 3 + k)]
        assert drawn[f"demand.base = {v}"] == pytest.approx(want, rel=1e-12)


def test_stock_draws_each_source_s_median_band_and_run_out_day(a):
    """--kind stock: per source the file's median stock over time (and its 25-75 % band), the day that
    median first reaches zero named in the legend, the mean arrivals by source and the median days of fire."""
    from artysim.errors import ArtysimError

    fig = plots.plot(a, "stock")
    ax, ax_a, ax_d = fig.axes
    qs = a["quantile"].values
    med = int(np.argmin(np.abs(qs - 0.5)))
    sq = a["stock_by_source_quantile"].values
    names = [str(x) for x in a["source"].values]
    medians = [ln for ln in ax.lines if len(ln.get_xdata()) == a.sizes["time"]]
    assert len(medians) == len(names)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    ran_out = 0
    for j, (line, label) in enumerate(zip(medians, labels)):
        np.testing.assert_array_equal(line.get_ydata(), sq[:, j, med])
        assert line.get_color() == palette.category(j) and label.startswith(names[j])
        curve = sq[:, j, med]
        first_held = int(np.argmax(curve > 0)) if np.any(curve > 0) else len(curve)
        zero = first_held + np.flatnonzero(curve[first_held:] <= 0)  # out only after holding stock
        if len(zero):
            ran_out += 1
            day = np.datetime64(a.attrs["start_date"]) + np.timedelta64(int(zero[0]), "D")
            assert f"median run out {day}" in label
        else:
            assert "run out" not in label
    assert ran_out >= 1  # the depot runs out in the median run of this scenario: the label is tested
    assert len(ax.collections) == len(names)  # one band per source
    for j, line in enumerate(ax_a.lines):
        np.testing.assert_array_equal(line.get_ydata(), a["arrivals_by_source_mean"].values[:, j])
    np.testing.assert_array_equal(ax_d.lines[-1].get_ydata(), a["days_on_hand_quantile"].values[:, med])
    with pytest.raises(ArtysimError, match="no per-day stock by source"):
        plots.plot(a.drop_vars("stock_by_source_quantile"), "stock")


@pytest.mark.parametrize(("median", "day"), [
    ([5.0, 3.0, 0.0, 0.0, 2.0], 2),        # drawn down to zero on day 2
    ([0.0, 0.0, 4.0, 1.0, 0.0, 0.0], 4),   # an import: empty until its first arrival, out on day 4
    ([0.0, 0.0, 4.0, 1.0, 2.0], None),     # arrives and never runs out
    ([0.0, 0.0, 0.0], None),               # never holds stock: never "runs out"
    ([3.0, 2.0, 1.0], None),
])
def test_run_out_day_is_the_first_zero_after_stock_was_held(median, day):
    assert plots.run_out_day(np.array(median)) == day
