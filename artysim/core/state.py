"""The kernel's working state for a block of runs, as named tuples of arrays, and its allocation.

Pure Python and numpy: the engine allocates a ``BlockState`` per thread and hands it to
``kernel.simulate_chunk``, whose phases read the fields by name (the types numba compiles for are
those of these tuples). What each field holds, and its shape, is written beside its tuple.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from artysim.core import layout
from artysim.core.layout import (
    BLOCK,
    E_CONTAINERS,
    GR_REFIRE,
    GR_RESERVE,
    GR_STRIKE_RATE,
    KD,
    KIND_STOCKPILE,
    N_PER_REGIME,
    N_PER_SOURCE,
    N_TOTALS,
    R_ACCURACY,
    R_DIS_RATE,
    R_LEGACY,
    R_REJECT,
    R_REWORK_DAYS,
)

# The state of a block of B = BLOCK runs, allocated once per thread and reset per block.
# Arrays are source-major (x[s, b]) so that every phase is a simple loop over the block's runs.
# Every helper reads the fields it needs once, at its top: its loops index plain arrays.
#: Which mechanisms the scenario uses (a mechanism not used costs one test per day and block), and
#: each stream's index into x.SS (from layout's stream order).
Mechanisms = namedtuple("Mechanisms", [
    "has_acc", "has_legacy", "has_dis", "has_reject", "has_rework",  # bool (NS,)
    "any_rework", "any_dis", "has_ration", "has_strikes", "has_regimes",  # bool
    "use",  # bool (NK,): streams the scenario draws from (the others are not seeded)
    "k_demand", "k_regime", "k_strikes",  # int: the demand, regime and depot-strike streams
    "k_arrivals", "k_effect", "k_events",  # int64 (NS,): each source's arrivals, effect and events streams
    "r_rate", "r_size",  # int64 (NS,): each source's rate and shipment-size rows of the schedule tables
    "has_refire",  # bool: demand.refire is given (failed rounds are fired again)
    "k_refire",  # int64 (NS,): each source's re-fire stream (duds and misses of re-fired rounds)
    "has_comp",  # bool (NS,): a production source assembled from component lines
    "comp_lo", "comp_hi",  # int64 (NS,): its component lines comp_lo .. comp_hi - 1
    "k_comp",  # int64 (NC or 1,): each component line's noise stream
    "k_hits", "k_lots", "k_containers",  # int64 (NS,): misses stream; base keys of lot and container streams
    "has_cont", "any_cont",  # bool (NS,), bool: imports by the container
    "k_rework",  # int64 (NS,): the stream of rework yields (apart from rejection)
    "k_sizes", "k_transit",  # int64 (NS,): base keys of import shipment-size and transit streams
])
#: Random streams and scratch: SS (NK, 4, B) stream states; G (B,) each run's spare normal; noise (B,)
#: a day's lognormal factors; work (3, B), rest (B,) sampler scratch; duds, hits, misses (B,) and bins
#: (5, B) int64 (the day's bins of stock, fired, effective, shortfall and days on hand).
Scratch = namedtuple("Scratch", ["SS", "G", "noise", "work", "rest", "duds", "hits", "misses", "bins"])
#: Stocks (NS, B): stock (int64), q its mean dud probability and lq = logit(q), sq the run's dud rate,
#: acc accuracy and lacc = logit(acc); ps (NS, N_PER_SOURCE, B) per-source totals; fs (NS, B) the
#: day's issue by source (then each re-fire salvo's); arr_prev (NS,) the block's rounds received and
#: refurbished up to the day before (for the day's arrivals by source).
Stocks = namedtuple("Stocks", ["stock", "q", "lq", "sq", "acc", "lacc", "ps", "fs", "arr_prev"])
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
#: exp(-klam); tot (N_TOTALS, B) per-run totals; rf (B,) the re-fire fraction, ask (B,) int64 the
#: rounds the day's re-fire corrections asked for (0 without re-fire).
Fire = namedtuple("Fire", ["dbase", "dmult", "dmu", "dsig", "dem", "avail", "fired", "eff",
                           "rres", "rfrac", "klam", "eklam", "tot", "rf", "ask"])
#: Regime chain (NR or 1, B): rmult demand multiplier, rleave daily leaving probability; reg (B,) the
#: current regime; preg (NR or 1, N_PER_REGIME, B) per-regime totals.
Regimes = namedtuple("Regimes", ["rmult", "rleave", "reg", "preg"])
#: Component lines (NC or 1, B): inv (int64) inventory, rate0 rounds/day at day 0 and slope per day,
#: smu, ssig the daily lognormal noise; init, made, bound (int64) initial inventory, rounds made and
#: binding days; fac (B,) the day's disruption factor of the plant being assembled.
Components = namedtuple("Components", ["inv", "rate0", "slope", "smu", "ssig", "init", "made", "bound", "fac"])
#: Observations: obs (NO or 1, 2, B) int64, each observation's window sum so far (and, for a share of
#: fire, all rounds fired in the window).
#: Keyed per-shipment streams (sizes, transit, lot dud rates, containers): lot_key, cont_key, size_key,
#: transit_key (NS,) the base keys; run (B,)
#: each run's global index; nship (NS, B) shipments so far (the lot index); rpc (NS, B) rounds per
#: container; pend_c (NS, B, ring or 1) containers arriving on each ring day.
Keyed = namedtuple("Keyed", ["lot_key", "cont_key", "run", "nship", "rpc", "pend_c", "size_key", "transit_key"])
BlockState = namedtuple("BlockState", ["mech", "x", "src", "plant", "imp", "refurb", "fire", "regs", "obs",
                                       "comp", "keyed"])


def mechanisms(m) -> Mechanisms:
    """The mechanisms scenario ``m`` uses and the index of each stream and schedule row."""
    NS = m.kinds.shape[0]
    roles = m.roles
    has_acc = np.zeros(NS, dtype=np.bool_)
    has_legacy = np.zeros(NS, dtype=np.bool_)
    has_dis = np.zeros(NS, dtype=np.bool_)
    has_reject = np.zeros(NS, dtype=np.bool_)
    has_rework = np.zeros(NS, dtype=np.bool_)
    k_arrivals = np.zeros(NS, dtype=np.int64)
    k_effect = np.zeros(NS, dtype=np.int64)
    k_events = np.zeros(NS, dtype=np.int64)
    k_refire = np.zeros(NS, dtype=np.int64)
    r_rate = np.zeros(NS, dtype=np.int64)
    r_size = np.zeros(NS, dtype=np.int64)
    k_hits = np.zeros(NS, dtype=np.int64)
    k_lots = np.zeros(NS, dtype=np.int64)
    k_containers = np.zeros(NS, dtype=np.int64)
    has_cont = np.zeros(NS, dtype=np.bool_)
    k_rework = np.zeros(NS, dtype=np.int64)
    k_sizes = np.zeros(NS, dtype=np.int64)
    k_transit = np.zeros(NS, dtype=np.int64)
    for s in range(NS):
        k_sizes[s] = layout.stream_sizes(s, NS)
        k_transit[s] = layout.stream_transit(s, NS)
        k_rework[s] = layout.stream_rework(s, NS)
        k_hits[s] = layout.stream_hits(s, NS)
        k_lots[s] = layout.stream_lots(s, NS)
        k_containers[s] = layout.stream_containers(s, NS)
        has_cont[s] = m.erows[s, E_CONTAINERS] >= 0
        has_acc[s] = roles[s, R_ACCURACY] >= 0
        has_legacy[s] = roles[s, R_LEGACY] >= 0
        has_dis[s] = roles[s, R_DIS_RATE] >= 0
        has_reject[s] = roles[s, R_REJECT] >= 0
        has_rework[s] = roles[s, R_REWORK_DAYS] >= 0
        k_arrivals[s] = layout.stream_arrivals(s)
        k_effect[s] = layout.stream_effect(s, NS)
        k_events[s] = layout.stream_events(s, NS)
        k_refire[s] = layout.stream_refire(s, NS)
        r_rate[s] = layout.sched_rate(s)
        r_size[s] = layout.sched_size(s, NS)
    has_strikes = m.groles[GR_STRIKE_RATE] >= 0
    has_regimes = m.reg_mult.shape[0] > 0
    NC = m.comp_src.shape[0]
    has_comp = np.zeros(NS, dtype=np.bool_)
    comp_lo = np.zeros(NS, dtype=np.int64)
    comp_hi = np.zeros(NS, dtype=np.int64)
    for c in range(NC - 1, -1, -1):  # a source's lines are contiguous: lo is its first, hi one past its last
        s = int(m.comp_src[c])
        if not has_comp[s]:
            comp_hi[s] = c + 1
        has_comp[s] = True
        comp_lo[s] = c
    k_comp = np.array([layout.stream_component(c, NS) for c in range(max(NC, 1))], dtype=np.int64)
    use = np.zeros(layout.n_streams(NS, NC), dtype=np.bool_)
    use[layout.stream_demand()] = True
    for s in range(NS):
        use[k_arrivals[s]] = m.kinds[s] != KIND_STOCKPILE and not has_comp[s]
        use[k_effect[s]] = True
        use[k_events[s]] = has_legacy[s] or has_dis[s] or has_reject[s]
        use[k_hits[s]] = has_acc[s]
        use[k_rework[s]] = has_rework[s]
        # sizes, transit, lots and containers: base keys only; each shipment's streams are seeded when
        # it ships (_dispatch)
    use[layout.stream_regime(NS)] = has_regimes
    use[layout.stream_strikes(NS)] = has_strikes
    has_refire = m.groles[GR_REFIRE] >= 0
    for s in range(NS):
        use[k_refire[s]] = has_refire
    for c in range(NC):
        use[k_comp[c]] = True
    return Mechanisms(has_acc, has_legacy, has_dis, has_reject, has_rework, has_rework.any(), has_dis.any(),
                      m.groles[GR_RESERVE] >= 0, has_strikes, has_regimes, use,
                      layout.stream_demand(), layout.stream_regime(NS), layout.stream_strikes(NS),
                      k_arrivals, k_effect, k_events, r_rate, r_size, has_refire, k_refire,
                      has_comp, comp_lo, comp_hi, k_comp, k_hits, k_lots, k_containers, has_cont, has_cont.any(),
                      k_rework, k_sizes, k_transit)


def allocate(m) -> BlockState:
    """The block state of scenario ``m`` (a KernelModel), sized for one block; optional mechanisms'
    state has size 1 when unused. The engine allocates one per thread, in Python (numba would spend
    seconds compiling these allocations), and the kernel resets it per block: memory per thread does
    not grow with runs."""
    NS = m.kinds.shape[0]
    NR = m.reg_mult.shape[0]
    B = BLOCK
    L = m.ring
    mech = mechanisms(m)
    x = Scratch(np.empty((mech.use.shape[0], 4, B), dtype=np.uint64), np.empty(B), np.ones(B), np.zeros((3, B)),
                np.zeros(B, dtype=np.int64), np.zeros(B, dtype=np.int64), np.zeros(B, dtype=np.int64),
                np.zeros(B, dtype=np.int64), np.zeros((5, B), dtype=np.int64))
    src = Stocks(np.zeros((NS, B), dtype=np.int64), np.zeros((NS, B)), np.zeros((NS, B)), np.zeros((NS, B)),
                 np.ones((NS, B)), np.zeros((NS, B)), np.zeros((NS, N_PER_SOURCE, B), dtype=np.int64),
                 np.zeros((NS, B), dtype=np.int64), np.zeros(NS, dtype=np.int64))
    KDU = KD if mech.any_dis else 1
    plant = Plants(np.zeros((NS, B)), np.zeros((NS, B)), np.zeros((NS, B)), np.zeros((NS, B)),
                   np.zeros((NS, B)), np.zeros((NS, B)), np.zeros((NS, B, KDU), dtype=np.int64),
                   np.ones((NS, B, KDU)))
    LW = L if mech.any_rework else 1
    imp = Imports(np.zeros((NS, B), dtype=np.int64), np.zeros((NS, B)), np.zeros((NS, B)), np.zeros((NS, B)),
                  np.zeros((NS, B)), np.zeros((NS, B, L), dtype=np.int64), np.zeros((NS, B, L)),
                  np.zeros((NS, B)), np.zeros((NS, B), dtype=np.int64), np.zeros((NS, B)),
                  np.zeros((NS, B, LW), dtype=np.int64), np.zeros((NS, B, LW)))
    refurb = Refurb(np.zeros((NS, B), dtype=np.int64), np.zeros((NS, B)), np.zeros((NS, B)))
    fire = Fire(np.zeros(B), np.ones(B), np.zeros(B), np.zeros(B), np.zeros(B, dtype=np.int64),
                np.zeros(B, dtype=np.int64), np.zeros(B, dtype=np.int64), np.zeros(B, dtype=np.int64),
                np.zeros(B), np.zeros(B), np.zeros(B), np.zeros(B), np.zeros((N_TOTALS, B), dtype=np.int64),
                np.zeros(B), np.zeros(B, dtype=np.int64))
    NRB = NR if mech.has_regimes else 1
    regs = Regimes(np.ones((NRB, B)), np.zeros((NRB, B)), np.zeros(B, dtype=np.int64),
                   np.zeros((NRB, N_PER_REGIME, B), dtype=np.int64))
    obs = np.zeros((max(m.obs.shape[0], 1), 2, B), dtype=np.int64)
    NCU = max(m.comp_src.shape[0], 1)
    comp = Components(np.zeros((NCU, B), dtype=np.int64), np.zeros((NCU, B)), np.zeros((NCU, B)),
                      np.zeros((NCU, B)), np.zeros((NCU, B)), np.zeros((NCU, B), dtype=np.int64),
                      np.zeros((NCU, B), dtype=np.int64), np.zeros((NCU, B), dtype=np.int64), np.ones(B))
    LC = L if mech.any_cont else 1
    keyed = Keyed(np.zeros(NS, dtype=np.uint64), np.zeros(NS, dtype=np.uint64), np.zeros(B, dtype=np.uint64),
                  np.zeros((NS, B), dtype=np.int64), np.zeros((NS, B)), np.zeros((NS, B, LC), dtype=np.int64),
                  np.zeros(NS, dtype=np.uint64), np.zeros(NS, dtype=np.uint64))
    return BlockState(mech, x, src, plant, imp, refurb, fire, regs, obs, comp, keyed)
