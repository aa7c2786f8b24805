"""The ``artysim`` command line: thin wrappers; every ArtysimError becomes one line and exit 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from artysim.version import __version__


def _one_line(msg: str, limit: int = 1000) -> str:
    """The last guard of "one line": line breaks folded, a message echoing huge input cut in the middle."""
    msg = " ".join(msg.splitlines())
    return msg if len(msg) <= limit else f"{msg[:limit - 200]} ... {msg[-150:]}"


class _Group(click.Group):
    """Maps user errors to a one-line message and exit status 2, never a traceback."""

    def invoke(self, ctx):
        from artysim.errors import ArtysimError

        try:
            return super().invoke(ctx)
        except ArtysimError as e:
            click.echo(f"artysim: error: {_one_line(str(e))}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt as e:
            click.echo("artysim: interrupted; no partial results were kept", err=True)
            ctx.exit(143 if str(e) == "SIGTERM" else 130)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Bad options and arguments get one line (and the help command to try), exit status 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else "artysim"
            click.echo(f"artysim: error: {e.format_message()} (see '{where} --help')", err=True)
            sys.exit(2)
        except click.Abort:
            click.echo("artysim: aborted", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="artysim")
def main() -> None:
    """Monte Carlo simulation of artillery ammunition logistics."""


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
                   "an invalid file there is replaced (for job arrays).")
@click.option("--force", is_flag=True, help="Overwrite an existing results file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress and no summary.")
@click.option("--design", type=click.Choice(["random", "sobol"]), default="random", show_default=True,
              help="sobol: the sampled parameters follow a Saltelli design for Sobol indices (runs become "
                   "N x (parameters + 2), N the next power of two).")
@click.option("--no-resource-check", is_flag=True,
              help="Run even if the estimated memory or output size exceeds what is available.")
def run(scenario, runs, seed, output, threads, sets, shard, shards, skip_valid, force, quiet, design,
        no_resource_check) -> None:
    """Simulate SCENARIO (a .toml file or a bundled name) and write a results file."""
    from artysim.analysis import summary
    from artysim.jobs import run as runner
    from artysim.results.reader import open_results

    shard, shards, done = runner.plan_shard(scenario, sets=list(sets), runs=runs, seed=seed, output=output,
                                            shard=shard, shards=shards, skip_valid=skip_valid, design=design,
                                            quiet=quiet, note=lambda m: click.echo(m, err=True))
    if done:
        return
    force = force or (skip_valid and Path(output).exists())
    path = runner.run(scenario, sets=list(sets), runs=runs, seed=seed, output=output, threads=threads,
                      force=force, quiet=quiet, shard=shard, shards=shards, design=design,
                      resource_check=not no_resource_check, summary=not quiet)
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
@click.option("--time", "time_limit", default="01:00:00", show_default=True, help="Time limit per task.")
@click.option("--mem", default="4G", show_default=True, help="Memory per task.")
@click.option("--cpus-per-task", type=click.IntRange(min=1), default=1, show_default=True,
              help="CPUs per task (artysim uses them all).")
@click.option("--account", help="SLURM account.")
@click.option("--array-limit", type=click.IntRange(min=1), help="At most this many tasks at once (%N).")
@click.option("--only-missing", is_flag=True, help="Resubmit only shards whose files are absent or invalid.")
def slurm_cmd(scenario, runs, shards, out_dir, seed, sets, partition, time_limit, mem, cpus_per_task, account,
              array_limit, only_missing) -> None:
    """Write a SLURM job array for SCENARIO, its merge job and a submit.sh that submits both."""
    from artysim.jobs import slurm
    from artysim.jobs.bundled import resolve

    opts = slurm.SlurmOptions(partition=partition, time=time_limit, mem=mem, cpus_per_task=cpus_per_task,
                              account=account, array_limit=array_limit)
    job = slurm.write_job(str(resolve(scenario)), runs=runs, shards=shards, out_dir=out_dir, seed=seed,
                          sets=list(sets), opts=opts, only_missing=only_missing)
    if job["submit"] is None:
        click.echo(f"all {shards} shards in {job['dir']}/shards are present and valid; "
                   f"merge them with: artysim merge -o {job['merged']} {job['dir']}/shards")
        return
    click.echo(f"wrote {job['dir']}/array.sbatch ({len(job['missing'])} of {shards} shards), merge.sbatch, "
               f"submit.sh\nsubmit with: bash {job['submit']}\nresult will be: {job['merged']}")


@main.command("summary")
@click.argument("results", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="table for reading; json (keys in docs/summary-json.md) or csv (one row per quantity) for scripts.")
def summary_cmd(results, fmt) -> None:
    """Headline answers of a results file (or of shard files, folders, globs read as one), with Monte Carlo
    standard errors; a sweep file gives one row per variant."""
    from artysim.analysis import summary
    from artysim.errors import ResultsError
    from artysim.results.reader import open_results

    what = results[0] if len(results) == 1 else f"{len(results)} inputs"
    with open_results(list(results)) as ds:
        try:
            s = summary.summarize(ds)
        except (OSError, RuntimeError) as e:  # data that cannot be read back (a damaged file)
            raise ResultsError(f"{what}: cannot read its data, damaged? ({type(e).__name__}: {e})") from None
    click.echo(summary.format_any(s, fmt))


@main.command("compare")
@click.argument("a")
@click.argument("b")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def compare_cmd(a, b, fmt) -> None:
    """Compare results B against A: run by run when they share seed and runs (common random numbers),
    otherwise as independent samples. A and B may each be a file or a folder/glob of shards."""
    from artysim.analysis import compare
    from artysim.analysis.stats import jsonable
    from artysim.results.reader import open_results, reading

    with open_results(a) as da, open_results(b) as db, reading(f"{a} or {b}"):
        c = compare.compare(da, db)
    click.echo(json.dumps(jsonable(c), indent=2) if fmt == "json" else compare.format_table(c))


@main.command("plot")
@click.argument("result", type=click.Path(dir_okay=False))
@click.option("--kind", "-k", required=True, metavar="KIND",
              help="fan, depletion, sources, histogram, tornado or sweep (a sweep file).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Picture file (.png or .svg).")
@click.option("--outcome", help="tornado: the per-run outcome ranked (default first_shortage_day); sweep: the "
                                "outcome against the varied value (default P(any shortage)).")
@click.option("--variant", type=click.IntRange(min=0), help="Which variant of a sweep file to draw.")
@click.option("--force", is_flag=True, help="Overwrite an existing picture.")
def plot_cmd(result, kind, output, outcome, variant, force) -> None:
    """Draw one figure of a results file (see the README's Plots section)."""
    from artysim.analysis import plots
    from artysim.errors import ArtysimError
    from artysim.results.reader import open_file as open_results
    from artysim.results.reader import reading

    if kind not in plots.KINDS:
        raise ArtysimError(f"--kind must be one of {', '.join(plots.KINDS)} (found {kind!r})")
    plots.check_output(output, force)  # before reading anything
    kw = {k: v for k, v in (("outcome", outcome), ("variant", variant)) if v is not None}
    with open_results(result) as ds, reading(result):
        fig = plots.plot(ds, kind, **kw)
    click.echo(f"wrote {plots.save(fig, output, force=force)}")


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
def sweep_cmd(scenario, varies, output, runs, seed, sets, threads, force, quiet, no_resource_check) -> None:
    """Run a grid of variants of SCENARIO with common random numbers into one file (a `variant` dimension)."""
    from artysim.analysis import summary
    from artysim.jobs import sweep
    from artysim.results.reader import open_results

    def note(v, n):
        if not quiet:
            click.echo(f"artysim: variant {v.index + 1}/{n}: {v.label}", err=True)

    path = sweep.run_sweep(scenario, list(varies), output, runs=runs, seed=seed, sets=list(sets), threads=threads,
                           force=force, quiet=quiet, on_variant=note, resource_check=not no_resource_check)
    if not quiet:
        with open_results(path) as ds:
            click.echo(summary.format_sweep_table(summary.summarize(ds)))
        click.echo(f"\nwrote {path}")


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
    threads = resources.default_threads()
    batch = resources.batch_size_for(model.horizon, threads)
    est = resources.estimate(model, s.run.runs, threads, batch, summary=True)
    click.echo(f"{s.run.runs} runs on {threads} threads would need {est.describe()}")


@main.command()
def scenarios() -> None:
    """List the bundled scenarios."""
    from artysim.jobs.bundled import bundled
    from artysim.model.load import load

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
