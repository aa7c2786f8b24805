"""The ``artysim`` command line: thin wrappers; every ArtysimError becomes one line and exit 2."""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
from pathlib import Path

import click

from artysim.version import __version__


def _on_sigterm(signum, frame):
    """SIGTERM (SLURM's at a time limit, ``kill``) is an interrupt like Ctrl-C: cleaned up, exit 143."""
    raise KeyboardInterrupt("SIGTERM")


def _interrupted(e: BaseException) -> int:
    """After an interrupt: remove what is temporary, say truly what was written, return 130 or 143."""
    from artysim.results import atomic

    atomic.discard_all()
    written = atomic.committed()
    if written:
        what = ", ".join(str(p) for p in written)
        click.echo(f"artysim: interrupted; {what} had been written completely before", err=True)
    else:
        click.echo("artysim: interrupted; no partial results were kept", err=True)
    return 143 if str(e) == "SIGTERM" else 130


def _one_line(msg: str, limit: int = 1000) -> str:
    """The last guard of "one line": line breaks folded, a message echoing huge input cut in the middle."""
    msg = " ".join(msg.splitlines())
    return msg if len(msg) <= limit else f"{msg[:limit - 200]} ... {msg[-150:]}"


class _Group(click.Group):
    """Maps user errors to a one-line message and exit status 2, never a traceback; SIGINT and SIGTERM
    to one line and exit status 130 and 143 (the shell's 128 + signal number), at any moment."""

    def invoke(self, ctx):
        from artysim.errors import ArtysimError
        from artysim.results import atomic

        try:
            return super().invoke(ctx)
        except KeyError as e:  # xarray's "No variable named 'X'": a per-run variable the file does not keep
            import re

            from artysim.model.scenario import PER_RUN_NAMES

            m = re.search(r"No variable named '(\w+)'", str(e))
            if m is None or m.group(1) not in PER_RUN_NAMES:
                raise
            atomic.discard_all()
            click.echo(f"artysim: error: this needs the per-run variable {m.group(1)}, which the results file does "
                       "not keep ([output] per_run); add it to output.per_run and run again", err=True)
            ctx.exit(2)
        except ArtysimError as e:
            atomic.discard_all()
            click.echo(f"artysim: error: {_one_line(str(e))}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt as e:
            ctx.exit(_interrupted(e))
        except BrokenPipeError:  # the reader of stdout went away (`| head`): stop quietly, as `yes | head` does
            import os
            import sys

            atomic.discard_all()  # what was not yet committed (a committed file is whole and stays)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            ctx.exit(141)  # 128 + SIGPIPE, the shell's status for a writer whose pipe closed

    def format_commands(self, ctx, formatter):
        """Each command with its whole first sentence (click cut them at 45 characters, mid-sentence)."""
        rows = [(name, cmd.get_short_help_str(limit=400)) for name in self.list_commands(ctx)
                if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Bad options and arguments get one line (and the help command to try), exit status 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        import signal

        from artysim.results import atomic

        atomic.reset()
        old_term = None
        try:
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                old_term = signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:  # not the main thread: signals are not ours to handle
            pass
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else "artysim"
            click.echo(f"artysim: error: {e.format_message()} (see '{where} --help')", err=True)
            sys.exit(2)
        except click.Abort as e:
            if isinstance(e.__context__, KeyboardInterrupt):  # click turns an interrupt outside invoke into Abort
                sys.exit(_interrupted(e.__context__))
            click.echo("artysim: aborted", err=True)
            sys.exit(1)
        except KeyboardInterrupt as e:
            sys.exit(_interrupted(e))
        finally:
            if old_term is not None:
                signal.signal(signal.SIGTERM, old_term)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True,
             no_args_is_help=False)
@click.version_option(__version__, prog_name="artysim")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Monte Carlo simulation of artillery ammunition logistics: how likely a shortage is, when, by how much,
    and what each source of shells contributes. Start with 'artysim run nk-deal-2023' (a bundled scenario;
    'artysim scenarios' lists them) and 'artysim COMMAND --help'."""
    if ctx.invoked_subcommand is None:  # bare `artysim`: the help, not an error
        click.echo(ctx.get_help())


@main.command()
@click.argument("scenario")
@click.option("--runs", type=click.IntRange(min=1), help="Number of runs (default: the scenario's [run] runs).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Seed (default: the scenario's [run] seed).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Results file (default results/<name>.nc).")
@click.option("--threads", type=click.IntRange(min=1), help="Threads (default: all cores).")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
              help="Override a scenario value, e.g. --set source.north_korea.dud_rate=0.3 (repeatable).")
@click.option("--shard", type=click.IntRange(min=0), help="Compute only this shard (0-based) of --shards.")
@click.option("--shards", type=click.IntRange(min=1), help="Number of shards the runs are split into.")
@click.option("--skip-valid", is_flag=True,
              help="If the output already holds this very shard (same scenario, seed, runs), do nothing; "
                   "any other file there is refused unless --force (job arrays pass both).")
@click.option("--force", is_flag=True, help="Overwrite an existing results file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress and no summary.")
@click.option("--design", type=click.Choice(["random", "sobol"]), default="random", show_default=True,
              help="sobol: the sampled parameters follow a Saltelli design for Sobol indices (runs become "
                   "N x (parameters + 2), N the next power of two).")
@click.option("--no-resource-check", is_flag=True,
              help="Run even if the estimated memory or output size exceeds what is available.")
@click.option("--until", "until", metavar="RULE",
              help="Run in doubling batches (the first of --runs, default 1000) until a precision rule holds, "
                   "e.g. 'se(p_any_shortage) <= 0.005'; the file equals a plain run of the final run count.")
@click.option("--max-runs", type=click.IntRange(min=1), help="--until: stop here if the rule is not met "
                                                             "(default 1,000,000).")
@click.option("--executor", type=click.Choice(["local", "dask"]),
              help="Run the --shards as tasks of an executor and merge them: local (a pool of processes) or dask "
                   "(--scheduler ADDRESS, or a local dask cluster); --threads is then per task (default 1).")
@click.option("--scheduler", metavar="ADDRESS", help="--executor dask: the scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--workers", type=click.IntRange(min=1), help="--executor local, or dask without --scheduler: "
                                                           "worker processes (default: the cores).")
@click.option("--shard-dir", type=click.Path(file_okay=False),
              help="--executor: folder the tasks write their shards to, reachable by every worker (kept); default "
                   "OUTPUT.shards beside the output, removed after the merge.")
@click.option("--connect-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="--scheduler: seconds to wait for the scheduler.")
def run(scenario, runs, seed, output, threads, sets, shard, shards, skip_valid, force, quiet, design,
        no_resource_check, until, max_runs, executor, scheduler, workers, shard_dir, connect_timeout) -> None:
    """Simulate SCENARIO (a .toml file or a bundled name) and write a results file."""
    from artysim.jobs import run as runner

    if executor is not None or scheduler is not None or workers is not None or shard_dir is not None:
        path = _run_executor(scenario, runs, seed, output, threads, sets, shard, shards, skip_valid, force, quiet,
                             design, no_resource_check, until, max_runs, executor, scheduler, workers, shard_dir,
                             connect_timeout)
        if not quiet:
            _print_summary(path)
        return
    if until is not None or max_runs is not None:
        _run_until(scenario, until, max_runs, runs, seed, output, threads, sets, shard, shards, skip_valid, force,
                   quiet, design, no_resource_check)
        return
    shard, shards, done = runner.plan_shard(scenario, sets=list(sets), runs=runs, seed=seed, output=output,
                                            shard=shard, shards=shards, skip_valid=skip_valid, design=design,
                                            quiet=quiet, note=lambda m: click.echo(m, err=True), force=force)
    if done:
        return
    path = runner.run(scenario, sets=list(sets), runs=runs, seed=seed, output=output, threads=threads,
                      force=force, quiet=quiet, shard=shard, shards=shards, design=design,
                      resource_check=not no_resource_check, summary=not quiet, on_loaded=_warn_units)
    if not quiet:
        _print_summary(path)


def _print_summary(path) -> None:
    """The summary ``run`` prints after writing, or why not (a file keeping few per-run variables)."""
    from artysim.analysis import summary
    from artysim.results.reader import open_results

    with open_results(path) as ds:
        missing = [n for n in summary.SUMMARY_NEEDS if n not in ds.variables]
        if missing:
            click.echo(f"(no summary: [output] per_run does not keep {', '.join(missing)})")
        else:
            click.echo(summary.format_table(summary.summarize(ds)))
    click.echo(f"\nwrote {path}")


def _run_executor(scenario, runs, seed, output, threads, sets, shard, shards, skip_valid, force, quiet, design,
                  no_resource_check, until, max_runs, executor, scheduler, workers, shard_dir, connect_timeout):
    """``run --executor``: the shards as tasks of a process pool or a dask cluster, then merged."""
    from artysim.errors import ArtysimError
    from artysim.jobs import executor as ex

    if executor is None:
        raise ArtysimError("--scheduler, --workers and --shard-dir go with --executor local|dask")
    if shards is None:
        raise ArtysimError("--executor needs --shards K (the number of tasks)")
    if shard is not None or skip_valid or until is not None or max_runs is not None:
        raise ArtysimError("--executor runs every shard and merges them: drop --shard/--skip-valid/--until/--max-runs")
    note = (lambda m: None) if quiet else (lambda m: click.echo(m, err=True))
    plan = ex.plan_sharded(scenario, runs=runs, shards=shards, out=output, seed=seed, sets=list(sets),
                           threads=threads or 1, shard_dir=shard_dir, force=force, design=design,
                           resource_check=not no_resource_check)  # refused before an executor starts
    with ex.open_executor(executor, scheduler=scheduler, workers=workers, connect_timeout=connect_timeout) as pool:
        note(f"artysim: {shards} shard tasks on the {executor} executor")
        return ex.execute(plan, pool, note)


def _warn_units(loaded) -> None:
    """Inputs that look like a unit mistake: one warning line each on stderr (never a refusal)."""
    from artysim.model.sanity import warnings

    for w in warnings(loaded.scenario):
        click.echo(f"artysim: warning: {_one_line(w)}", err=True)


def _run_until(scenario, until, max_runs, runs, seed, output, threads, sets, shard, shards, skip_valid, force,
               quiet, design, no_resource_check) -> None:
    from artysim.analysis import summary
    from artysim.errors import ArtysimError
    from artysim.jobs import until as until_mod
    from artysim.jobs.bundled import resolve
    from artysim.model.load import load
    from artysim.results.reader import open_results

    if until is None:
        raise ArtysimError("--max-runs goes with --until RULE (e.g. --until 'se(p_any_shortage) <= 0.005')")
    if shard is not None or shards is not None or skip_valid or design != "random":
        raise ArtysimError("--until runs one file of the random design: drop --shard/--shards/--skip-valid/--design")
    loaded = load(resolve(scenario), list(sets))
    _warn_units(loaded)
    path, info = until_mod.run_until(loaded, until, first=runs, max_runs=max_runs, seed=seed, output=output,
                                     threads=threads, force=force, quiet=quiet,
                                     resource_check=not no_resource_check,
                                     note=lambda m: click.echo(m, err=True))
    if not info["met"]:
        click.echo(f"artysim: --until {until!r} was not met within --max-runs {info['runs']:,} runs; "
                   f"the file holds those {info['runs']:,} runs", err=True)
    elif not quiet:
        click.echo(f"artysim: --until {until!r} met at {info['runs']:,} runs ({len(info['looks'])} looks)",
                   err=True)
    if not quiet:
        with open_results(path) as ds:
            click.echo(summary.format_table(summary.summarize(ds)))
        click.echo(f"\nwrote {path}")


@main.command()
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Merged results file.")
@click.argument("shards", nargs=-1, required=True)
@click.option("--allow-partial", is_flag=True,
              help="Merge although shards are missing (the file's attributes say which runs).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--no-resource-check", is_flag=True,
              help="Merge even if the estimated memory or output size exceeds what is available.")
def merge(output, shards, allow_partial, force, no_resource_check) -> None:
    """Merge shard files (paths, folders or globs) into one results file."""
    from artysim.results import merge as mg

    path = mg.merge(list(shards), output, allow_partial=allow_partial, force=force,
                    resource_check=not no_resource_check)
    click.echo(f"wrote {path}")


@main.command("slurm")
@click.argument("scenario")
@click.option("--runs", type=click.IntRange(min=1), required=True, help="Total number of runs.")
@click.option("--shards", type=click.IntRange(min=1), required=True, help="Array tasks (shards).")
@click.option("--out-dir", type=click.Path(file_okay=False), required=True, help="Folder for shards, logs, result.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Seed (default: the scenario's).")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE", help="Override a value (repeatable).")
@click.option("--partition", help="SLURM partition.")
@click.option("--time", "time_limit", metavar="TIME", help="Time limit per task (default 01:00:00).")
@click.option("--mem", metavar="MEM", help="Memory per task (default 4G).")
@click.option("--cpus-per-task", type=click.IntRange(min=1), help="CPUs per task (default 1; artysim uses them all).")
@click.option("--account", help="SLURM account.")
@click.option("--array-limit", type=click.IntRange(min=1), help="At most this many tasks at once (%N).")
@click.option("--design", type=click.Choice(["random", "sobol"]), help="Passed to every task's run (default random).")
@click.option("--threads", type=click.IntRange(min=1), help="Passed to every task's run (default: the task's CPUs).")
@click.option("--only-missing", is_flag=True, help="Resubmit only shards whose files are absent or invalid, with the "
              "options the job was written with (DIR/job.json) unless given again.")
def slurm_cmd(scenario, runs, shards, out_dir, seed, sets, partition, time_limit, mem, cpus_per_task, account,
              array_limit, design, threads, only_missing) -> None:
    """Write a SLURM job array for SCENARIO, its merge job and a submit.sh that submits both."""
    from artysim.jobs import slurm
    from artysim.jobs.bundled import resolve

    o = slurm.job_options(out_dir, {"partition": partition, "time": time_limit, "mem": mem,
                                    "cpus_per_task": cpus_per_task, "account": account, "array_limit": array_limit,
                                    "design": design, "threads": threads}, only_missing)
    opts = slurm.SlurmOptions(partition=o["partition"], time=o["time"], mem=o["mem"], cpus_per_task=o["cpus_per_task"],
                              account=o["account"], array_limit=o["array_limit"])
    job = slurm.write_job(str(resolve(scenario)), runs=runs, shards=shards, out_dir=out_dir, seed=seed,
                          sets=list(sets), opts=opts, only_missing=only_missing, design=o["design"],
                          threads=o["threads"])
    q = shlex.quote  # the commands shown are for copying into a shell
    if job["submit"] is None:
        click.echo(f"all {shards} shards in {job['dir']}/shards are present and valid; "
                   f"merge them with: artysim merge -o {q(str(job['merged']))} {q(str(job['dir'] / 'shards'))}")
        return
    click.echo(f"wrote {job['dir']}/array.sbatch ({len(job['missing'])} of {shards} shards), merge.sbatch, "
               f"submit.sh\nsubmit with: bash {q(str(job['submit']))}\nresult will be: {job['merged']}")


@main.command("summary")
@click.argument("results", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="table for reading; json (stable keys, documented with the user guide) or csv (one row per "
                   "quantity: quantity, source, value, se, ci_low, ci_high, unit) for scripts.")
@click.option("--stat", "stats", multiple=True, metavar="EXPR",
              help="A statistic by name with its Monte Carlo SE, e.g. 'p_short_by(2024-06-01)', "
                   "'quantile(first_shortage_day, 0.1)', 'mean(received:north_korea)', 'fill_rate', 'se(EXPR)' "
                   "(repeatable).")
@click.option("--where", metavar="CONDITION",
              help="Only the runs whose sampled parameters satisfy CONDITION, e.g. 'demand.base > 25000' or "
                   "'source.north_korea.dud_rate >= quantile(0.9)' (and, or, not, parentheses).")
def summary_cmd(results, fmt, stats, where) -> None:
    """Headline answers of a results file (or of shard files, folders, globs read as one), with Monte Carlo
    standard errors; a sweep file gives one row per variant."""
    from artysim.analysis import statistics, summary
    from artysim.errors import ResultsError
    from artysim.results.reader import open_results

    what = results[0] if len(results) == 1 else f"{len(results)} inputs"
    with open_results(list(results)) as ds:
        try:
            sel, chosen = (ds, None) if where is None else statistics.where(ds, where)
            est = statistics.stats_of_dataset(sel, list(stats)) if stats else None  # bad EXPR: before reading
            if est is not None and fmt == "table":  # the heading only: a file keeping few per-run variables works
                s = {"scenario": sel.attrs.get("scenario_name"), "runs": int(sel.sizes["run"]),
                     "seed": sel.attrs.get("seed"), "horizon_days": int(sel.sizes["time"]),
                     "start_date": sel.attrs.get("start_date")}
            else:
                s = summary.summarize(sel)
        except (OSError, RuntimeError) as e:  # data that cannot be read back (a damaged file)
            raise ResultsError(f"{what}: cannot read its data, damaged? ({type(e).__name__}: {e})") from None
    if chosen is not None:
        s["where"] = chosen
    if est is not None:
        s["stats"] = {t: e.as_dict() for t, e in est.items()}
        if fmt == "table":
            click.echo(summary.format_stats(s, est))
            return
    click.echo(summary.format_any(s, fmt))


@main.command("calibrate")
@click.argument("results", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The calibrated copy: RESULTS with weight(run) added.")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def calibrate_cmd(results, output, force, fmt) -> None:
    """Weight the runs of RESULTS by the likelihood of its scenario's observations (bands accept or reject,
    normal and lognormal error models give densities) and write the weights into a copy; every reading
    command then uses them."""
    from artysim.analysis import calibrate
    from artysim.analysis.stats import jsonable

    rep = calibrate.calibrate(results, output, force=force)
    if "warning" in rep:
        click.echo(f"artysim: warning: {rep['warning']}", err=True)
    click.echo(json.dumps(jsonable(rep), indent=2) if fmt == "json" else calibrate.format_report(rep))


@main.command("compare")
@click.argument("a")
@click.argument("b", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--where", metavar="CONDITION",
              help="Only the runs whose sampled parameters in A satisfy CONDITION; the same run indices of B.")
@click.option("--variant", "variants", metavar="I[,J]",
              help="Sweep variants: variant I of A and J of B (J defaults to I); with a single sweep file A, "
                   "compare its variants I and J.")
@click.option("--common-window", is_flag=True,
              help="Files of different horizons (same start date): compare the days both cover only.")
def compare_cmd(a, b, fmt, where, variants, common_window) -> None:
    """Compare results B against A: run by run when they share seed, runs and the streams of what differs
    (common random numbers), otherwise as independent samples. A and B may each be a file or a
    folder/glob of shards; run counts that differ are compared on their common runs."""
    from artysim.analysis import compare, statistics
    from artysim.analysis.stats import jsonable
    from artysim.results.reader import open_results, reading

    pick = _variant_pair(variants, single=b is None)
    with open_results(a) as da, (open_results(b) if b is not None else contextlib.nullcontext(da)) as db, \
            reading(f"{a} or {b}" if b is not None else a):
        da, db = _pick_variant(da, pick[0], "A", a), _pick_variant(db, pick[1], "B", b or a)
        chosen = None
        if where is not None:
            da, db, chosen = statistics.where_pair(da, db, where)
        c = compare.compare(da, db, common_window=common_window)
    if chosen is not None:
        c["where"] = chosen
    if pick != (None, None):
        c["variants"] = list(pick)
    if fmt == "json":
        click.echo(json.dumps(jsonable(c), indent=2))
    else:
        head = (f"variants: A[{pick[0]}] against B[{pick[1]}]\n" if pick != (None, None) else "")
        click.echo(head + (statistics.where_line(chosen) + "\n" if chosen else "") + compare.format_table(c))


def _variant_pair(text: str | None, single: bool) -> tuple[int | None, int | None]:
    """``--variant I[,J]`` as two indices; a single sweep file needs both."""
    if text is None:
        if single:
            raise click.UsageError("compare needs two files, or one sweep file and --variant I,J")
        return None, None
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) > 2 or not all(p.isdigit() for p in parts):
        raise click.BadParameter(f"expected I or I,J (variant indices, integers >= 0), found {text!r}",
                                 param_hint="'--variant'")
    if single and len(parts) != 2:
        raise click.BadParameter("with one sweep file, give two variants I,J to compare", param_hint="'--variant'")
    i = int(parts[0])
    return i, int(parts[1]) if len(parts) == 2 else i


def _pick_variant(ds, i: int | None, side: str, path: str):
    """Variant i of a sweep file (``None``: the file as it is; a plain file refuses an index)."""
    if i is None:
        return ds
    if "variant" not in ds.dims:
        raise click.BadParameter(f"{side} ({path}) is not a sweep file; --variant picks variants of sweep files",
                                 param_hint="'--variant'")
    n = int(ds.sizes["variant"])
    if i >= n:
        raise click.BadParameter(f"{side} ({path}) has variants 0..{n - 1}, not {i}", param_hint="'--variant'")
    return ds.isel(variant=i)


@main.command("plot")
@click.argument("result", type=click.Path(dir_okay=False))
@click.option("--kind", "-k", required=True, metavar="KIND",
              help="fan, depletion, sources, histogram, tornado, swing (tornado in outcome units), compare "
                   "(with --against), sweep or heatmap (a sweep file; heatmap: two varied parameters), or "
                   "solve (a file of 'artysim solve -o'), calibration (a file of 'artysim calibrate': prior vs "
                   "posterior).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Picture file (.png or .svg).")
@click.option("--outcome", help="tornado, swing: the per-run outcome ranked (default first_shortage_day); sweep, "
                                "heatmap: the statistic per variant (default P(any shortage); first_shortage_day: "
                                "its median, beyond the horizon where most runs never run short).")
@click.option("--against", type=click.Path(dir_okay=False), help="compare: the results file B drawn against FILE (A).")
@click.option("--variant", type=click.IntRange(min=0), help="Which variant of a sweep file to draw.")
@click.option("--force", is_flag=True, help="Overwrite an existing picture.")
@click.option("--where", metavar="CONDITION",
              help="Only the runs whose sampled parameters satisfy CONDITION (depletion, histogram, tornado).")
def plot_cmd(result, kind, output, outcome, against, variant, force, where) -> None:
    """Draw one figure of a results file (PNG or SVG) of the kind --kind names."""
    from artysim.analysis import plots
    from artysim.errors import ArtysimError
    from artysim.results.reader import open_file as open_results
    from artysim.results.reader import reading

    if kind not in plots.KINDS:
        raise ArtysimError(f"--kind must be one of {', '.join(plots.KINDS)} (found {kind!r})")
    if kind in plots.TWO_FILE_KINDS and against is None:
        raise ArtysimError(f"--kind {kind} needs --against B.nc: the file to draw against {result}")
    if against is not None and kind not in plots.TWO_FILE_KINDS:
        raise ArtysimError(f"--against is for --kind {', '.join(plots.TWO_FILE_KINDS)} only (found --kind {kind})")
    plots.check_output(output, force)  # before reading anything
    kw = {k: v for k, v in (("outcome", outcome), ("variant", variant)) if v is not None}
    if where is not None and kind not in plots.WHERE_KINDS:
        raise ArtysimError(f"--where works with the plots drawn from per-run values ({', '.join(plots.WHERE_KINDS)});"
                           f" {kind} draws per-day statistics kept over all runs only")
    with open_results(result) as ds, reading(result):
        if where is not None:
            from artysim.analysis import statistics

            ds = plots.runs_subset(ds, *statistics.where(ds, where))
        if against is not None:
            with open_results(against) as other:
                fig = plots.plot(ds, kind, against=other, **kw)
        else:
            fig = plots.plot(ds, kind, **kw)
    click.echo(f"wrote {plots.save(fig, output, force=force)}")


@main.command("report")
@click.argument("results", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Report file: .html (one self-contained page) or .pdf.")
@click.option("--format", "fmt", type=click.Choice(["html", "pdf"]),
              help="html (default; .pdf output implies pdf) or pdf (printed by headless Chromium from the same page).")
@click.option("--title", help="The report's title (default: artysim study report: the scenario names).")
@click.option("--force", is_flag=True, help="Overwrite an existing report.")
def report_cmd(results, output, fmt, title, force) -> None:
    """A study report of one or more results files (each a file or a folder/glob of shards): the question,
    the headline answers with their Monte Carlo errors, the plots, the per-source table, the comparison of
    every further file with the first (paired where they pair), sensitivity and the provenance, in one
    self-contained HTML page that needs no network, or a PDF of it."""
    from artysim.analysis import report

    click.echo(f"wrote {report.write(list(results), output, fmt=fmt, force=force, title=title)}")


@main.command("sensitivity")
@click.argument("result", type=click.Path(dir_okay=False))
@click.option("--outcome", help="Per-run outcome (default first_shortage_day, never short = horizon + 1); also "
                                "shortfall_total, effective_total, fill_rate, VAR:SOURCE, any per-run variable.")
@click.option("--variant", type=click.IntRange(min=0), help="Which variant of a sweep file to analyse.")
@click.option("--points", type=click.IntRange(min=1), default=6, show_default=True,
              help="Days of the horizon at which the ranking over time is shown.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def sensitivity_cmd(result, outcome, variant, points, fmt) -> None:
    """Rank the sampled inputs by their effect on an outcome (Spearman, PRCC, Sobol for --design sobol)."""
    from artysim.analysis import sensitivity
    from artysim.analysis.stats import jsonable
    from artysim.results.reader import open_file as open_results
    from artysim.results.reader import reading

    with open_results(result) as ds, reading(result):
        res = sensitivity.analyze(ds, outcome, variant=variant, points=points)
    if fmt == "json":
        click.echo(json.dumps(jsonable(res), indent=2))
    else:
        click.echo(sensitivity.format_table(res))


@main.command("sweep")
@click.argument("scenario")
@click.option("--vary", "varies", multiple=True, required=True, metavar="PATH=V1,V2,...",
              help="Values of one scenario path (repeatable; the grid is the product of all --vary lists).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Sweep results file.")
@click.option("--runs", type=click.IntRange(min=1), help="Runs per variant (default: the scenario's).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Seed of every variant (default: the scenario's).")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE", help="Override a value in every variant.")
@click.option("--threads", type=click.IntRange(min=1), help="Threads (default: all cores).")
@click.option("--force", is_flag=True, help="Overwrite an existing results file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress and no summary.")
@click.option("--no-resource-check", is_flag=True,
              help="Run even if a variant's estimated memory or output size exceeds what is available.")
@click.option("--until", "until", metavar="RULE", help="Double the runs per variant (from --runs, default 1000) "
              "until the precision rule holds on every variant, e.g. 'se(p_any_shortage) <= 0.005'.")
@click.option("--max-runs", type=click.IntRange(min=1), help="--until: stop at this many runs per variant.")
def sweep_cmd(scenario, varies, output, runs, seed, sets, threads, force, quiet, no_resource_check, until,
              max_runs) -> None:
    """Run a grid of variants of SCENARIO with common random numbers into one file (a `variant` dimension)."""
    from artysim.analysis import summary
    from artysim.jobs import sweep
    from artysim.results.reader import open_results

    def note(v, n):
        if not quiet:
            click.echo(f"artysim: variant {v.index + 1}/{n}: {v.label}", err=True)

    if until is None and max_runs is not None:
        from artysim.errors import ArtysimError

        raise ArtysimError("--max-runs goes with --until RULE (e.g. --until 'se(p_any_shortage) <= 0.005')")
    if until is not None:
        from artysim.jobs import until as until_mod

        path, info = until_mod.sweep_until(scenario, list(varies), output, until, first=runs, max_runs=max_runs,
                                           seed=seed, sets=list(sets), threads=threads, force=force, quiet=quiet,
                                           resource_check=not no_resource_check, on_variant=note,
                                           note=lambda m: click.echo(m, err=True))
        if not info["met"]:
            click.echo(f"artysim: --until {until!r} was not met on every variant within --max-runs "
                       f"{info['runs']:,} runs; the file holds those {info['runs']:,} runs per variant", err=True)
    else:
        path = sweep.run_sweep(scenario, list(varies), output, runs=runs, seed=seed, sets=list(sets),
                               threads=threads, force=force, quiet=quiet, on_variant=note,
                               resource_check=not no_resource_check)
    if not quiet:
        with open_results(path) as ds:
            click.echo(summary.format_sweep_table(summary.summarize(ds)))
        click.echo(f"\nwrote {path}")


@main.command()
@click.option("--threads", type=click.IntRange(min=1), help="Threads (default: all cores).")
def warm(threads) -> None:
    """Compile the kernel into the cache ($NUMBA_CACHE_DIR, or ~/.cache/artysim) and exit: run it once
    where the workers' cache lives, before a job array or a cluster's tasks start."""
    from artysim.jobs import executor as ex

    where, seconds = ex.warm(threads=threads)
    click.echo(f"artysim: kernel compiled or loaded in {seconds:.1f} s; cache: {where}")


@main.command()
@click.argument("scenario")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE", help="Override a value (repeatable).")
def validate(scenario, sets) -> None:
    """Check a scenario file without running it."""
    from artysim.jobs import resources
    from artysim.jobs.bundled import resolve
    from artysim.model.load import load

    loaded = load(resolve(scenario), list(sets))
    model = loaded.model
    s = loaded.scenario
    resources.check_magnitudes(model, s.run.runs)
    click.echo(f"{loaded.origin}: ok — {s.scenario.name}: {len(s.source)} sources "
               f"({', '.join(f'{x.name} [{x.kind}]' for x in s.source)}), {s.horizon} days from "
               f"{s.start_date}, {len(model.sampled)} sampled parameters, hash {loaded.hash[:12]}")
    _warn_units(loaded)
    threads = resources.default_threads()
    batch = resources.batch_size_for(model.horizon, threads)
    est = resources.estimate(model, s.run.runs, threads, batch, summary=True)
    click.echo(f"{s.run.runs} runs on {threads} threads would need {est.describe()}")


@main.command("solve")
@click.argument("scenario")
@click.option("--lever", required=True, metavar="PATH", help="The scenario value searched, e.g. "
              "source.north_korea.shipments_per_month (with --scale, a distribution or schedule there).")
@click.option("--range", "range_", required=True, metavar="LO,HI", help="Where to search (with --scale: factors).")
@click.option("--target", required=True, metavar="RULE", help="What to meet, e.g. 'p_any_shortage <= 0.1'.")
@click.option("--scale", is_flag=True, help="Multiply the distribution or schedule at PATH as a whole by the "
                                            "searched factor (its location and scale parameters).")
@click.option("--runs", type=click.IntRange(min=2), help="Runs per evaluation (default: the scenario's).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Seed of every evaluation (default: the scenario's).")
@click.option("--tol", type=float, help="Stop the bisection when the bracket is this narrow (default (HI-LO)/1024; "
                                        "integer levers: 1).")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE", help="Override a value (repeatable).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Results file of the final evaluation.")
@click.option("--force", is_flag=True, help="Overwrite an existing results file.")
@click.option("--threads", type=click.IntRange(min=1), help="Threads (default: all cores).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No line per evaluation on stderr.")
@click.option("--until", "until", metavar="RULE", help="Each evaluation doubles its runs (from --runs) until this "
              "precision rule holds, e.g. 'se(p_any_shortage) <= 0.005'.")
@click.option("--max-runs", type=click.IntRange(min=2), help="--until: at most this many runs per evaluation.")
def solve_cmd(scenario, lever, range_, target, scale, runs, seed, tol, sets, output, force, threads, fmt,
              quiet, until, max_runs) -> None:
    """The smallest (or largest) lever value meeting a target, by bisection under common random numbers."""
    from artysim.analysis.stats import jsonable
    from artysim.jobs import solve

    lo, hi = solve.parse_range(range_)
    r = solve.solve(scenario, lever=lever, lo=lo, hi=hi, target=target, scale=scale, runs=runs, seed=seed, tol=tol,
                    sets=list(sets), output=output, force=force, threads=threads, until=until, max_runs=max_runs,
                    note=None if quiet else (lambda m: click.echo(m, err=True)))
    if r["monotone_note"]:
        click.echo(f"artysim: warning: {r['monotone_note']}", err=True)
    click.echo(json.dumps(jsonable(r), indent=2) if fmt == "json" else solve.format_table(r))


@main.command()
@click.option("--cite", "cite", metavar="NAME",
              help="Print the rows of data/figures.csv that bundled scenario NAME cites, one per line.")
def scenarios(cite: str | None) -> None:
    """List the bundled scenarios (or, with --cite, the sources one of them cites)."""
    from artysim.jobs.bundled import bundled, citations
    from artysim.model.load import load

    if cite is not None:
        for line in citations(cite):
            click.echo(line)
        return
    files = bundled()
    if not files:
        click.echo("no bundled scenarios found", err=True)
        sys.exit(2)
    for f in files:
        try:
            desc = load(f).scenario.scenario.description
        except Exception as e:  # a broken bundled file should not hide the others
            desc = f"(invalid: {e})"
        click.echo(f"{f.stem:<24} {desc}")
    click.echo(f"\n(in {Path(files[0]).parent}; run one with: artysim run NAME)")


if __name__ == "__main__":  # pragma: no cover
    main()
