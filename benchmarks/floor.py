"""Kernel speed against its random-draw floor on the canonical scenario (benchmarks/b1.toml).

Prints, for one run count and thread count, side by side, in run-days per second:

(a) kernel: the engine's simulation of each batch (``engine._simulate``, the compiled kernel on its
    threads), on inputs already built: model building, parameter sampling and writing excluded;
(b) whole process: ``artysim run`` as a subprocess (wall time, file written to a temporary folder);
(c) draw floor: a nogil numba function, run on as many Python threads over chunks of runs as the
    engine, that makes the random draws the kernel makes on b1 (same samplers, same per-run streams
    and seeding, same draws per run-day) and no model logic, summing the draws so they stay.

Ratios: kernel / floor time (issue 16 target: at most 1.3) and whole process / kernel rate (at least
0.9). Before timing it checks the floor's draws against the kernel's, stream by stream, on one block
of runs (see ``check_draws``).

    python benchmarks/floor.py --runs 100000 --threads 2
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np

from artysim.core import engine, kernel, layout, rng, state
from artysim.jobs.resources import batch_size_for
from artysim.model.load import load

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "b1.toml"


@numba.njit(cache=True, error_model="numpy", nogil=True)
def floor_chunk(keys, use, kinds, k_arr, k_eff, k_lots, k_sizes, k_transit, run0, r_lo, r_hi, T, dbase, dsig,
                prate, pssig, lam, start, avail, lotc, q, row_size, row_transit, dcode, dpar, ddv, ddc, logf, SS, G,
                noise, work, rest, mu, sig, nbin, pb, lpb, duds, u, remaining, nship):
    """The draws of the kernel on runs r_lo .. r_hi - 1 of a batch, block by block and day by day in the
    kernel's order, with no model logic; returns the sum of what was drawn.

    Per run: the used streams seeded as ``kernel._setup_runs`` does. Per day: each production source's
    lognormal noise block and stochastic rounding (``_produce``); each import's daily uniform, Poisson
    shipments by inversion, and per shipment its size, transit and lot dud rate (each from the
    shipment's keyed stream, ``_dispatch``); demand's lognormal block and rounding (``_demand``); each source's
    dud binomial block (``_effect``). What the model would compute between draws is replaced: the
    binomials' counts are the day's demand split evenly over the sources (the kernel splits it by
    stock), their dud rates the run's sampled ones (the kernel: its stock's mean)."""
    NS = kinds.shape[0]
    B = G.shape[0]
    NK = SS.shape[0]
    total = 0.0
    for blk in range(r_lo, r_hi, B):
        nb = min(B, r_hi - blk)
        for b in range(nb):
            r = blk + b
            for k in range(NK):
                if use[k]:
                    rng.seed_stream(SS[k], b, keys[k], np.uint64(run0 + r))
            G[b] = np.nan
        for s in range(NS):
            for b in range(nb):
                r = blk + b
                pb[s, b] = q[s, r]
                lpb[s, b] = rng.logit(q[s, r])
                remaining[s, b] = math.floor(avail[s, r])
                nship[s, b] = 0
        for t in range(T):
            for s in range(NS):
                S = SS[k_arr[s]]
                if kinds[s] == layout.KIND_PRODUCTION:
                    for b in range(nb):
                        sig[b] = pssig[s, blk + b]
                        mu[b] = -0.5 * sig[b] * sig[b]
                    rng.lognormal_noise_block(S, G, nb, mu, sig, noise, work)
                    for b in range(nb):
                        x = prate[s, blk + b] * noise[b]
                        if x > 0.0:
                            total += math.floor(x + rng.uniform(S, b))
                elif kinds[s] == layout.KIND_IMPORT:
                    for b in range(nb):
                        u[b] = rng.uniform(S, b)
                    for b in range(nb):
                        r = blk + b
                        if t < start[s, r] or remaining[s, b] <= 0.0:
                            continue
                        la = lam[s, r]
                        if la < 10.0:
                            n = rng.poisson_inverse(u[b], la, math.exp(-la))
                        else:
                            n = rng.poisson_known(S, b, la, math.exp(-la))
                        for _ in range(n):
                            if remaining[s, b] <= 0.0:
                                break
                            rs, rt = row_size[s], row_transit[s]
                            SZ, ST = SS[k_sizes[s]], SS[k_transit[s]]  # the shipment's keyed streams
                            if dcode[rs] != layout.K_FIXED:
                                rng.seed_stream(SZ, b, rng.stream_key(keys[k_sizes[s]], np.uint64(nship[s, b])),
                                                np.uint64(run0 + r))
                            size = math.floor(rng.sample_coded(SZ, G, b, dcode[rs], dpar[rs], ddv[rs], ddc[rs]) + 0.5)
                            size = min(max(size, 0.0), remaining[s, b])
                            remaining[s, b] -= size
                            if dcode[rt] != layout.K_FIXED:
                                rng.seed_stream(ST, b, rng.stream_key(keys[k_transit[s]], np.uint64(nship[s, b])),
                                                np.uint64(run0 + r))
                            tr = rng.sample_coded(ST, G, b, dcode[rt], dpar[rt], ddv[rt], ddc[rt])
                            qm = q[s, r]
                            if lotc[s, r] > 0.0 and 0.0 < qm < 1.0:
                                SL = SS[k_lots[s]]
                                rng.seed_stream(SL, b, rng.stream_key(keys[k_lots[s]], np.uint64(nship[s, b])),
                                                np.uint64(run0 + r))
                                qm = rng.beta(SL, G, b, qm * lotc[s, r], (1.0 - qm) * lotc[s, r])
                            nship[s, b] += 1
                            total += size + tr + qm
            SD = SS[0]  # layout.stream_demand()
            for b in range(nb):
                sig[b] = dsig[blk + b]
                mu[b] = -0.5 * sig[b] * sig[b]
            rng.lognormal_noise_block(SD, G, nb, mu, sig, noise, work)
            for b in range(nb):
                x = dbase[blk + b] * noise[b]
                d = int(math.floor(x + rng.uniform(SD, b))) if x > 0.0 else 0
                share = d // NS
                for s in range(NS):
                    nbin[s, b] = share if s < NS - 1 else d - share * (NS - 1)
            for s in range(NS):
                rng.binomial_block(SS[k_eff[s]], nb, nbin[s], pb[s], lpb[s], duds, work, rest, logf)
                for b in range(nb):
                    total += duds[b]
    return total


@numba.njit(cache=True, error_model="numpy")
def steps_from_seed(key, run, final, limit):
    """How many xoshiro steps take the stream of ``run`` under ``key`` from its seed to ``final``
    (4,); -1 if not within ``limit`` (counts every 64-bit draw, whatever the sampler)."""
    S = np.empty((4, 1), dtype=np.uint64)
    rng.seed_stream(S, 0, key, np.uint64(run))
    for n in range(limit + 1):
        if S[0, 0] == final[0] and S[1, 0] == final[1] and S[2, 0] == final[2] and S[3, 0] == final[3]:
            return n
        rng.next_u64(S, 0)
    return -1


class Floor:
    """The draw floor's inputs for one model: per-run sampler parameters and per-thread scratch."""

    def __init__(self, model, seed: int, nthreads: int):
        m = model.kernel
        self.m, self.model, self.nthreads = m, model, nthreads
        mech = state.mechanisms(m)
        optional = [name for name, on in [
            ("accuracy", mech.has_acc.any()), ("legacy", mech.has_legacy.any()), ("disruptions", mech.any_dis),
            ("rejection", mech.has_reject.any()), ("rework", mech.any_rework), ("strikes", mech.has_strikes),
            ("regimes", mech.has_regimes), ("refire", mech.has_refire), ("components", mech.has_comp.any()),
            ("containers", mech.any_cont), ("schedules", bool(m.sched_change[1:].any())),
        ] if on]
        if optional:  # each draws more (see kernel.py); the floor covers b1's mechanisms only
            raise SystemExit(f"the draw floor does not model: {', '.join(optional)}")
        self.mech = mech
        self.keys = model.stream_keys(seed)
        self.seed = seed

    def inputs(self, params: np.ndarray) -> tuple:
        """Per-run arrays of the batch ``params`` (what _setup_* derive; no draws, not timed)."""
        m, mech = self.m, self.mech
        NS = m.kinds.shape[0]
        R = params.shape[0]
        col = m.sched_cols[layout.SCHED_DEMAND, m.sched_piece[layout.SCHED_DEMAND, 0]]
        dbase = params[:, col].copy()
        cv = params[:, m.groles[layout.GR_DCV]]
        dsig = np.sqrt(np.log1p(cv * cv))
        z = np.zeros((NS, R))
        prate, pssig, lam, avail, lotc, q = z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), z.copy()
        start = np.zeros((NS, R), dtype=np.int64)
        row_size = np.zeros(NS, dtype=np.int64)
        row_transit = np.zeros(NS, dtype=np.int64)
        for s in range(NS):
            q[s] = params[:, m.roles[s, layout.R_DUD]]
            rr = mech.r_rate[s]
            c_rate = m.sched_cols[rr, m.sched_piece[rr, 0]]
            if m.kinds[s] == layout.KIND_PRODUCTION:
                prate[s] = params[:, c_rate] / layout.DAYS_PER_YEAR  # b1: no annual_end, so no ramp
                c_cv = m.roles[s, layout.R_DAILY_CV]
                if c_cv >= 0:
                    pssig[s] = np.sqrt(np.log1p(params[:, c_cv] ** 2))
            elif m.kinds[s] == layout.KIND_IMPORT:
                lam[s] = params[:, c_rate] / layout.DAYS_PER_MONTH
                s0 = params[:, m.roles[s, layout.R_START]]
                start[s] = np.where(s0 > 0, np.ceil(s0), 0).astype(np.int64)
                avail[s] = params[:, m.roles[s, layout.R_AVAILABLE]]
                c_lc = m.roles[s, layout.R_LOTCONC]
                if c_lc >= 0:
                    lotc[s] = params[:, c_lc]
                rs = mech.r_size[s]
                row_size[s] = m.sched_cols[rs, m.sched_piece[rs, 0]]
                row_transit[s] = m.erows[s, layout.E_TRANSIT]
        return (dbase, dsig, prate, pssig, lam, start, avail, lotc, q, row_size, row_transit)

    def scratch(self) -> tuple:
        """One thread's stream states and sampler scratch (as state.allocate gives the kernel)."""
        NS, B = self.m.kinds.shape[0], layout.BLOCK
        i64 = np.int64
        return (np.empty((self.mech.use.shape[0], 4, B), dtype=np.uint64), np.empty(B), np.ones(B),
                np.zeros((3, B)), np.zeros(B, dtype=i64), np.zeros(B), np.zeros(B), np.zeros((NS, B), dtype=i64),
                np.zeros((NS, B)), np.zeros((NS, B)), np.zeros(B, dtype=i64), np.zeros(B), np.zeros((NS, B)),
                np.zeros((NS, B), dtype=i64))

    def chunk(self, run0: int, inp: tuple, scr: tuple, lo: int, hi: int) -> float:
        m, mech = self.m, self.mech
        (dbase, dsig, prate, pssig, lam, start, avail, lotc, q, row_size, row_transit) = inp
        return floor_chunk(self.keys, mech.use, m.kinds, mech.k_arrivals, mech.k_effect, mech.k_lots, mech.k_sizes,
                           mech.k_transit, run0, lo,
                           hi, m.horizon, dbase, dsig, prate, pssig, lam, start, avail, lotc, q, row_size,
                           row_transit, m.dcode, m.dpar, m.ddv, m.ddc, m.logf, *scr)


def _worker(fl: Floor, r0: int, inp: tuple, scr: tuple, bounds, lock: threading.Lock) -> float:
    """One thread of the floor: the next chunk of the batch while any is left (as engine._simulate)."""
    acc = 0.0
    while True:
        with lock:
            nxt = next(bounds, None)
        if nxt is None:
            return acc
        acc += fl.chunk(r0, inp, scr, nxt[0], nxt[1])


def time_floor(fl: Floor, runs: int, batch_size: int) -> tuple[float, float]:
    """Seconds the floor takes over all batches (per-run inputs built untimed), on fl.nthreads
    threads taking 8 x threads chunks per batch one at a time, as ``engine._simulate``; and its sum."""
    nthreads = fl.nthreads
    scratch = [fl.scratch() for _ in range(nthreads)]
    chunks = 8 * nthreads
    elapsed, total = 0.0, 0.0
    with ThreadPoolExecutor(nthreads) as pool:
        for r0 in range(0, runs, batch_size):
            n = min(batch_size, runs - r0)
            inp = fl.inputs(fl.model.sample(fl.seed, r0, n))
            bounds = iter([((c * n) // chunks, ((c + 1) * n) // chunks) for c in range(chunks)])
            lock = threading.Lock()
            t = time.perf_counter()
            futures = [pool.submit(_worker, fl, r0, inp, scratch[tid], bounds, lock) for tid in range(nthreads)]
            total += sum(f.result() for f in futures)
            elapsed += time.perf_counter() - t
    return elapsed, total


def time_kernel(model, seed: int, runs: int, nthreads: int, batch_size: int) -> float:
    """Seconds spent in ``engine._simulate`` (the kernel on its threads) over a full run_batches loop:
    the batch loop as ``artysim run`` drives it, with only the simulation of each batch timed."""
    spent = [0.0]
    inner = engine._simulate

    def timed(*a, **k):
        t = time.perf_counter()
        inner(*a, **k)
        spent[0] += time.perf_counter() - t

    engine._simulate = timed
    try:
        daily = engine.Daily.empty(model.horizon, model.n_sample, len(model.kinds))
        for _ in engine.run_batches(model, seed, 0, runs, daily, nthreads, batch_size):
            pass
    finally:
        engine._simulate = inner
    return spent[0]


def time_process(runs: int, nthreads: int) -> float:
    """Wall seconds of one ``artysim run`` process, its file written to a temporary folder."""
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-m", "artysim.cli", "run", str(SCENARIO), "--runs", str(runs), "--threads",
               str(nthreads), "-o", str(Path(d) / "b1.nc"), "--quiet"]
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
        wall = time.perf_counter() - t
        if p.returncode != 0:
            raise SystemExit(f"artysim run failed:\n{p.stderr}")
        return wall


def check_draws(model, fl: Floor, seed: int) -> None:
    """Compare the floor's draws with the kernel's on one block of runs (BLOCK runs, one thread).

    Both leave each run's final stream states in their scratch; ``steps_from_seed`` counts the
    64-bit draws every stream took from its seed. Demand, production and import-arrival streams and
    the shipment counts must be identical (the floor draws them exactly as the kernel: the same
    values, in the same order); the effect (dud) streams may differ a little, as the floor's binomial
    counts are not the kernel's stock-proportional ones. Lot streams are re-seeded per shipment (one
    Beta each on its own keyed stream, the same in both): equal shipment counts mean equal lot draws.
    """
    mech, nb = fl.mech, layout.BLOCK
    got = {}
    inner = engine._simulate

    def one_block(m_, inp, out, acc, states, pool, nthreads, chunks):  # the kernel on runs 0 .. nb - 1
        kernel.simulate_chunk(m_, inp, out, acc, states[0], 0, 0, nb)
        got["st"] = states[0]

    engine._simulate = one_block
    try:
        daily = engine.Daily.empty(model.horizon, model.n_sample, len(model.kinds))
        for _ in engine.run_batches(model, seed, 0, nb, daily, 1, nb):
            pass
    finally:
        engine._simulate = inner
    kst = got["st"]
    scr = fl.scratch()
    fl.chunk(0, fl.inputs(model.sample(seed, 0, nb)), scr, 0, nb)
    names = model.stream_names()
    T = model.horizon
    limit = 200 * T
    print(f"draw check, runs 0..{nb - 1} (64-bit draws per run-day, kernel / floor):")
    for k in np.flatnonzero(mech.use):
        kc = np.array([steps_from_seed(fl.keys[k], r, kst.x.SS[k, :, r].copy(), limit) for r in range(nb)])
        fc = np.array([steps_from_seed(fl.keys[k], r, scr[0][k, :, r].copy(), limit) for r in range(nb)])
        if (kc < 0).any() or (fc < 0).any():
            raise SystemExit(f"stream {names[k]}: a final state not within {limit} draws of its seed")
        exact = k not in set(mech.k_effect.tolist())
        same = bool((kc == fc).all())
        flag = ("identical" if same else "DIFFER") if exact else f"{fc.sum() / kc.sum() - 1:+.2%}"
        print(f"  {names[k]:<28} {kc.mean() / T:6.3f} / {fc.mean() / T:6.3f}  {flag}")
        if exact and not same:
            raise SystemExit(f"stream {names[k]}: the floor's draws are not the kernel's")
    ks, fs = kst.keyed.nship[:, :nb], scr[-1][:, :nb]
    if not (ks == fs).all():
        raise SystemExit("shipment counts (lot streams) differ between kernel and floor")
    print(f"  shipments (one lot stream each)  {ks.sum(axis=1).max() / nb:6.1f} per run in both  identical")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    loaded = load(SCENARIO)
    model, seed = loaded.model, int(loaded.scenario.run.seed)
    nthreads = engine.resolve_threads(args.threads)
    batch_size = batch_size_for(model.horizon, nthreads)
    fl = Floor(model, seed, nthreads)
    check_draws(model, fl, seed)  # also compiles (or loads) the kernel and the floor
    time_kernel(model, seed, min(args.runs, 4 * layout.BLOCK * nthreads), nthreads, batch_size)  # warm
    time_process(1000, nthreads)  # warm: the child's numba cache is this process's
    rd = args.runs * model.horizon
    t_proc = time_process(args.runs, nthreads)
    t_kern = time_kernel(model, seed, args.runs, nthreads, batch_size)
    t_floor, _ = time_floor(fl, args.runs, batch_size)
    print(f"b1, {args.runs:,} runs x {model.horizon} days, {nthreads} threads, batches of {batch_size:,} runs "
          f"(load average {os.getloadavg()[0]:.2f})")
    print(f"{'':<22} {'seconds':>9} {'M run-days/s':>13}")
    for name, t in [("(a) kernel", t_kern), ("(b) whole process", t_proc), ("(c) draw floor", t_floor)]:
        print(f"{name:<22} {t:9.2f} {rd / t / 1e6:13.2f}")
    print(f"kernel / floor time:          {t_kern / t_floor:.2f}  (target <= 1.3)")
    print(f"whole process / kernel rate:  {t_kern / t_proc:.2f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
