"""Random streams and variate samplers for the numba core.

Seed policy: one 64-bit scenario seed and a run index give each run its own xoshiro256** stream.
The stream's state is four outputs of SplitMix64 started at ``mix(seed, domain) + i * GOLDEN``;
SplitMix64's output is a bijection of its counter and ``GOLDEN`` is odd, so distinct runs (for one
seed and domain) always get distinct states, not just probably distinct ones. Results therefore
depend only on (seed, run index), never on threads, batches or shards.

Samplers are exact algorithms (inversion, PTRS, BTRS, Marsaglia-Tsang) so that the core does not
use numba's slower, per-thread ``np.random`` state. Every function takes the stream array ``S``
(4 x runs, uint64: state word-major, so loops over runs vectorise; make one with
``new_streams``), a normal cache ``G`` (runs, float64; NaN = empty) and the run's column ``b``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from artysim.core import cache  # noqa: F401  (sets the cache folder before any @njit)
from artysim.core.layout import (  # codes shared with the model builder; stream names -> domains
    K_FIXED,
    K_GAMMA,
    K_LOGNORMAL,
    K_NORMAL,
    K_SCALED_BETA,
    K_TRIANGULAR,
    K_UNIFORM,
    path_domain,  # noqa: F401
)

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO53 = 1.0 / 9007199254740992.0

#: Stream domains: every sampled parameter and every model component (demand, each source) has
#: its own stream per run, keyed by a 64-bit hash of its name (``path_domain``), so adding or
#: changing one never shifts another's random numbers: scenario variants share common random numbers.
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
def new_streams(n: int) -> np.ndarray:
    """Uninitialised state for ``n`` streams (seed each column with ``seed_stream``)."""
    return np.empty((4, n), dtype=np.uint64)


@numba.njit(cache=True, error_model="numpy")
def seed_stream(S: np.ndarray, b: int, key: np.uint64, run: np.uint64) -> None:
    """Initialise column ``b`` of ``S`` as the stream of run ``run`` under ``key``."""
    x = key + run * GOLDEN
    for j in range(4):
        x = splitmix64(x)
        S[j, b] = x
    # an all-zero state is the one forbidden xoshiro state; SplitMix64 outputs make it impossible
    # in practice but guard anyway
    if S[0, b] == 0 and S[1, b] == 0 and S[2, b] == 0 and S[3, b] == 0:
        S[0, b] = GOLDEN


@_jit
def _rotl(x: np.uint64, k: np.uint64) -> np.uint64:
    return (x << k) | (x >> (np.uint64(64) - k))


@_jit
def next_u64(S: np.ndarray, b: int) -> np.uint64:
    """xoshiro256** step."""
    s0 = S[0, b]
    s1 = S[1, b]
    s2 = S[2, b]
    s3 = S[3, b]
    result = _rotl(s1 * np.uint64(5), np.uint64(7)) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, np.uint64(45))
    S[0, b] = s0
    S[1, b] = s1
    S[2, b] = s2
    S[3, b] = s3
    return result


@_jit
def uniform(S: np.ndarray, b: int) -> float:
    """Uniform on the open interval (0, 1), 53-bit resolution."""
    # the shifted value fits in 53 bits: convert as a signed integer (x86 has no direct
    # unsigned 64-bit conversion and would branch)
    return (float(np.int64(next_u64(S, b) >> np.uint64(11))) + 0.5) * _TWO53


def _ziggurat_tables(c: int = 128, r: float = 3.442619855899, v: float = 9.91256303526217e-3):
    """Layer edges and ratios of Marsaglia and Tsang's ziggurat for the normal (Doornik's ZIGNOR)."""
    x = np.zeros(c + 1)
    f = math.exp(-0.5 * r * r)
    x[0] = v / f
    x[1] = r
    for i in range(2, c):
        x[i] = math.sqrt(-2.0 * math.log(v / x[i - 1] + f))
        f = math.exp(-0.5 * x[i] * x[i])
    x[c] = 0.0
    ratio = x[1:] / x[:-1]
    return x, ratio


_ZX, _ZR = _ziggurat_tables()
_ZIG_R = 3.442619855899


@numba.njit(cache=True, error_model="numpy")
def _normal_slow(S: np.ndarray, b: int, i: int, u: float) -> float:
    """The rare ziggurat cases: the base strip's tail, or a wedge needing the exact density."""
    if i == 0:
        while True:
            x = math.log(uniform(S, b)) / _ZIG_R
            y = math.log(uniform(S, b))
            if -2.0 * y >= x * x:
                return x - _ZIG_R if u < 0.0 else _ZIG_R - x
    x = u * _ZX[i]
    f0 = math.exp(-0.5 * (_ZX[i] * _ZX[i] - x * x))
    f1 = math.exp(-0.5 * (_ZX[i + 1] * _ZX[i + 1] - x * x))
    if f1 + uniform(S, b) * (f0 - f1) < 1.0:
        return x
    return np.nan  # rejected: the caller draws again


@_jit
def normal(S: np.ndarray, G: np.ndarray, b: int) -> float:
    """Standard normal by the ziggurat (exact; one 64-bit draw ~99 % of the time).

    The top 53 bits give the uniform and the low 7 bits the layer, so the two are independent.
    ``G`` is unused (kept so that callers need not change when the method does).
    """
    while True:
        w = next_u64(S, b)
        i = int(w & np.uint64(127))
        u = 2.0 * ((float(np.int64(w >> np.uint64(11))) + 0.5) * _TWO53) - 1.0
        if abs(u) < _ZR[i]:
            return u * _ZX[i]
        z = _normal_slow(S, b, i, u)
        if not math.isnan(z):
            return z


@numba.njit(cache=True, error_model="numpy")
def lognormal_noise_block(S: np.ndarray, G: np.ndarray, nb: int, mu: np.ndarray, sig: np.ndarray,
                          out: np.ndarray, work: np.ndarray) -> None:
    """``out[b] = exp(mu[b] + sig[b] * Z)`` (1 where sig[b] <= 0, drawing nothing) for a block.

    The ziggurat's common case (one 64-bit draw, ~99 %) runs for all runs in one branch-free loop
    that vectorises; the rare cases follow one by one. Each run consumes exactly the draws that
    ``normal`` would, so results equal those of the scalar sampler. ``work``: scratch (2, block).
    """
    all_random = True
    for b in range(nb):
        if sig[b] <= 0.0:
            all_random = False
    if not all_random:
        for b in range(nb):
            out[b] = math.exp(mu[b] + sig[b] * normal(S, G, b)) if sig[b] > 0.0 else 1.0
        return
    for b in range(nb):  # pass 1: no data-dependent branch, vectorises
        w = next_u64(S, b)
        i = int(w & np.uint64(127))
        u = 2.0 * ((float(np.int64(w >> np.uint64(11))) + 0.5) * _TWO53) - 1.0
        ok = abs(u) < _ZR[i]
        out[b] = u * _ZX[i]
        work[0, b] = -1.0 if ok else float(i)
        work[1, b] = u
    for b in range(nb):  # pass 2: the rare lanes one by one
        if work[0, b] >= 0.0:
            z = _normal_slow(S, b, int(work[0, b]), work[1, b])
            if math.isnan(z):
                z = normal(S, G, b)
            out[b] = z
    for b in range(nb):
        out[b] = math.exp(mu[b] + sig[b] * out[b])


@numba.njit(cache=True, error_model="numpy")
def ndtri(p: float) -> float:
    """Inverse of the standard normal CDF (Acklam's approximation, one Halley refinement).

    Works on the lower half only (p > 1/2 by symmetry, where 1 - p is exact) and refines with a
    correction computed without cancellation, so the result is good to ~1e-15 relative.
    """
    if p <= 0.0:
        return -np.inf
    if p >= 1.0:
        return np.inf
    if p > 0.5:
        return -ndtri(1.0 - p)
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
        e = 0.5 * math.erfc(-x / math.sqrt(2.0)) - p
    else:
        q = p - 0.5
        r = q * q
        x = (((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q / (
            ((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1.0)
        e = 0.5 * math.erf(x / math.sqrt(2.0)) - q  # Phi(x) - p without cancellation near 1/2
    u = e * math.sqrt(2.0 * math.pi) * math.exp(x * x / 2.0)
    return x - u / (1.0 + x * u / 2.0)


@numba.njit(cache=True, error_model="numpy")
def poisson(S: np.ndarray, b: int, lam: float) -> int:
    """Poisson variate: inversion for small means, PTRS (Hoermann 1993) otherwise."""
    return poisson_known(S, b, lam, math.exp(-lam) if lam < 10.0 else 0.0)


@numba.njit(cache=True, error_model="numpy", inline="always")
def poisson_inverse(u: float, lam: float, exp_neg_lam: float) -> int:
    """Poisson(lam) by inversion of a given uniform u (sequential search; lam < 10)."""
    if lam <= 0.0:
        return 0
    p = exp_neg_lam
    s = p
    k = 0
    while u > s:
        k += 1
        p *= lam / k
        s += p
        if p < 1e-300 and k > lam:
            break
    return k


@numba.njit(cache=True, error_model="numpy")
def poisson_known(S: np.ndarray, b: int, lam: float, exp_neg_lam: float) -> int:
    """``poisson`` with exp(-lam) precomputed by the caller (used only when lam < 10)."""
    if lam <= 0.0:
        return 0
    if lam < 10.0:
        return poisson_inverse(uniform(S, b), lam, exp_neg_lam)
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
def binomial(S: np.ndarray, b: int, n: int, p: float) -> int:
    """Exact binomial variate."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    flip = p > 0.5
    pp = 1.0 - p if flip else p
    if n * pp < 10.0:
        k = _binomial_inversion(S, b, n, pp)
    else:
        k = _btrs_continue(S, b, n, pp, _NO_TABLE)
    return n - k if flip else k


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
    S = np.empty((4, 1), dtype=np.uint64)
    for i in range(n):
        seed_stream(S, 0, key, np.uint64(run0 + i))
        for j in range(k):
            out[i, j] = uniform(S, 0)
    return out


@numba.njit(cache=True, error_model="numpy")
def stream_states(seed: np.uint64, domain: np.uint64, run0: int, n: int) -> np.ndarray:
    """Initial states of runs ``run0 .. run0+n-1`` (n x 4), for checking stream uniqueness."""
    key = stream_key(seed, domain)
    S = new_streams(n)
    for i in range(n):
        seed_stream(S, i, key, np.uint64(run0 + i))
    return S.T.copy()


LOGF_N = 1 << 17
#: log(k!) for k < LOGF_N (1 MiB): the exact BTRS test then costs table look-ups, not logs.
#: Passed to the kernel as an argument (a large global array would stop numba caching it).
LOGF = np.array([math.lgamma(k + 1.0) for k in range(LOGF_N)])


@numba.njit(cache=True, error_model="numpy", inline="always")
def _logfact_diff(n: int, m: float, k: float, logf: np.ndarray) -> float:
    """log(m! (n-m)!) - log(k! (n-k)!)."""
    if n < logf.shape[0]:
        return logf[int(m)] + logf[n - int(m)] - logf[int(k)] - logf[n - int(k)]
    # Stirling: log j! = (j + 1/2) log(j + 1) - (j + 1) + log(2 pi)/2 + tail(j)
    return ((m + 0.5) * math.log(m + 1.0) + (n - m + 0.5) * math.log(n - m + 1.0)
            - (k + 0.5) * math.log(k + 1.0) - (n - k + 0.5) * math.log(n - k + 1.0)
            + _stirling_tail(m) + _stirling_tail(n - m) - _stirling_tail(k) - _stirling_tail(n - k))


_NO_TABLE = np.zeros(0)  # log-factorials by Stirling's series only (single draws)


@numba.njit(cache=True, error_model="numpy")
def _btrs_continue(S: np.ndarray, b: int, n: int, p: float, logf: np.ndarray) -> int:
    """BTRS, transformed rejection with squeeze (Hoermann 1993), for n*p >= 10 and p <= 0.5.

    The exact acceptance test takes log-factorials from ``logf`` where it covers n, else from
    Stirling's series with tabulated corrections (error below 1e-10, as in TensorFlow and JAX).
    ``binomial_block`` calls it after a rejected first candidate.
    """
    q = 1.0 - p
    spq = math.sqrt(n * p * q)
    bb = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * bb + 0.01 * p
    c = n * p + 0.5
    vr = 0.92 - 4.2 / bb
    alpha = (2.83 + 5.1 / bb) * spq
    lpq = math.log(p / q)
    m = math.floor((n + 1) * p)
    while True:
        u = uniform(S, b) - 0.5
        v = uniform(S, b)
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + bb) * u + c)
        if us >= 0.07 and v <= vr:
            return int(k)
        if k < 0 or k > n:
            continue
        # accept when v * alpha / (a/us^2 + b) <= f(k) / f(m), f the binomial pmf
        lv = math.log(v * alpha / (a / (us * us) + bb))
        if lv <= _logfact_diff(n, m, k, logf) + (k - m) * lpq:
            return int(k)


@numba.njit(cache=True, error_model="numpy")
def binomial_block(S: np.ndarray, nb: int, n: np.ndarray, p: np.ndarray, lpq: np.ndarray,
                   out: np.ndarray, work: np.ndarray, rest: np.ndarray, logf: np.ndarray) -> None:
    """``out[b] ~ Binomial(n[b], p[b])`` for the runs of a block, exact (BTRS, inversion).

    ``lpq[b]`` must be log(p/(1-p)) (callers keep it, as p changes rarely). Pass 1 draws one
    BTRS candidate for every run with no data-dependent branch, so it vectorises; pass 2 takes
    the ~25 % of runs whose candidate the squeeze did not accept: one log and table look-ups
    settle most of them, and the rest (or runs needing inversion) loop one by one. Each run's
    draws come from its own stream in a fixed order, so results do not depend on the block.
    ``work`` is scratch of shape (3, block), ``rest`` an int64 scratch of length block.
    """
    for b in range(nb):
        nn = n[b]
        flip = p[b] > 0.5
        pp = 1.0 - p[b] if flip else p[b]
        spq = math.sqrt(nn * pp * (1.0 - pp))
        bb = 1.15 + 2.53 * spq
        a = -0.0873 + 0.0248 * bb + 0.01 * pp
        c = nn * pp + 0.5
        vr = 0.92 - 4.2 / bb
        alpha = (2.83 + 5.1 / bb) * spq
        u = uniform(S, b) - 0.5
        v = uniform(S, b)
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + bb) * u + c)
        regime = nn * pp >= 10.0
        good = regime & (us >= 0.07) & (v <= vr)
        out[b] = int(k) if good else -1
        work[0, b] = k if regime else -1.0
        work[1, b] = v * alpha / (a / (us * us) + bb)
        work[2, b] = math.floor((nn + 1) * pp)
    # the lanes pass 1 did not settle, listed without a branch, then finished one by one
    m_rest = 0
    for b in range(nb):
        rest[m_rest] = b
        m_rest += 1 if out[b] < 0 else 0
    for j in range(m_rest):
        b = rest[j]
        nn = n[b]
        flip = p[b] > 0.5
        pp = 1.0 - p[b] if flip else p[b]
        kc = work[0, b]
        if nn <= 0 or pp <= 0.0:
            k = 0
        elif nn * pp < 10.0:
            k = _binomial_inversion(S, b, nn, pp)
        elif kc < 0 or kc > nn:
            k = _btrs_continue(S, b, nn, pp, logf)
        else:
            m = work[2, b]
            lp = -lpq[b] if flip else lpq[b]
            if math.log(work[1, b]) <= _logfact_diff(nn, m, kc, logf) + (kc - m) * lp:
                k = int(kc)
            else:
                k = _btrs_continue(S, b, nn, pp, logf)
        out[b] = k
    for b in range(nb):  # results were drawn for min(p, 1 - p)
        out[b] = n[b] - out[b] if p[b] > 0.5 else out[b]


@numba.njit(cache=True, error_model="numpy", inline="always")
def logit(p: float) -> float:
    """log(p / (1 - p)), finite at the ends (where binomials need no log)."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return math.log(p / (1.0 - p))
