"""The Ukrainian studies (configs/ua-2024-famine-to-relief.toml, configs/ua-2025.toml, issue 13 §4).

Truth not written here: the US 155 mm line's output is the minimum over its component lines (SPEC §7),
so with deterministic lines (daily_cv = 0, whole rounds a day) its output is the slower line's rate
times the days, in closed form; with the files' own priors the charge sets bind (every projectile rate
exceeds every charge rate), so the mean Sep 2024 output is the charge line's mean rate x 30 days
within Monte Carlo error; and the files' observations accept some runs at their own seeds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import tomllib
from support import assert_mc, invoke, run_scenario, se_mean

from artysim.results.reader import open_file as open_results

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
UA24, UA25 = "ua-2024-famine-to-relief", "ua-2025"
RUNS = 400


def run(tmp_path: Path, name: str, runs: int, *sets: str, tag: str = "") -> Path:
    return run_scenario(tmp_path / f"{name}{tag}.nc", name, runs, *sets)


def days(a: str, b: str) -> int:
    """Days from a (inclusive) to b (exclusive)."""
    return (dt.date.fromisoformat(b) - dt.date.fromisoformat(a)).days


def _line(name: str, pieces: list[tuple[str, int]]) -> str:
    sched = ", ".join(f'{{ from = "{d}", value = {v} }}' for d, v in pieces)
    return f'{{ name = "{name}", daily_cv = 0, annual = [{sched}] }}'


# Rates a day, whole numbers so that the stochastic rounding floor(x + U) is exact; the file's shape:
# nothing to Ukraine before 1 May 2024, a step on 1 Sep 2024.
SLOW = [("2024-01-01", 0), ("2024-05-01", 500), ("2024-09-01", 600)]     # U15: ~18k a month in Sep
FAST = [("2024-01-01", 0), ("2024-05-01", 1200), ("2024-09-01", 1300)]   # U15: ~40k a month


def _total(pieces, end="2025-01-01") -> int:
    bounds = [d for d, _ in pieces[1:]] + [end]
    return sum(rate * days(d, b) for (d, rate), b in zip(pieces, bounds))


@pytest.mark.parametrize("charge_slow", [True, False], ids=["charges-bind", "projectiles-bind"])
def test_us_line_2024_output_is_the_minimum_over_its_components(tmp_path, charge_slow):
    """Deterministic lines: the assembled US output is the slower line's units, day by day: over 2024
    the slower schedule's total, 600 x 30 = 18,000 in Sep 2024 (V09's observed value), and the faster
    line keeps its surplus; swapping the rates moves the bound to the other line (a minimum, not a
    fixed choice of the charge line)."""
    proj, charge = (FAST, SLOW) if charge_slow else (SLOW, FAST)
    per_year = [[(d, r * 365) for d, r in line] for line in (proj, charge)]
    comps = f'[{_line("projectile", per_year[0])}, {_line("charge", per_year[1])}]'
    f = run(tmp_path, UA24, 8, f"source.us.components={comps}", tag=str(charge_slow))
    with open_results(f) as ds:
        got = ds.received.sel(source="us").values
        assert (got == _total(SLOW)).all(), got
        assert (ds.observed.sel(observation="v09_us_complete_sep_2024").values == 600 * 30).all()
        made = ds.component_produced.sel(component=["us.projectile", "us.charge"]).values
        np.testing.assert_array_equal(made, np.broadcast_to([_total(proj), _total(charge)], made.shape))
        fast = "us.projectile" if charge_slow else "us.charge"
        slow = "us.charge" if charge_slow else "us.projectile"
        assert (ds.component_final.sel(component=fast).values == _total(FAST) - _total(SLOW)).all()
        assert (ds.component_final.sel(component=slow).values == 0).all()
        # the slower line binds every day; the faster only on Jan-Apr, when both inventories are 0 (a tie)
        assert (ds.component_bound_days.sel(component=slow).values == 366).all()
        assert (ds.component_bound_days.sel(component=fast).values == days("2024-01-01", "2024-05-01")).all()


def test_us_line_2025_ramp_at_a_constant_rate_is_the_slower_line(tmp_path):
    """ua-2025's charge line with its ramp pinned (annual = annual_end = 600 a day) under a 1,300-a-day
    projectile line: 600 x 365 rounds in 2025."""
    comps = ('[{ name = "projectile", daily_cv = 0, annual = 474500 }, '
             '{ name = "charge", daily_cv = 0, annual = 219000, annual_end = 219000 }]')
    f = run(tmp_path, UA25, 8, f"source.us.components={comps}")
    with open_results(f) as ds:
        assert (ds.received.sel(source="us").values == 600 * 365).all()
        assert (ds.component_final.sel(component="us.projectile").values == 700 * 365).all()


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """Each file at its own seed, RUNS runs, then `artysim calibrate`."""
    folder = tmp_path_factory.mktemp("ua")
    out = {}
    for name in (UA24, UA25):
        raw_nc = run(folder, name, RUNS)
        cal = folder / f"{name}-cal.nc"
        r = invoke("calibrate", raw_nc, "-o", cal)
        assert r.exit_code == 0, r.output
        out[name] = (raw_nc, cal)
    return out


def test_us_sep_2024_mean_is_the_charge_line_mean(calibrated):
    """With the file's priors the charge sets bind (projectile min 456k > charge max 240k a year), so the
    mean Sep 2024 output is the charge piece's mean, TRI(192k, 216k, 240k) = 216k a year, x 30/365
    (~17.8k, U15's ~18k), within 4 SE (daily noise is mean one)."""
    doc = tomllib.loads((CONFIGS / f"{UA24}.toml").read_text(encoding="utf-8"))
    comp = {c["name"]: c for c in next(s for s in doc["source"] if s["name"] == "us")["components"]}
    sep = {c: next(p["value"] for p in comp[c]["annual"] if p["from"] == "2024-09-01") for c in comp}
    assert sep["projectile"]["min"] > sep["charge"]["max"]
    charge_mean = (sep["charge"]["min"] + sep["charge"]["mode"] + sep["charge"]["max"]) / 3
    with open_results(calibrated[UA24][0]) as ds:
        x = ds.observed.sel(observation="v09_us_complete_sep_2024").values.astype(float)
        assert_mc(x.mean(), charge_mean / 365 * 30, se_mean(x), 4, "US Sep 2024 output")


@pytest.mark.parametrize("name", [UA24, UA25])
def test_calibration_accepts_runs_at_the_files_seed(calibrated, name):
    """The observations are reachable from the prior: at the file's seed some runs carry weight, and
    every single band holds some prior runs."""
    raw_nc, cal = calibrated[name]
    with open_results(cal) as ds:
        w = ds.weight.values
        assert (w > 0).mean() > 0
        assert float(ds.attrs["effective_sample_size"]) > 0
    doc = tomllib.loads((CONFIGS / f"{name}.toml").read_text(encoding="utf-8"))
    with open_results(raw_nc) as ds:
        for ob in doc["observation"]:
            v = ds.observed.sel(observation=ob["name"]).values
            inside = (v >= ob["value"]["low"]) & (v <= ob["value"]["high"])
            assert inside.any(), ob["name"]
