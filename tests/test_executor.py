"""Shards on any executor (issue 16): ``artysim.run_sharded`` and ``artysim run --executor``, tested on
real executors, a process pool and a dask.distributed cluster of worker processes, against the
single run of the same scenario and seed, variable by variable (tests/fingerprint.py); workers killed
mid-task, a task that fails, workers that cannot write, a scheduler that is not there.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from fingerprint import differences, fingerprint
from support import assert_refused, leftovers

import artysim
from artysim.cli import main
from artysim.errors import ArtysimError
from artysim.jobs import executor as ex
from artysim.jobs import run as runner
from artysim.results.shards import shard_name

REPO = Path(__file__).resolve().parent.parent
NK = str(REPO / "configs" / "nk-deal-2023.toml")
N = 300  # a few hundred runs: equality does not need more
SETS = ["output.trajectory_sample=120"]  # the sample straddles the shard boundaries (100, 200 for K = 3)
#: runs of the kill tests: a shard must last long enough to be killed mid-way. 2,000 runs a shard take
#: over a second here while the killer looks every 5 ms; a shard that ended first fails the test (no
#: worker seen, or no shard missing), it cannot pass unkilled
BIG = 4000
#: what a merged file may differ in from the single run: the merge records how many shards it read
MERGE_ONLY = ("merged_from",)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def same_as(merged: Path, single: Path) -> None:
    a, b = fingerprint(merged), fingerprint(single)
    for k in MERGE_ONLY:
        a["attrs"].pop(k, None)
    assert differences(a, b) == []


def spawn_pool(n: int, initializer=None) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"),
                               initializer=initializer)


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "nk.nc"
    return runner.run(NK, sets=SETS, runs=N, seed=7, output=out, quiet=True)


@pytest.fixture(scope="module")
def single_big(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single_big") / "nk.nc"
    return runner.run(NK, runs=BIG, seed=7, output=out, quiet=True)


@pytest.fixture(scope="module")
def pool():
    with spawn_pool(2) as p:
        yield p


@pytest.fixture(scope="module")
def dask_client():
    """One dask cluster of two worker processes (one thread each) for the module."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            distributed.Client(c) as client:
        yield client


def _kill_first_writer(folder: Path, done: threading.Event, killed: list[int]) -> None:
    """Kill (SIGKILL) the first worker process seen writing a shard: its pid is in the ``owner`` file
    of the private temporary folder every writer makes beside its target (results/atomic.py)."""
    while not done.is_set():
        for owner in folder.glob(".artysim-*.tmp/owner"):
            try:
                pid = int(json.loads(owner.read_text())["pid"])
            except (OSError, ValueError, KeyError):
                continue  # being written
            if pid != os.getpid():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
        time.sleep(0.005)


def _run_killing_one(tmp_path: Path, executor) -> tuple[list[int], object]:
    folder = tmp_path / "shards"
    folder.mkdir()
    done, killed, outcome = threading.Event(), [], {}
    killer = threading.Thread(target=_kill_first_writer, args=(folder, done, killed))
    killer.start()
    try:
        outcome["path"] = artysim.run_sharded(NK, runs=BIG, seed=7, shards=2, executor=executor,
                                              out=tmp_path / "merged.nc", shard_dir=folder)
    except ArtysimError as e:
        outcome["error"] = str(e)
    finally:
        done.set()
        killer.join()
    return killed, outcome


# -- equal to the single run ------------------------------------------------------------------------------

def test_process_pool_equals_single_run(tmp_path, single, pool):
    out = artysim.run_sharded(NK, runs=N, seed=7, sets=SETS, shards=3, executor=pool, out=tmp_path / "m.nc")
    same_as(out, single)
    assert leftovers(tmp_path) == ["m.nc"]  # the default shard folder is removed after the merge


def test_dask_cluster_equals_single_run(tmp_path, single, dask_client):
    folder = tmp_path / "shared"
    out = artysim.run_sharded(NK, runs=N, seed=7, sets=SETS, shards=3, executor=dask_client.get_executor(),
                              out=tmp_path / "m.nc", shard_dir=folder)
    same_as(out, single)
    # a folder given is kept: its three shards, nothing else
    assert leftovers(folder) == [shard_name("nk-deal-2023", k, 3) for k in range(3)]
    # and the same call again finds them valid and only merges
    again = artysim.run_sharded(NK, runs=N, seed=7, sets=SETS, shards=3, executor=dask_client.get_executor(),
                                out=tmp_path / "m2.nc", shard_dir=folder)
    same_as(again, single)


def test_cli_local_executor_equals_single_run(tmp_path, single):
    r = invoke("run", NK, "--runs", N, "--seed", 7, "--set", SETS[0], "--executor", "local", "--workers", 2,
               "--shards", 2, "-o", tmp_path / "cli.nc", "-q")
    assert r.exit_code == 0, r.output
    same_as(tmp_path / "cli.nc", single)
    assert leftovers(tmp_path) == ["cli.nc"]


# -- workers killed mid-task ----------------------------------------------------------------------------

def test_dask_worker_killed_mid_task_is_retried(tmp_path, single_big, dask_client):
    killed, outcome = _run_killing_one(tmp_path, dask_client.get_executor())
    assert killed, "no worker was seen writing a shard"
    assert "error" not in outcome, outcome
    same_as(outcome["path"], single_big)  # the scheduler ran the killed task again, on a live worker
    # the killed writer's temporary folder is gone (removed as stale), no partial shard anywhere
    assert leftovers(tmp_path / "shards") == [shard_name("nk-deal-2023", k, 2) for k in range(2)]


def test_process_pool_worker_killed_names_missing_shards_then_resumes(tmp_path, single_big, pool):
    with spawn_pool(2) as doomed:
        killed, outcome = _run_killing_one(tmp_path, doomed)
    assert killed, "no worker was seen writing a shard"
    msg = outcome["error"]
    assert "shard tasks failed" in msg and "nothing was merged" in msg and "\n" not in msg
    assert "BrokenProcessPool" in msg
    assert not (tmp_path / "merged.nc").exists()
    folder = tmp_path / "shards"
    names = [shard_name("nk-deal-2023", k, 2) for k in range(2)]
    left = leftovers(folder)
    # only complete shards under shard names; a worker the broken pool was still terminating may leave
    # its private temporary folder (never a shard name), removed by the next writer there
    shards_left = [n for n in left if not (n.startswith(".artysim-") and n.endswith(".tmp"))]
    assert set(shards_left) <= set(names)
    missing = [k for k, n in enumerate(names) if n not in shards_left]
    assert missing and f"shards {', '.join(map(str, missing))};" in msg
    # again on a working pool: only the missing shards are computed, and the merge is the single run
    out = artysim.run_sharded(NK, runs=BIG, seed=7, shards=2, executor=pool, out=tmp_path / "merged.nc",
                              shard_dir=folder)
    same_as(out, single_big)
    assert leftovers(folder) == names


# -- bad input ------------------------------------------------------------------------------------------

class OneTaskFails:
    """A real executor (threads) whose task for one shard raises, as a lost worker or a broken node would."""

    def __init__(self, bad: int):
        self.bad = bad
        self.pool = ThreadPoolExecutor(max_workers=1)

    def submit(self, fn, job, k):
        if k == self.bad:
            return self.pool.submit(_fail, k)
        return self.pool.submit(fn, job, k)


def _fail(k):
    raise RuntimeError(f"node lost while running shard {k}")


def test_executor_failing_a_task_merges_nothing(tmp_path, single):
    folder = tmp_path / "shards"
    with pytest.raises(ArtysimError) as e:
        artysim.run_sharded(NK, runs=N, seed=7, sets=SETS, shards=3, executor=OneTaskFails(1),
                            out=tmp_path / "m.nc", shard_dir=folder)
    msg = str(e.value)
    assert "1 of 3 shard tasks failed (shards 1; shard 1: RuntimeError: node lost" in msg
    assert "nothing was merged" in msg and "\n" not in msg
    assert not (tmp_path / "m.nc").exists()
    assert leftovers(folder) == [shard_name("nk-deal-2023", k, 3) for k in (0, 2)]


def no_file_writes() -> None:
    """Pool initializer: this worker process cannot write a single byte to any file (RLIMIT_FSIZE 0),
    as workers whose account may not write to the shard folder."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def test_workers_that_cannot_write_leave_nothing(tmp_path):
    folder = tmp_path / "shards"
    with spawn_pool(1, no_file_writes) as p, pytest.raises(ArtysimError) as e:
        artysim.run_sharded(NK, runs=N, seed=7, sets=SETS, shards=2, executor=p, out=tmp_path / "m.nc",
                            shard_dir=folder)
    msg = str(e.value)
    assert "2 of 2 shard tasks failed" in msg and "could not write the results file" in msg, msg
    assert "\n" not in msg
    assert leftovers(tmp_path) == ["shards"] and leftovers(folder) == []  # no shard, no temporary folder


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_fails_fast(tmp_path):
    pytest.importorskip("distributed")
    t0 = time.perf_counter()
    r = invoke("run", NK, "--runs", N, "--executor", "dask", "--scheduler", f"tcp://127.0.0.1:{_closed_port()}",
               "--connect-timeout", 1, "--shards", 2, "-o", tmp_path / "m.nc")
    assert_refused(r, "--scheduler tcp://127.0.0.1:", "cannot reach a dask scheduler within 1 s")
    assert time.perf_counter() - t0 < 30
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("args, needle", [
    (["--executor", "local"], "--executor needs --shards K"),
    (["--scheduler", "tcp://x:1", "--shards", "2"], "go with --executor local|dask"),
    (["--executor", "local", "--scheduler", "tcp://x:1", "--shards", "2"], "it goes with --executor dask"),
    (["--executor", "local", "--shards", "2", "--shard", "1"], "drop --shard/--skip-valid"),
    (["--executor", "local", "--shards", "301"], "--shards must be in [1, 300]"),
])
def test_bad_executor_options(tmp_path, args, needle):
    r = invoke("run", NK, "--runs", N, "-o", tmp_path / "m.nc", *args)
    assert_refused(r, needle)
    assert leftovers(tmp_path) == []


def test_shard_folder_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    r = invoke("run", NK, "--runs", N, "--executor", "local", "--shards", 2, "--shard-dir", tmp_path / "f",
               "-o", tmp_path / "m.nc")
    assert_refused(r, "--shard-dir", "is a file")
    with pytest.raises(ArtysimError, match="shard folder .* is a file, expected a folder"):
        artysim.run_sharded(NK, runs=N, shards=2, executor=ThreadPoolExecutor(1), shard_dir=tmp_path / "f",
                            out=tmp_path / "m.nc")
    with pytest.raises(ArtysimError, match="shard folder .*: .* is a file, not a folder"):
        artysim.run_sharded(NK, runs=N, shards=2, executor=ThreadPoolExecutor(1), shard_dir=tmp_path / "f" / "s",
                            out=tmp_path / "m.nc")
    assert leftovers(tmp_path) == ["f"]


def test_not_an_executor(tmp_path):
    with pytest.raises(ArtysimError, match="has no submit"):
        artysim.run_sharded(NK, runs=N, shards=2, executor=object(), out=tmp_path / "m.nc")
    assert leftovers(tmp_path) == []


def test_warm_compiles_into_the_cache():
    r = invoke("warm")
    assert r.exit_code == 0, r.output
    where = ex.warm()[0]
    assert f"cache: {where}" in r.output
    assert any(where.rglob("*.nbi")), "no numba index in the cache folder"  # numba's cache index files
