"""Sensitivity: Spearman equals scipy's, PRCC equals the residual-regression definition, recovers a
known monotone driver and gives ~0 for an irrelevant input; Fisher-z CIs by hand; the time-resolved
indicator agrees with the file's own p_depleted; the CLI on real files."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner
from scipy import stats
from support import assert_refused, header

from artysim.analysis import sensitivity
from artysim.cli import main
from artysim.errors import ResultsError
from artysim.jobs import run as runner
from artysim.results.reader import open_file as open_results

HORIZON = 365


def synthetic(n: int = 3000, seed: int = 1) -> xr.Dataset:
    """A results-like dataset where x0 drives the first shortage day strongly and monotonically,
    x2 weakly, x1 not at all; runs past the horizon are censored (NaN), as in a real file."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 3))
    day = 420 * (1 - x[:, 0]) ** 2 + 30 * x[:, 2] + rng.normal(0, 5, n)
    day = np.floor(np.clip(day, 0, None))
    day[day >= HORIZON] = np.nan
    time = pd.date_range("2024-01-01", periods=HORIZON, freq="D")
    return xr.Dataset(
        {"parameters": (("run", "parameter"), x), "first_shortage_day": (("run",), day),
         "shortfall_total": (("run",), 1e6 * x[:, 1]), "parameter_units": (("parameter",), ["1", "1", "1"])},
        coords={"run": np.arange(n), "parameter": ["x0", "x1", "x2"], "time": time},
        attrs={"horizon_days": HORIZON, "scenario_name": "synthetic"},
    )


def prcc_by_regression(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """PRCC by its definition: correlate the residuals of rank(x_j) and rank(y), each regressed
    (least squares, with intercept) on the ranks of the other inputs."""
    rx = stats.rankdata(x, axis=0)
    ry = stats.rankdata(y)
    out = []
    for j in range(x.shape[1]):
        others = np.column_stack([np.ones(len(y)), np.delete(rx, j, axis=1)])
        res_x = rx[:, j] - others @ np.linalg.lstsq(others, rx[:, j], rcond=None)[0]
        res_y = ry - others @ np.linalg.lstsq(others, ry, rcond=None)[0]
        out.append(np.corrcoef(res_x, res_y)[0, 1])
    return np.array(out)


def test_censored_outcome_is_horizon_plus_one():
    ds = synthetic()
    y, name, what = sensitivity.outcome_values(ds)
    raw = ds.first_shortage_day.values
    assert name == "first_shortage_day" and np.isnan(raw).any()
    np.testing.assert_array_equal(y[np.isnan(raw)], HORIZON + 1)
    np.testing.assert_array_equal(y[~np.isnan(raw)], raw[~np.isnan(raw)])
    assert f"set to day {HORIZON + 1}" in what


def test_spearman_and_prcc_against_scipy_and_definition():
    ds = synthetic()
    res = sensitivity.analyze(ds)
    rows = {r["parameter"]: r for r in res["rows"]}
    y, _, _ = sensitivity.outcome_values(ds)
    x = ds.parameters.values
    want_prcc = prcc_by_regression(x, y)
    for j, p in enumerate(["x0", "x1", "x2"]):
        assert rows[p]["spearman"] == pytest.approx(stats.spearmanr(x[:, j], y).statistic, abs=1e-12)
        assert rows[p]["prcc"] == pytest.approx(want_prcc[j], abs=1e-10)


def test_prcc_recovers_driver_and_ignores_irrelevant_input():
    ds = synthetic()
    res = sensitivity.analyze(ds)
    n, k = 3000, 2
    rows = {r["parameter"]: r for r in res["rows"]}
    assert [r["parameter"] for r in res["rows"]][0] == "x0"  # ranked by |PRCC|
    assert rows["x0"]["prcc"] < -0.95 and rows["x0"]["prcc_ci"][1] < -0.94  # close to -1
    assert rows["x2"]["prcc_ci"][0] > 0  # the weak driver is clearly significant
    # the irrelevant input: within 4 standard errors of 0 on Fisher's z scale (fixed seed)
    se = 1 / math.sqrt(n - 3 - k)
    assert abs(math.atanh(rows["x1"]["prcc"])) < 4 * se
    assert rows["x1"]["prcc_ci"][0] < 0 < rows["x1"]["prcc_ci"][1]


def test_fisher_interval_by_hand():
    lo, hi, p = sensitivity.fisher_ci(np.array([0.5]), n=103, k=0)
    z, se = math.atanh(0.5), 0.1  # 1/sqrt(103 - 3)
    assert (lo[0], hi[0]) == pytest.approx((math.tanh(z - 1.959963984540054 * se),
                                            math.tanh(z + 1.959963984540054 * se)), rel=1e-12)
    assert p[0] == pytest.approx(2 * stats.norm.sf(z / se), rel=1e-12)
    lo2, hi2, _ = sensitivity.fisher_ci(np.array([0.5]), n=103, k=19)  # PRCC given 19 others: n - 3 - 19
    assert hi2[0] - lo2[0] > hi[0] - lo[0]
    assert lo2[0] == pytest.approx(math.tanh(z - 1.959963984540054 / math.sqrt(81)), rel=1e-12)


def test_other_outcomes_and_refusals():
    ds = synthetic()
    res = sensitivity.analyze(ds, "shortfall_total")
    assert res["rows"][0]["parameter"] == "x1" and res["rows"][0]["prcc"] == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(ResultsError, match="not a per-run outcome.*expected one of"):
        sensitivity.analyze(ds, "nonsense")
    with pytest.raises(ResultsError, match="sweep file with 2 variants"):
        sensitivity.analyze(xr.concat([ds, ds], dim="variant"))
    both = xr.concat([ds, ds], dim="variant")
    assert sensitivity.analyze(both, variant=1)["rows"][0]["parameter"] == "x0"


def test_sensitivity_over_time_grid():
    ds = synthetic()
    res = sensitivity.analyze(ds, days=[30, 200, 364])
    ot = res["over_time"]
    fsd = ds.first_shortage_day.values
    for i, t in enumerate(ot["days"]):
        ind = np.nan_to_num(fsd, nan=np.inf) <= t
        assert ot["p_depleted"][i] == pytest.approx(ind.mean(), abs=1e-15)
        assert ot["prcc"]["x0"][i] == pytest.approx(prcc_by_regression(ds.parameters.values, ind)[0], abs=1e-10)
    assert ot["dates"] == ["2024-01-31", "2024-07-19", "2024-12-30"]
    assert sensitivity.day_grid(365, 6) == [60, 121, 181, 242, 303, 364]  # round(365 k / 6) - 1, half to even
    with pytest.raises(ResultsError, match="0..364"):
        sensitivity.analyze(ds, days=[400])


SCENARIO = header(150, name="sens") + """
[demand]
base = { dist = "uniform", low = 2000, high = 6000 }
daily_cv = 0.2

[[source]]
name = "depot"
kind = "stockpile"
initial = { dist = "uniform", low = 150000, high = 600000 }
dud_rate = { dist = "uniform", low = 0, high = 0.5 }
"""


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    d = tmp_path_factory.mktemp("sens")
    (d / "s.toml").write_text(SCENARIO)
    return runner.run(str(d / "s.toml"), runs=2000, seed=5, output=d / "s.nc", quiet=True)


def test_real_file_recovers_demand_and_stock_and_ignores_duds(real):
    with open_results(real) as ds:
        res = sensitivity.analyze(ds)
        x = ds.parameters.values
        y, _, _ = sensitivity.outcome_values(ds)
        p_dep = ds.p_depleted.values
    rows = {r["parameter"]: r for r in res["rows"]}
    # duds do not change what is fired, so not when shortage starts: PRCC within 4 SE of 0
    se = 1 / math.sqrt(2000 - 3 - 2)
    assert abs(math.atanh(rows["source.depot.dud_rate"]["prcc"])) < 4 * se
    assert rows["demand.base"]["prcc"] < -0.9 and rows["source.depot.initial"]["prcc"] > 0.8
    for j, p in enumerate(ds_params := ["demand.base", "source.depot.initial", "source.depot.dud_rate"]):
        assert rows[p]["spearman"] == pytest.approx(stats.spearmanr(x[:, j], y).statistic, abs=1e-12), ds_params
    ot = res["over_time"]
    np.testing.assert_allclose(ot["p_depleted"], p_dep[ot["days"]], atol=1e-12)  # same as the file's variable
    assert res["sobol"]["available"] is False and "not a --design sobol file" in res["sobol"]["note"]


def test_cli_table_and_json(real, tmp_path):
    r = CliRunner().invoke(main, ["sensitivity", str(real)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    first = next(i for i, line in enumerate(lines) if line.lstrip().startswith("rank"))
    # initial stock (range x4) and demand (x3) both drive the first shortage day; duds do not
    assert "source.depot.initial" in lines[first + 1] and "demand.base" in lines[first + 2]
    assert "source.depot.dud_rate" in lines[first + 3]
    assert "PRCC with 'first shortage on or before day t'" in r.output
    r = CliRunner().invoke(main, ["sensitivity", str(real), "--outcome", "effective_by_source:depot",
                                  "--format", "json"], catch_exceptions=False)
    assert r.exit_code == 0
    doc = json.loads(r.output)
    assert doc["outcome"] == "effective_by_source:depot" and len(doc["rows"]) == 3
    assert {"prcc", "prcc_ci", "spearman", "spearman_ci", "rank"} <= set(doc["rows"][0])
    assert_refused(CliRunner().invoke(main, ["sensitivity", str(real), "--outcome", "bogus"]), "--outcome bogus")
    assert_refused(CliRunner().invoke(main, ["sensitivity", str(real), "--outcome", "received:nowhere"]),
                   "no source 'nowhere'")
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"not a netcdf file at all")
    assert_refused(CliRunner().invoke(main, ["sensitivity", str(junk)]), "not a netCDF file")


def test_input_with_one_value_gets_no_coefficient_and_changes_nothing_else():
    ds = synthetic()
    x = ds.parameters.values
    x4 = np.column_stack([x, np.full(len(x), 7.0)])  # e.g. a discrete law with a single value
    ds4 = ds.drop_vars(["parameters", "parameter", "parameter_units"]).assign(
        parameters=(("run", "parameter"), x4)).assign_coords(parameter=["x0", "x1", "x2", "const"])
    a = {r["parameter"]: r for r in sensitivity.analyze(ds)["rows"]}
    b = {r["parameter"]: r for r in sensitivity.analyze(ds4)["rows"]}
    assert np.isnan(b["const"]["prcc"]) and np.isnan(b["const"]["spearman"])
    for p in ("x0", "x1", "x2"):
        assert b[p]["prcc"] == pytest.approx(a[p]["prcc"], abs=1e-12)
        assert b[p]["prcc_ci"] == pytest.approx(a[p]["prcc_ci"], abs=1e-12)  # k counts varying inputs only
