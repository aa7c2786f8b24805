"""`artysim sweep`: a grid of variants equals separate runs exactly; the file contract plots rely on;
refusals before any work; summary/compare of sweep files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from support import assert_refused, leftovers

from artysim.analysis import compare, summary
from artysim.cli import main
from artysim.jobs import run as runner
from artysim.results import schema
from artysim.results.reader import open_results

SCN = """\
[scenario]
name = "sw"
start_date = "2024-01-01"
horizon_days = 90

[run]
runs = 150
seed = 99

[demand]
base = { dist = "uniform", low = 8000, high = 12000 }
daily_cv = 0.2

[[source]]
name = "stockpile"
kind = "stockpile"
initial = { dist = "uniform", low = 200000, high = 700000 }
dud_rate = 0.05

[[source]]
name = "imp"
kind = "import"
start_day = { dist = "uniform", low = 0, high = 30 }
shipments_per_month = 4
shipment_size = { dist = "lognormal", median = 50000, sigma = 0.5 }
transit_days = { dist = "uniform", low = 5, high = 10 }
available = 300000
dud_rate = { dist = "beta", mean = 0.2, concentration = 20 }

[output]
trajectory_sample = 5
"""

VARY = ["--vary", "source.imp.available=1e5,6e5", "--vary", "source.stockpile.dud_rate=0.05,0.3"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    scn = d / "sw.toml"
    scn.write_text(SCN)
    r = invoke("sweep", scn, *VARY, "-o", d / "sweep.nc", "--runs", 120, "-q")
    assert r.exit_code == 0, r.output
    singles = []
    for avail in ("1e5", "6e5"):
        for dud in ("0.05", "0.3"):
            out = d / f"single-{avail}-{dud}.nc"
            runner.run(str(scn), sets=[f"source.imp.available={avail}", f"source.stockpile.dud_rate={dud}"],
                       runs=120, output=out, quiet=True)
            singles.append(out)
    return {"dir": d, "scn": scn, "sweep": d / "sweep.nc", "singles": singles}


def test_two_by_two_sweep_equals_four_separate_runs(grid):
    with open_results(grid["sweep"]) as sw:
        assert int(sw.sizes["variant"]) == 4
        for i, single in enumerate(grid["singles"]):
            with open_results(single) as one:
                v = sw.isel(variant=i)
                for var in schema.ALL:
                    np.testing.assert_array_equal(v[var.name].values, one[var.name].values, err_msg=var.name)
                for c in ("run", "time", "quantile", "source", "parameter", "sample"):
                    np.testing.assert_array_equal(v[c].values, one[c].values, err_msg=c)
                assert str(sw["variant_scenario_hash"].values[i]) == one.attrs["scenario_hash"]
                assert summary.format_csv(summary.summarize(v)) == summary.format_csv(summary.summarize(one))


def test_file_contract(grid):
    with xr.open_dataset(grid["sweep"]) as ds:
        assert list(ds["variant"].values) == [0, 1, 2, 3]
        assert json.loads(ds.attrs["sweep_paths"]) == ["source.imp.available", "source.stockpile.dud_rate"]
        assert ds["vary_0"].attrs["path"] == "source.imp.available"
        assert ds["vary_1"].attrs["path"] == "source.stockpile.dud_rate"
        assert list(ds["vary_0"].values) == [1e5, 1e5, 6e5, 6e5]  # first --vary varies slowest
        assert list(ds["vary_1"].values) == [0.05, 0.3, 0.05, 0.3]
        assert [str(x) for x in ds["variant_label"].values] == [
            "source.imp.available=1e5, source.stockpile.dud_rate=0.05",
            "source.imp.available=1e5, source.stockpile.dud_rate=0.3",
            "source.imp.available=6e5, source.stockpile.dud_rate=0.05",
            "source.imp.available=6e5, source.stockpile.dud_rate=0.3"]
        # outcomes differ by variant; the sampled inputs are common random numbers and do not
        assert ds["effective_total"].dims == ("variant", "run")
        assert ds["duds"].dims == ("variant", "run", "source")
        assert ds["p_short"].dims == ("variant", "time")
        assert ds["parameters"].dims == ("run", "parameter")
        assert ds["run"].dims == ("run",) and "variant" not in ds["source"].dims
        # the stockpile's own draws (initial stock) are the same in every variant
        assert ds["initial_stock"].dims == ("run", "source")


def test_summary_of_a_sweep_file(grid):
    r = invoke("summary", grid["sweep"], "--format", "json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["sweep_paths"] == ["source.imp.available", "source.stockpile.dud_rate"]
    assert [v["vary"]["source.imp.available"] for v in s["variants"]] == [1e5, 1e5, 6e5, 6e5]
    for v, single in zip(s["variants"], grid["singles"]):
        with open_results(single) as one:
            f = summary.summarize(one)
        assert v["p_any_shortage"] == f["p_any_shortage"] and v["p_any_shortage_ci95"] == list(f["p_any_shortage_ci95"])
        assert v["effective_fill_rate"] == list(f["effective_fill_rate"])
        assert v["first_shortage_day_median"] == f["first_shortage_day_percentiles"]["0.5"]
    # a dud rate of 0.3 instead of 0.05 on the stockpile costs effective fire in every run
    assert s["variants"][1]["effective_fill_rate"][0] < s["variants"][0]["effective_fill_rate"][0]
    doc = (Path(__file__).resolve().parent.parent / "docs" / "summary-json.md").read_text()
    keys = set(s) | set(s["variants"][0])
    assert not [k for k in keys if f"`{k}`" not in doc]
    r = invoke("summary", grid["sweep"])
    assert r.exit_code == 0 and "4 variants" in r.stdout
    assert "source.imp.available=6e5, source.stockpile.dud_rate=0.3" in r.stdout
    r = invoke("summary", grid["sweep"], "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert {x["variant"] for x in rows} == {"0", "1", "2", "3"}
    p = [x for x in rows if x["variant"] == "2" and x["quantity"] == "p_any_shortage"][0]
    assert float(p["value"]) == s["variants"][2]["p_any_shortage"]


def test_variants_pair_in_compare(grid):
    with open_results(grid["sweep"]) as ds:
        c = compare.compare(ds.isel(variant=0), ds.isel(variant=2))
        with pytest.raises(Exception, match="sweep file"):
            compare.compare(ds, ds.isel(variant=0))
    assert c["paired"]
    assert c["effective_per_delivered_shell"]["sources"] == ["imp"]


def test_bad_vary_is_refused_before_any_work(grid, tmp_path):
    out = tmp_path / "o.nc"
    scn = grid["scn"]
    cases = [
        (["--vary", "source.imp.availabel=1,2"], "availabel"),
        (["--vary", "source.nope.available=1,2"], "no source named 'nope'"),
        (["--vary", "source.imp.available=1e5,lots"], "--vary source.imp.available=lots: source.imp.available"),
        (["--vary", "source.imp.available=1e5,[lots"], "expected numbers, words or TOML values"),
        (["--vary", "source.imp.available=1e5,,2e5"], "an empty value"),
        (["--vary", "source.imp.available=1e5,1e5"], "repeated"),
        (["--vary", "source.imp.dud_rate=0.1,1.5"], "dud_rate"),
        (["--vary", "demand.base"], "expected PATH=V1,V2"),
    ]
    for args, needle in cases:
        assert_refused(invoke("sweep", scn, *args, "-o", out, "--runs", 10), needle)
    assert leftovers(tmp_path) == []


def test_split_values_keeps_tables_lists_and_quoted_commas():
    from artysim.jobs.sweep import split_values

    assert split_values('a, { dist = "uniform", low = 1, high = 2 },[1, 2], "x,\\"y", 3') == [
        "a", '{ dist = "uniform", low = 1, high = 2 }', "[1, 2]", '"x,\\"y"', "3"]


def test_vary_takes_words_and_distributions(grid, tmp_path):
    """--vary of a string key (policy.issue) and of a distribution: each variant is the run --set gives it."""
    dists = ['{ dist = "beta", mean = 0.1, concentration = 20 }', '{ dist = "beta", mean = 0.4, concentration = 20 }']
    order = 'policy.order=["imp", "stockpile"]'
    out = tmp_path / "words.nc"
    r = invoke("sweep", grid["scn"], "--vary", "policy.issue=proportional,priority",
               "--vary", "source.imp.dud_rate=" + ",".join(dists), "--set", order, "-o", out, "--runs", 40, "-q")
    assert r.exit_code == 0, r.output
    with open_results(out) as sw:
        assert [str(x) for x in sw["vary_0"].values] == ["proportional", "proportional", "priority", "priority"]
        assert [str(x) for x in sw["vary_1"].values] == dists * 2
        for i, (issue, dud) in enumerate([(a, b) for a in ("proportional", "priority") for b in dists]):
            one = runner.run(str(grid["scn"]), sets=[order, f"policy.issue={issue}", f"source.imp.dud_rate={dud}"],
                             runs=40, output=tmp_path / f"one-{i}.nc", quiet=True)
            with open_results(one) as o:
                for name in ("fired_by_source", "duds", "first_shortage_day", "parameters"):
                    np.testing.assert_array_equal(sw.isel(variant=i)[name].values, o[name].values, err_msg=name)
        # issuing the import first fires more of its (dud-prone) rounds than drawing in proportion
        imp = list(sw["source"].values).index("imp")
        fired = sw["fired_by_source"].isel(source=imp).mean("run").values
        assert fired[2] > fired[0] and fired[3] > fired[1]
    s = json.loads(invoke("summary", out, "--format", "json").stdout)
    assert [v["vary"]["policy.issue"] for v in s["variants"]] == ["proportional", "proportional", "priority",
                                                                  "priority"]
    r = invoke("plot", out, "--kind", "heatmap", "-o", tmp_path / "h.png")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "h.png").stat().st_size > 1000


def test_existing_output_is_not_overwritten_without_force(grid, tmp_path):
    out = tmp_path / "o.nc"
    out.write_text("keep me")
    assert_refused(invoke("sweep", grid["scn"], "--vary", "source.imp.available=1e5,2e5", "-o", out, "--runs", 10),
                   "exists", "--force")
    assert out.read_text() == "keep me"
    r = invoke("sweep", grid["scn"], "--vary", "source.imp.available=1e5,2e5", "-o", out, "--runs", 10, "-q",
               "--force")
    assert r.exit_code == 0, r.output
    with open_results(out) as ds:
        assert int(ds.sizes["variant"]) == 2 and int(ds.sizes["run"]) == 10
    assert leftovers(tmp_path) == ["o.nc"]  # no temporary folder or part file left


def test_sweep_files_are_not_read_as_shards(grid, tmp_path):
    import shutil

    other = tmp_path / "copy.nc"
    shutil.copy(grid["sweep"], other)
    assert_refused(invoke("summary", grid["sweep"], other), "is a sweep file")


def test_sweep_file_passes_the_cf_checker(grid, tmp_path):
    import shutil
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("compliance-checker")
    exe = str(exe) if exe.exists() else shutil.which("compliance-checker")
    if exe is None:
        pytest.skip("compliance-checker is not installed (pip install -e '.[test]')")
    report = tmp_path / "cc.json"
    p = subprocess.run([exe, "--test=cf:1.9", "--format=json_new", "-o", str(report), str(grid["sweep"])],
                       capture_output=True, text=True, timeout=300)
    assert report.exists(), p.stdout + p.stderr
    r = next(iter(json.loads(report.read_text()).values()))["cf:1.9"]
    errors = [f"{x['name']}: {m}" for x in r["high_priorities"] for m in x["msgs"]]
    assert r["high_count"] == 0 and not errors, errors
    # as for a single-run file, only the dimension-order recommendation is reported
    assert {x["name"] for x in r["medium_priorities"] if x["msgs"]} <= {"§2.4 Dimensions"}


def test_interrupted_sweep_leaves_nothing(grid, tmp_path, monkeypatch):
    from artysim.jobs import sweep

    real = runner.run_loaded
    calls = []

    def run_then_interrupt(*a, **kw):
        calls.append(kw["output"])
        if len(calls) == 2:
            raise KeyboardInterrupt("SIGINT")
        return real(*a, **kw)

    monkeypatch.setattr(runner, "run_loaded", run_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(str(grid["scn"]), ["source.imp.available=1e5,2e5,3e5"], tmp_path / "o.nc", runs=10,
                        quiet=True)
    assert len(calls) == 2 and leftovers(tmp_path) == []  # the finished variant went with the temp folder
