"""Speed and memory of ``artysim run`` on the canonical benchmark scenario (benchmarks/b1.toml).

Times the whole process (start-up, sampling, simulation, file written) as a user sees it, with a
warm numba cache, and reports: run-days per second, 1 -> 2 thread scaling, peak memory, cold-start
time (empty cache), warm start-up time, and the ratio to the plain-numpy reference.

    python benchmarks/bench.py                  # 10^5 and 10^6 runs
    python benchmarks/bench.py --runs 100000    # one size
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "b1.toml"
DAYS = 365


def _artysim() -> list[str]:
    return [sys.executable, "-m", "artysim.cli"]


def run_once(runs: int, threads: int, cache_dir: str, quiet: bool = True) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one ``artysim run`` process."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "b1.nc"
        cmd = _artysim() + ["run", str(SCENARIO), "--runs", str(runs), "--threads", str(threads),
                            "-o", str(out), "--quiet"]
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        # measure the child's own peak: run it through a tiny wrapper that reports ru_maxrss
        wrapper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
                   "r = subprocess.run(sys.argv[1:]); w = time.perf_counter() - t; "
                   "m = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024; "
                   "print(w, m); sys.exit(r.returncode)")
        p = subprocess.run([sys.executable, "-c", wrapper, *cmd], env=env, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"artysim run failed:\n{p.stderr}")
        wall, peak = (float(x) for x in p.stdout.split())
        return wall, peak


def numpy_reference(runs: int) -> float:
    """Run-days per second of the plain-numpy version (benchmarks/numpy_reference.py)."""
    sys.path.insert(0, str(HERE))
    import numpy_reference  # noqa: PLC0415

    t = time.perf_counter()
    numpy_reference.simulate(runs, 12345)
    return runs * DAYS / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=2, help="take the best of this many timings")
    ap.add_argument("--numpy-runs", type=int, default=100_000,
                    help="runs for the numpy reference (0 to skip); its rate does not depend on size")
    args = ap.parse_args()
    ncpu = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as cold_cache:
        t0, _ = run_once(1000, ncpu, cold_cache)
        warm_start, _ = min(run_once(1000, ncpu, cold_cache) for _ in range(args.repeat))
        print(f"cold start (empty numba cache), 1,000 runs: {t0:.1f} s")
        print(f"warm start, 1,000 runs:                      {warm_start:.2f} s")
        rates = {}
        for runs in args.runs:
            for threads in sorted({1, ncpu}):
                wall, peak = min(run_once(runs, threads, cold_cache) for _ in range(args.repeat))
                rate = runs * DAYS / wall
                rates[(runs, threads)] = rate
                print(f"runs {runs:>9,}  threads {threads}:  {wall:7.2f} s  {rate / 1e6:6.2f} M run-days/s  "
                      f"peak {peak:6.0f} MB")
            if ncpu > 1:
                print(f"  scaling 1 -> {ncpu} threads: {rates[(runs, ncpu)] / rates[(runs, 1)]:.2f}x")
    if args.numpy_runs:
        ref = numpy_reference(args.numpy_runs)
        print(f"plain numpy, {args.numpy_runs:,} runs: {ref / 1e6:.2f} M run-days/s "
              f"(peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
        best = max(rates.values())
        print(f"artysim / numpy: {best / ref:.1f}x")


if __name__ == "__main__":
    main()
