"""The summary's streaming statistics equal direct computations; censoring is honest."""

from __future__ import annotations

import math

import numpy as np
import pytest

from artysim import summary


def test_blockwise_moments_equal_direct_formulas():
    rng = np.random.default_rng(7)
    n = 10_007
    x = rng.lognormal(15, 0.5, n)
    y = 0.8 * x + rng.normal(0, 1e5, n)
    m = summary.Moments(2)
    for a, b in [(0, 1), (1, 1000), (1000, 4097), (4097, n)]:  # irregular blocks, one of size 1
        m.add(np.column_stack([x[a:b], y[a:b]]))
    assert m.mean_se(0) == pytest.approx(summary.mean_se(x), rel=1e-10)
    assert m.ratio(1, 0) == pytest.approx(summary.ratio_of_means(y, x), rel=1e-9)


def test_censored_percentiles_do_not_use_short_runs_only():
    days = np.array([10.0, 20.0, 30.0] + [np.nan] * 7)  # 30 % of runs short
    p = summary.censored_percentiles(days, horizon=365, qs=(0.1, 0.25, 0.3, 0.5))
    assert p[0.1] == 10.0 and p[0.25] == 30.0 and p[0.3] == 30.0
    assert p[0.5] is None  # fewer than half ran short: the median is beyond the horizon


def test_wilson_interval_matches_closed_form():
    lo, hi = summary.wilson(31, 100)
    z = summary.Z
    p, n = 0.31, 100
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (lo, hi) == pytest.approx((centre - half, centre + half), rel=1e-12)
    assert summary.wilson(0, 50)[0] == pytest.approx(0.0, abs=1e-15)  # the bound is 0 up to rounding
    assert summary.wilson(50, 50)[1] == pytest.approx(1.0, abs=1e-15)


def test_summary_of_a_real_file_matches_numpy(tmp_path):
    from artysim import runner
    from artysim.io import open_results

    out = runner.run("configs/nk-deal-2023.toml", runs=700, output=tmp_path / "r.nc", quiet=True)
    with open_results(out) as ds:
        old_block = summary.BLOCK
        summary.BLOCK = 256  # several blocks
        try:
            s = summary.summarize(ds)
        finally:
            summary.BLOCK = old_block
        fired = ds.fired_total.values.astype(float)
        demand = ds.demand_total.values.astype(float)
        nk = list(ds.source.values).index("north_korea")
        duds = ds.duds.values[:, nk].astype(float)
        fsd = ds.first_shortage_day.values
    assert s["fill_rate"] == pytest.approx(summary.ratio_of_means(fired, demand), rel=1e-9)
    assert s["sources"][nk]["duds"] == pytest.approx(summary.mean_se(duds), rel=1e-9)
    assert s["p_any_shortage"] == np.mean(~np.isnan(fsd))
