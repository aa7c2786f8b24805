"""The only caller of the kernel: runs batches of runs on all threads and accumulates the mergeable
per-day statistics. It takes a built model (``artysim.model.build.Model``) by duck typing: the numeric
core imports nothing of artysim above it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np

from artysim.core import bins, contract, kernel, layout, state


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
    src_hist: np.ndarray  # time x sources x bins: end-of-day stock by source
    src_day: np.ndarray  # time x 2 x sources: end-of-day stock and arrivals by source, summed over runs
    doh_hist: np.ndarray  # time x bins: days of fire on hand, in hundredths of a day

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
            src_hist=np.zeros((T, n_sources, bins.NBINS), dtype=np.int64),
            src_day=np.zeros((T, 2, n_sources), dtype=np.int64),
            doh_hist=np.zeros((T, bins.NBINS), dtype=np.int64),
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
    per_component: np.ndarray  # runs x max(component lines, 1) x N_PER_COMPONENT


def resolve_threads(threads: int | None) -> int:
    """Threads to use: the request, capped by what numba has (default: all)."""
    n = numba.config.NUMBA_NUM_THREADS if threads is None else int(threads)
    return max(1, min(n, numba.config.NUMBA_NUM_THREADS))


def _flush(daily: Daily, hist: np.ndarray, src_hist: np.ndarray, doh_hist: np.ndarray) -> None:
    """Add the per-thread int32 histograms into the int64 totals and clear them."""
    for acc, part in ((daily.hist, hist), (daily.src_hist, src_hist), (daily.doh_hist, doh_hist)):
        acc += part.sum(axis=0, dtype=np.int64)
        part[:] = 0


def run_batches(
    model, seed: int, run_start: int, run_stop: int, daily: Daily,
    threads: int | None = None, batch_size: int = 1 << 17,
) -> Iterator[Batch]:
    """Simulate runs [run_start, run_stop) batch by batch, adding per-day statistics to ``daily``.

    Yields each batch's per-run outputs; memory is bounded by the batch, not by the run count.
    """
    nthreads = resolve_threads(threads)
    T = model.horizon
    NS = len(model.kinds)
    n_sample = min(model.n_sample, run_stop)
    keys = model.stream_keys(seed)
    # more chunks than threads, handed out one at a time: a thread slowed by other work (the file
    # writer, another process) does not hold the others up
    chunks = 8 * nthreads
    hist = np.zeros((nthreads, T, layout.N_DAILY, bins.NBINS), dtype=np.int32)
    sums = np.zeros((nthreads, T, layout.N_DAILY), dtype=np.int64)
    n_short = np.zeros((nthreads, T), dtype=np.int64)
    src_sums = np.zeros((nthreads, T, 2, NS), dtype=np.int64)
    src_hist = np.zeros((nthreads, T, NS, bins.NBINS), dtype=np.int32)
    src_day = np.zeros((nthreads, T, 2, NS), dtype=np.int64)
    doh_hist = np.zeros((nthreads, T, bins.NBINS), dtype=np.int32)
    samp_s = np.full((max(n_sample, 1), T), -1, dtype=np.int64)
    samp_f = np.full((max(n_sample, 1), T), -1, dtype=np.int64)
    m = model.kernel
    acc = contract.DailyAccumulators(hist=hist, sums=sums, src_sums=src_sums, n_short=n_short,
                                     sample_stock=samp_s, sample_fired=samp_f, src_hist=src_hist, src_day=src_day,
                                     doh_hist=doh_hist)
    contract.check(m, daily=acc)
    pool = ThreadPoolExecutor(nthreads, thread_name_prefix="artysim-kernel") if nthreads > 1 else None
    try:
        yield from _batches(model, seed, run_start, run_stop, daily, batch_size, m, keys, acc, n_sample,
                            pool, nthreads, chunks)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    _flush(daily, hist, src_hist, doh_hist)
    daily.src_day += src_day.sum(axis=0)
    daily.sums += sums.sum(axis=0)
    daily.n_short += n_short.sum(axis=0)
    daily.src_sums += src_sums.sum(axis=0)
    ns = min(n_sample, daily.sample_stock.shape[0])
    rows = slice(run_start, min(run_stop, ns))
    daily.sample_stock[rows] = samp_s[rows]
    daily.sample_fired[rows] = samp_f[rows]


def _simulate(m, inp, out, acc, states: list, pool: ThreadPoolExecutor | None, nthreads: int,
              chunks: int) -> None:
    """Run one batch on ``nthreads`` threads: each takes the next of ``chunks`` contiguous chunks when it
    is free, so a thread slowed by other work does not hold the others up; thread ``tid`` adds into
    accumulator row ``tid`` and works in block state ``states[tid]``. The kernel holds no GIL, so plain
    Python threads run it in parallel (a numba ``prange`` did the same and cost a quarter of the cold
    compile)."""
    R = inp.params.shape[0]
    bounds = iter([((c * R) // chunks, ((c + 1) * R) // chunks) for c in range(chunks)])
    if pool is None:
        for lo, hi in bounds:
            kernel.simulate_chunk(m, inp, out, acc, states[0], 0, lo, hi)
        return
    lock = threading.Lock()
    stop = threading.Event()  # set when the caller is interrupted: no thread starts another chunk

    def worker(tid: int) -> None:
        while not stop.is_set():
            with lock:
                nxt = next(bounds, None)
            if nxt is None:
                return
            kernel.simulate_chunk(m, inp, out, acc, states[tid], tid, nxt[0], nxt[1])

    futures = [pool.submit(worker, tid) for tid in range(nthreads)]
    try:
        for f in futures:
            f.result()
    except BaseException:
        stop.set()
        raise


def _batches(model, seed, run_start, run_stop, daily, batch_size, m, keys, acc, n_sample, pool, nthreads,
             chunks) -> Iterator[Batch]:
    """The batch loop of ``run_batches``: sample, simulate, count first shortages, yield. Batch k + 1's
    parameters are sampled on a thread of their own while the kernel runs batch k (numpy and scipy, much
    of it outside the GIL), so the cores do not wait for the sampler between batches; a batch's draws
    depend on its run indices only, so results are the same."""
    states = [state.allocate(m) for _ in range(nthreads)]  # per thread, reused by every chunk it runs
    T = model.horizon
    NS = len(model.kinds)
    hist, src_hist, doh_hist = acc.hist, acc.src_hist, acc.doh_hist
    since_flush = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="artysim-sampler") as sampler:
        ahead = sampler.submit(model.sample, seed, run_start, min(batch_size, run_stop - run_start))
        for r0 in range(run_start, run_stop, batch_size):
            r1 = min(r0 + batch_size, run_stop)
            n = r1 - r0
            params = ahead.result()
            if r1 < run_stop:
                ahead = sampler.submit(model.sample, seed, r1, min(batch_size, run_stop - r1))
            totals = np.empty((n, layout.N_TOTALS), dtype=np.int64)
            per_source = np.empty((n, NS, layout.N_PER_SOURCE), dtype=np.int64)
            per_regime = np.empty((n, model.n_regimes, layout.N_PER_REGIME), dtype=np.int64)
            inp = contract.BatchInputs(run0=int(r0), keys=keys, params=params, n_sample=int(n_sample))
            observed = np.empty((n, m.obs.shape[0], 2), dtype=np.int64)
            per_component = np.zeros((n, max(m.comp_src.shape[0], 1), layout.N_PER_COMPONENT), dtype=np.int64)
            out = contract.RunOutputs(totals=totals, per_source=per_source, per_regime=per_regime,
                                      observed=observed, per_component=per_component)
            contract.check(m, inp, out)
            _simulate(m, inp, out, acc, states, pool, nthreads, chunks)
            fs = totals[:, layout.O_FIRST_SHORT]
            daily.n_first_short += np.bincount(fs[fs >= 0], minlength=T)[:T]
            since_flush += n  # runs counted by one thread at most: int32 counts stay far from overflow
            if since_flush > 2**30:  # keep int32 chunk counts far from overflow
                _flush(daily, hist, src_hist, doh_hist)
                since_flush = 0
            yield Batch(r0, r1, params, totals, per_source, per_regime, observed, per_component)
