"""Python API: `artysim.open_results` and the `ds.artysim` accessor give the CLI's numbers."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
import xarray as xr
from click.testing import CliRunner

import artysim
from artysim.cli import main
from artysim.errors import ResultsError
from artysim.jobs import run as runner

REPO = Path(__file__).resolve().parent.parent


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("api")
    a = runner.run(str(REPO / "configs/baseline-2023.toml"), runs=300, output=d / "a.nc", quiet=True)
    b = runner.run(str(REPO / "configs/nk-deal-2023.toml"), runs=300, output=d / "b.nc", quiet=True)
    return a, b


def test_notebook_and_cli_give_the_same_summary(files):
    cli = json.loads(invoke("summary", files[1], "--format", "json").stdout)
    with artysim.open_results(files[1]) as ds:
        assert ds.artysim.summary() == cli
    with xr.open_dataset(files[1]) as ds:  # a plain xarray open gets the accessor too
        assert ds.artysim.summary() == cli


def test_notebook_and_cli_give_the_same_comparison(files):
    cli = json.loads(invoke("compare", files[0], files[1], "--format", "json").stdout)
    with artysim.open_results(files[0]) as a, artysim.open_results(files[1]) as b:
        assert a.artysim.compare(b) == cli
        assert a.artysim.compare(files[1]) == cli  # or given a path


def test_plot_and_sensitivity_delegate_to_their_modules(files, monkeypatch):
    calls = []
    fake_plots = types.ModuleType("artysim.analysis.plots")
    for kind in ("fan", "depletion", "sources", "histogram", "tornado", "sweep"):
        def f(ds, _kind=kind, **kw):
            calls.append((_kind, ds, kw))
            return f"figure {_kind}"
        setattr(fake_plots, kind, f)
    fake_sens = types.ModuleType("artysim.analysis.sensitivity")
    fake_sens.analyze = lambda ds, **kw: ("ranking", ds, kw)
    monkeypatch.setitem(sys.modules, "artysim.analysis.plots", fake_plots)
    monkeypatch.setitem(sys.modules, "artysim.analysis.sensitivity", fake_sens)
    with artysim.open_results(files[0]) as ds:
        assert ds.artysim.plot.fan(ax=None, title="x") == "figure fan"
        assert ds.artysim.plot.tornado(outcome="shortfall_total") == "figure tornado"
        for kind in ("depletion", "sources", "histogram", "sweep"):
            assert getattr(ds.artysim.plot, kind)() == f"figure {kind}"
        assert calls[0] == ("fan", ds, {"ax": None, "title": "x"})
        assert calls[1][2] == {"outcome": "shortfall_total"}
        assert all(c[1] is ds for c in calls) and len(calls) == 6
        assert ds.artysim.sensitivity(outcome="effective_total") == ("ranking", ds, {"outcome": "effective_total"})


@pytest.mark.parametrize("code", [
    "import artysim, xarray as xr; ds = xr.open_dataset(F); print(ds.artysim.summary()['runs'])",
    "import xarray as xr, artysim; ds = xr.open_dataset(F); print(ds.artysim.summary()['runs'])",
    "import artysim; ds = artysim.open_results(F); print(ds.artysim.summary()['runs'])",
], ids=["artysim-first", "xarray-first", "open_results"])
def test_accessor_is_registered_whatever_the_import_order(files, code):
    p = subprocess.run([sys.executable, "-c", f"F = {str(files[0])!r}\n{code}"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "300"


def test_the_cli_does_not_import_xarray_to_run():
    """`artysim run -q` (every array task) should not pay for importing xarray (about 0.5 s)."""
    p = subprocess.run([sys.executable, "-c", "import sys, artysim, artysim.cli, artysim.jobs.run; "
                        "print('xarray' in sys.modules)"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False"


def test_open_results_refuses_nothing_and_empty_folders(tmp_path):
    with pytest.raises(ResultsError, match="no results files"):
        artysim.open_results([])
    with pytest.raises(ResultsError, match="holds no .nc"):
        artysim.open_results(tmp_path)
    with pytest.raises(ResultsError, match="no such file"):
        artysim.open_results(tmp_path / "x.nc")


def test_accessor_survives_a_find_spec_without_import(files):
    """Libraries probe optional dependencies with importlib.util.find_spec; that must not disarm the hook."""
    code = ("import importlib.util, artysim; importlib.util.find_spec('xarray'); import xarray as xr; "
            f"print(xr.open_dataset({str(files[0])!r}).artysim.summary()['runs'])")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "300"
