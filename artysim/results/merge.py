"""Merge shard files into one results file, exactly as a single run would have written it.

Shards are checked from their attributes alone (cheap, one file open at a time), then copied one
at a time: per-run variables in run order, per-day counts and sums added (they are integers, so
the merged per-day statistics equal the single run's bit for bit), and the trajectory sample
taken from the shards that hold its runs. Memory is bounded by the largest shard.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import netCDF4
import numpy as np

from artysim.errors import ArtysimError, ResultsError
from artysim.model.load import loads
from artysim.model.scenario import _one_line
from artysim.results import schema
from artysim.results import shards as shards_mod
from artysim.results.atomic import check_target
from artysim.results.memory import available_memory
from artysim.results.reader import reading
from artysim.results.structure import human
from artysim.results.writer import ResultsWriter


def estimate_memory(shards: list[shards_mod.ShardInfo]) -> tuple[int, dict]:
    """Peak memory of merging these shards [bytes], with its parts: one shard's per-run variables are
    read whole (one shard at a time), the mergeable counts are held twice (the sum and the shard being
    added) plus the writer's copy, and the trajectory sample twice (stock, fired); calibrated with
    benchmarks/resources.py --merge."""
    st = [s.structure for s in shards]
    per_run = max(sum(n for name, n in s.nbytes.items() if name in _PER_RUN) for s in st)
    mergeable = sum(n for name, n in st[0].nbytes.items() if name in _MERGEABLE)
    T = st[0].sizes["time"]
    n_sample = min(int(st[0].attrs["trajectory_sample"]), int(st[0].attrs["runs_total"]))
    parts = {"one shard's runs": 2 * per_run, "per-day counts": 3 * mergeable,
             "trajectory sample": 2 * n_sample * T * 8 * 2}
    return MERGE_BASE + sum(parts.values()), parts


_PER_RUN = {v.name for v in schema.PER_RUN + schema.OBSERVED + schema.COMPONENTS}
_MERGEABLE = {v.name for v in schema.MERGEABLE}
#: resident memory of a merge before it reads data (Python, numpy, netCDF4, the scenario's model)
MERGE_BASE = 260 * 2**20


def check_resources(shards: list[shards_mod.ShardInfo], out: Path, *, memory: int | None = -1,
                    disk: int | None = -1) -> None:
    """Refuse a merge that would not fit in memory or on disk (``memory``/``disk`` -1: what this
    machine has now; None: no limit)."""
    need, parts = estimate_memory(shards)
    memory = available_memory() if memory == -1 else memory
    if memory is not None and need > memory:
        big = ", ".join(f"{k} {human(v)}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1])[:2])
        raise ResultsError(f"merging these {len(shards)} shards needs about {human(need)} of memory ({big}), but "
                           f"only {human(memory)} is available; merge on a larger machine, or use "
                           "--no-resource-check to merge anyway")
    if disk == -1:
        try:
            disk = shutil.disk_usage(out.resolve().parent).free
        except OSError:
            disk = None
    size = sum(s.path.stat().st_size for s in shards)
    if disk is not None and size > disk:
        raise ResultsError(f"the merged file will take about {human(size)} (the shards' size), but only "
                           f"{human(disk)} is free in {out.resolve().parent}; free space or write elsewhere (-o), "
                           "or use --no-resource-check to merge anyway")


def _matches_model(s: shards_mod.ShardInfo, model) -> None:
    """The shard's dimensions are those of the scenario it carries (a crafted file could differ)."""
    sizes = s.structure.sizes
    want = {"time": model.horizon, "source": len(model.kinds), "parameter": len(model.sampled),
            "quantile": len(model.scenario.output.quantiles), "observation": len(model.observations),
            "component": len(model.component_names)}
    for d, n in want.items():
        if sizes.get(d, 0) != n:
            raise ResultsError(f"{s.path}: inconsistent artysim results file: {d} dimension of {sizes.get(d, 0)}, but "
                               f"its scenario_toml gives {n}")
    if int(s.attrs["trajectory_sample"]) != model.n_sample:
        raise ResultsError(f"{s.path}: inconsistent artysim results file: trajectory_sample "
                           f"{s.attrs['trajectory_sample']}, but its scenario_toml gives {model.n_sample}")


def _refuse_output_among_inputs(out: Path, paths: list[Path]) -> None:
    """The output must not be one of the inputs: by file identity (device and inode), so that another
    spelling of the path, a hard link or a symbolic link to an input is caught too. (Replacing an input
    would drop its runs from the merge and destroy the shard.)"""
    try:
        o = os.stat(out)
    except OSError:
        return  # no such file (or a dangling link): it cannot be an input
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (o.st_dev, o.st_ino):
            same = "" if str(p) == str(out) else f" ({p})"
            raise ResultsError(f"-o {out} is one of the shards to merge{same}; write the merged file elsewhere")


def merge(inputs: list[str], output: str | Path, *, allow_partial: bool = False, force: bool = False,
          resource_check: bool = True) -> Path:
    out = Path(output)
    paths = shards_mod.expand(inputs)
    shards = shards_mod.drop_merged([shards_mod.read_info(p) for p in paths])
    _refuse_output_among_inputs(out, [s.path for s in shards])
    check_target(out, force)
    gaps = shards_mod.check(shards)
    if gaps and not allow_partial:
        raise ResultsError(f"shards are missing: {shards_mod.describe_gaps(gaps, shards)}; merge them once present, "
                           "or pass --allow-partial")
    if resource_check:
        check_resources(shards, out)
    a0 = shards[0].attrs
    for s in shards:
        if "calibrated_on" in s.attrs:
            raise ResultsError(f"{s.path}: is a calibrated file (artysim calibrate); merge the shards as run, then "
                               "calibrate the merged file")
    origin = str(a0.get("scenario_file", "<shard>"))  # recorded again in the merged file
    try:  # the scenario a shard carries: a problem in it is the shard's, not its original file's
        loaded = loads(str(a0["scenario_toml"]), [x for x in str(a0.get("scenario_overrides", "")).split("\n")
                                                  if x], origin=origin)
    except ArtysimError as e:
        why = _one_line(str(e)).removeprefix(f"{origin}: ")
        raise ResultsError(f"{shards[0].path}: its scenario_toml attribute is not a valid scenario ({why}); "
                           "the shard is damaged or was not written by artysim") from None
    if loaded.hash != a0["scenario_hash"]:
        raise ResultsError(f"{shards[0].path}: its scenario text does not match its scenario_hash")
    model = loaded.model
    for s in shards:
        _matches_model(s, model)
    run_index = np.concatenate([np.arange(s.run_start, s.run_stop, dtype=np.int64) for s in shards])
    sample_runs = run_index[run_index < model.n_sample]
    extra = {"merged_from": len(shards)}
    extra |= {k: v for k, v in a0.items() if k == "design" or k.startswith("sobol_")}  # --design sobol
    if gaps:
        extra["partial"] = 1
        extra["missing_runs"] = shards_mod.describe_gaps(gaps, shards)
    full = not gaps
    T = model.horizon
    stats: dict[str, np.ndarray] | None = None  # the mergeable counts and sums, added shard by shard
    sample_stock = np.full((model.n_sample, T), -1, dtype=np.int64)
    sample_fired = np.full((model.n_sample, T), -1, dtype=np.int64)
    with ResultsWriter(out, force=force, model=model, loaded=loaded, seed=int(a0["seed"]),
                       run_start=int(run_index[0]) if full else int(run_index.min()),
                       run_stop=int(run_index[-1]) + 1, runs_total=int(a0["runs_total"]),
                       shard=0, shards=1, run_index=run_index, sample_runs=sample_runs,
                       extra_attrs=extra, command="merge") as w:
        offset = 0
        for s in shards:
            # an error reading a shard (a damaged chunk) names the shard; the writer's own errors name the output
            with reading(s.path), netCDF4.Dataset(s.path) as nc:
                nc.set_auto_mask(False)
                n = s.run_stop - s.run_start
                if nc.dimensions["run"].size != n:
                    raise ResultsError(f"{s.path}: run dimension ({nc.dimensions['run'].size}) does not "
                                       f"match its run range ({n})")
                arrays = {v.name: nc[v.name][:] for v in schema.per_run_kept(model)
                          + schema.optional_per_run(nc.dimensions)}
                part = {v.name: np.asarray(nc[v.name][:], dtype=np.int64) for v in schema.MERGEABLE}
                for name, x in part.items():
                    if x.size and x.min() < 0:
                        raise ResultsError(f"{s.path}: inconsistent artysim results file: variable {name} holds "
                                           f"negative counts ({int(x.min())})")
                    if name.endswith("_hist") and np.any(x.sum(axis=-1) != n):
                        raise ResultsError(f"{s.path}: inconsistent artysim results file: variable {name} does "
                                           f"not count each of its {n} runs once a day")
                w.write_runs_raw(offset, arrays)
                offset += n
                stats = part if stats is None else {k: stats[k] + part[k] for k in stats}
                if nc.dimensions["sample"].size:
                    rows = np.asarray(nc["sample"][:], dtype=np.int64)
                    sample_stock[rows] = nc["stock_sample"][:]
                    sample_fired[rows] = nc["fired_sample"][:]
        w.write_stats(stats, sample_stock, sample_fired)
        w.commit()
    return out
