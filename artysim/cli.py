"""The ``artysim`` command line: thin wrappers; every ArtysimError becomes one line and exit 2."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click

from artysim import __version__


class _Group(click.Group):
    """Maps user errors to a one-line message and exit status 2, never a traceback."""

    def invoke(self, ctx):
        from artysim.errors import ArtysimError

        try:
            return super().invoke(ctx)
        except ArtysimError as e:
            click.echo(f"artysim: error: {e}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("artysim: interrupted; no partial results were kept", err=True)
            ctx.exit(130)


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
@click.option("--force", is_flag=True, help="Overwrite an existing results file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress and no summary.")
def run(scenario, runs, seed, output, threads, sets, force, quiet) -> None:
    """Simulate SCENARIO (a .toml file or a bundled name) and write a results file."""
    from artysim import runner, summary
    from artysim.io import open_results

    path = runner.run(scenario, sets=list(sets), runs=runs, seed=seed, output=output, threads=threads,
                      force=force, quiet=quiet)
    if not quiet:
        with open_results(path) as ds:
            click.echo(summary.format_table(summary.summarize(ds)))
        click.echo(f"\nwrote {path}")


def _jsonable(x):
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


@main.command("summary")
@click.argument("result", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def summary_cmd(result, fmt) -> None:
    """Headline answers of a results file, with Monte Carlo standard errors."""
    from artysim import summary
    from artysim.errors import ResultsError
    from artysim.io import open_results

    with open_results(result) as ds:
        try:
            s = summary.summarize(ds)
        except (OSError, RuntimeError) as e:  # data that cannot be read back (a damaged file)
            raise ResultsError(f"{result}: cannot read its data, damaged? ({type(e).__name__}: {e})") from None
    if fmt == "json":
        click.echo(json.dumps(_jsonable(s), indent=2))
    else:
        click.echo(summary.format_table(s))


@main.command()
@click.argument("scenario")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE", help="Override a value (repeatable).")
def validate(scenario, sets) -> None:
    """Check a scenario file without running it."""
    from artysim import engine, runner
    from artysim import scenario as sc

    loaded = sc.load(runner.resolve(scenario), list(sets))
    model = engine.build(loaded.scenario)
    s = loaded.scenario
    click.echo(f"{loaded.origin}: ok — {s.scenario.name}: {len(s.source)} sources "
               f"({', '.join(f'{x.name} [{x.kind}]' for x in s.source)}), {s.horizon} days from "
               f"{s.start_date}, {len(model.sampled)} sampled parameters, hash {loaded.hash[:12]}")


@main.command()
def scenarios() -> None:
    """List the bundled scenarios."""
    from artysim import runner
    from artysim import scenario as sc

    files = runner.bundled()
    if not files:
        click.echo("no bundled scenarios found", err=True)
        sys.exit(2)
    for f in files:
        try:
            desc = sc.load(f).scenario.scenario.description
        except Exception as e:  # a broken bundled file should not hide the others
            desc = f"(invalid: {e})"
        click.echo(f"{f.stem:<24} {desc}")
    click.echo(f"\n(in {Path(files[0]).parent}; run one with: artysim run NAME)")


if __name__ == "__main__":  # pragma: no cover
    main()
