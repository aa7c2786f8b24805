"""Cold compile and warm speed of this checkout against another one (a previous version), measured
in pairs: both processes start at the same moment, so both see the same machine load.

On a shared or busy machine wall times drift by tens of percent from one minute to the next;
measuring the two versions side by side, and reporting user CPU seconds (the compile is single
threaded) as well as wall seconds, gives a ratio that means something.

    python benchmarks/versus.py /path/to/previous/checkout --cold 3        # compile, empty caches
    python benchmarks/versus.py /path/to/previous/checkout --warm 3 --runs 1000000

Each checkout runs with its own sources (PYTHONPATH) and the same interpreter.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def _start(tree: Path, cache: str, runs: int, threads: int, out: Path) -> tuple[subprocess.Popen, float]:
    cmd = [sys.executable, "-m", "artysim.cli", "run", str(tree / "benchmarks" / "b1.toml"), "--runs", str(runs),
           "--threads", str(threads), "-o", str(out), "--quiet"]
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(tree))
    return subprocess.Popen(cmd, cwd=tree, env=env), time.perf_counter()


def pair(trees: list[Path], caches: list[str], runs: int, threads: int) -> list[tuple[float, float, float]]:
    """(wall s, user+sys CPU s, peak resident MiB) of each tree's run, all started together."""
    with tempfile.TemporaryDirectory() as d:
        procs = [_start(t, c, runs, threads, Path(d) / f"{k}.nc") for k, (t, c) in enumerate(zip(trees, caches))]
        res: list[tuple[float, float, float]] = []
        for p, t0 in procs:
            _, status, ru = os.wait4(p.pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                sys.exit(f"versus: a run failed (exit {os.waitstatus_to_exitcode(status)})")
            res.append((time.perf_counter() - t0, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024))
        return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("other", type=Path, help="the other checkout (e.g. a worktree of the previous version)")
    ap.add_argument("--cold", type=int, default=0, help="pairs of cold compiles (empty numba caches)")
    ap.add_argument("--warm", type=int, default=0, help="pairs of warm runs")
    ap.add_argument("--runs", type=int, default=1_000_000, help="runs of a warm pair")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    trees = [a.other.resolve(), HERE]
    names = ["other", "this"]
    for kind, n in (("cold", a.cold), ("warm", a.warm)):
        if not n:
            continue
        ratios_cpu, ratios_wall, ratios_mem = [], [], []
        with tempfile.TemporaryDirectory() as root:
            caches = [str(Path(root) / nm) for nm in names]
            if kind == "warm":
                pair(trees, caches, 1000, a.threads)  # fill both caches
            for i in range(n):
                if kind == "cold":
                    caches = [str(Path(root) / f"{nm}-{i}") for nm in names]
                runs = 1000 if kind == "cold" else a.runs
                (w0, c0, m0), (w1, c1, m1) = pair(trees, caches, runs, a.threads)
                ratios_cpu.append(c1 / c0)
                ratios_wall.append(w1 / w0)
                ratios_mem.append(m1 / m0)
                print(f"{kind} {i + 1}: other {w0:7.1f} s wall {c0:7.1f} s cpu {m0:6.0f} MiB | this {w1:7.1f} s wall "
                      f"{c1:7.1f} s cpu {m1:6.0f} MiB | this/other cpu {c1 / c0:.3f} wall {w1 / w0:.3f} "
                      f"peak memory {m1 / m0:.3f}", flush=True)
        print(f"{kind}: median this/other cpu {statistics.median(ratios_cpu):.3f} "
              f"wall {statistics.median(ratios_wall):.3f} peak memory {statistics.median(ratios_mem):.3f} "
              f"over {n} pairs", flush=True)


if __name__ == "__main__":
    main()
