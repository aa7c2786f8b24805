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

from artysim.core.histogram import bin_index
from artysim.core.layout import (
    BLOCK,
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    E_CUT,
    E_DIS_DAYS,
    E_TRANSIT,
    GR_DCV,
    GR_RATION,
    GR_REGIME_INIT,
    GR_RESERVE,
    GR_STRIKE_RATE,
    GR_STRIKE_ROW,
    ISSUE_PROPORTIONAL,
    KD,
    KIND_IMPORT,
    KIND_PRODUCTION,
    KIND_STOCKPILE,
    N_PER_REGIME,
    N_PER_SOURCE,
    N_TOTALS,
    O_DEMAND,
    O_EFFECTIVE,
    O_FIRED,
    O_FIRST_SHORT,
    O_RATIONED,
    O_SHORT_DAYS,
    O_SHORTFALL,
    O_STOCK_FINAL,
    O_STOCK_MIN,
    O_STRIKES,
    P_DISPATCHED,
    P_DISRUPTIONS,
    P_DUDS,
    P_EFFECTIVE,
    P_FINAL,
    P_FIRED,
    P_INITIAL,
    P_LOST,
    P_RECEIVED,
    P_REFURBISHED,
    P_REJECTED,
    P_REWORKED,
    Q_DAYS,
    Q_ENTRIES,
    R_ACCURACY,
    R_ANNUAL_END,
    R_AVAILABLE,
    R_DAILY_CV,
    R_DIS_RATE,
    R_DUD,
    R_INITIAL,
    R_LEGACY,
    R_LOTCONC,
    R_REFURB_DUD,
    R_REFURB_RATE,
    R_REJECT,
    R_REWORK_DAYS,
    R_REWORK_YIELD,
    R_SERVICEABLE,
    R_START,
    V_EFFECTIVE,
    V_FIRED,
    V_SHORTFALL,
    V_STOCK,
)
from artysim.core.rng import (
    beta,
    binomial,
    binomial_block,
    logit,
    lognormal_noise_block,
    poisson_inverse,
    poisson_known,
    sample_coded,
    seed_stream,
    uniform,
)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _round_stochastic(S: np.ndarray, b: int, x: float) -> int:
    """Whole rounds with the right mean: floor(x + U)."""
    if x <= 0.0:
        return 0
    return int(math.floor(x + uniform(S, b)))


@numba.njit(cache=True, error_model="numpy", inline="always")
def _events(S: np.ndarray, b: int, lam: float, elam: float) -> int:
    """Number of Poisson(lam) events of a day."""
    if lam <= 0.0:
        return 0
    if lam < 10.0:
        return poisson_inverse(uniform(S, b), lam, elam)
    return poisson_known(S, b, lam, elam)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _draw(S, G, b, row, dcode, dpar, ddv, ddc) -> float:
    """One draw of row ``row`` of the coded-distribution table."""
    return sample_coded(S, G, b, dcode[row], dpar[row], ddv[row], ddc[row])


@numba.njit(cache=True, error_model="numpy", inline="always")
def _add_rounds(stock, q, lq, s, b, a, dud_mass) -> None:
    """Put ``a`` rounds carrying ``dud_mass`` expected duds into stock s of run b: the stock keeps
    the round-weighted mean dud probability of what it holds."""
    held = stock[s, b]
    q[s, b] = (held * q[s, b] + dud_mass) / (held + a)
    lq[s, b] = logit(q[s, b])
    stock[s, b] = held + a


@numba.njit(cache=True, error_model="numpy")
def _simulate_chunk(
    r_lo, r_hi, run0, keys, T, params, groles, kinds, roles,
    sched_cols, sched_piece, sched_change, erows, dcode, dpar, ddv, ddc, ring, logf,
    reg_mult, reg_days, reg_cum, reg_pi,
    issue, order, threshold, n_sample,
    totals, per_source, per_regime, hist, sums, src_sums, n_short, sample_stock, sample_fired,
):
    """Runs ``r_lo .. r_hi - 1`` of the batch, a block at a time, each day in phases.

    State arrays are source-major (``x[s, b]``) so that every phase is a simple loop over the
    runs of the block; imports keep goods in transit (and in rework) in rings of ``ring`` days.
    Mechanisms a scenario does not use cost one test per day and block.
    """
    NS = kinds.shape[0]
    NR = reg_mult.shape[0]
    NK = 3 + 3 * NS
    B = BLOCK
    L = ring
    KR = 1 + 3 * NS  # regime stream
    KS = 2 + 3 * NS  # strike stream
    SS = np.empty((NK, 4, B), dtype=np.uint64)
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
    dmult = np.ones(B)
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
    has_legacy = np.zeros(NS, dtype=np.bool_)
    has_dis = np.zeros(NS, dtype=np.bool_)
    has_reject = np.zeros(NS, dtype=np.bool_)
    has_rework = np.zeros(NS, dtype=np.bool_)
    any_rework = False
    for s in range(NS):
        has_acc[s] = roles[s, R_ACCURACY] >= 0
        has_legacy[s] = roles[s, R_LEGACY] >= 0
        has_dis[s] = roles[s, R_DIS_RATE] >= 0
        has_reject[s] = roles[s, R_REJECT] >= 0
        has_rework[s] = roles[s, R_REWORK_DAYS] >= 0
        any_rework = any_rework or has_rework[s]
    # optional mechanisms: state of size 1 when unused
    LW = L if any_rework else 1
    rew = np.zeros((NS, B, LW), dtype=np.int64)
    rew_dm = np.zeros((NS, B, LW))
    rdays = np.zeros((NS, B), dtype=np.int64)
    ryield = np.zeros((NS, B))
    reject = np.zeros((NS, B))
    legacy_left = np.zeros((NS, B), dtype=np.int64)
    rrate = np.zeros((NS, B))
    rq = np.zeros((NS, B))
    dlam = np.zeros((NS, B))
    edlam = np.zeros((NS, B))
    any_dis = False
    for s in range(NS):
        any_dis = any_dis or has_dis[s]
    dis_end = np.zeros((NS, B, KD if any_dis else 1), dtype=np.int64)
    dis_f = np.ones((NS, B, KD if any_dis else 1))
    has_ration = groles[GR_RESERVE] >= 0
    rres = np.zeros(B)
    rfrac = np.zeros(B)
    has_strikes = groles[GR_STRIKE_RATE] >= 0
    klam = np.zeros(B)
    eklam = np.zeros(B)
    krow = groles[GR_STRIKE_ROW]
    has_regimes = NR > 0
    NRB = NR if has_regimes else 1
    rmult = np.ones((NRB, B))
    rleave = np.zeros((NRB, B))
    reg = np.zeros(B, dtype=np.int64)
    preg = np.zeros((NRB, N_PER_REGIME, B), dtype=np.int64)
    use = np.zeros(NK, dtype=np.bool_)
    use[0] = True
    for s in range(NS):
        use[1 + s] = kinds[s] != KIND_STOCKPILE
        use[1 + NS + s] = True
        use[1 + 2 * NS + s] = has_legacy[s] or has_dis[s] or has_reject[s]
    use[KR] = has_regimes
    use[KS] = has_strikes
    row_base = 0

    for blk in range(r_lo, r_hi, B):
        nb = min(B, r_hi - blk)
        # ---- per-run set-up: streams and derived parameters
        for b in range(nb):
            r = blk + b
            for k in range(NK):
                if use[k]:
                    seed_stream(SS[k], b, keys[k], np.uint64(run0 + r))
            G[b] = np.nan
            dbase[b] = params[r, sched_cols[row_base, sched_piece[row_base, 0]]]
            cv = params[r, groles[GR_DCV]]
            dsig[b] = math.sqrt(math.log1p(cv * cv))
            dmu[b] = -0.5 * dsig[b] * dsig[b]
            for k in range(N_TOTALS):
                tot[k, b] = 0
            tot[O_FIRST_SHORT, b] = -1
            tot[O_STOCK_MIN, b] = np.iinfo(np.int64).max
            if has_ration:
                rres[b] = params[r, groles[GR_RESERVE]]
                rfrac[b] = params[r, groles[GR_RATION]]
            if has_strikes:
                klam[b] = params[r, groles[GR_STRIKE_RATE]] / DAYS_PER_YEAR
                eklam[b] = math.exp(-klam[b])
        if has_regimes:
            SR = SS[KR]
            for b in range(nb):
                r = blk + b
                wsum = 0.0
                for i in range(NR):
                    rmult[i, b] = params[r, reg_mult[i]]
                    md = params[r, reg_days[i]]
                    rleave[i, b] = 1.0 / md if NR > 1 else 0.0
                    wsum += reg_pi[i] * md
                    preg[i, Q_DAYS, b] = 0
                    preg[i, Q_ENTRIES, b] = 0
                i0 = groles[GR_REGIME_INIT]
                if i0 < 0:  # the time-stationary law: embedded-chain weights times mean stays
                    u = uniform(SR, b) * wsum
                    i0 = NR - 1
                    c = 0.0
                    for i in range(NR):
                        c += reg_pi[i] * params[r, reg_days[i]]
                        if u < c:
                            i0 = i
                            break
                reg[b] = i0
                preg[i0, Q_ENTRIES, b] = 1
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
                    if has_legacy[s]:
                        legacy_left[s, b] = int(math.floor(
                            params[r, roles[s, R_LEGACY]] * params[r, roles[s, R_SERVICEABLE]]))
                        rrate[s, b] = params[r, roles[s, R_REFURB_RATE]]
                        rq[s, b] = params[r, roles[s, R_REFURB_DUD]]
                elif kd == KIND_PRODUCTION:
                    a0 = params[r, sched_cols[1 + s, sched_piece[1 + s, 0]]]
                    a1 = params[r, roles[s, R_ANNUAL_END]] if roles[s, R_ANNUAL_END] >= 0 else a0
                    rate0[s, b] = a0 / DAYS_PER_YEAR
                    slope[s, b] = (a1 - a0) / DAYS_PER_YEAR / T
                    cvp = params[r, roles[s, R_DAILY_CV]] if roles[s, R_DAILY_CV] >= 0 else 0.0
                    ssig[s, b] = math.sqrt(math.log1p(cvp * cvp))
                    smu[s, b] = -0.5 * ssig[s, b] * ssig[s, b]
                    if has_dis[s]:
                        dlam[s, b] = params[r, roles[s, R_DIS_RATE]] / DAYS_PER_YEAR
                        edlam[s, b] = math.exp(-dlam[s, b])
                        for j in range(KD):
                            dis_end[s, b, j] = 0
                            dis_f[s, b, j] = 1.0
                elif kd == KIND_IMPORT:
                    st = params[r, roles[s, R_START]]
                    start[s, b] = int(math.ceil(st)) if st > 0 else 0
                    lam[s, b] = params[r, sched_cols[1 + s, sched_piece[1 + s, 0]]] / DAYS_PER_MONTH
                    elam[s, b] = math.exp(-lam[s, b])
                    remaining[s, b] = math.floor(params[r, roles[s, R_AVAILABLE]])
                    lotc[s, b] = params[r, roles[s, R_LOTCONC]] if roles[s, R_LOTCONC] >= 0 else 0.0
                    for j in range(L):
                        pend[s, b, j] = 0
                        pend_dm[s, b, j] = 0.0
                    if has_reject[s]:
                        reject[s, b] = params[r, roles[s, R_REJECT]]
                    if has_rework[s]:
                        rdays[s, b] = int(math.floor(params[r, roles[s, R_REWORK_DAYS]] + 0.5))
                        ryield[s, b] = params[r, roles[s, R_REWORK_YIELD]]
                        for j in range(LW):
                            rew[s, b, j] = 0
                            rew_dm[s, b, j] = 0.0

        # ---- the days, all runs of the block in step, one phase at a time
        for t in range(T):
            slot = t % L
            if t > 0 and sched_change[t]:  # a scheduled rate starts a new piece today
                pd = sched_piece[row_base, t]
                for b in range(nb):
                    dbase[b] = params[blk + b, sched_cols[row_base, pd]]
                for s in range(NS):
                    if kinds[s] == KIND_PRODUCTION:
                        pa = sched_piece[1 + s, t]
                        for b in range(nb):
                            rate0[s, b] = params[blk + b, sched_cols[1 + s, pa]] / DAYS_PER_YEAR
                    elif kinds[s] == KIND_IMPORT:
                        pa = sched_piece[1 + s, t]
                        for b in range(nb):
                            lam[s, b] = params[blk + b, sched_cols[1 + s, pa]] / DAYS_PER_MONTH
                            elam[s, b] = math.exp(-lam[s, b])
            # 1. arrivals
            for s in range(NS):
                kd = kinds[s]
                S = SS[s + 1]
                SE = SS[1 + 2 * NS + s]
                if kd == KIND_PRODUCTION:
                    lognormal_noise_block(S, G, nb, smu[s], ssig[s], noise, work)
                    if has_dis[s]:  # strikes on plants: output times the product of active cuts
                        for b in range(nb):
                            n = _events(SE, b, dlam[s, b], edlam[s, b])
                            for _ in range(n):
                                c = min(max(_draw(SE, G, b, erows[s, E_CUT], dcode, dpar, ddv, ddc), 0.0), 1.0)
                                d = math.floor(_draw(SE, G, b, erows[s, E_DIS_DAYS], dcode, dpar, ddv, ddc) + 0.5)
                                ps[s, P_DISRUPTIONS, b] += 1
                                if d < 1.0:
                                    continue
                                end = t + int(min(d, 1e9))
                                jmin = 0
                                for j in range(KD):
                                    if dis_end[s, b, j] < dis_end[s, b, jmin]:
                                        jmin = j
                                if dis_end[s, b, jmin] <= t:
                                    dis_end[s, b, jmin] = end
                                    dis_f[s, b, jmin] = 1.0 - c
                                else:  # every slot busy: merge into the one ending soonest
                                    dis_end[s, b, jmin] = max(dis_end[s, b, jmin], end)
                                    dis_f[s, b, jmin] *= 1.0 - c
                            f = 1.0
                            for j in range(KD):
                                if dis_end[s, b, j] > t:
                                    f *= dis_f[s, b, j]
                            noise[b] *= f
                    for b in range(nb):
                        a = _round_stochastic(S, b, (rate0[s, b] + slope[s, b] * t) * noise[b])
                        # every lot of a production source has the run's dud rate: q is unchanged
                        stock[s, b] += a
                        ps[s, P_RECEIVED, b] += a
                elif kd == KIND_IMPORT:
                    for b in range(nb):  # every run draws the uniform of its day's dispatch count (vectorises)
                        work[0, b] = uniform(S, b)
                    prow = sched_cols[1 + NS + s, sched_piece[1 + NS + s, t]]
                    trow = erows[s, E_TRANSIT]
                    for b in range(nb):
                        if t >= start[s, b] and remaining[s, b] > 0.0:
                            if lam[s, b] < 10.0:  # Poisson by inversion of that uniform
                                n = poisson_inverse(work[0, b], lam[s, b], elam[s, b])
                            else:
                                n = poisson_known(S, b, lam[s, b], elam[s, b])
                            for _ in range(n):
                                if remaining[s, b] <= 0.0:
                                    break
                                size = math.floor(_draw(S, G, b, prow, dcode, dpar, ddv, ddc) + 0.5)
                                size = min(max(size, 0.0), remaining[s, b])
                                remaining[s, b] -= size
                                tr = math.floor(_draw(S, G, b, trow, dcode, dpar, ddv, ddc) + 0.5)
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
                        dm = pend_dm[s, b, slot]
                        if a > 0 and has_reject[s]:  # unusable on arrival; some come back from rework
                            rej = binomial(SE, b, a, reject[s, b])
                            if rej > 0:
                                ps[s, P_REJECTED, b] += rej
                                if has_rework[s]:
                                    back = binomial(SE, b, rej, ryield[s, b])
                                    if back > 0 and t + rdays[s, b] < T:
                                        j = (t + rdays[s, b]) % LW
                                        rew[s, b, j] += back
                                        rew_dm[s, b, j] += back * (dm / a)
                                dm = dm * ((a - rej) / a)
                                a -= rej
                        if has_rework[s]:
                            back = rew[s, b, slot % LW]
                            if back > 0:
                                a += back
                                dm += rew_dm[s, b, slot % LW]
                                ps[s, P_REWORKED, b] += back
                                rew[s, b, slot % LW] = 0
                                rew_dm[s, b, slot % LW] = 0.0
                        if a > 0:
                            _add_rounds(stock, q, lq, s, b, a, dm)
                            ps[s, P_RECEIVED, b] += a
                        pend[s, b, slot] = 0
                        pend_dm[s, b, slot] = 0.0
                elif has_legacy[s]:  # a stockpile refurbishing legacy rounds at its throughput
                    for b in range(nb):
                        if legacy_left[s, b] > 0:
                            a = min(legacy_left[s, b], _round_stochastic(SE, b, rrate[s, b]))
                            if a > 0:
                                _add_rounds(stock, q, lq, s, b, a, a * rq[s, b])
                                legacy_left[s, b] -= a
                                ps[s, P_REFURBISHED, b] += a
            # 2. losses: each depot strike destroys a random fraction of every stock
            if has_strikes:
                SK = SS[KS]
                for b in range(nb):
                    n = _events(SK, b, klam[b], eklam[b])
                    tot[O_STRIKES, b] += n
                    for _ in range(n):
                        f = _draw(SK, G, b, krow, dcode, dpar, ddv, ddc)
                        f = min(max(f, 0.0), 1.0)
                        for s in range(NS):  # one uniform per stock, even empty: draws stay aligned
                            loss = min(int(math.floor(stock[s, b] * f + uniform(SK, b))), stock[s, b])
                            stock[s, b] -= loss
                            ps[s, P_LOST, b] += loss
            # 3. demand
            if has_regimes:
                SR = SS[KR]
                for b in range(nb):
                    i = reg[b]
                    if t > 0 and uniform(SR, b) < rleave[i, b]:  # geometric stays
                        u = uniform(SR, b)
                        j = NR - 1
                        for k in range(NR):
                            if u < reg_cum[i, k]:
                                j = k
                                break
                        i = j
                        reg[b] = i
                        preg[i, Q_ENTRIES, b] += 1
                    preg[i, Q_DAYS, b] += 1
                    dmult[b] = rmult[i, b]
            SD = SS[0]
            lognormal_noise_block(SD, G, nb, dmu, dsig, noise, work)
            for b in range(nb):
                dem[b] = _round_stochastic(SD, b, dbase[b] * dmult[b] * noise[b])
            # 4. issue
            for b in range(nb):
                total = 0
                for s in range(NS):
                    total += stock[s, b]
                f_all = min(dem[b], total)
                if has_ration:  # free down to the reserve; at the reserve, a fraction of demand
                    lim = max(math.floor(total - rres[b] * dbase[b]), math.floor(rfrac[b] * dem[b]))
                    if lim < f_all:
                        f_all = int(max(lim, 0.0))
                        tot[O_RATIONED, b] += 1
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
                day_f = 0
                for b in range(nb):
                    f = fsrc[b]
                    stock[s, b] -= f
                    ps[s, P_FIRED, b] += f
                    ps[s, P_DUDS, b] += duds[b]
                    hits[b] = f - duds[b]
                    day_f += f
                if has_acc[s]:
                    binomial_block(S, nb, hits, acc[s], lacc[s], misses, work, rest, logf)
                    for b in range(nb):
                        hits[b] = misses[b]
                day_e = 0
                for b in range(nb):
                    ps[s, P_EFFECTIVE, b] += hits[b]
                    eff[b] += hits[b]
                    day_e += hits[b]
                src_sums[t, 0, s] += day_f
                src_sums[t, 1, s] += day_e
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
            if has_regimes:
                for i in range(NR):
                    for k in range(N_PER_REGIME):
                        per_regime[r, i, k] = preg[i, k, b]
            else:
                per_regime[r, 0, Q_DAYS] = T
                per_regime[r, 0, Q_ENTRIES] = 1




@numba.njit(parallel=True, cache=True, error_model="numpy", nogil=True)
def simulate(
    run0, keys, T, params, groles, kinds, roles,
    sched_cols, sched_piece, sched_change, erows, dcode, dpar, ddv, ddc, ring, logf,
    reg_mult, reg_days, reg_cum, reg_pi,
    issue, order, threshold, n_sample, n_chunks,
    totals, per_source, per_regime, hist, sums, src_sums, n_short, sample_stock, sample_fired,
):
    """Simulate runs ``run0 .. run0 + len(params) - 1``.

    Per-run outputs are written to ``totals`` (runs x N_TOTALS), ``per_source`` (runs x
    sources x N_PER_SOURCE) and ``per_regime`` (runs x regimes x N_PER_REGIME). Per-day statistics
    are *added* to per-thread accumulators ``hist`` (threads x T x N_DAILY x bins), ``sums``
    (threads x T x N_DAILY), ``src_sums`` (threads x T x 2 x sources: fired, effective by source)
    and ``n_short`` (threads x T), so a caller may feed several batches
    into them; being integer sums, they do not depend on which thread ran which of the
    ``n_chunks`` chunks. Runs with global index below ``n_sample`` have their stock and fired
    trajectories written to ``sample_*``.
    """
    R = params.shape[0]
    for c in numba.prange(n_chunks):
        tid = numba.get_thread_id()  # per-thread accumulators: chunks may go to any free thread
        lo = (c * R) // n_chunks
        hi = ((c + 1) * R) // n_chunks
        _simulate_chunk(
            lo, hi, run0, keys, T, params, groles, kinds, roles,
            sched_cols, sched_piece, sched_change, erows, dcode, dpar, ddv, ddc, ring, logf,
            reg_mult, reg_days, reg_cum, reg_pi,
            issue, order, threshold, n_sample,
            totals, per_source, per_regime, hist[tid], sums[tid], src_sums[tid], n_short[tid], sample_stock,
            sample_fired,
        )
