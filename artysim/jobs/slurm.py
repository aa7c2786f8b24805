"""SLURM job arrays: one sbatch array of shards, a merge job after it, and a submit script.

The jobs call this very Python interpreter (``sys.executable -m artysim.cli``), so they work on
compute nodes without relying on PATH. Each array task writes one shard file atomically; a task
whose shard already exists and is valid exits at once, so requeued or resubmitted tasks are cheap.
A task passes ``--skip-valid --force``: its output is its own shard name in its own job's shards
folder, so a file there that is not its valid shard is a damaged or partial attempt at it.

Nothing that came from an argument is ever executed by a generated script: every path and value in a
script body is one ``shlex.quote``d word (the shard file name is built from quoted parts and a shell
variable expanded inside double quotes, never re-parsed); SLURM options are checked against what
SLURM accepts, so a value cannot start a new line in the ``#SBATCH`` header; the log paths in
``#SBATCH --output=`` are quoted for sbatch's own directive parser and escaped for its file name
patterns (a literal ``%`` as ``%%``). A folder name that no script could hold safely (a control
character such as a newline, or a backslash, which would turn off sbatch's ``%A``-patterns) is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
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


#: the options a job folder records (DIR/job.json) so that ``--only-missing`` resubmits with them
JOB_OPTIONS = ("partition", "time", "mem", "cpus_per_task", "account", "array_limit", "design", "threads")
DEFAULTS = {"time": "01:00:00", "mem": "4G", "cpus_per_task": 1, "design": "random"}


def job_options(out_dir: str | Path, given: dict, only_missing: bool) -> dict:
    """The job's options: those given on the command line (None = not given); for the rest, with
    ``--only-missing``, those the job was first written with (DIR/job.json), else the defaults. (Without
    this, completing a job silently reverted partition, time, memory and CPUs to the defaults.)"""
    stored: dict = {}
    f = Path(out_dir) / "job.json"
    if only_missing and f.is_file():
        try:
            stored = json.loads(f.read_text())
        except (OSError, ValueError) as e:
            raise ArtysimError(f"{f}: cannot read the job's options ({e}); fix or remove it") from None
        if not isinstance(stored, dict):
            raise ArtysimError(f"{f}: expected a JSON object of the job's options")
    out = {}
    for k in JOB_OPTIONS:
        v = given.get(k)
        if v is None:
            v = stored.get(k, DEFAULTS.get(k))
            number = k in ("cpus_per_task", "array_limit", "threads")
            ok = v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1 if number
                               else isinstance(v, str))
            if not ok or (v is None and k in DEFAULTS):
                raise ArtysimError(f"{f}: {k} is {v!r}, expected {'a whole number >= 1' if number else 'text'}; "
                                   f"give --{k.replace('_', '-')} or fix the file")
        out[k] = v
    return out


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


#: what SLURM accepts, by option (a value must match all of it: no space, newline or shell character)
_NAME = r"[A-Za-z0-9_.\-]+"
_CHECKS = {
    "--partition": (re.compile(rf"{_NAME}(,{_NAME})*"), "a partition name, or names separated by commas "
                    "(letters, digits, _ - .)"),
    "--account": (re.compile(_NAME), "an account name (letters, digits, _ - .)"),
    "--time": (re.compile(r"\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}"),
               "a SLURM time: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"),
    "--mem": (re.compile(r"\d+[KMGTkmgt]?"), "an integer with an optional K, M, G or T suffix (e.g. 4G)"),
}
#: characters sbatch's ``#SBATCH`` line parser treats specially
_DIRECTIVE_SPECIAL = set(" \t\"'#\\")


def check_options(opts: SlurmOptions) -> None:
    """Refuse a SLURM option that SLURM would not accept or that could break out of its ``#SBATCH`` line."""
    for opt, value in (("--partition", opts.partition), ("--account", opts.account), ("--time", opts.time),
                       ("--mem", opts.mem)):
        if value is None:
            continue
        rx, what = _CHECKS[opt]
        if not isinstance(value, str) or not rx.fullmatch(value):
            raise ArtysimError(f"{opt} {value!r}: expected {what}")
    for x in opts.extra:
        if not isinstance(x, str) or _control(x) or not x.startswith("-"):
            raise ArtysimError(f"extra #SBATCH option {x!r}: expected one option on one line (e.g. --qos=normal)")


def _control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 or 0x80 <= ord(c) < 0xA0 or c in "\u2028\u2029\x85" for c in text)


def check_out_dir(out: Path) -> None:
    """Refuse a job folder whose name the scripts cannot hold safely (checked on the absolute path)."""
    text = str(out)
    if _control(text):
        raise ArtysimError(f"--out-dir {text!r}: a folder name with a control character (such as a newline) "
                           "cannot be written safely into a SLURM script; choose another --out-dir")
    if "\\" in text:
        raise ArtysimError(f"--out-dir {text!r}: a backslash in the folder name would turn off SLURM's %A/%a "
                           "log name patterns; choose another --out-dir")


def directive_value(path: str) -> str:
    """``path`` as the value of an ``#SBATCH --output=`` directive: ``%`` doubled (sbatch's file name
    patterns), and, if it holds a character sbatch's directive parser treats specially (space, quote,
    ``#``, backslash), in double quotes with each of ``"``, ``'``, ``#`` and backslash escaped by a backslash.
    (A backslash alone cannot protect a space: the parser ends an unquoted argument at a space even
    after a backslash; and older sbatch versions end the line at a ``#`` even inside quotes.) The caller
    appends the patterns (``/%A_%a.out``) after it, outside the quotes."""
    text = path.replace("%", "%%")
    if not any(c in _DIRECTIVE_SPECIAL for c in text):
        return text
    return '"' + "".join("\\" + c if c in "\"'#\\" else c for c in text) + '"'


def _sbatch_header(opts: SlurmOptions, job_name: str, log: str) -> list[str]:
    """``log`` is already a directive value (see ``directive_value``)."""
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
              sets: list[str], opts: SlurmOptions, only_missing: bool = False, design: str = "random",
              threads: int | None = None) -> dict:
    """Write DIR/scenario.toml, DIR/array.sbatch, DIR/merge.sbatch, DIR/submit.sh and DIR/job.json (the
    SLURM options, ``--design`` and ``--threads``, which every task's ``run`` is given)."""
    from artysim.model import design as design_mod

    if design not in design_mod.DESIGNS:
        raise ArtysimError(f"--design must be one of {', '.join(design_mod.DESIGNS)} (found {design!r})")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ArtysimError(f"--threads must be a whole number of at least 1 (found {threads!r})")
    if runs < 1:
        raise ArtysimError(f"--runs must be at least 1 (found {runs})")
    if not 1 <= shards <= runs:
        raise ArtysimError(f"--shards must be between 1 and --runs ({runs}) (found {shards})")
    if opts.cpus_per_task < 1:
        raise ArtysimError(f"--cpus-per-task must be at least 1 (found {opts.cpus_per_task})")
    check_options(opts)
    out = Path(out_dir).resolve()
    check_out_dir(out)
    loaded = load(scenario_path, sets)
    the_seed = loaded.scenario.run.seed if seed is None else seed
    name = slug(loaded.scenario.scenario.name)
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
                                           "runs_total": str(_total(loaded, runs, design)), "shards": str(shards)})
    total = _total(loaded, runs, design)
    expect = {"scenario_hash": loaded.hash, "seed": the_seed, "runs": total, "shards": shards}
    missing = [k for k in range(shards)
               if not shard_is_valid(out / "shards" / shard_name(name, k, shards), expect | {"shard": k})]
    if only_missing and not missing:
        merged = out / f"{name}.nc"
        return {"dir": out, "missing": [], "merged": merged, "submit": None}
    q = shlex.quote
    py = q(sys.executable)
    sets_args = "".join(f" --set {q(s)}" for s in sets)
    run_args = (f" --design {q(design)}" if design != "random" else "") + (f" --threads {int(threads)}" if threads
                                                                         else "")
    width = len(str(shards - 1))
    shards_dir = out / "shards"
    logs = directive_value(str(out / "logs"))
    array = _sbatch_header(opts, f"artysim-{name}", f"{logs}/%A_%a.out") + [
        f"#SBATCH --array={_array_spec(missing, opts.array_limit)}",
        "set -euo pipefail",
        "K=$SLURM_ARRAY_TASK_ID",
        f"SHARDS_DIR={q(str(shards_dir))}",
        # the task's own shard name (shards.shard_name): quoted parts around expansions in double quotes
        f'OUT="$SHARDS_DIR"/{q(name + ".shard-")}"$(printf %0{width}d "$K")"{q(f"-of-{shards}.nc")}',
        # --force with --skip-valid: OUT is this task's own shard in this job's folder (see the docstring)
        f"{py} -m artysim.cli run {q(str(scn_copy))} --runs {runs} --seed {the_seed} "
        f'--shard "$K" --shards {shards} -o "$OUT" --skip-valid --force{run_args}{sets_args}',
        "",
    ]
    merged = out / f"{name}.nc"
    merge = _sbatch_header(opts, f"artysim-{name}-merge", f"{logs}/merge_%j.out") + [
        "set -euo pipefail",
        # --force: the merged file is this job's own output, rebuilt from the same shards
        f"{py} -m artysim.cli merge --force -o {q(str(merged))} {q(str(shards_dir))}",
        "",
    ]
    submit = [
        "#!/bin/bash",
        "# Submits the shard array, then the merge job once every shard has succeeded.",
        "set -euo pipefail",
        f"cd {q(str(out))}",
        "# compile the kernels once here (cached under $NUMBA_CACHE_DIR or ~/.cache/artysim, which the",
        "# jobs inherit) rather than in every task of the first wave; --shards 1: all of its one run,",
        "# even if this script itself runs inside an array task",
        f"{py} -m artysim.cli run scenario.toml --runs 1 --shards 1 -o .warm-up.nc --force --quiet{sets_args}",
        "rm -f .warm-up.nc",
        "array=$(sbatch --parsable array.sbatch)",
        "array=${array%%;*}",
        'merge=$(sbatch --parsable --dependency=afterok:"$array" merge.sbatch)',
        "merge=${merge%%;*}",
        f'echo "submitted shard array $array ({len(missing)} of {shards} shards) and merge job $merge"',
        f"printf '%s\\n' {q(f'result: {merged}')}",
        "",
    ]
    recorded = {"partition": opts.partition, "time": opts.time, "mem": opts.mem, "cpus_per_task": opts.cpus_per_task,
                "account": opts.account, "array_limit": opts.array_limit, "design": design, "threads": threads}
    texts = {"array.sbatch": "\n".join(array), "merge.sbatch": "\n".join(merge), "submit.sh": "\n".join(submit),
             "job.json": json.dumps(recorded, indent=1) + "\n"}
    if not only_missing:
        texts = {"scenario.toml": loaded.text, **texts}  # the very text validated (a pipe is not read twice)
    write_folder(out, texts, fresh=not only_missing)
    return {"dir": out, "missing": missing, "merged": merged, "submit": out / "submit.sh"}


def _total(loaded, runs: int, design: str) -> int:
    """The job's run count: ``runs``, or for a Saltelli design (as ``run`` makes it) N (D + 2)."""
    if design != "sobol":
        return runs
    from artysim.model import design as design_mod

    d = len(loaded.model.sampled)
    return design_mod.sobol_runs(design_mod.sobol_base_n(runs, d), d)


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


