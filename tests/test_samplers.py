"""Samplers against scipy: the scenario distributions' ppf path, the in-kernel coded samplers, the
exact binomial/Poisson/normal/gamma/beta variates, ndtri; and the per-run stream policy.

The drivers are jitted with cache=False on purpose: numba's cache of a function is not invalidated
when a function it calls in another file (here artysim/rng.py) changes, so cached drivers would
silently test an old sampler. The kernel's own block samplers (whose signatures are still changing)
are tested through the model in test_model.py (one-day runs: duds, effective rounds, shipments).

Goodness of fit: KS (continuous) or pooled chi-square (discrete) with fixed seeds, p > P_MIN = 1e-3.
Moments: within k = 4 Monte Carlo standard errors (exact SEs from the law's moments).
Expected laws are written here from the *documented* parameterisation (SPEC §2), not taken from the
distribution objects, so a wrong parameterisation fails.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st
from pydantic import TypeAdapter
from support import assert_gof, assert_mc, pooled_chisquare, se_var_exact

from artysim.core import rng
from artysim.model import distributions

N_DRAWS = 20_000  # ppf path (exact inversion of known uniforms: also checked deterministically)
N_KERNEL = 100_000  # in-kernel continuous samplers (KS)
N_DISCRETE = 200_000  # binomial / Poisson (chi-square; mean and variance to K SE)
K = 4  # Monte Carlo standard errors allowed in the moment checks of this file
TEST_DOMAIN = np.uint64(77)  # a stream domain the model never uses

_quantity = TypeAdapter(distributions.Quantity)


def dist(**kw):
    """A scenario distribution exactly as a scenario file would give it."""
    return _quantity.validate_python(kw)


def _one_stream() -> np.ndarray:
    """State array for one stream (4 x 1, the layout ``rng.new_streams`` makes)."""
    return rng.new_streams(1)


def _key(seed: int) -> np.uint64:
    return np.uint64(rng.stream_key(np.uint64(seed), TEST_DOMAIN))


# ----------------------------------------------------------------------------- jitted drivers


@numba.njit(cache=False)
def _draw_coded(S, key, n, code, par, dv, dc):
    G = np.full(1, np.nan)
    rng.seed_stream(S, 0, key, np.uint64(0))
    out = np.empty(n)
    for i in range(n):
        out[i] = rng.sample_coded(S, G, 0, code, par, dv, dc)
    return out


@numba.njit(cache=False)
def _draw_binomial(S, key, m, n, p):
    rng.seed_stream(S, 0, key, np.uint64(0))
    out = np.empty(m, dtype=np.int64)
    for i in range(m):
        out[i] = rng.binomial(S, 0, n, p)
    return out


@numba.njit(cache=False)
def _draw_poisson(S, key, m, lam):
    rng.seed_stream(S, 0, key, np.uint64(0))
    out = np.empty(m, dtype=np.int64)
    for i in range(m):
        out[i] = rng.poisson(S, 0, lam)
    return out


@numba.njit(cache=False)
def _draw_normal(S, key, m):
    G = np.full(1, np.nan)
    rng.seed_stream(S, 0, key, np.uint64(0))
    out = np.empty(m)
    for i in range(m):
        out[i] = rng.normal(S, G, 0)
    return out


@numba.njit(cache=False)
def _draw_gamma(S, key, m, shape):
    G = np.full(1, np.nan)
    rng.seed_stream(S, 0, key, np.uint64(0))
    out = np.empty(m)
    for i in range(m):
        out[i] = rng.gamma(S, G, 0, shape)
    return out


@numba.njit(cache=False)
def _draw_beta(S, key, m, a, b):
    G = np.full(1, np.nan)
    rng.seed_stream(S, 0, key, np.uint64(0))
    out = np.empty(m)
    for i in range(m):
        out[i] = rng.beta(S, G, 0, a, b)
    return out


@numba.njit(cache=False)
def _draw_uniform(S, key, m):
    rng.seed_stream(S, 0, key, np.uint64(0))
    out = np.empty(m)
    for i in range(m):
        out[i] = rng.uniform(S, 0)
    return out


def _first_outputs(states):
    """First xoshiro256** output of each state row (s0, s1, s2, s3): rotl(s1 * 5, 7) * 9."""
    s1 = states[:, 1].astype(np.uint64)
    with np.errstate(over="ignore"):
        x = s1 * np.uint64(5)
        x = (x << np.uint64(7)) | (x >> np.uint64(57))
        return x * np.uint64(9)


@numba.njit(cache=False)
def _ndtri_many(ps):
    out = np.empty(ps.shape[0])
    for i in range(ps.shape[0]):
        out[i] = rng.ndtri(ps[i])
    return out


# ----------------------------------------------------------------------------- expected laws
# Written from SPEC §2's parameterisation, independently of artysim.distributions.

Z95 = st.norm.ppf(0.95)  # 1.6449


def _tri_cdf(a, c, b):
    """Triangular cdf on [a, b] with mode c, by formula (no scipy)."""
    def cdf(x):
        x = np.asarray(x, dtype=np.float64)
        left = (x - a) ** 2 / ((b - a) * (c - a)) if c > a else np.zeros_like(x)
        right = 1.0 - (b - x) ** 2 / ((b - a) * (b - c)) if b > c else np.ones_like(x)
        return np.where(x <= a, 0.0, np.where(x >= b, 1.0, np.where(x <= c, left, right)))
    return cdf


def _pert_law(lo, mode, hi, lam=4.0):
    alpha = 1 + lam * (mode - lo) / (hi - lo)
    beta = 1 + lam * (hi - mode) / (hi - lo)
    return st.beta(alpha, beta, loc=lo, scale=hi - lo)


def _truncnorm_cdf(m, s, lo, hi):
    """Normal(m, s) truncated to [lo, hi], cdf by formula from the normal cdf."""
    Phi = st.norm.cdf
    a = 0.0 if lo is None else Phi((lo - m) / s)
    b = 1.0 if hi is None else Phi((hi - m) / s)

    def cdf(x):
        return np.clip((Phi((np.asarray(x) - m) / s) - a) / (b - a), 0.0, 1.0)
    return cdf


# (scenario spec, expected continuous cdf)
CONTINUOUS = {
    "uniform": ({"dist": "uniform", "low": 2.0, "high": 5.0}, st.uniform(2.0, 3.0).cdf),
    "triangular": ({"dist": "triangular", "min": 1.0, "mode": 2.0, "max": 6.0}, _tri_cdf(1.0, 2.0, 6.0)),
    "triangular_mode_at_min": ({"dist": "triangular", "min": 0.0, "mode": 0.0, "max": 1.0},
                               _tri_cdf(0.0, 0.0, 1.0)),
    "triangular_mode_at_max": ({"dist": "triangular", "min": 14.0, "mode": 35.0, "max": 35.0},
                               _tri_cdf(14.0, 35.0, 35.0)),
    "pert": ({"dist": "pert", "min": 10.0, "mode": 15.0, "max": 40.0}, _pert_law(10.0, 15.0, 40.0).cdf),
    "pert_lambda2": ({"dist": "pert", "min": 0.05, "mode": 0.2, "max": 0.5, "lambda": 2.0},
                     _pert_law(0.05, 0.2, 0.5, 2.0).cdf),
    "normal": ({"dist": "normal", "mean": 5.0, "sd": 2.0}, st.norm(5.0, 2.0).cdf),
    "normal_truncated": ({"dist": "normal", "mean": 5.0, "sd": 2.0, "low": 4.0, "high": 9.0},
                         _truncnorm_cdf(5.0, 2.0, 4.0, 9.0)),
    "normal_low_only": ({"dist": "normal", "mean": 1.0, "sd": 2.0, "low": 0.0},
                        _truncnorm_cdf(1.0, 2.0, 0.0, None)),
    "normal_tail_window": ({"dist": "normal", "mean": 0.0, "sd": 1.0, "low": 2.5, "high": 4.0},
                           _truncnorm_cdf(0.0, 1.0, 2.5, 4.0)),
    "lognormal_sigma": ({"dist": "lognormal", "median": 100.0, "sigma": 0.5},
                        lambda x: st.norm.cdf((np.log(x) - math.log(100.0)) / 0.5)),
    "lognormal_p95": ({"dist": "lognormal", "median": 20000.0, "p95": 35000.0},
                      lambda x: st.norm.cdf((np.log(x) - math.log(20000.0)) / (math.log(35000 / 20000) / Z95))),
    "beta_mean_conc": ({"dist": "beta", "mean": 0.2, "concentration": 20.0}, st.beta(4.0, 16.0).cdf),
    "beta_ab": ({"dist": "beta", "alpha": 0.5, "beta": 0.5}, st.beta(0.5, 0.5).cdf),
    "gamma": ({"dist": "gamma", "mean": 10.0, "sd": 5.0}, st.gamma(4.0, scale=2.5).cdf),
    "gamma_small_shape": ({"dist": "gamma", "mean": 3.0, "sd": 3.0 * math.sqrt(2.0)},
                          st.gamma(0.5, scale=6.0).cdf),
}

DISCRETE = {
    "weighted": ({"dist": "discrete", "values": [1.0, 5.0, 7.0, 9.0], "weights": [0.2, 0.5, 0.0, 0.3]},
                 [1.0, 5.0, 7.0, 9.0], [0.2, 0.5, 0.0, 0.3]),
    "equal": ({"dist": "discrete", "values": [3.0, -1.0, 10.0]}, [3.0, -1.0, 10.0], [1 / 3, 1 / 3, 1 / 3]),
    "unnormalised": ({"dist": "discrete", "values": [0.0, 1.0], "weights": [3.0, 1.0]}, [0.0, 1.0], [0.75, 0.25]),
}


def _discrete_pvalue(x, values, weights):
    vals = np.asarray(values)
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    assert np.isin(x, vals).all(), f"draws outside the values: {set(np.unique(x)) - set(vals)}"
    assert not np.isin(x, vals[w == 0]).any(), "a zero-weight value was drawn"
    keep = w > 0
    obs = np.array([(x == v).sum() for v in vals[keep]], dtype=np.float64)
    exp = len(x) * w[keep]
    stat = float(np.sum((obs - exp) ** 2 / exp))
    return float(st.chi2.sf(stat, keep.sum() - 1))


# ----------------------------------------------------------------------------- ppf path (per-run parameters)


@pytest.mark.parametrize("name", sorted(CONTINUOUS))
def test_ppf_matches_documented_law(name):
    spec, cdf = CONTINUOUS[name]
    u = np.random.default_rng(20240101).random(N_DRAWS)
    x = dist(**spec).ppf(u)
    assert np.isfinite(x).all()
    p = st.kstest(x, cdf).pvalue
    assert_gof(p, f"Dist.ppf of {spec}, KS")


@pytest.mark.parametrize("name", sorted(CONTINUOUS))
def test_ppf_inverts_documented_cdf(name):
    """Deterministic: the documented cdf of Dist.ppf(u) gives back u (to 1e-9) on a grid of u."""
    spec, cdf = CONTINUOUS[name]
    u = np.linspace(0.001, 0.999, 999)
    np.testing.assert_allclose(cdf(dist(**spec).ppf(u)), u, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", sorted(DISCRETE))
def test_ppf_discrete_matches_weights(name):
    spec, values, weights = DISCRETE[name]
    u = np.random.default_rng(7).random(N_DRAWS)
    x = dist(**spec).ppf(u)
    assert_gof(_discrete_pvalue(x, values, weights), f"Dist.ppf of {spec}, chi-square")


def test_ppf_fixed_and_closed_form_points():
    u = np.random.default_rng(1).random(100)
    assert np.all(dist(dist="fixed", value=3.5).ppf(u) == 3.5)
    assert np.all(_quantity.validate_python(42).ppf(u) == 42.0)  # a plain number is fixed
    # lognormal by p95: the 0.5 and 0.95 quantiles are the median and p95 given
    ln = dist(dist="lognormal", median=20000.0, p95=35000.0)
    np.testing.assert_allclose(ln.ppf(np.array([0.5, 0.95])), [20000.0, 35000.0], rtol=1e-9)
    # triangular: the cdf at the mode is (mode - min) / (max - min)
    tri = dist(dist="triangular", min=1.0, mode=2.0, max=6.0)
    np.testing.assert_allclose(tri.ppf(np.array([0.2])), [2.0], rtol=1e-12)
    # PERT mean is (min + lambda * mode + max) / (lambda + 2)
    np.testing.assert_allclose(dist(dist="pert", min=10.0, mode=15.0, max=40.0).mean(), (10 + 60 + 40) / 6, rtol=1e-12)
    # beta by mean/concentration, gamma by mean/sd: the documented mean
    np.testing.assert_allclose(dist(dist="beta", mean=0.2, concentration=20.0).mean(), 0.2, rtol=1e-12)
    np.testing.assert_allclose(dist(dist="gamma", mean=10.0, sd=5.0).frozen().std(), 5.0, rtol=1e-12)


# ----------------------------------------------------------------------------- in-kernel coded samplers


def _coded(spec, seed, n=N_KERNEL):
    code, par, dv, dc = distributions.kernel_arrays(dist(**spec))
    return _draw_coded(_one_stream(), _key(seed), n, code, par, dv, dc)


@pytest.mark.parametrize("name", sorted(CONTINUOUS))
def test_sample_coded_matches_documented_law(name):
    spec, cdf = CONTINUOUS[name]
    x = _coded(spec, seed=1000 + sorted(CONTINUOUS).index(name))
    assert np.isfinite(x).all()
    p = st.kstest(x, cdf).pvalue
    assert_gof(p, f"rng.sample_coded of {spec}, KS")


@pytest.mark.parametrize("name", sorted(DISCRETE))
def test_sample_coded_discrete(name):
    spec, values, weights = DISCRETE[name]
    x = _coded(spec, seed=2000 + sorted(DISCRETE).index(name))
    assert_gof(_discrete_pvalue(x, values, weights), f"rng.sample_coded of {spec}, chi-square")


def test_sample_coded_fixed():
    x = _coded({"dist": "fixed", "value": 17.25}, seed=3, n=1000)
    assert np.all(x == 17.25)


def test_sample_coded_truncated_normal_stays_in_bounds():
    x = _coded({"dist": "normal", "mean": 0.0, "sd": 1.0, "low": 2.5, "high": 4.0}, seed=4)
    assert x.min() >= 2.5 and x.max() <= 4.0


# ----------------------------------------------------------------------------- uniform, normal, gamma, beta


def test_uniform_open_interval_and_ks():
    x = _draw_uniform(_one_stream(), _key(5), 200_000)
    assert x.min() > 0.0 and x.max() < 1.0
    assert_gof(st.kstest(x, "uniform").pvalue, "rng.uniform KS")
    # consecutive draws uncorrelated: lag-1 correlation within K SE of 0 (SE = 1/sqrt(n))
    r = np.corrcoef(x[:-1], x[1:])[0, 1]
    assert_mc(r, 0.0, 1.0 / math.sqrt(len(x)), K, "uniform lag-1 correlation")


def test_normal_ks_and_pairs_independent():
    x = _draw_normal(_one_stream(), _key(6), 100_000)
    assert_gof(st.kstest(x, "norm").pvalue, "rng.normal KS")
    # consecutive draws (a cached pair for a polar method, neighbours for a ziggurat) are N(0,1) and
    # uncorrelated, also in their squares
    assert_gof(st.kstest(x[0::2], "norm").pvalue, "rng.normal even draws KS")
    assert_gof(st.kstest(x[1::2], "norm").pvalue, "rng.normal odd draws KS")
    r = np.corrcoef(x[0::2], x[1::2])[0, 1]
    assert_mc(r, 0.0, 1.0 / math.sqrt(len(x) // 2), K, "normal pair correlation")
    r2 = np.corrcoef(x[0::2] ** 2, x[1::2] ** 2)[0, 1]
    assert_mc(r2, 0.0, 1.0 / math.sqrt(len(x) // 2), K, "normal pair correlation of squares")


def test_normal_binned_including_tails():
    """Chi-square over 200 equiprobable bins plus the ziggurat's tail edge (3.4426) and +-4, +-5,
    so a wrong layer or tail shows up even where KS is blind; tail masses within K SE."""
    n = 400_000
    x = _draw_normal(_one_stream(), _key(16), n)
    edges = np.unique(np.concatenate([st.norm.ppf(np.linspace(0, 1, 201)),
                                      [-5.0, -4.0, -3.442619855899, 3.442619855899, 4.0, 5.0]]))
    obs = np.histogram(x, bins=edges)[0]
    exp = n * np.diff(st.norm.cdf(edges))
    keep = exp >= 5
    o = np.append(obs[keep], obs[~keep].sum())
    e = np.append(exp[keep], exp[~keep].sum())
    stat = float(np.sum((o - e) ** 2 / e))
    assert_gof(float(st.chi2.sf(stat, len(o) - 1)), "rng.normal binned chi-square")
    for c in (2.0, 3.442619855899, 4.0):
        p = 2 * st.norm.sf(c)
        assert_mc((np.abs(x) > c).mean(), p, math.sqrt(p * (1 - p) / n), K, f"P(|Z| > {c})")


@pytest.mark.parametrize("shape", [0.5, 1.0, 7.3, 0.05])
def test_gamma_ks(shape):
    x = _draw_gamma(_one_stream(), _key(7), N_KERNEL, shape)
    assert (x >= 0).all()
    assert_gof(st.kstest(x, st.gamma(shape).cdf).pvalue, f"rng.gamma({shape}) KS")
    assert_mc(x.mean(), shape, math.sqrt(shape / len(x)), K, f"gamma({shape}) mean")


@pytest.mark.parametrize("a,b", [(0.5, 0.5), (2.0, 5.0), (4.0, 16.0), (0.3, 3.0)])
def test_beta_ks(a, b):
    x = _draw_beta(_one_stream(), _key(8), N_KERNEL, a, b)
    assert ((x >= 0) & (x <= 1)).all()
    assert_gof(st.kstest(x, st.beta(a, b).cdf).pvalue, f"rng.beta({a}, {b}) KS")


# ----------------------------------------------------------------------------- binomial

BINOMIAL_CASES = [
    (20, 0.3),  # inversion, n p = 6
    (1000, 0.005),  # inversion, n p = 5, long support
    (99, 0.1),  # inversion, n p = 9.9 just below the switch
    (100, 0.1),  # BTRS, n p = 10 exactly at the switch
    (100, 0.2),  # BTRS, n p = 20
    (10_000, 0.03),  # BTRS, n p = 300
    (1_000_000, 0.12),  # BTRS, kernel-sized (a day's fire of one source)
    (50, 0.8),  # p > 0.5 -> n - Bin(50, 0.2), BTRS branch
    (30, 0.9),  # p > 0.5 -> n - Bin(30, 0.1), inversion branch
    (40, 0.5),  # p = 0.5, BTRS branch
    (1, 0.37),  # Bernoulli
    (7, 0.999),  # p close to 1
]


@pytest.mark.parametrize("n,p", BINOMIAL_CASES)
def test_binomial_gof_and_moments(n, p):
    m = N_DISCRETE
    x = _draw_binomial(_one_stream(), _key(9 + n), m, n, p)
    assert x.min() >= 0 and x.max() <= n
    law = st.binom(n, p)
    _, df, pv = pooled_chisquare(x, law.pmf, law.cdf)
    assert_gof(pv, f"rng.binomial({n}, {p}) chi-square (df={df})")
    q = 1 - p
    var = n * p * q
    mu4 = n * p * q * (1 + 3 * (n - 2) * p * q)  # central 4th moment of Bin(n, p)
    assert_mc(x.mean(), n * p, math.sqrt(var / m), K, f"binomial({n}, {p}) mean")
    assert_mc(x.var(ddof=1), var, se_var_exact(var, mu4, m), K, f"binomial({n}, {p}) variance")


@pytest.mark.parametrize("n,p,expected", [(100, 0.0, 0), (100, 1.0, 100), (0, 0.3, 0), (0, 1.0, 0),
                                          (5, -0.1, 0), (5, 1.5, 5)])
def test_binomial_degenerate(n, p, expected):
    x = _draw_binomial(_one_stream(), _key(10), 1000, n, p)
    assert np.all(x == expected)


# ----------------------------------------------------------------------------- poisson


@pytest.mark.parametrize("lam", [0.143, 3.0, 9.99, 10.0, 15.0, 400.0, 1e4])
def test_poisson_gof_and_moments(lam):
    m = N_DISCRETE
    x = _draw_poisson(_one_stream(), _key(11), m, lam)
    assert x.min() >= 0
    law = st.poisson(lam)
    _, df, pv = pooled_chisquare(x, law.pmf, law.cdf)
    assert_gof(pv, f"rng.poisson({lam}) chi-square (df={df})")
    assert_mc(x.mean(), lam, math.sqrt(lam / m), K, f"poisson({lam}) mean")
    assert_mc(x.var(ddof=1), lam, se_var_exact(lam, lam * (1 + 3 * lam), m), K, f"poisson({lam}) variance")


def test_poisson_zero_rate():
    assert np.all(_draw_poisson(_one_stream(), _key(12), 100, 0.0) == 0)


# ----------------------------------------------------------------------------- ndtri


def _ndtri_grid():
    lower = np.logspace(-300, math.log10(0.49), 400)
    body = np.linspace(0.01, 0.99, 99)
    near_half = 0.5 + np.array([-1e-3, -1e-6, -1e-10, -1e-15, 0.0, 1e-15, 1e-10, 1e-6, 1e-3])
    upper = 1.0 - np.logspace(-1, -16, 200)
    return np.unique(np.concatenate([lower, body, near_half, upper]))


def test_ndtri_lower_tail_to_1e12():
    """The part of the range that does reach 1e-12 relative (p <= 0.49)."""
    ps = np.logspace(-300, math.log10(0.49), 400)
    np.testing.assert_allclose(_ndtri_many(ps), sp.ndtri(ps), rtol=1e-12, atol=0)


def test_ndtri_absolute_error_small():
    """Whatever the relative precision, sampling accuracy: |error| < 1e-8 everywhere on the grid."""
    ps = _ndtri_grid()
    np.testing.assert_allclose(_ndtri_many(ps), sp.ndtri(ps), rtol=0, atol=1e-8)


def test_ndtri_matches_scipy_to_1e12_everywhere():
    """Including p near 1/2 and p near 1, where a naive Halley step cancels."""
    ps = _ndtri_grid()
    np.testing.assert_allclose(_ndtri_many(ps), sp.ndtri(ps), rtol=1e-12, atol=0)


def test_ndtri_limits():
    assert rng.ndtri(0.0) == -np.inf and rng.ndtri(1.0) == np.inf
    assert rng.ndtri(0.5) == 0.0


# ----------------------------------------------------------------------------- streams


def test_streams_distinct_for_a_million_runs():
    seed, dom = np.uint64(20230913), np.uint64(rng.DOMAIN_MODEL)
    S = rng.stream_states(seed, dom, 0, 10**6)
    assert S.shape == (10**6, 4) and S.dtype == np.uint64
    assert np.unique(S, axis=0).shape[0] == 10**6, "two runs share a 256-bit starting state"
    first = _first_outputs(S)
    assert np.unique(first).shape[0] == 10**6, "two runs share their first 64-bit output"
    # the first outputs computed here are the generator's: the first uniforms are their top 53 bits
    u = rng.stream_uniforms(seed, dom, 0, 1000, 1)[:, 0]
    np.testing.assert_array_equal(u, ((first[:1000] >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53)


def test_streams_independent_of_run0():
    seed, dom = np.uint64(99), np.uint64(rng.DOMAIN_MODEL)
    n, k = 5000, 1234
    whole = rng.stream_states(seed, dom, 0, n)
    np.testing.assert_array_equal(rng.stream_states(seed, dom, k, n - k), whole[k:])
    np.testing.assert_array_equal(rng.stream_states(seed, dom, 0, k), whole[:k])
    # the same for the parameter uniforms
    u = rng.stream_uniforms(seed, np.uint64(rng.DOMAIN_PARAMS), 0, n, 3)
    np.testing.assert_array_equal(rng.stream_uniforms(seed, np.uint64(rng.DOMAIN_PARAMS), k, n - k, 3), u[k:])
    # and seed_stream on its own gives row i
    S = _one_stream()
    rng.seed_stream(S, 0, np.uint64(rng.stream_key(seed, dom)), np.uint64(4321))
    np.testing.assert_array_equal(S.ravel(), whole[4321])


def test_streams_differ_between_seeds_and_domains():
    n = 100_000
    a = rng.stream_states(np.uint64(1), np.uint64(rng.DOMAIN_MODEL), 0, n)
    b = rng.stream_states(np.uint64(2), np.uint64(rng.DOMAIN_MODEL), 0, n)
    c = rng.stream_states(np.uint64(1), np.uint64(rng.DOMAIN_PARAMS), 0, n)
    both = np.concatenate([a, b, c])
    assert np.unique(both, axis=0).shape[0] == 3 * n, "streams shared between seeds or domains"
    # seeds that differ by the run stride must not give shifted copies of each other's streams
    d = rng.stream_states(np.uint64(1) + rng.GOLDEN, np.uint64(rng.DOMAIN_MODEL), 0, n)
    assert np.unique(np.concatenate([a, d]), axis=0).shape[0] == 2 * n


def test_stream_first_uniforms_look_independent():
    """Across runs, the first uniforms are U(0,1) and neighbouring runs are uncorrelated (K SE)."""
    n = 200_000
    u = rng.stream_uniforms(np.uint64(5), np.uint64(rng.DOMAIN_PARAMS), 0, n, 2)
    assert_gof(st.kstest(u[:, 0], "uniform").pvalue, "first uniform across runs, KS")
    assert_gof(st.kstest(u[:, 1], "uniform").pvalue, "second uniform across runs, KS")
    se = 1.0 / math.sqrt(n)
    assert_mc(np.corrcoef(u[:-1, 0], u[1:, 0])[0, 1], 0.0, se, K, "run i vs run i+1 first uniform")
    assert_mc(np.corrcoef(u[:, 0], u[:, 1])[0, 1], 0.0, se, K, "first vs second uniform of a run")
