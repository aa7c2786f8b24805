"""SLURM job arrays: one sbatch array of shards, a merge job after it, and a submit script.

The jobs call this very Python interpreter (``sys.executable -m artysim.cli``), so they work on
compute nodes without relying on PATH. Each array task writes one shard file atomically; a task
whose shard already exists and is valid exits at once, so requeued or resubmitted tasks are cheap.
"""

from __future__ import annotations

import shlex
import shutil
import sys
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
    (out / "shards").mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    if not only_missing:
        shutil.copyfile(scenario_path, scn_copy)
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
    (out / "array.sbatch").write_text("\n".join(array))
    (out / "merge.sbatch").write_text("\n".join(merge))
    sub = out / "submit.sh"
    sub.write_text("\n".join(submit))
    sub.chmod(0o755)
    return {"dir": out, "missing": missing, "merged": merged, "submit": sub}


