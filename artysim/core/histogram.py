"""The kernel's side of the per-day histograms: the bin of a value, compiled (geometry in ``bins``)."""

from __future__ import annotations

import numba
import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros

from artysim.core import cache  # noqa: F401  (sets the cache folder before any @njit)
from artysim.core.bins import EXACT, NBINS, SUB


@numba.njit(cache=True, error_model="numpy", inline="always")
def bin_index(v: int) -> int:
    """Bin of a non-negative integer value (branch-free, so loops over runs vectorise)."""
    w = max(v, 0)
    e = 63 - int(leading_zeros(np.uint64(w | 1)))  # floor(log2 w), 0 for w <= 1
    big = EXACT + (e - 7) * SUB + int((w >> max(e - 6, 0)) & (SUB - 1))
    return w if w < EXACT else min(big, NBINS - 1)
