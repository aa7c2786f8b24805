"""``compare``, ``sensitivity``, the plots, the summary CSV and ``report`` on calibrated files (SPEC §8:
"every reading command uses the weights of a calibrated file and says so"), proved against truth the
weighted estimators did not write:

- a band observation gives 0/1 weights, so every weighted estimate must equal the plain estimate over
  the accepted runs (a subset taken here with ``isel``; SEs differ only by ddof, sqrt((n - 1) / n));
- integer weights k_i must give the plain estimates over the runs repeated k_i times (ranks, quantiles,
  correlations and means all agree with the replicated sample);
- a normal error model's weights are checked against numpy's ``average`` over the per-run variables.
One small calibrated file (and its pair) is made once for the module.
"""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from scipy.stats import mannwhitneyu
from support import assert_refused, header, load_scenario

from artysim.analysis import compare as cmp
from artysim.analysis import plots, report, sensitivity, summary
from artysim.cli import main
from artysim.jobs import run as runner

BASE = header(40, name="wcal") + """
[demand]
base = { dist = "uniform", low = 1000, high = 3000 }
daily_cv = 0.2

[[source]]
name = "old"
kind = "stockpile"
initial = { dist = "uniform", low = 20000, high = 100000 }

[[source]]
name = "fab"
kind = "production"
annual = { dist = "uniform", low = 50000, high = 400000 }
daily_cv = 0.3

[[observation]]
name = "fired_all"
quantity = "fired"
to = "2024-02-09"
statistic = "sum"
value = { dist = "uniform", low = 50000, high = 70000 }
cite = ["N33"]
"""
RUNS, SEED = 800, 7


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _plain(ds: xr.Dataset) -> xr.Dataset:
    """The file as if never calibrated."""
    out = ds.drop_vars("weight")
    out.attrs = {k: v for k, v in ds.attrs.items() if k not in ("calibrated_on", "effective_sample_size")}
    return out


@pytest.fixture(scope="module")
def f(tmp_path_factory):
    d = tmp_path_factory.mktemp("wcal")
    a = runner.run_loaded(load_scenario(BASE), output=d / "a.nc", runs=RUNS, seed=SEED, quiet=True)
    # B: more production; same seed and runs, so run i of A and B share their random inputs (paired)
    b = runner.run_loaded(load_scenario(BASE.replace("low = 50000, high = 400000", "low = 200000, high = 600000")),
                          output=d / "b.nc", runs=RUNS, seed=SEED, quiet=True)
    # the same world observed through a normal error model: weights that are not 0/1
    n = runner.run_loaded(load_scenario(BASE.replace('{ dist = "uniform", low = 50000, high = 70000 }',
                                                     '{ dist = "normal", mean = 60000, sd = 8000 }')),
                          output=d / "n.nc", runs=RUNS, seed=SEED, quiet=True)
    for src in (a, n):
        r = _cli("calibrate", src, "-o", d / f"{src.stem}-cal.nc")
        assert r.exit_code == 0, r.output
    out = {"dir": d, "a_cal": d / "a-cal.nc", "b": b, "n_cal": d / "n-cal.nc"}
    ds = {k: xr.load_dataset(v) for k, v in out.items() if k != "dir"}  # in memory, the files closed
    w = ds["a_cal"]["weight"].values
    acc = np.flatnonzero(w > 0)
    assert set(np.unique(w)) == {0.0, 1.0} and 50 < len(acc) < RUNS - 50  # a band: 0/1, and it bites
    out.update(ds=ds, acc=acc, sub_a=_plain(ds["a_cal"]).isel(run=acc), sub_b=ds["b"].isel(run=acc))
    return out


def _ddof(n: int) -> float:
    """SE with ddof 0 (weighted) over SE with ddof 1 (plain) for n runs."""
    return math.sqrt((n - 1) / n)


# ----------------------------------------------------------------------------- compare


def test_paired_compare_under_0_1_weights_is_the_plain_compare_of_the_accepted_runs(f):
    c = cmp.compare(f["ds"]["a_cal"], f["ds"]["b"])
    ref = cmp.compare(f["sub_a"], f["sub_b"])
    k = len(f["acc"])
    assert c["paired"] and ref["paired"]
    assert c["calibration"]["weights_from"] == "a" and c["calibration"]["effective_sample_size"] == k
    for side in ("a", "b"):
        assert c["p_any_shortage"][side][0] == pytest.approx(ref["p_any_shortage"][side][0], rel=1e-12)
        assert c["p_any_shortage"][side][1] == pytest.approx(ref["p_any_shortage"][side][1], rel=1e-12)
        assert c["p_any_shortage"][side][2] == pytest.approx(ref["p_any_shortage"][side][2], rel=1e-9)
    assert c["p_any_shortage"]["difference"][0] == pytest.approx(ref["p_any_shortage"]["difference"][0], abs=1e-15)
    fs, fr = c["first_shortage_day"], ref["first_shortage_day"]
    assert fs["percentiles_a"] == fr["percentiles_a"] and fs["percentiles_b"] == fr["percentiles_b"]
    for key in ("p_b_later", "p_b_earlier", "p_same"):
        assert fs[key] == pytest.approx(fr[key], rel=1e-12)
    assert fs["runs_both_never_short"] == fr["runs_both_never_short"]
    ds_, dr = fs["delay_where_a_short"], fr["delay_where_a_short"]
    assert ds_["runs"] == dr["runs"] > 0 and ds_["percentiles"] == dr["percentiles"]
    assert ds_["percentiles_upper"] == dr["percentiles_upper"]
    assert ds_["mean"][0] == pytest.approx(dr["mean"][0], rel=1e-12)
    assert ds_["mean"][1] == pytest.approx(dr["mean"][1] * _ddof(dr["runs"]), rel=1e-12)
    for name in cmp.OUTCOMES:
        it, ir = c[name], ref[name]
        for key in ("a", "b", "difference"):
            assert it[key][0] == pytest.approx(ir[key][0], rel=1e-12, abs=1e-9), (name, key)
            assert it[key][1] == pytest.approx(ir[key][1] * _ddof(k), rel=1e-12, abs=1e-12), (name, key)
        assert it["difference_percentiles"] == ir["difference_percentiles"]
        for key in ("p_b_better", "p_b_worse"):
            assert it[key] == pytest.approx(ir[key], rel=1e-12)
        for key in ("var_difference", "var_a_plus_var_b", "variance_reduction", "se_if_unpaired"):
            assert it[key] == pytest.approx(ir[key], rel=1e-12, abs=1e-12), (name, key)
    e, er = c["effective_per_delivered_shell"], ref["effective_per_delivered_shell"]
    assert e["sources"] == er["sources"] == ["fab"]
    assert e["value"][0] == pytest.approx(er["value"][0], rel=1e-12)


def test_compare_with_integer_weights_is_the_plain_compare_of_the_runs_repeated(f):
    """Weights 0, 1, 2, 3 (by run index): every weighted point estimate equals the plain one over the
    sample in which run i appears w_i times; the SE uses the ESS, (sum w)^2 / sum w^2, not sum w."""
    a = _plain(f["ds"]["a_cal"])
    w = (np.arange(RUNS) % 4).astype(np.float64)
    aw = a.assign(weight=("run", w))
    aw.attrs["calibrated_on"] = "test weights"
    rep = np.repeat(np.arange(RUNS), w.astype(int))
    c = cmp.compare(aw, f["ds"]["b"])
    ref = cmp.compare(a.isel(run=rep), f["ds"]["b"].isel(run=rep))
    assert ref["paired"]
    ess = w.sum() ** 2 / (w * w).sum()
    assert c["calibration"]["effective_sample_size"] == pytest.approx(ess, rel=1e-12)
    assert c["first_shortage_day"]["percentiles_a"] == ref["first_shortage_day"]["percentiles_a"]
    for name in cmp.OUTCOMES:
        assert c[name]["difference"][0] == pytest.approx(ref[name]["difference"][0], rel=1e-12, abs=1e-9)
        assert c[name]["difference_percentiles"] == ref[name]["difference_percentiles"]
        assert c[name]["p_b_better"][0] == pytest.approx(ref[name]["p_b_better"][0], rel=1e-12)
        d = np.asarray(f["ds"]["b"][name].values, float) - np.asarray(a[name].values, float)
        m = np.average(d, weights=w)
        assert c[name]["difference"][1] == pytest.approx(math.sqrt(np.average((d - m) ** 2, weights=w) / ess),
                                                         rel=1e-10, abs=1e-12)


def test_compare_under_an_error_models_weights_matches_numpy_average(f):
    n = f["ds"]["n_cal"]
    w = n["weight"].values
    assert len(np.unique(w)) > 100  # a density, not a band
    c = cmp.compare(n, f["ds"]["b"])
    assert c["paired"] and c["calibration"]["weights_from"] == "a"
    sa = np.isfinite(n["first_shortage_day"].values)
    assert c["p_any_shortage"]["a"][0] == pytest.approx(np.average(sa, weights=w), rel=1e-12)
    ea = n["effective_total"].values.astype(float)
    assert c["effective_total"]["a"][0] == pytest.approx(np.average(ea, weights=w), rel=1e-12)


def test_compare_takes_the_calibrated_files_weights_whichever_side_it_is(f):
    c = cmp.compare(f["ds"]["b"], f["ds"]["a_cal"])
    assert c["calibration"]["weights_from"] == "b"
    ref = cmp.compare(f["sub_b"], f["sub_a"])
    assert c["effective_total"]["difference"][0] == pytest.approx(ref["effective_total"]["difference"][0], rel=1e-12)
    same = cmp.compare(f["ds"]["a_cal"], f["ds"]["a_cal"])  # equal weights on both sides pair
    assert same["calibration"]["weights_from"] == "both (equal)"


def test_unpaired_compare_weighs_each_file_by_its_own_runs(f):
    b = f["ds"]["b"].copy()
    b.attrs["seed"] = "999"  # as if run with another seed: independent samples
    c = cmp.compare(f["ds"]["a_cal"], b)
    ref = cmp.compare(f["sub_a"], b)
    assert not c["paired"] and c["calibration"]["weights_from"] == "each file its own"
    k = len(f["acc"])
    for name in cmp.OUTCOMES:
        assert c[name]["a"][0] == pytest.approx(ref[name]["a"][0], rel=1e-12, abs=1e-9)
        assert c[name]["difference"][0] == pytest.approx(ref[name]["difference"][0], rel=1e-12, abs=1e-9)
        xa = f["sub_a"][name].values.astype(float)
        xb = b[name].values.astype(float)
        u = mannwhitneyu(xb, xa).statistic / (len(xa) * len(xb))  # scipy on the accepted runs
        assert c[name]["p_b_better"][0] == pytest.approx(u if cmp.OUTCOMES[name][1] else 1 - u, rel=1e-12)
        # Welch SE with A's effective sample size (ddof 1 for 0/1 weights, as the plain one)
        assert c[name]["difference"][1] == pytest.approx(ref[name]["difference"][1], rel=1e-12, abs=1e-12)
    assert c["p_any_shortage"]["a"][0] == pytest.approx(ref["p_any_shortage"]["a"][0], rel=1e-12)
    assert k == c["calibration"]["effective_sample_size"]["a"]


def test_compare_says_it_is_weighted_and_refuses_two_different_posteriors(f):
    r = _cli("compare", f["a_cal"], f["b"])
    assert r.exit_code == 0, r.output
    assert "calibrated on fired_all: paired: runs weighted by A's calibration weights" in r.stdout
    assert f"effective sample size {len(f['acc']):,.1f}" in r.stdout
    j = json.loads(_cli("compare", f["a_cal"], f["b"], "--format", "json").stdout)
    assert j["calibration"]["calibrated_on"] == "fired_all"
    assert "SEs from the effective sample size" in j["calibration"]["note"]
    assert_refused(_cli("compare", f["a_cal"], f["n_cal"]), "different calibration weights", "one posterior")


# ----------------------------------------------------------------------------- sensitivity


def _rows(res: dict) -> dict:
    return {r["parameter"]: r for r in res["rows"]}


def test_weighted_sensitivity_with_0_1_weights_is_the_plain_analysis_of_the_accepted_runs(f):
    res = sensitivity.analyze(f["ds"]["a_cal"])
    ref = sensitivity.analyze(f["sub_a"])
    got, exp = _rows(res), _rows(ref)
    assert set(got) == set(exp) and len(got) == 3
    for p in got:
        for key in ("prcc", "spearman", "prcc_ci", "spearman_ci"):  # the ESS is the accepted count
            assert got[p][key] == pytest.approx(exp[p][key], rel=1e-9, abs=1e-12), (p, key)
    for p in res["over_time"]["prcc"]:
        assert res["over_time"]["prcc"][p] == pytest.approx(ref["over_time"]["prcc"][p], rel=1e-9, abs=1e-12,
                                                            nan_ok=True)
    assert res["over_time"]["p_depleted"] == pytest.approx(ref["over_time"]["p_depleted"], rel=1e-12)
    assert res["calibration"]["effective_sample_size"] == len(f["acc"])
    assert res["method"].startswith("calibrated on fired_all: weighted by the runs' calibration weights")
    assert "no Sobol" in res["sobol"]["note"]
    assert "calibrated on fired_all" in sensitivity.format_table(res)


def test_weighted_sensitivity_with_integer_weights_is_the_plain_analysis_of_the_runs_repeated(f):
    a = _plain(f["ds"]["a_cal"])
    w = (np.arange(RUNS) % 3).astype(np.float64)
    aw = a.assign(weight=("run", w))
    got = _rows(sensitivity.analyze(aw, "effective_total"))
    exp = _rows(sensitivity.analyze(a.isel(run=np.repeat(np.arange(RUNS), w.astype(int))), "effective_total"))
    for p in got:
        assert got[p]["spearman"] == pytest.approx(exp[p]["spearman"], rel=1e-9)
        assert got[p]["prcc"] == pytest.approx(exp[p]["prcc"], rel=1e-9)


# ----------------------------------------------------------------------------- plots


def _texts(fig) -> str:
    parts = [fig._suptitle.get_text() if fig._suptitle else ""]
    parts += [ax.get_title(loc="left") for ax in fig.axes]
    return "\n".join(parts)


def test_swing_rows_under_0_1_weights_are_those_of_the_accepted_runs(f):
    rows, _, _ = plots.swing_rows(f["ds"]["a_cal"])
    sub = f["sub_a"]
    x = sub["parameters"].values.astype(float)
    y = sensitivity.outcome_values(sub, None)[0]
    params = [str(p) for p in sub["parameter"].values]
    assert len(rows) == 3
    for r in rows:  # independently: inverted-cdf deciles of the accepted runs, plain means and SEs
        xj = x[:, params.index(r["parameter"])]
        lo_q, hi_q = np.quantile(xj, [0.1, 0.9], method="inverted_cdf")
        lo, hi = y[xj <= lo_q], y[xj >= hi_q]
        assert r["swing"] == pytest.approx(hi.mean() - lo.mean(), rel=1e-12)
        se = math.sqrt(np.var(hi) / len(hi) + np.var(lo) / len(lo))  # ddof 0, as the weighted SE
        assert r["se"] == pytest.approx(se, rel=1e-12)


def test_weighted_plot_kinds_use_the_weights_and_prior_only_kinds_say_so(f):
    a = f["ds"]["a_cal"]
    sub = f["sub_a"]
    w = a["weight"].values
    # the depletion curve of A in the compare plot (and the depletion plot): weighted, = the accepted runs'
    pd_, n = plots._depleted_by_day(a, w)
    fsd = sub["first_shortage_day"].values
    exp = [np.mean(np.nan_to_num(fsd, nan=np.inf) <= t) for t in range(a.sizes["time"])]
    assert pd_ == pytest.approx(exp, rel=1e-12) and n == len(f["acc"])
    # the source bars: weighted means over runs
    assert plots._wmean(a, "effective_by_source") == pytest.approx(sub["effective_by_source"].mean("run").values,
                                                                   rel=1e-12)
    for kind, says in (("tornado", "runs weighted"), ("swing", "runs weighted"), ("depletion", "runs weighted"),
                       ("sources", "totals weighted"), ("fan", "PRIOR runs"), ("stock", "PRIOR runs")):
        t = _texts(plots.plot(a, kind))
        assert "calibrated on fired_all" in t and says in t, (kind, t)
        if kind in ("fan", "stock"):
            assert "cannot be reweighted without per-run trajectories" in t
    t = _texts(plots.plot(a, "compare", against=f["ds"]["b"]))
    assert "runs weighted by A's calibration weights" in t
    d = plots.delay_data(a, f["ds"]["b"], w)
    ref = plots.delay_data(sub, f["sub_b"])
    assert d["censored_share"] == pytest.approx(ref["censored"] / ref["a_short"], rel=1e-12)
    assert np.array_equal(np.sort(d["finite"]), np.sort(ref["finite"]))


# ----------------------------------------------------------------------------- summary CSV, report


def test_summary_csv_carries_the_calibration_rows(f):
    r = _cli("summary", f["a_cal"], "--format", "csv")
    assert r.exit_code == 0, r.output
    rows = {row["quantity"]: row for row in csv.DictReader(io.StringIO(r.stdout))}
    assert rows["calibrated_on"]["value"] == "fired_all" and rows["calibrated_on"]["unit"] == "observations"
    assert float(rows["effective_sample_size"]["value"]) == len(f["acc"])
    s = summary.summarize(f["sub_a"])
    assert float(rows["p_any_shortage"]["value"]) == pytest.approx(s["p_any_shortage"], rel=1e-12)
    plain = {row["quantity"] for row in csv.DictReader(io.StringIO(_cli("summary", f["b"], "--format",
                                                                         "csv").stdout))}
    assert "calibrated_on" not in plain and "effective_sample_size" not in plain


def test_report_weights_its_headline_says_it_is_calibrated_and_explains_what_it_cannot_compare(f):
    html = report.build([f["a_cal"], f["n_cal"]])
    k = len(f["acc"])
    assert "A: wcal is calibrated</b> on the observations fired_all" in html
    assert f'data-key="calibration.effective_sample_size" data-file="0" data-digits="1">{k:,.1f}<' in html
    p = summary.summarize(f["sub_a"])["p_any_shortage"]  # the headline is the accepted runs' share
    assert f'data-key="p_any_shortage" data-file="0" data-unit="%" data-digits="2">{100 * p:,.2f}<' in html
    prior = float(np.mean(np.isfinite(f["ds"]["a_cal"]["first_shortage_day"].values)))
    assert f"(prior, all runs unweighted, {100 * prior:.2f} %)" in html
    n = f["ds"]["n_cal"]  # an error model's weights: the section's posterior is numpy's weighted average
    pw = np.average(np.isfinite(n["first_shortage_day"].values), weights=n["weight"].values)
    assert f"weighted (posterior) P(any shortage) {100 * pw:.2f}" in html
    assert "Not compared:" in html and "different calibration weights" in html
    assert "Weighted: calibrated on fired_all" in html  # the sensitivity section
