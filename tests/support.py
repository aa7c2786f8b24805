"""Shared test helpers (imported as ``from support import ...``; pytest puts ``tests/`` on sys.path):
Monte Carlo tolerances, goodness of fit, scenarios from TOML strings, simulation results, CLI refusals.

Every statistical assertion in this suite is "estimate within k Monte Carlo standard errors of the
exact value", with a fixed seed, so a test is deterministic and its tolerance is justified by the
standard error, not tuned until green. ``k`` is stated in each test.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.stats as st

from artysim.core import engine, layout
from artysim.jobs import run as runner
from artysim.model import build
from artysim.model import load as loading
from artysim.results import daily as daily_mod

# ----------------------------------------------------------------------------- tolerances


def mc_tol(se: float, k: float = 4.0) -> float:
    """Tolerance of ``k`` Monte Carlo standard errors."""
    return k * float(se)


def assert_mc(estimate: float, exact: float, se: float, k: float, what: str = "") -> None:
    """Assert ``|estimate - exact| <= k * se`` with a message giving the z-score."""
    tol = mc_tol(se, k)
    z = (estimate - exact) / se if se > 0 else math.inf * (estimate != exact)
    assert abs(estimate - exact) <= tol, (
        f"{what}: estimate {estimate!r} vs exact {exact!r}: off by {estimate - exact:.6g} = {z:.2f} SE "
        f"(allowed {k} SE, SE = {se:.6g})"
    )


def se_mean(x: np.ndarray) -> float:
    """Standard error of the sample mean, from the sample."""
    x = np.asarray(x, dtype=np.float64)
    return float(x.std(ddof=1) / math.sqrt(len(x)))


def se_var(x: np.ndarray) -> float:
    """Standard error of the sample variance, from the sample's 2nd and 4th central moments."""
    x = np.asarray(x, dtype=np.float64)
    d = x - x.mean()
    m2 = np.mean(d * d)
    m4 = np.mean(d**4)
    return float(math.sqrt(max(m4 - m2 * m2, 0.0) / len(x)))


def se_var_exact(var: float, mu4: float, n: int) -> float:
    """Standard error of the sample variance from the exact 2nd and 4th central moments."""
    return math.sqrt(max(mu4 - var * var, 0.0) / n)


# ----------------------------------------------------------------------------- goodness of fit

P_MIN = 1e-3  # goodness-of-fit tests must give p above this (fixed seeds: deterministic)


def pooled_chisquare(sample: np.ndarray, pmf, cdf, min_expected: float = 5.0) -> tuple[float, int, float]:
    """Chi-square goodness of fit of integer ``sample`` to a discrete law given by ``pmf``/``cdf``.

    Bins are the integers from the sample's minimum to its maximum; the law's mass below the
    minimum goes to the first bin and above the maximum to the last. Adjacent bins are pooled
    (left to right) until every expected count is at least ``min_expected``.
    Returns (statistic, degrees of freedom, p-value).
    """
    sample = np.asarray(sample, dtype=np.int64)
    n = len(sample)
    lo, hi = int(sample.min()), int(sample.max())
    ks = np.arange(lo, hi + 1)
    obs = np.bincount(sample - lo, minlength=len(ks)).astype(np.float64)
    exp = n * np.asarray(pmf(ks), dtype=np.float64)
    exp[0] += n * float(cdf(lo - 1))
    exp[-1] += n * (1.0 - float(cdf(hi)))
    o_groups, e_groups = [], []
    o_acc = e_acc = 0.0
    for o, e in zip(obs, exp):
        o_acc += o
        e_acc += e
        if e_acc >= min_expected:
            o_groups.append(o_acc)
            e_groups.append(e_acc)
            o_acc = e_acc = 0.0
    if e_acc > 0 or o_acc > 0:
        if e_groups:
            o_groups[-1] += o_acc
            e_groups[-1] += e_acc
        else:
            o_groups.append(o_acc)
            e_groups.append(e_acc)
    o_arr, e_arr = np.array(o_groups), np.array(e_groups)
    df = len(o_arr) - 1
    if df < 1:
        return 0.0, 0, 1.0
    stat = float(np.sum((o_arr - e_arr) ** 2 / e_arr))
    return stat, df, float(st.chi2.sf(stat, df))


def assert_gof(p: float, what: str) -> None:
    assert p > P_MIN, f"{what}: goodness-of-fit p-value {p:.3g} <= {P_MIN}"


# ----------------------------------------------------------------------------- scenarios


def load_scenario(text: str, overrides: list[str] | None = None) -> loading.Loaded:
    """A validated scenario from a TOML string (dedented)."""
    return loading.loads(textwrap.dedent(text), overrides)


def header(horizon: int, *, threshold: float = 0.05, sample: int = 0, name: str = "t") -> str:
    """The [scenario] and [output] tables of a test scenario."""
    return textwrap.dedent(f"""\
        [scenario]
        name = "{name}"
        start_date = "2024-01-01"
        horizon_days = {horizon}

        [output]
        shortage_threshold = {threshold}
        trajectory_sample = {sample}
        """)


#: a scenario using every model feature at once (priority issue, ramp, noise, imports with lots,
#: transit, cap and accuracy), with parameters chosen so that shortages, transit cut-offs and the
#: supplier cap all happen in some runs
ALL_FEATURES = header(200, sample=50, name="all-features") + """
[demand]
base = { dist = "lognormal", median = 3000, p95 = 6000 }
daily_cv = 0.4

[[source]]
name = "old"
kind = "stockpile"
initial = { dist = "normal", mean = 200000, sd = 80000, low = 0 }
dud_rate = { dist = "pert", min = 0.05, mode = 0.1, max = 0.3 }
accuracy = 0.9

[[source]]
name = "factory"
kind = "production"
annual = { dist = "triangular", min = 100000, mode = 300000, max = 500000 }
annual_end = { dist = "gamma", mean = 600000, sd = 100000 }
daily_cv = { dist = "uniform", low = 0, high = 0.5 }
dud_rate = { dist = "beta", mean = 0.03, concentration = 100 }

[[source]]
name = "deal"
kind = "import"
start_day = { dist = "discrete", values = [0, 30, 250], weights = [1, 2, 1] }
shipments_per_month = { dist = "triangular", min = 1, mode = 4, max = 10 }
shipment_size = { dist = "gamma", mean = 20000, sd = 15000 }
transit_days = { dist = "pert", min = 5, mode = 15, max = 60 }
available = { dist = "uniform", low = 50000, high = 400000 }
dud_rate = { dist = "beta", mean = 0.3, concentration = 10 }
lot_concentration = 5
accuracy = { dist = "uniform", low = 0.5, high = 1.0 }

[policy]
issue = "priority"
order = ["deal", "factory", "old"]
"""


#: every mechanism of model depth at once, on top of the core features: schedules (demand, production,
#: import rate and size), regimes, rationing, legacy refurbishment, disruptions, depot strikes,
#: reject-on-receipt with rework, and correlated inputs
ALL_MECHANISMS = header(300, sample=20, name="all-mechanisms") + """
[demand]
base = [{ from = "2024-01-01", value = { dist = "lognormal", median = 3000, p95 = 6000 } },
        { from = "2024-04-01", value = { dist = "uniform", low = 2000, high = 7000 } }]
daily_cv = 0.3
[[demand.regime]]
name = "positional"
multiplier = 1.0
mean_days = { dist = "uniform", low = 20, high = 60 }
to = { offensive = 2, lull = 1 }
[[demand.regime]]
name = "offensive"
multiplier = { dist = "triangular", min = 1.5, mode = 2, max = 3 }
mean_days = 15
[[demand.regime]]
name = "lull"
multiplier = 0.5
mean_days = 10
to = { positional = 1 }

[[source]]
name = "old"
kind = "stockpile"
initial = { dist = "normal", mean = 200000, sd = 80000, low = 0 }
dud_rate = { dist = "pert", min = 0.05, mode = 0.1, max = 0.3 }
legacy = { dist = "uniform", low = 100000, high = 300000 }
legacy_serviceable = { dist = "beta", mean = 0.5, concentration = 20 }
refurbish_per_day = { dist = "uniform", low = 200, high = 900.5 }
refurbished_dud_rate = 0.15

[[source]]
name = "factory"
kind = "production"
annual = [{ from = "2024-01-01", value = { dist = "triangular", min = 100000, mode = 300000, max = 500000 } },
          { from = "2024-06-01", value = 600000 }]
daily_cv = 0.2
dud_rate = { dist = "beta", mean = 0.03, concentration = 100 }
[source.disruptions]
per_year = { dist = "uniform", low = 2, high = 20 }
cut = { dist = "beta", mean = 0.5, concentration = 4 }
days = { dist = "gamma", mean = 12, sd = 8 }

[[source]]
name = "deal"
kind = "import"
start_day = { dist = "discrete", values = [0, 30, 250], weights = [1, 2, 1] }
shipments_per_month = [{ from = "2024-01-01", value = { dist = "triangular", min = 1, mode = 4, max = 10 } },
                       { from = "2024-05-01", value = 8 }]
shipment_size = [{ from = "2024-01-01", value = { dist = "gamma", mean = 20000, sd = 15000 } },
                 { from = "2024-07-01", value = { dist = "uniform", low = 5000, high = 40000 } }]
transit_days = { dist = "pert", min = 5, mode = 15, max = 60 }
available = { dist = "uniform", low = 50000, high = 400000 }
dud_rate = { dist = "beta", mean = 0.3, concentration = 10 }
lot_concentration = 5
accuracy = { dist = "uniform", low = 0.5, high = 1.0 }
reject_on_receipt = { dist = "uniform", low = 0.1, high = 0.6 }
rework_days = { dist = "uniform", low = 5, high = 80 }
rework_yield = { dist = "beta", mean = 0.6, concentration = 10 }

[policy]
issue = "proportional"
reserve_days = { dist = "uniform", low = 3, high = 15 }
ration_fraction = { dist = "uniform", low = 0.2, high = 0.6 }

[strikes]
per_year = { dist = "uniform", low = 1, high = 12 }
fraction = { dist = "beta", mean = 0.1, concentration = 10 }

[[correlation]]
between = ["demand.base@2024-01-01", "source.factory.annual@2024-01-01"]
spearman = -0.4

[[correlation]]
between = ["source.deal.dud_rate", "source.deal.reject_on_receipt"]
spearman = 0.6
"""


TOTAL_COLS = {
    "demand": layout.O_DEMAND, "fired": layout.O_FIRED, "effective": layout.O_EFFECTIVE,
    "shortfall": layout.O_SHORTFALL, "stock_min": layout.O_STOCK_MIN, "stock_final": layout.O_STOCK_FINAL,
    "short_days": layout.O_SHORT_DAYS, "first_short": layout.O_FIRST_SHORT,
    "rationed": layout.O_RATIONED, "strikes": layout.O_STRIKES, "refire_asked": layout.O_REFIRE_ASKED,
}
SOURCE_COLS = {
    "initial": layout.P_INITIAL, "received": layout.P_RECEIVED, "fired": layout.P_FIRED,
    "duds": layout.P_DUDS, "effective": layout.P_EFFECTIVE, "final": layout.P_FINAL,
    "dispatched": layout.P_DISPATCHED, "refurbished": layout.P_REFURBISHED, "lost": layout.P_LOST,
    "rejected": layout.P_REJECTED, "reworked": layout.P_REWORKED, "disruptions": layout.P_DISRUPTIONS,
    "refired": layout.P_REFIRED,
    "containers": layout.P_CONTAINERS,
}


COMPONENT_COLS = {"initial": layout.C_INITIAL, "produced": layout.C_PRODUCED, "final": layout.C_FINAL,
                  "bound": layout.C_BOUND}


@dataclass
class Sim:
    """Everything ``engine.simulate_in_memory`` returns, with named accessors."""

    model: build.Model
    params: np.ndarray
    totals: np.ndarray
    per_source: np.ndarray
    daily: engine.Daily
    runs: int
    per_regime: np.ndarray | None = None
    observed: np.ndarray | None = None  # runs x observations (model.observed)
    per_component: np.ndarray | None = None  # runs x max(lines, 1) x N_PER_COMPONENT

    def comp(self, line: str, col: str) -> np.ndarray:
        """A component line's per-run output (``line``: "source.component"; col: COMPONENT_COLS)."""
        c = self.model.component_names.index(line)
        return self.per_component[:, c, COMPONENT_COLS[col]]

    def total(self, name: str) -> np.ndarray:
        return self.totals[:, TOTAL_COLS[name]]

    def src(self, source: str, col: str) -> np.ndarray:
        s = self.model.scenario.source_names().index(source)
        return self.per_source[:, s, SOURCE_COLS[col]]

    def param(self, path: str) -> np.ndarray:
        i = [p.path for p in self.model.params].index(path)
        return self.params[:, i]

    def derived(self, qs=(0.05, 0.25, 0.5, 0.75, 0.95)) -> dict:
        d = self.daily
        names = ("stock", "fired", "effective", "shortfall")
        stats = {f"{n}_hist": d.hist[:, j, :] for j, n in enumerate(names)}
        stats |= {f"{n}_sum": d.sums[:, j] for j, n in enumerate(names)}
        stats |= {"n_short": d.n_short, "n_first_short": d.n_first_short,
                  "fired_by_source_sum": d.src_sums[:, 0, :], "effective_by_source_sum": d.src_sums[:, 1, :],
                  "stock_by_source_hist": d.src_hist, "stock_by_source_sum": d.src_day[:, 0, :],
                  "arrivals_by_source_sum": d.src_day[:, 1, :], "days_on_hand_hist": d.doh_hist}
        return daily_mod.derive_daily(stats, np.asarray(qs, dtype=np.float64), self.runs)


def simulate(loaded_or_text, runs: int, seed: int = 12345, **kw) -> Sim:
    """Run a scenario (a Loaded or a TOML string) in memory."""
    loaded = load_scenario(loaded_or_text) if isinstance(loaded_or_text, str) else loaded_or_text
    model, cat, daily = runner.simulate_in_memory(loaded, runs, seed, **kw)
    return Sim(model, cat["params"], cat["totals"], cat["per_source"], daily, runs, cat["per_regime"],
               cat["observed"], cat["per_component"])


def invoke(*args):
    """``artysim ARGS`` in this process (click's runner; arguments as strings, exceptions raised)."""
    from click.testing import CliRunner

    from artysim.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def run_scenario(out: Path, scenario: str, runs: int, *sets: str) -> Path:
    """``artysim run SCENARIO --runs RUNS -o OUT -q`` with each ``--set``; asserts it succeeded."""
    args = ["run", scenario, "--runs", runs, "-o", out, "-q"]
    for s in sets:
        args += ["--set", s]
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    return out


def assert_refused(result, *needles: str) -> str:
    """Exit status 2, a one-line message on stderr naming each needle, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())
