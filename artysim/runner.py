"""Runs a scenario into a results file: loading, batches, progress, atomic write."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from artysim import design as design_mod
from artysim import engine, resources, scenario
from artysim.errors import ArtysimError
from artysim.io import ResultsWriter, check_target
from artysim.slurm import shard_name

#: Run-days per batch and thread at most: a signal (Ctrl-C, SLURM's SIGTERM before its SIGKILL) is
#: handled between batches, so a batch must take seconds, not minutes, whatever the horizon.
BATCH_RUN_DAYS_PER_THREAD = 1 << 22
#: more runs than any machine or cluster could simulate (and far below 64-bit run indices)
MAX_RUNS = 10**12

PACKAGE_CONFIGS = Path(__file__).resolve().parent / "configs"
REPO_CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def bundled_dir() -> Path | None:
    for d in (PACKAGE_CONFIGS, REPO_CONFIGS):
        if d.is_dir() and any(d.glob("*.toml")):
            return d
    return None


def bundled() -> list[Path]:
    d = bundled_dir()
    return sorted(d.glob("*.toml")) if d else []


def resolve(path_or_name: str) -> Path:
    """A scenario path, or the name of a bundled scenario."""
    p = Path(path_or_name)
    if p.exists():
        return p
    for b in bundled():
        if b.stem == path_or_name or b.name == path_or_name:
            return b
    return p  # scenario.load reports the missing file


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


def default_output(loaded: scenario.Loaded, shard: int | None = None, shards: int = 1) -> Path:
    name = scenario.slug(loaded.scenario.scenario.name)
    if shards > 1:
        return Path("results") / shard_name(name, shard, shards)
    return Path("results") / f"{name}.nc"


def shard_range(runs: int, shard: int, shards: int) -> tuple[int, int]:
    """Contiguous block of runs of one shard (sizes differ by at most one)."""
    return (shard * runs) // shards, ((shard + 1) * runs) // shards


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
    on_loaded: Callable[[scenario.Loaded], None] | None = None,
    design: str = "random",
    resource_check: bool = True,
    summary: bool = False,
) -> Path:
    """Simulate a scenario and write its results file; returns the path written."""
    loaded = scenario.load(resolve(scenario_path), sets)
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
    model = engine.build(scn)
    extra_attrs = None
    if design != "random" and model.corr_pairs:
        raise ArtysimError(f"--design {design} assumes independent inputs (Sobol indices do), but the scenario "
                           f"correlates {len(model.corr_pairs)} pair(s) of parameters ([[correlation]]); drop them "
                           "for a Sobol study, or use the default design and PRCC")
    if design != "random":  # a Saltelli design fixes the run count: N (D + 2) for a power-of-two N
        model.design = design_mod.make(design, n_runs, len(model.sampled), the_seed)
        extra_attrs = model.design.attrs([model.params[i].path for i in model.sampled])
        if not quiet and model.design.runs != n_runs:
            print(f"artysim: --design {design}: {model.design.runs} runs = N {model.design.n_base} (a power of two) "
                  f"x ({model.design.d} sampled parameters + 2), for --runs {n_runs}", file=sys.stderr)
        n_runs = model.design.runs
    r0, r1 = shard_range(n_runs, shard, shards)
    if threads is None and os.environ.get("SLURM_CPUS_PER_TASK", "").isdigit():
        threads = int(os.environ["SLURM_CPUS_PER_TASK"])  # what the job was given, not the whole node
    n_threads = engine.resolve_threads(threads)
    batch_size = max(1, min(batch_size, BATCH_RUN_DAYS_PER_THREAD * n_threads // model.horizon))
    resources.check_magnitudes(model, n_runs)  # 64-bit counts: correctness, not overridable
    if resource_check:  # memory and disk, before any work (summary: one is printed after)
        resources.check(model, r1 - r0, n_threads, batch_size, out, runs_total=n_runs, summary=summary)
    daily = engine.Daily.empty(model.horizon, model.n_sample, len(model.kinds))
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
