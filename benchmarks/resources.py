"""Resource guard against reality: estimated vs measured peak memory (RSS) and file size.

Each case runs ``artysim run ... -q`` in its own process (peak RSS of that child alone) and compares
with ``artysim.resources.estimate`` for the same runs, horizon and threads.

    python benchmarks/resources.py            # the default cases (about a minute on 2 cores)
    python benchmarks/resources.py --quick    # two small cases
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from artysim.core import engine
from artysim.jobs import resources
from artysim.jobs import run as runner
from artysim.model import load as loading

REPO = Path(__file__).resolve().parent.parent
ARTYSIM = str(Path(sys.executable).with_name("artysim"))

#: (scenario, runs, horizon override or None, threads[, more --set values])
CASES = [
    ("nk-deal-2023", 2_000, None, 2),
    ("nk-deal-2023", 100_000, None, 2),
    ("nk-deal-2023", 400_000, None, 2),
    ("nk-deal-2023", 2_000, 3650, 2),
    ("nk-deal-2023", 2_000, 3650, 1),
    ("baseline-2023", 50_000, 1825, 2),
    ("nk-deal-2023", 500, 18250, 2),
    # issue 11: a trajectory sample larger than the run count (it was estimated as the run count)
    ("nk-deal-2023", 50, 3650, 2, ("output.trajectory_sample=10000",)),
    ("nk-deal-2023", 2_000, 3650, 1, ("output.trajectory_sample=5000",)),
]
QUICK = CASES[:1] + CASES[3:4]
ISSUE11 = CASES[-2:]

_CHILD = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
          "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024); sys.exit(p.returncode)")


def measure(name: str, runs: int, horizon: int | None, threads: int, folder: Path, sets=()) -> tuple[int, int]:
    """(peak RSS, file size) [bytes] of one run in a fresh process."""
    out = folder / f"{name}-{runs}-{horizon}-{threads}.nc"
    cmd = [ARTYSIM, "run", name, "--runs", str(runs), "--threads", str(threads), "-o", str(out), "-q", "--force"]
    if horizon:
        cmd += ["--set", f"scenario.horizon_days={horizon}"]
    for s in sets:
        cmd += ["--set", s]
    p = subprocess.run([sys.executable, "-c", _CHILD, *cmd], capture_output=True, text=True, check=True)
    size = out.stat().st_size
    out.unlink()
    return int(p.stdout.strip().splitlines()[-1]), size


def estimated(name: str, runs: int, horizon: int | None, threads: int, more=()) -> resources.Estimate:
    sets = ([f"scenario.horizon_days={horizon}"] if horizon else []) + list(more)
    model = loading.load(runner.resolve(name), sets).model
    n = engine.resolve_threads(threads)
    batch = resources.batch_size_for(model.horizon, n)
    return resources.estimate(model, runs, n, batch)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--issue11", action="store_true", help="only the cases added for issue 11")
    args = ap.parse_args()
    print(f"{'case':<38} {'RSS est':>9} {'RSS real':>9} {'ratio':>6}   {'file est':>9} {'file real':>9} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as d:
        for name, runs, horizon, threads, *more in ISSUE11 if args.issue11 else QUICK if args.quick else CASES:
            sets = more[0] if more else ()
            est = estimated(name, runs, horizon, threads, sets)
            rss, size = measure(name, runs, horizon, threads, Path(d), sets)
            case = f"{name} {runs} runs T={horizon or 365} x{threads}" + "".join(f" {s.split('.')[-1]}" for s in sets)
            print(f"{case:<38} {resources.human(est.memory):>9} {resources.human(rss):>9} {est.memory / rss:6.2f}"
                  f"   {resources.human(est.file):>9} {resources.human(size):>9} {est.file / size:6.2f}", flush=True)


if __name__ == "__main__":
    main()
