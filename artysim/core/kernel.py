"""The numba core: arrays in, preallocated arrays out; no checks, no I/O.

``simulate(m, inp, out, daily, n_chunks)`` takes the named tuples of ``contract``: the scenario's
tables (``KernelModel``), a batch (``BatchInputs``), its per-run outputs (``RunOutputs``) and the
per-thread per-day accumulators (``DailyAccumulators``).

Runs are split into contiguous chunks (one per thread); a chunk steps a small block of runs
together, day by day, so that each day's histogram rows stay in cache. State is per block
(block x sources, and block x days for goods in transit), never runs x days, grouped in a
``BlockState`` allocated once per chunk. Every run draws from its own stream (see ``rng``; stream
indices and schedule rows come from ``layout``), and all per-day statistics are integer counts or
sums, so results are identical whatever the thread count, chunking or batch boundaries.

A block's runs are set up (``_setup_runs``, ``_setup_regimes``, ``_setup_sources``), then each day
runs the phases ``_schedule_changes``, ``_arrivals`` (``_produce`` with ``_disruptions``; ``_ship``
with ``_dispatch`` and ``_receive``; ``_refurbish``), ``_losses``, ``_regime_step``, ``_demand``,
``_issue``, ``_effect`` and ``_account``, and ``_write_outputs`` ends the block. The phases are
inlined by numba (``inline="always"``), so the compiled loop is the single function it was; each
helper's docstring names the state it writes.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numba
import numpy as np

from artysim.core import layout
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
    SCHED_DEMAND,
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
def _draw(m, S, G, b, row) -> float:
    """One draw of row ``row`` of the coded-distribution table of ``m`` (a KernelModel)."""
    return sample_coded(S, G, b, m.dcode[row], m.dpar[row], m.ddv[row], m.ddc[row])


@numba.njit(cache=True, error_model="numpy", inline="always")
def _add_rounds(stock, q, lq, s, b, a, dud_mass) -> None:
    """Put ``a`` rounds carrying ``dud_mass`` expected duds into stock s of run b: the stock keeps
    the round-weighted mean dud probability of what it holds."""
    held = stock[s, b]
    q[s, b] = (held * q[s, b] + dud_mass) / (held + a)
    lq[s, b] = logit(q[s, b])
    stock[s, b] = held + a



# ---- stream indices and schedule rows, from layout (compiled in, never spelled out here)
_stream_demand = numba.njit(inline="always", cache=True)(layout.stream_demand)
_stream_arrivals = numba.njit(inline="always", cache=True)(layout.stream_arrivals)
_stream_effect = numba.njit(inline="always", cache=True)(layout.stream_effect)
_stream_events = numba.njit(inline="always", cache=True)(layout.stream_events)
_stream_regime = numba.njit(inline="always", cache=True)(layout.stream_regime)
_stream_strikes = numba.njit(inline="always", cache=True)(layout.stream_strikes)
_n_streams = numba.njit(inline="always", cache=True)(layout.n_streams)
_sched_rate = numba.njit(inline="always", cache=True)(layout.sched_rate)
_sched_size = numba.njit(inline="always", cache=True)(layout.sched_size)


# ---- the state of a block of B = BLOCK runs, allocated once per chunk and reset per block.
# Arrays are source-major (x[s, b]) so that every phase is a simple loop over the block's runs.
#: Which mechanisms the scenario uses (a mechanism not used costs one test per day and block).
Mechanisms = namedtuple("Mechanisms", [
    "has_acc", "has_legacy", "has_dis", "has_reject", "has_rework",  # bool (NS,)
    "any_rework", "any_dis", "has_ration", "has_strikes", "has_regimes",  # bool
    "use",  # bool (NK,): streams the scenario draws from (the others are not seeded)
])
#: Random streams and scratch: SS (NK, 4, B) stream states; G (B,) each run's spare normal; noise (B,)
#: a day's lognormal factors; work (3, B), rest (B,) sampler scratch; duds, hits, misses (B,) int64.
Scratch = namedtuple("Scratch", ["SS", "G", "noise", "work", "rest", "duds", "hits", "misses", "bins"])
#: Stocks (NS, B): stock (int64), q its mean dud probability and lq = logit(q), sq the run's dud rate,
#: acc accuracy and lacc = logit(acc); ps (NS, N_PER_SOURCE, B) per-source totals; fs (NS, B) the
#: day's issue by source.
Stocks = namedtuple("Stocks", ["stock", "q", "lq", "sq", "acc", "lacc", "ps", "fs"])
#: Production (NS, B): rate0 rounds/day at day 0 and slope per day; smu, ssig the daily lognormal
#: noise; dlam, edlam disruption events/day and exp(-dlam); dis_end, dis_f (NS, B, KD or 1): the end day
#: and output factor of each disruption slot.
Plants = namedtuple("Plants", ["rate0", "slope", "smu", "ssig", "dlam", "edlam", "dis_end", "dis_f"])
#: Imports (NS, B): start day, lam shipments/day and exp(-lam), remaining supply, lotc lot
#: concentration; pend, pend_dm (NS, B, ring): rounds (int64) and dud mass arriving on each ring day;
#: reject fraction, rdays rework days, ryield rework yield; rew, rew_dm (NS, B, ring or 1): rounds
#: back from rework on each ring day.
Imports = namedtuple("Imports", ["start", "lam", "elam", "remaining", "lotc", "pend", "pend_dm",
                                 "reject", "rdays", "ryield", "rew", "rew_dm"])
#: Legacy refurbishment of stockpiles (NS, B): rounds left, throughput/day, dud rate.
Refurb = namedtuple("Refurb", ["left", "rate", "q"])
#: Fire (B,): dbase base demand/day, dmult the regime multiplier, dmu, dsig its lognormal noise; dem,
#: avail, fired, eff (int64) the day's demand, stock before issue, rounds fired and effective; rres,
#: rfrac the ration reserve (days of base fire) and fraction; klam, eklam depot strikes/day and
#: exp(-klam); tot (N_TOTALS, B) per-run totals.
Fire = namedtuple("Fire", ["dbase", "dmult", "dmu", "dsig", "dem", "avail", "fired", "eff",
                           "rres", "rfrac", "klam", "eklam", "tot"])
#: Regime chain (NR or 1, B): rmult demand multiplier, rleave daily leaving probability; reg (B,) the
#: current regime; preg (NR or 1, N_PER_REGIME, B) per-regime totals.
Regimes = namedtuple("Regimes", ["rmult", "rleave", "reg", "preg"])
BlockState = namedtuple("BlockState", ["mech", "x", "src", "plant", "imp", "refurb", "fire", "regs"])


@numba.njit(cache=True, error_model="numpy")
def _allocate(m):
    """The block state of scenario ``m`` (a KernelModel), sized for one block; optional mechanisms'
    state has size 1 when unused. Allocated once per chunk: memory per thread does not grow with runs."""
    NS = m.kinds.shape[0]
    NR = m.reg_mult.shape[0]
    NK = _n_streams(NS)
    B = BLOCK
    L = m.ring
    roles = m.roles
    has_acc = np.zeros(NS, dtype=np.bool_)
    has_legacy = np.zeros(NS, dtype=np.bool_)
    has_dis = np.zeros(NS, dtype=np.bool_)
    has_reject = np.zeros(NS, dtype=np.bool_)
    has_rework = np.zeros(NS, dtype=np.bool_)
    any_rework = False
    any_dis = False
    for s in range(NS):
        has_acc[s] = roles[s, R_ACCURACY] >= 0
        has_legacy[s] = roles[s, R_LEGACY] >= 0
        has_dis[s] = roles[s, R_DIS_RATE] >= 0
        has_reject[s] = roles[s, R_REJECT] >= 0
        has_rework[s] = roles[s, R_REWORK_DAYS] >= 0
        any_rework = any_rework or has_rework[s]
        any_dis = any_dis or has_dis[s]
    has_strikes = m.groles[GR_STRIKE_RATE] >= 0
    has_regimes = NR > 0
    use = np.zeros(NK, dtype=np.bool_)
    use[_stream_demand()] = True
    for s in range(NS):
        use[_stream_arrivals(s)] = m.kinds[s] != KIND_STOCKPILE
        use[_stream_effect(s, NS)] = True
        use[_stream_events(s, NS)] = has_legacy[s] or has_dis[s] or has_reject[s]
    use[_stream_regime(NS)] = has_regimes
    use[_stream_strikes(NS)] = has_strikes
    mech = Mechanisms(has_acc, has_legacy, has_dis, has_reject, has_rework, any_rework, any_dis,
                      m.groles[GR_RESERVE] >= 0, has_strikes, has_regimes, use)
    x = Scratch(np.empty((NK, 4, B), dtype=np.uint64), np.empty(B), np.ones(B), np.zeros((3, B)),
                np.zeros(B, dtype=np.int64), np.zeros(B, dtype=np.int64), np.zeros(B, dtype=np.int64),
                np.zeros(B, dtype=np.int64), np.zeros((4, B), dtype=np.int64))
    src = Stocks(np.zeros((NS, B), dtype=np.int64), np.zeros((NS, B)), np.zeros((NS, B)), np.zeros((NS, B)),
                 np.ones((NS, B)), np.zeros((NS, B)), np.zeros((NS, N_PER_SOURCE, B), dtype=np.int64),
                 np.zeros((NS, B), dtype=np.int64))
    KDU = KD if any_dis else 1
    plant = Plants(np.zeros((NS, B)), np.zeros((NS, B)), np.zeros((NS, B)), np.zeros((NS, B)),
                   np.zeros((NS, B)), np.zeros((NS, B)), np.zeros((NS, B, KDU), dtype=np.int64),
                   np.ones((NS, B, KDU)))
    LW = L if any_rework else 1
    imp = Imports(np.zeros((NS, B), dtype=np.int64), np.zeros((NS, B)), np.zeros((NS, B)), np.zeros((NS, B)),
                  np.zeros((NS, B)), np.zeros((NS, B, L), dtype=np.int64), np.zeros((NS, B, L)),
                  np.zeros((NS, B)), np.zeros((NS, B), dtype=np.int64), np.zeros((NS, B)),
                  np.zeros((NS, B, LW), dtype=np.int64), np.zeros((NS, B, LW)))
    refurb = Refurb(np.zeros((NS, B), dtype=np.int64), np.zeros((NS, B)), np.zeros((NS, B)))
    fire = Fire(np.zeros(B), np.ones(B), np.zeros(B), np.zeros(B), np.zeros(B, dtype=np.int64),
                np.zeros(B, dtype=np.int64), np.zeros(B, dtype=np.int64), np.zeros(B, dtype=np.int64),
                np.zeros(B), np.zeros(B), np.zeros(B), np.zeros(B), np.zeros((N_TOTALS, B), dtype=np.int64))
    NRB = NR if has_regimes else 1
    regs = Regimes(np.ones((NRB, B)), np.zeros((NRB, B)), np.zeros(B, dtype=np.int64),
                   np.zeros((NRB, N_PER_REGIME, B), dtype=np.int64))
    return BlockState(mech, x, src, plant, imp, refurb, fire, regs)


# ---- per-run set-up of a block
@numba.njit(cache=True, error_model="numpy", inline="always")
def _setup_runs(m, inp, st, blk, nb):
    """Seed the streams of runs ``blk .. blk + nb - 1`` and set their demand, ration and strike
    parameters. Writes x.SS (NK, 4, B), x.G, fire.dbase, dsig, dmu, rres, rfrac, klam, eklam and resets
    fire.tot (N_TOTALS, B)."""
    NK = st.x.SS.shape[0]
    f = st.fire
    params = inp.params
    dcol = m.sched_cols[SCHED_DEMAND, m.sched_piece[SCHED_DEMAND, 0]]
    for b in range(nb):
        r = blk + b
        for k in range(NK):
            if st.mech.use[k]:
                seed_stream(st.x.SS[k], b, inp.keys[k], np.uint64(inp.run0 + r))
        st.x.G[b] = np.nan
        f.dbase[b] = params[r, dcol]
        cv = params[r, m.groles[GR_DCV]]
        f.dsig[b] = math.sqrt(math.log1p(cv * cv))
        f.dmu[b] = -0.5 * f.dsig[b] * f.dsig[b]
        for k in range(N_TOTALS):
            f.tot[k, b] = 0
        f.tot[O_FIRST_SHORT, b] = -1
        f.tot[O_STOCK_MIN, b] = np.iinfo(np.int64).max
        if st.mech.has_ration:
            f.rres[b] = params[r, m.groles[GR_RESERVE]]
            f.rfrac[b] = params[r, m.groles[GR_RATION]]
        if st.mech.has_strikes:
            f.klam[b] = params[r, m.groles[GR_STRIKE_RATE]] / DAYS_PER_YEAR
            f.eklam[b] = math.exp(-f.klam[b])


@numba.njit(cache=True, error_model="numpy", inline="always")
def _setup_regimes(m, inp, st, blk, nb):
    """Each run's regime multipliers and leaving rates, and its first regime (fixed, or drawn from the
    time-stationary law on the regime stream). Writes regs.rmult, rleave (NR, B), reg (B,), preg
    (NR, N_PER_REGIME, B)."""
    NR = m.reg_mult.shape[0]
    NS = m.kinds.shape[0]
    g = st.regs
    params = inp.params
    SR = st.x.SS[_stream_regime(NS)]
    for b in range(nb):
        r = blk + b
        wsum = 0.0
        for i in range(NR):
            g.rmult[i, b] = params[r, m.reg_mult[i]]
            md = params[r, m.reg_days[i]]
            g.rleave[i, b] = 1.0 / md if NR > 1 else 0.0
            wsum += m.reg_pi[i] * md
            g.preg[i, Q_DAYS, b] = 0
            g.preg[i, Q_ENTRIES, b] = 0
        i0 = m.groles[GR_REGIME_INIT]
        if i0 < 0:  # the time-stationary law: embedded-chain weights times mean stays
            u = uniform(SR, b) * wsum
            i0 = NR - 1
            c = 0.0
            for i in range(NR):
                c += m.reg_pi[i] * params[r, m.reg_days[i]]
                if u < c:
                    i0 = i
                    break
        g.reg[b] = i0
        g.preg[i0, Q_ENTRIES, b] = 1


@numba.njit(cache=True, error_model="numpy", inline="always")
def _setup_plant(m, prow, st, s, b, T):
    """Production source s of run b (parameter row ``prow``): rate at day 0, ramp slope, daily noise,
    disruption rate; clears its disruption slots. Writes plant.* [s, b]."""
    p = st.plant
    roles = m.roles
    a0 = prow[m.sched_cols[_sched_rate(s), m.sched_piece[_sched_rate(s), 0]]]
    a1 = prow[roles[s, R_ANNUAL_END]] if roles[s, R_ANNUAL_END] >= 0 else a0
    p.rate0[s, b] = a0 / DAYS_PER_YEAR
    p.slope[s, b] = (a1 - a0) / DAYS_PER_YEAR / T
    cvp = prow[roles[s, R_DAILY_CV]] if roles[s, R_DAILY_CV] >= 0 else 0.0
    p.ssig[s, b] = math.sqrt(math.log1p(cvp * cvp))
    p.smu[s, b] = -0.5 * p.ssig[s, b] * p.ssig[s, b]
    if st.mech.has_dis[s]:
        p.dlam[s, b] = prow[roles[s, R_DIS_RATE]] / DAYS_PER_YEAR
        p.edlam[s, b] = math.exp(-p.dlam[s, b])
        for j in range(KD):
            p.dis_end[s, b, j] = 0
            p.dis_f[s, b, j] = 1.0


@numba.njit(cache=True, error_model="numpy", inline="always")
def _setup_import(m, prow, st, s, b):
    """Import source s of run b (parameter row ``prow``): start day, shipment rate, supply, lot
    concentration, rejection and rework; empties its rings. Writes imp.* [s, b]."""
    im = st.imp
    roles = m.roles
    start = prow[roles[s, R_START]]
    im.start[s, b] = int(math.ceil(start)) if start > 0 else 0
    im.lam[s, b] = prow[m.sched_cols[_sched_rate(s), m.sched_piece[_sched_rate(s), 0]]] / DAYS_PER_MONTH
    im.elam[s, b] = math.exp(-im.lam[s, b])
    im.remaining[s, b] = math.floor(prow[roles[s, R_AVAILABLE]])
    im.lotc[s, b] = prow[roles[s, R_LOTCONC]] if roles[s, R_LOTCONC] >= 0 else 0.0
    for j in range(im.pend.shape[2]):
        im.pend[s, b, j] = 0
        im.pend_dm[s, b, j] = 0.0
    if st.mech.has_reject[s]:
        im.reject[s, b] = prow[roles[s, R_REJECT]]
    if st.mech.has_rework[s]:
        im.rdays[s, b] = int(math.floor(prow[roles[s, R_REWORK_DAYS]] + 0.5))
        im.ryield[s, b] = prow[roles[s, R_REWORK_YIELD]]
        for j in range(im.rew.shape[2]):
            im.rew[s, b, j] = 0
            im.rew_dm[s, b, j] = 0.0


@numba.njit(cache=True, error_model="numpy", inline="always")
def _setup_sources(m, inp, st, blk, nb):
    """Every source of runs ``blk .. blk + nb - 1``: dud rate, accuracy, initial stock (and legacy
    refurbishment) of stockpiles, then the kind's own parameters. Writes src.* (NS, B), src.ps
    (NS, N_PER_SOURCE, B), refurb.*, and through _setup_plant / _setup_import plant.*, imp.*."""
    NS = m.kinds.shape[0]
    T = m.horizon
    roles = m.roles
    c = st.src
    for s in range(NS):
        kd = m.kinds[s]
        for b in range(nb):
            prow = inp.params[blk + b]
            for k in range(N_PER_SOURCE):
                c.ps[s, k, b] = 0
            c.stock[s, b] = 0
            c.sq[s, b] = prow[roles[s, R_DUD]]
            c.q[s, b] = c.sq[s, b]
            c.lq[s, b] = logit(c.q[s, b])
            c.acc[s, b] = prow[roles[s, R_ACCURACY]] if roles[s, R_ACCURACY] >= 0 else 1.0
            c.lacc[s, b] = logit(c.acc[s, b])
            if kd == KIND_STOCKPILE:
                init = int(round(prow[roles[s, R_INITIAL]]))
                c.stock[s, b] = init
                c.ps[s, P_INITIAL, b] = init
                if st.mech.has_legacy[s]:
                    st.refurb.left[s, b] = int(math.floor(prow[roles[s, R_LEGACY]] * prow[roles[s, R_SERVICEABLE]]))
                    st.refurb.rate[s, b] = prow[roles[s, R_REFURB_RATE]]
                    st.refurb.q[s, b] = prow[roles[s, R_REFURB_DUD]]
            elif kd == KIND_PRODUCTION:
                _setup_plant(m, prow, st, s, b, T)
            elif kd == KIND_IMPORT:
                _setup_import(m, prow, st, s, b)


# ---- the phases of a day, all runs of the block in step
@numba.njit(cache=True, error_model="numpy", inline="always")
def _schedule_changes(m, inp, st, blk, nb, t):
    """On a day a scheduled rate starts a new piece, set today's base demand, production rates and
    shipment rates from the new pieces' parameters. Writes fire.dbase (B,), plant.rate0, imp.lam, elam
    (NS, B)."""
    if t == 0 or not m.sched_change[t]:
        return
    NS = m.kinds.shape[0]
    params = inp.params
    col = m.sched_cols[SCHED_DEMAND, m.sched_piece[SCHED_DEMAND, t]]
    for b in range(nb):
        st.fire.dbase[b] = params[blk + b, col]
    for s in range(NS):
        col = m.sched_cols[_sched_rate(s), m.sched_piece[_sched_rate(s), t]]
        if m.kinds[s] == KIND_PRODUCTION:
            for b in range(nb):
                st.plant.rate0[s, b] = params[blk + b, col] / DAYS_PER_YEAR
        elif m.kinds[s] == KIND_IMPORT:
            for b in range(nb):
                st.imp.lam[s, b] = params[blk + b, col] / DAYS_PER_MONTH
                st.imp.elam[s, b] = math.exp(-st.imp.lam[s, b])


@numba.njit(cache=True, error_model="numpy", inline="always")
def _disruptions(m, st, s, b, t, SE):
    """Today's disruption events of plant s in run b (events stream SE): each cuts output by a
    drawn fraction for a drawn number of days, in one of KD slots (more merge into the slot ending
    soonest). Returns today's output factor, the product of the active cuts. Writes plant.dis_end,
    dis_f [s, b, :] and src.ps[s, P_DISRUPTIONS, b]."""
    p = st.plant
    G = st.x.G
    n = _events(SE, b, p.dlam[s, b], p.edlam[s, b])
    for _ in range(n):
        c = min(max(_draw(m, SE, G, b, m.erows[s, E_CUT]), 0.0), 1.0)
        d = math.floor(_draw(m, SE, G, b, m.erows[s, E_DIS_DAYS]) + 0.5)
        st.src.ps[s, P_DISRUPTIONS, b] += 1
        if d < 1.0:
            continue
        end = t + int(min(d, 1e9))
        jmin = 0
        for j in range(KD):
            if p.dis_end[s, b, j] < p.dis_end[s, b, jmin]:
                jmin = j
        if p.dis_end[s, b, jmin] <= t:
            p.dis_end[s, b, jmin] = end
            p.dis_f[s, b, jmin] = 1.0 - c
        else:  # every slot busy: merge into the one ending soonest
            p.dis_end[s, b, jmin] = max(p.dis_end[s, b, jmin], end)
            p.dis_f[s, b, jmin] *= 1.0 - c
    f = 1.0
    for j in range(KD):
        if p.dis_end[s, b, j] > t:
            f *= p.dis_f[s, b, j]
    return f


@numba.njit(cache=True, error_model="numpy", inline="always")
def _produce(m, st, s, nb, t):
    """Production source s: output (rate0 + slope t) times lognormal noise (arrivals stream) times the
    disruptions' factor, rounded stochastically. Writes src.stock, ps[s, P_RECEIVED]; every lot of a
    plant has the run's dud rate, so q is unchanged. Uses x.noise, x.work as scratch."""
    NS = m.kinds.shape[0]
    S = st.x.SS[_stream_arrivals(s)]
    SE = st.x.SS[_stream_events(s, NS)]
    p = st.plant
    noise = st.x.noise
    lognormal_noise_block(S, st.x.G, nb, p.smu[s], p.ssig[s], noise, st.x.work)
    if st.mech.has_dis[s]:
        for b in range(nb):
            noise[b] *= _disruptions(m, st, s, b, t, SE)
    for b in range(nb):
        a = _round_stochastic(S, b, (p.rate0[s, b] + p.slope[s, b] * t) * noise[b])
        st.src.stock[s, b] += a
        st.src.ps[s, P_RECEIVED, b] += a


@numba.njit(cache=True, error_model="numpy", inline="always")
def _dispatch(m, st, s, b, t, u, S, prow):
    """Import s, run b: today's shipments (Poisson by inversion of the day's uniform ``u``, or by
    the exact sampler from 10 a day), each of a drawn size (coded row ``prow``, capped by what remains),
    transit time and, with a lot concentration, a beta-drawn dud rate; shipments arriving within the
    horizon go into the transit ring. Writes imp.remaining, pend, pend_dm and src.ps[s, P_DISPATCHED]."""
    im = st.imp
    G = st.x.G
    T = m.horizon
    L = im.pend.shape[2]
    if im.lam[s, b] < 10.0:
        n = poisson_inverse(u, im.lam[s, b], im.elam[s, b])
    else:
        n = poisson_known(S, b, im.lam[s, b], im.elam[s, b])
    for _ in range(n):
        if im.remaining[s, b] <= 0.0:
            break
        size = math.floor(_draw(m, S, G, b, prow) + 0.5)
        size = min(max(size, 0.0), im.remaining[s, b])
        im.remaining[s, b] -= size
        tr = math.floor(_draw(m, S, G, b, m.erows[s, E_TRANSIT]) + 0.5)
        tr = max(tr, 0.0)
        qm = st.src.sq[s, b]
        if im.lotc[s, b] > 0.0 and 0.0 < qm < 1.0:
            qm = beta(S, G, b, qm * im.lotc[s, b], (1.0 - qm) * im.lotc[s, b])
        isize = int(size)
        st.src.ps[s, P_DISPATCHED, b] += isize
        if t + tr < T:
            j = (t + int(tr)) % L
            im.pend[s, b, j] += isize
            im.pend_dm[s, b, j] += size * qm


@numba.njit(cache=True, error_model="numpy", inline="always")
def _receive(m, st, s, b, t, slot, SE):
    """Import s, run b: the rounds due today (ring slot ``slot``); with rejection on receipt a
    binomial share (events stream SE) is unusable and, with rework, a binomial share of that comes
    back ``rdays`` later; today's returns from rework are added. Writes src.stock, q, lq (through
    _add_rounds), ps[s, P_RECEIVED / P_REJECTED / P_REWORKED], and empties imp.pend, rew at the slot."""
    im = st.imp
    T = m.horizon
    LW = im.rew.shape[2]
    has_rework = st.mech.has_rework[s]
    ps = st.src.ps
    a = im.pend[s, b, slot]
    dm = im.pend_dm[s, b, slot]
    if a > 0 and st.mech.has_reject[s]:  # unusable on arrival; some come back from rework
        rej = binomial(SE, b, a, im.reject[s, b])
        if rej > 0:
            ps[s, P_REJECTED, b] += rej
            if has_rework:
                back = binomial(SE, b, rej, im.ryield[s, b])
                if back > 0 and t + im.rdays[s, b] < T:
                    j = (t + im.rdays[s, b]) % LW
                    im.rew[s, b, j] += back
                    im.rew_dm[s, b, j] += back * (dm / a)
            dm = dm * ((a - rej) / a)
            a -= rej
    if has_rework:
        back = im.rew[s, b, slot % LW]
        if back > 0:
            a += back
            dm += im.rew_dm[s, b, slot % LW]
            ps[s, P_REWORKED, b] += back
            im.rew[s, b, slot % LW] = 0
            im.rew_dm[s, b, slot % LW] = 0.0
    if a > 0:
        _add_rounds(st.src.stock, st.src.q, st.src.lq, s, b, a, dm)
        ps[s, P_RECEIVED, b] += a
    im.pend[s, b, slot] = 0
    im.pend_dm[s, b, slot] = 0.0


@numba.njit(cache=True, error_model="numpy", inline="always")
def _ship(m, st, s, nb, t):
    """Import source s: every run draws the uniform of its day's dispatch count first (so the draw
    vectorises), then each run dispatches (from its start day, while supply remains) and receives.
    Uses x.work[0] as scratch; see _dispatch and _receive for what is written."""
    NS = m.kinds.shape[0]
    S = st.x.SS[_stream_arrivals(s)]
    SE = st.x.SS[_stream_events(s, NS)]
    u = st.x.work[0]
    im = st.imp
    for b in range(nb):
        u[b] = uniform(S, b)
    prow = m.sched_cols[_sched_size(s, NS), m.sched_piece[_sched_size(s, NS), t]]
    slot = t % im.pend.shape[2]
    for b in range(nb):
        if t >= im.start[s, b] and im.remaining[s, b] > 0.0:
            _dispatch(m, st, s, b, t, u[b], S, prow)
        _receive(m, st, s, b, t, slot, SE)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _refurbish(m, st, s, nb):
    """Stockpile s with legacy rounds: refurbish at its throughput (stochastically rounded, events
    stream) while legacy rounds are left, adding them with their dud rate. Writes refurb.left, src.stock,
    q, lq and ps[s, P_REFURBISHED]."""
    SE = st.x.SS[_stream_events(s, m.kinds.shape[0])]
    rf = st.refurb
    for b in range(nb):
        if rf.left[s, b] > 0:
            a = min(rf.left[s, b], _round_stochastic(SE, b, rf.rate[s, b]))
            if a > 0:
                _add_rounds(st.src.stock, st.src.q, st.src.lq, s, b, a, a * rf.q[s, b])
                rf.left[s, b] -= a
                st.src.ps[s, P_REFURBISHED, b] += a


@numba.njit(cache=True, error_model="numpy", inline="always")
def _arrivals(m, st, nb, t):
    """Phase 1: rounds arriving today at every source, in source order: production, imports
    (dispatch, transit, rejection and rework), and refurbished legacy rounds of stockpiles."""
    for s in range(m.kinds.shape[0]):
        kd = m.kinds[s]
        if kd == KIND_PRODUCTION:
            _produce(m, st, s, nb, t)
        elif kd == KIND_IMPORT:
            _ship(m, st, s, nb, t)
        elif st.mech.has_legacy[s]:
            _refurbish(m, st, s, nb)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _losses(m, st, nb):
    """Phase 2: depot strikes (strike stream); each destroys a drawn fraction of every stock, rounded
    stochastically with one uniform per stock, even empty, so that draws stay aligned. Writes src.stock,
    ps[:, P_LOST] and fire.tot[O_STRIKES]."""
    if not st.mech.has_strikes:
        return
    NS = m.kinds.shape[0]
    SK = st.x.SS[_stream_strikes(NS)]
    krow = m.groles[GR_STRIKE_ROW]
    stock = st.src.stock
    f = st.fire
    for b in range(nb):
        n = _events(SK, b, f.klam[b], f.eklam[b])
        f.tot[O_STRIKES, b] += n
        for _ in range(n):
            frac = _draw(m, SK, st.x.G, b, krow)
            frac = min(max(frac, 0.0), 1.0)
            for s in range(NS):
                loss = min(int(math.floor(stock[s, b] * frac + uniform(SK, b))), stock[s, b])
                stock[s, b] -= loss
                st.src.ps[s, P_LOST, b] += loss


@numba.njit(cache=True, error_model="numpy", inline="always")
def _regime_step(m, st, nb, t):
    """Phase 3a: the regime chain (regime stream): after day 0 each run leaves its regime with
    probability rleave (geometric stays) for one drawn from the jump chain; counts days and entries.
    Writes regs.reg (B,), preg and fire.dmult (B,)."""
    if not st.mech.has_regimes:
        return
    NR = m.reg_mult.shape[0]
    g = st.regs
    SR = st.x.SS[_stream_regime(m.kinds.shape[0])]
    for b in range(nb):
        i = g.reg[b]
        if t > 0 and uniform(SR, b) < g.rleave[i, b]:
            u = uniform(SR, b)
            j = NR - 1
            for k in range(NR):
                if u < m.reg_cum[i, k]:
                    j = k
                    break
            i = j
            g.reg[b] = i
            g.preg[i, Q_ENTRIES, b] += 1
        g.preg[i, Q_DAYS, b] += 1
        st.fire.dmult[b] = g.rmult[i, b]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _demand(st, nb):
    """Phase 3b: today's demand, base times regime multiplier times lognormal noise (demand stream),
    rounded stochastically. Writes fire.dem (B,); x.noise, x.work scratch."""
    SD = st.x.SS[_stream_demand()]
    f = st.fire
    noise = st.x.noise
    lognormal_noise_block(SD, st.x.G, nb, f.dmu, f.dsig, noise, st.x.work)
    for b in range(nb):
        f.dem[b] = _round_stochastic(SD, b, f.dbase[b] * f.dmult[b] * noise[b])


@numba.njit(cache=True, error_model="numpy", inline="always")
def _split_proportional(stock, fs, b, f_all, total):
    """Split ``f_all`` rounds of run b over the sources in proportion to their stocks by cumulative
    rounding: part s = floor(f C_s / total) - floor(f C_{s-1} / total), C_s the running stock sum; the
    parts sum to f exactly and none exceeds its stock. Writes fs[:, b] (NS, B)."""
    NS = stock.shape[0]
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


@numba.njit(cache=True, error_model="numpy", inline="always")
def _issue(m, st, nb):
    """Phase 4: rounds fired, min(demand, stock) or, under the ration policy, free down to the
    reserve and a fraction of demand at it; split over sources proportionally or in priority order.
    Writes fire.avail, fired (B,), src.fs (NS, B) and fire.tot[O_RATIONED]."""
    NS = m.kinds.shape[0]
    stock = st.src.stock
    fs = st.src.fs
    f = st.fire
    for b in range(nb):
        total = 0
        for s in range(NS):
            total += stock[s, b]
        f_all = min(f.dem[b], total)
        if st.mech.has_ration:  # free down to the reserve; at the reserve, a fraction of demand
            lim = max(math.floor(total - f.rres[b] * f.dbase[b]), math.floor(f.rfrac[b] * f.dem[b]))
            if lim < f_all:
                f_all = int(max(lim, 0.0))
                f.tot[O_RATIONED, b] += 1
        f.avail[b] = total
        f.fired[b] = f_all
        for s in range(NS):
            fs[s, b] = 0
        if f_all <= 0:
            continue
        if m.issue == ISSUE_PROPORTIONAL:
            _split_proportional(stock, fs, b, f_all, total)
        else:
            need = f_all
            for j in range(m.order.shape[0]):
                s = m.order[j]
                part = min(need, stock[s, b])
                fs[s, b] = part
                need -= part
                if need == 0:
                    break


@numba.njit(cache=True, error_model="numpy", inline="always")
def _effect(m, st, daily, tid, nb, t):
    """Phase 5: each source's fired rounds leave its stock; binomial duds at the stock's mean dud
    probability, then binomial misses among the rest (effect stream). Writes src.stock, ps[:, P_FIRED
    / P_DUDS / P_EFFECTIVE], fire.eff (B,), and adds to daily.src_sums[tid, t] (2, NS)."""
    NS = m.kinds.shape[0]
    x = st.x
    c = st.src
    eff = st.fire.eff
    hits = x.hits
    for b in range(nb):
        eff[b] = 0
    for s in range(NS):
        fsrc = c.fs[s]
        S = x.SS[_stream_effect(s, NS)]
        binomial_block(S, nb, fsrc, c.q[s], c.lq[s], x.duds, x.work, x.rest, m.logf)
        day_f = 0
        for b in range(nb):
            f = fsrc[b]
            c.stock[s, b] -= f
            c.ps[s, P_FIRED, b] += f
            c.ps[s, P_DUDS, b] += x.duds[b]
            hits[b] = f - x.duds[b]
            day_f += f
        if st.mech.has_acc[s]:
            binomial_block(S, nb, hits, c.acc[s], c.lacc[s], x.misses, x.work, x.rest, m.logf)
            for b in range(nb):
                hits[b] = x.misses[b]
        day_e = 0
        for b in range(nb):
            c.ps[s, P_EFFECTIVE, b] += hits[b]
            eff[b] += hits[b]
            day_e += hits[b]
        daily.src_sums[tid, t, 0, s] += day_f
        daily.src_sums[tid, t, 1, s] += day_e


@numba.njit(cache=True, error_model="numpy", inline="always")
def _account(m, inp, st, daily, tid, blk, nb, t):
    """Phase 6: per-run totals and the day's statistics (day sums kept in registers, written once per
    day). Writes fire.tot (N_TOTALS, B); adds to daily.hist[tid, t] (N_DAILY, NB), sums[tid, t],
    n_short[tid, t]; writes the trajectories of sampled runs (daily.sample_*[run, t])."""
    f = st.fire
    tot = f.tot
    bins = st.x.bins
    threshold = m.threshold
    sum_s = 0
    sum_f = 0
    sum_e = 0
    sum_x = 0
    shorts = 0
    for b in range(nb):  # no data-dependent branch: vectorises
        d = f.dem[b]
        fired = f.fired[b]
        shortfall = d - fired
        left = f.avail[b] - fired
        e = f.eff[b]
        tot[O_DEMAND, b] += d
        tot[O_FIRED, b] += fired
        tot[O_EFFECTIVE, b] += e
        tot[O_SHORTFALL, b] += shortfall
        tot[O_STOCK_MIN, b] = min(tot[O_STOCK_MIN, b], left)
        sh = 1 if shortfall > threshold * d else 0
        tot[O_SHORT_DAYS, b] += sh
        first = tot[O_FIRST_SHORT, b]
        tot[O_FIRST_SHORT, b] = t if (sh == 1 and first < 0) else first
        shorts += sh
        sum_s += left
        sum_f += fired
        sum_e += e
        sum_x += shortfall
        bins[0, b] = bin_index(left)
        bins[1, b] = bin_index(fired)
        bins[2, b] = bin_index(e)
        bins[3, b] = bin_index(shortfall)
    hrow_s = daily.hist[tid, t, V_STOCK]
    hrow_f = daily.hist[tid, t, V_FIRED]
    hrow_e = daily.hist[tid, t, V_EFFECTIVE]
    hrow_x = daily.hist[tid, t, V_SHORTFALL]
    for b in range(nb):
        hrow_s[bins[0, b]] += 1
        hrow_f[bins[1, b]] += 1
        hrow_e[bins[2, b]] += 1
        hrow_x[bins[3, b]] += 1
    sums = daily.sums[tid, t]
    sums[V_STOCK] += sum_s
    sums[V_FIRED] += sum_f
    sums[V_EFFECTIVE] += sum_e
    sums[V_SHORTFALL] += sum_x
    daily.n_short[tid, t] += shorts
    g0 = inp.run0 + blk
    if g0 < inp.n_sample:
        for b in range(min(nb, inp.n_sample - g0)):
            daily.sample_stock[g0 + b, t] = f.avail[b] - f.fired[b]
            daily.sample_fired[g0 + b, t] = f.fired[b]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _write_outputs(m, st, out, blk, nb):
    """Per-run outputs of the block: final stocks, totals, per-source and per-regime counts (one
    regime of T days when there is no chain). Writes out.totals[r], per_source[r], per_regime[r] for
    runs r = blk .. blk + nb - 1 of the batch."""
    NS = m.kinds.shape[0]
    NR = m.reg_mult.shape[0]
    T = m.horizon
    c = st.src
    tot = st.fire.tot
    for b in range(nb):
        r = blk + b
        final = 0
        for s in range(NS):
            c.ps[s, P_FINAL, b] = c.stock[s, b]
            final += c.stock[s, b]
            for k in range(N_PER_SOURCE):
                out.per_source[r, s, k] = c.ps[s, k, b]
        tot[O_STOCK_FINAL, b] = final
        if T == 0:
            tot[O_STOCK_MIN, b] = final
        for k in range(N_TOTALS):
            out.totals[r, k] = tot[k, b]
        if st.mech.has_regimes:
            for i in range(NR):
                for k in range(N_PER_REGIME):
                    out.per_regime[r, i, k] = st.regs.preg[i, k, b]
        else:
            out.per_regime[r, 0, Q_DAYS] = T
            out.per_regime[r, 0, Q_ENTRIES] = 1


@numba.njit(cache=True, error_model="numpy")
def _simulate_chunk(m, inp, out, daily, tid, r_lo, r_hi):
    """Runs ``r_lo .. r_hi - 1`` of the batch, a block at a time, each day in phases; thread ``tid``'s
    accumulators receive the per-day statistics."""
    st = _allocate(m)
    for blk in range(r_lo, r_hi, BLOCK):
        nb = min(BLOCK, r_hi - blk)
        _setup_runs(m, inp, st, blk, nb)
        if st.mech.has_regimes:
            _setup_regimes(m, inp, st, blk, nb)
        _setup_sources(m, inp, st, blk, nb)
        for t in range(m.horizon):
            _schedule_changes(m, inp, st, blk, nb, t)
            _arrivals(m, st, nb, t)
            _losses(m, st, nb)
            _regime_step(m, st, nb, t)
            _demand(st, nb)
            _issue(m, st, nb)
            _effect(m, st, daily, tid, nb, t)
            _account(m, inp, st, daily, tid, blk, nb, t)
        _write_outputs(m, st, out, blk, nb)


@numba.njit(parallel=True, cache=True, error_model="numpy", nogil=True)
def simulate(m, inp, out, daily, n_chunks):
    """Simulate runs ``inp.run0 .. inp.run0 + R - 1`` of scenario ``m`` (see ``contract``: m a
    KernelModel, inp BatchInputs, out RunOutputs, daily DailyAccumulators).

    Per-run outputs are written to ``out``. Per-day statistics are *added* to the per-thread
    accumulators of ``daily``, so a caller may feed several batches into them; being integer sums,
    they do not depend on which thread ran which of the ``n_chunks`` chunks. Runs with global index
    below ``inp.n_sample`` have their stock and fired trajectories written to ``daily.sample_*``.
    """
    R = inp.params.shape[0]
    for c in numba.prange(n_chunks):
        tid = numba.get_thread_id()  # per-thread accumulators: chunks may go to any free thread
        lo = (c * R) // n_chunks
        hi = ((c + 1) * R) // n_chunks
        _simulate_chunk(m, inp, out, daily, tid, lo, hi)
