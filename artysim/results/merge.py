"""Merge shard files into one results file, exactly as a single run would have written it.

Shards are checked from their attributes alone (cheap, one file open at a time), then copied one
at a time: per-run variables in run order, per-day counts and sums added (they are integers, so
the merged per-day statistics equal the single run's bit for bit), and the trajectory sample
taken from the shards that hold its runs. Memory is bounded by the largest shard.
"""

from __future__ import annotations

import os
from pathlib import Path

import netCDF4
import numpy as np

from artysim.errors import ResultsError
from artysim.model.load import loads
from artysim.results import schema
from artysim.results import shards as shards_mod
from artysim.results.atomic import check_target
from artysim.results.writer import ResultsWriter


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


def merge(inputs: list[str], output: str | Path, *, allow_partial: bool = False, force: bool = False) -> Path:
    out = Path(output)
    paths = shards_mod.expand(inputs)
    _refuse_output_among_inputs(out, paths)
    check_target(out, force)
    shards = [shards_mod.read_info(p) for p in paths]
    gaps = shards_mod.check(shards)
    if gaps and not allow_partial:
        raise ResultsError(f"shards are missing: {shards_mod.describe_gaps(gaps, shards)}; merge them once present, "
                           "or pass --allow-partial")
    a0 = shards[0].attrs
    loaded = loads(str(a0["scenario_toml"]), [x for x in str(a0.get("scenario_overrides", "")).split("\n")
                                                     if x], origin=str(a0.get("scenario_file", "<shard>")))
    if loaded.hash != a0["scenario_hash"]:
        raise ResultsError(f"{shards[0].path}: its scenario text does not match its scenario_hash")
    model = loaded.model
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
            with netCDF4.Dataset(s.path) as nc:
                nc.set_auto_mask(False)
                n = s.run_stop - s.run_start
                if nc.dimensions["run"].size != n:
                    raise ResultsError(f"{s.path}: run dimension ({nc.dimensions['run'].size}) does not "
                                       f"match its run range ({n})")
                w.write_runs_raw(offset, {v.name: nc[v.name][:] for v in schema.PER_RUN})
                offset += n
                part = {v.name: np.asarray(nc[v.name][:], dtype=np.int64) for v in schema.MERGEABLE}
                stats = part if stats is None else {k: stats[k] + part[k] for k in stats}
                if nc.dimensions["sample"].size:
                    rows = np.asarray(nc["sample"][:], dtype=np.int64)
                    sample_stock[rows] = nc["stock_sample"][:]
                    sample_fired[rows] = nc["fired_sample"][:]
        w.write_stats(stats, sample_stock, sample_fired)
        w.commit()
    return out
