"""Every position the numeric core and its callers agree on, in one pure-Python module.

Columns of the kernel's role tables and output matrices, source kinds, issue policies, codes of the
in-kernel distributions and the order of a run's random streams: the kernel, the model builder, the
results schema and the resource guard all read them from here, so reading a file or validating a
scenario never imports numba, and no order is held only by a comment.
"""

from __future__ import annotations

import hashlib

KIND_STOCKPILE = 0
KIND_PRODUCTION = 1
KIND_IMPORT = 2

# columns of the per-source role table: index into the per-run parameter matrix, -1 = absent
R_INITIAL = 0
R_ANNUAL_END = 1  # production ramp; the annual rate itself (and imports' shipment rate) lives in the schedule tables
R_DAILY_CV = 2
R_DUD = 3
R_ACCURACY = 4
R_START = 5
R_AVAILABLE = 6
R_LOTCONC = 7
R_LEGACY = 8  # stockpile: nominal legacy stock
R_SERVICEABLE = 9  # stockpile: serviceable fraction of the legacy stock
R_REFURB_RATE = 10  # stockpile: refurbishment throughput, rounds/day
R_REFURB_DUD = 11  # stockpile: dud rate of refurbished rounds
R_DIS_RATE = 12  # production: disruption events per year
R_REJECT = 13  # import: fraction rejected on receipt
R_REWORK_DAYS = 14  # import: days a rejected lot spends in rework
R_REWORK_YIELD = 15  # import: fraction of reworked rounds that return usable
R_RPC = 16  # import by the container: rounds per container (drawn once per run)
N_ROLES = 17

# columns of the global role vector
GR_DCV = 0
GR_RESERVE = 1  # ration policy: reserve, days of base fire
GR_RATION = 2  # ration policy: fraction of demand issued at the reserve
GR_STRIKE_RATE = 3  # depot strikes per year
GR_STRIKE_ROW = 4  # row of the strike fraction in the coded-distribution table
GR_REGIME_INIT = 5  # fixed initial regime, or -1: drawn from the stationary distribution
GR_REFIRE = 6  # demand.refire: share of a salvo's failed rounds fired again the same day (-1: no re-fire)
N_GROLES = 7

# columns of the per-source event-row table (rows of the coded-distribution table, -1 = none)
E_TRANSIT = 0
E_CUT = 1
E_DIS_DAYS = 2
E_CONTAINERS = 3  # import by the container: containers per shipment
N_EROWS = 4

KD = 8  # disruption slots per run and source (more overlapping events merge into the soonest-ending)

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
O_RATIONED = 8  # days on which the ration policy held fire back
O_STRIKES = 9  # depot strikes
O_REFIRE_ASKED = 10  # re-fire: rounds asked by the corrections after the first salvo (fired or not)
N_TOTALS = 11

# per-run, per-source totals
P_INITIAL = 0
P_RECEIVED = 1
P_FIRED = 2
P_DUDS = 3
P_EFFECTIVE = 4
P_FINAL = 5
P_DISPATCHED = 6  # imports: shipped by the supplier (received + still in transit at the end)
P_REFURBISHED = 7  # stockpiles: legacy rounds refurbished into the stock
P_LOST = 8  # destroyed by depot strikes
P_REJECTED = 9  # imports: rejected on receipt
P_REWORKED = 10  # imports: rejected rounds back from rework (also counted in received)
P_DISRUPTIONS = 11  # production: disruption events
P_REFIRED = 12  # re-fire: rounds fired again after failures (also counted in P_FIRED)
P_CONTAINERS = 13  # imports by the container: containers received
N_PER_SOURCE = 14

# per-run, per-component outputs (production sources with ``components``)
C_INITIAL = 0  # inventory on day 0
C_PRODUCED = 1  # made by the component's line over the horizon
C_FINAL = 2  # inventory left at the end (initial + produced - assembled)
C_BOUND = 3  # days on which this component's inventory was the minimum (ties: each component at it)
N_PER_COMPONENT = 4

# columns of the per-component role table: index into the per-run parameter matrix, -1 = absent
CR_ANNUAL_END = 0  # the ramp's end; the annual rate itself lives in the schedule tables
CR_DAILY_CV = 1
CR_INITIAL = 2
N_CROLES = 3

# per-run, per-regime outputs
Q_DAYS = 0
Q_ENTRIES = 1
N_PER_REGIME = 2

BLOCK = 256
DAYS_PER_YEAR = 365.0
DAYS_PER_MONTH = 365.0 / 12.0


# ---- distributions sampled inside the kernel (per shipment, per event): a code and a float64 row
K_FIXED = 0  # value
K_UNIFORM = 1  # low, high
K_TRIANGULAR = 2  # min, mode, max
K_SCALED_BETA = 3  # low, high, alpha, beta   (pert and beta)
K_NORMAL = 4  # mean, sd, cdf(low), cdf(high)   truncated by inversion
K_LOGNORMAL = 5  # mu, sigma
K_GAMMA = 6  # shape, scale
K_DISCRETE = 7  # n values; values and cumulative weights in separate tables
KERNEL_PARAMS = 6  # parameters per coded-distribution row
KERNEL_DISCRETE = 64  # values (and cumulative weights) per discrete row


# ---- the random streams of a run, in kernel order: demand; each source's arrivals, effect and
# events; the regime chain; depot strikes. Each is keyed by its name (``stream_names``), so adding a
# mechanism or a source leaves every other stream's numbers unchanged.
def stream_demand() -> int:
    return 0


def stream_arrivals(s: int) -> int:
    """Arrivals of source s: production noise, or an import's daily shipment counts (each shipment's
    size, transit, lot dud rate and containers come from streams keyed by the shipment)."""
    return 1 + s


def stream_effect(s: int, n_sources: int) -> int:
    """Duds and misses of source s's fired rounds."""
    return 1 + n_sources + s


def stream_events(s: int, n_sources: int) -> int:
    """Refurbishment, disruptions and rejection on receipt of source s."""
    return 1 + 2 * n_sources + s


def stream_regime(n_sources: int) -> int:
    return 1 + 3 * n_sources


def stream_strikes(n_sources: int) -> int:
    return 2 + 3 * n_sources


def stream_refire(s: int, n_sources: int) -> int:
    """Duds and misses of the re-fired rounds of source s (drawn only when demand.refire is used)."""
    return 3 + 3 * n_sources + s


def stream_hits(s: int, n_sources: int) -> int:
    """Misses among source s's non-dud rounds (apart from the duds, so accuracy never moves them)."""
    return 3 + 4 * n_sources + s


def stream_lots(s: int, n_sources: int) -> int:
    """Base key of source s's lot dud rates: lot k draws from its own stream keyed by (key, k)."""
    return 3 + 5 * n_sources + s


def stream_containers(s: int, n_sources: int) -> int:
    """Base key of source s's containers per shipment: shipment k has its own stream keyed by (key, k)."""
    return 3 + 6 * n_sources + s


def stream_rework(s: int, n_sources: int) -> int:
    """Rejected rounds of source s that come back from rework (apart from the rejection draws)."""
    return 3 + 7 * n_sources + s


def stream_sizes(s: int, n_sources: int) -> int:
    """Base key of import s's shipment sizes: shipment k's size draws from its own stream keyed by (key, k)."""
    return 3 + 8 * n_sources + s


def stream_transit(s: int, n_sources: int) -> int:
    """Base key of import s's transit times: shipment k's transit draws from its own stream keyed by (key, k)."""
    return 3 + 9 * n_sources + s


def stream_component(c: int, n_sources: int) -> int:
    """Noise of component line c (drawn only by a production source with ``components``)."""
    return 3 + 10 * n_sources + c


def n_streams(n_sources: int, n_components: int = 0) -> int:
    return 3 + 10 * n_sources + n_components


def path_domain(name: str) -> int:
    """Stable 64-bit domain of a stream name (BLAKE2b; never Python's salted ``hash``)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def stream_names(sources: list[str], components: list[str] = ()) -> list[str]:
    """The name of each stream, in kernel order (its key is a hash of the name and the seed);
    ``components`` as ``source.component``, each line's noise on its own stream."""
    return (["model:demand"] + [f"model:arrivals.{n}" for n in sources] + [f"model:effect.{n}" for n in sources]
            + [f"model:events.{n}" for n in sources] + ["model:regime", "model:strikes"]
            + [f"model:refire.{n}" for n in sources] + [f"model:hits.{n}" for n in sources]
            + [f"model:lots.{n}" for n in sources] + [f"model:containers.{n}" for n in sources]
            + [f"model:rework.{n}" for n in sources] + [f"model:sizes.{n}" for n in sources]
            + [f"model:transit.{n}" for n in sources] + [f"model:component.{n}" for n in components])


_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _splitmix64(x: int) -> int:
    z = (x + _GOLDEN) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def key_of(seed: int, name: str) -> int:
    """The 64-bit key of stream ``name`` under ``seed``, in pure Python (equal to ``rng.stream_key``
    of its domain; results files record these keys so that ``compare`` can judge pairing without numba)."""
    return _splitmix64(_splitmix64(seed & _MASK) ^ ((path_domain(name) * _GOLDEN) & _MASK))


# ---- rows of the schedule tables: demand.base, then each source's rate (production annual, import
# shipments_per_month), then each source's shipment size (imports; coded-distribution rows)
SCHED_DEMAND = 0


def sched_rate(s: int) -> int:
    return 1 + s


def sched_size(s: int, n_sources: int) -> int:
    return 1 + n_sources + s


def sched_component(c: int, n_sources: int) -> int:
    """The annual rate of component line c (after the sizes)."""
    return 1 + 2 * n_sources + c


# ---- observations (``[[observation]]``): one row per observation of the kernel's table ``obs``
OB_MODE = 0  # OM_*: how the window is accumulated
OB_T0 = 1  # first day of the window (inclusive)
OB_T1 = 2  # last day of the window (inclusive)
OB_SRC = 3  # source index, -1 = all sources
OB_TOT = 4  # O_* column of the all-source total of a flow (-1: sum the sources' P_* column)
OB_PS = 5  # P_* column of a flow by source (-1: stock)
OB_SHARE = 6  # 1: also accumulate all rounds fired (the denominator of share_of_fired)
N_OB = 7
OM_FLOW = 0  # a flow summed over the window: cumulative total at t1 minus at t0 - 1
OM_STOCK_SUM = 1  # end-of-day stock added up over the window's days
OM_STOCK_END = 2  # end-of-day stock on t1
#: quantity -> (O_* all-source total or -1, P_* per-source column or -1 for stock); one table for the
#: model builder and the docs
OBS_QUANTITIES = {
    "demand": (O_DEMAND, -1),
    "fired": (O_FIRED, P_FIRED),
    "effective": (O_EFFECTIVE, P_EFFECTIVE),
    "duds": (-1, P_DUDS),
    "received": (-1, P_RECEIVED),
    "dispatched": (-1, P_DISPATCHED),
    "stock": (-1, -1),
    "shortfall": (O_SHORTFALL, -1),
    "containers": (-1, P_CONTAINERS),  # containers received (imports by the container; 0 for the others)
}
