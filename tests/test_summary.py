"""The summary's streaming statistics equal direct computations; censoring is honest."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from support import assert_refused

from artysim.analysis import stats, summary
from artysim.cli import main


def test_blockwise_moments_equal_direct_formulas():
    rng = np.random.default_rng(7)
    n = 10_007
    x = rng.lognormal(15, 0.5, n)
    y = 0.8 * x + rng.normal(0, 1e5, n)
    m = stats.Moments(2)
    for a, b in [(0, 1), (1, 1000), (1000, 4097), (4097, n)]:  # irregular blocks, one of size 1
        m.add(np.column_stack([x[a:b], y[a:b]]))
    assert m.mean_se(0) == pytest.approx(stats.mean_se(x), rel=1e-10)
    assert m.ratio(1, 0) == pytest.approx(stats.ratio_of_means(y, x), rel=1e-9)


def test_censored_percentiles_do_not_use_short_runs_only():
    days = np.array([10.0, 20.0, 30.0] + [np.nan] * 7)  # 30 % of runs short
    p = stats.censored_percentiles(days, horizon=365, qs=(0.1, 0.25, 0.3, 0.5))
    assert p[0.1] == 10.0 and p[0.25] == 30.0 and p[0.3] == 30.0
    assert p[0.5] is None  # fewer than half ran short: the median is beyond the horizon


def test_wilson_interval_matches_closed_form():
    lo, hi = stats.wilson(31, 100)
    z = stats.Z95
    p, n = 0.31, 100
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (lo, hi) == pytest.approx((centre - half, centre + half), rel=1e-12)
    assert stats.wilson(0, 50)[0] == pytest.approx(0.0, abs=1e-15)  # the bound is 0 up to rounding
    assert stats.wilson(50, 50)[1] == pytest.approx(1.0, abs=1e-15)


def test_summary_of_a_real_file_matches_numpy(tmp_path):
    from artysim.jobs import run as runner
    from artysim.results.reader import open_file as open_results

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
    assert s["fill_rate"] == pytest.approx(stats.ratio_of_means(fired, demand), rel=1e-9)
    assert s["sources"][nk]["duds"] == pytest.approx(stats.mean_se(duds), rel=1e-9)
    assert s["p_any_shortage"] == np.mean(~np.isnan(fsd))


# -- percentiles' intervals, formats, shards ---------------------------------------------------------

def test_percentile_interval_ranks_by_hand():
    days = np.arange(100.0)  # every run short, day k for the run of rank k + 1
    ci = stats.censored_percentile_ci(days, qs=(0.5,))
    # Binomial(100, 0.5): 2.5 % quantile 40, 97.5 % quantile 60 -> ranks 40 and 61 -> days 39 and 60
    assert ci[0.5] == (39.0, 60.0)
    half_short = np.array([1.0] * 50 + [np.nan] * 50)
    lo, hi = stats.censored_percentile_ci(half_short, qs=(0.5,))[0.5]
    assert lo == 1.0 and hi is None  # the upper bound lies beyond the horizon


def test_percentile_interval_covers_the_true_median():
    """Coverage over 2,000 samples of 200 exponential first-shortage days, 30 % censored at the horizon:
    the order-statistic interval is conservative, so coverage >= 95 % - 4 SE (SE = sqrt(.95 .05 / 2000))."""
    rng = np.random.default_rng(3)
    horizon = float(np.log(1 / 0.3))  # P(day >= horizon) = 0.3 for a unit exponential
    true_median = float(np.log(2))
    hits = 0
    reps = 2000
    for _ in range(reps):
        d = rng.exponential(1.0, 200)
        d[d >= horizon] = np.nan
        lo, hi = stats.censored_percentile_ci(d, qs=(0.5,))[0.5]
        hits += lo <= true_median and (hi is None or true_median <= hi)
    assert hits / reps >= 0.95 - 4 * math.sqrt(0.95 * 0.05 / reps)


@pytest.fixture(scope="module")
def nk_shards(tmp_path_factory):
    from artysim.jobs import run as runner

    d = tmp_path_factory.mktemp("shards")
    one = runner.run("configs/nk-deal-2023.toml", runs=600, output=d / "one.nc", quiet=True)
    (d / "sh").mkdir()
    for k in range(3):
        runner.run("configs/nk-deal-2023.toml", runs=600, shard=k, shards=3, output=d / "sh" / f"s{k}.nc",
                   quiet=True)
    return one, d / "sh"


def test_shards_read_as_one_equal_the_single_file(nk_shards):
    from artysim.results.reader import open_results

    one, folder = nk_shards
    with open_results(one) as a, open_results(folder) as b:
        assert b.attrs["combined_from"] == 3 and int(b.sizes["run"]) == 600
        for name in ("first_shortage_day", "effective_total", "duds", "parameters", "run", "p_short",
                     "stock_quantile", "p_depleted", "stock_sample", "fired_mean"):
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
        # rows read lazily across shard boundaries, in any order
        np.testing.assert_array_equal(a["duds"][150:450:7].values, b["duds"][150:450:7].values)
        np.testing.assert_array_equal(a["fired_total"][::-3].values, b["fired_total"][::-3].values)
        sa, sb = summary.summarize(a), summary.summarize(b)
    assert summary.format_csv(sa) == summary.format_csv(sb)
    with open_results(sorted(str(p) for p in folder.glob("*.nc"))) as c, \
            open_results([str(folder / "s*.nc")]) as g:
        assert summary.format_csv(summary.summarize(c)) == summary.format_csv(summary.summarize(g))


def test_partial_shards_say_what_is_missing(nk_shards):
    _, folder = nk_shards
    r = CliRunner().invoke(main, ["summary", str(folder / "s0.nc"), str(folder / "s2.nc")])
    assert r.exit_code == 0, r.output
    first = r.stdout.splitlines()[0]  # said first, not 20 lines down under a run range that hides the gap
    assert "PARTIAL: 400 of 600 runs; runs 200..399 (shards 1 of 3) are missing and not counted" in first
    assert "runs 0..599" not in r.stdout
    assert "partial: runs 200..399 (shards 1 of 3) are missing and not counted" in r.stdout
    s = json.loads(CliRunner().invoke(main, ["summary", str(folder / "s0.nc"), str(folder / "s2.nc"),
                                             "--format", "json"]).stdout)
    assert (s["runs"], s["runs_total"]) == (400, 600)


def test_merge_into_the_shards_folder_keeps_it_readable(nk_shards, tmp_path):
    """`merge -o DIR/all.nc DIR` then `summary DIR`: the merged file is made of the shards beside it and is
    left out (its runs are not counted twice, nor refused as overlapping); merging again replaces it."""
    import shutil

    one, folder = nk_shards
    d = tmp_path / "sh"
    shutil.copytree(folder, d)
    invoke = CliRunner().invoke
    r = invoke(main, ["merge", "-o", str(d / "all.nc"), str(d)])
    assert r.exit_code == 0, r.output
    want = invoke(main, ["summary", str(one), "--format", "csv"]).stdout
    for args in ([str(d)], [str(d / "*.nc")], [str(d / "all.nc")]):
        r = invoke(main, ["summary", *args, "--format", "csv"])
        assert r.exit_code == 0, (args, r.output)
        assert r.stdout == want, args
    r = invoke(main, ["merge", "--force", "-o", str(d / "all.nc"), str(d)])
    assert r.exit_code == 0, r.output
    assert invoke(main, ["summary", str(d), "--format", "csv"]).stdout == want
    # a merged file with no shard of its runs beside it is still read with the others
    (d / "s0.nc").unlink()
    r = invoke(main, ["summary", str(d / "all.nc"), "--format", "csv"])
    assert r.stdout == want


def test_shortfall_percentiles_and_median_among_short_runs(nk_shards):
    """Against numpy on the per-run values: the percentile of level q is the order statistic of rank
    ceil(q n) (numpy's 'inverted_cdf'); the median among short runs is over those runs only."""
    from artysim.results.reader import open_results

    one, _ = nk_shards
    with open_results(one) as ds:
        s = summary.summarize(ds)
        sf = ds["shortfall_total"].values.astype(float)
        f = ds["first_shortage_day"].values
    short = f[~np.isnan(f)]
    assert 0 < len(short) < len(f)
    for q, v in s["shortfall_total_percentiles"].items():
        assert v == np.quantile(sf, float(q), method="inverted_cdf"), q
        lo, hi = s["shortfall_total_ci95"][q]
        assert lo <= v <= hi
    assert s["first_shortage_day_median_if_short"] == np.quantile(short, 0.5, method="inverted_cdf")
    lo, hi = s["first_shortage_day_median_if_short_ci95"]
    assert lo <= s["first_shortage_day_median_if_short"] <= hi
    text = summary.format_table(s)
    assert f"over {len(short):,} runs" in text and "percentiles over runs" in text


def test_shards_of_different_seeds_are_refused(nk_shards, tmp_path):
    from artysim.jobs import run as runner

    _, folder = nk_shards
    other = runner.run("configs/nk-deal-2023.toml", runs=600, shard=1, shards=3, seed=1, output=tmp_path / "x.nc",
                       quiet=True)
    r = CliRunner().invoke(main, ["summary", str(folder / "s0.nc"), str(other)])
    assert_refused(r, "different seeds")


def test_csv_rows_match_the_json(nk_shards):
    one, _ = nk_shards
    r = CliRunner().invoke(main, ["summary", str(one), "--format", "json"])
    s = json.loads(r.stdout)
    r = CliRunner().invoke(main, ["summary", str(one), "--format", "csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert list(rows[0]) == list(summary.CSV_COLUMNS)
    by = {(x["quantity"], x["source"]): x for x in rows}
    p = by[("p_any_shortage", "")]
    assert float(p["value"]) == s["p_any_shortage"] and float(p["se"]) == s["p_any_shortage_se"]
    assert [float(p["ci_low"]), float(p["ci_high"])] == s["p_any_shortage_ci95"]
    f = by[("effective_fill_rate", "")]
    m, se = s["effective_fill_rate"]
    assert float(f["value"]) == m and float(f["ci_high"]) == pytest.approx(m + stats.Z95 * se, rel=1e-12)
    nk = next(x for x in s["sources"] if x["name"] == "north_korea")
    assert float(by[("duds", "north_korea")]["value"]) == pytest.approx(nk["duds"][0], rel=1e-15)
    assert by[("duds", "north_korea")]["unit"] == "rounds"
    for q, v in s["first_shortage_day_percentiles"].items():
        row = by[(f"first_shortage_day_p{round(float(q) * 100)}", "")]
        # beyond the horizon is a value, not an empty (unknown) cell
        assert (row["value"] == "beyond horizon") == (v is None) and (v is None or float(row["value"]) == v)
        assert (row["ci_high"] == "beyond horizon") == (s["first_shortage_day_ci95"][q][1] is None)
    assert any(s["first_shortage_day_ci95"][q][1] is None for q in s["first_shortage_day_ci95"])  # exercised
    for q, v in s["shortfall_total_percentiles"].items():
        assert float(by[(f"shortfall_total_p{round(float(q) * 100)}", "")]["value"]) == v
    assert float(by[("first_shortage_day_median_if_short", "")]["value"]) == s["first_shortage_day_median_if_short"]
    # + the median among short runs, 5 shortfall percentiles, the mechanisms' three per-run means, per
    # source delivered rounds and effective per delivered round, their six flows per source (containers
    # since schema 3), and one share per regime
    n_rows = 2 + 1 + 5 + 1 + 5 + 9 + 3 + (7 + 2 + 6) * len(s["sources"]) + len(s["regimes"])
    assert len(rows) == n_rows
    assert float(by[("rationed_days", "")]["value"]) == s["rationed_days"][0]
    assert float(by[("share_of_days", "regime:constant")]["value"]) == 1.0


def _keys(x, out: set) -> set:
    if isinstance(x, dict):
        for k, v in x.items():
            if not k.replace(".", "").isdigit():  # quantile levels are data, not keys
                out.add(k)
            _keys(v, out)
    elif isinstance(x, list):
        for v in x:
            _keys(v, out)
    return out


def test_every_json_key_is_documented(nk_shards):
    from artysim.analysis import compare
    from artysim.results.reader import open_results

    doc = (Path(__file__).resolve().parent.parent / "docs" / "summary-json.md").read_text()
    one, folder = nk_shards
    with open_results(one) as a, open_results([folder / "s0.nc", folder / "s2.nc"]) as part:
        keys = _keys(stats.jsonable(summary.summarize(a)), set())
        keys |= _keys(stats.jsonable(summary.summarize(part)), set())
        keys |= _keys(stats.jsonable(compare.compare(a, a)), set())
    missing = sorted(k for k in keys if f"`{k}`" not in doc)
    assert not missing, f"keys not in docs/summary-json.md: {missing}"


def test_table_shows_the_percentile_intervals(nk_shards):
    from artysim.results.reader import open_results

    one, _ = nk_shards
    with open_results(one) as ds:
        s = summary.summarize(ds)
    text = summary.format_table(s)
    lo, hi = s["first_shortage_day_ci95"]["0.05"]
    assert lo is not None  # p5 is a day at 600 runs of nk-deal-2023
    want = f"p5: {int(lo)}-" + ("beyond" if hi is None else str(int(hi)))
    line = next(x for x in text.splitlines() if x.startswith("  (95% interval, days)"))
    assert want in line
    assert all(f"p{round(float(q) * 100)}:" not in line for q, ci in s["first_shortage_day_ci95"].items()
               if ci[0] is None)  # wholly beyond the horizon: not listed
