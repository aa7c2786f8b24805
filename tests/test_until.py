"""``run --until``: doubling looks, and the file is identical, variable by variable, to ``run --runs N_final``."""

from __future__ import annotations

import math

import netCDF4
import pytest
from click.testing import CliRunner
from fingerprint import differences, fingerprint
from support import assert_refused, leftovers

from artysim.cli import main

SCN = "configs/nk-deal-2023.toml"


def test_until_file_equals_a_plain_run_of_the_final_count(tmp_path):
    u, plain = tmp_path / "u.nc", tmp_path / "plain.nc"
    r = CliRunner().invoke(main, ["run", SCN, "--until", "se(p_any_shortage) <= 0.01", "--runs", "500", "-o", str(u)])
    assert r.exit_code == 0, r.output
    looks = [x for x in r.stderr.splitlines() if x.startswith("artysim: --until: ")]
    assert [x.split(" runs")[0].rsplit(" ", 1)[1] for x in looks] == ["500", "1,000", "2,000"]  # doubling
    assert "met at 2,000 runs (3 looks)" in r.stderr
    with netCDF4.Dataset(u) as nc:
        assert nc.until_rule == "se(p_any_shortage) <= 0.01" and nc.until_met == 1 and nc.until_runs == 2000
        assert nc.until_looks == 3 and nc.until_value <= 0.01
        p = float((nc["first_shortage_day"][:].mask == 0).mean())
        assert math.isclose(nc.until_value, math.sqrt(p * (1 - p) / 2000), rel_tol=1e-12)
    r = CliRunner().invoke(main, ["run", SCN, "--runs", "2000", "-o", str(plain), "-q"])
    assert r.exit_code == 0, r.output
    assert differences(fingerprint(u), fingerprint(plain)) == []


def test_until_not_met_says_so_and_keeps_the_file(tmp_path):
    out = tmp_path / "u.nc"
    r = CliRunner().invoke(main, ["run", SCN, "--until", "halfwidth(fill_rate) <= 1e-6", "--runs", "200",
                                  "--max-runs", "700", "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert "was not met within --max-runs 700 runs" in r.stderr
    with netCDF4.Dataset(out) as nc:
        assert nc.until_met == 0 and nc.until_runs == 700 and nc.dimensions["run"].size == 700


@pytest.mark.parametrize("args, needle", [
    (["--until", "se(p_any_shortage) <= 0"], "can never be met"),
    (["--until", "p_any_shortage <= 2"], "always holds"),
    (["--until", "p_any_shortage <= 0.2"], "expected a precision rule"),
    (["--until", "se(p_any_shortage) >= 0.1"], "expected a precision rule"),
    (["--until", "se(p_any_shortage)"], "expected a comparison"),
    (["--until", "se(mean(received:nowhere)) <= 1"], "unknown source 'nowhere'"),
    (["--max-runs", "100"], "--max-runs goes with --until"),
    (["--until", "se(p_any_shortage) <= 0.01", "--shards", "2", "--shard", "0"], "--until runs one file"),
])
def test_bad_until_refused_before_any_work(tmp_path, args, needle):
    r = CliRunner().invoke(main, ["run", SCN, "-o", str(tmp_path / "x.nc")] + args)
    assert_refused(r, needle)
    assert leftovers(tmp_path) == []


def test_sweep_until_equals_a_plain_sweep_of_the_final_count(tmp_path):
    u, plain = tmp_path / "u.nc", tmp_path / "p.nc"
    vary = ["--vary", "source.north_korea.available=0,4e6"]
    r = CliRunner().invoke(main, ["sweep", SCN, *vary, "--until", "se(p_any_shortage) <= 0.012", "--runs", "500",
                                  "-o", str(u), "-q"])
    assert r.exit_code == 0, r.output
    with netCDF4.Dataset(u) as nc:
        n = nc.dimensions["run"].size
    assert n == 2000  # se of P = 0.47 (no imports): 0.0158 at 1,000 runs, 0.0112 at 2,000
    r = CliRunner().invoke(main, ["sweep", SCN, *vary, "--runs", str(n), "-o", str(plain), "-q"])
    assert r.exit_code == 0, r.output
    assert differences(fingerprint(u), fingerprint(plain)) == []


def test_solve_until_runs_each_evaluation_to_the_precision(tmp_path):
    import json

    scn = tmp_path / "cf.toml"
    scn.write_text(CF)
    r = CliRunner().invoke(main, ["solve", str(scn), "--lever", "source.factory.annual", "--range", "300000,1500000",
                                  "--target", "p_any_shortage <= 0.1", "--runs", "250", "--until",
                                  "se(p_any_shortage) <= 0.01", "--max-runs", "4000", "--tol", "50000",
                                  "--format", "json", "-q"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    for e in res["evaluations"]:
        assert e["runs"] in (250, 500, 1000, 2000, 4000)
        assert e["se"] <= 0.01 or e["runs"] == 4000
    assert res["until"] == "se(p_any_shortage) <= 0.01"


CF = """\
[scenario]
name = "closed-form"
start_date = "2024-01-01"
horizon_days = 30

[output]
trajectory_sample = 0

[demand]
base = { dist = "lognormal", median = 1000, sigma = 0.5 }
daily_cv = 0

[[source]]
name = "factory"
kind = "production"
annual = 500000.0
daily_cv = 0
dud_rate = 0
"""
