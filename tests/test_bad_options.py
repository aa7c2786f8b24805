"""Every command's bad options and arguments: exit status 2, one line giving the reason, no traceback,
nothing written. ``CASES`` is also what docs/gen_bad_input.py turns into docs/bad-input.md.

Placeholders in the arguments: ``{nc}`` a valid results file, ``{out}`` an empty output folder,
``{scn}`` a small valid scenario file, ``{missing}`` a path that does not exist.
"""

from __future__ import annotations

import string

import pytest
from click.testing import CliRunner
from support import assert_refused, leftovers

from artysim.cli import main

#: (command, arguments, words the one-line message must contain); {..} are filled in by ``fill``
CASES = [
    # run
    ("run", "{scn} --runs 0", ["--runs", "0"]),
    ("run", "{scn} --runs -5", ["--runs"]),
    ("run", "{scn} --runs many", ["--runs", "many"]),
    ("run", "{scn} --runs 1.5", ["--runs"]),
    ("run", "{scn} --runs 1000000000000000000000 --no-resource-check", ["--runs", "1e+12"]),
    ("run", "{scn} --shards 0", ["--shards"]),
    ("run", "{scn} --shard 5 --shards 3", ["--shard", "5", "3"]),
    ("run", "{scn} --shard 3 --shards 3", ["--shard"]),
    ("run", "{scn} --shard -1 --shards 3", ["--shard"]),
    ("run", "{scn} --shard 1", ["--shard and --shards go together"]),
    ("run", "{scn} --threads 0", ["--threads"]),
    ("run", "{scn} --threads all", ["--threads"]),
    ("run", "{scn} --seed -1", ["--seed"]),
    ("run", "{scn} --seed 9223372036854775808", ["--seed"]),
    ("run", "{scn} --design lhs", ["--design", "lhs"]),
    ("run", "{scn} --frobnicate", ["No such option", "--frobnicate"]),
    ("run", "{scn} extra-argument", ["unexpected extra argument"]),
    ("run", "", ["Missing argument", "SCENARIO"]),
    ("run", "{missing}.toml", ["no such scenario file"]),
    ("run", "{scn} --skip-valid", ["--skip-valid needs -o"]),
    # run --executor (issue 16): refused before any executor starts or any file is made
    ("run", "{scn} --executor local", ["--executor needs --shards K"]),
    ("run", "{scn} --executor slurm --shards 2", ["--executor", "slurm"]),
    ("run", "{scn} --scheduler tcp://127.0.0.1:9 --shards 2", ["go with --executor local|dask"]),
    ("run", "{scn} --executor local --scheduler tcp://127.0.0.1:9 --shards 2 -o {out}/r.nc",
     ["--scheduler", "goes with --executor dask"]),
    ("run", "{scn} --executor dask --scheduler tcp://127.0.0.1:9 --connect-timeout 0.5 --shards 2 -o {out}/r.nc",
     ["--scheduler tcp://127.0.0.1:9", "cannot reach a dask scheduler within 0.5 s"]),
    ("run", "{scn} --executor local --shards 2 --shard 1", ["drop --shard"]),
    ("run", "{scn} --executor local --shards 2 --connect-timeout 0", ["--connect-timeout"]),
    ("run", "{scn} --executor local --shards 2 --shard-dir {nc}", ["--shard-dir", "is a file"]),
    # [output] per_run: known, distinct per-run variables (issue 16)
    ("run", "{scn} --set 'output.per_run=[\"fird_total\"]' -o {out}/r.nc",
     ["output.per_run[0]", "unknown per-run variable 'fird_total'", "did you mean 'fired_total'"]),
    ("run", "{scn} --set 'output.per_run=[\"fired_total\", \"fired_total\"]' -o {out}/r.nc",
     ["output.per_run[1]", "listed twice"]),
    ("run", "{scn} --set 'output.per_run=[]' -o {out}/r.nc", ["output.per_run"]),
    ("warm", "--threads 0", ["--threads"]),
    ("warm", "extra", ["unexpected extra argument"]),
    ("run", "{scn} -o {nc} --skip-valid --seed 7", ["not shard 0 of 1 of this job", "seed 1", "--force"]),
    ("run", "{scn} --set nope.path=1", ["nope", "unknown key"]),
    ("run", "{scn} --set demand.bsae=1", ["demand.bsae", "did you mean 'base'"]),
    ("run", "{scn} --set demand.base=abc", ["demand.base", "abc"]),
    ("run", "{scn} --set demand.base=-5", ["demand.base", "rounds/day"]),
    ("run", "{scn} --set demand.base", ["--set", "expected path=value"]),
    ("run", "{scn} --set demand..base=1", ["empty part"]),
    ("run", "{scn} --set demand.base.low=1", ["'demand.base' is a value, not a table"]),
    ("run", "{scn} --set source.ghost.dud_rate=0.1", ["no source named 'ghost'"]),
    ("run", "{scn} --set source.old=1", ["name a field of the source"]),
    ("run", "{scn} --set scenario.horizon_days=1.5", ["scenario.horizon_days"]),
    ("run", "{scn} --set scenario.horizon_days=0", ["scenario.horizon_days"]),
    ("run", "{scn} --set scenario.start_date=2023-02-30", ["scenario.start_date"]),
    ("run", "{scn} --set run.runs=0", ["run.runs"]),
    ("run", "{scn} --set source.old.dud_rate=1.5", ["--set source.old.dud_rate=1.5: source.old.dud_rate", "fraction"]),
    ("run", "{scn} --set source.fab.anual=5", ["--set source.fab.anual=5: source.fab.anual", "did you mean 'annual'"]),
    ("run", "{scn} --set 'demand.base={{ dist = \"unifrom\", low = 1, high = 2 }}'", ["demand.base.dist", "unifrom"]),
    ("run", "{scn} --set policy.issue=random", ["policy.issue", "random"]),
    ("run", "{scn} --until 'se(p_any_shortage) <= 0' -o {out}/u.nc", ["--until", "can never be met"]),
    ("run", "{scn} --until 'p_any_shortage <= 2' -o {out}/u.nc", ["always holds"]),
    ("run", "{scn} --until 'p_any_shortage <= 0.5' -o {out}/u.nc", ["expected a precision rule"]),
    ("run", "{scn} --until 'se(p_any_shortage)' -o {out}/u.nc", ["expected a comparison"]),
    ("run", "{scn} --max-runs 10 -o {out}/u.nc", ["--max-runs goes with --until"]),
    ("run", "{scn} --set scenario.horizon_days=true", ["scenario.horizon_days", "boolean"]),
    ("run", "{scn} --set run.runs=false", ["run.runs", "boolean"]),
    ("run", "{scn} --set 'demand.base={{ dist = \"uniform\", low = true, high = 5 }}'", ["demand.base.low", "boolean"]),
    ("run", "{scn} --set 'output.quantiles=[0.5, true]'", ["output.quantiles[1]", "boolean"]),
    ("run", "{scn} --set 'demand.base=" + "[" * 300 + "]" * 300 + "'", ["--set", "nested more than 32 deep"]),
    ("validate", "{scn} --set demand." + "k" * 2000 + "=1", ["unknown key", "(2000 characters)"]),
    # merge
    ("merge", "{nc}", ["Missing option", "-o"]),
    ("merge", "-o {out}/m.nc", ["Missing argument", "SHARDS"]),
    ("merge", "-o {out}/m.nc {missing}.nc", ["no such file"]),
    ("merge", "-o {out}/m.nc {out}", ["no shard files"]),
    ("merge", "-o {missing}/m.nc {nc}", ["does not exist"]),
    ("merge", "-o {nc} {nc}", ["one of the shards to merge"]),
    ("merge", "--force --allow-partial -o {nc} {nc}", ["one of the shards to merge"]),
    # slurm
    ("slurm", "{scn} --runs 100 --shards 0 --out-dir {out}/j", ["--shards"]),
    ("slurm", "{scn} --runs 0 --shards 2 --out-dir {out}/j", ["--runs"]),
    ("slurm", "{scn} --runs 100 --shards 2", ["Missing option", "--out-dir"]),
    ("slurm", "{scn} --runs 100 --shards 2 --out-dir {out}/j --cpus-per-task 0", ["--cpus-per-task"]),
    ("slurm", "{scn} --runs 100 --shards 2 --out-dir {out}/j --array-limit 0", ["--array-limit"]),
    ("slurm", "{scn} --runs 100 --shards 2 --out-dir {out}/j --set demand.base=x", ["demand.base"]),
    ("slurm", "{missing}.toml --runs 100 --shards 2 --out-dir {out}/j", ["no such scenario file"]),
    ("slurm", "{scn} --runs 100 --shards 2 --out-dir {out}/j --partition 'debug;touch PWNED'", ["--partition"]),
    ("slurm", "{scn} --runs 100 --shards 2 --out-dir {out}/j --account 'a b'", ["--account"]),
    ("slurm", "{scn} --runs 100 --shards 2 --out-dir {out}/j --time 1h", ["--time", "D-HH:MM:SS"]),
    ("slurm", "{scn} --runs 100 --shards 2 --out-dir {out}/j --mem 4GB", ["--mem"]),
    ("slurm", "{scn} --runs 100 --shards 2 --out-dir {nc}/j", ["is a file, not a folder"]),
    ("slurm", "{scn} --runs 100 --shards 2 --out-dir {out}/j --set run.runs=true", ["run.runs", "boolean"]),
    # summary
    ("summary", "", ["Missing argument"]),
    ("summary", "{nc} --format xml", ["--format", "xml"]),
    ("summary", "{missing}.nc", ["no such file"]),
    ("summary", "{nc} --stat 'quantile(first_shortage_dy, 0.1)'",
     ["unknown variable 'first_shortage_dy' at position 9"]),
    ("summary", "{nc} --stat 'mean(received:ghost)'", ["unknown source 'ghost'"]),
    ("summary", "{nc} --stat 'mean(stock_min'", ["expected ')'"]),
    ("summary", "{nc} --stat 'p_short_by(2024-02-30)'", ["is not a date"]),
    ("summary", "{nc} --stat 'p_short_by(2025-01-01)'", ["outside the horizon"]),
    ("summary", "{nc} --stat 'quantile(stock_min, 1.5)'", ["outside (0, 1)"]),
    ("summary", "{nc} --stat 'p_any_shortage p_any_shortage'", ["unexpected 'p_any_shortage'"]),
    ("summary", "{nc} --stat ''", ["empty expression"]),
    ("summary", "{nc} --where 'source.old.initial > 1e9'", ["selects no run"]),
    ("summary", "{nc} --where 'demand.base > 5'", ["unknown parameter 'demand.base'"]),
    ("summary", "{nc} --where 'source.old.initial >'", ["expected a value or quantile(Q)"]),
    # calibrate (its refusals of files are in test_calibrate.py)
    ("calibrate", "{nc}", ["Missing option", "-o"]),
    ("calibrate", "{nc} -o {missing}.nc --format xml", ["--format"]),
    ("calibrate", "{missing}.nc -o {missing}-cal.nc", ["no such file"]),
    ("calibrate", "{nc} -o {missing}-cal.nc", ["without observations"]),
    # compare
    ("compare", "{nc}", ["compare needs two files, or one sweep file and --variant I,J"]),
    ("compare", "{nc} {nc} --variant x", ["--variant", "expected I or I,J"]),
    ("compare", "{nc} {nc} --variant 0,1,2", ["--variant", "expected I or I,J"]),
    ("compare", "{nc} {nc} --variant 0", ["--variant", "is not a sweep file"]),
    ("compare", "{nc} --variant 0", ["--variant", "give two variants I,J"]),
    ("compare", "{nc} {nc} --format xml", ["--format"]),
    ("compare", "{nc} {missing}.nc", ["no such file"]),
    ("compare", "{nc} {nc} --where 'source.old.initial < 0'", ["selects no run"]),
    # plot
    ("plot", "{nc} --kind pie -o {out}/p.png", ["--kind", "pie"]),
    ("plot", "{nc} -o {out}/p.png", ["Missing option", "--kind"]),
    ("plot", "{nc} --kind fan", ["Missing option", "-o"]),
    ("plot", "{nc} --kind fan -o {out}/p.bmp2", ["p.bmp2"]),
    ("plot", "{nc} --kind fan -o {missing}/p.png", ["does not exist"]),
    ("plot", "{nc} --kind fan -o {out}/p.png --variant -1", ["--variant"]),
    ("plot", "{missing}.nc --kind fan -o {out}/p.png", ["no such file"]),
    ("plot", "{nc} --kind fan -o {out}/p.png --where 'source.old.initial > 1'", ["--where works with"]),
    ("plot", "{nc} --kind histogram -o {out}/p.png --where 'source.old.initial > 1e9'", ["selects no run"]),
    ("plot", "{nc} --kind compare -o {out}/p.png", ["--kind compare needs --against"]),
    ("plot", "{nc} --kind fan --against {nc} -o {out}/p.png", ["--against is for --kind compare"]),
    ("plot", "{nc} --kind compare --against {missing}.nc -o {out}/p.png", ["no such file"]),
    ("plot", "{nc} --kind heatmap -o {out}/p.png", ["heatmap needs a sweep file"]),
    ("plot", "{nc} --kind swing --outcome nonsense -o {out}/p.png", ["nonsense"]),
    # report
    ("report", "{nc}", ["Missing option", "-o"]),
    ("report", "-o {out}/r.html", ["Missing argument", "RESULTS"]),
    ("report", "{missing}.nc -o {out}/r.html", ["no such file"]),
    ("report", "{nc} -o {out}/r.txt", ["expected a .html file name"]),
    ("report", "{nc} -o {out}/r.html --format pdf", ["expected a .pdf file name"]),
    ("report", "{nc} -o {out}/r.html --format docx", ["--format"]),
    ("report", "{nc} -o {missing}/r.html", ["does not exist"]),
    # sensitivity
    ("sensitivity", "{nc} --points 0", ["--points"]),
    ("sensitivity", "{nc} --outcome nonsense", ["nonsense"]),
    ("sensitivity", "{nc} --format xml", ["--format"]),
    ("sensitivity", "{missing}.nc", ["no such file"]),
    # sweep
    ("sweep", "{scn} -o {out}/s.nc", ["Missing option", "--vary"]),
    ("sweep", "{scn} --vary demand.base -o {out}/s.nc", ["--vary"]),
    ("sweep", "{scn} --vary nope=1,2 -o {out}/s.nc", ["nope"]),
    ("sweep", "{scn} --vary demand.base=abc,def -o {out}/s.nc", ["--vary demand.base=abc: demand.base"]),
    ("sweep", "{scn} --vary 'demand.base=100,[1' -o {out}/s.nc", ["expected numbers, words or TOML values"]),
    ("sweep", "{scn} --vary demand.base=100,,200 -o {out}/s.nc", ["an empty value"]),
    ("sweep", "{scn} --vary policy.issue=proportional,priority -o {out}/s.nc",
     ["--vary policy.issue=priority: policy.order", "needs order"]),
    ("sweep", "{scn} --vary demand.base=100,200 -o {out}/s.nc --runs 0", ["--runs"]),
    ("sweep", "{scn} --vary demand.base=100,200", ["Missing option", "-o"]),
    ("sweep", "{scn} --vary demand.base=100,200 -o {missing}/s.nc", ["does not exist"]),
    ("sweep", "{scn} --vary demand.base=100,200 -o {out}/s.nc --until 'p_any_shortage <= 0.5'",
     ["expected a precision rule"]),
    ("sweep", "{scn} --vary demand.base=100,200 -o {out}/s.nc --max-runs 10", ["--max-runs goes with --until"]),
    # solve
    ("solve", "{scn} --range 1,2 --target 'p_any_shortage <= 0.1'", ["Missing option", "--lever"]),
    ("solve", "{scn} --lever demand.base --range 2000,1000 --target 'p_any_shortage <= 0.1'", ["LO must be below HI"]),
    ("solve", "{scn} --lever demand.base --range 1000 --target 'p_any_shortage <= 0.1'", ["expected LO,HI"]),
    ("solve", "{scn} --lever demand.base --range 1.5,2000 --target 'p_any_shortage <= 0.1'", ["integer --range"]),
    ("solve", "{scn} --lever demand.bsae --range 1,2 --target 'p_any_shortage <= 0.1'", ["demand.bsae"]),
    ("solve", "{scn} --lever source.ghost.annual --range 1,2 --target 'p_any_shortage <= 0.1'", ["no source named"]),
    ("solve", "{scn} --lever source.old.initial --range 1,2 --target 'p_any_shortage <= 0.1'",
     ["is a distribution (uniform); add --scale"]),
    ("solve", "{scn} --lever demand.base --range 500,2000 --target p_any_shortage", ["expected a comparison"]),
    ("solve", "{scn} --lever demand.base --range 1,2 --target 'p_any_shortage <= 0.1' -q -o {out}/s.nc",
     ["met at both ends"]),
    ("solve", "{scn} --lever demand.base --range 500,2000 --target 'p_any_shortage <= 0.1' --max-runs 100",
     ["--max-runs goes with --until"]),
    ("solve", "{scn} --lever demand.base --range 500,2000 --target 'p_any_shortage <= 0.1' --until 'se(fill_rate)<=0'",
     ["can never be met"]),
    ("sweep", "{scn} --vary 'demand.base=" + "[" * 300 + "' -o {out}/s.nc", ["--vary", "characters"]),
    # validate, scenarios
    ("validate", "{missing}.toml", ["no such scenario file"]),
    ("validate", "{scn} --set demand.daily_cv=-1", ["demand.daily_cv"]),
    ("validate", "{scn} --set demand.base=1e14", ["demand.base", "rounds/day"]),
    ("scenarios", "extra", ["unexpected extra argument"]),
    ("scenarios", "--cite no-such-scenario", ["no bundled scenario named 'no-such-scenario'"]),
    ("scenarios", "--cite", ["--cite", "requires an argument"]),
    ("nosuchcommand", "", ["No such command"]),
]

SCENARIO = """\
[scenario]
name = "opts"
start_date = "2024-01-01"
horizon_days = 30

[run]
runs = 50
seed = 1

[demand]
base = 1000
daily_cv = 0.2

[[source]]
name = "old"
kind = "stockpile"
initial = { dist = "uniform", low = 10000, high = 40000 }
dud_rate = 0.1

[[source]]
name = "fab"
kind = "production"
annual = 200000
"""


def fill(args: str, paths: dict) -> list[str]:
    import shlex

    return shlex.split(args.format(**{k: str(v) for k, v in paths.items()}))


def invoke(args: list[str]):
    return CliRunner().invoke(main, args, catch_exceptions=False)


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("opts")
    scn = d / "opts.toml"
    scn.write_text(SCENARIO)
    nc = d / "good.nc"
    r = invoke(["run", str(scn), "-o", str(nc), "-q"])
    assert r.exit_code == 0, r.output
    return {"scn": scn, "nc": nc, "missing": d / "missing"}


def test_every_command_has_cases():
    """A command added to the CLI without bad-option cases here fails this test, and so does a case for a
    command the CLI no longer has (``nosuchcommand`` is the one case meant to name none)."""
    covered = {c for c, _, _ in CASES}
    assert set(main.commands) <= covered, set(main.commands) - covered
    assert covered - {"nosuchcommand"} <= set(main.commands), covered - {"nosuchcommand"} - set(main.commands)


@pytest.mark.parametrize("command, args, needles", CASES, ids=[f"{c} {a}" for c, a, _ in CASES])
def test_bad_option_refused(paths, tmp_path, command, args, needles):
    out = tmp_path / "out"
    out.mkdir()
    values = {**paths, "out": out}
    assert set(values) == PLACEHOLDERS
    argv = [command] + fill(args, values)
    before = sorted(p.name for p in paths["nc"].parent.iterdir())
    assert_refused(invoke(argv), *needles)
    assert leftovers(out) == []  # nothing written, no temporary file
    assert sorted(p.name for p in paths["nc"].parent.iterdir()) == before


def test_shard_beyond_shards_from_slurm_environment(paths, tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "5")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
    assert_refused(invoke(["run", str(paths["scn"]), "-o", str(tmp_path / "r.nc")]), "SLURM_ARRAY_TASK")
    assert leftovers(tmp_path) == []


PLACEHOLDERS = {"scn", "nc", "out", "missing"}  # what ``paths`` and ``test_bad_option_refused`` fill in


def placeholders(args: str) -> set[str]:
    """The {..} fields of a case's arguments ({{ and }} are literal braces, not fields)."""
    return {field for _, field, _, _ in string.Formatter().parse(args) if field is not None}


def test_placeholders_are_found():
    """The parser this check relies on: a misspelt field is seen, escaped braces are not fields."""
    assert placeholders("{scn} --set 'x={{ a = 1 }}' -o {outt}/r.nc") == {"scn", "outt"}
    assert placeholders("--runs 5") == set()


def test_cases_reference_only_known_placeholders():
    """A case with a misspelt placeholder ({sn}, {output}) fails here, naming the case, rather than as a
    KeyError (or a path taken literally) inside the parametrized test; every placeholder is used."""
    used = set()
    for command, args, _ in CASES:
        fields = placeholders(args)
        assert fields <= PLACEHOLDERS, f"{command} {args!r}: unknown placeholders {sorted(fields - PLACEHOLDERS)}"
        fill(args, {k: f"<{k}>" for k in PLACEHOLDERS})  # and fills without error
        used |= fields
    assert used == PLACEHOLDERS, PLACEHOLDERS - used
