"""``--where``: stress questions on stored runs equal selecting those runs by hand (``ds.isel(run=mask)``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from support import assert_refused

from artysim.analysis import compare, summary
from artysim.analysis.stats import jsonable
from artysim.cli import main
from artysim.results.reader import open_file


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from artysim.jobs import run as runner

    d = tmp_path_factory.mktemp("where")
    a = runner.run("configs/baseline-2023.toml", runs=1500, output=d / "a.nc", quiet=True)
    b = runner.run("configs/nk-deal-2023.toml", runs=1500, output=d / "b.nc", quiet=True)
    return a, b


def _param(ds, path):
    return ds["parameters"].values[:, [str(x) for x in ds["parameter"].values].index(path)]


def _json(args):
    r = CliRunner().invoke(main, args + ["--format", "json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


COND = "(demand.base > 25000 or source.stockpile.initial <= quantile(0.2)) and not source.domestic.dud_rate > 0.1"


def test_summary_where_equals_selecting_by_hand(pair):
    b = pair[1]
    with open_file(b) as ds:
        base, init, dud = (_param(ds, p) for p in ("demand.base", "source.stockpile.initial",
                                                   "source.domestic.dud_rate"))
        mask = ((base > 25000) | (init <= np.quantile(init, 0.2, method="inverted_cdf"))) & ~(dud > 0.1)
        assert 50 < mask.sum() < 1400
        want = jsonable(summary.summarize(ds.isel(run=mask)))
        fsd = ds["first_shortage_day"].values[mask]
    got = _json(["summary", str(b), "--where", COND, "--stat", "p_any_shortage"])
    assert got.pop("where") == {"condition": COND, "runs": int(mask.sum()), "of_runs": 1500}
    stats = got.pop("stats")
    assert got == want
    assert stats["p_any_shortage"]["value"] == np.mean(~np.isnan(fsd))


def test_table_prints_the_condition_and_count(pair):
    r = CliRunner().invoke(main, ["summary", str(pair[1]), "--where", "source.north_korea.dud_rate >= quantile(0.9)"])
    assert r.exit_code == 0, r.output
    line = r.stdout.splitlines()[1]  # >= keeps the order statistic itself: n - ceil(0.9 n) + 1 = 151
    assert line.startswith("where source.north_korea.dud_rate >= quantile(0.9): 151 of 1,500 runs"), line


def test_compare_where_selects_the_same_runs_in_both(pair):
    a, b = pair
    cond = "source.stockpile.initial < 3e6"
    with open_file(a) as da, open_file(b) as db:
        mask = _param(da, "source.stockpile.initial") < 3e6
        want = jsonable(compare.compare(da.isel(run=mask), db.isel(run=mask)))
    got = _json(["compare", str(a), str(b), "--where", cond])
    assert got.pop("where")["runs"] == int(mask.sum())
    assert got == want
    assert got["paired"]
    r = CliRunner().invoke(main, ["compare", str(a), str(b), "--where", cond])
    assert r.stdout.startswith(f"where {cond}: {int(mask.sum()):,} of 1,500 runs")


def test_plot_where(pair, tmp_path):
    for kind in ("depletion", "histogram", "tornado"):
        out = tmp_path / f"{kind}.png"
        r = CliRunner().invoke(main, ["plot", str(pair[1]), "-k", kind, "-o", str(out), "--where",
                                      "demand.base > 25000"])
        assert r.exit_code == 0, r.output
        assert out.stat().st_size > 1000


@pytest.mark.parametrize("cond, needle", [
    ("demand.base > 1e12", "selects no run (of 1,500)"),
    ("demand.bse > 1", "unknown parameter 'demand.bse' at position 0; the file's sampled parameters: demand.base"),
    ("demand.base >", "expected a value or quantile(Q) (a number) but found the end at position 13"),
    ("demand.base 5", "expected a comparison"),
    ("(demand.base > 5", "expected ')' to close '('"),
    ("demand.base > quantile(1.2)", "outside (0, 1)"),
    ("demand.base > 5 and", "expected a sampled parameter"),
    ("", "empty condition"),
])
def test_bad_where_one_line_exit_2(pair, tmp_path, cond, needle):
    for args in (["summary", str(pair[1])], ["compare", str(pair[0]), str(pair[1])],
                 ["plot", str(pair[1]), "-k", "histogram", "-o", str(tmp_path / "x.png")]):
        assert_refused(CliRunner().invoke(main, args + ["--where", cond]), needle)
    assert not (tmp_path / "x.png").exists()


def test_where_refuses_per_day_plots(pair, tmp_path):
    r = CliRunner().invoke(main, ["plot", str(pair[1]), "-k", "fan", "-o", str(tmp_path / "f.png"), "--where",
                                  "demand.base > 1"])
    assert_refused(r, "--where works with the plots drawn from per-run values")


def test_accessor_stats_and_where(pair):
    import artysim  # noqa: F401  registers ds.artysim

    with open_file(pair[1]) as ds:
        got = ds.artysim.stats("p_any_shortage", where="demand.base > 25000")
        sub = ds.artysim.where("demand.base > 25000")
        mask = _param(ds, "demand.base") > 25000
        assert sub.sizes["run"] == mask.sum()
        assert got["p_any_shortage"]["value"] == np.mean(~np.isnan(ds["first_shortage_day"].values[mask]))
