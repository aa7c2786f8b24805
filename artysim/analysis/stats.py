"""Statistics helpers shared by every reading command: one z value, one Wilson interval, one set of
Monte Carlo estimators with standard errors, one number formatter, one JSON conversion."""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054  # two-sided 95 %: the half-width of a 95 % interval in standard errors


def wilson(k, n: int, z: float = Z95):
    """Wilson score interval of a binomial proportion k / n (scalars, or arrays of k), exact at the ends
    (a bound of 0 or 1, not 1e-19 from rounding); NaN when n is 0."""
    if n == 0:
        return (math.nan, math.nan)
    scalar = np.ndim(k) == 0
    k = np.asarray(k, dtype=np.float64)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    lo = np.where(k <= 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    hi = np.where(k >= n, 1.0, np.clip(centre + half, 0.0, 1.0))
    return (float(lo), float(hi)) if scalar else (lo, hi)


def ratio_of_means(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """sum(num)/sum(den) and its delta-method standard error over runs."""
    n = len(num)
    mx, my = float(np.mean(num)), float(np.mean(den))
    if my == 0 or n < 2:
        return (math.nan, math.nan)
    r = mx / my
    resid = num - r * den
    se = float(np.std(resid, ddof=1)) / (my * math.sqrt(n))
    return r, se


def censored_percentiles(days: np.ndarray, horizon: int, qs=(0.05, 0.25, 0.5, 0.75, 0.95)) -> dict:
    """Percentiles of the first shortage day over *all* runs, never-short runs counted as beyond
    the horizon: a percentile is a day only if at least that share of runs ran short."""
    n = len(days)
    short = np.sort(days[~np.isnan(days)])
    out = {}
    for q in qs:
        k = math.ceil(q * n)  # order statistic (1-based) of the q-quantile over all runs
        out[q] = float(short[k - 1]) if 1 <= k <= len(short) else None
    return out


def censored_percentile_ci(days: np.ndarray, qs=(0.05, 0.25, 0.5, 0.75, 0.95), level: float = 0.95) -> dict:
    """Distribution-free confidence interval of each percentile from order statistics over all runs
    (ranks from the Binomial(n, q) law); a bound past the last short run is None (beyond the horizon)."""
    from scipy.stats import binom

    n = len(days)
    short = np.sort(days[~np.isnan(days)])
    a = (1 - level) / 2
    out = {}
    for q in qs:
        if n == 0:
            out[q] = (None, None)
            continue
        lo = max(1, int(binom.ppf(a, n, q)))
        hi = min(n, int(binom.ppf(1 - a, n, q)) + 1)
        out[q] = tuple(float(short[k - 1]) if k <= len(short) else None for k in (lo, hi))
    return out


def mean_se(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return float(np.mean(x)) if len(x) else math.nan, math.nan
    return float(np.mean(x)), float(np.std(x, ddof=1) / math.sqrt(len(x)))


class Moments:
    """Running means and co-moments of columns over blocks of runs (Chan et al.'s pairwise update),
    so summaries of 10^7 runs need one block in memory, and stay numerically stable."""

    def __init__(self, k: int):
        self.n = 0
        self.mean = np.zeros(k)
        self.C = np.zeros((k, k))

    def add(self, X: np.ndarray) -> None:
        nb = X.shape[0]
        if nb == 0:
            return
        mb = X.mean(axis=0)
        Xc = X - mb
        Cb = Xc.T @ Xc
        n = self.n + nb
        delta = mb - self.mean
        self.C += Cb + np.outer(delta, delta) * (self.n * nb / n)
        self.mean += delta * (nb / n)
        self.n = n

    def mean_se(self, j: int) -> tuple[float, float]:
        if self.n < 2:
            return (float(self.mean[j]) if self.n else math.nan, math.nan)
        return float(self.mean[j]), math.sqrt(max(self.C[j, j], 0.0) / (self.n - 1) / self.n)

    def ratio(self, j: int, k: int) -> tuple[float, float]:
        """mean_j / mean_k and its delta-method standard error."""
        my = self.mean[k]
        if self.n < 2 or my == 0:
            return (math.nan, math.nan)
        r = self.mean[j] / my
        var = (self.C[j, j] - 2 * r * self.C[j, k] + r * r * self.C[k, k]) / (self.n - 1)
        return float(r), math.sqrt(max(var, 0.0) / self.n) / abs(my)




def fmt_value(x, se=None, digits: int = 0, sign: bool = False) -> str:
    """``1,234 ± 56``: a value with its standard error, thousands separated; ``n/a`` for a missing value."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    s = f"{x:+,.{digits}f}" if sign else f"{x:,.{digits}f}"
    if se is not None and not (isinstance(se, float) and math.isnan(se)):
        s += f" ± {se:,.{digits}f}"
    return s


def jsonable(x):
    """Plain JSON: non-finite floats -> None (JSON has no NaN), tuples and arrays -> lists, numpy scalars
    -> Python numbers."""
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def delivered(ds) -> np.ndarray:
    """Rounds each source delivered in each run (runs x sources): its day-0 stock plus the rounds that
    reached the depots, accepted or rejected on receipt, each counted once (rounds back from rework
    are in ``received`` already, so they are taken out). The one denominator of "effective rounds per
    delivered shell" (compare, summary, README). ``ds``: a results dataset or a dict of per-run arrays."""
    names = ds.variables if hasattr(ds, "variables") else ds

    def get(k):
        return np.asarray(getattr(ds[k], "values", ds[k]), dtype=np.float64)

    out = get("initial_stock") + get("received")
    for name, sign in (("rejected", 1.0), ("reworked", -1.0)):
        if name in names:  # schema 1 files have neither
            out = out + sign * get(name)
    return out
