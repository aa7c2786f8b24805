"""The ``artysim`` command line on real files: results, overrides, refusals and interruptions."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tomllib
import xarray as xr
from click.testing import CliRunner
from support import assert_refused, leftovers

from artysim.cli import main

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"
NK = CONFIGS / "nk-deal-2023.toml"
RUNS = "300"

#: A small valid scenario; the bad-scenario cases below each break one thing in it.
TINY = """\
[scenario]
name = "tiny"
start_date = "2023-09-01"
horizon_days = 60
description = "a small test scenario"

[run]
runs = 200
seed = 7

[demand]
base = { dist = "uniform", low = 15000, high = 25000 }
daily_cv = 0.2

[[source]]
name = "stockpile"
kind = "stockpile"
initial = { dist = "uniform", low = 300000, high = 900000 }
dud_rate = 0.05

[[source]]
name = "domestic"
kind = "production"
annual = { dist = "triangular", min = 1.5e6, mode = 2.0e6, max = 2.5e6 }
dud_rate = { dist = "beta", mean = 0.03, concentration = 100 }

[[source]]
name = "imp"
kind = "import"
start_day = { dist = "uniform", low = 0, high = 20 }
shipments_per_month = 4
shipment_size = { dist = "lognormal", median = 50000, sigma = 0.5 }
transit_days = { dist = "uniform", low = 5, high = 10 }
dud_rate = { dist = "beta", mean = 0.2, concentration = 20 }
"""


def _artysim_cmd() -> list[str]:
    """The installed console script beside this interpreter (falls back to ``python -m``)."""
    script = Path(sys.executable).with_name("artysim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "artysim.cli"]


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def tiny(tmp_path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(TINY)
    return p


@pytest.fixture(scope="module")
def nk_result(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nk") / "nk.nc"
    r = invoke("run", NK, "--runs", RUNS, "-o", out, "-q")
    assert r.exit_code == 0, r.output
    return out


# -- run ---------------------------------------------------------------------------------------

def test_run_writes_file_and_prints_summary(tmp_path):
    out = tmp_path / "x.nc"
    r = invoke("run", NK, "--runs", RUNS, "-o", out)
    assert r.exit_code == 0, r.output
    assert out.is_file()
    assert "scenario nk-deal-2023: 300 runs" in r.stdout
    assert "P(any shortage day)" in r.stdout
    assert "north_korea" in r.stdout
    assert f"wrote {out}" in r.stdout
    assert leftovers(tmp_path) == ["x.nc"]  # no temporary file left beside it
    with xr.open_dataset(out) as ds:
        assert ds.sizes["run"] == 300
        assert ds.attrs["scenario_name"] == "nk-deal-2023"


def test_run_quiet_prints_nothing(tmp_path):
    r = invoke("run", NK, "--runs", "50", "-o", tmp_path / "q.nc", "--quiet")
    assert r.exit_code == 0, r.output
    assert r.output.strip() == ""


def test_run_default_output_is_results_folder_of_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = invoke("run", NK, "--runs", "100", "-q")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "results" / "nk-deal-2023.nc").is_file()
    # a bundled scenario may be named instead of a path
    r = invoke("run", "baseline-2023", "--runs", "100", "-q")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "results" / "baseline-2023.nc").is_file()


def test_run_uses_scenario_defaults_and_seed_option(tmp_path, tiny):
    a, b = tmp_path / "a.nc", tmp_path / "b.nc"
    assert invoke("run", tiny, "-o", a, "-q").exit_code == 0
    assert invoke("run", tiny, "-o", b, "-q", "--seed", "8").exit_code == 0
    with xr.open_dataset(a) as da, xr.open_dataset(b) as db:
        assert da.sizes["run"] == 200  # [run] runs
        assert da.attrs["seed"] == "7" and db.attrs["seed"] == "8"
        assert not np.array_equal(da["demand_total"].values, db["demand_total"].values)


def test_set_overrides_change_result_and_are_recorded(tmp_path):
    plain, big = tmp_path / "plain.nc", tmp_path / "big.nc"
    assert invoke("run", NK, "--runs", RUNS, "-o", plain, "-q").exit_code == 0
    r = invoke("run", NK, "--runs", RUNS, "-o", big, "-q", "--set", "source.stockpile.initial=50_000_000",
               "--set", "source.north_korea.dud_rate=0.3")
    assert r.exit_code == 0, r.output
    with xr.open_dataset(plain) as p, xr.open_dataset(big) as b:
        assert p.attrs["seed"] == b.attrs["seed"]
        assert p.attrs["scenario_overrides"] == ""
        assert b.attrs["scenario_overrides"].splitlines() == [
            "source.stockpile.initial=50_000_000", "source.north_korea.dud_rate=0.3"]
        assert b.attrs["scenario_toml"] == p.attrs["scenario_toml"] == NK.read_text()  # the file as written
        assert b.attrs["scenario_hash"] != p.attrs["scenario_hash"]  # the hash is of the effective scenario
        # fixed values are no longer sampled parameters
        assert "source.stockpile.initial" in p["parameter"].values
        assert "source.stockpile.initial" not in b["parameter"].values
        assert "source.north_korea.dud_rate" not in b["parameter"].values
        assert (b["initial_stock"].sel(source="stockpile") == 50_000_000).all()
        # a far bigger stockpile: (almost) never short, more fired and less shortfall, same demand model
        p_short_plain = float(np.mean(~np.isnan(p["first_shortage_day"].values)))
        p_short_big = float(np.mean(~np.isnan(b["first_shortage_day"].values)))
        assert p_short_plain > 0.05
        assert p_short_big < p_short_plain
        assert b["fired_total"].mean() > p["fired_total"].mean()
        assert b["shortfall_total"].mean() < p["shortfall_total"].mean()


def test_set_bad_override_is_refused(tmp_path):
    out = tmp_path / "x.nc"
    assert_refused(invoke("run", NK, "--runs", "10", "-o", out, "--set", "source.nobody.dud_rate=0.1"),
                   "nobody")
    assert_refused(invoke("run", NK, "--runs", "10", "-o", out, "--set", "source.north_korea.dud_rate=2"),
                   "--set source.north_korea.dud_rate=2: source.north_korea.dud_rate")
    assert_refused(invoke("run", NK, "--runs", "10", "-o", out, "--set", "nonsense"), "path=value")
    assert leftovers(tmp_path) == []


def test_existing_file_refused_without_force_and_replaced_with_it(tmp_path):
    out = tmp_path / "x.nc"
    assert invoke("run", NK, "--runs", "100", "-o", out, "-q").exit_code == 0
    before = out.read_bytes()
    mtime = out.stat().st_mtime_ns
    time.sleep(0.01)
    line = assert_refused(invoke("run", NK, "--runs", "100", "-o", out, "--seed", "5"), str(out), "--force")
    assert "exists" in line
    assert out.read_bytes() == before and out.stat().st_mtime_ns == mtime
    assert leftovers(tmp_path) == ["x.nc"]

    r = invoke("run", NK, "--runs", "100", "-o", out, "--seed", "5", "--force", "-q")
    assert r.exit_code == 0, r.output
    assert out.read_bytes() != before
    assert leftovers(tmp_path) == ["x.nc"]
    with xr.open_dataset(out) as ds:
        assert ds.attrs["seed"] == "5"


@pytest.mark.parametrize("args, option", [
    (["--runs", "0"], "--runs"),
    (["--runs", "-5"], "--runs"),
    (["--seed", "-1"], "--seed"),
    (["--threads", "0"], "--threads"),
    (["--runs", "many"], "--runs"),
])
def test_bad_options_refused(tmp_path, args, option):
    r = invoke("run", NK, "-o", tmp_path / "x.nc", *args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert option in r.stderr
    assert leftovers(tmp_path) == []


def test_missing_output_folder_refused(tmp_path):
    out = tmp_path / "nope" / "x.nc"
    assert_refused(invoke("run", NK, "--runs", "10", "-o", out), "does not exist", str(out.parent))
    assert leftovers(tmp_path) == []


def test_output_that_is_a_folder_refused(tmp_path):
    (tmp_path / "d.nc").mkdir()
    r = invoke("run", NK, "--runs", "10", "-o", tmp_path / "d.nc", "--force")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "d.nc" in r.stderr and "directory" in r.stderr
    assert leftovers(tmp_path / "d.nc") == []


# -- bad scenario files --------------------------------------------------------------------------

def _edit(old: str, new: str):
    def f(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)
    return f


BAD_SCENARIOS = {
    # id: (edit of TINY, what the one-line message must contain besides the file name)
    "unknown-key": (_edit("daily_cv = 0.2", "daily_cvv = 0.2"), ["demand.daily_cvv", "did you mean 'daily_cv'"]),
    "unknown-top-table": (_edit("[run]", "[rnu]"), ["rnu", "did you mean 'run'"]),
    "wrong-type": (_edit("horizon_days = 60", 'horizon_days = "sixty"'), ["scenario.horizon_days", "sixty"]),
    "wrong-type-dist": (_edit("shipments_per_month = 4", 'shipments_per_month = "four"'),
                        ["source[2].shipments_per_month"]),
    "bad-date": (_edit('"2023-09-01"', '"2023-13-01"'), ["scenario.start_date", "2023-13-01"]),
    "fraction-out-of-range": (_edit("dud_rate = 0.05", "dud_rate = 1.5"), ["source[0].dud_rate", "fraction"]),
    "negative-rounds": (_edit("low = 300000", "low = -300000"), ["source[0].initial"]),
    "beta-mean-out-of-range": (_edit("mean = 0.2,", "mean = 1.2,"), ["source[2].dud_rate", "1.2"]),
    "min-above-max": (_edit("min = 1.5e6, mode = 2.0e6, max = 2.5e6", "min = 2.5e6, mode = 2.0e6, max = 1.5e6"),
                      ["source[1].annual", "min"]),
    "uniform-low-above-high": (_edit("low = 15000, high = 25000", "low = 25000, high = 15000"),
                               ["demand.base", "low"]),
    "missing-required-key": (_edit("horizon_days = 60\n", ""), ["scenario.horizon_days", "missing"]),
    "missing-required-table": (_edit("[demand]", "[demand_]"), ["demand"]),
    "duplicate-source-names": (_edit('name = "imp"', 'name = "domestic"'), ["source[2].name", "duplicate"]),
    "not-toml": (_edit("[demand]", "[demand"), ["TOML", "line"]),
    "priority-without-order": (_edit("[run]", '[policy]\nissue = "priority"\n\n[run]'), ["policy.order"]),
    "order-names-unknown-source": (
        _edit("[run]", '[policy]\nissue = "priority"\norder = ["imp", "domestic", "ghost"]\n\n[run]'),
        ["policy.order", "ghost"]),
    "unknown-dist": (_edit('dist = "uniform", low = 15000', 'dist = "unifrom", low = 15000'),
                     ["demand.base.dist", "unifrom"]),
    "unknown-source-kind": (_edit('kind = "import"', 'kind = "imports"'), ["source[2].kind", "imports"]),
    "nan": (_edit("daily_cv = 0.2", "daily_cv = nan"), ["demand.daily_cv"]),
}


@pytest.mark.parametrize("case", sorted(BAD_SCENARIOS))
def test_bad_scenario_refused(tmp_path, case):
    edit, needles = BAD_SCENARIOS[case]
    bad = tmp_path / "bad.toml"
    bad.write_text(edit(TINY))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert_refused(invoke("validate", bad), str(bad), *needles)
    assert_refused(invoke("run", bad, "-o", out_dir / "r.nc"), str(bad), *needles)
    assert leftovers(out_dir) == []  # neither a results file nor a temporary .artysim-*.tmp folder


def test_bad_scenario_refused_with_default_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text(TINY.replace("dud_rate = 0.05", "dud_rate = -1"))
    assert_refused(invoke("run", "bad.toml"), "bad.toml", "source[0].dud_rate")
    assert leftovers(tmp_path) == ["bad.toml"]


def test_missing_scenario_file_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(invoke("run", tmp_path / "nope.toml", "-o", out / "r.nc"), "nope.toml", "no such")
    assert_refused(invoke("validate", tmp_path / "nope.toml"), "nope.toml", "no such")
    assert leftovers(out) == []


def test_scenario_that_is_a_folder_refused(tmp_path):
    (tmp_path / "dir.toml").mkdir()
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(invoke("run", tmp_path / "dir.toml", "-o", out / "r.nc"), "dir.toml", "folder")
    assert_refused(invoke("validate", tmp_path / "dir.toml"), "dir.toml", "folder")
    assert leftovers(out) == []


def test_binary_scenario_refused(tmp_path):
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n\xff\xfe\x00")
    assert_refused(invoke("validate", bad), "bin.toml")


# -- validate, scenarios -------------------------------------------------------------------------

def test_validate_ok(tiny):
    r = invoke("validate", tiny)
    assert r.exit_code == 0, r.output
    assert "ok" in r.stdout and "tiny" in r.stdout and "3 sources" in r.stdout


def test_validate_bundled_by_name_and_with_set():
    r = invoke("validate", "nk-deal-2023")
    assert r.exit_code == 0, r.output
    assert "nk-deal-2023" in r.stdout and "north_korea [import]" in r.stdout
    assert_refused(invoke("validate", "nk-deal-2023", "--set", "demand.daily_cv=-1"), "demand.daily_cv")


def test_scenarios_lists_bundled_with_descriptions():
    r = invoke("scenarios")
    assert r.exit_code == 0, r.output
    for name in ("baseline-2023", "nk-deal-2023"):
        desc = tomllib.loads((CONFIGS / f"{name}.toml").read_text())["scenario"]["description"]
        line = next(line for line in r.stdout.splitlines() if line.startswith(name))
        assert desc in line
    assert "invalid" not in r.stdout


# -- summary ---------------------------------------------------------------------------------------

SUMMARY_KEYS = {
    "scenario", "runs", "run_range", "seed", "start_date", "horizon_days", "p_any_shortage",
    "p_any_shortage_se", "p_any_shortage_ci95", "first_shortage_day_percentiles", "shortage_days",
    "demand_total", "fired_total", "effective_total", "fill_rate", "effective_fill_rate", "stock_final",
    "sources",
}
SOURCE_KEYS = {"name", "kind", "initial", "received", "fired", "duds", "effective", "dud_fraction",
               "share_of_effective"}


def test_summary_table(nk_result):
    r = invoke("summary", nk_result)
    assert r.exit_code == 0, r.output
    for text in ("scenario nk-deal-2023: 300 runs", "P(any shortage day)", "first shortage day",
                 "fill rate", "stockpile", "domestic", "refurbished", "north_korea"):
        assert text in r.stdout


def test_summary_json(nk_result):
    r = invoke("summary", nk_result, "--format", "json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert set(s) >= SUMMARY_KEYS
    assert s["scenario"] == "nk-deal-2023"
    assert s["runs"] == 300 and s["run_range"] == [0, 300]
    assert s["start_date"] == "2023-09-01" and s["horizon_days"] == 365
    assert [x["name"] for x in s["sources"]] == ["stockpile", "domestic", "refurbished", "north_korea"]
    for src in s["sources"]:
        assert set(src) >= SOURCE_KEYS
    with xr.open_dataset(nk_result) as ds:
        fsd = ds["first_shortage_day"].values
        assert s["p_any_shortage"] == pytest.approx(np.mean(~np.isnan(fsd)))
        assert s["fired_total"][0] == pytest.approx(float(ds["fired_total"].mean()))
        assert s["seed"] == ds.attrs["seed"]
    lo, hi = s["p_any_shortage_ci95"]
    assert lo <= s["p_any_shortage"] <= hi
    assert set(s["first_shortage_day_percentiles"]) == {"0.05", "0.25", "0.5", "0.75", "0.95"}


def test_summary_of_non_netcdf_file(tmp_path):
    p = tmp_path / "fake.nc"
    p.write_text("this is not netCDF\n")
    assert_refused(invoke("summary", p), "fake.nc", "not a netCDF file")
    assert_refused(invoke("summary", NK), "nk-deal-2023.toml", "not a netCDF file")


def test_summary_of_foreign_netcdf(tmp_path):
    p = tmp_path / "plain.nc"
    xr.Dataset({"x": ("run", np.arange(5.0))}, attrs={"title": "not artysim"}).to_netcdf(p)
    assert_refused(invoke("summary", p), "plain.nc", "not an artysim results file")


def test_summary_of_truncated_file(tmp_path, nk_result):
    data = nk_result.read_bytes()
    for frac in (0.1, 0.5, 0.99):
        p = tmp_path / f"trunc-{frac}.nc"
        p.write_bytes(data[: int(len(data) * frac)])
        line = assert_refused(invoke("summary", p), p.name)
        assert "truncated" in line or "damaged" in line


def test_summary_of_missing_file_or_folder(tmp_path):
    assert_refused(invoke("summary", tmp_path / "nope.nc"), "nope.nc", "no such file")
    r = invoke("summary", tmp_path)
    assert r.exit_code == 2 and "Traceback" not in r.output


# -- the real console script -----------------------------------------------------------------------

def test_console_script_end_to_end(tmp_path):
    out = tmp_path / "cs.nc"
    p = subprocess.run([*_artysim_cmd(), "run", str(NK), "--runs", "200", "-o", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "P(any shortage day)" in p.stdout and out.is_file()
    p = subprocess.run([*_artysim_cmd(), "summary", str(out), "--format", "json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["runs"] == 200
    p = subprocess.run([*_artysim_cmd(), "run", str(NK), "--runs", "200", "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


#: SIGTERM of a run is also tested by default in test_integrity (run-in-the-rename); this ~20 s case is slow
@pytest.mark.parametrize("sig", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)],
                         ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_leaves_no_file(tmp_path, sig):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "big.nc"
    # a background job may inherit SIGINT as ignored; give the child Python's normal Ctrl-C handling
    proc = subprocess.Popen(
        [*_artysim_cmd(), "run", str(NK), "--runs", "5000000", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.startswith(".artysim-") for p in out_dir.iterdir()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no temporary results file appeared"
            time.sleep(0.05)
        time.sleep(1)  # into the simulation (5 M runs: minutes), or numba's compilation on a cold cache
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130)
    assert "Traceback" not in stderr
    progress = re.compile(r"^artysim: \d+/\d+ runs")
    lines = [line for line in stderr.splitlines() if line.strip() and not progress.match(line)]
    assert len(lines) == 1 and "interrupted" in lines[0], stderr
    assert "wrote" not in stdout
    assert leftovers(out_dir) == []


def test_closed_stdout_stops_quietly_and_keeps_the_file(tmp_path):
    """`artysim run ... | head -1`: the reader goes away after one line; the command stops without a
    traceback, with status 0 (all was written before it left) or 141 (128 + SIGPIPE, as `yes | head`),
    and the file it committed is whole."""
    out = tmp_path / "pipe.nc"
    proc = subprocess.Popen([*_artysim_cmd(), "run", str(NK), "--runs", "200", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    proc.stdout.close()  # as head does after its line
    err = proc.stderr.read()
    rc = proc.wait(timeout=300)
    assert first.startswith("scenario ")
    assert rc in (0, 141), (rc, err)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    p = subprocess.run([*_artysim_cmd(), "summary", str(out), "--format", "json"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and json.loads(p.stdout)["runs"] == 200, p.stderr
