"""`artysim compare` on real files: exact paired differences on deterministic scenarios (hand computed),
censoring at the horizon, unpaired detection, and the paired statistics against numpy."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from support import assert_refused

from artysim.analysis import compare
from artysim.cli import main
from artysim.jobs import run as runner
from artysim.results.reader import open_results

REPO = Path(__file__).resolve().parent.parent

#: Demand is exactly 100 rounds a day (no noise); the stockpile holds 1000, 1200 or 1500 rounds (a
#: sampled parameter, so runs differ), no duds. A stock of S runs out after S/100 days: day S/100 is the
#: first day with nothing to fire, the first shortage day.
BASE = """\
[scenario]
name = "{name}"
start_date = "2024-01-01"
horizon_days = 30

[run]
runs = 60
seed = 11

[demand]
base = 100
daily_cv = 0

[[source]]
name = "stockpile"
kind = "stockpile"
initial = {{ dist = "discrete", values = [1000, 1200, 1500], weights = [1, 1, 1] }}
dud_rate = 0

[output]
trajectory_sample = 0
"""

EXTRA = """
[[source]]
name = "extra"
kind = "stockpile"
initial = {extra}
dud_rate = 0
"""


def _write(folder: Path, name: str, extra: int | None) -> Path:
    text = BASE.format(name=name) + ("" if extra is None else EXTRA.format(extra=extra))
    p = folder / f"{name}.toml"
    p.write_text(textwrap.dedent(text))
    return p


def _run(folder: Path, name: str, extra: int | None, **kw) -> Path:
    return runner.run(str(_write(folder, name, extra)), output=folder / f"{name}.nc", quiet=True, **kw)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def det(tmp_path_factory):
    d = tmp_path_factory.mktemp("det")
    return {"a": _run(d, "a", None), "b": _run(d, "b", 500), "c": _run(d, "c", 3000),
            "a_seed5": _run(d, "a5", None, seed=5), "dir": d}


def test_deterministic_paired_difference_is_exact(det):
    with open_results(det["a"]) as a, open_results(det["b"]) as b:
        init = a["initial_stock"].values[:, 0].astype(float)
        assert set(init) == {1000, 1200, 1500}  # the runs differ, so pairing matters
        np.testing.assert_array_equal(a["first_shortage_day"].values, init / 100)  # hand: S/100
        np.testing.assert_array_equal(b["first_shortage_day"].values, (init + 500) / 100)
        c = compare.compare(a, b)
    assert c["paired"] and "same seed 11" in c["pairing"]
    f = c["first_shortage_day"]
    assert f["p_b_later"] == [1.0, 0.0] and f["p_b_earlier"][0] == 0.0
    d = f["delay_where_a_short"]
    assert d["runs"] == 60 and d["runs_b_never_short"] == 0 and not d["mean_is_lower_bound"]
    assert d["mean"] == [5.0, 0.0]  # 500 extra rounds at 100 a day: exactly 5 days in every run
    assert all(v == 5.0 for v in d["percentiles"].values()) and all(d["percentile_is_exact"].values())
    assert all(v == 5.0 for v in d["percentiles_upper"].values())
    e = c["effective_total"]  # everything is fired within 30 days (3000 wanted): B fires 500 more
    assert e["difference"] == [500.0, 0.0] and e["p_b_better"] == [1.0, 0.0]
    assert e["var_difference"] == 0.0 and e["variance_reduction"] == 1.0
    s = c["shortfall_total"]
    assert s["difference"] == [-500.0, 0.0] and s["p_b_better"][0] == 1.0 and not s["larger_is_better"]
    eps = c["effective_per_delivered_shell"]
    assert eps["sources"] == ["extra"] and eps["value"] == [1.0, 0.0]  # no duds: each shell is effective


def test_censoring_at_the_horizon_is_stated_and_gives_lower_bounds(det):
    with open_results(det["a"]) as a, open_results(det["c"]) as c_:
        c = compare.compare(a, c_)
        init = a["initial_stock"].values[:, 0].astype(float)
    f = c["first_shortage_day"]
    d = f["delay_where_a_short"]
    assert d["runs_b_never_short"] == 60 and d["mean_is_lower_bound"]
    # B never runs short in 30 days: the delay is known only to be >= 30 - A's day (hand: 20, 18, 15)
    assert d["mean"][0] == pytest.approx(np.mean(30 - init / 100))
    assert set(d["percentiles"].values()) <= {20.0, 18.0, 15.0}
    assert not any(d["percentile_is_exact"].values())
    assert all(v is None for v in d["percentiles_upper"].values())  # no upper bound: B never short at all
    assert f["p_b_later"][0] == 1.0 and f["runs_both_never_short"] == 0
    assert c["p_any_shortage"]["b"][0] == 0.0 and c["p_any_shortage"]["difference"][0] == -1.0
    text = compare.format_table(c)
    assert "lower bound" in text and "≥" in text and "censored at the horizon (30 days)" in text


def test_delay_percentile_bounds_with_some_runs_censored():
    """Hand case, horizon 30: A short on days 10, 20, 25, 28; B on day 12 in the first run, never in the others
    (delays 2, >= 10, >= 5, >= 2). Lower bounds sorted 2, 2, 5, 10; unbounded 2, inf, inf, inf."""
    fa = np.array([10.0, 20.0, 25.0, 28.0])
    fb = np.array([12.0, np.nan, np.nan, np.nan])
    d = compare._delay(fa, fb, 30)
    assert d["runs"] == 4 and d["runs_b_never_short"] == 3 and d["mean"][0] == pytest.approx(19 / 4)
    assert d["percentiles"]["0.25"] == 2.0 and d["percentiles_upper"]["0.25"] == 2.0  # rank 1: exact
    assert d["percentile_is_exact"]["0.25"]
    assert d["percentiles"]["0.5"] == 2.0 and d["percentiles_upper"]["0.5"] is None  # rank 2: >= 2
    assert d["percentiles"]["0.95"] == 10.0 and not d["percentile_is_exact"]["0.95"]


def test_both_never_short_counts_as_same(det):
    with open_results(det["c"]) as c1, open_results(det["c"]) as c2:
        c = compare.compare(c1, c2)
    f = c["first_shortage_day"]
    assert f["p_same"][0] == 1.0 and f["runs_both_never_short"] == 60
    assert f["delay_where_a_short"]["runs"] == 0


def test_different_seeds_are_compared_unpaired_with_welch(det):
    with open_results(det["a"]) as a, open_results(det["a_seed5"]) as b:
        c = compare.compare(a, b)
        xa = a["effective_total"].values.astype(float)
        xb = b["effective_total"].values.astype(float)
    assert not c["paired"] and "different seeds (11 vs 5)" in c["pairing"]
    welch = np.sqrt(xa.var(ddof=1) / len(xa) + xb.var(ddof=1) / len(xb))
    assert c["effective_total"]["difference"] == pytest.approx([xb.mean() - xa.mean(), welch], rel=1e-12)
    assert "p_b_later" not in c["first_shortage_day"]
    r = invoke("compare", det["a"], det["a_seed5"])
    assert r.exit_code == 0 and "NOT paired: different seeds" in r.stdout


def test_different_run_counts_pair_their_common_runs(det, tmp_path):
    """60 runs against the first 30 of them (a shard): the 30 common run indices are paired, and it says so."""
    shard = runner.run(str(_write(tmp_path, "a", None)), output=tmp_path / "s.nc", shard=0, shards=2, quiet=True)
    with open_results(det["a"]) as a, open_results(shard) as b:
        paired, why = compare.pairing(a, b)  # as they are: not the same runs
        c = compare.compare(a, b)
    assert not paired and "run indices" in why
    assert c["paired"] and c["common_runs"] == {"runs_a": 60, "runs_b": 30, "common": 30}
    assert c["effective_total"]["difference"] == [0.0, 0.0]  # the same scenario, run by run
    r = invoke("compare", det["a"], shard)
    assert r.exit_code == 0 and "common runs: A has 60 runs and B 30; the 30 run indices both hold" in r.stdout


def test_files_record_their_streams_and_compare_names_what_differs(det, tmp_path):
    """B changes the stockpile's distribution (same stream: paired) and turns demand.base into a
    schedule whose first piece keeps the stream of the value it replaces."""
    text = BASE.format(name="s").replace(
        "base = 100", 'base = [{ from = "2024-01-01", value = 100 }, { from = "2024-01-10", value = 120 }]')
    text = text.replace("values = [1000, 1200, 1500]", "values = [1000, 1300, 1500]")
    p = tmp_path / "s.toml"
    p.write_text(textwrap.dedent(text))
    b = runner.run(str(p), output=tmp_path / "s.nc", quiet=True)
    with open_results(det["a"]) as a, open_results(b) as bb:
        assert "model:demand" in a.attrs["stream_keys"]
        assert list(bb["parameter_stream"].values) == ["param:source.stockpile.initial"]
        c = compare.compare(a, bb)
    ps = c["parameters"]
    assert c["paired"]
    stream = "param:source.stockpile.initial"
    assert ps["differ"] == [{"parameter": "source.stockpile.initial", "shared_stream": True,
                             "stream_a": stream, "stream_b": stream}]
    assert ps["renamed"] == [{"a": "demand.base", "b": "demand.base@2024-01-01", "stream": "param:demand.base",
                              "same_distribution": True}]
    assert ps["only_b"] == ["demand.base@2024-01-10"]
    r = invoke("compare", det["a"], b)
    assert "parameter source.stockpile.initial differs; same stream (its draws are paired)" in r.stdout
    assert "parameter demand.base (A) is demand.base@2024-01-01 (B), drawn from the same stream" in r.stdout


def test_different_horizons_are_refused_or_compared_on_their_common_window(det, tmp_path):
    text = BASE.format(name="long").replace("horizon_days = 30", "horizon_days = 40")
    p = tmp_path / "long.toml"
    p.write_text(textwrap.dedent(text))
    long = runner.run(str(p), output=tmp_path / "long.nc", quiet=True)
    assert_refused(invoke("compare", det["a"], long), "A covers 30 days and B 40 days", "--common-window")
    r = invoke("compare", det["a"], long, "--common-window", "--format", "json")
    assert r.exit_code == 0, r.output
    c = json.loads(r.stdout)
    assert c["common_window_days"] == 30 and c["paired"] and "effective_total" not in c
    assert c["first_shortage_day"]["p_same"][0] == 1.0  # the same runs within the 30 days both cover
    r = invoke("compare", det["a"], long, "--common-window")
    assert "common window: the first 30 days only" in r.stdout
    text = BASE.format(name="late").replace('start_date = "2024-01-01"', 'start_date = "2024-02-01"')
    p.write_text(textwrap.dedent(text))
    late = runner.run(str(p), output=tmp_path / "late.nc", quiet=True)
    assert_refused(invoke("compare", det["a"], late, "--common-window"), "A starts on 2024-01-01 and B on 2024-02-01")


def test_variant_picks_sweep_variants(det, tmp_path):
    scn = _write(tmp_path, "a", None)
    out = tmp_path / "sw.nc"
    r = invoke("sweep", scn, "--vary", "demand.base=100,150", "-o", out, "-q")
    assert r.exit_code == 0, r.output
    r = invoke("compare", out, "--variant", "0,1", "--format", "json")
    assert r.exit_code == 0, r.output
    c = json.loads(r.stdout)
    assert c["variants"] == [0, 1] and c["paired"]
    assert c["shortage_days"]["difference"][0] > 0  # more demand, earlier and longer shortages
    r = invoke("compare", det["a"], out, "--variant", "0", "--format", "json")
    assert r.exit_code == 2 and "is not a sweep file" in r.stderr
    r = invoke("compare", out, det["a"], "--variant", "0,0", "--format", "json")
    assert r.exit_code == 2 and "is not a sweep file" in r.stderr
    r = invoke("compare", out, out, "--variant", "0,5")
    assert r.exit_code == 2 and "has variants 0..1, not 5" in r.stderr


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    d = tmp_path_factory.mktemp("bundled")
    a = runner.run(str(REPO / "configs/baseline-2023.toml"), runs=400, output=d / "base.nc", quiet=True)
    b = runner.run(str(REPO / "configs/nk-deal-2023.toml"), runs=400, output=d / "nk.nc", quiet=True)
    return a, b


def test_paired_statistics_of_bundled_files_match_numpy(bundled):
    with open_results(bundled[0]) as a, open_results(bundled[1]) as b:
        c = compare.compare(a, b)
        ea, eb = a["effective_total"].values.astype(float), b["effective_total"].values.astype(float)
        fa, fb = a["first_shortage_day"].values, b["first_shortage_day"].values
        nk = list(b["source"].values).index("north_korea")
        rec = b["received"].values[:, nk].astype(float)
    d = eb - ea
    e = c["effective_total"]
    assert c["paired"]
    assert e["difference"] == pytest.approx([d.mean(), d.std(ddof=1) / np.sqrt(len(d))], rel=1e-12)
    assert e["var_difference"] == pytest.approx(d.var(ddof=1), rel=1e-12)
    assert e["variance_reduction"] == pytest.approx(1 - d.var(ddof=1) / (ea.var(ddof=1) + eb.var(ddof=1)))
    assert e["variance_reduction"] > 0.5  # common random numbers pay: run i faces the same demand in both
    assert e["p_b_better"][0] == pytest.approx(np.mean(d > 0))
    # the deal never brings a shortage forward (same demand and stocks, more rounds)
    assert c["first_shortage_day"]["p_b_earlier"][0] == 0.0
    later = np.where(np.isnan(fb), np.inf, fb) > np.where(np.isnan(fa), np.inf, fa)
    assert c["first_shortage_day"]["p_b_later"][0] == pytest.approx(later.mean())
    eps = c["effective_per_delivered_shell"]
    assert eps["sources"] == ["north_korea"]
    assert eps["value"][0] == pytest.approx(d.mean() / rec.mean(), rel=1e-12)


def test_cli_compare_json_and_table(bundled):
    r = invoke("compare", bundled[0], bundled[1], "--format", "json")
    assert r.exit_code == 0, r.output
    c = json.loads(r.stdout)
    assert c["paired"] and c["a"]["scenario"] == "baseline-2023" and c["b"]["scenario"] == "nk-deal-2023"
    r = invoke("compare", bundled[0], bundled[1])
    assert r.exit_code == 0
    for text in ("paired: same seed 20230913", "days of delay where A runs short", "var. reduction",
                 "effective rounds per delivered shell (north_korea)"):
        assert text in r.stdout


def test_compare_refuses_missing_and_foreign_files(tmp_path, bundled):
    assert_refused(invoke("compare", bundled[0], tmp_path / "nope.nc"), "nope.nc", "no such file")
    p = tmp_path / "x.nc"
    p.write_text("not netcdf")
    assert_refused(invoke("compare", p, bundled[0]), "x.nc", "not a netCDF file")


def test_shards_compare_paired_with_their_single_run(tmp_path):
    scn = _write(tmp_path, "a", None)
    one = runner.run(str(scn), output=tmp_path / "one.nc", quiet=True)
    (tmp_path / "sh").mkdir()
    for k in range(3):
        runner.run(str(scn), output=tmp_path / "sh" / f"s{k}.nc", shard=k, shards=3, quiet=True)
    r = invoke("compare", one, tmp_path / "sh", "--format", "json")
    assert r.exit_code == 0, r.output
    c = json.loads(r.stdout)
    assert c["paired"] and c["b"]["runs"] == 60
    for name in ("effective_total", "shortfall_total", "shortage_days"):
        assert c[name]["difference"] == [0.0, 0.0]
    assert c["first_shortage_day"]["p_same"][0] == 1.0
