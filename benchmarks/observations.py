"""The cost of observations: benchmarks/b1.toml with none and with three ``[[observation]]`` tables (a
flow by source over a window, a share of fire, a stock averaged over a window), each run the same
number of runs, alternated, warm cache (one small run of each first compiles nothing new: the kernel
is the same function).

    NUMBA_CACHE_DIR=... python benchmarks/observations.py [--runs 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from artysim.jobs import run as runner
from artysim.model.load import load, loads

HERE = Path(__file__).resolve().parent
OBS = """
[[observation]]
name = "import_received_q1"
quantity = "received"
source = "import"
from = "2023-10-01"
to = "2023-12-31"
statistic = "sum"
value = { dist = "uniform", low = 1e6, high = 2e6 }
cite = ["N33"]

[[observation]]
name = "import_share"
quantity = "fired"
source = "import"
to = "2024-08-30"
statistic = "share_of_fired"
value = { dist = "normal", mean = 0.3, sd = 0.1 }
cite = ["N33"]

[[observation]]
name = "stock_winter"
quantity = "stock"
from = "2023-12-01"
to = "2024-02-29"
statistic = "mean_per_day"
value = { dist = "lognormal", median = 4e6, sigma = 0.5 }
cite = ["N33"]
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    plain = load(HERE / "b1.toml")
    observed = loads((HERE / "b1.toml").read_text() + OBS, origin="b1+observations")
    times: dict[str, list[float]] = {"none": [], "3 observations": []}
    cpu: dict[str, list[float]] = {"none": [], "3 observations": []}  # all threads: steadier on a busy machine
    with tempfile.TemporaryDirectory() as d:
        for loaded in (plain, observed):  # warm-up
            runner.run_loaded(loaded, runs=2000, output=Path(d) / "w.nc", force=True, quiet=True)
        for _ in range(args.repeats):
            for name, loaded in (("none", plain), ("3 observations", observed)):
                t0, c0 = time.perf_counter(), time.process_time()
                runner.run_loaded(loaded, runs=args.runs, output=Path(d) / "r.nc", force=True, quiet=True)
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    for name, ts in times.items():
        print(f"{name:>15}: wall " + ", ".join(f"{t:.2f}" for t in ts) + f" s (best {min(ts):.2f} s); CPU "
              + ", ".join(f"{t:.2f}" for t in cpu[name]) + f" s (best {min(cpu[name]):.2f} s)")
    for what, d_ in (("wall", times), ("CPU", cpu)):
        print(f"cost of 3 observations, {what}: {100 * (min(d_['3 observations']) / min(d_['none']) - 1):+.1f} % "
              f"(best of {args.repeats}, {args.runs:,} runs)")


if __name__ == "__main__":
    main()
