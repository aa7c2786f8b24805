"""Fixed log-linear bins for per-day distributions over runs.

Per-day quantiles must merge exactly across shards, so the core never keeps a runs x days array:
it counts each day's values into fixed bins that depend on nothing but this module. Values 0..127
get a bin each (exact); above that every doubling is split into 64 equal bins, so a bin is at most
1/64 (1.6 %) of its lower edge wide. Bin edges are integers. Counts add exactly, in any order.
"""

from __future__ import annotations

import numpy as np

EXACT = 128
SUB = 64
OCTAVES = 37  # up to 2**44 (1.8e13 rounds); larger values fall in the last bin
NBINS = EXACT + OCTAVES * SUB


def bin_edges() -> tuple[np.ndarray, np.ndarray]:
    """Lower (inclusive) and upper (exclusive) integer edges of every bin."""
    lower = np.empty(NBINS, dtype=np.int64)
    upper = np.empty(NBINS, dtype=np.int64)
    lower[:EXACT] = np.arange(EXACT)
    upper[:EXACT] = np.arange(1, EXACT + 1)
    k = np.arange(NBINS - EXACT)
    octave, sub = np.divmod(k, SUB)
    base = 2 ** (octave + 7)
    lower[EXACT:] = base + sub * (base // SUB)
    upper[EXACT:] = base + (sub + 1) * (base // SUB)
    return lower, upper


def quantiles_from_counts(counts: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """Quantiles of integer data summarised by bin counts (last axis = bins).

    Inside a bin the integers ``lower .. upper-1`` are taken as evenly filled, so single-value
    bins give exact answers and wide bins are off by less than their width. Returns NaN where a
    row holds no data.
    """
    lower, upper = bin_edges()
    counts = np.asarray(counts, dtype=np.int64)
    flat = counts.reshape(-1, counts.shape[-1])
    cum = np.cumsum(flat, axis=1)
    total = cum[:, -1]
    out = np.full((flat.shape[0], len(qs)), np.nan)
    for j, q in enumerate(qs):
        target = q * total
        # first bin whose cumulative count reaches the target (at least one value in it)
        # (searchsorted side="left" per row, as a count of the bins still below the target)
        idx = np.sum(cum < np.maximum(target, 1e-12)[:, None], axis=1)
        idx = np.minimum(idx, flat.shape[1] - 1)
        rows = np.arange(flat.shape[0])
        before = np.where(idx > 0, cum[rows, np.maximum(idx - 1, 0)], 0)
        inbin = flat[rows, idx]
        frac = np.where(inbin > 0, (target - before) / np.maximum(inbin, 1), 0.0)
        val = lower[idx] + np.clip(frac, 0.0, 1.0) * (upper[idx] - lower[idx] - 1)
        out[:, j] = np.where(total > 0, val, np.nan)
    return out.reshape(counts.shape[:-1] + (len(qs),))
