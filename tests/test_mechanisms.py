"""The mechanisms of model depth against closed forms and exact identities.

Each test builds a small scenario whose answer is known without the simulator: a deterministic
schedule or ration rule has exact totals; Poisson event counts have known mean and variance; a
Markov chain of regimes has a known stationary law and mean stay; binomial rejection has a known
mean. Statistical tolerances are 4 Monte Carlo standard errors (fixed seeds).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
from support import ALL_MECHANISMS, assert_mc, header, load_scenario, se_mean, se_var, simulate

from artysim.core import layout
from artysim.errors import ScenarioError

K = 4.0  # standard errors allowed in every statistical check


def _stock(initial, extra=""):
    return f"""
[[source]]
name = "stock"
kind = "stockpile"
initial = {initial}
{extra}
"""


# ----------------------------------------------------------------------------- schedules


def test_demand_schedule_exact_totals_and_days():
    """Piecewise-constant demand with no noise and ample stock: every day fires exactly base(t)."""
    text = header(60) + """
[demand]
base = [{ from = "2024-01-01", value = 100 }, { from = "2024-01-11", value = 300 },
        { from = "2024-02-05", value = 50 }, { from = "2025-01-01", value = 9999 }]
""" + _stock(1e9)
    r = simulate(text, 64)
    per_day = np.r_[np.full(10, 100), np.full(25, 300), np.full(25, 50)]
    np.testing.assert_array_equal(r.total("fired"), per_day.sum())
    np.testing.assert_array_equal(r.daily.sums[:, layout.V_FIRED], 64 * per_day)


def test_demand_schedule_deterministic_drain():
    """A stock of 2,500 against 100/day for 10 days then 300/day runs short on day 15 exactly
    (1,000 used by day 10, then 300 a day: 1,500 more by the end of day 14, 0 left on day 15...)."""
    text = header(30) + """
[demand]
base = [{ from = "2024-01-01", value = 100 }, { from = "2024-01-11", value = 300 }]
""" + _stock(2500)
    r = simulate(text, 8)
    # day 10..14 use 1,500 (total 2,500): stock is 0 after day 14; day 15 fires nothing
    np.testing.assert_array_equal(r.total("first_short"), 15)
    np.testing.assert_array_equal(r.total("fired"), 2500)


def test_schedule_pieces_are_sampled_per_run():
    """Each piece of a schedule is its own per-run parameter, path ``demand.base@DATE``."""
    text = header(20) + """
[demand]
base = [{ from = "2024-01-01", value = { dist = "uniform", low = 100, high = 200 } },
        { from = "2024-01-06", value = { dist = "uniform", low = 1000, high = 2000 } }]
""" + _stock(1e9)
    r = simulate(text, 500)
    b1, b2 = r.param("demand.base@2024-01-01"), r.param("demand.base@2024-01-06")
    expect = 5 * b1 + 15 * b2
    # stochastic rounding: each day's demand is floor(x + U), off by less than 1 per day
    assert (np.abs(r.total("demand") - expect) < 20).all()
    assert abs(np.corrcoef(b1, b2)[0, 1]) < 4 / math.sqrt(500)  # independent streams


def test_production_and_import_schedules():
    """Production 100/day then 200/day exactly; import shipments with scheduled rate and size: the
    number of shipments in each piece is Poisson, so received = 10 N1 + 20 N2 with known mean/var."""
    text = header(120) + """
[demand]
base = 0

[[source]]
name = "plant"
kind = "production"
annual = [{ from = "2024-01-01", value = 36500 }, { from = "2024-03-01", value = 73000 }]

[[source]]
name = "deal"
kind = "import"
shipments_per_month = [{ from = "2024-01-01", value = 3.65 }, { from = "2024-02-10", value = 12.1666666666666667 }]
shipment_size = [{ from = "2024-01-01", value = 10 }, { from = "2024-02-10", value = 20 }]
"""
    r = simulate(text, 4000, seed=5)
    np.testing.assert_array_equal(r.src("plant", "received"), 60 * 100 + 60 * 200)
    m = 365 / 12
    l1, l2 = 40 * 3.65 / m, 80 * 12.1666666666666667 / m  # expected shipments in each piece
    mean, var = 10 * l1 + 20 * l2, 100 * l1 + 400 * l2
    x = r.src("deal", "received").astype(float)
    assert_mc(x.mean(), mean, math.sqrt(var / len(x)), K, "received mean")
    assert_mc(x.var(ddof=1), var, se_var(x), K, "received variance")


def test_schedule_refusals():
    for bad, needle in [
        ('base = [{ from = "2024-02-01", value = 5 }]', "demand.base[0].from"),
        ('base = [{ from = "2024-01-01", value = 5 }, { from = "2024-01-01", value = 6 }]', "demand.base[1].from"),
        ('base = [{ from = "2024-01-01", value = -5 }]', "demand.base[0].value"),
        ('base = [{ from = "2024-01-01", valeu = 5 }]', "did you mean 'value'"),
        ('base = []', "demand.base"),
    ]:
        with pytest.raises(ScenarioError, match=re_escape(needle)):
            load_scenario(header(10) + "[demand]\n" + bad + "\n" + _stock(10))


def re_escape(s: str) -> str:
    import re

    return re.escape(s)


# ----------------------------------------------------------------------------- regimes

REGIMES = """
[demand]
base = 1000
[[demand.regime]]
name = "positional"
multiplier = 1.0
mean_days = 30
to = { offensive = 2, lull = 1 }
[[demand.regime]]
name = "offensive"
multiplier = 2.5
mean_days = 12
[[demand.regime]]
name = "lull"
multiplier = 0.4
mean_days = 8
to = { positional = 3, offensive = 1 }
"""


def _regime_law():
    """Jump chain, its stationary law and the time-stationary law (pi_i m_i / sum)."""
    P = np.array([[0, 2 / 3, 1 / 3], [0.5, 0, 0.5], [0.75, 0.25, 0]])
    w, v = np.linalg.eig(P.T)
    pi = np.real(v[:, np.argmin(np.abs(w - 1))])
    pi /= pi.sum()
    m = np.array([30.0, 12.0, 8.0])
    return P, pi, m, pi * m / (pi * m).sum()


def test_regimes_stationary_fraction_mean_stay_and_demand():
    T, n = 3000, 400
    r = simulate(header(T) + REGIMES + _stock(1e12), n, seed=11)
    _, _, m, time_law = _regime_law()
    days = r.per_regime[:, :, layout.Q_DAYS].astype(float)
    entries = r.per_regime[:, :, layout.Q_ENTRIES].astype(float)
    np.testing.assert_array_equal(days.sum(axis=1), T)
    for i in range(3):
        frac = days[:, i] / T  # runs are independent: the SE of the mean of per-run fractions is honest
        assert_mc(frac.mean(), time_law[i], se_mean(frac), K, f"fraction of days in regime {i}")
        # started from the stationary law, E[entries_i] = law_i (1 + (T - 1) / m_i) exactly
        e_exact = time_law[i] * (1 + (T - 1) / m[i])
        assert_mc(entries[:, i].mean(), e_exact, se_mean(entries[:, i]), K, f"entries of regime {i}")
        # mean stay: total days / total entries, ratio estimator with its delta-method SE
        ratio = days[:, i].sum() / entries[:, i].sum()
        resid = days[:, i] - ratio * entries[:, i]
        se = resid.std(ddof=1) / (entries[:, i].mean() * math.sqrt(n))
        assert_mc(ratio, T * time_law[i] / e_exact, se, K, f"mean stay in regime {i}")
    # demand = base x multiplier of the day's regime: E = base x T x sum(law x multiplier)
    d = r.total("demand").astype(float)
    assert_mc(d.mean(), 1000 * T * float(time_law @ [1.0, 2.5, 0.4]), se_mean(d), K, "demand total")


def test_initial_regime_and_a_regime_never_left():
    text = header(100) + REGIMES.replace("mean_days = 30", "mean_days = 1e6").replace(
        "base = 1000\n", 'base = 1000\ninitial_regime = "positional"\n')
    r = simulate(text + _stock(1e9), 300)
    stays = r.per_regime[:, 0, layout.Q_DAYS]
    # leaving positional has probability 1e-6 a day: over 300 runs x 99 days, P(any leave) ~ 3 %
    assert (stays == 100).mean() > 0.99
    np.testing.assert_array_equal(r.per_regime[:, 0, layout.Q_ENTRIES], 1)
    np.testing.assert_array_equal(r.total("demand"), 100 * 1000)


def test_regime_refusals():
    base = header(10) + "[demand]\nbase = 1\n"
    for extra, needle in [
        ('[[demand.regime]]\nname = "a"\nmultiplier = 1\nmean_days = 0.5\n', "demand.regime[0].mean_days"),
        ('[[demand.regime]]\nname = "a"\nmultiplier = 1\nmean_days = 5\nto = { b = 1 }\n', "demand.regime[0].to.b"),
        ('[[demand.regime]]\nname = "a"\nmultiplier = -1\nmean_days = 5\n', "demand.regime[0].multiplier"),
    ]:
        with pytest.raises(ScenarioError, match=re_escape(needle)):
            load_scenario(base + extra + _stock(10))
    # two groups that never meet: no single long-run mix to start from
    text = base + "".join(
        f'[[demand.regime]]\nname = "{a}"\nmultiplier = 1\nmean_days = 5\nto = {{ {b} = 1 }}\n'
        for a, b in [("a", "b"), ("b", "a"), ("c", "d"), ("d", "c")]) + _stock(10)
    with pytest.raises(ScenarioError, match="initial_regime"):
        load_scenario(text)  # the model is built (and the chain checked) when the scenario is loaded
    assert load_scenario(text.replace("[[demand.regime]]", 'initial_regime = "c"\n[[demand.regime]]', 1)).model


# ----------------------------------------------------------------------------- rationing


def _ration_by_hand(stock, demand, reserve_days, fraction, T):
    """The ration rule, day by day: issue freely down to the reserve; at it, at most fraction x demand."""
    fired = rationed = 0
    first = -1
    for t in range(T):
        f = min(demand, stock)
        lim = max(math.floor(stock - reserve_days * demand), math.floor(fraction * demand))
        if lim < f:
            f = max(lim, 0)
            rationed += 1
        if demand - f > 0.05 * demand and first < 0:
            first = t
        stock -= f
        fired += f
    return fired, rationed, first, stock


@pytest.mark.parametrize("stock,reserve,frac", [(10000, 20, 0.25), (10050, 20, 0.25), (3000, 40, 0.1),
                                                (10000, 0, 0.5), (500, 5, 0.0)])
def test_ration_policy_exact(stock, reserve, frac):
    T = 200
    text = header(T) + f"""
[demand]
base = 100
[policy]
reserve_days = {reserve}
ration_fraction = {frac}
""" + _stock(stock)
    r = simulate(text, 4)
    fired, rationed, first, left = _ration_by_hand(stock, 100, reserve, frac, T)
    np.testing.assert_array_equal(r.total("fired"), fired)
    np.testing.assert_array_equal(r.total("rationed"), rationed)
    np.testing.assert_array_equal(r.total("first_short"), first)
    np.testing.assert_array_equal(r.total("stock_final"), left)


def test_ration_case_by_hand():
    """10,000 rounds, 100/day, reserve 20 days (2,000), 25 % at the reserve: 80 days at 100, then
    80 days at 25, then nothing: 10,000 fired, first shortage on day 80; 79 rationed days, since on
    the last of them the 25 rounds left, not the ration, limit fire."""
    assert _ration_by_hand(10000, 100, 20, 0.25, 200) == (10000, 79, 80, 0)


# ----------------------------------------------------------------------------- legacy refurbishment


def test_refurbishment_ample_throughput_and_fixed_rate():
    ample = header(50) + "[demand]\nbase = 0\n" + _stock(0, """legacy = { dist = "uniform", low = 1000, high = 5000 }
legacy_serviceable = { dist = "beta", mean = 0.6, concentration = 10 }
refurbish_per_day = 1e9""")
    r = simulate(ample, 300)
    usable = np.floor(r.param("source.stock.legacy") * r.param("source.stock.legacy_serviceable"))
    np.testing.assert_array_equal(r.src("stock", "refurbished"), usable)  # all of it, on day 0
    np.testing.assert_array_equal(r.daily.sums[0, layout.V_STOCK], usable.sum())
    # throughput 7 a day: exactly 7 per day until the serviceable pool is used up
    fixed = ample.replace("refurbish_per_day = 1e9", "refurbish_per_day = 7")
    r = simulate(fixed, 300)
    usable = np.floor(r.param("source.stock.legacy") * r.param("source.stock.legacy_serviceable"))
    np.testing.assert_array_equal(r.src("stock", "refurbished"), np.minimum(usable, 7 * 50))
    on_hand = np.minimum(usable[None, :], 7 * np.arange(1, 51)[:, None]).sum(axis=1)
    np.testing.assert_array_equal(r.daily.sums[:, layout.V_STOCK], on_hand)


def test_refurbishment_fractional_rate_and_dud_rate():
    """Rate 2.5/day: 2 or 3 each day with probability 1/2 (mean 2.5 T, variance T/4); refurbished
    rounds carry their own dud rate: duds ~ Binomial(fired, 0.3)."""
    T = 100
    text = header(T) + "[demand]\nbase = 1e6\n" + _stock(0, """dud_rate = 0.0
legacy = 1e9
refurbish_per_day = 2.5
refurbished_dud_rate = 0.3""")
    r = simulate(text, 3000, seed=9)
    x = r.src("stock", "refurbished").astype(float)
    assert_mc(x.mean(), 2.5 * T, math.sqrt(T / 4 / len(x)), K, "refurbished mean")
    assert_mc(x.var(ddof=1), T / 4, se_var(x), K, "refurbished variance")
    fired = r.src("stock", "fired").sum()
    np.testing.assert_array_equal(r.src("stock", "fired"), x)  # demand takes every round
    duds = r.src("stock", "duds").sum()
    assert_mc(duds / fired, 0.3, math.sqrt(0.3 * 0.7 / fired), K, "dud fraction of refurbished rounds")


# ----------------------------------------------------------------------------- production disruptions


def _plant(disruptions: str, T=365):
    return header(T) + """
[demand]
base = 0
[[source]]
name = "plant"
kind = "production"
annual = 365000
""" + disruptions


def test_disruption_events_are_poisson_and_full_one_day_cuts():
    """Events ~ Poisson(lambda T / 365); a full cut for one day removes that day's 1,000 rounds, so
    E[received] = 1000 T exp(-lambda / 365) (a day is lost if it has at least one event)."""
    lam, T = 30.0, 365
    r = simulate(_plant(f"[source.disruptions]\nper_year = {lam}\ncut = 1.0\ndays = 1\n", T), 3000, seed=4)
    ev = r.src("plant", "disruptions").astype(float)
    mu = lam * T / 365
    assert_mc(ev.mean(), mu, math.sqrt(mu / len(ev)), K, "events mean")
    assert_mc(ev.var(ddof=1), mu, se_var(ev), K, "events variance")
    rec = r.src("plant", "received").astype(float)
    p0 = math.exp(-lam / 365)
    assert_mc(rec.mean(), 1000 * T * p0, 1000 * math.sqrt(T * p0 * (1 - p0) / len(rec)), K, "received")


def test_partial_overlapping_disruptions():
    """Cut c for d days: on day t the number of active events is Poisson(lambda min(t+1, d) / 365)
    and output is multiplied by (1 - c) per active event: E[factor] = exp(-lambda min(t+1, d) c / 365)."""
    lam, c, d, T = 20.0, 0.5, 10, 200
    r = simulate(_plant(f"[source.disruptions]\nper_year = {lam}\ncut = {c}\ndays = {d}\n", T), 4000, seed=8)
    t = np.arange(T)
    expect = 1000 * np.exp(-lam * np.minimum(t + 1, d) * c / 365).sum()
    x = r.src("plant", "received").astype(float)
    assert_mc(x.mean(), expect, se_mean(x), K, "received under disruptions")
    assert (x <= 1000 * T).all()


# ----------------------------------------------------------------------------- depot strikes


def test_depot_strikes_counts_losses_and_conservation():
    """No demand; each strike destroys 10 % (stochastically rounded, unbiased) of every stock:
    E[final] = S E[0.9^N] = S exp(-0.1 mu) with N ~ Poisson(mu), mu = lambda T / 365."""
    lam, T, S = 6.0, 365, 100000
    text = header(T) + f"""
[demand]
base = 0
[strikes]
per_year = {lam}
fraction = 0.1
""" + _stock(S) + """
[[source]]
name = "other"
kind = "stockpile"
initial = 50000
"""
    r = simulate(text, 4000, seed=21)
    n = r.total("strikes").astype(float)
    mu = lam * T / 365
    assert_mc(n.mean(), mu, math.sqrt(mu / len(n)), K, "strikes mean")
    assert_mc(n.var(ddof=1), mu, se_var(n), K, "strikes variance")
    for name, s0 in (("stock", S), ("other", 50000)):
        fin = r.src(name, "final").astype(float)
        np.testing.assert_array_equal(r.src(name, "initial") - r.src(name, "lost"), r.src(name, "final"))
        assert_mc(fin.mean(), s0 * math.exp(-0.1 * mu), se_mean(fin), K, f"final stock of {name}")
    np.testing.assert_array_equal(r.src("stock", "lost")[n == 0], 0)


def test_strikes_leave_other_random_numbers_alone():
    """Adding strikes changes no demand draw: run by run the demand totals are identical."""
    base = header(100) + "[demand]\nbase = { dist = \"uniform\", low = 10, high = 500 }\ndaily_cv = 0.3\n" \
        + _stock(20000)
    a = simulate(base, 200, seed=2)
    b = simulate(base + "[strikes]\nper_year = 20\nfraction = 0.3\n", 200, seed=2)
    np.testing.assert_array_equal(a.total("demand"), b.total("demand"))
    assert (b.total("fired") <= a.total("fired")).all() and (b.total("fired") < a.total("fired")).any()


# ----------------------------------------------------------------------------- reject on receipt, rework


def _deal(extra: str, T=100):
    return header(T) + """
[demand]
base = 0
[[source]]
name = "deal"
kind = "import"
shipments_per_month = 300
shipment_size = 10
available = 1000
""" + extra


def test_reject_on_receipt_and_rework_are_binomial():
    """1,000 rounds arrive within days; half rejected (binomial); rejected rounds return after 10
    days with yield 0.6 (binomial); all returns fall inside the 100-day horizon."""
    r = simulate(_deal("reject_on_receipt = 0.5\nrework_days = 10\nrework_yield = 0.6\n"), 3000, seed=13)
    disp = r.src("deal", "dispatched")
    np.testing.assert_array_equal(disp, 1000)
    rej = r.src("deal", "rejected").astype(float)
    back = r.src("deal", "reworked").astype(float)
    assert_mc(rej.mean(), 500, math.sqrt(1000 * 0.25 / len(rej)), K, "rejected")
    assert_mc(rej.var(ddof=1), 250, se_var(rej), K, "rejected variance (binomial)")
    assert_mc(back.sum() / rej.sum(), 0.6, math.sqrt(0.24 / rej.sum()), K, "rework yield")
    # transit 0: everything dispatched has arrived; received = accepted + returned
    np.testing.assert_array_equal(r.src("deal", "received") - back + rej, disp)


def test_reject_without_rework_never_returns_and_late_rework_stays_out():
    r = simulate(_deal("reject_on_receipt = 0.3\n"), 200, seed=1)
    np.testing.assert_array_equal(r.src("deal", "reworked"), 0)
    np.testing.assert_array_equal(r.src("deal", "received") + r.src("deal", "rejected"), 1000)
    # rework of 200 days in a 100-day horizon: nothing comes back in time
    r = simulate(_deal("reject_on_receipt = 0.3\nrework_days = 200\n"), 200, seed=1)
    np.testing.assert_array_equal(r.src("deal", "reworked"), 0)


def test_reject_draws_leave_arrivals_alone():
    """Rejection draws come from the source's event stream: dispatches are identical run by run."""
    size = 'shipment_size = { dist = "uniform", low = 1, high = 50 }'
    a = simulate(_deal("", 60).replace("shipment_size = 10", size).replace("available = 1000", ""), 100, seed=3)
    b = simulate(_deal("reject_on_receipt = 0.4\n", 60).replace("shipment_size = 10", size)
                 .replace("available = 1000", ""), 100, seed=3)
    assert a.src("deal", "dispatched").std() > 0 and b.src("deal", "rejected").sum() > 0
    np.testing.assert_array_equal(a.src("deal", "dispatched"), b.src("deal", "dispatched"))


# ----------------------------------------------------------------------------- correlations

CORR = header(5) + """
[demand]
base = { dist = "lognormal", median = 1000, sigma = 0.5 }
daily_cv = { dist = "uniform", low = 0, high = 1 }
""" + _stock('{ dist = "triangular", min = 0, mode = 1e5, max = 3e5 }') + """
[[correlation]]
between = ["demand.base", "source.stock.initial"]
spearman = -0.4
[[correlation]]
between = ["demand.base", "demand.daily_cv"]
spearman = 0.7
"""


def test_correlations_achieved_and_marginals_kept():
    n = 20000
    loaded = load_scenario(CORR)
    m = loaded.model
    p = m.sample(7, 0, n)
    col = {q.path: i for i, q in enumerate(m.params)}
    for a, b, rho in m.corr_pairs:
        got = st.spearmanr(p[:, col[a]], p[:, col[b]]).statistic
        # Fisher z of Spearman's rho: SE sqrt(1.06 / (n - 3)) (Fieller, Hartley and Pearson 1957)
        assert_mc(math.atanh(got), math.atanh(rho), math.sqrt(1.06 / (n - 3)), K, f"spearman {a} ~ {b}")
    # the unrequested pair follows from the copula: rho_ij = (6/pi) asin(r_ij / 2) of the implied normal r
    C = m.corr_factor @ m.corr_factor.T
    inv = [q.path for q in m.params if not q.dist.is_fixed]
    i, j = [inv.index(x) for x in ("source.stock.initial", "demand.daily_cv")]
    ci, cj = list(m.corr_cols).index(i), list(m.corr_cols).index(j)
    implied = 6 / math.pi * math.asin(C[ci, cj] / 2)
    got = st.spearmanr(p[:, col["source.stock.initial"]], p[:, col["demand.daily_cv"]]).statistic
    assert_mc(math.atanh(got), math.atanh(implied), math.sqrt(1.06 / (n - 3)), K, "implied pair")
    # marginals are unchanged by the copula (KS against the declared distributions)
    assert st.kstest(p[:, col["demand.base"]], st.lognorm(0.5, scale=1000).cdf).pvalue > 1e-3
    assert st.kstest(p[:, col["demand.daily_cv"]], st.uniform(0, 1).cdf).pvalue > 1e-3
    assert st.kstest(p[:, col["source.stock.initial"]], st.triang(1 / 3, 0, 3e5).cdf).pvalue > 1e-3


def test_correlation_refusals():
    bad = CORR + '[[correlation]]\nbetween = ["source.stock.initial", "demand.daily_cv"]\nspearman = 0.9\n'
    with pytest.raises(ScenarioError, match="not positive semi-definite"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match=re_escape("correlation[0].between[1]: 'demand.bse'")):
        load_scenario(CORR.replace('"source.stock.initial"]', '"demand.bse"]'))
    fixed = CORR.replace('daily_cv = { dist = "uniform", low = 0, high = 1 }', "daily_cv = 0.2")
    with pytest.raises(ScenarioError, match="is fixed"):
        load_scenario(fixed)
    with pytest.raises(ScenarioError, match="spearman"):
        load_scenario(CORR.replace("spearman = 0.7", "spearman = 1.5"))


def _run_file(tmp_path, text: str, runs: int):
    """``artysim run`` of a scenario text into a results file (the path)."""
    from click.testing import CliRunner

    from artysim.cli import main

    src = tmp_path / "s.toml"
    src.write_text(text)
    out = tmp_path / "s.nc"
    res = CliRunner().invoke(main, ["run", str(src), "--runs", str(runs), "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    return out


def test_correlations_recorded_in_results_file(tmp_path):
    from artysim.results.reader import open_file as open_results

    with open_results(_run_file(tmp_path, CORR, 3000)) as ds:
        pairs = [str(x) for x in ds["correlation_between"].values]
        assert pairs == ["demand.base ~ source.stock.initial", "demand.base ~ demand.daily_cv"]
        np.testing.assert_array_equal(ds["correlation_requested"].values, [-0.4, 0.7])
        P = ds["parameters"]
        for k, pair in enumerate(pairs):
            a, b = pair.split(" ~ ")
            rho = st.spearmanr(P.sel(parameter=a).values, P.sel(parameter=b).values).statistic
            assert ds["correlation_achieved"].values[k] == pytest.approx(rho, abs=1e-12)


# ----------------------------------------------------------------------------- all at once


def test_all_mechanisms_results_file(tmp_path):
    """Every new per-run variable reaches the file, with the regime coordinate."""
    from invariants import balance_dataset

    from artysim.results.reader import open_file as open_results

    with open_results(_run_file(tmp_path, ALL_MECHANISMS, 500)) as ds:
        assert [str(x) for x in ds["regime"].values] == ["positional", "offensive", "lull"]
        np.testing.assert_array_equal(ds["regime_days"].sum("regime").values, 300)
        for v in ("refurbished", "lost"):  # the balance below counts them
            assert v in ds.variables
        assert (balance_dataset(ds) == 0).all()
        for v in ("rationed_days", "depot_strikes", "rejected", "reworked", "disruptions"):
            assert float(ds[v].sum()) > 0, v
        assert "demand.regime.offensive.multiplier" in [str(x) for x in ds["parameter"].values]


def test_summary_reports_the_mechanisms(tmp_path):
    """summary's new keys equal the file's per-run means (hand computation with numpy)."""
    from artysim.analysis import summary
    from artysim.results.reader import open_file as open_results

    with open_results(_run_file(tmp_path, ALL_MECHANISMS, 400)) as ds:
        s = summary.summarize(ds)
        for v in ("rationed_days", "depot_strikes"):
            x = ds[v].values.astype(float)
            assert s[v][0] == pytest.approx(x.mean(), rel=1e-12) and s[v][1] == pytest.approx(se_mean(x), rel=1e-9)
        for j, src_ in enumerate(s["sources"]):
            for v in ("refurbished", "lost", "rejected", "reworked"):
                assert src_[v][0] == pytest.approx(ds[v].values[:, j].mean(), rel=1e-12)
        shares = ds["regime_days"].values / 300
        assert [r["name"] for r in s["regimes"]] == ["positional", "offensive", "lull"]
        for j, r in enumerate(s["regimes"]):
            assert r["share_of_days"][0] == pytest.approx(shares[:, j].mean(), rel=1e-12)
        table = summary.format_table(s)
        assert "rationed days per run" in table and "refurbished" in table and "positional" in table
