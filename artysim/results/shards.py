"""Shards of one job: their names, run ranges, identity and checks, in one place.

A job of N runs split into K shards gives shard k the contiguous runs ``shard_range(N, k, K)``; a
shard file records its run range and job (scenario hash, seed, version, run count) in its attributes,
so a set of shards can be checked from attributes alone, without reading any data.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path

import netCDF4

from artysim.errors import ResultsError
from artysim.results import structure

_MUST_MATCH = ("scenario_hash", "seed", "artysim_version", "artysim_schema_version", "runs_total",
               "horizon_days", "trajectory_sample", "design", "sobol_n")


def shard_name(name: str, shard: int, shards: int) -> str:
    width = len(str(shards - 1))
    return f"{name}.shard-{shard:0{width}d}-of-{shards}.nc"


def shard_range(runs: int, shard: int, shards: int) -> tuple[int, int]:
    """Contiguous block of runs of one shard (sizes differ by at most one)."""
    return (shard * runs) // shards, ((shard + 1) * runs) // shards


def shard_mismatch(path: Path, expect: dict) -> str | None:
    """Why ``path`` is not a valid shard of this job (scenario, seed, runs, shard), written by this
    artysim version (merge refuses to mix versions, so an older shard must be computed again); None
    if it is one."""
    from artysim.version import __version__

    if not path.is_file():
        return "not a file"
    try:
        with netCDF4.Dataset(path) as nc:
            a = {k: nc.getncattr(k) for k in nc.ncattrs()}
    except OSError:
        return "not a readable netCDF file"
    if "artysim_schema_version" not in a:
        return "not an artysim results file"
    try:
        checks = (("scenario_hash", a.get("scenario_hash") == expect["scenario_hash"], "another scenario"),
                  ("seed", str(a.get("seed")) == str(expect["seed"]), f"seed {a.get('seed')}"),
                  ("artysim_version", a.get("artysim_version") == __version__,
                   f"artysim {a.get('artysim_version')}"),
                  ("runs_total", int(a.get("runs_total")) == expect["runs"], f"{a.get('runs_total')} runs"),
                  ("shard", (int(a.get("shard")), int(a.get("shards"))) == (expect["shard"], expect["shards"]),
                   f"shard {a.get('shard')} of {a.get('shards')}"))
    except (TypeError, ValueError):
        return "an artysim file without a readable shard identity"
    for _key, same, what in checks:
        if not same:
            return f"it holds {what}"
    return None


def shard_is_valid(path: Path, expect: dict) -> bool:
    """A shard file that exists, opens, and belongs to this job (see ``shard_mismatch``)."""
    return shard_mismatch(path, expect) is None


#: a shard file name as ``shard_name`` writes it: NAME.shard-K-of-N.nc
SHARD_NAME = re.compile(r"^.+\.shard-(\d+)-of-(\d+)\.nc$")


def parse_shard_name(name: str) -> tuple[int, int] | None:
    """(shard, shards) that a file name says it holds, or None if it is not a shard name."""
    m = SHARD_NAME.match(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def slurm_shard_from_env(environ) -> tuple[int, int] | None:
    """(shard, shards) of a SLURM array task, or None outside one."""
    tid = environ.get("SLURM_ARRAY_TASK_ID")
    count = environ.get("SLURM_ARRAY_TASK_COUNT")
    if tid is None or count is None:
        return None
    try:
        k = int(tid) - int(environ.get("SLURM_ARRAY_TASK_MIN", "0"))
        n = int(count)
    except ValueError:
        raise ResultsError(f"cannot read SLURM_ARRAY_TASK_ID={tid!r} / SLURM_ARRAY_TASK_COUNT={count!r}") from None
    return k, n


@dataclass
class ShardInfo:
    path: Path
    attrs: dict
    run_start: int
    run_stop: int
    structure: structure.Structure | None = None


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
    first: dict[Path, Path] = {}
    for x in out:  # one path per file, as the user spelled it (messages name what was given)
        first.setdefault(x.resolve(), x)
    uniq = sorted(first.values())
    if not uniq:
        raise ResultsError("no shard files to merge")
    return uniq


def drop_merged(infos: list[ShardInfo]) -> list[ShardInfo]:
    """The inputs without merged files (``merge`` output, attribute ``merged_from``) whose runs overlap
    shards also given: a merged file written into its shards' own folder is made of them, and reading
    or merging that folder again must not count its runs twice (nor refuse them as overlapping)."""
    plain = [i for i in infos if "merged_from" not in i.attrs]

    def overlaps(m: ShardInfo) -> bool:
        return any(s.run_start < m.run_stop and m.run_start < s.run_stop for s in plain)

    return [i for i in infos if "merged_from" not in i.attrs or not overlaps(i)]


def read_info(path: Path) -> ShardInfo:
    """A shard's identity from its attributes, after the file's structure was checked
    (``structure.check``: one place for every reader); sweep files are refused (they hold variants of
    one set of runs, not a shard of them)."""
    st = structure.check(path)
    if st.sweep:
        raise ResultsError(f"{path}: is a sweep file (variants of one scenario, made by artysim sweep); only "
                           "shards of one run can be merged or read as one, open a sweep file on its own")
    return ShardInfo(path, st.attrs, st.attrs["run_start"], st.attrs["run_stop"], st)


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


def describe_gaps(gaps: list[tuple[int, int]], shards: list[ShardInfo]) -> str:
    k = int(shards[0].attrs.get("shards", 1))
    total = int(shards[0].attrs["runs_total"])
    ranges = ", ".join(f"{a}..{b - 1}" for a, b in gaps)
    if k > 1:
        idx = [i for i in range(k) if any(a <= shard_range(total, i, k)[0] < b for a, b in gaps)]
        return f"runs {ranges} (shards {', '.join(map(str, idx))} of {k})"
    return f"runs {ranges}"


