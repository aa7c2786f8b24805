"""Random streams and variate samplers for the numba core.

Seed policy: one 64-bit scenario seed and a run index give each run its own xoshiro256** stream.
The stream's state is four outputs of SplitMix64 started at ``mix(seed, domain) + i * GOLDEN``;
SplitMix64's output is a bijection of its counter and ``GOLDEN`` is odd, so distinct runs (for one
seed and domain) always get distinct states, not just probably distinct ones. Results therefore
depend only on (seed, run index), never on threads, batches or shards.

Samplers are exact algorithms (inversion, PTRS, BTRS, Marsaglia-Tsang) so that the core does not
use numba's slower, per-thread ``np.random`` state. Every function takes the stream array ``S``
(runs x 4, uint64), a normal cache ``G`` (runs, float64; NaN = empty) and the row ``b``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO53 = 1.0 / 9007199254740992.0

#: Stream domains: the per-run parameter uniforms and the day-by-day model draw from
#: independent streams, so adding a parameter never shifts the model's random numbers.
DOMAIN_PARAMS = 1
DOMAIN_MODEL = 2

_jit = numba.njit(cache=True, error_model="numpy", inline="always")


@numba.njit(cache=True, error_model="numpy")
def splitmix64(x: np.uint64) -> np.uint64:
    """SplitMix64 finaliser of ``x + GOLDEN`` (bijective in x)."""
    z = x + GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True, error_model="numpy")
def stream_key(seed: np.uint64, domain: np.uint64) -> np.uint64:
    """64-bit key of a (seed, domain) pair."""
    return splitmix64(splitmix64(seed) ^ (domain * GOLDEN))


@numba.njit(cache=True, error_model="numpy")
def seed_stream(S: np.ndarray, b: int, key: np.uint64, run: np.uint64) -> None:
    """Initialise row ``b`` of ``S`` as the stream of run ``run`` under ``key``."""
    x = key + run * GOLDEN
    for j in range(4):
        x = splitmix64(x)
        S[b, j] = x
    # an all-zero state is the one forbidden xoshiro state; SplitMix64 outputs make it impossible
    # in practice but guard anyway
    if S[b, 0] == 0 and S[b, 1] == 0 and S[b, 2] == 0 and S[b, 3] == 0:
        S[b, 0] = GOLDEN


@_jit
def _rotl(x: np.uint64, k: np.uint64) -> np.uint64:
    return (x << k) | (x >> (np.uint64(64) - k))


@_jit
def next_u64(S: np.ndarray, b: int) -> np.uint64:
    """xoshiro256** step."""
    s0 = S[b, 0]
    s1 = S[b, 1]
    s2 = S[b, 2]
    s3 = S[b, 3]
    result = _rotl(s1 * np.uint64(5), np.uint64(7)) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, np.uint64(45))
    S[b, 0] = s0
    S[b, 1] = s1
    S[b, 2] = s2
    S[b, 3] = s3
    return result


@_jit
def uniform(S: np.ndarray, b: int) -> float:
    """Uniform on the open interval (0, 1), 53-bit resolution."""
    return (float(next_u64(S, b) >> np.uint64(11)) + 0.5) * _TWO53


@_jit
def normal(S: np.ndarray, G: np.ndarray, b: int) -> float:
    """Standard normal by Marsaglia's polar method, caching the second variate."""
    g = G[b]
    if not math.isnan(g):
        G[b] = np.nan
        return g
    while True:
        x = 2.0 * uniform(S, b) - 1.0
        y = 2.0 * uniform(S, b) - 1.0
        r = x * x + y * y
        if r < 1.0 and r > 0.0:
            f = math.sqrt(-2.0 * math.log(r) / r)
            G[b] = y * f
            return x * f


@numba.njit(cache=True, error_model="numpy")
def ndtri(p: float) -> float:
    """Inverse of the standard normal CDF (Acklam's approximation, one Halley refinement)."""
    if p <= 0.0:
        return -np.inf
    if p >= 1.0:
        return np.inf
    a0, a1, a2, a3, a4, a5 = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
                              1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
    b0, b1, b2, b3, b4 = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
                          6.680131188771972e01, -1.328068155288572e01)
    c0, c1, c2, c3, c4, c5 = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
                              -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
    d0, d1, d2, d3 = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
                      3.754408661907416e00)
    plow = 0.02425
    if p < plow:
        q = math.sqrt(-2.0 * math.log(p))
        x = (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / (
            (((d0 * q + d1) * q + d2) * q + d3) * q + 1.0)
    elif p <= 1.0 - plow:
        q = p - 0.5
        r = q * q
        x = (((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q / (
            ((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1.0)
    else:
        q = math.sqrt(-2.0 * math.log(1.0 - p))
        x = -(((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / (
            (((d0 * q + d1) * q + d2) * q + d3) * q + 1.0)
    e = 0.5 * math.erfc(-x / math.sqrt(2.0)) - p
    u = e * math.sqrt(2.0 * math.pi) * math.exp(x * x / 2.0)
    return x - u / (1.0 + x * u / 2.0)


@numba.njit(cache=True, error_model="numpy")
def poisson(S: np.ndarray, b: int, lam: float) -> int:
    """Poisson variate: inversion for small means, PTRS (Hoermann 1993) otherwise."""
    if lam <= 0.0:
        return 0
    if lam < 10.0:
        u = uniform(S, b)
        p = math.exp(-lam)
        s = p
        k = 0
        while u > s:
            k += 1
            p *= lam / k
            s += p
            if p < 1e-300 and k > lam:
                break
        return k
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    bb = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * bb
    invalpha = 1.1239 + 1.1328 / (bb - 3.4)
    vr = 0.9277 - 3.6224 / (bb - 2.0)
    while True:
        u = uniform(S, b) - 0.5
        v = uniform(S, b)
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + bb) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return int(k)
        if k < 0 or (us < 0.013 and v > us):
            continue
        if (math.log(v) + math.log(invalpha) - math.log(a / (us * us) + bb)) <= (
            -lam + k * loglam - math.lgamma(k + 1.0)
        ):
            return int(k)


@numba.njit(cache=True, error_model="numpy")
def _binomial_inversion(S: np.ndarray, b: int, n: int, p: float) -> int:
    q = 1.0 - p
    qn = math.exp(n * math.log(q))
    mean = n * p
    bound = min(float(n), mean + 10.0 * math.sqrt(mean * q + 1.0))
    x = 0
    px = qn
    u = uniform(S, b)
    while u > px:
        x += 1
        if x > bound:
            x = 0
            px = qn
            u = uniform(S, b)
        else:
            u -= px
            px = ((n - x + 1) * p * px) / (x * q)
    return x


_STIRLING_TAIL = np.array([
    0.0810614667953272, 0.0413406959554092, 0.0276779256849983, 0.02079067210376509,
    0.0166446911898211, 0.0138761288230707, 0.0118967099458917, 0.0104112652619720,
    0.00925546218271273, 0.00833056343336287,
])


@numba.njit(cache=True, error_model="numpy", inline="always")
def _stirling_tail(k: float) -> float:
    """log(k!) - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi)/2], exact table below 10."""
    if k <= 9:
        return _STIRLING_TAIL[int(k)]
    kp1sq = (k + 1.0) * (k + 1.0)
    return (1.0 / 12 - (1.0 / 360 - 1.0 / 1260 / kp1sq) / kp1sq) / (k + 1.0)


@numba.njit(cache=True, error_model="numpy")
def _binomial_btrs(S: np.ndarray, b: int, n: int, p: float) -> int:
    """BTRS: transformed rejection with squeeze (Hoermann 1993); needs n*p >= 10, p <= 0.5.

    The rare exact acceptance test uses log-factorials by Stirling's series with tabulated
    corrections (error below 1e-10), as in TensorFlow's and JAX's samplers.
    """
    q = 1.0 - p
    spq = math.sqrt(n * p * q)
    bb = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * bb + 0.01 * p
    c = n * p + 0.5
    vr = 0.92 - 4.2 / bb
    while True:
        u = uniform(S, b) - 0.5
        v = uniform(S, b)
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + bb) * u + c)
        if us >= 0.07 and v <= vr:
            return int(k)
        if k < 0 or k > n:
            continue
        alpha = (2.83 + 5.1 / bb) * spq
        r = p / q
        m = math.floor((n + 1) * p)
        lv = math.log(v * alpha / (a / (us * us) + bb))
        ub = ((m + 0.5) * math.log((m + 1.0) / (r * (n - m + 1.0)))
              + (n + 1.0) * math.log((n - m + 1.0) / (n - k + 1.0))
              + (k + 0.5) * math.log(r * (n - k + 1.0) / (k + 1.0))
              + _stirling_tail(m) + _stirling_tail(n - m) - _stirling_tail(k) - _stirling_tail(n - k))
        if lv <= ub:
            return int(k)


@numba.njit(cache=True, error_model="numpy")
def binomial(S: np.ndarray, b: int, n: int, p: float) -> int:
    """Exact binomial variate."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if p > 0.5:
        return n - binomial(S, b, n, 1.0 - p)
    if n * p < 10.0:
        return _binomial_inversion(S, b, n, p)
    return _binomial_btrs(S, b, n, p)


@numba.njit(cache=True, error_model="numpy")
def gamma(S: np.ndarray, G: np.ndarray, b: int, shape: float) -> float:
    """Gamma(shape, 1) by Marsaglia and Tsang (2000)."""
    if shape <= 0.0:
        return 0.0
    if shape < 1.0:
        return gamma(S, G, b, shape + 1.0) * uniform(S, b) ** (1.0 / shape)
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = normal(S, G, b)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = uniform(S, b)
        if u < 1.0 - 0.0331 * x * x * x * x:
            return d * v
        if math.log(u) < 0.5 * x * x + d * (1.0 - v + math.log(v)):
            return d * v


@numba.njit(cache=True, error_model="numpy")
def beta(S: np.ndarray, G: np.ndarray, b: int, a: float, c: float) -> float:
    """Beta(a, c) as a ratio of gammas."""
    x = gamma(S, G, b, a)
    y = gamma(S, G, b, c)
    if x + y <= 0.0:
        return a / (a + c)
    return x / (x + y)


# Codes of distributions sampled inside the kernel (per shipment). Parameters in a float64[6] row.
K_FIXED = 0  # value
K_UNIFORM = 1  # low, high
K_TRIANGULAR = 2  # min, mode, max
K_SCALED_BETA = 3  # low, high, alpha, beta   (pert and beta)
K_NORMAL = 4  # mean, sd, cdf(low), cdf(high)   truncated by inversion
K_LOGNORMAL = 5  # mu, sigma
K_GAMMA = 6  # shape, scale
K_DISCRETE = 7  # n values; values and cumulative weights in separate tables


@numba.njit(cache=True, error_model="numpy")
def sample_coded(
    S: np.ndarray, G: np.ndarray, b: int, code: int, par: np.ndarray,
    dvals: np.ndarray, dcum: np.ndarray,
) -> float:
    """One draw of a coded distribution (see ``K_*``)."""
    if code == K_FIXED:
        return par[0]
    if code == K_UNIFORM:
        return par[0] + (par[1] - par[0]) * uniform(S, b)
    if code == K_TRIANGULAR:
        lo, mode, hi = par[0], par[1], par[2]
        u = uniform(S, b)
        if hi <= lo:
            return lo
        fc = (mode - lo) / (hi - lo)
        if u < fc:
            return lo + math.sqrt(u * (hi - lo) * (mode - lo))
        return hi - math.sqrt((1.0 - u) * (hi - lo) * (hi - mode))
    if code == K_SCALED_BETA:
        return par[0] + (par[1] - par[0]) * beta(S, G, b, par[2], par[3])
    if code == K_NORMAL:
        u = par[2] + (par[3] - par[2]) * uniform(S, b)
        return par[0] + par[1] * ndtri(u)
    if code == K_LOGNORMAL:
        return math.exp(par[0] + par[1] * normal(S, G, b))
    if code == K_GAMMA:
        return par[1] * gamma(S, G, b, par[0])
    # K_DISCRETE
    n = int(par[0])
    u = uniform(S, b)
    for j in range(n - 1):
        if u < dcum[j]:
            return dvals[j]
    return dvals[n - 1]


@numba.njit(cache=True, error_model="numpy")
def stream_uniforms(seed: np.uint64, domain: np.uint64, run0: int, n: int, k: int) -> np.ndarray:
    """The first ``k`` uniforms of the streams of runs ``run0 .. run0+n-1`` (n x k)."""
    key = stream_key(seed, domain)
    out = np.empty((n, k))
    S = np.empty((1, 4), dtype=np.uint64)
    for i in range(n):
        seed_stream(S, 0, key, np.uint64(run0 + i))
        for j in range(k):
            out[i, j] = uniform(S, 0)
    return out


@numba.njit(cache=True, error_model="numpy")
def stream_states(seed: np.uint64, domain: np.uint64, run0: int, n: int) -> np.ndarray:
    """Initial states of runs ``run0 .. run0+n-1`` (n x 4), for checking stream uniqueness."""
    key = stream_key(seed, domain)
    S = np.empty((n, 4), dtype=np.uint64)
    for i in range(n):
        seed_stream(S, i, key, np.uint64(run0 + i))
    return S
