"""Runs a scenario into a results file: loading, batches, progress, atomic write."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from artysim.core import cache, engine
from artysim.errors import ArtysimError, OutputExistsError
from artysim.jobs import resources
from artysim.jobs.bundled import resolve
from artysim.jobs.resources import batch_size_for
from artysim.model import design as design_mod
from artysim.model.load import Loaded, load
from artysim.model.scenario import slug
from artysim.results.atomic import check_target
from artysim.results.shards import parse_shard_name, shard_mismatch, shard_name, shard_range, slurm_shard_from_env
from artysim.results.writer import ResultsWriter

#: more runs than any machine or cluster could simulate (and far below 64-bit run indices)
MAX_RUNS = 10**12

class Reporter:
    """Progress: a bar on a terminal, periodic plain lines otherwise (e.g. a SLURM log)."""

    def __init__(self, total: int, quiet: bool, stream=None, every_s: float = 30.0):
        self.total = total
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.bar = None
        self.done = 0
        self.t0 = time.perf_counter()
        self.last = self.t0
        if not quiet and self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="run", unit_scale=True, file=self.stream,
                            dynamic_ncols=True, smoothing=0.1)

    def update(self, n: int) -> None:
        self.done += n
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if now - self.last >= self.every_s or self.done == self.total:
            rate = self.done / max(now - self.t0, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            print(f"artysim: {self.done}/{self.total} runs ({100 * self.done / self.total:.1f} %), "
                  f"{rate:,.0f} runs/s, ETA {eta:,.0f} s", file=self.stream, flush=True)
            self.last = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cache_is_cold() -> bool:
    """Whether the kernel has not been compiled into this cache yet (the first run then compiles it:
    20-90 s, once). A cache of another Python version or CPU compiles again; this only sees the files."""
    return not any(cache.CACHE_DIR.glob("*/kernel.simulate_chunk-*.nbi"))


def default_output(loaded: Loaded, shard: int | None = None, shards: int = 1) -> Path:
    name = slug(loaded.scenario.scenario.name)
    if shards > 1:
        return Path("results") / shard_name(name, shard, shards)
    return Path("results") / f"{name}.nc"


def plan_shard(scenario_path: str, *, sets: list[str], runs: int | None, seed: int | None,
               output: str | Path | None, shard: int | None, shards: int | None, skip_valid: bool, design: str,
               quiet: bool, note: Callable[[str], None], force: bool = False) -> tuple[int, int, bool]:
    """(shard, shards, nothing to do) of ``artysim run``: the options, or a SLURM array task's environment,
    and whether ``--skip-valid`` finds this very shard already written.

    Inside an array task (SLURM_ARRAY_TASK_ID set) without --shard, the output must say it is that
    shard (``NAME.shard-K-of-N.nc``, or no -o: the default name is one): a whole run silently cut to
    one shard would otherwise be written under the name of the whole run.

    ``--skip-valid`` does nothing if the output is this very shard (same scenario, seed, runs, shard,
    version, design); any other file there is refused unless ``--force`` (it may be another job's
    valid results). ``artysim slurm``'s array script passes both: its output is its own shard name
    in its own job's shards folder, so whatever lies there is a damaged or partial attempt at it."""
    if (shard is None) != (shards is None):
        if shards is not None and shards == 1:
            shard = 0
        else:
            raise ArtysimError("--shard and --shards go together (e.g. --shard 3 --shards 10)")
    if shard is None:
        from_env = slurm_shard_from_env(os.environ)
        if from_env is not None:
            shard, shards = from_env
            if not 0 <= shard < shards:
                raise ArtysimError(f"shard {shard} of {shards} from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT "
                                   f"(minus SLURM_ARRAY_TASK_MIN) is not a shard: --shard must be below --shards")
            named = parse_shard_name(Path(output).name) if output else (shard, shards)
            if named is None:
                raise ArtysimError(f"SLURM_ARRAY_TASK_ID is set (shard {shard} of {shards} of an array job) but "
                                   f"-o {output} is not a shard file name (NAME.shard-K-of-N.nc); pass "
                                   f"--shard {shard} --shards {shards} for that shard, or --shards 1 for all runs")
            if named != (shard, shards):
                raise ArtysimError(f"-o {output} is named shard {named[0]} of {named[1]} but "
                                   f"SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT say shard {shard} of {shards}; "
                                   "pass --shard and --shards")
            if not quiet:
                note(f"artysim: shard {shard} of {shards} from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT")
    shard, shards = (0, 1) if shard is None else (shard, shards)
    if shard >= shards:
        raise ArtysimError(f"--shard must be below --shards (found --shard {shard} --shards {shards})")
    if skip_valid and not output:
        raise ArtysimError("--skip-valid needs -o/--output (the shard file to check)")
    if skip_valid and os.path.lexists(output):
        loaded = load(resolve(scenario_path), list(sets))
        n = loaded.scenario.run.runs if runs is None else runs
        if design == "sobol":
            d = len(loaded.model.sampled)
            n = design_mod.sobol_runs(design_mod.sobol_base_n(n, d), d)
        expect = {"scenario_hash": loaded.hash, "seed": loaded.scenario.run.seed if seed is None else seed,
                  "runs": n, "shard": shard, "shards": shards}
        why = shard_mismatch(Path(output), expect)
        if why is None:
            found = design_mod.file_design(Path(output))
            if found == design:
                note(f"artysim: {output} already holds shard {shard} of {shards}; nothing to do")
                return shard, shards, True
            why = f"it holds design {found}"
        if not force:
            raise OutputExistsError(f"{output} exists and is not shard {shard} of {shards} of this job ({why}); "
                                    "use --force to replace it")
    return shard, shards, False


def run(
    scenario_path: str,
    *,
    sets: list[str] | None = None,
    runs: int | None = None,
    seed: int | None = None,
    output: str | Path | None = None,
    threads: int | None = None,
    force: bool = False,
    quiet: bool = False,
    shard: int = 0,
    shards: int = 1,
    batch_size: int = 1 << 17,
    on_loaded: Callable[[Loaded], None] | None = None,
    design: str = "random",
    resource_check: bool = True,
    summary: bool = False,
) -> Path:
    """Simulate a scenario (a path or a bundled name) and write its results file; returns the path written."""
    loaded = load(resolve(scenario_path), sets)
    return run_loaded(loaded, runs=runs, seed=seed, output=output, threads=threads, force=force, quiet=quiet,
                      shard=shard, shards=shards, batch_size=batch_size, on_loaded=on_loaded, design=design,
                      resource_check=resource_check, summary=summary)


def run_loaded(
    loaded: Loaded,
    *,
    runs: int | None = None,
    seed: int | None = None,
    output: str | Path | None = None,
    threads: int | None = None,
    force: bool = False,
    quiet: bool = False,
    shard: int = 0,
    shards: int = 1,
    batch_size: int = 1 << 17,
    on_loaded: Callable[[Loaded], None] | None = None,
    design: str = "random",
    resource_check: bool = True,
    summary: bool = False,
    extra_attrs: dict | None = None,
) -> Path:
    """``run`` of a scenario already loaded (its model built once): sweeps run their variants so.
    ``extra_attrs``: global attributes added to the file (``run --until``, ``solve`` record their search)."""
    scn = loaded.scenario
    n_runs = scn.run.runs if runs is None else runs
    the_seed = scn.run.seed if seed is None else seed
    if not 1 <= n_runs <= MAX_RUNS:
        raise ArtysimError(f"--runs must be in [1, {MAX_RUNS:.0e}] (found {n_runs})")
    if not 0 <= the_seed < 2**63:
        raise ArtysimError(f"--seed must be in [0, 2**63) (found {the_seed})")
    if not 0 <= shard < shards:
        raise ArtysimError(f"--shard must be in [0, {shards}) (found {shard})")
    out = Path(output) if output is not None else default_output(loaded, shard, shards)
    if output is None:
        out.parent.mkdir(parents=True, exist_ok=True)
    check_target(out, force)
    if on_loaded:
        on_loaded(loaded)
    model = loaded.model
    extra_attrs = dict(extra_attrs) if extra_attrs else None
    if design != "random" and model.corr_pairs:
        raise ArtysimError(f"--design {design} assumes independent inputs (Sobol indices do), but the scenario "
                           f"correlates {len(model.corr_pairs)} pair(s) of parameters ([[correlation]]); drop them "
                           "for a Sobol study, or use the default design and PRCC")
    if design != "random":  # a Saltelli design fixes the run count: N (D + 2) for a power-of-two N
        model = dataclasses.replace(model, design=design_mod.make(design, n_runs, len(model.sampled), the_seed))
        extra_attrs = (extra_attrs or {}) | model.design.attrs([model.params[i].path for i in model.sampled])
        if not quiet and model.design.runs != n_runs:
            print(f"artysim: --design {design}: {model.design.runs} runs = N {model.design.n_base} (a power of two) "
                  f"x ({model.design.d} sampled parameters + 2), for --runs {n_runs}", file=sys.stderr)
        n_runs = model.design.runs
    r0, r1 = shard_range(n_runs, shard, shards)
    if threads is None and os.environ.get("SLURM_CPUS_PER_TASK", "").isdigit():
        threads = int(os.environ["SLURM_CPUS_PER_TASK"])  # what the job was given, not the whole node
    n_threads = engine.resolve_threads(threads)
    batch_size = batch_size_for(model.horizon, n_threads, batch_size)
    resources.check_magnitudes(model, n_runs)  # 64-bit counts: correctness, not overridable
    if resource_check:  # memory and disk, before any work (summary: one is printed after)
        resources.check(model, r1 - r0, n_threads, batch_size, out, runs_total=n_runs, summary=summary,
                        run_stop=r1)
    daily = engine.Daily.empty(model.horizon, model.n_sample, len(model.kinds))
    if not quiet and cache_is_cold():  # else nothing appears for the minute the compiler takes
        print(f"artysim: compiling the simulation core for this machine (once: about a minute; cached in "
              f"{cache.CACHE_DIR})", file=sys.stderr, flush=True)
    reporter = Reporter(r1 - r0, quiet)
    try:
        with ResultsWriter(out, force=force, model=model, loaded=loaded, seed=the_seed, run_start=r0,
                           run_stop=r1, runs_total=n_runs, shard=shard, shards=shards,
                           extra_attrs=extra_attrs) as w, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="artysim-writer") as pool:
            # batch k is compressed and written on the writer thread while the kernel (GIL-free, its
            # chunks handed out dynamically) computes batch k + 1; only that thread touches the file
            pending = None
            for batch in engine.run_batches(model, the_seed, r0, r1, daily, threads, batch_size):
                if pending is not None:
                    pending.result()
                pending = pool.submit(w.write_batch, batch)
                reporter.update(batch.stop - batch.start)
            if pending is not None:
                pending.result()
            w.write_daily(daily)
            w.commit()
    finally:
        reporter.close()
    return out


def simulate_in_memory(loaded: Loaded, runs: int, seed: int, run_start: int = 0,
                       threads: int | None = None, batch_size: int = 1 << 17):
    """All per-run outputs and per-day statistics in memory (for tests and small studies)."""
    import numpy as np

    model = loaded.model
    daily = engine.Daily.empty(model.horizon, model.n_sample, len(model.kinds))
    batches = list(engine.run_batches(model, seed, run_start, run_start + runs, daily, threads, batch_size))
    cat = {
        "params": np.concatenate([b.params for b in batches]),
        "totals": np.concatenate([b.totals for b in batches]),
        "per_source": np.concatenate([b.per_source for b in batches]),
        "per_regime": np.concatenate([b.per_regime for b in batches]),
        "observed": np.concatenate([model.observed(b.observed) for b in batches]),
        "per_component": np.concatenate([b.per_component for b in batches]),
    }
    return model, cat, daily
