"""The numba core: arrays in, preallocated arrays out; no checks, no I/O.

Runs are split into contiguous chunks (one per thread); a chunk steps a small block of runs
together, day by day, so that each day's histogram rows stay in cache. State is per block
(block x sources, and block x days for goods in transit), never runs x days. Every run draws from
its own stream (see ``rng``), and all per-day statistics are integer counts or sums, so results
are identical whatever the thread count, chunking or batch boundaries.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from artysim.histogram import bin_index
from artysim.rng import (
    beta,
    binomial_block,
    logit,
    lognormal_noise_block,
    poisson_inverse,
    poisson_known,
    sample_coded,
    seed_stream,
    uniform,
)

KIND_STOCKPILE = 0
KIND_PRODUCTION = 1
KIND_IMPORT = 2

# columns of the per-source role table: index into the per-run parameter matrix, -1 = absent
R_INITIAL = 0
R_ANNUAL = 1
R_ANNUAL_END = 2
R_DAILY_CV = 3
R_DUD = 4
R_ACCURACY = 5
R_START = 6
R_SPM = 7
R_AVAILABLE = 8
R_LOTCONC = 9
N_ROLES = 10

ISSUE_PROPORTIONAL = 0
ISSUE_PRIORITY = 1

# per-day statistics (histogram and sum rows)
V_STOCK = 0
V_FIRED = 1
V_EFFECTIVE = 2
V_SHORTFALL = 3
N_DAILY = 4

# per-run totals
O_DEMAND = 0
O_FIRED = 1
O_EFFECTIVE = 2
O_SHORTFALL = 3
O_STOCK_MIN = 4
O_STOCK_FINAL = 5
O_SHORT_DAYS = 6
O_FIRST_SHORT = 7  # -1 when never short
N_TOTALS = 8

# per-run, per-source totals
P_INITIAL = 0
P_RECEIVED = 1
P_FIRED = 2
P_DUDS = 3
P_EFFECTIVE = 4
P_FINAL = 5
P_DISPATCHED = 6  # imports: shipped by the supplier (received + still in transit at the end)
N_PER_SOURCE = 7

BLOCK = 256
DAYS_PER_YEAR = 365.0
DAYS_PER_MONTH = 365.0 / 12.0


@numba.njit(cache=True, error_model="numpy", inline="always")
def _round_stochastic(S: np.ndarray, b: int, x: float) -> int:
    """Whole rounds with the right mean: floor(x + U)."""
    if x <= 0.0:
        return 0
    return int(math.floor(x + uniform(S, b)))


@numba.njit(cache=True, error_model="numpy")
def _simulate_chunk(
    r_lo, r_hi, run0, keys, T, params, base_col, dcv_col, kinds, roles,
    ship_code, ship_par, ship_dv, ship_dc, transit_code, transit_par, tr_dv, tr_dc, ring, logf,
    issue, order, threshold, n_sample,
    totals, per_source, hist, sums, n_short, sample_stock, sample_fired,
):
    """Runs ``r_lo .. r_hi - 1`` of the batch, a block at a time, each day in phases.

    State arrays are source-major (``x[s, b]``) so that every phase is a simple loop over the
    runs of the block; imports keep goods in transit in a ring of ``ring`` days.
    """
    NS = kinds.shape[0]
    B = BLOCK
    L = ring
    # streams: 0 demand; 1 + s arrivals of source s; 1 + NS + s duds and misses of source s
    SS = np.empty((1 + 2 * NS, 4, B), dtype=np.uint64)
    G = np.empty(B)
    stock = np.zeros((NS, B), dtype=np.int64)
    q = np.zeros((NS, B))
    pend = np.zeros((NS, B, L), dtype=np.int64)
    pend_dm = np.zeros((NS, B, L))
    remaining = np.zeros((NS, B))
    rate0 = np.zeros((NS, B))
    slope = np.zeros((NS, B))
    smu = np.zeros((NS, B))
    ssig = np.zeros((NS, B))
    sq = np.zeros((NS, B))
    acc = np.ones((NS, B))
    start = np.zeros((NS, B), dtype=np.int64)
    lam = np.zeros((NS, B))
    elam = np.zeros((NS, B))
    lotc = np.zeros((NS, B))
    dbase = np.zeros(B)
    dmu = np.zeros(B)
    dsig = np.zeros(B)
    tot = np.zeros((N_TOTALS, B), dtype=np.int64)
    ps = np.zeros((NS, N_PER_SOURCE, B), dtype=np.int64)
    dem = np.zeros(B, dtype=np.int64)
    fired = np.zeros(B, dtype=np.int64)
    avail = np.zeros(B, dtype=np.int64)
    eff = np.zeros(B, dtype=np.int64)
    fs = np.zeros((NS, B), dtype=np.int64)
    duds = np.zeros(B, dtype=np.int64)
    hits = np.zeros(B, dtype=np.int64)
    misses = np.zeros(B, dtype=np.int64)
    work = np.zeros((3, B))
    bins = np.zeros((4, B), dtype=np.int64)
    noise = np.ones(B)
    rest = np.zeros(B, dtype=np.int64)
    lq = np.zeros((NS, B))
    lacc = np.zeros((NS, B))
    has_acc = np.zeros(NS, dtype=np.bool_)
    for s in range(NS):
        has_acc[s] = roles[s, R_ACCURACY] >= 0

    for blk in range(r_lo, r_hi, B):
        nb = min(B, r_hi - blk)
        # ---- per-run set-up: streams and derived parameters
        for b in range(nb):
            r = blk + b
            for k in range(1 + 2 * NS):
                seed_stream(SS[k], b, keys[k], np.uint64(run0 + r))
            G[b] = np.nan
            dbase[b] = params[r, base_col]
            cv = params[r, dcv_col]
            dsig[b] = math.sqrt(math.log1p(cv * cv))
            dmu[b] = -0.5 * dsig[b] * dsig[b]
            for k in range(N_TOTALS):
                tot[k, b] = 0
            tot[O_FIRST_SHORT, b] = -1
            tot[O_STOCK_MIN, b] = np.iinfo(np.int64).max
        for s in range(NS):
            kd = kinds[s]
            for b in range(nb):
                r = blk + b
                for k in range(N_PER_SOURCE):
                    ps[s, k, b] = 0
                stock[s, b] = 0
                sq[s, b] = params[r, roles[s, R_DUD]]
                q[s, b] = sq[s, b]
                lq[s, b] = logit(q[s, b])
                acc[s, b] = params[r, roles[s, R_ACCURACY]] if roles[s, R_ACCURACY] >= 0 else 1.0
                lacc[s, b] = logit(acc[s, b])
                if kd == KIND_STOCKPILE:
                    init = int(round(params[r, roles[s, R_INITIAL]]))
                    stock[s, b] = init
                    ps[s, P_INITIAL, b] = init
                elif kd == KIND_PRODUCTION:
                    a0 = params[r, roles[s, R_ANNUAL]]
                    a1 = params[r, roles[s, R_ANNUAL_END]] if roles[s, R_ANNUAL_END] >= 0 else a0
                    rate0[s, b] = a0 / DAYS_PER_YEAR
                    slope[s, b] = (a1 - a0) / DAYS_PER_YEAR / T
                    cvp = params[r, roles[s, R_DAILY_CV]] if roles[s, R_DAILY_CV] >= 0 else 0.0
                    ssig[s, b] = math.sqrt(math.log1p(cvp * cvp))
                    smu[s, b] = -0.5 * ssig[s, b] * ssig[s, b]
                elif kd == KIND_IMPORT:
                    st = params[r, roles[s, R_START]]
                    start[s, b] = int(math.ceil(st)) if st > 0 else 0
                    lam[s, b] = params[r, roles[s, R_SPM]] / DAYS_PER_MONTH
                    elam[s, b] = math.exp(-lam[s, b])
                    remaining[s, b] = math.floor(params[r, roles[s, R_AVAILABLE]])
                    lotc[s, b] = params[r, roles[s, R_LOTCONC]] if roles[s, R_LOTCONC] >= 0 else 0.0
                    for j in range(L):
                        pend[s, b, j] = 0
                        pend_dm[s, b, j] = 0.0

        # ---- the days, all runs of the block in step, one phase at a time
        for t in range(T):
            slot = t % L
            # 1. arrivals
            for s in range(NS):
                kd = kinds[s]
                S = SS[s + 1]
                if kd == KIND_PRODUCTION:
                    lognormal_noise_block(S, G, nb, smu[s], ssig[s], noise, work)
                    for b in range(nb):
                        a = _round_stochastic(S, b, (rate0[s, b] + slope[s, b] * t) * noise[b])
                        # every lot of a production source has the run's dud rate: q is unchanged
                        stock[s, b] += a
                        ps[s, P_RECEIVED, b] += a
                elif kd == KIND_IMPORT:
                    for b in range(nb):  # every run draws the uniform of its day's dispatch count (vectorises)
                        work[0, b] = uniform(S, b)
                    for b in range(nb):
                        if t >= start[s, b] and remaining[s, b] > 0.0:
                            if lam[s, b] < 10.0:  # Poisson by inversion of that uniform
                                n = poisson_inverse(work[0, b], lam[s, b], elam[s, b])
                            else:
                                n = poisson_known(S, b, lam[s, b], elam[s, b])
                            for _ in range(n):
                                if remaining[s, b] <= 0.0:
                                    break
                                size = math.floor(
                                    sample_coded(S, G, b, ship_code[s], ship_par[s], ship_dv[s], ship_dc[s]) + 0.5
                                )
                                size = min(max(size, 0.0), remaining[s, b])
                                remaining[s, b] -= size
                                tr = math.floor(
                                    sample_coded(S, G, b, transit_code[s], transit_par[s], tr_dv[s], tr_dc[s]) + 0.5
                                )
                                tr = max(tr, 0.0)
                                qm = sq[s, b]
                                if lotc[s, b] > 0.0 and 0.0 < qm < 1.0:
                                    qm = beta(S, G, b, qm * lotc[s, b], (1.0 - qm) * lotc[s, b])
                                isize = int(size)
                                ps[s, P_DISPATCHED, b] += isize
                                if t + tr < T:
                                    j = (t + int(tr)) % L
                                    pend[s, b, j] += isize
                                    pend_dm[s, b, j] += size * qm
                        a = pend[s, b, slot]
                        if a > 0:
                            held = stock[s, b]
                            q[s, b] = (held * q[s, b] + pend_dm[s, b, slot]) / (held + a)
                            lq[s, b] = logit(q[s, b])
                            stock[s, b] = held + a
                            ps[s, P_RECEIVED, b] += a
                            pend[s, b, slot] = 0
                            pend_dm[s, b, slot] = 0.0
            # 3. demand
            SD = SS[0]
            lognormal_noise_block(SD, G, nb, dmu, dsig, noise, work)
            for b in range(nb):
                dem[b] = _round_stochastic(SD, b, dbase[b] * noise[b])
            # 4. issue
            for b in range(nb):
                total = 0
                for s in range(NS):
                    total += stock[s, b]
                f_all = min(dem[b], total)
                avail[b] = total
                fired[b] = f_all
                for s in range(NS):
                    fs[s, b] = 0
                if f_all <= 0:
                    continue
                if issue == ISSUE_PROPORTIONAL:
                    # cumulative rounding: part s = floor(f * C_s / total) - floor(f * C_{s-1} / total),
                    # C_s the running stock sum; parts sum to f exactly and none exceeds its stock
                    ratio = f_all / total
                    prev = 0
                    cum = 0
                    for s in range(NS - 1):
                        cum += stock[s, b]
                        bound = min(int(cum * ratio), f_all)
                        part = min(max(bound - prev, 0), stock[s, b])  # guards float rounding
                        fs[s, b] = part
                        prev += part
                    last = f_all - prev
                    fs[NS - 1, b] = last
                    excess = last - stock[NS - 1, b]
                    if excess > 0:  # only through float rounding: move the excess to sources with room
                        fs[NS - 1, b] = stock[NS - 1, b]
                        for s in range(NS - 1):
                            take = min(stock[s, b] - fs[s, b], excess)
                            fs[s, b] += take
                            excess -= take
                else:
                    need = f_all
                    for j in range(order.shape[0]):
                        s = order[j]
                        f = min(need, stock[s, b])
                        fs[s, b] = f
                        need -= f
                        if need == 0:
                            break
            # 5. effect: duds of each source's rounds, then misses among the rest
            for b in range(nb):
                eff[b] = 0
            for s in range(NS):
                fsrc = fs[s]
                S = SS[1 + NS + s]
                binomial_block(S, nb, fsrc, q[s], lq[s], duds, work, rest, logf)
                for b in range(nb):
                    f = fsrc[b]
                    stock[s, b] -= f
                    ps[s, P_FIRED, b] += f
                    ps[s, P_DUDS, b] += duds[b]
                    hits[b] = f - duds[b]
                if has_acc[s]:
                    binomial_block(S, nb, hits, acc[s], lacc[s], misses, work, rest, logf)
                    for b in range(nb):
                        hits[b] = misses[b]
                for b in range(nb):
                    ps[s, P_EFFECTIVE, b] += hits[b]
                    eff[b] += hits[b]
            # 6. accounting (day sums kept in registers, written once per day)
            hrow_s = hist[t, V_STOCK]
            hrow_f = hist[t, V_FIRED]
            hrow_e = hist[t, V_EFFECTIVE]
            hrow_x = hist[t, V_SHORTFALL]
            sum_s = 0
            sum_f = 0
            sum_e = 0
            sum_x = 0
            shorts = 0
            for b in range(nb):  # no data-dependent branch: vectorises
                d = dem[b]
                f = fired[b]
                shortfall = d - f
                left = avail[b] - f
                e = eff[b]
                tot[O_DEMAND, b] += d
                tot[O_FIRED, b] += f
                tot[O_EFFECTIVE, b] += e
                tot[O_SHORTFALL, b] += shortfall
                tot[O_STOCK_MIN, b] = min(tot[O_STOCK_MIN, b], left)
                sh = 1 if shortfall > threshold * d else 0
                tot[O_SHORT_DAYS, b] += sh
                first = tot[O_FIRST_SHORT, b]
                tot[O_FIRST_SHORT, b] = t if (sh == 1 and first < 0) else first
                shorts += sh
                sum_s += left
                sum_f += f
                sum_e += e
                sum_x += shortfall
                bins[0, b] = bin_index(left)
                bins[1, b] = bin_index(f)
                bins[2, b] = bin_index(e)
                bins[3, b] = bin_index(shortfall)
            for b in range(nb):
                hrow_s[bins[0, b]] += 1
                hrow_f[bins[1, b]] += 1
                hrow_e[bins[2, b]] += 1
                hrow_x[bins[3, b]] += 1
            sums[t, V_STOCK] += sum_s
            sums[t, V_FIRED] += sum_f
            sums[t, V_EFFECTIVE] += sum_e
            sums[t, V_SHORTFALL] += sum_x
            n_short[t] += shorts
            g0 = run0 + blk
            if g0 < n_sample:
                for b in range(min(nb, n_sample - g0)):
                    sample_stock[g0 + b, t] = avail[b] - fired[b]
                    sample_fired[g0 + b, t] = fired[b]

        # ---- per-run outputs
        for b in range(nb):
            r = blk + b
            final = 0
            for s in range(NS):
                ps[s, P_FINAL, b] = stock[s, b]
                final += stock[s, b]
                for k in range(N_PER_SOURCE):
                    per_source[r, s, k] = ps[s, k, b]
            tot[O_STOCK_FINAL, b] = final
            if T == 0:
                tot[O_STOCK_MIN, b] = final
            for k in range(N_TOTALS):
                totals[r, k] = tot[k, b]


@numba.njit(parallel=True, cache=True, error_model="numpy", nogil=True)
def simulate(
    run0, keys, T, params, base_col, dcv_col, kinds, roles,
    ship_code, ship_par, ship_dv, ship_dc, transit_code, transit_par, tr_dv, tr_dc, ring, logf,
    issue, order, threshold, n_sample, n_chunks,
    totals, per_source, hist, sums, n_short, sample_stock, sample_fired,
):
    """Simulate runs ``run0 .. run0 + len(params) - 1``.

    Per-run outputs are written to ``totals`` (runs x N_TOTALS) and ``per_source`` (runs x
    sources x N_PER_SOURCE). Per-day statistics are *added* to per-thread accumulators ``hist``
    (threads x T x N_DAILY x bins), ``sums`` (threads x T x N_DAILY) and ``n_short`` (threads x T),
    so a caller may feed several batches into them; being integer sums, they do not depend on which
    thread ran which of the ``n_chunks`` chunks. Runs with global index below
    ``n_sample`` have their stock and fired trajectories written to ``sample_*``.
    """
    R = params.shape[0]
    for c in numba.prange(n_chunks):
        tid = numba.get_thread_id()  # per-thread accumulators: chunks may go to any free thread
        lo = (c * R) // n_chunks
        hi = ((c + 1) * R) // n_chunks
        _simulate_chunk(
            lo, hi, run0, keys, T, params, base_col, dcv_col, kinds, roles,
            ship_code, ship_par, ship_dv, ship_dc, transit_code, transit_par, tr_dv, tr_dc, ring, logf,
            issue, order, threshold, n_sample,
            totals, per_source, hist[tid], sums[tid], n_short[tid], sample_stock, sample_fired,
        )
