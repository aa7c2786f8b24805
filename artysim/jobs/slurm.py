"""SLURM job arrays: one sbatch array of shards, a merge job after it, and a submit script.

The jobs call this very Python interpreter (``sys.executable -m artysim.cli``), so they work on
compute nodes without relying on PATH. Each array task writes one shard file atomically; a task
whose shard already exists and is valid exits at once, so requeued or resubmitted tasks are cheap.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from artysim.errors import ArtysimError
from artysim.model.load import load
from artysim.model.scenario import slug
from artysim.results.shards import shard_is_valid, shard_name


@dataclass
class SlurmOptions:
    partition: str | None = None
    time: str = "01:00:00"
    mem: str = "4G"
    cpus_per_task: int = 1
    account: str | None = None
    array_limit: int | None = None
    extra: list[str] = field(default_factory=list)  # raw "#SBATCH ..." options


def _refuse_other_job(folder: Path, job: dict) -> None:
    """Refuse to complete a job in a folder whose shards belong to another one (other --set, --seed,
    --runs or --shards): the merge of the folder would then fail, or mix jobs."""
    import netCDF4

    for p in sorted(folder.glob("*.nc")) if folder.is_dir() else []:
        try:
            with netCDF4.Dataset(p) as nc:
                a = {k: str(nc.getncattr(k)) for k in job if k in nc.ncattrs()}
        except OSError:
            continue  # a damaged shard: resubmitted (if it is one of this job's) or refused by merge
        for k, want in job.items():
            if k in a and a[k] != want:
                hint = {"scenario_hash": "--set", "seed": "--seed", "runs_total": "--runs"}.get(k, "--shards")
                raise ArtysimError(f"{folder} holds shards of a different job ({p.name} has {k}={a[k]}, this job "
                                   f"{want}); complete it with its own {hint}, or choose another --out-dir")


def _sbatch_header(opts: SlurmOptions, job_name: str, log: str) -> list[str]:
    lines = ["#!/bin/bash", f"#SBATCH --job-name={job_name}", f"#SBATCH --output={log}",
             f"#SBATCH --time={opts.time}", f"#SBATCH --mem={opts.mem}",
             f"#SBATCH --cpus-per-task={opts.cpus_per_task}", "#SBATCH --ntasks=1"]
    if opts.partition:
        lines.append(f"#SBATCH --partition={opts.partition}")
    if opts.account:
        lines.append(f"#SBATCH --account={opts.account}")
    lines += [f"#SBATCH {x}" for x in opts.extra]
    return lines


def _array_spec(indices: list[int], limit: int | None) -> str:
    """Compact ranges: [0,1,2,5,7,8] -> '0-2,5,7-8' (with '%limit')."""
    parts = []
    start = prev = None
    for i in sorted(indices):
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            parts.append(f"{start}-{prev}" if prev > start else f"{start}")
            start = prev = i
    if start is not None:
        parts.append(f"{start}-{prev}" if prev > start else f"{start}")
    spec = ",".join(parts)
    return f"{spec}%{limit}" if limit else spec


def write_job(scenario_path: str, *, runs: int, shards: int, out_dir: str | Path, seed: int | None,
              sets: list[str], opts: SlurmOptions, only_missing: bool = False) -> dict:
    """Write DIR/scenario.toml, DIR/array.sbatch, DIR/merge.sbatch and DIR/submit.sh."""
    if runs < 1:
        raise ArtysimError(f"--runs must be at least 1 (found {runs})")
    if not 1 <= shards <= runs:
        raise ArtysimError(f"--shards must be between 1 and --runs ({runs}) (found {shards})")
    if opts.cpus_per_task < 1:
        raise ArtysimError(f"--cpus-per-task must be at least 1 (found {opts.cpus_per_task})")
    loaded = load(scenario_path, sets)
    the_seed = loaded.scenario.run.seed if seed is None else seed
    name = slug(loaded.scenario.scenario.name)
    out = Path(out_dir).resolve()
    scn_copy = out / "scenario.toml"
    if out.exists() and not out.is_dir():
        raise ArtysimError(f"--out-dir {out} is a file, not a folder")
    if out.exists() and not only_missing and any(out.iterdir()):
        raise ArtysimError(f"{out} exists and is not empty; use --only-missing to resubmit missing shards "
                           "of the job there, or choose another --out-dir")
    if only_missing:
        if not scn_copy.is_file():
            raise ArtysimError(f"{out}: no job there to complete (no scenario.toml); run without --only-missing")
        prev = load(scn_copy, sets)
        if prev.hash != loaded.hash:
            raise ArtysimError(f"{out}: holds a job for a different scenario (hash {prev.hash[:12]}, "
                               f"this one {loaded.hash[:12]})")
        _refuse_other_job(out / "shards", {"scenario_hash": loaded.hash, "seed": str(the_seed),
                                           "runs_total": str(runs), "shards": str(shards)})
    expect = {"scenario_hash": loaded.hash, "seed": the_seed, "runs": runs, "shards": shards}
    missing = [k for k in range(shards)
               if not shard_is_valid(out / "shards" / shard_name(name, k, shards), expect | {"shard": k})]
    if only_missing and not missing:
        merged = out / f"{name}.nc"
        return {"dir": out, "missing": [], "merged": merged, "submit": None}
    py = shlex.quote(sys.executable)
    sets_args = " ".join(f"--set {shlex.quote(s)}" for s in sets)
    shard_pat = f"{out}/shards/{name}.shard-$(printf '%0{len(str(shards - 1))}d' $K)-of-{shards}.nc"
    array = _sbatch_header(opts, f"artysim-{name}", f"{out}/logs/%A_%a.out") + [
        f"#SBATCH --array={_array_spec(missing, opts.array_limit)}",
        "set -euo pipefail",
        "K=$SLURM_ARRAY_TASK_ID",
        f'OUT="{shard_pat}"',
        f"{py} -m artysim.cli run {shlex.quote(str(scn_copy))} --runs {runs} --seed {the_seed} "
        f'--shard "$K" --shards {shards} -o "$OUT" --skip-valid {sets_args}',
        "",
    ]
    merged = out / f"{name}.nc"
    merge = _sbatch_header(opts, f"artysim-{name}-merge", f"{out}/logs/merge_%j.out") + [
        "set -euo pipefail",
        # --force: the merged file is this job's own output, rebuilt from the same shards
        f"{py} -m artysim.cli merge --force -o {shlex.quote(str(merged))} {shlex.quote(str(out / 'shards'))}",
        "",
    ]
    submit = [
        "#!/bin/bash",
        "# Submits the shard array, then the merge job once every shard has succeeded.",
        "set -euo pipefail",
        f"cd {shlex.quote(str(out))}",
        "# compile the kernels once here (cached under $NUMBA_CACHE_DIR or ~/.cache/artysim, which the",
        "# jobs inherit) rather than in every task of the first wave",
        f"{py} -m artysim.cli run scenario.toml --runs 1 -o .warm-up.nc --force --quiet {sets_args}",
        "rm -f .warm-up.nc",
        "array=$(sbatch --parsable array.sbatch)",
        "array=${array%%;*}",
        "merge=$(sbatch --parsable --dependency=afterok:$array merge.sbatch)",
        "merge=${merge%%;*}",
        f'echo "submitted shard array $array ({len(missing)} of {shards} shards) and merge job $merge"',
        f'echo "result: {merged}"',
        "",
    ]
    texts = {"array.sbatch": "\n".join(array), "merge.sbatch": "\n".join(merge), "submit.sh": "\n".join(submit)}
    if not only_missing:
        texts = {"scenario.toml": loaded.text, **texts}  # the very text validated (a pipe is not read twice)
    write_folder(out, texts, fresh=not only_missing)
    return {"dir": out, "missing": missing, "merged": merged, "submit": out / "submit.sh"}


def write_folder(out: Path, texts: dict[str, str], *, fresh: bool) -> None:
    """The job folder's files, all or nothing (issue 11): a fresh job is written in a private temporary
    folder beside ``out`` and renamed onto it (an empty ``out`` is replaced); files of an existing job
    (--only-missing) are each written beside their target and renamed over it. A file system that is
    full, read-only or not a folder where one is needed is one line, and nothing half-made is left."""
    tmp: Path | None = None
    for up in out.parents:  # the nearest existing folder above: a file there cannot hold the job
        if up.exists():
            if not up.is_dir():
                raise ArtysimError(f"--out-dir {out}: {up} is a file, not a folder; nothing was written")
            break
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if fresh:
            tmp = Path(tempfile.mkdtemp(prefix=".artysim-job-", dir=out.parent))
            target = tmp
        else:
            target = out
        for sub in ("shards", "logs"):
            (target / sub).mkdir(exist_ok=True)
        for name, text in texts.items():
            fd, part = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=target)
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(part, 0o755 if name.endswith(".sh") else 0o644)
                os.replace(part, target / name)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(part)
                raise
        if fresh:
            os.chmod(tmp, 0o755)
            os.rename(tmp, out)  # onto a missing or empty folder; a folder filled meanwhile is refused
            tmp = None
    except OSError as e:
        what = e.strerror or str(e)
        name = getattr(e, "filename", None)
        where = f" ({name})" if name and (tmp is None or Path(tmp) not in Path(name).parents) else ""
        raise ArtysimError(f"{out}: cannot write the job folder: {what}{where}; "
                           f"{'nothing was written' if fresh else 'its existing files are unchanged'}") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


