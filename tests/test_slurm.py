"""A real SLURM cycle: ``artysim slurm`` writes the job, ``submit.sh`` submits the shard array and its
merge job to a running cluster, and the merged file equals a single-process run.

Needs a SLURM cluster whose node is idle: ``.ci/run`` starts one (``ci/slurm-cluster.sh``) and exports
``SLURM_CONF``; elsewhere (a laptop) these tests are skipped, saying why. By hand:

    eval "$(bash ci/slurm-cluster.sh start /tmp/slurm)"
    python -m pytest -m slurm -s tests/test_slurm.py
    bash ci/slurm-cluster.sh stop /tmp/slurm
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_shards import MERGE_ONLY_ATTRS, assert_same_results, sbatch_options

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parent.parent
NK = REPO / "configs" / "nk-deal-2023.toml"
RUNS, SHARDS = 600, 3
NAME = "nk-deal-2023"
TIMEOUT_S = 300
POLL_S = 0.5


def _cluster_unavailable() -> str | None:
    """Why no SLURM job can run here, or None."""
    missing = [c for c in ("sbatch", "squeue", "sinfo") if shutil.which(c) is None]
    if missing:
        return f"SLURM client commands not on PATH: {', '.join(missing)}"
    if not os.environ.get("SLURM_CONF"):
        return "SLURM_CONF is not set (start a cluster with ci/slurm-cluster.sh, as .ci/run does)"
    try:
        p = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"sinfo failed: {e}"
    states = p.stdout.split()
    if p.returncode != 0 or "idle" not in states:
        detail = (p.stderr.strip().splitlines() or [""])[0]
        return f"no idle SLURM node (sinfo -h -o %T: {states or detail or 'no answer'})"
    return None


@pytest.fixture(scope="module", autouse=True)
def cluster():
    reason = _cluster_unavailable()
    if reason:
        pytest.skip(reason)


def _env() -> dict:
    """This environment without the variables of an enclosing SLURM job (if pytest runs inside one)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_ARRAY_", "SLURM_JOB"))}


def artysim(*args, cwd=REPO) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "artysim.cli", *map(str, args)], cwd=cwd, env=_env(),
                       capture_output=True, text=True, timeout=TIMEOUT_S)
    assert p.returncode == 0, f"artysim {' '.join(map(str, args))} failed:\n{p.stdout}\n{p.stderr}"
    return p


def slurm_args(job: Path) -> list:
    return ["slurm", NK, "--runs", RUNS, "--shards", SHARDS, "--out-dir", job, "--mem", "1G",
            "--cpus-per-task", "1", "--time", "00:10:00"]


def submit(job: Path, cwd: Path) -> tuple[str, str]:
    """Run submit.sh (from ``cwd``, so any stray slurm-*.out lands there); returns (array id, merge id)."""
    p = subprocess.run(["bash", str(job / "submit.sh")], cwd=cwd, env=_env(), capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, f"submit.sh failed:\n{p.stdout}\n{p.stderr}"
    m = re.search(r"submitted shard array (\d+) .* and merge job (\d+)", p.stdout)
    assert m, p.stdout
    return m.group(1), m.group(2)


def scontrol(job_id: str) -> str | None:
    """``scontrol -o show job ID`` (one line per array task), or None where it no longer knows the job."""
    if shutil.which("scontrol") is None:
        return None
    p = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, timeout=20)
    return p.stdout if p.returncode == 0 and p.stdout.strip() else None


def _report(job: Path, ids) -> str:
    parts = []
    for log in sorted((job / "logs").glob("*")):
        parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}")
    for i in ids:
        parts.append(f"--- scontrol -o show job {i}\n{scontrol(i)}")
    return "\n".join(parts)


def wait_done(job: Path, ids) -> None:
    """Poll squeue until every job has left the queue; fail (cancelling them) after TIMEOUT_S."""
    t0 = time.monotonic()
    pending = list(ids)
    while pending:
        still = []
        for i in pending:
            p = subprocess.run(["squeue", "-h", "-j", i], capture_output=True, text=True, timeout=20)
            if p.returncode == 0 and p.stdout.strip():
                still.append(i)  # (an unknown id, i.e. a job long gone, is an error: gone)
        pending = still
        if pending and time.monotonic() - t0 > TIMEOUT_S:
            report = _report(job, ids)
            subprocess.run(["scancel", *ids], capture_output=True, timeout=20)
            print(report)
            pytest.fail(f"SLURM jobs {', '.join(pending)} not done after {TIMEOUT_S} s; logs and states above")
        if pending:
            time.sleep(POLL_S)


def assert_completed(job: Path, ids) -> None:
    """Every task of every job ended COMPLETED (where scontrol still knows the job)."""
    for i in ids:
        out = scontrol(i)
        if out is None:
            continue  # purged already: the files below are the evidence
        states = re.findall(r"\bJobState=(\S+)", out)
        assert states and all(s == "COMPLETED" for s in states), f"job {i}: {states}\n{_report(job, ids)}"


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    """The same scenario, seed and runs in one process (this also warms the kernel cache the jobs use
    when NUMBA_CACHE_DIR is set, as in .ci/run)."""
    out = tmp_path_factory.mktemp("single") / "single.nc"
    artysim("run", NK, "--runs", RUNS, "-o", out, "-q")
    return out


@pytest.fixture(scope="module")
def done_job(tmp_path_factory, single) -> dict:
    """One whole cycle: write the job, submit it, wait for it. The tests below check the outcome."""
    base = tmp_path_factory.mktemp("slurm")
    job = base / "job"
    t0 = time.perf_counter()
    artysim(*slurm_args(job))
    ids = submit(job, base)
    wait_done(job, ids)
    wall = time.perf_counter() - t0
    print(f"\nSLURM cycle ({RUNS} runs, {SHARDS} array tasks + merge): {wall:.1f} s from `artysim slurm` "
          f"to the merged file")
    return {"base": base, "job": job, "ids": ids, "wall": wall}


def test_slurm_cycle_merged_equals_single_run(done_job, single):
    job, ids = done_job["job"], done_job["ids"]
    assert sbatch_options(job / "array.sbatch")["array"] == f"0-{SHARDS - 1}"
    assert_completed(job, ids)
    merged = job / f"{NAME}.nc"
    assert merged.is_file(), _report(job, ids)
    shards = sorted(p.name for p in (job / "shards").iterdir())
    assert shards == [f"{NAME}.shard-{k}-of-{SHARDS}.nc" for k in range(SHARDS)]
    logs = sorted(p.name for p in (job / "logs").iterdir())
    assert len([x for x in logs if x.startswith("merge_")]) == 1 and len(logs) == SHARDS + 1, logs
    # the shards ran the job's copy of the scenario: only its file name differs
    assert_same_results(merged, single, ignore_attrs=(*MERGE_ONLY_ATTRS, "scenario_file"))
    assert not list(done_job["base"].glob("slurm-*.out")) and not list(REPO.glob("slurm-*.out"))


def test_slurm_only_missing_resubmits_one_shard(done_job, single):
    job, base = done_job["job"], done_job["base"]
    merged = job / f"{NAME}.nc"
    lost = job / "shards" / f"{NAME}.shard-1-of-{SHARDS}.nc"
    kept = {p: p.stat().st_mtime_ns for p in (job / "shards").iterdir() if p != lost}
    lost.unlink()
    merged.unlink()
    t0 = time.perf_counter()
    p = artysim(*slurm_args(job), "--only-missing")
    assert f"1 of {SHARDS} shards" in p.stdout
    assert sbatch_options(job / "array.sbatch")["array"] == "1"
    ids = submit(job, base)
    wait_done(job, ids)
    print(f"\nSLURM resubmission of 1 shard + merge: {time.perf_counter() - t0:.1f} s")
    assert_completed(job, ids)
    assert merged.is_file() and lost.is_file(), _report(job, ids)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # the other shards were not recomputed
    assert_same_results(merged, single, ignore_attrs=(*MERGE_ONLY_ATTRS, "scenario_file"))
    # all present now: nothing to submit
    p = artysim(*slurm_args(job), "--only-missing")
    assert f"all {SHARDS} shards" in p.stdout
