"""Shared material of the crafted-results tests and the results-file fuzzer: small real files (one run,
two shards of one job, a sweep), the reading commands, and the property every reading command keeps:
exit 0, or exit 2 with one line naming the problem, never a traceback, never a hang."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner

from artysim.cli import main

SCENARIO = """\
[scenario]
name = "crafted"
start_date = "2024-01-01"
horizon_days = 30

[run]
runs = 40
seed = 3

[output]
trajectory_sample = 10

[demand]
base = { dist = "uniform", low = 800, high = 1500 }
daily_cv = 0.2

[[source]]
name = "old"
kind = "stockpile"
initial = { dist = "uniform", low = 10000, high = 40000 }
dud_rate = 0.1

[[source]]
name = "fab"
kind = "production"
annual = { dist = "uniform", low = 100000, high = 300000 }
"""


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def make_files(d: Path) -> dict:
    """good.nc (40 runs), shards/ (2 shards of the same 40 runs), sweep.nc (2 variants)."""
    scn = d / "crafted.toml"
    scn.write_text(SCENARIO)
    files = {"scn": scn, "good": d / "good.nc", "shards": d / "shards", "sweep": d / "sweep.nc"}
    assert invoke("run", scn, "-o", files["good"], "-q").exit_code == 0
    files["shards"].mkdir()
    for k in range(2):
        r = invoke("run", scn, "--shard", k, "--shards", 2, "-o", files["shards"] / f"c.shard-{k}-of-2.nc", "-q")
        assert r.exit_code == 0, r.output
    r = invoke("sweep", scn, "--vary", "demand.base=900,1400", "-o", files["sweep"], "-q")
    assert r.exit_code == 0, r.output
    return files


def commands(bad: Path, files: dict, out: Path) -> dict[str, list]:
    """Every command that reads results, given the bad file (and good partners where two are read)."""
    other = files["shards"] / "c.shard-1-of-2.nc"
    return {
        "summary": ["summary", bad],
        "summary-json": ["summary", bad, "--format", "json"],
        "summary-combined": ["summary", bad, other],
        "merge": ["merge", "-o", out / "m.nc", "--force", "--allow-partial", bad],
        "merge-with-shard": ["merge", "-o", out / "m2.nc", "--force", "--allow-partial", bad, other],
        "compare-a": ["compare", bad, files["good"]],
        "compare-b": ["compare", files["good"], bad],
        "plot-fan": ["plot", bad, "--kind", "fan", "-o", out / "fan.png", "--force"],
        "plot-depletion": ["plot", bad, "--kind", "depletion", "-o", out / "d.png", "--force"],
        "plot-sources": ["plot", bad, "--kind", "sources", "-o", out / "s.png", "--force"],
        "plot-histogram": ["plot", bad, "--kind", "histogram", "-o", out / "h.png", "--force"],
        "plot-tornado": ["plot", bad, "--kind", "tornado", "-o", out / "t.png", "--force"],
        "sensitivity": ["sensitivity", bad],
    }


@contextmanager
def deadline(seconds: int, what: str):
    """Fail (instead of hanging the suite) if the block takes longer than ``seconds``."""
    def _expired(signum, frame):
        raise TimeoutError(f"{what}: no answer in {seconds} s (a hang?)")

    old = signal.signal(signal.SIGALRM, _expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def outcome(argv: list, timeout: int = 60) -> tuple[int, str]:
    """Run one reading command in-process; assert the property; return (exit code, its one line)."""
    with deadline(timeout, " ".join(map(str, argv[:3]))):
        r = CliRunner().invoke(main, [str(a) for a in argv], catch_exceptions=False)
    assert r.exit_code in (0, 2), (argv, r.exit_code, r.output[-2000:])
    assert "Traceback" not in r.output, r.output[-2000:]
    if r.exit_code == 2:
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert len(lines) == 1, (argv, r.stderr[-2000:])
        assert lines[0].startswith("artysim: error: "), lines[0]
        return 2, lines[0]
    return 0, ""
