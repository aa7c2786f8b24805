"""The only caller of the kernel: runs batches of runs on all threads and accumulates the mergeable
per-day statistics. It takes a built model (``artysim.model.build.Model``) by duck typing: the numeric
core imports nothing of artysim above it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numba
import numpy as np

from artysim.core import bins, contract, kernel, layout


@dataclass
class Daily:
    """Mergeable per-day statistics: integer counts and sums only, so they add exactly."""

    hist: np.ndarray  # time x N_DAILY x bins
    sums: np.ndarray  # time x N_DAILY
    n_short: np.ndarray  # time
    n_first_short: np.ndarray  # time: runs whose first shortage day is that day
    src_sums: np.ndarray  # time x 2 x sources: rounds fired and effective by source, summed over runs
    sample_stock: np.ndarray  # sample x time
    sample_fired: np.ndarray  # sample x time

    @classmethod
    def empty(cls, T: int, n_sample: int, n_sources: int) -> Daily:
        return cls(
            hist=np.zeros((T, layout.N_DAILY, bins.NBINS), dtype=np.int64),
            sums=np.zeros((T, layout.N_DAILY), dtype=np.int64),
            n_short=np.zeros(T, dtype=np.int64),
            n_first_short=np.zeros(T, dtype=np.int64),
            src_sums=np.zeros((T, 2, n_sources), dtype=np.int64),
            sample_stock=np.full((n_sample, T), -1, dtype=np.int64),
            sample_fired=np.full((n_sample, T), -1, dtype=np.int64),
        )


@dataclass
class Batch:
    """Per-run outputs of runs ``start .. stop - 1``."""

    start: int
    stop: int
    params: np.ndarray
    totals: np.ndarray
    per_source: np.ndarray
    per_regime: np.ndarray
    observed: np.ndarray  # runs x observations x 2: window sums (kernel.observed; model.observed finishes them)


def resolve_threads(threads: int | None) -> int:
    """Threads to use: the request, capped by what numba has (default: all)."""
    n = numba.config.NUMBA_NUM_THREADS if threads is None else int(threads)
    return max(1, min(n, numba.config.NUMBA_NUM_THREADS))


def run_batches(
    model, seed: int, run_start: int, run_stop: int, daily: Daily,
    threads: int | None = None, batch_size: int = 1 << 17,
) -> Iterator[Batch]:
    """Simulate runs [run_start, run_stop) batch by batch, adding per-day statistics to ``daily``.

    Yields each batch's per-run outputs; memory is bounded by the batch, not by the run count.
    """
    nthreads = resolve_threads(threads)
    numba.set_num_threads(nthreads)
    T = model.horizon
    NS = len(model.kinds)
    n_sample = min(model.n_sample, run_stop)
    keys = model.stream_keys(seed)
    # more chunks than threads, handed out one at a time: a thread slowed by other work (the file
    # writer, another process) does not hold the others up
    chunks = 8 * nthreads
    numba.set_parallel_chunksize(1)
    hist = np.zeros((nthreads, T, layout.N_DAILY, bins.NBINS), dtype=np.int32)
    sums = np.zeros((nthreads, T, layout.N_DAILY), dtype=np.int64)
    n_short = np.zeros((nthreads, T), dtype=np.int64)
    src_sums = np.zeros((nthreads, T, 2, NS), dtype=np.int64)
    samp_s = np.full((max(n_sample, 1), T), -1, dtype=np.int64)
    samp_f = np.full((max(n_sample, 1), T), -1, dtype=np.int64)
    m = model.kernel
    acc = contract.DailyAccumulators(hist=hist, sums=sums, src_sums=src_sums, n_short=n_short,
                                     sample_stock=samp_s, sample_fired=samp_f)
    contract.check(m, daily=acc)
    since_flush = 0
    for r0 in range(run_start, run_stop, batch_size):
        r1 = min(r0 + batch_size, run_stop)
        n = r1 - r0
        params = model.sample(seed, r0, n)
        totals = np.empty((n, layout.N_TOTALS), dtype=np.int64)
        per_source = np.empty((n, NS, layout.N_PER_SOURCE), dtype=np.int64)
        per_regime = np.empty((n, model.n_regimes, layout.N_PER_REGIME), dtype=np.int64)
        inp = contract.BatchInputs(run0=int(r0), keys=keys, params=params, n_sample=int(n_sample))
        observed = np.empty((n, m.obs.shape[0], 2), dtype=np.int64)
        out = contract.RunOutputs(totals=totals, per_source=per_source, per_regime=per_regime, observed=observed)
        contract.check(m, inp, out)
        kernel.simulate(m, inp, out, acc, chunks)
        fs = totals[:, layout.O_FIRST_SHORT]
        daily.n_first_short += np.bincount(fs[fs >= 0], minlength=T)[:T]
        since_flush += n  # runs counted by one thread at most: int32 counts stay far from overflow
        if since_flush > 2**30:  # keep int32 chunk counts far from overflow
            daily.hist += hist.sum(axis=0, dtype=np.int64)
            hist[:] = 0
            since_flush = 0
        yield Batch(r0, r1, params, totals, per_source, per_regime, observed)
    daily.hist += hist.sum(axis=0, dtype=np.int64)
    daily.sums += sums.sum(axis=0)
    daily.n_short += n_short.sum(axis=0)
    daily.src_sums += src_sums.sum(axis=0)
    ns = min(n_sample, daily.sample_stock.shape[0])
    rows = slice(run_start, min(run_stop, ns))
    daily.sample_stock[rows] = samp_s[rows]
    daily.sample_fired[rows] = samp_f[rows]
