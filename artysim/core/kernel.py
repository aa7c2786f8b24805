"""The numba core: arrays in, preallocated arrays out; no checks, no I/O.

``simulate_chunk(m, inp, out, daily, st, tid, r_lo, r_hi)`` takes the named tuples of ``contract``:
the scenario's tables (``KernelModel``), a batch (``BatchInputs``), its per-run outputs
(``RunOutputs``) and the per-thread per-day accumulators (``DailyAccumulators``), and the calling
thread's working state (``state.BlockState``).

The engine splits a batch into contiguous chunks and runs them on plain Python threads (the kernel
holds no GIL); a chunk steps a small block of runs together, day by day, so that each day's
histogram rows stay in cache. State is per block (block x sources, and block x days for goods in
transit), never runs x days, grouped in a ``BlockState`` allocated once per thread. Every run draws
from its own stream (see ``rng``; stream indices and schedule rows come from ``layout``), and all
per-day statistics are integer counts or sums, so results are identical whatever the thread count,
chunking or batch boundaries.

A block's runs are set up (``_setup_runs``, ``_setup_regimes``, ``_setup_sources`` with
``_setup_components``), then each day
runs the phases ``_schedule_changes``, ``_arrivals`` (``_produce`` with ``_disruptions``, or
``_assemble`` from component lines; ``_ship``
with ``_dispatch`` and ``_receive``; ``_refurbish``), ``_losses``, ``_regime_step``, ``_demand``,
``_issue``, ``_effect``, ``_account`` and ``_observe``, and ``_write_outputs`` (with
``_write_observed``) ends the block. Each shipment's draws (its size, transit time, lot's Beta dud
rate and containers) come from streams of their own, keyed by the source, the quantity and the
shipment's index (``_shipment_stream``), so a change to one quantity's distribution never shifts
another quantity's numbers. The phases are
inlined by numba (``inline="always"``), so the compiled loop is the single function it was; each
helper's docstring names the state it writes.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from artysim.core.histogram import bin_index
from artysim.core.layout import (
    BLOCK,
    C_BOUND,
    C_FINAL,
    C_INITIAL,
    C_PRODUCED,
    CR_ANNUAL_END,
    CR_DAILY_CV,
    CR_INITIAL,
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    E_CONTAINERS,
    E_CUT,
    E_DIS_DAYS,
    E_TRANSIT,
    GR_DCV,
    GR_RATION,
    GR_REFIRE,
    GR_REGIME_INIT,
    GR_RESERVE,
    GR_STRIKE_RATE,
    GR_STRIKE_ROW,
    ISSUE_PROPORTIONAL,
    K_FIXED,
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
    O_REFIRE_ASKED,
    O_SHORT_DAYS,
    O_SHORTFALL,
    O_STOCK_FINAL,
    O_STOCK_MIN,
    O_STRIKES,
    OB_MODE,
    OB_PS,
    OB_SHARE,
    OB_SRC,
    OB_T0,
    OB_T1,
    OB_TOT,
    OM_FLOW,
    OM_STOCK_END,
    OM_STOCK_SUM,
    P_CONTAINERS,
    P_DISPATCHED,
    P_DISRUPTIONS,
    P_DUDS,
    P_EFFECTIVE,
    P_FINAL,
    P_FIRED,
    P_INITIAL,
    P_LOST,
    P_RECEIVED,
    P_REFIRED,
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
    R_RPC,
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
    stream_key,
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




# ---- per-run set-up of a block
@numba.njit(cache=True, error_model="numpy", inline="always")
def _setup_runs(m, inp, st, blk, nb):
    """Seed the streams of runs ``blk .. blk + nb - 1`` and set their demand, ration and strike
    parameters. Writes x.SS (NK, 4, B), x.G, fire.dbase, dsig, dmu, rres, rfrac, klam, eklam and resets
    fire.tot (N_TOTALS, B)."""
    SS, G, use, keys, params, run0 = st.x.SS, st.x.G, st.mech.use, inp.keys, inp.params, inp.run0
    has_ration, has_strikes = st.mech.has_ration, st.mech.has_strikes
    f = st.fire
    dbase, dsig, dmu, tot, rres, rfrac, klam, eklam = f.dbase, f.dsig, f.dmu, f.tot, f.rres, f.rfrac, f.klam, f.eklam
    dcol = m.sched_cols[SCHED_DEMAND, m.sched_piece[SCHED_DEMAND, 0]]
    c_cv, c_res, c_rat, c_str = m.groles[GR_DCV], m.groles[GR_RESERVE], m.groles[GR_RATION], m.groles[GR_STRIKE_RATE]
    for b in range(nb):
        r = blk + b
        for k in range(SS.shape[0]):
            if use[k]:
                seed_stream(SS[k], b, keys[k], np.uint64(run0 + r))
        G[b] = np.nan
        dbase[b] = params[r, dcol]
        cv = params[r, c_cv]
        dsig[b] = math.sqrt(math.log1p(cv * cv))
        dmu[b] = -0.5 * dsig[b] * dsig[b]
        for k in range(N_TOTALS):
            tot[k, b] = 0
        tot[O_FIRST_SHORT, b] = -1
        tot[O_STOCK_MIN, b] = np.iinfo(np.int64).max
        if has_ration:
            rres[b] = params[r, c_res]
            rfrac[b] = params[r, c_rat]
        if has_strikes:
            klam[b] = params[r, c_str] / DAYS_PER_YEAR
            eklam[b] = math.exp(-klam[b])


@numba.njit(cache=True, error_model="numpy", inline="always")
def _setup_regimes(m, inp, st, blk, nb):
    """Each run's regime multipliers and leaving rates, and its first regime (fixed, or drawn from the
    time-stationary law on the regime stream). Writes regs.rmult, rleave (NR, B), reg (B,), preg
    (NR, N_PER_REGIME, B)."""
    NR = m.reg_mult.shape[0]
    reg_mult, reg_days, reg_pi, i_init, params = m.reg_mult, m.reg_days, m.reg_pi, m.groles[GR_REGIME_INIT], inp.params
    rmult, rleave, reg, preg = st.regs.rmult, st.regs.rleave, st.regs.reg, st.regs.preg
    SR = st.x.SS[st.mech.k_regime]
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
        i0 = i_init
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


@numba.njit(cache=True, error_model="numpy", inline="always")
def _setup_stocks(m, inp, st, s, blk, nb):
    """Source s of runs ``blk .. blk + nb - 1``: cleared totals, dud rate, accuracy, and for a
    stockpile its initial stock and legacy refurbishment. Writes src.* [s, :], src.ps[s] and refurb.*."""
    params = inp.params
    c_dud, c_acc, c_init = m.roles[s, R_DUD], m.roles[s, R_ACCURACY], m.roles[s, R_INITIAL]
    c_leg, c_srv = m.roles[s, R_LEGACY], m.roles[s, R_SERVICEABLE]
    c_rr, c_rq = m.roles[s, R_REFURB_RATE], m.roles[s, R_REFURB_DUD]
    stockpile = m.kinds[s] == KIND_STOCKPILE
    legacy = st.mech.has_legacy[s]
    stock, q, lq, sq, acc, lacc, ps = st.src.stock, st.src.q, st.src.lq, st.src.sq, st.src.acc, st.src.lacc, st.src.ps
    left, rate, rq = st.refurb.left, st.refurb.rate, st.refurb.q
    for b in range(nb):
        r = blk + b
        for k in range(N_PER_SOURCE):
            ps[s, k, b] = 0
        stock[s, b] = 0
        sq[s, b] = params[r, c_dud]
        q[s, b] = sq[s, b]
        lq[s, b] = logit(q[s, b])
        acc[s, b] = params[r, c_acc] if c_acc >= 0 else 1.0
        lacc[s, b] = logit(acc[s, b])
        if stockpile:
            init = int(round(params[r, c_init]))
            stock[s, b] = init
            ps[s, P_INITIAL, b] = init
            if legacy:
                left[s, b] = int(math.floor(params[r, c_leg] * params[r, c_srv]))
                rate[s, b] = params[r, c_rr]
                rq[s, b] = params[r, c_rq]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _setup_plant(m, inp, st, s, blk, nb):
    """Production source s of runs ``blk .. blk + nb - 1``: rate at day 0, ramp slope, daily noise,
    disruption rate; clears its disruption slots. Writes plant.* [s, :]."""
    params, T = inp.params, m.horizon
    row = st.mech.r_rate[s]
    c_a0 = m.sched_cols[row, m.sched_piece[row, 0]]
    c_a1, c_cv, c_dis = m.roles[s, R_ANNUAL_END], m.roles[s, R_DAILY_CV], m.roles[s, R_DIS_RATE]
    has_dis = st.mech.has_dis[s]
    p = st.plant
    rate0, slope, smu, ssig = p.rate0, p.slope, p.smu, p.ssig
    dlam, edlam, dis_end, dis_f = p.dlam, p.edlam, p.dis_end, p.dis_f
    for b in range(nb):
        r = blk + b
        a0 = params[r, c_a0] if c_a0 >= 0 else 0.0  # assembled from components: no annual of its own
        a1 = params[r, c_a1] if c_a1 >= 0 else a0
        rate0[s, b] = a0 / DAYS_PER_YEAR
        slope[s, b] = (a1 - a0) / DAYS_PER_YEAR / T
        cvp = params[r, c_cv] if c_cv >= 0 else 0.0
        ssig[s, b] = math.sqrt(math.log1p(cvp * cvp))
        smu[s, b] = -0.5 * ssig[s, b] * ssig[s, b]
        if has_dis:
            dlam[s, b] = params[r, c_dis] / DAYS_PER_YEAR
            edlam[s, b] = math.exp(-dlam[s, b])
            for j in range(KD):
                dis_end[s, b, j] = 0
                dis_f[s, b, j] = 1.0


@numba.njit(cache=True, error_model="numpy", inline="always")
def _setup_components(m, inp, st, s, blk, nb):
    """The component lines of production source s, runs ``blk .. blk + nb - 1``: rate at day 0 (0 without
    an annual), ramp slope, daily noise and initial inventory, as _setup_plant does for a plant; clears
    the counts. Writes comp.* [c, :] for its lines c."""
    params, T, sched_cols, sched_piece, roles = inp.params, m.horizon, m.sched_cols, m.sched_piece, m.comp_roles
    cp = st.comp
    inv, rate0, slope, smu, ssig = cp.inv, cp.rate0, cp.slope, cp.smu, cp.ssig
    init, made, bound = cp.init, cp.made, cp.bound
    NS = m.kinds.shape[0]
    for c in range(st.mech.comp_lo[s], st.mech.comp_hi[s]):
        row = 1 + 2 * NS + c  # layout.sched_component
        c_a0 = sched_cols[row, sched_piece[row, 0]]
        c_a1, c_cv, c_in = roles[c, CR_ANNUAL_END], roles[c, CR_DAILY_CV], roles[c, CR_INITIAL]
        for b in range(nb):
            r = blk + b
            a0 = params[r, c_a0] if c_a0 >= 0 else 0.0
            a1 = params[r, c_a1] if c_a1 >= 0 else a0
            rate0[c, b] = a0 / DAYS_PER_YEAR
            slope[c, b] = (a1 - a0) / DAYS_PER_YEAR / T
            cvp = params[r, c_cv] if c_cv >= 0 else 0.0
            ssig[c, b] = math.sqrt(math.log1p(cvp * cvp))
            smu[c, b] = -0.5 * ssig[c, b] * ssig[c, b]
            i0 = int(round(params[r, c_in])) if c_in >= 0 else 0
            inv[c, b] = i0
            init[c, b] = i0
            made[c, b] = 0
            bound[c, b] = 0


@numba.njit(cache=True, error_model="numpy", inline="always")
def _setup_import(m, inp, st, s, blk, nb):
    """Import source s of runs ``blk .. blk + nb - 1``: start day, shipment rate, supply, lot
    concentration, rejection and rework; empties its rings. Writes imp.* [s, :]."""
    params = inp.params
    row = st.mech.r_rate[s]
    c_lam = m.sched_cols[row, m.sched_piece[row, 0]]
    roles = m.roles
    c_st, c_av, c_lc = roles[s, R_START], roles[s, R_AVAILABLE], roles[s, R_LOTCONC]
    c_rj, c_rd, c_ry = roles[s, R_REJECT], roles[s, R_REWORK_DAYS], roles[s, R_REWORK_YIELD]
    has_reject, has_rework = st.mech.has_reject[s], st.mech.has_rework[s]
    im = st.imp
    start, lam, elam, remaining, lotc = im.start, im.lam, im.elam, im.remaining, im.lotc
    pend, pend_dm = im.pend, im.pend_dm
    reject, rdays, ryield, rew, rew_dm = im.reject, im.rdays, im.ryield, im.rew, im.rew_dm
    for b in range(nb):
        r = blk + b
        s0 = params[r, c_st]
        start[s, b] = int(math.ceil(s0)) if s0 > 0 else 0
        lam[s, b] = params[r, c_lam] / DAYS_PER_MONTH
        elam[s, b] = math.exp(-lam[s, b])
        remaining[s, b] = math.floor(params[r, c_av])
        lotc[s, b] = params[r, c_lc] if c_lc >= 0 else 0.0
        for j in range(pend.shape[2]):
            pend[s, b, j] = 0
            pend_dm[s, b, j] = 0.0
        if has_reject:
            reject[s, b] = params[r, c_rj]
        if has_rework:
            rdays[s, b] = int(math.floor(params[r, c_rd] + 0.5))
            ryield[s, b] = params[r, c_ry]
            for j in range(rew.shape[2]):
                rew[s, b, j] = 0
                rew_dm[s, b, j] = 0.0


@numba.njit(cache=True, error_model="numpy", inline="always")
def _setup_sources(m, inp, st, blk, nb):
    """Every source of runs ``blk .. blk + nb - 1`` (no random draws): _setup_stocks, then the
    kind's own parameters (_setup_plant, _setup_import)."""
    for s in range(m.kinds.shape[0]):
        _setup_stocks(m, inp, st, s, blk, nb)
        kd = m.kinds[s]
        if kd == KIND_PRODUCTION:
            _setup_plant(m, inp, st, s, blk, nb)
            if st.mech.has_comp[s]:
                _setup_components(m, inp, st, s, blk, nb)
        elif kd == KIND_IMPORT:
            _setup_import(m, inp, st, s, blk, nb)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _setup_keyed(m, inp, st, blk, nb):
    """The keyed per-shipment streams of runs ``blk .. blk + nb - 1``: base keys, run indices, shipment
    counters, rounds per container; empties the container ring. Writes keyed.* (no random draws)."""
    kd = st.keyed
    params, keys, mech = inp.params, inp.keys, st.mech
    for s in range(m.kinds.shape[0]):
        kd.lot_key[s] = keys[mech.k_lots[s]]
        kd.cont_key[s] = keys[mech.k_containers[s]]
        kd.size_key[s] = keys[mech.k_sizes[s]]
        kd.transit_key[s] = keys[mech.k_transit[s]]
        c_rpc = m.roles[s, R_RPC]
        for b in range(nb):
            kd.nship[s, b] = 0
            kd.rpc[s, b] = params[blk + b, c_rpc] if c_rpc >= 0 else 0.0
            for j in range(kd.pend_c.shape[2]):
                kd.pend_c[s, b, j] = 0
    for b in range(nb):
        kd.run[b] = np.uint64(inp.run0 + blk + b)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _shipment_stream(st, k, s, b, base):
    """Seed column b of stream row k (scratch) as the stream of source s's current shipment under
    ``base``: keyed by (base, shipment index) and the run, so its numbers depend on nothing drawn before."""
    seed_stream(st.x.SS[k], b, stream_key(base, np.uint64(st.keyed.nship[s, b])), st.keyed.run[b])


@numba.njit(cache=True, error_model="numpy", inline="always")
def _keyed_draw(m, st, s, b, row, k, base):
    """One draw of coded row ``row`` for source s's current shipment, rounded to a whole number, from the
    shipment's own stream under ``base`` (stream row k as scratch; a fixed value draws nothing, so its
    stream is not seeded): the number drawn depends on the shipment index and the run only."""
    if m.dcode[row] != K_FIXED:
        _shipment_stream(st, k, s, b, base)
    return math.floor(_draw(st.x.SS[k], st.x.G, b, row, m.dcode, m.dpar, m.ddv, m.ddc) + 0.5)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _lot_dud_rate(st, s, b, qm, conc):
    """The dud rate of source s's current lot: Beta(q c, (1 - q) c) from the lot's own keyed stream."""
    k = st.mech.k_lots[s]
    _shipment_stream(st, k, s, b, st.keyed.lot_key[s])
    return beta(st.x.SS[k], st.x.G, b, qm * conc, (1.0 - qm) * conc)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _container_shipment(m, st, s, b):
    """Containers of source s's current shipment (rounded, >= 0) from its own keyed stream, and its
    rounds: containers x the run's rounds per container, rounded to whole rounds."""
    c = max(_keyed_draw(m, st, s, b, m.erows[s, E_CONTAINERS], st.mech.k_containers[s], st.keyed.cont_key[s]), 0.0)
    return c, math.floor(c * st.keyed.rpc[s, b] + 0.5)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _receive_containers(st, s, nb, t):
    """Import s by the container: the containers due today (ring slot t mod ring) are received.
    Writes src.ps[s, P_CONTAINERS]; empties keyed.pend_c at the slot."""
    pend_c, ps = st.keyed.pend_c, st.src.ps
    slot = t % pend_c.shape[2]
    for b in range(nb):
        ps[s, P_CONTAINERS, b] += pend_c[s, b, slot]
        pend_c[s, b, slot] = 0


# ---- the phases of a day, all runs of the block in step
@numba.njit(cache=True, error_model="numpy", inline="always")
def _schedule_changes(m, inp, st, blk, nb, t):
    """On a day a scheduled rate starts a new piece, set today's base demand, production rates and
    shipment rates from the new pieces' parameters. Writes fire.dbase (B,), plant.rate0, imp.lam, elam
    (NS, B) and comp.rate0 (NC, B)."""
    if t == 0 or not m.sched_change[t]:
        return
    params, kinds, sched_cols, sched_piece, r_rate = inp.params, m.kinds, m.sched_cols, m.sched_piece, st.mech.r_rate
    dbase, rate0, lam, elam = st.fire.dbase, st.plant.rate0, st.imp.lam, st.imp.elam
    col = sched_cols[SCHED_DEMAND, sched_piece[SCHED_DEMAND, t]]
    for b in range(nb):
        dbase[b] = params[blk + b, col]
    for s in range(kinds.shape[0]):
        col = sched_cols[r_rate[s], sched_piece[r_rate[s], t]]
        if kinds[s] == KIND_PRODUCTION:
            if col >= 0:
                for b in range(nb):
                    rate0[s, b] = params[blk + b, col] / DAYS_PER_YEAR
        elif kinds[s] == KIND_IMPORT:
            for b in range(nb):
                lam[s, b] = params[blk + b, col] / DAYS_PER_MONTH
                elam[s, b] = math.exp(-lam[s, b])
    NS, crate = kinds.shape[0], st.comp.rate0
    for c in range(m.comp_src.shape[0]):  # component lines' scheduled annual rates
        row = 1 + 2 * NS + c  # layout.sched_component
        col = sched_cols[row, sched_piece[row, t]]
        if col >= 0:
            for b in range(nb):
                crate[c, b] = params[blk + b, col] / DAYS_PER_YEAR


@numba.njit(cache=True, error_model="numpy", inline="always")
def _disruptions(m, st, s, nb, t):
    """Today's disruption events of plant s (events stream): each cuts output by a drawn fraction for
    a drawn number of days, in one of KD slots (more merge into the slot ending soonest). Multiplies
    x.noise[b] (B,) by the product of the active cuts; writes plant.dis_end, dis_f [s] (B, KD) and
    src.ps[s, P_DISRUPTIONS]."""
    SE, G, noise = st.x.SS[st.mech.k_events[s]], st.x.G, st.x.noise
    dcode, dpar, ddv, ddc = m.dcode, m.dpar, m.ddv, m.ddc
    row_cut, row_days = m.erows[s, E_CUT], m.erows[s, E_DIS_DAYS]
    dlam, edlam, dis_end, dis_f, ps = st.plant.dlam, st.plant.edlam, st.plant.dis_end, st.plant.dis_f, st.src.ps
    for b in range(nb):
        n = _events(SE, b, dlam[s, b], edlam[s, b])
        for _ in range(n):
            c = min(max(_draw(SE, G, b, row_cut, dcode, dpar, ddv, ddc), 0.0), 1.0)
            d = math.floor(_draw(SE, G, b, row_days, dcode, dpar, ddv, ddc) + 0.5)
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


@numba.njit(cache=True, error_model="numpy", inline="always")
def _assemble(m, st, s, nb, t):
    """Production source s assembled from component lines (called by _produce with the plant's disruption
    factor in x.noise): each line makes (rate0 + slope t) times its lognormal noise (its own stream)
    times that factor, rounded stochastically, into
    its inventory; the day's output is the minimum of the inventories, taken from each, and every line
    at that minimum counts a binding day. Writes comp.inv, made, bound, fac, src.stock,
    ps[s, P_RECEIVED]; every assembled round has the run's dud rate, so q is unchanged. Uses x.noise,
    x.work as scratch."""
    SS, G, noise, work = st.x.SS, st.x.G, st.x.noise, st.x.work
    cp, k_comp = st.comp, st.mech.k_comp
    inv, rate0, slope, smu, ssig = cp.inv, cp.rate0, cp.slope, cp.smu, cp.ssig
    made, bound, fac = cp.made, cp.bound, cp.fac
    stock, ps = st.src.stock, st.src.ps
    lo, hi = st.mech.comp_lo[s], st.mech.comp_hi[s]
    for b in range(nb):
        fac[b] = noise[b]
    for c in range(lo, hi):
        S = SS[k_comp[c]]
        lognormal_noise_block(S, G, nb, smu[c], ssig[c], noise, work)
        for b in range(nb):
            a = _round_stochastic(S, b, (rate0[c, b] + slope[c, b] * t) * noise[b] * fac[b])
            inv[c, b] += a
            made[c, b] += a
    for b in range(nb):
        n = inv[lo, b]
        for c in range(lo + 1, hi):
            n = min(n, inv[c, b])
        for c in range(lo, hi):
            if inv[c, b] == n:
                bound[c, b] += 1
            inv[c, b] -= n
        stock[s, b] += n
        ps[s, P_RECEIVED, b] += n


@numba.njit(cache=True, error_model="numpy", inline="always")
def _produce(m, st, s, nb, t):
    """Production source s: output (rate0 + slope t) times lognormal noise (arrivals stream) times the
    disruptions' factor, rounded stochastically; a source assembled from component lines hands the
    disruptions' factor to _assemble instead (``_disruptions`` is inlined once either way: each inlined
    copy costs cold compile). Writes src.stock, ps[s, P_RECEIVED]; every lot of a plant has the run's
    dud rate, so q is unchanged. Uses x.noise, x.work as scratch."""
    S, noise = st.x.SS[st.mech.k_arrivals[s]], st.x.noise
    rate0, slope, stock, ps = st.plant.rate0, st.plant.slope, st.src.stock, st.src.ps
    has_comp = st.mech.has_comp[s]
    if has_comp:
        for b in range(nb):
            noise[b] = 1.0
    else:
        lognormal_noise_block(S, st.x.G, nb, st.plant.smu[s], st.plant.ssig[s], noise, st.x.work)
    if st.mech.has_dis[s]:
        _disruptions(m, st, s, nb, t)
    if has_comp:
        _assemble(m, st, s, nb, t)
        return
    for b in range(nb):
        a = _round_stochastic(S, b, (rate0[s, b] + slope[s, b] * t) * noise[b])
        stock[s, b] += a
        ps[s, P_RECEIVED, b] += a


@numba.njit(cache=True, error_model="numpy", inline="always")
def _dispatch(m, st, s, nb, t):
    """Import s: every run draws the uniform of its day's shipment count first (so the draws
    vectorise); from its start day, while supply remains, a run ships Poisson(lam) lots (by inversion of
    that uniform, or by the exact sampler from 10 a day), each of a drawn size (capped by what remains),
    transit time and, with a lot concentration, a beta-drawn dud rate, each from the shipment's own
    keyed stream (so a size's distribution never moves a transit time or a later day's count); lots
    arriving within the horizon go into the transit ring. Writes imp.remaining, pend, pend_dm,
    src.ps[s, P_DISPATCHED]; x.work[0]."""
    S, u = st.x.SS[st.mech.k_arrivals[s]], st.x.work[0]
    T = m.horizon
    r_size = st.mech.r_size[s]
    row_size, row_transit = m.sched_cols[r_size, m.sched_piece[r_size, t]], m.erows[s, E_TRANSIT]
    im = st.imp
    start, lam, elam, remaining, lotc = im.start, im.lam, im.elam, im.remaining, im.lotc
    pend, pend_dm = im.pend, im.pend_dm
    sq, ps = st.src.sq, st.src.ps
    has_cont, nship, rpc, pend_c = st.mech.has_cont[s], st.keyed.nship, st.keyed.rpc, st.keyed.pend_c
    L = pend.shape[2]
    for b in range(nb):
        u[b] = uniform(S, b)
    for b in range(nb):
        if t < start[s, b] or remaining[s, b] <= 0.0:
            continue
        if lam[s, b] < 10.0:
            n = poisson_inverse(u[b], lam[s, b], elam[s, b])
        else:
            n = poisson_known(S, b, lam[s, b], elam[s, b])
        for _ in range(n):
            if remaining[s, b] <= 0.0:
                break
            if has_cont:  # containers x loading, from the shipment's own keyed stream
                ncont, size = _container_shipment(m, st, s, b)
            else:
                ncont = 0.0
                size = _keyed_draw(m, st, s, b, row_size, st.mech.k_sizes[s], st.keyed.size_key[s])
            if has_cont and size > remaining[s, b]:  # the last, partial shipment: the containers it fills
                ncont = math.ceil(remaining[s, b] / rpc[s, b]) if rpc[s, b] > 0.0 else 0.0
            size = min(max(size, 0.0), remaining[s, b])
            remaining[s, b] -= size
            tr = max(_keyed_draw(m, st, s, b, row_transit, st.mech.k_transit[s], st.keyed.transit_key[s]), 0.0)
            qm = sq[s, b]
            if lotc[s, b] > 0.0 and 0.0 < qm < 1.0:
                qm = _lot_dud_rate(st, s, b, qm, lotc[s, b])
            nship[s, b] += 1
            isize = int(size)
            ps[s, P_DISPATCHED, b] += isize
            if t + tr < T:
                j = (t + int(tr)) % L
                pend[s, b, j] += isize
                pend_dm[s, b, j] += size * qm
                if has_cont:
                    pend_c[s, b, j] += int(ncont)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _receive(m, st, s, nb, t):
    """Import s: the rounds due today (ring slot t mod ring); with rejection on receipt a binomial
    share (events stream) is unusable and, with rework, a binomial share of that comes back rdays
    later; today's returns from rework are added. Writes src.stock, q, lq (through _add_rounds),
    ps[s, P_RECEIVED / P_REJECTED / P_REWORKED]; empties imp.pend, pend_dm, rew, rew_dm at the slot.
    Each run's draws do not depend on other runs, so all runs dispatch before any receives."""
    SE, SW, T = st.x.SS[st.mech.k_events[s]], st.x.SS[st.mech.k_rework[s]], m.horizon
    has_reject, has_rework = st.mech.has_reject[s], st.mech.has_rework[s]
    im = st.imp
    pend, pend_dm, rew, rew_dm = im.pend, im.pend_dm, im.rew, im.rew_dm
    reject, rdays, ryield = im.reject, im.rdays, im.ryield
    stock, q, lq, ps = st.src.stock, st.src.q, st.src.lq, st.src.ps
    slot = t % pend.shape[2]
    LW = rew.shape[2]
    for b in range(nb):
        a = pend[s, b, slot]
        dm = pend_dm[s, b, slot]
        if a > 0 and has_reject:  # unusable on arrival; some come back from rework
            rej = binomial(SE, b, a, reject[s, b])
            if rej > 0:
                ps[s, P_REJECTED, b] += rej
                if has_rework:
                    back = binomial(SW, b, rej, ryield[s, b])  # its own stream: the yield never moves a rejection
                    if back > 0 and t + rdays[s, b] < T:
                        j = (t + rdays[s, b]) % LW
                        rew[s, b, j] += back
                        rew_dm[s, b, j] += back * (dm / a)
                dm = dm * ((a - rej) / a)
                a -= rej
        if has_rework:
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


@numba.njit(cache=True, error_model="numpy", inline="always")
def _refurbish(m, st, s, nb):
    """Stockpile s with legacy rounds: refurbish at its throughput (stochastically rounded, events
    stream) while legacy rounds are left, adding them with their dud rate. Writes refurb.left, src.stock,
    q, lq and ps[s, P_REFURBISHED]."""
    SE = st.x.SS[st.mech.k_events[s]]
    left, rate, rq = st.refurb.left, st.refurb.rate, st.refurb.q
    stock, q, lq, ps = st.src.stock, st.src.q, st.src.lq, st.src.ps
    for b in range(nb):
        if left[s, b] > 0:
            a = min(left[s, b], _round_stochastic(SE, b, rate[s, b]))
            if a > 0:
                _add_rounds(stock, q, lq, s, b, a, a * rq[s, b])
                left[s, b] -= a
                ps[s, P_REFURBISHED, b] += a


@numba.njit(cache=True, error_model="numpy", inline="always")
def _arrivals(m, st, nb, t):
    """Phase 1: rounds arriving today at every source, in source order: production (_produce, or
    _assemble from component lines),
    imports (_dispatch, then _receive), and refurbished legacy rounds of stockpiles (_refurbish)."""
    kinds, has_legacy = m.kinds, st.mech.has_legacy
    for s in range(kinds.shape[0]):
        kd = kinds[s]
        if kd == KIND_PRODUCTION:
            _produce(m, st, s, nb, t)
        elif kd == KIND_IMPORT:
            _dispatch(m, st, s, nb, t)
            if st.mech.has_cont[s]:
                _receive_containers(st, s, nb, t)
            _receive(m, st, s, nb, t)
        elif has_legacy[s]:
            _refurbish(m, st, s, nb)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _losses(m, st, nb):
    """Phase 2: depot strikes (strike stream); each destroys a drawn fraction of every stock, rounded
    stochastically with one uniform per stock, even empty, so that draws stay aligned. Writes src.stock,
    ps[:, P_LOST] and fire.tot[O_STRIKES]."""
    if not st.mech.has_strikes:
        return
    SK, G = st.x.SS[st.mech.k_strikes], st.x.G
    krow, dcode, dpar, ddv, ddc = m.groles[GR_STRIKE_ROW], m.dcode, m.dpar, m.ddv, m.ddc
    stock, ps, klam, eklam, tot = st.src.stock, st.src.ps, st.fire.klam, st.fire.eklam, st.fire.tot
    NS = stock.shape[0]
    for b in range(nb):
        n = _events(SK, b, klam[b], eklam[b])
        tot[O_STRIKES, b] += n
        for _ in range(n):
            f = _draw(SK, G, b, krow, dcode, dpar, ddv, ddc)
            f = min(max(f, 0.0), 1.0)
            for s in range(NS):
                loss = min(int(math.floor(stock[s, b] * f + uniform(SK, b))), stock[s, b])
                stock[s, b] -= loss
                ps[s, P_LOST, b] += loss


@numba.njit(cache=True, error_model="numpy", inline="always")
def _regime_step(m, st, nb, t):
    """Phase 3a: the regime chain (regime stream): after day 0 each run leaves its regime with
    probability rleave (geometric stays) for one drawn from the jump chain; counts days and entries.
    Writes regs.reg (B,), preg and fire.dmult (B,)."""
    if not st.mech.has_regimes:
        return
    SR, reg_cum = st.x.SS[st.mech.k_regime], m.reg_cum
    NR = reg_cum.shape[0]
    reg, rleave, rmult, preg, dmult = st.regs.reg, st.regs.rleave, st.regs.rmult, st.regs.preg, st.fire.dmult
    for b in range(nb):
        i = reg[b]
        if t > 0 and uniform(SR, b) < rleave[i, b]:
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


@numba.njit(cache=True, error_model="numpy", inline="always")
def _demand(st, nb):
    """Phase 3b: today's demand, base times regime multiplier times lognormal noise (demand stream),
    rounded stochastically. Writes fire.dem (B,); x.noise, x.work scratch."""
    SD, noise = st.x.SS[st.mech.k_demand], st.x.noise
    dbase, dmult, dem = st.fire.dbase, st.fire.dmult, st.fire.dem
    lognormal_noise_block(SD, st.x.G, nb, st.fire.dmu, st.fire.dsig, noise, st.x.work)
    for b in range(nb):
        dem[b] = _round_stochastic(SD, b, dbase[b] * dmult[b] * noise[b])


@numba.njit(cache=True, error_model="numpy", inline="always")
def _split_priority(stock, fs, b, f_all, order) -> None:
    """Issue ``f_all`` rounds of run b from the sources in ``order``, each drained before the next.
    Writes fs[:, b] (NS, B) for the sources it reaches (the caller has zeroed the others)."""
    need = f_all
    for j in range(order.shape[0]):
        s = order[j]
        part = min(need, stock[s, b])
        fs[s, b] = part
        need -= part
        if need == 0:
            break


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
    stock, fs, order, proportional = st.src.stock, st.src.fs, m.order, m.issue == ISSUE_PROPORTIONAL
    has_ration = st.mech.has_ration
    f = st.fire
    dem, dbase, rres, rfrac, avail, fired, tot = f.dem, f.dbase, f.rres, f.rfrac, f.avail, f.fired, f.tot
    NS = stock.shape[0]
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
        if proportional:
            _split_proportional(stock, fs, b, f_all, total)
        else:
            _split_priority(stock, fs, b, f_all, order)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _effect(m, st, daily, tid, nb, t):
    """Phase 5: each source's fired rounds leave its stock; binomial duds at the stock's mean dud
    probability, then binomial misses among the rest (effect stream). Writes src.stock, ps[:, P_FIRED
    / P_DUDS / P_EFFECTIVE], fire.eff (B,), and adds to daily.src_sums[tid, t] (2, NS)."""
    SS, k_effect, k_hits, has_acc, logf = st.x.SS, st.mech.k_effect, st.mech.k_hits, st.mech.has_acc, m.logf
    duds, hits, misses, work, rest = st.x.duds, st.x.hits, st.x.misses, st.x.work, st.x.rest
    c = st.src
    stock, q, lq, acc, lacc, ps, fs = c.stock, c.q, c.lq, c.acc, c.lacc, c.ps, c.fs
    eff = st.fire.eff
    src_sums = daily.src_sums[tid, t]
    for b in range(nb):
        eff[b] = 0
    for s in range(stock.shape[0]):
        fsrc = fs[s]
        S = SS[k_effect[s]]
        binomial_block(S, nb, fsrc, q[s], lq[s], duds, work, rest, logf)
        day_f = 0
        for b in range(nb):
            f = fsrc[b]
            stock[s, b] -= f
            ps[s, P_FIRED, b] += f
            ps[s, P_DUDS, b] += duds[b]
            hits[b] = f - duds[b]
            day_f += f
        if has_acc[s]:  # the misses' own stream: accuracy never moves a dud draw
            binomial_block(SS[k_hits[s]], nb, hits, acc[s], lacc[s], misses, work, rest, logf)
            for b in range(nb):
                hits[b] = misses[b]
        day_e = 0
        for b in range(nb):
            ps[s, P_EFFECTIVE, b] += hits[b]
            eff[b] += hits[b]
            day_e += hits[b]
        src_sums[0, s] += day_f
        src_sums[1, s] += day_e

#: at most this many re-fire salvos a day: reached only when nearly every round fails (a dud rate near
#: 1 with refire near 1); the next correction is then asked and not fired (shortfall)
MAX_SALVOS = 10000


@numba.njit(cache=True, error_model="numpy", inline="always")
def _setup_refire(m, inp, st, blk, nb):
    """Each run's re-fire fraction (demand.refire). Writes fire.rf (B,), clears fire.ask (B,)."""
    c_rf, params, rf, ask = m.groles[GR_REFIRE], inp.params, st.fire.rf, st.fire.ask
    for b in range(nb):
        rf[b] = min(max(params[blk + b, c_rf], 0.0), 1.0)
        ask[b] = 0


@numba.njit(cache=True, error_model="numpy", inline="always")
def _refire_split(m, st, b, f_all, total):
    """Split a re-fire salvo of ``f_all`` rounds of run b over the sources by the issue policy (as
    ``_issue``: in proportion to stock, or in priority order). Writes src.fs[:, b]."""
    stock, fs, order = st.src.stock, st.src.fs, m.order
    NS = stock.shape[0]
    for s in range(NS):
        fs[s, b] = 0
    if m.issue == ISSUE_PROPORTIONAL:
        _split_proportional(stock, fs, b, f_all, total)
    else:
        _split_priority(stock, fs, b, f_all, order)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _refire(m, st, daily, tid, nb, t):
    """Phase 5b: re-fire of failed rounds. After the first salvo (the day's wanted fire, phases 4 and
    5), each run asks round(rf x failures of the previous salvo) (failures: duds and misses) and fires
    what its stock allows by the issue policy (under a ration policy only stock above the reserve),
    drawing duds and misses on each source's re-fire stream, one run at a time (a run's draws never
    depend on its block); salvos stop when a correction is 0 or no stock is left. What was asked and not
    fired is shortfall (``_account``). Writes fire.ask, fired, eff (B,), src.stock, fs, ps[:, P_FIRED /
    P_DUDS / P_EFFECTIVE / P_REFIRED], fire.tot[O_REFIRE_ASKED], and adds to daily.src_sums[tid, t]."""
    SS, k_refire, has_acc = st.x.SS, st.mech.k_refire, st.mech.has_acc
    c = st.src
    stock, q, acc, ps, fs = c.stock, c.q, c.acc, c.ps, c.fs
    f = st.fire
    fired, eff, ask, rf, tot, rres, dbase = f.fired, f.eff, f.ask, f.rf, f.tot, f.rres, f.dbase
    has_ration = st.mech.has_ration
    src_sums = daily.src_sums[tid, t]
    NS = stock.shape[0]
    for b in range(nb):
        asked = 0
        fail = fired[b] - eff[b]
        salvos = 0
        while True:
            want = int(math.floor(rf[b] * fail + 0.5))
            if want <= 0:
                break
            if salvos == MAX_SALVOS:  # the cap: this correction is asked, and not fired
                asked += want
                break
            salvos += 1
            total = 0
            for s in range(NS):
                total += stock[s, b]
            room = total
            if has_ration:  # re-fire never draws the ration reserve
                room = min(total, max(int(math.floor(total - rres[b] * dbase[b])), 0))
            if room <= 0:
                break
            asked += want
            f_all = min(want, room)
            _refire_split(m, st, b, f_all, total)
            fail = 0
            for s in range(NS):
                n = fs[s, b]
                if n == 0:
                    continue
                S = SS[k_refire[s]]
                d = binomial(S, b, n, q[s, b])
                h = n - d
                if has_acc[s]:
                    h = binomial(S, b, h, acc[s, b])
                stock[s, b] -= n
                ps[s, P_FIRED, b] += n
                ps[s, P_DUDS, b] += d
                ps[s, P_EFFECTIVE, b] += h
                ps[s, P_REFIRED, b] += n
                src_sums[0, s] += n
                src_sums[1, s] += h
                fired[b] += n
                eff[b] += h
                fail += n - h
            if f_all < want:
                break
        ask[b] = asked
        tot[O_REFIRE_ASKED, b] += asked


@numba.njit(cache=True, error_model="numpy", inline="always")
def _account_sources(st, daily, tid, nb, t):
    """Phase 6b: the day's statistics by source: end-of-day stock (histogram and sum) and arrivals
    (received and refurbished today) of each source (days of fire on hand are counted by _account).
    Bins are computed in a loop without data-dependent branches (it vectorises) and counted in a second
    pass; the day's arrivals of a source are its block's cumulative receipts less yesterday's, so one
    number per source is kept. Writes src.arr_prev (NS,); adds to daily.src_hist[tid, t] (NS, NB) and
    src_day[tid, t] (2, NS). Uses x.bins[0]."""
    stock, ps, prev, bins = st.src.stock, st.src.ps, st.src.arr_prev, st.x.bins[0]
    NS = stock.shape[0]
    shist, sday = daily.src_hist[tid, t], daily.src_day[tid, t]
    for s in range(NS):
        sum_s = 0
        cum = 0
        for b in range(nb):  # vectorises
            v = stock[s, b]
            sum_s += v
            cum += ps[s, P_RECEIVED, b] + ps[s, P_REFURBISHED, b]
            bins[b] = bin_index(v)
        row = shist[s]
        for b in range(nb):
            row[bins[b]] += 1
        sday[0, s] += sum_s
        sday[1, s] += cum - (prev[s] if t > 0 else 0)
        prev[s] = cum


@numba.njit(cache=True, error_model="numpy", inline="always")
def _account(m, inp, st, daily, tid, blk, nb, t):
    """Phase 6: per-run totals and the day's statistics (day sums kept in registers, written once per
    day), with days of fire on hand (all stock left over the day's base demand, in hundredths of a day).
    Writes fire.tot (N_TOTALS, B); adds to daily.hist[tid, t] (N_DAILY, NB), doh_hist[tid, t] (NB,),
    sums[tid, t], n_short[tid, t]; writes the trajectories of sampled runs (daily.sample_*[run, t])."""
    f = st.fire
    dem, fired, avail, eff, tot, bins, threshold = f.dem, f.fired, f.avail, f.eff, f.tot, st.x.bins, m.threshold
    dbase = f.dbase
    ask = f.ask
    sum_s = 0
    sum_f = 0
    sum_e = 0
    sum_x = 0
    shorts = 0
    for b in range(nb):  # no data-dependent branch: vectorises
        d = dem[b]
        fb = fired[b]
        shortfall = d + ask[b] - fb  # what was asked (wanted fire and re-fire corrections) and not fired
        left = avail[b] - fb
        e = eff[b]
        tot[O_DEMAND, b] += d
        tot[O_FIRED, b] += fb
        tot[O_EFFECTIVE, b] += e
        tot[O_SHORTFALL, b] += shortfall
        tot[O_STOCK_MIN, b] = min(tot[O_STOCK_MIN, b], left)
        sh = 1 if shortfall > threshold * d else 0
        tot[O_SHORT_DAYS, b] += sh
        first = tot[O_FIRST_SHORT, b]
        tot[O_FIRST_SHORT, b] = t if (sh == 1 and first < 0) else first
        shorts += sh
        sum_s += left
        sum_f += fb
        sum_e += e
        sum_x += shortfall
        bins[0, b] = bin_index(left)
        bins[1, b] = bin_index(fb)
        bins[2, b] = bin_index(e)
        bins[3, b] = bin_index(shortfall)
        doh = 100.0 * left / dbase[b] if dbase[b] > 0.0 else 4e18
        bins[4, b] = bin_index(int(min(doh, 4e18)))
    hist = daily.hist[tid, t]
    dhist = daily.doh_hist[tid, t]
    hrow_s = hist[V_STOCK]
    hrow_f = hist[V_FIRED]
    hrow_e = hist[V_EFFECTIVE]
    hrow_x = hist[V_SHORTFALL]
    for b in range(nb):
        hrow_s[bins[0, b]] += 1
        hrow_f[bins[1, b]] += 1
        hrow_e[bins[2, b]] += 1
        hrow_x[bins[3, b]] += 1
        dhist[bins[4, b]] += 1
    sums = daily.sums[tid, t]
    sums[V_STOCK] += sum_s
    sums[V_FIRED] += sum_f
    sums[V_EFFECTIVE] += sum_e
    sums[V_SHORTFALL] += sum_x
    daily.n_short[tid, t] += shorts
    g0 = inp.run0 + blk
    n_sample = inp.n_sample
    if g0 < n_sample:
        sample_stock, sample_fired = daily.sample_stock, daily.sample_fired
        for b in range(min(nb, n_sample - g0)):
            sample_stock[g0 + b, t] = avail[b] - fired[b]
            sample_fired[g0 + b, t] = fired[b]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _write_outputs(m, st, out, blk, nb):
    """Per-run outputs of the block: final stocks, totals, per-source and per-regime counts (one
    regime of T days when there is no chain), per-component inventories and binding days. Writes
    out.totals[r], per_source[r], per_regime[r], per_component[r] for
    runs r = blk .. blk + nb - 1 of the batch."""
    NR, T, has_regimes = m.reg_mult.shape[0], m.horizon, st.mech.has_regimes
    stock, ps, tot, preg = st.src.stock, st.src.ps, st.fire.tot, st.regs.preg
    totals, per_source, per_regime = out.totals, out.per_source, out.per_regime
    NS = stock.shape[0]
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
    cp, per_component = st.comp, out.per_component
    for c in range(m.comp_src.shape[0]):
        for b in range(nb):
            r = blk + b
            per_component[r, c, C_INITIAL] = cp.init[c, b]
            per_component[r, c, C_PRODUCED] = cp.made[c, b]
            per_component[r, c, C_FINAL] = cp.inv[c, b]
            per_component[r, c, C_BOUND] = cp.bound[c, b]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _observed_now(st, row, b) -> int:
    """The value an observation row accumulates for run b at the end of the day: the running total of
    its flow (all sources from fire.tot, or summed over the sources' src.ps), or the end-of-day stock."""
    s, ctot, cps = row[OB_SRC], row[OB_TOT], row[OB_PS]
    ps, stock = st.src.ps, st.src.stock
    if cps < 0 and ctot < 0:  # stock
        if s >= 0:
            return stock[s, b]
        v = 0
        for k in range(stock.shape[0]):
            v += stock[k, b]
        return v
    if s >= 0:
        return ps[s, cps, b]
    if ctot >= 0:
        return st.fire.tot[ctot, b]
    v = 0
    for k in range(ps.shape[0]):
        v += ps[k, cps, b]
    return v


@numba.njit(cache=True, error_model="numpy", inline="always")
def _observe(m, st, nb, t):
    """Phase 7: each observation's window (no random draws). A flow's window sum is its running total
    at the end of the last day minus that at the end of the day before the first (two passes over the
    block per window, whatever its length); a stock is added up each day of its window, or taken on
    its last day. Writes obs (NO, 2, B); cleared on day 0."""
    obs, acc = m.obs, st.obs
    NO = obs.shape[0]
    if NO == 0:
        return
    if t == 0:
        for o in range(NO):
            for b in range(nb):
                acc[o, 0, b] = 0
                acc[o, 1, b] = 0
    for o in range(NO):
        row = obs[o]
        mode, t0, t1 = row[OB_MODE], row[OB_T0], row[OB_T1]
        if mode == OM_FLOW:
            sign = 1 if t == t1 else (-1 if t == t0 - 1 else 0)
            if sign == 0:
                continue
            for b in range(nb):
                acc[o, 0, b] += sign * _observed_now(st, row, b)
            if row[OB_SHARE] == 1:
                tot = st.fire.tot
                for b in range(nb):
                    acc[o, 1, b] += sign * tot[O_FIRED, b]
        elif mode == OM_STOCK_SUM:
            if t0 <= t <= t1:
                for b in range(nb):
                    acc[o, 0, b] += _observed_now(st, row, b)
        elif mode == OM_STOCK_END:
            if t == t1:
                for b in range(nb):
                    acc[o, 0, b] = _observed_now(st, row, b)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _write_observed(m, st, out, blk, nb):
    """Each observation's window sums of the block's runs. Writes out.observed[r] (NO, 2)."""
    acc, observed = st.obs, out.observed
    for o in range(m.obs.shape[0]):
        for b in range(nb):
            observed[blk + b, o, 0] = acc[o, 0, b]
            observed[blk + b, o, 1] = acc[o, 1, b]


# _nrt=False: the chunk and the phases inlined into it update no reference counts. Numba counts a
# reference each time an array is bound to a name (a field read from a named tuple, an argument of an
# inlined helper): atomic updates that, once per phase, field and day, made the kernel 40 % slower.
# Everything here is borrowed from the calling Python thread, which owns every array (it allocates nothing).
@numba.njit(cache=True, error_model="numpy", nogil=True, _nrt=False)
def simulate_chunk(m, inp, out, daily, st, tid, r_lo, r_hi):
    """Simulate runs ``inp.run0 + r_lo .. inp.run0 + r_hi - 1`` of scenario ``m`` (see ``contract``: m a
    KernelModel, inp BatchInputs, out RunOutputs, daily DailyAccumulators, st the calling thread's
    state.BlockState) on the calling thread, a block at a time, each day in phases.

    Per-run outputs are written to rows ``r_lo .. r_hi - 1`` of ``out``. Per-day statistics are *added*
    to thread ``tid``'s accumulators of ``daily``, so a caller may feed several batches into them; being
    integer sums, they do not depend on which thread ran which chunk. Runs with global index below
    ``inp.n_sample`` have their stock and fired trajectories written to ``daily.sample_*``.

    It holds no GIL: the engine runs one chunk per thread at a time from plain Python threads (a
    numba ``prange`` over chunks did the same and cost a quarter of the cold compile in parfor
    lowering).
    """
    T, has_regimes, has_refire = m.horizon, st.mech.has_regimes, st.mech.has_refire
    for blk in range(r_lo, r_hi, BLOCK):
        nb = min(BLOCK, r_hi - blk)
        _setup_runs(m, inp, st, blk, nb)
        if has_regimes:
            _setup_regimes(m, inp, st, blk, nb)
        _setup_sources(m, inp, st, blk, nb)
        if has_refire:
            _setup_refire(m, inp, st, blk, nb)
        _setup_keyed(m, inp, st, blk, nb)
        for t in range(T):
            _schedule_changes(m, inp, st, blk, nb, t)
            _arrivals(m, st, nb, t)
            _losses(m, st, nb)
            _regime_step(m, st, nb, t)
            _demand(st, nb)
            _issue(m, st, nb)
            _effect(m, st, daily, tid, nb, t)
            if has_refire:
                _refire(m, st, daily, tid, nb, t)
            _account(m, inp, st, daily, tid, blk, nb, t)
            _account_sources(st, daily, tid, nb, t)
            _observe(m, st, nb, t)
        _write_outputs(m, st, out, blk, nb)
        _write_observed(m, st, out, blk, nb)
