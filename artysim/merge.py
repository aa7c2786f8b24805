"""Merge shard files into one results file, exactly as a single run would have written it.

Shards are checked from their attributes alone (cheap, one file open at a time), then copied one
at a time: per-run variables in run order, per-day counts and sums added (they are integers, so
the merged per-day statistics equal the single run's bit for bit), and the trajectory sample
taken from the shards that hold its runs. Memory is bounded by the largest shard.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import netCDF4
import numpy as np

from artysim import engine, scenario, schema
from artysim.errors import ResultsError
from artysim.io import ResultsWriter, check_target

_MUST_MATCH = ("scenario_hash", "seed", "artysim_version", "artysim_schema_version", "runs_total",
               "horizon_days", "trajectory_sample", "design", "sobol_n")


@dataclass
class ShardInfo:
    path: Path
    attrs: dict
    run_start: int
    run_stop: int


def expand(inputs: list[str]) -> list[Path]:
    """Files, folders (their *.nc) and glob patterns -> sorted unique paths."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.glob("*.nc"))
            if not found:
                raise ResultsError(f"{item}: no shard files (*.nc) in this folder")
            out += found
        elif p.exists():
            out.append(p)
        else:
            hits = sorted(Path(x) for x in glob.glob(item))
            if not hits:
                raise ResultsError(f"{item}: no such file, folder or matching files")
            out += hits
    uniq = sorted({x.resolve() for x in out})
    if not uniq:
        raise ResultsError("no shard files to merge")
    return uniq


def read_info(path: Path) -> ShardInfo:
    try:
        with netCDF4.Dataset(path) as nc:
            attrs = {k: nc.getncattr(k) for k in nc.ncattrs()}
            names = set(nc.variables)
    except OSError as e:
        raise ResultsError(f"{path}: not a readable netCDF file ({e})") from None
    if "artysim_schema_version" not in attrs:
        raise ResultsError(f"{path}: not an artysim results file")
    if int(attrs["artysim_schema_version"]) > schema.SCHEMA_VERSION:
        raise ResultsError(f"{path}: written with results schema {attrs['artysim_schema_version']}, newer than "
                           f"this artysim understands ({schema.SCHEMA_VERSION}); upgrade artysim")
    missing = [v.name for v in schema.ALL if v.name not in names]
    if missing:
        raise ResultsError(f"{path}: incomplete artysim results file (missing {', '.join(missing[:5])})")
    try:
        return ShardInfo(path, attrs, int(attrs["run_start"]), int(attrs["run_stop"]))
    except (KeyError, ValueError, TypeError):
        raise ResultsError(f"{path}: artysim results file without a valid run_start/run_stop attribute") from None


def check(shards: list[ShardInfo]) -> list[tuple[int, int]]:
    """Refuse mixed or overlapping shards; return the missing run ranges (gaps)."""
    first = shards[0]
    for s in shards[1:]:
        for key in _MUST_MATCH:
            a, b = str(first.attrs.get(key)), str(s.attrs.get(key))
            if a != b:
                what = {"scenario_hash": "scenarios", "seed": "seeds", "artysim_version": "artysim versions",
                        "artysim_schema_version": "schema versions", "runs_total": "run counts"}.get(key, key)
                raise ResultsError(f"cannot merge shards of different {what}: {first.path.name} has {key}={a}, "
                                   f"{s.path.name} has {key}={b}")
    shards.sort(key=lambda s: (s.run_start, s.run_stop))
    for a, b in zip(shards, shards[1:]):
        if b.run_start < a.run_stop:
            raise ResultsError(f"overlapping runs: {a.path.name} has runs {a.run_start}..{a.run_stop - 1}, "
                               f"{b.path.name} has runs {b.run_start}..{b.run_stop - 1}")
    total = int(first.attrs["runs_total"])
    gaps = []
    pos = 0
    for s in shards:
        if s.run_start > pos:
            gaps.append((pos, s.run_start))
        pos = s.run_stop
    if pos < total:
        gaps.append((pos, total))
    return gaps


def _describe_gaps(gaps: list[tuple[int, int]], shards: list[ShardInfo]) -> str:
    k = int(shards[0].attrs.get("shards", 1))
    total = int(shards[0].attrs["runs_total"])
    ranges = ", ".join(f"{a}..{b - 1}" for a, b in gaps)
    if k > 1:
        from artysim.runner import shard_range

        idx = [i for i in range(k) if any(a <= shard_range(total, i, k)[0] < b for a, b in gaps)]
        return f"runs {ranges} (shards {', '.join(map(str, idx))} of {k})"
    return f"runs {ranges}"


def merge(inputs: list[str], output: str | Path, *, allow_partial: bool = False, force: bool = False) -> Path:
    out = Path(output)
    check_target(out, force)
    paths = expand(inputs)
    paths = [p for p in paths if p.resolve() != out.resolve()]
    shards = [read_info(p) for p in paths]
    gaps = check(shards)
    if gaps and not allow_partial:
        raise ResultsError(f"shards are missing: {_describe_gaps(gaps, shards)}; merge them once present, "
                           "or pass --allow-partial")
    a0 = shards[0].attrs
    loaded = scenario.loads(str(a0["scenario_toml"]), [x for x in str(a0.get("scenario_overrides", "")).split("\n")
                                                     if x], origin=str(a0.get("scenario_file", "<shard>")))
    if loaded.hash != a0["scenario_hash"]:
        raise ResultsError(f"{shards[0].path}: its scenario text does not match its scenario_hash")
    model = engine.build(loaded.scenario)
    run_index = np.concatenate([np.arange(s.run_start, s.run_stop, dtype=np.int64) for s in shards])
    sample_runs = run_index[run_index < model.n_sample]
    extra = {"merged_from": len(shards)}
    extra |= {k: v for k, v in a0.items() if k == "design" or k.startswith("sobol_")}  # --design sobol
    if gaps:
        extra["partial"] = 1
        extra["missing_runs"] = _describe_gaps(gaps, shards)
    full = not gaps
    T = model.horizon
    daily = engine.Daily.empty(T, model.n_sample, len(model.kinds))
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
                for j, name in enumerate(schema.DAILY_NAMES):
                    daily.hist[:, j, :] += nc[f"{name}_hist"][:]
                    daily.sums[:, j] += nc[f"{name}_sum"][:]
                daily.n_short += nc["n_short"][:]
                daily.n_first_short += nc["n_first_short"][:]
                daily.src_sums[:, 0, :] += nc["fired_by_source_sum"][:]
                daily.src_sums[:, 1, :] += nc["effective_by_source_sum"][:]
                if nc.dimensions["sample"].size:
                    rows = np.asarray(nc["sample"][:], dtype=np.int64)
                    daily.sample_stock[rows] = nc["stock_sample"][:]
                    daily.sample_fired[rows] = nc["fired_sample"][:]
        w.write_daily(daily)
        w.commit()
    return out
