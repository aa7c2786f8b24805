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


# ----------------------------------------------------------------------------- weighted runs
# A calibrated file weights each run by the likelihood of the evidence. Estimates are self-normalised
# (sum w x / sum w) and their standard errors use the effective sample size ESS = (sum w)^2 / sum w^2
# in place of n: se = sd_w / sqrt(ESS), sd_w the weighted standard deviation. With weights 0/1 these are
# the plain estimates over the accepted runs (the SE with ddof 0 instead of 1).


def effective_sample_size(w: np.ndarray) -> float:
    """(sum w)^2 / sum w^2; 0 when every weight is 0."""
    w = np.asarray(w, dtype=np.float64)
    s = float(w.sum())
    return s * s / float(np.dot(w, w)) if s > 0 else 0.0


def weighted_mean_se(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Self-normalised mean and its SE from the effective sample size (NaN without weight)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    W = float(w.sum())
    if W <= 0:
        return math.nan, math.nan
    keep = w > 0  # a run of weight 0 may hold NaN (a share of no fire): it counts for nothing
    x, w = x[keep], w[keep]
    m = float(np.dot(w, x) / W)
    n = effective_sample_size(w)
    if n <= 1:
        return m, math.nan
    var = float(np.dot(w, (x - m) ** 2) / W)
    return m, math.sqrt(var / n)


def weighted_ratio(num: np.ndarray, den: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """sum w num / sum w den and its delta-method SE from the effective sample size."""
    w = np.asarray(w, dtype=np.float64)
    md = weighted_mean_se(den, w)[0]
    if not md or math.isnan(md):
        return math.nan, math.nan
    r = weighted_mean_se(num, w)[0] / md
    _, se = weighted_mean_se(np.asarray(num, float) - r * np.asarray(den, float), w)
    return r, se / abs(md)


def weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    """The smallest x whose weighted share of runs at or below it reaches q (numpy's inverted_cdf for
    equal weights: the order statistic ceil(q n)); NaN without weight. NaN values of x sort last."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    keep = w > 0
    x, w = x[keep], w[keep]
    if len(x) == 0:
        return math.nan
    order = np.argsort(np.where(np.isnan(x), np.inf, x), kind="stable")
    cw = np.cumsum(w[order])
    k = int(np.searchsorted(cw, q * cw[-1] * (1 - 1e-12), side="left"))
    return float(np.where(np.isnan(x), np.inf, x)[order][min(k, len(x) - 1)])


def weighted_quantile_ci(x: np.ndarray, w: np.ndarray, q: float, level: float = 0.95) -> tuple[float, float]:
    """An approximate ``level`` interval of the weighted q-quantile: the quantiles at q -/+ z sqrt(q (1 - q)
    / ESS) (the order-statistic interval with the effective sample size for n)."""
    n = effective_sample_size(w)
    if n <= 0:
        return math.nan, math.nan
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2))
    h = z * math.sqrt(q * (1 - q) / n)
    return weighted_quantile(x, w, max(q - h, 1e-12)), weighted_quantile(x, w, min(q + h, 1.0))


class Moments:
    """Running means and co-moments of columns over blocks of runs (Chan et al.'s pairwise update),
    so summaries of 10^7 runs need one block in memory, and stay numerically stable. With weights
    (a calibrated file: ``add(X, w)``) the means are weighted and the standard errors use the effective
    sample size (see ``weighted_mean_se``)."""

    def __init__(self, k: int):
        self.n = 0
        self.mean = np.zeros(k)
        self.C = np.zeros((k, k))
        self.weighted = False
        self.W = 0.0  # sum of weights
        self.W2 = 0.0  # sum of squared weights

    def add(self, X: np.ndarray, w: np.ndarray | None = None) -> None:
        nb = X.shape[0]
        if nb == 0:
            return
        if w is not None:
            self._add_weighted(X, np.asarray(w, dtype=np.float64))
            return
        mb = X.mean(axis=0)
        Xc = X - mb
        Cb = Xc.T @ Xc
        n = self.n + nb
        delta = mb - self.mean
        self.C += Cb + np.outer(delta, delta) * (self.n * nb / n)
        self.mean += delta * (nb / n)
        self.n = n

    def _add_weighted(self, X: np.ndarray, w: np.ndarray) -> None:
        self.weighted = True
        self.n += X.shape[0]
        keep = w > 0  # a run of weight 0 counts for nothing (its values may be NaN)
        X, w = X[keep], w[keep]
        Wb = float(w.sum())
        if Wb <= 0:
            return
        mb = (w @ X) / Wb
        Xc = X - mb
        Cb = (Xc * w[:, None]).T @ Xc
        W = self.W + Wb
        delta = mb - self.mean
        self.C += Cb + np.outer(delta, delta) * (self.W * Wb / W)
        self.mean += delta * (Wb / W)
        self.W = W
        self.W2 += float(w @ w)

    @property
    def ess(self) -> float:
        """The effective sample size: n without weights."""
        if not self.weighted:
            return float(self.n)
        return self.W * self.W / self.W2 if self.W2 > 0 else 0.0

    def mean_se(self, j: int) -> tuple[float, float]:
        if self.weighted:
            if self.W <= 0:
                return (math.nan, math.nan)
            n = self.ess
            return float(self.mean[j]), (math.sqrt(max(self.C[j, j], 0.0) / self.W / n) if n > 1 else math.nan)
        if self.n < 2:
            return (float(self.mean[j]) if self.n else math.nan, math.nan)
        return float(self.mean[j]), math.sqrt(max(self.C[j, j], 0.0) / (self.n - 1) / self.n)

    def ratio(self, j: int, k: int) -> tuple[float, float]:
        """mean_j / mean_k and its delta-method standard error."""
        my = self.mean[k]
        if self.weighted:
            n = self.ess
            if self.W <= 0 or my == 0 or n <= 1:
                return (math.nan, math.nan)
            r = self.mean[j] / my
            var = (self.C[j, j] - 2 * r * self.C[j, k] + r * r * self.C[k, k]) / self.W
            return float(r), math.sqrt(max(var, 0.0) / n) / abs(my)
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
