"""Re-fire of failed rounds (``demand.refire``, SPEC §7) and the per-day statistics by source.

Truth not written here: the geometric series of binomial thinning (refire = 1 fires D / (1 - q) a day in
expectation), conservation of rounds (tests/invariants.py), closed forms of deterministic stocks, and
the kernel's own per-run totals against its per-day sums."""

from __future__ import annotations

import numpy as np
import pytest
from invariants import check_dataset, check_run_outputs
from support import header, load_scenario, simulate

from artysim.core import bins, layout
from artysim.jobs import run as runner
from artysim.results.reader import open_file

T = 40


def _scenario(*, refire="1", dud="0.25", accuracy="1.0", initial="1e9", cv="0.0", base="1000", extra=""):
    return header(T, sample=3) + f"""
[demand]
base = {base}
daily_cv = {cv}
refire = {refire}

[[source]]
name = "depot"
kind = "stockpile"
initial = {initial}
dud_rate = {dud}
accuracy = {accuracy}
""" + extra


@pytest.mark.parametrize("dud,acc", [(0.25, 1.0), (0.4, 0.75)])
def test_full_refire_fires_wanted_over_success_probability(dud, acc):
    """refire = 1, ample stock: each salvo re-asks all its failures, so a day fires D / p with p = (1 - q) acc
    the success probability (the mean of a sum of geometric thinning). Checked within 4 Monte Carlo SEs."""
    runs = 400
    s = simulate(_scenario(dud=str(dud), accuracy=str(acc)), runs, seed=3)
    check_run_outputs(s.model, s.totals, s.per_source)
    per_day = s.total("fired") / T
    want = 1000 / ((1 - dud) * acc)
    se = per_day.std(ddof=1) / np.sqrt(runs)
    assert abs(per_day.mean() - want) < 4 * se, (per_day.mean(), want, se)
    # with ample stock every correction is fired: nothing short, re-fired = asked = fired - wanted
    assert (s.total("shortfall") == 0).all()
    assert (s.src("depot", "refired") == s.total("refire_asked")).all()
    assert (s.total("fired") - s.src("depot", "refired") == s.total("demand")).all()
    # effective rounds: every wanted round is eventually effective (the chain stops only at 0 failures)
    np.testing.assert_array_equal(s.total("effective"), s.total("demand"))


def test_refire_without_failures_is_the_model_without_refire():
    """With no duds and no misses there is nothing to re-fire: refire = 1 gives run for run the same totals
    and per-day statistics as refire = 0 (the re-fire streams are drawn from only when rounds fail)."""
    a = simulate(_scenario(refire="1", dud="0.0", initial="30000", cv="0.3"), 300, seed=9)
    b = simulate(_scenario(refire="0", dud="0.0", initial="30000", cv="0.3"), 300, seed=9)
    np.testing.assert_array_equal(a.totals, b.totals)
    np.testing.assert_array_equal(a.per_source, b.per_source)
    np.testing.assert_array_equal(a.daily.hist, b.daily.hist)


def test_higher_dud_rate_brings_the_first_shortage_earlier_run_by_run():
    """Under common random numbers (same seed: same demand, same stock), a higher dud rate with refire = 1
    re-fires more every day, so stock is lower and the first shortage comes no later, in every run. (The
    binomial draws differ between dud rates, but the gaps, about D (q2 - q1) / (1 - q) rounds a day,
    are 20 to 40 binomial standard deviations: a reversal in any run would be a bug, not chance.)"""
    runs = 300
    first = []
    for dud in ("0.1", "0.3", "0.5"):
        s = simulate(_scenario(dud=dud, initial='{ dist = "uniform", low = 15000, high = 40000 }', cv="0.25"),
                     runs, seed=17)
        check_run_outputs(s.model, s.totals, s.per_source)
        f = s.total("first_short")
        first.append(np.where(f < 0, T, f))
    for lo, hi in zip(first, first[1:]):
        assert (hi <= lo).all(), np.flatnonzero(hi > lo)[:5]
        assert (hi < lo).sum() > runs // 4  # and strictly earlier in many runs: the effect is real
    # without re-fire the dud rate does not change when stock runs out (the defect re-fire repairs)
    no = [simulate(_scenario(refire="0", dud=d, initial='{ dist = "uniform", low = 15000, high = 40000 }',
                             cv="0.25"), runs, seed=17).total("first_short") for d in ("0.1", "0.5")]
    np.testing.assert_array_equal(no[0], no[1])


MIXED = header(60, sample=2) + """
[demand]
base = { dist = "uniform", low = 3000, high = 6000 }
daily_cv = 0.3
refire = { dist = "uniform", low = 0.2, high = 1 }

[[source]]
name = "depot"
kind = "stockpile"
initial = { dist = "uniform", low = 50000, high = 150000 }
dud_rate = 0.1

[[source]]
name = "plant"
kind = "production"
annual = 500000
daily_cv = 0.2
dud_rate = 0.05
accuracy = 0.9

[[source]]
name = "deal"
kind = "import"
shipments_per_month = 3
shipment_size = { dist = "uniform", low = 20000, high = 60000 }
transit_days = 5
dud_rate = { dist = "uniform", low = 0.2, high = 0.5 }
lot_concentration = 30
accuracy = 0.8
"""


@pytest.mark.parametrize("policy", ["", '[policy]\nissue = "priority"\norder = ["deal", "plant", "depot"]\n',
                                    "[policy]\nreserve_days = 3\nration_fraction = 0.5\n"])
def test_refire_conserves_rounds_under_every_issue_policy(policy):
    """Conservation and the fire balance demand + refire asked = fired + shortfall, with stock running out
    (so salvos are cut short), proportional and priority issue, and a ration reserve re-fire never draws."""
    s = simulate(MIXED + policy, 300, seed=4)
    check_run_outputs(s.model, s.totals, s.per_source)
    assert s.total("refire_asked").sum() > 0 and (s.total("shortfall") > 0).any()
    refired = s.per_source[:, :, layout.P_REFIRED]
    assert (refired[:, 1:] > 0).any()  # more than one source re-fires
    # per-day sums of fired by source include the re-fired rounds (kernel totals vs day sums)
    np.testing.assert_array_equal(s.daily.src_sums[:, 0, :].sum(axis=0), s.per_source[:, :, layout.P_FIRED].sum(axis=0))
    np.testing.assert_array_equal(s.daily.sums[:, layout.V_FIRED].sum(), s.total("fired").sum())
    np.testing.assert_array_equal(s.daily.sums[:, layout.V_SHORTFALL].sum(), s.total("shortfall").sum())


def test_refire_results_do_not_depend_on_threads_or_batches():
    """Re-fire draws one run at a time from the run's own streams: threads and batch size change nothing."""
    loaded = load_scenario(MIXED)
    a = runner.simulate_in_memory(loaded, 300, 8, threads=1, batch_size=300)
    b = runner.simulate_in_memory(loaded, 300, 8, threads=2, batch_size=97)
    for k in ("totals", "per_source"):
        np.testing.assert_array_equal(a[1][k], b[1][k])
    for f in ("hist", "sums", "src_sums", "src_hist", "src_day", "doh_hist"):
        np.testing.assert_array_equal(getattr(a[2], f), getattr(b[2], f))


STOCK = header(50, sample=0) + """
[demand]
base = 1000

[[source]]
name = "depot"
kind = "stockpile"
initial = 60000

[[source]]
name = "plant"
kind = "production"
annual = 73000
"""


def test_stock_by_source_closed_form():
    """No noise, no duds: the plant makes 200 rounds a day; proportional issue splits the day's 1000 rounds
    by stock. The per-day sums by source add up to the all-source stock sum, arrivals are the plant's 200
    a day, histograms count every run once, and days of fire on hand equal stock / 1000 within a bin."""
    runs = 20
    s = simulate(STOCK, runs, seed=1)
    d = s.daily
    np.testing.assert_array_equal(d.src_day[:, 0, :].sum(axis=1), d.sums[:, layout.V_STOCK])
    np.testing.assert_array_equal(d.src_day[:, 1, :], np.array([[0, 200 * runs]] * 50))
    assert (d.src_hist.sum(axis=-1) == runs).all() and (d.doh_hist.sum(axis=-1) == runs).all()
    total = 60000 - 800 * np.arange(1, 51)  # end-of-day stock, all sources: + 200 - 1000 a day
    np.testing.assert_array_equal(d.sums[:, layout.V_STOCK], runs * total)
    derived = s.derived()
    lower, upper = bins.bin_edges()
    doh = derived["days_on_hand_quantile"][:, 2]
    want = total / 1000.0
    assert np.all(np.abs(doh - want) <= np.maximum(want / bins.SUB, 0.01) + 1e-9), np.c_[doh, want][:5]
    # by source: every run identical, so every quantile lies in the bin of that run's stock
    for j in range(2):
        per_run = d.src_day[:, 0, j] // runs
        q = derived["stock_by_source_quantile"][:, j, :]
        b = np.array([np.searchsorted(upper, v, side="right") for v in per_run])
        assert np.all((q >= lower[b][:, None]) & (q <= upper[b][:, None] - 1))


def test_results_file_carries_refire_and_stock_by_source(tmp_path):
    """In the file: refired(run, source) and refire_asked_total, the stock and arrivals by source over time,
    days of fire on hand; the invariants hold on the file, and summary reports re-fire."""
    from artysim.analysis.summary import summarize

    p = tmp_path / "s.toml"
    p.write_text(MIXED)
    out = runner.run(str(p), runs=200, seed=2, output=tmp_path / "r.nc", quiet=True)
    with open_file(out) as ds:
        check_dataset(ds)
        np.testing.assert_array_equal(ds["stock_by_source_sum"].values.sum(axis=1), ds["stock_sum"].values)
        np.testing.assert_allclose(ds["stock_by_source_mean"].values.sum(axis=1), ds["stock_mean"].values)
        arr = ds["arrivals_by_source_sum"].values.sum(axis=0)
        np.testing.assert_array_equal(arr, ds["received"].values.sum(axis=0) + ds["refurbished"].values.sum(axis=0))
        assert ds["days_on_hand_quantile"].dims == ("time", "quantile")
        s = summarize(ds)
        refired = ds["refired"].values.mean(axis=0)
    assert s["refire_asked_total"][0] > 0
    for j, src in enumerate(s["sources"]):
        assert src["refired"][0] == pytest.approx(refired[j])


@pytest.mark.parametrize("value,needle", [
    ("1.5", "expected a fraction in [0, 1]"), ("-0.2", "expected a fraction in [0, 1]"),
    ('{ dist = "normal", mean = 0.5, sd = 0.3 }', "expected a fraction in [0, 1]"),
    ('"all"', "demand.refire"),
])
def test_refire_outside_zero_one_is_refused_with_its_key_path(tmp_path, value, needle):
    from click.testing import CliRunner
    from support import assert_refused

    from artysim.cli import main

    p = tmp_path / "s.toml"
    p.write_text(_scenario(refire=value))
    out = tmp_path / "r.nc"
    r = CliRunner().invoke(main, ["run", str(p), "--runs", "5", "-o", str(out), "-q"])
    line = assert_refused(r, "demand.refire", needle)
    assert str(p) in line and not out.exists()
