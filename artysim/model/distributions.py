"""Declarative input distributions.

Every number in a scenario may be a distribution ``{ dist = "...", ... }``. Per-run parameters are
drawn by inverse CDF (``ppf``) of uniforms through scipy.stats, so correlation (copulas) and
quasi-random designs can later act on the uniforms without touching any distribution. Quantities
drawn inside the kernel (per shipment) are handed to it as a code and a parameter row
(``kernel_spec``), sampled there by exact numba samplers.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import BeforeValidator, Field, model_validator

from artysim.core import layout
from artysim.core.layout import KERNEL_DISCRETE, KERNEL_PARAMS
from artysim.model.base import Strict


class _LazyStats:
    """``scipy.stats``, imported on first use: its import is most of a command's start-up (~1.5 s), and a
    command that only reads results files (summary, plot, compare, merge) never draws a distribution."""

    def __getattr__(self, name: str):
        import scipy.stats

        return getattr(scipy.stats, name)


st = _LazyStats()

#: the standard normal 95th percentile (one-sided): a lognormal's p95 is median * exp(Z_P95 * sigma)
Z_P95 = 1.6448536269514722


class _Dist(Strict):
    """Common interface."""

    def frozen(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Inverse CDF at uniforms ``u`` (float array)."""
        return np.asarray(self.frozen().ppf(u), dtype=np.float64)

    def support(self) -> tuple[float, float]:
        lo, hi = self.frozen().support()
        return float(lo), float(hi)

    def mean(self) -> float:
        return float(self.frozen().mean())

    @property
    def is_fixed(self) -> bool:
        return False

    def kernel_spec(self) -> tuple[int, list[float], list[float], list[float]]:
        """(code, params, discrete values, discrete cumulative weights) for ``core.rng.sample_coded``."""
        raise NotImplementedError  # pragma: no cover


class Fixed(_Dist):
    """A constant [unit of the field]."""

    dist: Literal["fixed"] = "fixed"
    value: float

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return np.full(np.shape(u), self.value, dtype=np.float64)

    def support(self) -> tuple[float, float]:
        return self.value, self.value

    def mean(self) -> float:
        return self.value

    @property
    def is_fixed(self) -> bool:
        return True

    def kernel_spec(self):
        return layout.K_FIXED, [self.value], [], []


class Uniform(_Dist):
    """Uniform on [low, high]."""

    dist: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _order(self):
        if not self.low < self.high:
            raise ValueError(f"low must be below high (found low={self.low}, high={self.high})")
        return self

    def frozen(self):
        return st.uniform(loc=self.low, scale=self.high - self.low)

    def kernel_spec(self):
        return layout.K_UNIFORM, [self.low, self.high], [], []


class _MinModeMax(_Dist):
    """Shared by the three-point distributions."""

    min: float
    mode: float
    max: float

    @model_validator(mode="after")
    def _order(self):
        if not (self.min <= self.mode <= self.max and self.min < self.max):
            raise ValueError(
                f"need min <= mode <= max and min < max (found {self.min}, {self.mode}, {self.max})"
            )
        return self


class Triangular(_MinModeMax):
    """Triangular with min <= mode <= max (min < max)."""

    dist: Literal["triangular"]

    def frozen(self):
        w = self.max - self.min
        return st.triang(c=(self.mode - self.min) / w, loc=self.min, scale=w)

    def kernel_spec(self):
        return layout.K_TRIANGULAR, [self.min, self.mode, self.max], [], []


class Pert(_MinModeMax):
    """Beta-PERT on [min, max] with the given mode and shape ``lambda`` (default 4)."""

    dist: Literal["pert"]
    lambda_: float = Field(4.0, alias="lambda", gt=0, le=1e6)

    def _ab(self) -> tuple[float, float]:
        w = self.max - self.min
        return (1 + self.lambda_ * (self.mode - self.min) / w,
                1 + self.lambda_ * (self.max - self.mode) / w)

    def frozen(self):
        a, b = self._ab()
        return st.beta(a, b, loc=self.min, scale=self.max - self.min)

    def kernel_spec(self):
        a, b = self._ab()
        return layout.K_SCALED_BETA, [self.min, self.max, a, b], [], []


class Normal(_Dist):
    """Normal(mean, sd), optionally truncated to [low, high]."""

    dist: Literal["normal"]
    mean_: float = Field(alias="mean")
    sd: float = Field(gt=0)
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _order(self):
        lo = -math.inf if self.low is None else self.low
        hi = math.inf if self.high is None else self.high
        if not lo < hi:
            raise ValueError(f"low must be below high (found low={lo}, high={hi})")
        if st.norm.cdf(hi, self.mean_, self.sd) - st.norm.cdf(lo, self.mean_, self.sd) < 1e-9:
            raise ValueError("the truncation interval holds (almost) no probability")
        return self

    def _bounds(self) -> tuple[float, float]:
        lo = -math.inf if self.low is None else self.low
        hi = math.inf if self.high is None else self.high
        return lo, hi

    def support(self) -> tuple[float, float]:
        # scipy's truncnorm support is computed through standardised bounds and may miss `low` by a
        # rounding error (-1e-78 for low = 0), which the scenario's range checks would refuse
        lo, hi = super().support()
        blo, bhi = self._bounds()
        return max(lo, blo), min(hi, bhi)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        lo, hi = self._bounds()
        return np.clip(super().ppf(u), lo, hi)

    def frozen(self):
        lo, hi = self._bounds()
        if math.isinf(lo) and math.isinf(hi):
            return st.norm(self.mean_, self.sd)
        return st.truncnorm((lo - self.mean_) / self.sd, (hi - self.mean_) / self.sd,
                            loc=self.mean_, scale=self.sd)

    def kernel_spec(self):
        lo, hi = self._bounds()
        return layout.K_NORMAL, [self.mean_, self.sd, float(st.norm.cdf((lo - self.mean_) / self.sd)),
                              float(st.norm.cdf((hi - self.mean_) / self.sd))], [], []


class Lognormal(_Dist):
    """Lognormal by its median and either sigma (of the log) or the 95th percentile."""

    dist: Literal["lognormal"]
    median: float = Field(gt=0)
    sigma: float | None = Field(None, gt=0)
    p95: float | None = None

    @model_validator(mode="after")
    def _one_spread(self):
        if (self.sigma is None) == (self.p95 is None):
            raise ValueError("give exactly one of sigma or p95")
        if self.p95 is not None and not self.p95 > self.median:
            raise ValueError(f"p95 must exceed the median (found p95={self.p95}, median={self.median})")
        return self

    @property
    def s(self) -> float:
        return self.sigma if self.sigma is not None else math.log(self.p95 / self.median) / Z_P95

    def frozen(self):
        return st.lognorm(s=self.s, scale=self.median)

    def kernel_spec(self):
        return layout.K_LOGNORMAL, [math.log(self.median), self.s], [], []


class Beta(_Dist):
    """Beta on [0, 1] by mean and concentration (alpha + beta), or by alpha and beta."""

    dist: Literal["beta"]
    mean_: float | None = Field(None, alias="mean")
    concentration: float | None = Field(None, gt=0)
    alpha: float | None = Field(None, gt=0)
    beta: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_form(self):
        by_mean = self.mean_ is not None or self.concentration is not None
        by_ab = self.alpha is not None or self.beta is not None
        if by_mean == by_ab:
            raise ValueError("give either mean and concentration, or alpha and beta")
        if by_mean:
            if self.mean_ is None or self.concentration is None:
                raise ValueError("give both mean and concentration")
            if not 0 < self.mean_ < 1:
                raise ValueError(f"mean must be in (0, 1) (found {self.mean_})")
        elif self.alpha is None or self.beta is None:
            raise ValueError("give both alpha and beta")
        return self

    def ab(self) -> tuple[float, float]:
        if self.alpha is not None:
            return self.alpha, self.beta
        return self.mean_ * self.concentration, (1 - self.mean_) * self.concentration

    def frozen(self):
        return st.beta(*self.ab())

    def kernel_spec(self):
        a, b = self.ab()
        return layout.K_SCALED_BETA, [0.0, 1.0, a, b], [], []


class Gamma(_Dist):
    """Gamma by mean and standard deviation."""

    dist: Literal["gamma"]
    mean_: float = Field(alias="mean", gt=0)
    sd: float = Field(gt=0)

    @model_validator(mode="after")
    def _shape(self):
        # shape (mean/sd)^2 and scale sd^2/mean must be finite floats; beyond a shape of 1e12 the
        # distribution is a point to double precision: use a fixed value or a normal instead
        ratio = self.mean_ / self.sd
        if not (1e-6 <= ratio <= 1e6) or not math.isfinite(self.sd * (self.sd / self.mean_)):
            raise ValueError(f"mean/sd = {ratio:.3g} is outside [1e-6, 1e6] (a gamma that narrow or that wide "
                             "cannot be computed; use a fixed value, a normal, or a lognormal)")
        return self

    def frozen(self):
        shape = (self.mean_ / self.sd) ** 2
        return st.gamma(shape, scale=self.sd**2 / self.mean_)

    def kernel_spec(self):
        return layout.K_GAMMA, [(self.mean_ / self.sd) ** 2, self.sd**2 / self.mean_], [], []


class Discrete(_Dist):
    """A finite set of values with weights (default equal)."""

    dist: Literal["discrete"]
    values: list[float] = Field(min_length=1, max_length=64)
    weights: list[float] | None = None

    @model_validator(mode="after")
    def _weights(self):
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(
                    f"weights must match values in length ({len(self.weights)} vs {len(self.values)})"
                )
            if any(not (w >= 0 and math.isfinite(w)) for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError("weights must be finite, non-negative and not all zero")
        return self

    def _cum(self) -> np.ndarray:
        w = np.ones(len(self.values)) if self.weights is None else np.asarray(self.weights, float)
        w = w / w.max()  # first scaled to at most 1: [1e308, 1e308] sums to inf (and drew only the last value)
        c = np.cumsum(w / w.sum())
        c[-1] = 1.0
        return c

    def ppf(self, u: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self._cum(), u, side="right")
        return np.asarray(self.values, dtype=np.float64)[np.minimum(idx, len(self.values) - 1)]

    def support(self) -> tuple[float, float]:
        return min(self.values), max(self.values)

    def mean(self) -> float:
        c = self._cum()
        p = np.diff(np.concatenate([[0.0], c]))
        return float(np.dot(p, self.values))

    @property
    def is_fixed(self) -> bool:
        return len(set(self.values)) == 1

    def kernel_spec(self):
        return layout.K_DISCRETE, [float(len(self.values))], list(self.values), list(self._cum())


DIST_NAMES = ("fixed", "uniform", "triangular", "pert", "normal", "lognormal", "beta", "gamma",
              "discrete")


def _number_to_fixed(v):
    """Plain numbers are fixed distributions; booleans are not numbers here."""
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return {"dist": "fixed", "value": v}
    return v


AnyDist = Annotated[
    Fixed | Uniform | Triangular | Pert | Normal | Lognormal | Beta | Gamma | Discrete,
    Field(discriminator="dist"),
]
#: A scenario number: a plain number or a distribution table.
Quantity = Annotated[AnyDist, BeforeValidator(_number_to_fixed)]

def kernel_arrays(d: _Dist) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Padded arrays of a distribution for the kernel."""
    code, par, vals, cum = d.kernel_spec()
    p = np.zeros(KERNEL_PARAMS)
    p[: len(par)] = par
    v = np.zeros(KERNEL_DISCRETE)
    v[: len(vals)] = vals
    c = np.ones(KERNEL_DISCRETE)
    c[: len(cum)] = cum
    return code, p, v, c
