"""The model against closed forms (SPEC §1), its bookkeeping invariants and its per-day statistics.

Deterministic cases are checked exactly. Statistical cases use fixed seeds and a tolerance of
k Monte Carlo standard errors (k given in each test; SEs exact where the law is known, else from
the sample).
"""

from __future__ import annotations

import math
from pathlib import Path

import numba
import numpy as np
import pytest
import scipy.stats as st
from invariants import balance_kernel
from support import (
    ALL_FEATURES,
    ALL_MECHANISMS,
    assert_gof,
    assert_mc,
    header,
    pooled_chisquare,
    se_mean,
    se_var,
    se_var_exact,
    simulate,
)

from artysim.core import bins, histogram, layout
from artysim.model import load as loading

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.toml"))
BENCH = ROOT / "benchmarks" / "b1.toml"
DAYS_PER_MONTH = 365 / 12

# ----------------------------------------------------------------------------- deterministic drain


def _drain(T, initial, demand, threshold=0.05, dud=0.0, sample=0):
    return header(T, threshold=threshold, sample=sample) + f"""
[demand]
base = {demand}
daily_cv = 0

[[source]]
name = "stock"
kind = "stockpile"
initial = {initial}
dud_rate = {dud}
"""


@pytest.mark.parametrize(
    "initial,demand,threshold,first_short",
    [
        (1000, 300, 0.05, 3),  # days 0-2 fire 300 (stock 900 used), day 3 fires 100 of 300: short
        (1190, 300, 0.05, 4),  # day 3 fires 290 of 300: shortfall 10 <= 15, not short; day 4 short
        (1500, 400, 0.25, 4),  # day 3 shortfall exactly threshold x demand (100): not short (strict >)
        (1501, 400, 0.25, 4),  # day 3 shortfall 99 < 100: not short
        (1499, 400, 0.25, 3),  # day 3 shortfall 101 > 100: short
    ],
)
def test_deterministic_drain(initial, demand, threshold, first_short):
    T, runs = 10, 40
    r = simulate(_drain(T, initial, demand, threshold, sample=runs), runs, seed=4)
    fired_days = np.array([min(demand, max(initial - demand * t, 0)) for t in range(T)])
    stock_days = initial - np.cumsum(fired_days)
    short_days = (demand - fired_days) > threshold * demand
    assert short_days.argmax() == first_short  # the hand computation above
    for name, want in [("demand", demand * T), ("fired", initial), ("effective", initial),
                       ("shortfall", demand * T - initial), ("stock_final", 0), ("stock_min", 0),
                       ("short_days", short_days.sum()), ("first_short", first_short)]:
        np.testing.assert_array_equal(r.total(name), want, err_msg=name)
    np.testing.assert_array_equal(r.src("stock", "fired"), initial)
    np.testing.assert_array_equal(r.src("stock", "duds"), 0)
    d = r.derived()
    np.testing.assert_array_equal(d["p_short"], short_days.astype(float))
    np.testing.assert_array_equal(d["p_depleted"], (np.arange(T) >= first_short).astype(float))
    np.testing.assert_array_equal(d["stock_mean"], stock_days)
    np.testing.assert_array_equal(d["fired_mean"], fired_days)
    np.testing.assert_array_equal(d["shortfall_mean"], demand - fired_days)
    np.testing.assert_array_equal(r.daily.sample_stock, np.tile(stock_days, (runs, 1)))
    np.testing.assert_array_equal(r.daily.sample_fired, np.tile(fired_days, (runs, 1)))


def test_never_short():
    r = simulate(_drain(10, 10_000, 300), 20)
    np.testing.assert_array_equal(r.total("first_short"), -1)
    np.testing.assert_array_equal(r.total("short_days"), 0)
    np.testing.assert_array_equal(r.total("stock_final"), 7000)
    np.testing.assert_array_equal(r.total("stock_min"), 7000)
    assert (r.derived()["p_depleted"] == 0).all()


# ----------------------------------------------------------------------------- production


def _production(T, annual, annual_end=None, cv=0.0, sample=0):
    end = f"annual_end = {annual_end}" if annual_end is not None else ""
    return header(T, sample=sample) + f"""
[demand]
base = 0

[[source]]
name = "factory"
kind = "production"
annual = {annual}
{end}
daily_cv = {cv}
"""


@pytest.mark.parametrize("annual,annual_end", [(99_827.5, None), (365_000.0, 730_000.0), (1_000.0, 50.0)])
def test_production_stochastic_rounding(annual, annual_end):
    """received = sum_t floor(rate(t) + U_t): mean sum rate(t), variance sum f_t (1 - f_t), f_t = frac."""
    k = 4  # for the mean and variance over runs
    T, runs = 64, 2000
    r = simulate(_production(T, annual, annual_end), runs, seed=10)
    a1 = annual if annual_end is None else annual_end
    rate = (annual + (a1 - annual) * np.arange(T) / T) / 365.0
    f = rate - np.floor(rate)
    mean, var = rate.sum(), float(np.sum(f * (1 - f)))
    got = r.src("factory", "received").astype(float)
    # per run: the deviation is a sum of T independent terms in an interval of width 1, so by
    # Hoeffding |dev| > 3 sqrt(T) has probability < 2 exp(-18) per run (k = 6 with variance <= 1/4)
    assert np.abs(got - mean).max() <= 6 * math.sqrt(T / 4), "a run's production is off by many rounds"
    assert_mc(got.mean(), mean, math.sqrt(var / runs), k, "mean production over the horizon")
    if var > 0:
        # 4th central moment of a sum of independent centred two-point variables
        mu4 = float(np.sum(f * (1 - f) * (1 - 3 * f * (1 - f)))) + 3 * (var**2 - float(np.sum((f * (1 - f)) ** 2)))
        assert_mc(got.var(ddof=1), var, se_var_exact(var, mu4, runs), k, "variance of production")
    np.testing.assert_array_equal(r.src("factory", "received"), r.total("stock_final"))


def test_production_noise_has_mean_one():
    """daily_cv > 0: lognormal noise of mean one keeps the expected output A T / 365 (k = 4)."""
    T, runs, A = 100, 2000, 365_000.0
    r = simulate(_production(T, A, cv=0.3), runs, seed=12)
    got = r.src("factory", "received")
    assert_mc(got.mean(), A * T / 365, se_mean(got), 4, "mean production with daily_cv 0.3")
    # variance of the total: T (rate^2 cv^2 + rounding), rounding in [0, 1/4]
    lo, hi = T * (1000.0 * 0.3) ** 2, T * ((1000.0 * 0.3) ** 2 + 0.25)
    v, se = got.var(ddof=1), se_var(got)
    assert lo - 4 * se <= v <= hi + 4 * se, f"variance {v} outside [{lo}, {hi}] +- 4 SE ({se})"


def test_demand_noise_mean_and_cv():
    """Demand floor(base x noise + U), noise mean one with CV daily_cv (k = 4)."""
    T, runs, base, cv = 50, 2000, 1000, 0.25
    text = header(T) + f"""
[demand]
base = {base}
daily_cv = {cv}

[[source]]
name = "stock"
kind = "stockpile"
initial = 1e9
"""
    r = simulate(text, runs, seed=15)
    d = r.total("demand")
    assert_mc(d.mean(), base * T, se_mean(d), 4, "mean demand")
    lo, hi = T * (base * cv) ** 2, T * ((base * cv) ** 2 + 0.25)
    v, se = d.var(ddof=1), se_var(d)
    assert lo - 4 * se <= v <= hi + 4 * se, f"demand variance {v} outside [{lo}, {hi}] +- 4 SE ({se})"
    np.testing.assert_array_equal(r.total("fired"), d)
    np.testing.assert_array_equal(r.total("short_days"), 0)


# ----------------------------------------------------------------------------- duds and accuracy


def test_duds_are_binomial_and_accuracy_thins():
    k = 4
    T, runs, demand, q, a = 100, 2000, 500, 0.1, 0.7
    text = header(T) + f"""
[demand]
base = {demand}

[[source]]
name = "stock"
kind = "stockpile"
initial = 1000000
dud_rate = {q}
accuracy = {a}
"""
    r = simulate(text, runs, seed=21)
    n = demand * T
    np.testing.assert_array_equal(r.total("fired"), n)  # no shortage: every run fires n
    duds = r.src("stock", "duds").astype(float)
    var = n * q * (1 - q)
    mu4 = var * (1 + 3 * (n - 2) * q * (1 - q))
    assert_mc(duds.mean(), n * q, math.sqrt(var / runs), k, "mean duds")
    assert_mc(duds.var(ddof=1), var, se_var_exact(var, mu4, runs), k, "variance of duds")
    # effective | non-duds ~ Binomial(non-duds, accuracy): centred residual has mean 0, variance E[nd] a (1-a)
    nd = n - duds
    eff = r.src("stock", "effective").astype(float)
    np.testing.assert_array_equal(r.total("effective"), eff)
    assert (eff <= nd).all()
    resid = eff - a * nd
    assert_mc(resid.mean(), 0.0, math.sqrt(nd.mean() * a * (1 - a) / runs), k, "effective - a x (fired - duds)")
    assert_mc(resid.var(ddof=1), nd.mean() * a * (1 - a), se_var(resid), k, "variance of effective given non-duds")


# ----------------------------------------------------------------------------- imports


def _import(T, *, spm, size, transit=0, start=0, available=None, dud=0.0, lot=None, demand=0, sample=0,
            extra=""):
    av = f"available = {available}" if available is not None else ""
    lc = f"lot_concentration = {lot}" if lot is not None else ""
    return header(T, sample=sample) + f"""
[demand]
base = {demand}

[[source]]
name = "deal"
kind = "import"
start_day = {start}
shipments_per_month = {spm}
shipment_size = {size}
transit_days = {transit}
dud_rate = {dud}
{av}
{lc}
{extra}
"""


ONE_DAY_RUNS = 20_000


@pytest.mark.parametrize("n,q,a", [
    (20, 0.3, 1.0),  # n q = 6: inversion
    (99, 0.1, 0.5),  # n q = 9.9: inversion, just below the switch
    (100, 0.1, 0.9),  # n q = 10: BTRS
    (1000, 0.2, 1.0),  # BTRS
    (50, 0.8, 0.3),  # q > 0.5: n - Bin(n, 1 - q)
    (30, 0.9, 1.0),  # q > 0.5, inversion branch of the flip
    (100_000, 0.12, 0.75),  # a day's fire of one source
    (40, 0.0, 1.0),  # no duds
    (40, 1.0, 0.5),  # all duds
])
def test_one_day_duds_and_effective_are_binomial(n, q, a):
    """One day, fired = n exactly: duds ~ Bin(n, q) and effective ~ Bin(n - duds, a), so marginally
    effective ~ Bin(n, (1 - q) a). Chi-square over runs (p > 1e-3), mean and variance within k = 4 SE.
    This tests the kernel's own binomial sampler, whichever function implements it."""
    k = 4
    text = header(1) + f"""
[demand]
base = {n}

[[source]]
name = "stock"
kind = "stockpile"
initial = {n}
dud_rate = {q}
accuracy = {a}
"""
    r = simulate(text, ONE_DAY_RUNS, seed=81)
    np.testing.assert_array_equal(r.total("fired"), n)
    for what, x, p in (("duds", r.src("stock", "duds"), q), ("effective", r.src("stock", "effective"), (1 - q) * a)):
        if p in (0.0, 1.0):
            np.testing.assert_array_equal(x, n * p, err_msg=what)
            continue
        law = st.binom(n, p)
        _, df, pv = pooled_chisquare(x, law.pmf, law.cdf)
        assert_gof(pv, f"{what} vs Bin({n}, {p}), df={df}")
        var = n * p * (1 - p)
        mu4 = var * (1 + 3 * (n - 2) * p * (1 - p))
        assert_mc(x.mean(), n * p, math.sqrt(var / ONE_DAY_RUNS), k, f"mean {what}")
        assert_mc(x.var(ddof=1), var, se_var_exact(var, mu4, ONE_DAY_RUNS), k, f"variance of {what}")


@pytest.mark.parametrize("lam", [0.143, 3.0, 15.0, 150.0])
def test_one_day_shipments_are_poisson(lam):
    """One day of an import with shipments_per_month = lam x 365/12, size 1: received ~ Poisson(lam)
    (chi-square; mean and variance within k = 4 SE): the kernel's own Poisson sampler, both branches."""
    k = 4
    r = simulate(_import(1, spm=lam * DAYS_PER_MONTH, size=1), ONE_DAY_RUNS, seed=82)
    x = r.src("deal", "received")
    law = st.poisson(lam)
    _, df, pv = pooled_chisquare(x, law.pmf, law.cdf)
    assert_gof(pv, f"shipments in a day vs Poisson({lam}), df={df}")
    assert_mc(x.mean(), lam, math.sqrt(lam / ONE_DAY_RUNS), k, "mean shipments in a day")
    assert_mc(x.var(ddof=1), lam, se_var_exact(lam, lam * (1 + 3 * lam), ONE_DAY_RUNS), k, "variance")


def test_import_shipments_are_poisson():
    """Shipments received over T days (transit 0) ~ Poisson(m / (365/12) x T): chi-square, mean, var (k = 4)."""
    k = 4
    T, runs, m, s = 60, 4000, 5.0, 1000
    r = simulate(_import(T, spm=m, size=s), runs, seed=29)
    rec = r.src("deal", "received")
    assert (rec % s == 0).all()
    count = rec // s
    lam = m / DAYS_PER_MONTH * T
    assert_mc(count.mean(), lam, math.sqrt(lam / runs), k, "mean shipments")
    assert_mc(count.var(ddof=1), lam, se_var_exact(lam, lam * (1 + 3 * lam), runs), k, "variance of shipments")
    _, df, p = pooled_chisquare(count, st.poisson(lam).pmf, st.poisson(lam).cdf)
    assert_gof(p, f"shipments vs Poisson({lam:.3f}), df={df}")
    np.testing.assert_array_equal(r.src("deal", "dispatched"), rec)  # transit 0: nothing in transit


@pytest.mark.parametrize("available,size", [
    (2500, "1000"),  # 1000, 1000, then a last shipment cut to 500
    (100_000.7, '{ dist = "lognormal", median = 7000, sigma = 0.5 }'),  # random sizes; floor(available)
])
def test_supplier_cap_exact(available, size):
    T, runs = 60, 500
    r = simulate(_import(T, spm=30, size=size, available=available), runs, seed=38)
    cap = math.floor(available)
    np.testing.assert_array_equal(r.src("deal", "dispatched"), cap)
    np.testing.assert_array_equal(r.src("deal", "received"), cap)  # transit 0
    np.testing.assert_array_equal(r.total("stock_final"), cap)


def test_start_past_horizon_means_no_deal():
    r = simulate(_import(365, spm=30, size=1000, start=400), 200, seed=33)
    np.testing.assert_array_equal(r.src("deal", "dispatched"), 0)
    np.testing.assert_array_equal(r.src("deal", "received"), 0)


def test_random_start_day_gates_dispatch():
    T = 100
    r = simulate(_import(T, spm=600, size=10, start='{ dist = "uniform", low = 50, high = 150 }'), 1000, seed=39)
    start = r.param("source.deal.start_day")
    disp = r.src("deal", "dispatched")
    late = np.ceil(start) >= T  # no dispatch day left in the horizon
    assert late.any() and (~late).any()
    np.testing.assert_array_equal(disp[late], 0)
    assert (disp[~late] > 0).all()  # ~20 shipments a day: every run with a day left ships


@pytest.mark.parametrize("start,transit,first", [(3, 5, 8), (2.5, 5, 8), (0, 0, 0), (0, 12, 12)])
def test_transit_delays_first_arrival_exactly(start, transit, first):
    """With ~20 shipments a day from day ceil(start), the first arrival day is ceil(start) + transit."""
    T, runs = 30, 300
    r = simulate(_import(T, spm=600, size=10, start=start, transit=transit, sample=runs), runs, seed=43)
    stock = r.daily.sample_stock  # demand 0: stock = cumulative received
    assert (stock[:, :first] == 0).all(), "rounds arrived before start + transit"
    assert (stock[:, first] > 0).all()
    assert (np.diff(stock, axis=1) >= 0).all()


def test_transit_cuts_off_late_dispatches():
    """Dispatched on day >= T - transit never arrive: received ~ Poisson(lam (T - transit)),
    dispatched ~ Poisson(lam T) (k = 4)."""
    k = 4
    T, runs, transit, m, s = 30, 3000, 10, 30.0, 100
    r = simulate(_import(T, spm=m, size=s, transit=transit), runs, seed=36)
    rec, disp = r.src("deal", "received") // s, r.src("deal", "dispatched") // s
    lam = m / DAYS_PER_MONTH
    assert (rec <= disp).all()
    assert (rec < disp).mean() > 0.99  # P(no dispatch in the last 10 days) = exp(-9.9)
    assert_mc(rec.mean(), lam * (T - transit), math.sqrt(lam * (T - transit) / runs), k, "received shipments")
    assert_mc(disp.mean(), lam * T, math.sqrt(lam * T / runs), k, "dispatched shipments")
    assert_mc((disp - rec).mean(), lam * transit, math.sqrt(lam * transit / runs), k, "still in transit")


def test_transit_longer_than_horizon_and_ring_edges():
    """Transit 0, 29, 30 or 31 days (equal weights) over T = 30: a shipment arrives only if
    dispatch day + transit < 30, so received shipments ~ Poisson(lam (30 + 1) / 4), dispatched ~
    Poisson(30 lam) (k = 4). Catches goods in transit wrapping around a buffer shorter than the horizon."""
    k = 4
    T, runs, m = 30, 4000, 20.0
    text = _import(T, spm=m, size=1, transit='{ dist = "discrete", values = [0, 29, 30, 31] }', sample=runs)
    r = simulate(text, runs, seed=83)
    lam = m / DAYS_PER_MONTH
    rec, disp = r.src("deal", "received"), r.src("deal", "dispatched")
    assert_mc(rec.mean(), lam * 31 / 4, math.sqrt(lam * 31 / 4 / runs), k, "received")
    assert_mc(disp.mean(), lam * T, math.sqrt(lam * T / runs), k, "dispatched")
    # on days 1..28 only transit-0 shipments arrive: increments ~ Poisson(lam / 4) per day
    inc = np.diff(r.daily.sample_stock[:, :29], axis=1)
    assert_mc(inc.mean(), lam / 4, math.sqrt(lam / 4 / inc.size), k, "daily arrivals, days 1..28")


def test_random_transit_never_early():
    """Transit uniform(2.6, 6) rounds to 3..6 days: nothing arrives before start + 3; something arrives
    on day start + 3 iff a day-`start` shipment drew transit < 3.5: P = 1 - exp(-lam x 0.9/3.4) (k = 4)."""
    T, runs, start = 40, 2000, 4
    text = _import(T, spm=600, size=10, start=start, transit='{ dist = "uniform", low = 2.6, high = 6.0 }',
                   sample=runs)
    r = simulate(text, runs, seed=37)
    stock = r.daily.sample_stock
    assert (stock[:, : start + 3] == 0).all(), "a shipment arrived in under 3 days"
    p = 1 - math.exp(-600 / DAYS_PER_MONTH * 0.9 / 3.4)
    got = (stock[:, start + 3] > 0).mean()
    assert_mc(got, p, math.sqrt(p * (1 - p) / runs), 4, "P(arrival on start + 3)")


# ----------------------------------------------------------------------------- issue policies


def _two_stocks(T, a, b, demand, policy):
    return header(T) + f"""
[demand]
base = {demand}

[[source]]
name = "a"
kind = "stockpile"
initial = {a}

[[source]]
name = "b"
kind = "stockpile"
initial = {b}

[policy]
{policy}
"""


@pytest.mark.parametrize("T,fired_a,fired_b", [(3, 900, 0), (4, 1000, 200), (5, 1000, 500), (8, 1000, 1000)])
def test_priority_order(T, fired_a, fired_b):
    r = simulate(_two_stocks(T, 1000, 1000, 300, 'issue = "priority"\norder = ["a", "b"]'), 10)
    np.testing.assert_array_equal(r.src("a", "fired"), fired_a)
    np.testing.assert_array_equal(r.src("b", "fired"), fired_b)
    np.testing.assert_array_equal(r.src("b", "final"), 1000 - fired_b)
    # the other order mirrors it
    r2 = simulate(_two_stocks(T, 1000, 1000, 300, 'issue = "priority"\norder = ["b", "a"]'), 10)
    np.testing.assert_array_equal(r2.src("b", "fired"), fired_a)
    np.testing.assert_array_equal(r2.src("a", "fired"), fired_b)


def test_priority_prefers_a_production_source_over_stock():
    text = header(20) + """
[demand]
base = 500

[[source]]
name = "stock"
kind = "stockpile"
initial = 100000

[[source]]
name = "factory"
kind = "production"
annual = 73000

[policy]
issue = "priority"
order = ["factory", "stock"]
"""
    r = simulate(text, 20)
    # 200 a day made, all fired first; stock covers the other 300
    np.testing.assert_array_equal(r.src("factory", "received"), 4000)
    np.testing.assert_array_equal(r.src("factory", "fired"), 4000)
    np.testing.assert_array_equal(r.src("stock", "fired"), 6000)


def test_proportional_deterministic():
    r = simulate(_two_stocks(5, 3000, 1000, 400, 'issue = "proportional"'), 10)
    np.testing.assert_array_equal(r.src("a", "fired"), 1500)
    np.testing.assert_array_equal(r.src("b", "fired"), 500)
    np.testing.assert_array_equal(r.src("a", "final"), 1500)
    np.testing.assert_array_equal(r.src("b", "final"), 500)


@pytest.mark.parametrize("scale", [1.0, 1e9])  # small stocks, and stocks up to 1e12 (float rounding)
def test_proportional_one_day_parts_within_one_round_of_share(scale):
    """Day 0 of random stocks: each source fires within one round of fired x stock_s / total (exact
    rational check), never more than its stock, and the parts sum to fired exactly."""
    text = header(1) + f"""
[demand]
base = {{ dist = "uniform", low = 1, high = {3000 * scale} }}

[[source]]
name = "a"
kind = "stockpile"
initial = {{ dist = "uniform", low = 0, high = {1000 * scale} }}

[[source]]
name = "b"
kind = "stockpile"
initial = {{ dist = "discrete", values = [0, 1, 3, {700 * scale}] }}

[[source]]
name = "c"
kind = "stockpile"
initial = {{ dist = "uniform", low = 0, high = {50 * scale} }}
"""
    r = simulate(text, 5000, seed=41)
    init = np.stack([r.src(s, "initial") for s in "abc"], axis=1)
    fired_s = np.stack([r.src(s, "fired") for s in "abc"], axis=1)
    fired = r.total("fired")
    total = init.sum(axis=1)
    np.testing.assert_array_equal(fired_s.sum(axis=1), fired)
    np.testing.assert_array_equal(fired, np.minimum(r.total("demand"), total))
    assert (fired < total).sum() > 1000 and (fired == total).sum() > 100  # both cases exercised
    assert (fired_s <= init).all()
    # |fired_s - fired * init_s / total| < 1  <=>  |fired_s * total - fired * init_s| < total (Python ints)
    tot_o, fired_o = total.astype(object)[:, None], fired.astype(object)[:, None]
    dev = np.abs(fired_s.astype(object) * tot_o - fired_o * init.astype(object))
    bad = dev >= tot_o
    assert not bad.any(), f"a source fired a round or more off its share in {int(bad.sum())} cases"


# ----------------------------------------------------------------------------- lot variation


def test_lot_variation_adds_variance():
    """One lot of n rounds per run, mean dud rate q. Without lots the dud fraction has variance
    q(1-q)/n; with lot_concentration c the lot's rate ~ Beta(qc, (1-q)c), variance
    q(1-q)[(1 - 1/(c+1))/n + 1/(c+1)] (k = 4)."""
    k = 4
    T, runs, n, q, c = 20, 2000, 1000, 0.2, 20.0
    base = dict(spm=300, size=n, available=n, dud=q, demand=2000)
    for lot, var in [(None, q * (1 - q) / n), (c, q * (1 - q) * ((1 - 1 / (c + 1)) / n + 1 / (c + 1)))]:
        r = simulate(_import(T, lot=lot, **base), runs, seed=51)
        np.testing.assert_array_equal(r.src("deal", "fired"), n)
        frac = r.src("deal", "duds") / n
        assert_mc(frac.mean(), q, math.sqrt(var / runs), k, f"mean dud fraction (lot={lot})")
        assert_mc(frac.var(ddof=1), var, se_var(frac), k, f"variance of dud fraction (lot={lot})")


def test_dud_fraction_tracks_per_run_rate_with_lots():
    """Many lots mixed in one stock: E[duds / fired | run] = that run's sampled mean dud rate (k = 4)."""
    T, runs = 30, 2000
    text = _import(T, spm=300, size=1000, available=20_000, demand=3000,
                   dud='{ dist = "beta", mean = 0.2, concentration = 20 }', lot=50)
    r = simulate(text, runs, seed=52)
    fired = r.src("deal", "fired")
    np.testing.assert_array_equal(fired, 20_000)
    diff = r.src("deal", "duds") / fired - r.param("source.deal.dud_rate")
    assert_mc(diff.mean(), 0.0, se_mean(diff), 4, "dud fraction minus per-run dud rate")
    # lot variation: the spread around the run's rate is well above the binomial part alone
    binomial_only = 0.2 * 0.8 * (20 / 21) / 20_000  # E[q(1-q)] / fired for q ~ Beta(4, 16)
    assert diff.var() > 5 * binomial_only


# ----------------------------------------------------------------------------- conservation


def _check_conservation(r, name):
    T = r.model.horizon
    kinds = r.model.kinds
    ps = r.per_source
    P = layout
    # per source and run: stock balance
    # initial + received + refurbished - fired - lost = final (tests/invariants.py)
    np.testing.assert_array_equal(balance_kernel(ps), 0, err_msg=f"{name}: stock balance per source")
    assert (ps[:, :, P.P_FINAL] >= 0).all(), f"{name}: negative final stock"
    assert (ps[:, :, P.P_DUDS] >= 0).all() and (ps[:, :, P.P_DUDS] <= ps[:, :, P.P_FIRED]).all(), f"{name}: duds"
    assert (ps[:, :, P.P_EFFECTIVE] >= 0).all()
    assert (ps[:, :, P.P_EFFECTIVE] <= ps[:, :, P.P_FIRED] - ps[:, :, P.P_DUDS]).all(), f"{name}: effective"
    np.testing.assert_array_equal(ps[:, kinds != layout.KIND_STOCKPILE, P.P_INITIAL], 0)
    np.testing.assert_array_equal(ps[:, kinds == layout.KIND_STOCKPILE, P.P_RECEIVED], 0)
    imp = kinds == layout.KIND_IMPORT
    arrived = ps[:, imp, P.P_RECEIVED] - ps[:, imp, P.P_REWORKED] + ps[:, imp, P.P_REJECTED]
    assert (arrived <= ps[:, imp, P.P_DISPATCHED]).all(), f"{name}: arrived > dispatched"
    assert (ps[:, imp, P.P_REWORKED] <= ps[:, imp, P.P_REJECTED]).all(), f"{name}: reworked > rejected"
    np.testing.assert_array_equal(ps[:, ~imp, P.P_REJECTED], 0)
    np.testing.assert_array_equal(ps[:, kinds != layout.KIND_STOCKPILE, P.P_REFURBISHED], 0)
    assert (ps[:, :, P.P_LOST] >= 0).all()
    assert (tot_ := r.totals)[:, P.O_RATIONED].min() >= 0 and (tot_[:, P.O_RATIONED] <= T).all()
    if r.per_regime is not None:
        np.testing.assert_array_equal(r.per_regime[:, :, P.Q_DAYS].sum(axis=1), T, err_msg=f"{name}: regime days")
    # totals
    tot = r.totals
    np.testing.assert_array_equal(ps[:, :, P.P_FIRED].sum(axis=1), tot[:, P.O_FIRED], err_msg=f"{name}: fired")
    np.testing.assert_array_equal(ps[:, :, P.P_EFFECTIVE].sum(axis=1), tot[:, P.O_EFFECTIVE])
    np.testing.assert_array_equal(ps[:, :, P.P_FINAL].sum(axis=1), tot[:, P.O_STOCK_FINAL])
    np.testing.assert_array_equal(tot[:, P.O_FIRED] + tot[:, P.O_SHORTFALL], tot[:, P.O_DEMAND])
    assert (tot[:, P.O_FIRED] <= tot[:, P.O_DEMAND]).all()
    assert (tot[:, P.O_SHORTFALL] >= 0).all()
    assert (tot[:, P.O_STOCK_MIN] >= 0).all(), f"{name}: negative stock"
    assert (tot[:, P.O_STOCK_MIN] <= tot[:, P.O_STOCK_FINAL]).all()
    sd, fs = tot[:, P.O_SHORT_DAYS], tot[:, P.O_FIRST_SHORT]
    assert ((sd >= 0) & (sd <= T)).all()
    assert ((fs >= -1) & (fs < T)).all()
    np.testing.assert_array_equal(fs == -1, sd == 0)
    assert (sd <= T - np.where(fs >= 0, fs, T)).all(), f"{name}: more short days than days after the first"
    # per-day statistics agree with the per-run totals
    d = r.daily
    n = len(tot)
    np.testing.assert_array_equal(d.hist.sum(axis=2), n)
    np.testing.assert_array_equal(d.sums[:, P.V_FIRED].sum(), tot[:, P.O_FIRED].sum())
    np.testing.assert_array_equal(d.sums[:, P.V_EFFECTIVE].sum(), tot[:, P.O_EFFECTIVE].sum())
    np.testing.assert_array_equal(d.sums[:, P.V_SHORTFALL].sum(), tot[:, P.O_SHORTFALL].sum())
    np.testing.assert_array_equal(d.sums[-1, P.V_STOCK], tot[:, P.O_STOCK_FINAL].sum())
    np.testing.assert_array_equal(d.n_short.sum(), sd.sum())
    np.testing.assert_array_equal(d.n_first_short, np.bincount(fs[fs >= 0], minlength=T))
    assert (d.n_short >= d.n_first_short).all()
    # per-day sums by source add up to the per-run totals by source, and to the all-source day sums
    np.testing.assert_array_equal(d.src_sums[:, 0, :].sum(axis=0), ps[:, :, P.P_FIRED].sum(axis=0))
    np.testing.assert_array_equal(d.src_sums[:, 1, :].sum(axis=0), ps[:, :, P.P_EFFECTIVE].sum(axis=0))
    np.testing.assert_array_equal(d.src_sums[:, 0, :].sum(axis=1), d.sums[:, P.V_FIRED])
    np.testing.assert_array_equal(d.src_sums[:, 1, :].sum(axis=1), d.sums[:, P.V_EFFECTIVE])
    assert (d.sums >= 0).all()


@pytest.mark.parametrize("path", CONFIGS + [BENCH], ids=lambda p: p.name)
def test_conservation_bundled(path):
    r = simulate(loading.load(path), 2000, seed=1)
    _check_conservation(r, path.name)


def test_conservation_all_mechanisms():
    r = simulate(ALL_MECHANISMS, 2000, seed=63)
    _check_conservation(r, "all-mechanisms")
    ps = r.per_source
    # every mechanism acts in this scenario
    for col in (layout.P_REFURBISHED, layout.P_LOST, layout.P_REJECTED, layout.P_REWORKED, layout.P_DISRUPTIONS):
        assert ps[:, :, col].sum() > 0, col
    assert r.total("rationed").sum() > 0 and r.total("strikes").sum() > 0


def test_conservation_all_features():
    r = simulate(ALL_FEATURES, 2000, seed=62)
    _check_conservation(r, "all-features")
    # the scenario is not trivial: shortages, imports cut off by transit and the cap all happen
    fs = r.total("first_short")
    assert 0.05 < (fs >= 0).mean() < 0.95
    ps = r.per_source
    assert (ps[:, 2, layout.P_RECEIVED] < ps[:, 2, layout.P_DISPATCHED]).any()
    available = np.floor(r.param("source.deal.available"))
    assert (ps[:, 2, layout.P_DISPATCHED] <= available).all()
    assert (ps[:, 2, layout.P_DISPATCHED] == available).any()


def test_every_bundled_config_loads_and_builds():
    assert len(CONFIGS) >= 6, f"configs/*.toml found {len(CONFIGS)} files"  # an empty glob would check nothing
    for path in CONFIGS + [BENCH]:
        loaded = loading.load(path)
        r = simulate(loaded, 5)
        assert r.totals.shape == (5, layout.N_TOTALS)


# ----------------------------------------------------------------------------- per-day statistics


@numba.njit(cache=False)
def _bins_of(values):
    out = np.empty(values.shape[0], dtype=np.int64)
    for i in range(values.shape[0]):
        out[i] = histogram.bin_index(values[i])
    return out


def test_bins_cover_integers():
    lower, upper = bins.bin_edges()
    assert lower[0] == 0 and (lower[1:] == upper[:-1]).all(), "bins not contiguous"
    assert (upper > lower).all()
    wide = np.arange(bins.EXACT, bins.NBINS)
    assert ((upper[wide] - lower[wide]) * bins.SUB <= lower[wide]).all(), "a bin is wider than 1/64"
    v = np.arange(0, 10**7 + 1, dtype=np.int64)
    pw = np.array([2**e + d for e in range(1, 44) for d in (-1, 0, 1)] + [2**44 - 1], dtype=np.int64)
    for vals in (v, pw):
        b = _bins_of(vals)
        assert ((lower[b] <= vals) & (vals < upper[b])).all(), vals[~((lower[b] <= vals) & (vals < upper[b]))][:10]


def test_daily_means_and_quantiles_match_sampled_trajectories():
    runs, T = 600, 40
    text = header(T, sample=runs) + """
[demand]
base = { dist = "lognormal", median = 4000, sigma = 0.3 }
daily_cv = 0.3

[[source]]
name = "stock"
kind = "stockpile"
initial = { dist = "normal", mean = 100000, sd = 40000, low = 0 }

[[source]]
name = "factory"
kind = "production"
annual = { dist = "uniform", low = 0, high = 700000 }
"""
    qs = np.array([0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
    r = simulate(text, runs, seed=70)
    d = r.derived(qs)
    stock, fired = r.daily.sample_stock, r.daily.sample_fired
    assert (stock >= 0).all() and (fired >= 0).all()
    np.testing.assert_array_equal(r.daily.sums[:, layout.V_STOCK], stock.sum(axis=0))
    np.testing.assert_array_equal(r.daily.sums[:, layout.V_FIRED], fired.sum(axis=0))
    np.testing.assert_array_equal(d["stock_mean"], stock.sum(axis=0) / runs)
    np.testing.assert_array_equal(d["fired_mean"], fired.sum(axis=0) / runs)
    np.testing.assert_array_equal(stock[:, -1], r.total("stock_final"))
    np.testing.assert_array_equal(stock.min(axis=1), r.total("stock_min"))
    np.testing.assert_array_equal(fired.sum(axis=1), r.total("fired"))
    assert (stock == 0).any() and (stock > 200_000).any()  # both exact and wide bins are used
    lower, upper = bins.bin_edges()
    for name, traj in (("stock", stock), ("fired", fired)):
        hq = d[f"{name}_quantile"]  # time x quantile
        for j, q in enumerate(qs):
            # the histogram quantile lies in the bin of the inverted-cdf quantile of the same data
            v = np.quantile(traj, q, axis=0, method="inverted_cdf").astype(np.int64)
            b = _bins_of(v)
            ok = (lower[b] <= hq[:, j]) & (hq[:, j] <= upper[b] - 1)
            assert ok.all(), f"{name} q={q}: {hq[~ok, j]} not in bins [{lower[b][~ok]}, {upper[b][~ok]})"
            # and within one bin width of numpy's default (linear) quantile, allowing for the gap
            # between the two order statistics it interpolates
            lin = np.quantile(traj, q, axis=0)
            lo_os = np.quantile(traj, q, axis=0, method="lower")
            hi_os = np.quantile(traj, q, axis=0, method="higher")
            width = upper[b] - lower[b]
            assert (np.abs(hq[:, j] - lin) <= width + (hi_os - lo_os)).all()
