"""Observations (``[[observation]]``, SPEC §8): each run's window statistic checked against truth the
kernel writes by other paths (per-run totals, the sampled runs' whole trajectories) and against
conservation (two adjacent windows add up to the whole), and the files: ``observed(run, observation)``
with its definitions, shards that merge exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from support import ALL_FEATURES, load_scenario, simulate

from artysim.jobs import run as runner
from artysim.results.merge import merge

T = 200  # ALL_FEATURES' horizon, from 2024-01-01; day 99 is 2024-04-09, day 199 is 2024-07-18

OBS = """
[[observation]]
name = "fired_all"
quantity = "fired"
to = "2024-07-18"
statistic = "sum"
value = { dist = "uniform", low = 0, high = 1e9 }
cite = ["N33"]

[[observation]]
name = "deal_received_first"
quantity = "received"
source = "deal"
to = "2024-04-09"
statistic = "sum"
value = { dist = "normal", mean = 50000, sd = 30000 }
cite = ["N33", "D01"]

[[observation]]
name = "deal_received_rest"
quantity = "received"
source = "deal"
from = "2024-04-10"
to = "2024-07-18"
statistic = "sum"
value = { dist = "lognormal", median = 100000, sigma = 0.5 }
cite = ["N33"]

[[observation]]
name = "deal_share"
quantity = "fired"
source = "deal"
to = "2024-07-18"
statistic = "share_of_fired"
value = { dist = "uniform", low = 0, high = 0.5 }
cite = ["N33"]

[[observation]]
name = "stock_day_99"
quantity = "stock"
to = "2024-04-09"
statistic = "at_end"
value = { dist = "uniform", low = 0, high = 1e7 }
cite = ["N33"]

[[observation]]
name = "stock_mean_mid"
quantity = "stock"
from = "2024-02-01"
to = "2024-03-31"
statistic = "mean_per_day"
value = { dist = "uniform", low = 0, high = 1e7 }
cite = ["N33"]

[[observation]]
name = "fired_feb"
quantity = "fired"
from = "2024-02-01"
to = "2024-02-29"
statistic = "mean_per_day"
value = { dist = "uniform", low = 0, high = 1e7 }
cite = ["N33"]

[[observation]]
name = "duds_all"
quantity = "duds"
to = "2024-07-18"
statistic = "sum"
value = { dist = "uniform", low = 0, high = 1e9 }
cite = ["N33"]

[[observation]]
name = "shortfall_all"
quantity = "shortfall"
to = "2024-07-18"
statistic = "sum"
value = { dist = "uniform", low = 0, high = 1e9 }
cite = ["N33"]

[[observation]]
name = "old_stock_end"
quantity = "stock"
source = "old"
to = "2024-07-18"
statistic = "at_end"
value = { dist = "uniform", low = 0, high = 1e9 }
cite = ["N33"]
"""
TEXT = ALL_FEATURES + OBS
RUNS = 600


@pytest.fixture(scope="module")
def sim():
    return simulate(TEXT, RUNS, seed=4242)


def _col(sim, name):
    return sim.observed[:, [o.name for o in sim.model.observations].index(name)]


def test_whole_horizon_flows_equal_the_per_run_totals(sim):
    assert np.array_equal(_col(sim, "fired_all"), sim.total("fired"))
    assert np.array_equal(_col(sim, "shortfall_all"), sim.total("shortfall"))
    duds = sum(sim.src(s, "duds") for s in ("old", "factory", "deal"))
    assert np.array_equal(_col(sim, "duds_all"), duds)
    assert np.array_equal(_col(sim, "old_stock_end"), sim.src("old", "final"))
    fired = sim.total("fired").astype(float)
    share = np.where(fired > 0, sim.src("deal", "fired") / np.where(fired > 0, fired, 1), np.nan)
    assert np.allclose(_col(sim, "deal_share"), share, equal_nan=True, rtol=0, atol=1e-15)
    assert 0 < np.nanmean(_col(sim, "deal_share")) < 1


def test_adjacent_windows_add_up_to_the_whole(sim):
    """Conservation: received in days 0..99 plus days 100..199 is everything received."""
    got = _col(sim, "deal_received_first") + _col(sim, "deal_received_rest")
    assert np.array_equal(got, sim.src("deal", "received"))
    assert (_col(sim, "deal_received_first") > 0).any() and (_col(sim, "deal_received_rest") > 0).any()


def test_stock_and_partial_windows_equal_the_sampled_trajectories(sim):
    """The sampled runs' trajectories (written by the kernel's accounting, not by the observation
    phase) give the stock on a day, its mean over a window and the fire of a month exactly."""
    n = sim.daily.sample_stock.shape[0]
    assert n == 50
    stock, fired = sim.daily.sample_stock, sim.daily.sample_fired
    assert np.array_equal(_col(sim, "stock_day_99")[:n], stock[:, 99])
    assert np.allclose(_col(sim, "stock_mean_mid")[:n], stock[:, 31:91].mean(axis=1), rtol=1e-14)
    assert np.allclose(_col(sim, "fired_feb")[:n], fired[:, 31:60].sum(axis=1) / 29, rtol=1e-14)


def test_threads_and_batches_do_not_change_observations(sim):
    other = simulate(TEXT, RUNS, seed=4242, threads=1, batch_size=77)
    assert np.array_equal(other.observed, sim.observed, equal_nan=True)


def test_results_file_and_merged_shards(tmp_path):
    loaded = load_scenario(TEXT)
    whole = tmp_path / "whole.nc"
    runner.run_loaded(loaded, output=whole, runs=300, seed=7, quiet=True)
    parts = []
    for k in range(3):
        p = tmp_path / f"s{k}.nc"
        runner.run_loaded(loaded, output=p, runs=300, seed=7, quiet=True, shard=k, shards=3)
        parts.append(str(p))
    merged = merge(parts, tmp_path / "merged.nc")
    with xr.open_dataset(whole) as a, xr.open_dataset(merged) as b:
        assert a["observed"].dims == ("run", "observation")
        assert list(a["observation"].values) == [o.name for o in loaded.model.observations]
        assert np.array_equal(a["observed"].values, b["observed"].values, equal_nan=True)
        defs = json.loads(a["observed"].attrs["definitions"])
        assert defs[1] == {"name": "deal_received_first", "quantity": "received", "source": "deal", "from": None,
                           "to": "2024-04-09", "statistic": "sum",
                           "value": {"dist": "normal", "mean": 50000.0, "sd": 30000.0}, "cite": ["N33", "D01"]}
        assert str(a["observation_cite"].values[1]) == "N33, D01"
        assert str(a["observation_window"].values[2]) == "2024-04-10/2024-07-18"
        assert np.array_equal(a["observed"].values[:, 0], a["fired_total"].values)


def test_a_scenario_without_observations_has_no_observation_dimension(tmp_path):
    out = tmp_path / "plain.nc"
    runner.run_loaded(load_scenario(ALL_FEATURES), output=out, runs=50, seed=1, quiet=True)
    with xr.open_dataset(out) as ds:
        assert "observation" not in ds.dims and "observed" not in ds
