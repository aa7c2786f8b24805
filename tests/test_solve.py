"""``artysim solve``: against a closed form, on integers, its results file, and its refusals."""

from __future__ import annotations

import json
import math

import netCDF4
import pytest
from click.testing import CliRunner
from fingerprint import differences, fingerprint
from support import assert_refused, leftovers

from artysim.cli import main
from artysim.jobs import solve as solve_mod

M, S = 1000.0, 0.5  # lognormal base demand: median, sigma

CLOSED = """\
[scenario]
name = "closed-form"
start_date = "2024-01-01"
horizon_days = 30

[run]
runs = 2000
seed = 7

[output]
shortage_threshold = 0.05
trajectory_sample = 0

[demand]
base = { dist = "lognormal", median = 1000, sigma = 0.5 }
daily_cv = 0

[[source]]
name = "factory"
kind = "production"
annual = ANNUAL
daily_cv = 0
dud_rate = 0
"""


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory):
    d = tmp_path_factory.mktemp("solve")
    real, whole = d / "cf.toml", d / "cf-int.toml"
    real.write_text(CLOSED.replace("ANNUAL", "500000.0"))
    whole.write_text(CLOSED.replace("ANNUAL", "500000"))
    return real, whole


def _solve(args):
    r = CliRunner().invoke(main, ["solve"] + [str(a) for a in args] + ["--format", "json", "-q"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_closed_form_inside_the_interval_which_shrinks_with_runs(scenarios):
    # no stock, production P a year, no daily noise: a run is short (on day 0 already) exactly when its
    # demand exceeds P / 365 / 0.95, so P(short) = 0.10 at P* = 365 x 0.95 x m x exp(z_0.9 s)
    exact = 365 * 0.95 * M * math.exp(1.2815515655446004 * S)
    widths = []
    for runs in (2000, 8000):
        r = _solve([scenarios[0], "--lever", "source.factory.annual", "--range", "300000,1500000",
                    "--target", "p_any_shortage <= 0.1", "--runs", runs])
        lo, hi = r["interval"]
        assert lo <= exact <= hi, (runs, r["interval"], exact)  # a 1.96-SE band, fixed seed
        assert lo <= r["value"] <= hi and r["interval_open"] == [False, False]
        assert r["direction"] == "smallest" and r["monotone"]
        assert abs(r["statistic"] - 0.1) <= 0.1 - r["statistic"] + 2 * r["se"]  # the answer just meets it
        assert {"lever", "value", "interval", "target", "evaluations"} <= set(r)
        assert all({"lever", "statistic", "se"} <= set(e) for e in r["evaluations"])
        assert r["bisection_steps"] == 12  # 2 ends + 10 halvings of the range to (HI - LO) / 1024
        widths.append(hi - lo)
    assert widths[1] < 0.75 * widths[0]  # 4x the runs: about half the width


def test_integer_lever_finds_the_exact_step(scenarios):
    r = _solve([scenarios[1], "--lever", "source.factory.annual", "--range", "400000,1000000",
                "--target", "p_any_shortage <= 0.1", "--runs", 500])
    assert r["integer"] and r["value"] == int(r["value"])
    by = {e["lever"]: e for e in r["evaluations"]}
    assert by[r["value"]]["meets"] and not by[r["value"] - 1]["meets"]  # common random numbers: a sharp step


def test_largest_direction_and_scale(scenarios):
    # demand scaled as a whole: the largest demand factor keeping P(short) <= 0.1 at P = 500,000 a year
    r = _solve([scenarios[0], "--lever", "demand.base", "--scale", "--range", "0.2,3",
                "--target", "p_any_shortage <= 0.1", "--runs", 1000])
    exact = 500000 / (365 * 0.95 * M * math.exp(1.2815515655446004 * S))
    assert r["direction"] == "largest"
    assert r["interval"][0] <= exact <= r["interval"][1]
    assert "demand.base={ dist = \"lognormal\", median = " in r["override"] and "sigma = 0.5 }" in r["override"]


def test_results_file_is_the_final_evaluation(scenarios, tmp_path):
    out, plain = tmp_path / "s.nc", tmp_path / "p.nc"
    r = _solve([scenarios[0], "--lever", "source.factory.annual", "--range", "300000,1500000",
                "--target", "p_any_shortage <= 0.1", "--runs", 300, "--tol", 20000, "-o", out])
    assert r["output"] == str(out)
    with netCDF4.Dataset(out) as nc:
        assert nc.solve_lever == "source.factory.annual" and nc.solve_value == r["value"]
        assert json.loads(nc.solve_interval) == r["interval"]
        assert len(json.loads(nc.solve_evaluations)) == len(r["evaluations"])
        assert nc.scenario_overrides == r["override"]
    a = CliRunner().invoke(main, ["run", str(scenarios[0]), "--runs", "300", "--set", r["override"], "-o", str(plain),
                                  "-q"])
    assert a.exit_code == 0, a.output
    pic = tmp_path / "solve.png"
    assert CliRunner().invoke(main, ["plot", str(out), "-k", "solve", "-o", str(pic)]).exit_code == 0
    assert pic.stat().st_size > 1000
    assert_refused(CliRunner().invoke(main, ["plot", str(plain), "-k", "solve", "-o", str(tmp_path / "x.png")]),
                   "--kind solve needs a file written by 'artysim solve -o'")
    fa, fb = fingerprint(out), fingerprint(plain)
    for f in (fa, fb):
        f["attrs"] = {k: v for k, v in f["attrs"].items() if not k.startswith("solve_")}
    assert differences(fa, fb) == []


def test_scaled_keeps_shape_parameters():
    d = {"dist": "triangular", "min": 3, "mode": 5, "max": 8}
    assert solve_mod.scaled(d, 2.0, "x") == {"dist": "triangular", "min": 6.0, "mode": 10.0, "max": 16.0}
    ln = {"dist": "lognormal", "median": 10, "sigma": 0.4}
    assert solve_mod.scaled(ln, 3.0, "x") == {"dist": "lognormal", "median": 30.0, "sigma": 0.4}
    beta = {"dist": "beta", "mean": 0.2, "concentration": 20}
    assert solve_mod.scaled(beta, 0.5, "x")["concentration"] == 20
    sched = [{"from": "2024-01-01", "value": 5}, {"from": "2024-06-01", "value": {"dist": "uniform", "low": 1,
                                                                                    "high": 2}}]
    assert solve_mod.scaled(sched, 2.0, "x") == [{"from": "2024-01-01", "value": 10.0},
                                                 {"from": "2024-06-01", "value": {"dist": "uniform", "low": 2.0,
                                                                                  "high": 4.0}}]


@pytest.mark.parametrize("args, needle", [
    (["--lever", "source.factory.anual", "--range", "1,2"], "anual"),
    (["--lever", "source.nowhere.annual", "--range", "1,2"], "no source named 'nowhere'"),
    (["--lever", "source.factory.annual", "--range", "2e6,1e6"], "LO must be below HI"),
    (["--lever", "source.factory.annual", "--range", "1e6"], "expected LO,HI"),
    (["--lever", "source.factory.annual", "--range", "a,b"], "expected two numbers"),
    (["--lever", "demand.base", "--range", "1,2"], "is a distribution (lognormal); add --scale"),
    (["--lever", "demand.nothing", "--scale", "--range", "1,2"], "no value at demand.nothing to scale"),
    (["--lever", "source.factory.annual", "--range", "300000,1500000", "--target", "p_any_shortage"],
     "expected a comparison"),
    (["--lever", "source.factory.annual", "--range", "300000,400000", "--target", "p_any_shortage <= 0.1"],
     "is not met at either end of --range 300,000,400,000: p_any_shortage = "),
    (["--lever", "source.factory.annual", "--range", "300000,1500000", "--target", "p_any_shortage <= 0.99"],
     "is met at both ends"),
    (["--lever", "source.factory.annual", "--range", "300000,1500000", "--target", "p_any_shortage <= 0.1",
      "--tol", "0"], "--tol must be positive"),
])
def test_bad_solves_one_line_exit_2_nothing_written(scenarios, tmp_path, args, needle):
    if "--target" not in args:
        args = args + ["--target", "p_any_shortage <= 0.1"]
    r = CliRunner().invoke(main, ["solve", str(scenarios[0]), "--runs", "200", "-q", "-o", str(tmp_path / "x.nc")]
                           + args)
    assert_refused(r, needle)
    assert leftovers(tmp_path) == []


def test_monotonicity_check_flags_only_moves_beyond_mc_error():
    import datetime as dt

    from artysim.analysis import statistics as S

    rule = S.parse_rule("p_any_shortage <= 0.1", S.Context(dt.date(2024, 1, 1), 30, ("f",)))

    def ev(x, p, se):
        e = S.Estimate(p, se, (p - 1.96 * se, p + 1.96 * se))
        return solve_mod.Evaluation(x, e, rule.check(e), 0.0, 1000)

    falling = [ev(1, 0.3, 0.01), ev(2, 0.2, 0.01), ev(3, 0.21, 0.01), ev(4, 0.05, 0.01)]  # +0.01 < 1.96 x 0.014
    assert solve_mod._monotone(falling, rule, smallest=True) is None
    bump = [ev(1, 0.3, 0.01), ev(2, 0.2, 0.01), ev(3, 0.26, 0.01), ev(4, 0.05, 0.01)]  # +0.06 > 0.028
    note = solve_mod._monotone(bump, rule, smallest=True)
    assert note.startswith("not monotone beyond Monte Carlo error") and "0.2 at 2 -> 0.26 at 3" in note
