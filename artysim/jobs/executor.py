"""Shards on any executor: one task per shard submitted to anything with the ``concurrent.futures``
interface (``submit(fn, *args)`` returning a future with ``.result()``): a process pool, dask's
``Client.get_executor()``, an MPI or cluster pool. Run i depends only on (scenario, seed, i), so the
shards merged (``artysim merge``'s own code) give the single run's file, variable by variable.

A task is idempotent: it loads the scenario from the text it is given (workers need not see the
scenario file), writes its shard atomically (``results.atomic``: a worker killed mid-task leaves no
shard file, only a stale temporary folder that the next writer there removes) and does nothing if a
valid copy of its shard is already there. So an executor that retries a task (dask does when a
worker dies) is safe, and running the same call again computes only the shards that are missing.
Nothing is merged unless every shard is present and valid.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from artysim.errors import ArtysimError, ResultsError
from artysim.jobs.bundled import resolve
from artysim.model import design as design_mod
from artysim.model.load import Loaded, load, loads
from artysim.model.scenario import _one_line, slug
from artysim.results import atomic
from artysim.results.shards import shard_mismatch, shard_name

EXECUTORS = ("local", "dask")
#: seconds to wait for a dask scheduler before giving up (an unreachable address fails fast)
CONNECT_TIMEOUT_S = 10.0


def _expected_runs(loaded: Loaded, runs: int, design: str) -> int:
    """The run count the shards record (a Sobol design rounds it up to N (D + 2))."""
    if design == "sobol":
        d = len(loaded.model.sampled)
        return design_mod.sobol_runs(design_mod.sobol_base_n(runs, d), d)
    return runs


def _identity(job: dict, k: int) -> dict:
    return {"scenario_hash": job["hash"], "seed": job["seed"], "runs": job["runs_total"], "shard": k,
            "shards": job["shards"]}


def _valid_shard(path: Path, job: dict, k: int) -> str | None:
    """Why ``path`` is not shard k of this job (None: it is, design included)."""
    why = shard_mismatch(path, _identity(job, k))
    if why is None and design_mod.file_design(path) != job["design"]:
        why = f"it holds design {design_mod.file_design(path)}"
    return why


def run_shard_task(job: dict, k: int) -> dict:
    """One task: shard k of the job, written into the job's shard folder (or left as it is when a
    valid copy is there). Runs on a worker; everything it needs is in ``job`` (plain, picklable)."""
    from artysim.jobs.run import run_loaded

    t0 = time.perf_counter()
    path = Path(job["dir"]) / shard_name(job["name"], k, job["shards"])
    info = {"shard": k, "path": str(path), "host": socket.gethostname(), "pid": os.getpid()}
    if _valid_shard(path, job, k) is None:
        return info | {"skipped": True, "seconds": 0.0}
    loaded = loads(job["text"], job["overrides"], origin=job["origin"])
    if loaded.hash != job["hash"]:  # the worker's artysim reads the scenario differently
        raise ArtysimError(f"shard {k}: the worker's artysim gives scenario hash {loaded.hash[:12]}, "
                           f"the caller's {job['hash'][:12]} (different artysim versions?)")
    run_loaded(loaded, runs=job["runs"], seed=job["seed"], output=path, threads=job["threads"], force=True,
               quiet=True, shard=k, shards=job["shards"], design=job["design"],
               resource_check=job["resource_check"])
    return info | {"skipped": False, "seconds": time.perf_counter() - t0}


def _why(e: BaseException) -> str:
    if isinstance(e, ArtysimError):
        return _one_line(str(e))
    text = _one_line(str(e)) or "no message"
    return f"{type(e).__name__}: {text}"


@dataclass
class Plan:
    """A sharded run checked before any executor starts: the job every task gets and where things go."""

    job: dict
    out: Path
    folder: Path
    keep: bool
    force: bool
    resource_check: bool

    @property
    def paths(self) -> list[Path]:
        return [self.folder / shard_name(self.job["name"], k, self.job["shards"]) for k in range(self.job["shards"])]


def plan_sharded(scenario: str | Path | Loaded, *, runs: int | None = None, shards: int,
                 out: str | Path | None = None, seed: int | None = None, sets: list[str] | None = None,
                 threads: int = 1, shard_dir: str | Path | None = None, keep_shards: bool | None = None,
                 force: bool = False, design: str = "random", resource_check: bool = True) -> Plan:
    """Everything ``run_sharded`` refuses, refused before an executor is started or a file is made."""
    from artysim.jobs.run import MAX_RUNS, default_output

    loaded = scenario if isinstance(scenario, Loaded) else load(resolve(str(scenario)), list(sets or []))
    n_runs = loaded.scenario.run.runs if runs is None else int(runs)
    the_seed = loaded.scenario.run.seed if seed is None else int(seed)
    if not 1 <= n_runs <= MAX_RUNS:
        raise ArtysimError(f"runs must be in [1, {MAX_RUNS:.0e}] (found {n_runs})")
    if not 0 <= the_seed < 2**63:
        raise ArtysimError(f"seed must be in [0, 2**63) (found {the_seed})")
    if design not in ("random", "sobol"):
        raise ArtysimError(f"design must be random or sobol (found {design!r})")
    total = _expected_runs(loaded, n_runs, design)
    if not 1 <= int(shards) <= total:
        raise ArtysimError(f"--shards must be in [1, {total}] (the run count) with an executor (found {shards})")
    if int(threads) < 1:
        raise ArtysimError(f"threads per task must be at least 1 (found {threads})")
    if out is None:
        out = default_output(loaded)
        out.parent.mkdir(parents=True, exist_ok=True)
    out = Path(out)
    atomic.check_target(out, force)
    given = shard_dir is not None
    folder = Path(shard_dir) if given else out.with_name(out.name + ".shards")
    if folder.exists() and not folder.is_dir():
        raise ResultsError(f"shard folder {folder} is a file, expected a folder")
    above = next((p for p in [folder, *folder.parents] if p.exists()), Path("."))
    if not above.is_dir():
        raise ResultsError(f"shard folder {folder}: {above} is a file, not a folder")
    if not os.access(above, os.W_OK):
        raise ResultsError(f"shard folder {folder}: {above} is not writable")
    job = {"text": loaded.text, "overrides": list(loaded.overrides), "origin": loaded.origin, "hash": loaded.hash,
           "runs": n_runs, "runs_total": total, "seed": the_seed, "shards": int(shards),
           "dir": str(folder.resolve()), "name": slug(loaded.scenario.scenario.name), "threads": int(threads),
           "design": design, "resource_check": resource_check}
    return Plan(job, out, folder, given if keep_shards is None else keep_shards, force, resource_check)


def execute(plan: Plan, executor, note: Callable[[str], None] | None = None) -> Path:
    """Submit one task per shard of ``plan`` to ``executor``, wait for all, and merge them when every
    shard is present and valid; otherwise one ``ArtysimError`` naming the failed shards."""
    from artysim.results import merge as merge_mod

    if not callable(getattr(executor, "submit", None)):
        raise ArtysimError(f"executor {type(executor).__name__} has no submit(fn, ...) method "
                           "(expected a concurrent.futures-like executor)")
    job, folder, K = plan.job, plan.folder, plan.job["shards"]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ResultsError(f"shard folder {folder}: cannot create it ({e.strerror or e})") from None
    atomic.remove_stale(folder)  # temporary folders of tasks killed in an earlier attempt
    futures = []
    failed: dict[int, str] = {}
    for k in range(K):
        try:
            futures.append((k, executor.submit(run_shard_task, job, k)))
        except Exception as e:  # a shut-down or broken executor refuses at submit
            failed[k] = f"not submitted ({_why(e)})"
    for k, f in futures:
        try:
            f.result()
        except Exception as e:
            failed[k] = _why(e)
    atomic.remove_stale(folder)  # a worker killed on this host leaves its temporary folder
    paths = plan.paths
    for k, p in enumerate(paths):
        if k not in failed:
            why = _valid_shard(p, job, k)
            if why is not None:
                failed[k] = (f"its task returned but {p} is not its valid shard ({why}): do the workers "
                             "write to the same folder as this process? (pass a shared folder as shard_dir)")
    if failed:
        first = min(failed)
        names = ", ".join(map(str, sorted(failed)))
        raise ArtysimError(f"{len(failed)} of {K} shard tasks failed (shards {names}; shard {first}: "
                           f"{failed[first]}); nothing was merged; {K - len(failed)} valid shards are kept in "
                           f"{folder}: the same command again computes only the missing ones")
    if note:
        note(f"artysim: {K} shards in {folder}; merging into {plan.out}")
    merge_mod.merge([str(p) for p in paths], plan.out, force=plan.force, resource_check=plan.resource_check)
    if not plan.keep:
        for p in paths:
            with contextlib.suppress(OSError):
                p.unlink()
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if nothing else is there
    return plan.out


def run_sharded(scenario: str | Path | Loaded, *, runs: int | None = None, shards: int, executor,
                out: str | Path | None = None, seed: int | None = None, sets: list[str] | None = None,
                threads: int = 1, shard_dir: str | Path | None = None, keep_shards: bool | None = None,
                force: bool = False, design: str = "random", resource_check: bool = True,
                note: Callable[[str], None] | None = None) -> Path:
    """Run ``scenario`` as ``shards`` tasks on ``executor`` and merge them into ``out``; returns ``out``.

    ``shard_dir``: where the tasks write their shards (it must be a folder every worker can reach;
    default ``OUT.shards`` beside the output, removed after the merge unless ``keep_shards``; a folder
    given is kept). ``threads``: threads per task. A failed set (a task raised, a worker died and the
    executor gave up, a shard missing or invalid afterwards) raises one ``ArtysimError`` naming the
    shards and merges nothing; the valid shards stay, so the same call again computes only the rest."""
    if not callable(getattr(executor, "submit", None)):
        raise ArtysimError(f"executor {type(executor).__name__} has no submit(fn, ...) method "
                           "(expected a concurrent.futures-like executor)")
    plan = plan_sharded(scenario, runs=runs, shards=shards, out=out, seed=seed, sets=sets, threads=threads,
                        shard_dir=shard_dir, keep_shards=keep_shards, force=force, design=design,
                        resource_check=resource_check)
    return execute(plan, executor, note)


@contextlib.contextmanager
def open_executor(kind: str, *, scheduler: str | None = None, workers: int | None = None,
                  connect_timeout: float = CONNECT_TIMEOUT_S) -> Iterator:
    """The executor of ``artysim run --executor``: ``local`` a pool of ``workers`` processes (default:
    the cores), ``dask`` a client of the scheduler at ``scheduler`` (or of a local cluster of
    ``workers`` processes when none is given), shut down afterwards."""
    if kind not in EXECUTORS:
        raise ArtysimError(f"--executor must be one of {', '.join(EXECUTORS)} (found {kind!r})")
    if scheduler is not None and kind != "dask":
        raise ArtysimError("--scheduler is the address of a dask scheduler: it goes with --executor dask")
    if scheduler is not None and workers is not None:
        raise ArtysimError("--workers starts a local pool or cluster; with --scheduler the cluster's workers run "
                           "the tasks: drop --workers")
    n = workers or os.cpu_count() or 1
    if kind == "local":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: a fork of a process whose numba threads already ran is not safe
        with ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn")) as pool:
            yield pool
        return
    try:
        import distributed
    except ImportError:
        raise ArtysimError("--executor dask needs the distributed package (pip install distributed)") from None
    if scheduler is None:
        cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        with cluster, distributed.Client(cluster) as client:
            yield client.get_executor()
        return
    try:
        client = distributed.Client(scheduler, timeout=connect_timeout)
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        raise ArtysimError(f"--scheduler {scheduler}: cannot reach a dask scheduler within {connect_timeout:g} s "
                           f"({_why(e)})") from None
    with client:
        yield client.get_executor()


def warm(scenario: str = "nk-deal-2023", threads: int | None = None) -> tuple[Path, float]:
    """Compile the kernel into the cache (``$NUMBA_CACHE_DIR`` or the user's cache folder) by
    simulating two runs in memory, writing nothing; returns (cache folder, seconds)."""
    from artysim.core.cache import CACHE_DIR
    from artysim.jobs.run import simulate_in_memory

    t0 = time.perf_counter()
    simulate_in_memory(load(resolve(scenario)), runs=2, seed=1, threads=threads)
    return CACHE_DIR, time.perf_counter() - t0
