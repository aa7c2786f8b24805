"""Plots drawn from real files: what is drawn equals the file's numbers, files are written atomically
and never overwritten without --force, bad requests are refused with one line, pyplot is never used."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from matplotlib.figure import Figure
from support import assert_refused, header, leftovers

from artysim.analysis import plots, sensitivity, stats
from artysim.cli import main
from artysim.errors import ArtysimError, ResultsError
from artysim.jobs import run as runner
from artysim.results.reader import open_file as open_results

SCENARIO = header(150, name="plot-test", sample=20) + """
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
accuracy = 0.8
"""
KINDS = ("fan", "depletion", "sources", "histogram", "tornado")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("plots")
    (d / "s.toml").write_text(SCENARIO)
    one = runner.run(str(d / "s.toml"), runs=1500, seed=8, output=d / "one.nc", quiet=True)
    # a sweep file as the contract describes it (demand.base fixed at three values, common random numbers)
    values = [2500.0, 4000.0, 5500.0]
    parts = []
    for i, v in enumerate(values):
        p = runner.run(str(d / "s.toml"), runs=800, seed=8, output=d / f"v{i}.nc", quiet=True,
                       sets=[f"demand.base={v}"])
        with open_results(p) as ds:
            parts.append(ds.load())
    sw = xr.concat(parts, dim="variant", data_vars="all", coords="minimal", compat="override")
    sw = sw.assign_coords(variant=np.arange(3))
    sw["variant_label"] = ("variant", [f"demand.base={v:g}" for v in values])
    sw["vary_0"] = ("variant", values)
    sw["vary_0"].attrs["path"] = "demand.base"
    sw.attrs["sweep_paths"] = json.dumps(["demand.base"])
    sw.to_netcdf(d / "sweep.nc")
    return {"one": one, "sweep": d / "sweep.nc", "values": values, "dir": d}


@pytest.fixture(scope="module")
def ds(files):
    with open_results(files["one"]) as x:
        yield x.load()


def _texts(fig: Figure) -> str:
    parts = [fig._suptitle.get_text()] if fig._suptitle is not None else []
    for ax in fig.axes:
        parts += [ax.get_title(loc=loc) for loc in ("left", "center")]
        parts += [t.get_text() for t in ax.texts]
    return "\n".join(parts)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_draws_titled_figure_and_saves(kind, ds, tmp_path):
    fig = plots.plot(ds, kind)
    assert isinstance(fig, Figure)
    assert "plot-test" in _texts(fig) and "1,500 runs" in _texts(fig)
    png = plots.save(fig, tmp_path / f"{kind}.png")
    svg = plots.save(fig, tmp_path / f"{kind}.svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 300_000
    assert b"<svg" in svg.read_bytes()[:500]
    assert leftovers(tmp_path) == sorted([f"{kind}.png", f"{kind}.svg"])  # no temporary files left


def test_fan_draws_file_quantiles_on_a_date_axis(ds):
    fig = plots.fan(ds)
    ax = fig.axes[0]
    median = next(line for line in ax.lines if line.get_label() == "median")
    x = np.asarray(median.get_xdata())
    assert np.issubdtype(x.dtype, np.datetime64) and str(x[0]) == "2024-01-01"
    q = list(ds["quantile"].values).index(0.5)
    np.testing.assert_array_equal(median.get_ydata(), ds.stock_quantile.values[:, q])
    singles = [line for line in ax.lines if line.get_label() != "median"]
    assert len(singles) == 5
    np.testing.assert_array_equal(singles[0].get_ydata(), ds.stock_sample.values[0])


def test_depletion_draws_p_depleted_and_p_short_in_percent(ds):
    ax = plots.depletion(ds).axes[0]
    dep, short = ax.lines[:2]
    np.testing.assert_allclose(dep.get_ydata(), 100 * ds.p_depleted.values, rtol=1e-12)
    np.testing.assert_allclose(short.get_ydata(), 100 * ds.p_short.values, rtol=1e-12)


def test_histogram_shows_the_censored_share_and_adds_to_100(ds):
    ax = plots.histogram(ds).axes[0]
    fsd = ds.first_shortage_day.values
    never = 100 * np.isnan(fsd).mean()
    assert 5 < never < 95  # the test scenario has both kinds of runs
    monthly, censored = ax.containers  # the bars of the short runs, then the one of the censored runs
    heights = [p.get_height() for p in monthly.patches]
    assert "no shortage within the horizon" in censored.get_label()
    assert sum(heights) == pytest.approx(100 - never, abs=1e-9)  # monthly bars: the short runs
    assert f"{never:.0f} %" in _texts(ax.figure)
    # hand check: share of runs whose first shortage is in January 2024 (days 0..30)
    assert heights[0] == pytest.approx(100 * np.mean(fsd <= 30), abs=1e-9)


def test_sources_bars_are_per_run_means_by_source(ds):
    fig = plots.sources(ds)
    bars = fig.axes[1]
    by_label: dict[str, list[float]] = {}
    for container in bars.containers:
        by_label[container.get_label()] = [p.get_width() for p in container.patches]
    s = list(ds.source.values).index("factory")
    eff = ds.effective_by_source.mean("run").values
    duds = ds.duds.mean("run").values
    fired = ds.fired_by_source.mean("run").values
    assert by_label["fired: effective"][s] == pytest.approx(eff[s], rel=1e-12)
    assert by_label["fired: duds"][s] == pytest.approx(duds[s], rel=1e-12)
    assert by_label["fired: missed target"][s] == pytest.approx(fired[s] - duds[s] - eff[s], rel=1e-9)
    # the time panel draws each source's per-day means from the file
    lines = {ln.get_label(): ln.get_ydata() for ln in fig.axes[0].lines}
    np.testing.assert_array_equal(lines["factory: fired"], ds.fired_by_source_mean.values[:, s])
    np.testing.assert_array_equal(lines["factory: effective"], ds.effective_by_source_mean.values[:, s])
    old = ds.drop_vars(["fired_by_source_mean", "effective_by_source_mean"])  # a file without them
    assert "no per-day data by source" in _texts(plots.sources(old))


def test_tornado_bars_are_the_sensitivity_ranking(ds):
    res = sensitivity.analyze(ds)
    ax = plots.tornado(ds).axes[0]
    bars = ax.containers[0].patches
    ranked = res["rows"]
    assert [t.get_text() for t in ax.get_yticklabels()] == [r["parameter"] for r in ranked]
    assert list(ax.get_yticks()) == list(range(len(ranked)))[::-1]  # rank 1 at the top
    np.testing.assert_allclose([b.get_width() for b in bars], [r["prcc"] for r in ranked], rtol=1e-12)


def test_sweep_plots_p_any_shortage_with_wilson_per_variant(files):
    with open_results(files["sweep"]) as sw:
        fig = plots.sweep(sw)
        fsd = sw.first_shortage_day.values  # variant x run
    ax = fig.axes[0]
    line = ax.lines[0]
    p = 100 * np.isfinite(fsd).mean(axis=1)
    np.testing.assert_allclose(line.get_xdata(), files["values"])
    np.testing.assert_allclose(line.get_ydata(), p, rtol=1e-12)
    assert np.all(np.diff(p) >= 0)  # more demand, same random numbers: never less shortage
    assert ax.get_xlabel() == "demand.base" and "3 variants" in ax.get_title(loc="left")
    with open_results(files["sweep"]) as sw:
        fig = plots.sweep(sw, outcome="shortfall_total")
        means = sw.shortfall_total.mean("run").values
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), means, rtol=1e-12)


def test_sweep_file_and_variants(files, ds):
    with open_results(files["sweep"]) as sw:
        with pytest.raises(ResultsError, match="sweep file with 3 variants"):
            plots.fan(sw)
        ax = plots.depletion(sw, variant=2).axes[0]
        assert "plot-test (demand.base=5500)" in ax.get_title(loc="left")  # which variant is drawn
        np.testing.assert_allclose(ax.lines[0].get_ydata(), 100 * sw.p_depleted.isel(variant=2).values)
    with pytest.raises(ResultsError, match="needs a sweep file"):
        plots.sweep(ds)
    with pytest.raises(ArtysimError, match="--kind must be one of"):
        plots.plot(ds, "pie")


def test_plotting_never_imports_pyplot(files):
    code = ("import sys; from artysim import plots; from artysim.results.reader import open_file as open_results; "
            f"ds = open_results({str(files['one'])!r}); "
            "[plots.plot(ds, k) for k in ('fan', 'depletion', 'sources', 'histogram', 'tornado')]; "
            "print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cli_plot_writes_refuses_and_forces(files, tmp_path):
    one, out = str(files["one"]), tmp_path / "fan.png"
    run = CliRunner().invoke
    r = run(main, ["plot", one, "--kind", "fan", "-o", str(out)], catch_exceptions=False)
    assert r.exit_code == 0 and out.read_bytes()[:4] == b"\x89PNG"
    before = out.read_bytes()
    assert_refused(run(main, ["plot", one, "--kind", "depletion", "-o", str(out)]), "exists", "--force")
    assert out.read_bytes() == before  # untouched
    r = run(main, ["plot", one, "--kind", "depletion", "-o", str(out), "--force"], catch_exceptions=False)
    assert r.exit_code == 0 and out.read_bytes() != before
    assert_refused(run(main, ["plot", one, "--kind", "pie", "-o", str(tmp_path / "p.png")]), "--kind", "pie")
    assert_refused(run(main, ["plot", one, "--kind", "fan", "-o", str(tmp_path / "p.jpg")]), ".png or .svg")
    assert_refused(run(main, ["plot", one, "--kind", "fan", "-o", str(tmp_path / "no" / "p.png")]),
                   "does not exist")
    junk = tmp_path / "junk.nc"
    junk.write_text("hello")
    assert_refused(run(main, ["plot", str(junk), "--kind", "fan", "-o", str(tmp_path / "j.png")]),
                   "not a netCDF file")
    sw = str(files["sweep"])
    assert_refused(run(main, ["plot", sw, "--kind", "fan", "-o", str(tmp_path / "s.png")]), "--variant")
    assert_refused(run(main, ["plot", sw, "--kind", "fan", "--variant", "7", "-o", str(tmp_path / "s.png")]),
                   "--variant must be in 0..2")
    r = run(main, ["plot", sw, "--kind", "sweep", "-o", str(tmp_path / "s.svg")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    r = run(main, ["plot", one, "--kind", "tornado", "--outcome", "effective_total", "-o",
                   str(tmp_path / "t.png")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert leftovers(tmp_path) == ["fan.png", "junk.nc", "s.svg", "t.png"]


def test_scenario_never_short(tmp_path):
    text = header(40, name="never") + """
[demand]
base = { dist = "uniform", low = 100, high = 200 }
daily_cv = 0.1

[[source]]
name = "depot"
kind = "stockpile"
initial = { dist = "uniform", low = 1e6, high = 2e6 }
"""
    (tmp_path / "n.toml").write_text(text)
    out = runner.run(str(tmp_path / "n.toml"), runs=200, seed=1, output=tmp_path / "n.nc", quiet=True)
    with open_results(out) as nds:
        ax = plots.histogram(nds).axes[0]
        monthly, censored = ax.containers
        assert [p.get_height() for p in censored.patches] == [100.0]  # not cut: nothing to flatten
        assert all(p.get_height() == 0 for p in monthly.patches)
        t = plots.tornado(nds)
        assert "no ranking: first_shortage_day is the same in every run" in _texts(t)
        assert "so no input can be ranked" in sensitivity.analyze(nds)["outcome_description"]
        for kind in ("fan", "depletion", "sources"):  # no trajectory sample (trajectory_sample = 0)
            assert isinstance(plots.plot(nds, kind), Figure)


def test_plots_of_a_file_written_by_artysim_sweep(files, tmp_path):
    out = tmp_path / "sw.nc"
    r = CliRunner().invoke(main, ["sweep", str(files["dir"] / "s.toml"), "--vary", "demand.base=2500,5500",
                                  "--runs", "300", "--seed", "8", "-o", str(out), "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    with open_results(out) as sw:
        line = plots.sweep(sw).axes[0].lines[0]
        fsd = sw.first_shortage_day.values
        np.testing.assert_allclose(line.get_xdata(), [2500, 5500])
        np.testing.assert_allclose(line.get_ydata(), 100 * np.isfinite(fsd).mean(axis=1), rtol=1e-12)
        assert "(demand.base=" in plots.histogram(sw, variant=1).axes[0].get_title(loc="left")
        assert "(demand.base=" in sensitivity.analyze(sw, variant=0)["scenario"]


def test_sweep_plot_with_a_variant_never_short(files, tmp_path):
    """P(short) = 0 in one variant and 1 in another: the Wilson bars end exactly at 0 and 100 %
    (a rounding residue once made a negative error bar and a matplotlib error)."""
    lo, hi = stats.wilson(np.array([0, 300]), 300)
    assert lo[0] == 0.0 and hi[1] == 1.0 and hi[0] > 0 and lo[1] < 1
    out = tmp_path / "sw0.nc"
    r = CliRunner().invoke(main, ["sweep", str(files["dir"] / "s.toml"), "--vary", "demand.base=0,1e6",
                                  "--runs", "300", "--seed", "8", "-o", str(out), "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    png = tmp_path / "sw0.png"
    r = CliRunner().invoke(main, ["plot", str(out), "--kind", "sweep", "-o", str(png)])
    assert r.exit_code == 0, r.output
    assert png.stat().st_size > 0
    with open_results(out) as sw:
        np.testing.assert_allclose(plots.sweep(sw).axes[0].lines[0].get_ydata(), [0, 100])
