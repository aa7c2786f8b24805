"""Plain-numpy reference implementation of the canonical artysim benchmark scenario.

Vectorised over runs (all runs in one batch), stepping day by day in a Python
loop. It is the speed/memory baseline the numba core is compared against.

Usage: ``python benchmarks/numpy_reference.py --runs N [--seed S]``
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

DAYS = 365
QUANTILES = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
SOURCES = ("stockpile", "production", "import")
DAY_STATS = ("total_stock", "fired", "effective", "shortfall")

# Demand.
DEMAND_MEDIAN = 20_000.0
DEMAND_SIGMA = 0.35
DEMAND_CV = 0.25
SHORTAGE_THRESHOLD = 0.05
# Stockpile.
STOCK_LOW, STOCK_HIGH = 3e6, 8e6
STOCK_DUD = 0.05
# Domestic production.
PROD_LEFT, PROD_MODE, PROD_RIGHT = 1.5e6, 2.0e6, 2.5e6
PROD_CV = 0.1
PROD_DUD = 0.03
# Imports.
IMPORT_RATE = 4.35 * 12 / 365
IMPORT_SIZE_MEDIAN = 100_000.0
IMPORT_SIZE_SIGMA = 0.5
IMPORT_TRANSIT = 14
IMPORT_AVAILABLE = 1e9
IMPORT_DUD_MEAN = 0.2
IMPORT_DUD_CONC = 20.0
LOT_DUD_CONC = 50.0


def _mean_one_lognormal(cv: float) -> tuple[float, float]:
    """(mu, sigma) of a lognormal with mean 1 and the given coefficient of variation."""
    s2 = np.log1p(cv * cv)
    return -0.5 * s2, float(np.sqrt(s2))


def _stochastic_round(x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """floor(x + U) in place on the float buffer ``x``; returns int64."""
    x += u
    np.floor(x, out=x)
    return x.astype(np.int64)


def simulate(runs: int, seed: int) -> dict[str, np.ndarray]:
    """Simulate ``runs`` independent runs of the benchmark scenario; return outputs."""
    rng = np.random.default_rng(seed)
    n = runs
    dmu, dsig = _mean_one_lognormal(DEMAND_CV)
    pmu, psig = _mean_one_lognormal(PROD_CV)

    # Per-run parameters.
    base = rng.lognormal(np.log(DEMAND_MEDIAN), DEMAND_SIGMA, n)
    initial = np.rint(rng.uniform(STOCK_LOW, STOCK_HIGH, n)).astype(np.int64)
    prod_daily = rng.triangular(PROD_LEFT, PROD_MODE, PROD_RIGHT, n) / DAYS
    a = IMPORT_DUD_MEAN * IMPORT_DUD_CONC
    q_run = rng.beta(a, IMPORT_DUD_CONC - a, n)

    # Per-run state: stocks (n, 3) in source order, import stock dud rate.
    stock = np.zeros((n, 3), dtype=np.int64)
    stock[:, 0] = initial
    q_imp = np.zeros(n)
    supplier_left = np.full(n, IMPORT_AVAILABLE)
    # In-transit pipeline: rounds and dud-weighted rounds per dispatch-day slot.
    pipe_amt = np.zeros((IMPORT_TRANSIT, n))
    pipe_dud = np.zeros((IMPORT_TRANSIT, n))

    # Per-run accumulators.
    first_short = np.full(n, -1, dtype=np.int64)
    n_short = np.zeros(n, dtype=np.int64)
    tot_demand = np.zeros(n, dtype=np.int64)
    tot_fired = np.zeros(n, dtype=np.int64)
    tot_eff = np.zeros(n, dtype=np.int64)
    received = np.zeros((n, 3), dtype=np.int64)
    fired_src = np.zeros((n, 3), dtype=np.int64)
    duds_src = np.zeros((n, 3), dtype=np.int64)
    min_stock = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)

    # Per-day statistics.
    day_mean = np.empty((len(DAY_STATS), DAYS))
    day_q = np.empty((len(DAY_STATS), len(QUANTILES), DAYS))
    frac_short = np.empty(DAYS)

    # Scratch buffers.
    z = np.empty(n)
    u = np.empty(n)
    daily = np.empty((len(DAY_STATS), n))
    q_src = np.empty((n, 3))
    q_src[:, 0] = STOCK_DUD
    q_src[:, 1] = PROD_DUD

    for t in range(DAYS):
        slot = t % IMPORT_TRANSIT
        # --- arrivals: production ---
        rng.standard_normal(out=z)
        z *= psig
        z += pmu
        np.exp(z, out=z)
        z *= prod_daily
        rng.random(out=u)
        prod = _stochastic_round(z, u)
        stock[:, 1] += prod
        received[:, 1] += prod
        # --- arrivals: imports dispatched IMPORT_TRANSIT days ago ---
        if t >= IMPORT_TRANSIT:
            arr = pipe_amt[slot]
            s_imp = stock[:, 2]
            new = s_imp + arr
            has = new > 0
            q_imp[has] = (s_imp[has] * q_imp[has] + pipe_dud[slot, has]) / new[has]
            arr_i = arr.astype(np.int64)
            stock[:, 2] += arr_i
            received[:, 2] += arr_i
            pipe_amt[slot] = 0.0
            pipe_dud[slot] = 0.0
        # --- dispatch today's shipments (arrive t + transit, if within horizon) ---
        k = rng.poisson(IMPORT_RATE, n)
        if t + IMPORT_TRANSIT < DAYS:
            nz = np.flatnonzero(k)
            if nz.size:
                kk = k[nz]
                owner = np.repeat(np.arange(nz.size), kk)
                size = np.rint(
                    rng.lognormal(
                        np.log(IMPORT_SIZE_MEDIAN), IMPORT_SIZE_SIGMA, owner.size
                    )
                )
                ql = q_run[nz][owner]
                lot_q = rng.beta(ql * LOT_DUD_CONC, (1.0 - ql) * LOT_DUD_CONC)
                amt = np.bincount(owner, weights=size, minlength=nz.size)
                dud = np.bincount(owner, weights=size * lot_q, minlength=nz.size)
                left = supplier_left[nz]
                capped = amt > left
                if capped.any():
                    dud[capped] *= left[capped] / amt[capped]
                    amt[capped] = left[capped]
                supplier_left[nz] = left - amt
                pipe_amt[slot, nz] = amt
                pipe_dud[slot, nz] = dud
        # --- demand ---
        rng.standard_normal(out=z)
        z *= dsig
        z += dmu
        np.exp(z, out=z)
        z *= base
        rng.random(out=u)
        demand = _stochastic_round(z, u)
        # --- issue ---
        total = stock.sum(axis=1)
        fired = np.minimum(demand, total)
        num = fired[:, None] * stock
        denom = np.maximum(total, 1)[:, None]
        part, rem = np.divmod(num, denom)
        r = fired - part.sum(axis=1)
        # Largest remainder: rank of each source by remainder (ties by index).
        r0, r1, r2 = rem[:, 0], rem[:, 1], rem[:, 2]
        rank = np.empty((n, 3), dtype=np.int64)
        rank[:, 0] = (r1 > r0).astype(np.int64) + (r2 > r0)
        rank[:, 1] = (r0 >= r1).astype(np.int64) + (r2 > r1)
        rank[:, 2] = (r0 >= r2).astype(np.int64) + (r1 >= r2)
        part += rank < r[:, None]
        q_src[:, 2] = q_imp
        duds = rng.binomial(part, q_src)
        stock -= part
        fired_src += part
        duds_src += duds
        eff = fired - duds.sum(axis=1)
        short = demand - fired
        is_short = short > SHORTAGE_THRESHOLD * demand
        # --- per-run accumulators ---
        tot_demand += demand
        tot_fired += fired
        tot_eff += eff
        n_short += is_short
        first_short[(first_short < 0) & is_short] = t
        end_total = total - fired
        np.minimum(min_stock, end_total, out=min_stock)
        # --- per-day statistics ---
        daily[0] = end_total
        daily[1] = fired
        daily[2] = eff
        daily[3] = short
        day_mean[:, t] = daily.mean(axis=1)
        day_q[:, :, t] = np.quantile(daily, QUANTILES, axis=1).T
        frac_short[t] = is_short.mean()

    out: dict[str, np.ndarray] = {
        "first_shortage_day": first_short,
        "shortage_days": n_short,
        "total_demand": tot_demand,
        "total_fired": tot_fired,
        "total_effective": tot_eff,
        "total_shortfall": tot_demand - tot_fired,
        "initial_stockpile": initial,
        "received": received,
        "fired_by_source": fired_src,
        "duds_by_source": duds_src,
        "min_total_stock": min_stock,
        "final_total_stock": stock.sum(axis=1),
        "day_fraction_short": frac_short,
        "quantiles": QUANTILES.copy(),
    }
    for i, name in enumerate(DAY_STATS):
        out[f"day_mean_{name}"] = day_mean[i]
        out[f"day_quantiles_{name}"] = day_q[i]
    return out


def main() -> None:
    """Command-line entry point: run, time and summarise the benchmark."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, required=True)
    p.add_argument("--seed", type=int, default=12345)
    args = p.parse_args()

    t0 = time.perf_counter()
    res = simulate(args.runs, args.seed)
    wall = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"runs            {args.runs}")
    print(f"days            {DAYS}")
    print(f"wall_s          {wall:.3f}")
    print(f"Mrun-days/s     {args.runs * DAYS / wall / 1e6:.3f}")
    print(f"peak_rss_MB     {rss_mb:.1f}")
    print(f"P(any shortage) {np.mean(res['first_shortage_day'] >= 0):.4f}")
    print(f"mean fired      {res['total_fired'].mean():.6g}")
    print(f"mean effective  {res['total_effective'].mean():.6g}")
    print(f"mean demand     {res['total_demand'].mean():.6g}")
    print(f"mean short days {res['shortage_days'].mean():.3f}")
    hit = res["first_shortage_day"][res["first_shortage_day"] >= 0]
    med_first = float(np.median(hit)) if hit.size else float("nan")
    print(f"median first shortage day (if any) {med_first:.1f}")
    recv = ", ".join(
        f"{s}={v:.4g}" for s, v in zip(SOURCES, res["received"].mean(axis=0))
    )
    print(f"mean received   {recv}")
    print(f"mean end stock (day {DAYS - 1}) {res['day_mean_total_stock'][-1]:.6g}")


if __name__ == "__main__":
    main()
