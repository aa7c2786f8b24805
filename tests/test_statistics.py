"""Statistics by name (``summary --stat``): each equals the same quantity computed by hand with numpy from
the file, each standard error its textbook formula, and every bad expression is one line, exit 2."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pytest
import scipy.stats as st
from click.testing import CliRunner
from support import assert_refused

from artysim.analysis import statistics as S
from artysim.analysis.stats import Z95
from artysim.cli import main
from artysim.results.reader import open_file

SCN = "configs/nk-deal-2023.toml"


@pytest.fixture(scope="module")
def nk(tmp_path_factory):
    from artysim.jobs import run as runner

    d = tmp_path_factory.mktemp("stats")
    return runner.run(SCN, runs=2000, output=d / "nk.nc", quiet=True)


def _stats(path, *texts):
    r = CliRunner().invoke(main, ["summary", str(path), "--format", "json"] + [a for t in texts for a in ("--stat", t)])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["stats"]


def test_statistics_equal_numpy_by_hand(nk):
    with open_file(nk) as ds:
        n = ds.sizes["run"]
        fsd = ds["first_shortage_day"].values.astype(float)
        fired, demand = ds["fired_total"].values.astype(float), ds["demand_total"].values.astype(float)
        eff = ds["effective_total"].values.astype(float)
        src = [str(s) for s in ds["source"].values]
        rec = ds["received"].values[:, src.index("north_korea")].astype(float)
        smin = ds["stock_min"].values.astype(float)
        start = dt.date.fromisoformat(ds.attrs["start_date"])
    day = (dt.date(2024, 3, 1) - start).days
    texts = ["p_any_shortage", "p_short_by(2024-03-01)", "mean(received:north_korea)", "mean(stock_min)",
             "fill_rate", "effective_fill_rate", "quantile(stock_min, 0.25)", "quantile(first_shortage_day, 0.1)",
             "quantile(first_shortage_day, 0.99)", "se(p_any_shortage)", "halfwidth(fill_rate)"]
    got = _stats(nk, *texts)
    p = np.mean(~np.isnan(fsd))
    assert got["p_any_shortage"]["value"] == p
    assert math.isclose(got["p_any_shortage"]["se"], math.sqrt(p * (1 - p) / n), rel_tol=1e-12)
    pb = np.mean(fsd <= day)  # NaN (never short) compares False
    assert 0 < pb < p
    assert got["p_short_by(2024-03-01)"]["value"] == pb
    assert math.isclose(got["p_short_by(2024-03-01)"]["se"], math.sqrt(pb * (1 - pb) / n), rel_tol=1e-12)
    for text, x in (("mean(received:north_korea)", rec), ("mean(stock_min)", smin)):
        assert math.isclose(got[text]["value"], x.mean(), rel_tol=1e-12)
        assert math.isclose(got[text]["se"], x.std(ddof=1) / math.sqrt(n), rel_tol=1e-12)
    for text, num in (("fill_rate", fired), ("effective_fill_rate", eff)):
        r = num.sum() / demand.sum()
        se = np.std(num - r * demand, ddof=1) / (demand.mean() * math.sqrt(n))  # delta method
        assert math.isclose(got[text]["value"], r, rel_tol=1e-12)
        assert math.isclose(got[text]["se"], se, rel_tol=1e-12)
    assert math.isclose(got["halfwidth(fill_rate)"]["value"], Z95 * got["fill_rate"]["se"], rel_tol=1e-12)
    assert got["se(p_any_shortage)"]["value"] == got["p_any_shortage"]["se"]
    # quantiles: numpy's inverted_cdf order statistic; the SE-like half-width from the binomial ranks
    q = got["quantile(stock_min, 0.25)"]
    assert q["value"] == np.quantile(smin, 0.25, method="inverted_cdf")
    lo, hi = int(st.binom.ppf(0.025, n, 0.25)), int(st.binom.ppf(0.975, n, 0.25)) + 1
    xs = np.sort(smin)
    assert q["ci95"] == [xs[lo - 1], xs[hi - 1]]
    assert math.isclose(q["se"], (xs[hi - 1] - xs[lo - 1]) / (2 * Z95), rel_tol=1e-12)
    censored = np.where(np.isnan(fsd), np.inf, fsd)
    assert got["quantile(first_shortage_day, 0.1)"]["value"] == np.quantile(censored, 0.1, method="inverted_cdf")
    assert p < 0.99  # so the 0.99 quantile lies among runs never short
    assert got["quantile(first_shortage_day, 0.99)"] == {"value": None, "se": None, "ci95": [None, None],
                                                          "beyond_horizon": True}


def test_table_prints_one_line_each(nk):
    r = CliRunner().invoke(main, ["summary", str(nk), "--stat", "p_any_shortage", "--stat",
                                  "quantile(first_shortage_day, 0.99)"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert any(x.startswith("p_any_shortage = 0.") and " ± 0.0" in x for x in lines), r.stdout
    assert "quantile(first_shortage_day, 0.99) = beyond horizon" in lines


def test_csv_has_a_row_per_stat(nk):
    r = CliRunner().invoke(main, ["summary", str(nk), "--format", "csv", "--stat", "mean(stock_min)"])
    assert r.exit_code == 0
    assert any(line.startswith("mean(stock_min),,") for line in r.stdout.splitlines())


@pytest.mark.parametrize("expr, needle", [
    ("quantile(first_shortage_dy, 0.1)", "unknown variable 'first_shortage_dy' at position 9; known: "),
    ("mean(received:nowhere)", "unknown source 'nowhere' at position 14"),
    ("mean(received)", "'received' is per source at position 5"),
    ("mean(stock_min", "expected ')' to close mean( but found the end at position 14"),
    ("p_short_by(2024-02-30)", "'2024-02-30' is not a date at position 11"),
    ("p_short_by(03/01/2024)", "unexpected character '/' at position 13"),
    ("p_short_by(2024-1-1)", "expected a date YYYY-MM-DD"),
    ("p_short_by(2030-01-01)", "outside the horizon"),
    ("quantile(stock_min, 1)", "quantile level 1 is outside (0, 1) at position 20"),
    ("quantile(stock_min, 0)", "outside (0, 1)"),
    ("p_any_shortage junk", "unexpected 'junk' after the expression at position 15"),
    ("", "empty expression at position 0"),
    ("  ", "empty expression"),
    ("p_any_shortag", "unknown statistic 'p_any_shortag' at position 0"),
    ("p_any_shortage <= 0.1", "a statistic, not a rule"),
    ("mean(first_shortage_day)", "first_shortage_day has no mean"),
    ("se(se(p_any_shortage))", "is not estimated"),
    ("mean(stock_min) $", "unexpected character '$' at position 16"),
])
def test_bad_expressions_one_line_exit_2(nk, expr, needle):
    r = CliRunner().invoke(main, ["summary", str(nk), "--stat", expr])
    line = assert_refused(r, needle)
    assert line.startswith(f"artysim: error: --stat {expr!r}: ")


CTX = S.Context(dt.date(2024, 1, 1), 100, ("a", "b"))


@pytest.mark.parametrize("rule, needle", [
    ("se(p_any_shortage) <= 0", "can never be met"),
    ("halfwidth(fill_rate) < 0", "can never be met"),
    ("p_any_shortage <= 2", "always holds"),
    ("p_any_shortage < -0.1", "can never hold"),
    ("fill_rate >= 1.5", "can never hold"),
    ("p_any_shortage", "expected a comparison"),
    ("p_any_shortage <= ", "expected a threshold (a number) but found the end"),
    ("p_any_shortage <= 0.1 0.2", "unexpected '0.2'"),
])
def test_rules_that_cannot_decide_are_refused(rule, needle):
    with pytest.raises(S.ExpressionError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        S.parse_rule(rule, CTX)


def test_rule_verdicts_beyond_mc_error():
    e = S.Estimate(0.10, 0.01, (0.10 - Z95 * 0.01, 0.10 + Z95 * 0.01))
    assert S.parse_rule("p_any_shortage <= 0.13", CTX).check(e).holds_beyond_mc  # 0.1196 <= 0.13
    v = S.parse_rule("p_any_shortage <= 0.11", CTX).check(e)
    assert v.holds and not v.holds_beyond_mc and not v.fails_beyond_mc
    v = S.parse_rule("p_any_shortage >= 0.13", CTX).check(e)
    assert not v.holds and v.fails_beyond_mc
    beyond = S.Estimate(None, None, (80.0, None), beyond_horizon=True)
    v = S.parse_rule("quantile(first_shortage_day, 0.5) >= 60", CTX).check(beyond)
    assert v.holds and v.holds_beyond_mc  # the whole interval is from day 80 on
    assert not S.parse_rule("quantile(first_shortage_day, 0.5) <= 99", CTX).check(beyond).holds


def test_any_text_parses_or_is_one_line():
    """Fuzz: any text is a statistic, a rule or a condition, or one ExpressionError line, never another error."""
    from hypothesis import given, settings
    from hypothesis import strategies as hst

    alphabet = hst.sampled_from(list("()<=>,:._-+ 0123456789eaqnsdm\n") + list(S.NAMES) + ["first_shortage_day",
                                "stock_min", "received", "a", "b", "2024-02-01", "quantile(", "and", "or", "not"])

    @settings(max_examples=300, deadline=None, database=None)
    @given(hst.lists(alphabet, max_size=12).map("".join))
    def check(text):
        for parse in (lambda: S.parse_expr(text, CTX), lambda: S.parse_rule(text, CTX),
                      lambda: S.parse_where(text, known=["demand.base", "a.b"])):
            try:
                parse()
            except S.ExpressionError as e:
                assert len(str(e).splitlines()) == 1  # the text is quoted with repr: newlines escaped

    check()


def test_p_short_by_the_last_day_is_p_any_shortage(nk):
    with open_file(nk) as ds:
        last = (dt.date.fromisoformat(ds.attrs["start_date"]) + dt.timedelta(days=ds.sizes["time"] - 1)).isoformat()
    got = _stats(nk, "p_any_shortage", f"p_short_by({last})")
    assert got["p_any_shortage"] == got[f"p_short_by({last})"]
