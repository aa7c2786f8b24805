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
    binomial,
    normal,
    poisson,
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

BLOCK = 32
DAYS_PER_YEAR = 365.0
DAYS_PER_MONTH = 365.0 / 12.0


@numba.njit(cache=True, error_model="numpy", inline="always")
def _round_stochastic(S: np.ndarray, b: int, x: float) -> int:
    """Whole rounds with the right mean: floor(x + U)."""
    if x <= 0.0:
        return 0
    return int(math.floor(x + uniform(S, b)))


@numba.njit(cache=True, error_model="numpy", inline="always")
def _lognormal_noise(S: np.ndarray, G: np.ndarray, b: int, mu: float, sig: float) -> float:
    """Mean-one lognormal multiplier (1 when the CV is zero)."""
    if sig <= 0.0:
        return 1.0
    return math.exp(mu + sig * normal(S, G, b))


@numba.njit(cache=True, error_model="numpy")
def _simulate_chunk(
    r_lo, r_hi, run0, key, T, params, base_col, dcv_col, kinds, roles,
    ship_code, ship_par, ship_dv, ship_dc, transit_code, transit_par, tr_dv, tr_dc,
    issue, order, threshold, n_sample,
    totals, per_source, hist, sums, n_short, sample_stock, sample_fired,
):
    NS = kinds.shape[0]
    B = BLOCK
    S = np.empty((B, 4), dtype=np.uint64)
    G = np.empty(B)
    stock = np.zeros((B, NS), dtype=np.int64)
    q = np.zeros((B, NS))
    pend = np.zeros((B, NS, T), dtype=np.int64)
    pend_dm = np.zeros((B, NS, T))
    remaining = np.zeros((B, NS))
    rate0 = np.zeros((B, NS))
    slope = np.zeros((B, NS))
    smu = np.zeros((B, NS))
    ssig = np.zeros((B, NS))
    sq = np.zeros((B, NS))
    acc = np.ones((B, NS))
    start = np.zeros((B, NS), dtype=np.int64)
    lam = np.zeros((B, NS))
    lotc = np.zeros((B, NS))
    dbase = np.zeros(B)
    dmu = np.zeros(B)
    dsig = np.zeros(B)
    tot = np.zeros((B, N_TOTALS), dtype=np.int64)
    ps = np.zeros((B, NS, N_PER_SOURCE), dtype=np.int64)
    fired_s = np.zeros(NS, dtype=np.int64)
    frac = np.zeros(NS)

    for blk in range(r_lo, r_hi, B):
        nb = min(B, r_hi - blk)
        # ---- per-run set-up: streams and derived parameters
        for b in range(nb):
            r = blk + b
            seed_stream(S, b, key, np.uint64(run0 + r))
            G[b] = np.nan
            dbase[b] = params[r, base_col]
            cv = params[r, dcv_col]
            dsig[b] = math.sqrt(math.log1p(cv * cv))
            dmu[b] = -0.5 * dsig[b] * dsig[b]
            for k in range(N_TOTALS):
                tot[b, k] = 0
            tot[b, O_FIRST_SHORT] = -1
            tot[b, O_STOCK_MIN] = np.iinfo(np.int64).max
            for s in range(NS):
                for k in range(N_PER_SOURCE):
                    ps[b, s, k] = 0
                stock[b, s] = 0
                sq[b, s] = params[r, roles[s, R_DUD]]
                q[b, s] = sq[b, s]
                acc[b, s] = params[r, roles[s, R_ACCURACY]] if roles[s, R_ACCURACY] >= 0 else 1.0
                kd = kinds[s]
                if kd == KIND_STOCKPILE:
                    init = int(round(params[r, roles[s, R_INITIAL]]))
                    stock[b, s] = init
                    ps[b, s, P_INITIAL] = init
                elif kd == KIND_PRODUCTION:
                    a0 = params[r, roles[s, R_ANNUAL]]
                    a1 = params[r, roles[s, R_ANNUAL_END]] if roles[s, R_ANNUAL_END] >= 0 else a0
                    rate0[b, s] = a0 / DAYS_PER_YEAR
                    slope[b, s] = (a1 - a0) / DAYS_PER_YEAR / T
                    cvp = params[r, roles[s, R_DAILY_CV]] if roles[s, R_DAILY_CV] >= 0 else 0.0
                    ssig[b, s] = math.sqrt(math.log1p(cvp * cvp))
                    smu[b, s] = -0.5 * ssig[b, s] * ssig[b, s]
                elif kd == KIND_IMPORT:
                    st = params[r, roles[s, R_START]]
                    start[b, s] = int(math.ceil(st)) if st > 0 else 0
                    lam[b, s] = params[r, roles[s, R_SPM]] / DAYS_PER_MONTH
                    remaining[b, s] = math.floor(params[r, roles[s, R_AVAILABLE]])
                    lotc[b, s] = params[r, roles[s, R_LOTCONC]] if roles[s, R_LOTCONC] >= 0 else 0.0
                    for t in range(T):
                        pend[b, s, t] = 0
                        pend_dm[b, s, t] = 0.0

        # ---- the days, all runs of the block in step
        for t in range(T):
            for b in range(nb):
                r = blk + b
                # 1. arrivals
                for s in range(NS):
                    kd = kinds[s]
                    arrive = 0
                    arrive_dm = 0.0
                    if kd == KIND_PRODUCTION:
                        x = (rate0[b, s] + slope[b, s] * t) * _lognormal_noise(S, G, b, smu[b, s], ssig[b, s])
                        arrive = _round_stochastic(S, b, x)
                        arrive_dm = arrive * sq[b, s]
                    elif kd == KIND_IMPORT:
                        if t >= start[b, s] and remaining[b, s] > 0.0:
                            n = poisson(S, b, lam[b, s])
                            for _ in range(n):
                                if remaining[b, s] <= 0.0:
                                    break
                                size = math.floor(
                                    sample_coded(S, G, b, ship_code[s], ship_par[s], ship_dv[s], ship_dc[s]) + 0.5
                                )
                                size = min(max(size, 0.0), remaining[b, s])
                                remaining[b, s] -= size
                                tr = math.floor(
                                    sample_coded(S, G, b, transit_code[s], transit_par[s], tr_dv[s], tr_dc[s]) + 0.5
                                )
                                qm = sq[b, s]
                                if lotc[b, s] > 0.0 and 0.0 < qm < 1.0:
                                    qm = beta(S, G, b, qm * lotc[b, s], (1.0 - qm) * lotc[b, s])
                                isize = int(size)
                                ps[b, s, P_DISPATCHED] += isize
                                arr = t + int(max(tr, 0.0))
                                if arr < T:
                                    pend[b, s, arr] += isize
                                    pend_dm[b, s, arr] += size * qm
                        arrive = pend[b, s, t]
                        arrive_dm = pend_dm[b, s, t]
                    if arrive > 0:
                        held = stock[b, s]
                        q[b, s] = (held * q[b, s] + arrive_dm) / (held + arrive)
                        stock[b, s] = held + arrive
                        ps[b, s, P_RECEIVED] += arrive
                # 3. demand
                dem = _round_stochastic(S, b, dbase[b] * _lognormal_noise(S, G, b, dmu[b], dsig[b]))
                # 4. issue
                total = 0
                for s in range(NS):
                    total += stock[b, s]
                fired = min(dem, total)
                for s in range(NS):
                    fired_s[s] = 0
                if fired > 0:
                    if issue == ISSUE_PROPORTIONAL:
                        if fired == total:
                            for s in range(NS):
                                fired_s[s] = stock[b, s]
                        else:
                            given = 0
                            for s in range(NS):
                                share = fired * (stock[b, s] / total)
                                f = int(math.floor(share))
                                f = min(f, stock[b, s])
                                fired_s[s] = f
                                frac[s] = share - f
                                given += f
                            # largest remainders take the leftover rounds (ties: first source)
                            while given < fired:
                                best = 0
                                bestv = -2.0
                                for s in range(NS):
                                    if fired_s[s] < stock[b, s] and frac[s] > bestv:
                                        best = s
                                        bestv = frac[s]
                                fired_s[best] += 1
                                frac[best] = -1.0
                                given += 1
                    else:
                        need = fired
                        for j in range(order.shape[0]):
                            s = order[j]
                            f = min(need, stock[b, s])
                            fired_s[s] = f
                            need -= f
                            if need == 0:
                                break
                # 5. effect
                eff = 0
                for s in range(NS):
                    f = fired_s[s]
                    if f > 0:
                        stock[b, s] -= f
                        d = binomial(S, b, f, q[b, s])
                        e = f - d
                        if acc[b, s] < 1.0:
                            e = binomial(S, b, e, acc[b, s])
                        ps[b, s, P_FIRED] += f
                        ps[b, s, P_DUDS] += d
                        ps[b, s, P_EFFECTIVE] += e
                        eff += e
                # 6. accounting
                shortfall = dem - fired
                left = total - fired
                tot[b, O_DEMAND] += dem
                tot[b, O_FIRED] += fired
                tot[b, O_EFFECTIVE] += eff
                tot[b, O_SHORTFALL] += shortfall
                if left < tot[b, O_STOCK_MIN]:
                    tot[b, O_STOCK_MIN] = left
                if shortfall > threshold * dem:
                    tot[b, O_SHORT_DAYS] += 1
                    n_short[t] += 1
                    if tot[b, O_FIRST_SHORT] < 0:
                        tot[b, O_FIRST_SHORT] = t
                hist[t, V_STOCK, bin_index(left)] += 1
                hist[t, V_FIRED, bin_index(fired)] += 1
                hist[t, V_EFFECTIVE, bin_index(eff)] += 1
                hist[t, V_SHORTFALL, bin_index(shortfall)] += 1
                sums[t, V_STOCK] += left
                sums[t, V_FIRED] += fired
                sums[t, V_EFFECTIVE] += eff
                sums[t, V_SHORTFALL] += shortfall
                g = run0 + r
                if g < n_sample:
                    sample_stock[g, t] = left
                    sample_fired[g, t] = fired

        # ---- per-run outputs
        for b in range(nb):
            r = blk + b
            final = 0
            for s in range(NS):
                ps[b, s, P_FINAL] = stock[b, s]
                final += stock[b, s]
                for k in range(N_PER_SOURCE):
                    per_source[r, s, k] = ps[b, s, k]
            tot[b, O_STOCK_FINAL] = final
            if T == 0:
                tot[b, O_STOCK_MIN] = final
            for k in range(N_TOTALS):
                totals[r, k] = tot[b, k]


@numba.njit(parallel=True, cache=True, error_model="numpy")
def simulate(
    run0, key, T, params, base_col, dcv_col, kinds, roles,
    ship_code, ship_par, ship_dv, ship_dc, transit_code, transit_par, tr_dv, tr_dc,
    issue, order, threshold, n_sample, n_chunks,
    totals, per_source, hist, sums, n_short, sample_stock, sample_fired,
):
    """Simulate runs ``run0 .. run0 + len(params) - 1``.

    Per-run outputs are written to ``totals`` (runs x N_TOTALS) and ``per_source`` (runs x
    sources x N_PER_SOURCE). Per-day statistics are *added* to the per-chunk accumulators
    ``hist`` (chunks x T x N_DAILY x bins), ``sums`` (chunks x T x N_DAILY) and ``n_short``
    (chunks x T), so a caller may feed several batches into them. Runs with global index below
    ``n_sample`` have their stock and fired trajectories written to ``sample_*``.
    """
    R = params.shape[0]
    for c in numba.prange(n_chunks):
        lo = (c * R) // n_chunks
        hi = ((c + 1) * R) // n_chunks
        _simulate_chunk(
            lo, hi, run0, key, T, params, base_col, dcv_col, kinds, roles,
            ship_code, ship_par, ship_dv, ship_dc, transit_code, transit_par, tr_dv, tr_dc,
            issue, order, threshold, n_sample,
            totals, per_source, hist[c], sums[c], n_short[c], sample_stock, sample_fired,
        )
