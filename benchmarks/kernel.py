"""The kernel alone on benchmarks/b1.toml: wall and CPU seconds of ``engine._simulate`` over a full batch
loop, repeated (CPU seconds are steadier than wall on a busy machine). To compare two versions, start
this script in both checkouts at the same moment, each with its own sources and cache, so both see the
same load:

    NUMBA_CACHE_DIR=... PYTHONPATH=CHECKOUT python benchmarks/kernel.py [--runs 50000] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from floor import SCENARIO, time_kernel  # noqa: E402

from artysim.jobs.resources import batch_size_for  # noqa: E402
from artysim.model.load import load  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    loaded = load(SCENARIO)
    model, seed = loaded.model, int(loaded.scenario.run.seed)
    bs = batch_size_for(model.horizon, a.threads)
    time_kernel(model, seed, 2048, a.threads, bs)  # compiles or loads the kernel: not timed
    for _ in range(a.repeats):
        c0 = time.process_time()
        w = time_kernel(model, seed, a.runs, a.threads, bs)
        print(f"kernel, {a.runs:,} runs, {a.threads} thread(s): wall {w:.3f} s, CPU {time.process_time() - c0:.3f} s",
              flush=True)


if __name__ == "__main__":
    main()
