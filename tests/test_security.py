"""Security of what artysim writes: generated job scripts never execute anything that came from an
argument (items 1-2 of the security issue), and no writer follows a link planted where it writes (3).

The scripts are run for real by bash, with a fake ``sbatch`` on PATH and a fake Python interpreter
(both record their arguments, NUL-separated), so each test checks the exact argv every command of
``submit.sh``, ``array.sbatch`` and ``merge.sbatch`` receives; one test runs the scripts with the real
interpreter end to end. ``#SBATCH`` lines are read back by a model of sbatch's own directive parser
(``_get_argument`` of src/sbatch/opt.c) and of its file name patterns (``%A``, ``%a``, ``%j``, ``%%``).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import assert_refused, leftovers

from artysim.cli import main
from artysim.core import cache
from artysim.results import atomic
from artysim.results import shards as shards_mod

REPO = Path(__file__).resolve().parent.parent
NK = REPO / "configs" / "nk-deal-2023.toml"
NAME = "nk-deal-2023"
SLURM_VARS = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX",
              "SLURM_ARRAY_JOB_ID", "SLURM_JOB_ID")


@pytest.fixture(autouse=True)
def _no_slurm_env(monkeypatch):
    for v in SLURM_VARS:
        monkeypatch.delenv(v, raising=False)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def ok(result):
    assert result.exit_code == 0, (result.output, result.stderr)
    return result


def no_pwned(*roots: Path) -> None:
    """No file named PWNED anywhere (the payloads ``touch PWNED``, run in any folder the scripts use)."""
    for root in roots:
        hits = [p for p in root.rglob("*") if p.name == "PWNED"]
        assert not hits, hits


# -- a model of sbatch's directive parser and file name patterns ---------------------------------------

def _sbatch_argument(line: str, i: int) -> tuple[str | None, int]:
    """One argument of an ``#SBATCH`` line from position i, as sbatch's ``_get_argument`` reads it:
    a backslash escapes the next character, single or double quotes group, an unquoted ``#`` ends the line."""
    while i < len(line) and line[i].isspace():
        i += 1
    if i >= len(line):
        return None, i
    out, quote, escape = [], "", False
    while i < len(line) and (quote or not line[i].isspace()) and line[i] != "\n":
        c = line[i]
        if escape:
            escape = False
        elif c == "\\":
            escape, i = True, i + 1
            continue
        elif quote:
            if c == quote:
                quote, i = "", i + 1
                continue
        elif c in "\"'":
            quote, i = c, i + 1
            continue
        elif c == "#":
            break
        out.append(c)
        i += 1
    assert not quote, f"sbatch would stop: unmatched quote in {line!r}"
    return "".join(out), i


def sbatch_directives(script: str) -> list[str]:
    """The options sbatch reads from a script: ``#SBATCH`` lines before the first command line."""
    opts = []
    for line in script.split("\n"):
        if line.startswith("#!") or not line.strip():
            continue
        if not line.startswith("#"):
            break  # sbatch reads no directive after the first command
        if line.startswith("#SBATCH"):
            i = len("#SBATCH")
            while True:
                arg, i = _sbatch_argument(line, i)
                if arg is None:
                    break
                opts.append(arg)
                if i < len(line) and line[i] == "#":
                    break
    return opts


def slurm_filename(pattern: str, job: str = "77", task: str = "1") -> str:
    """A ``--output`` file name pattern expanded as SLURM does (the patterns artysim uses, and ``%%``)."""
    assert "\\" not in pattern  # a backslash would turn all patterns off
    return re.sub(r"%(%|A|a|j)", lambda m: {"%": "%", "A": job, "a": task, "j": job}[m.group(1)], pattern)


# -- fake sbatch and a fake interpreter ----------------------------------------------------------------

@pytest.fixture
def fakes(tmp_path, monkeypatch):
    """bin/sbatch and bin/python that record their argv (one file per call) under calls/."""
    b = tmp_path / "bin"
    calls = tmp_path / "calls"
    b.mkdir()
    calls.mkdir()
    for name, reply in (("sbatch", 'echo "42$n;cluster"'), ("python", "")):
        f = b / name
        f.write_text("#!/bin/bash\n"
                     f'n=$(ls {calls} | wc -l)\n'
                     f'printf "%s\\0" {name} "$@" > {calls}/$(printf %03d "$n")\n'
                     f"{reply}\n")
        f.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(b / "python"))  # what the scripts are written to call
    return b, calls


def recorded(calls: Path) -> list[list[str]]:
    return [p.read_bytes().decode().split("\0")[:-1] for p in sorted(calls.iterdir())]


def bash(script: Path, bindir: Path, cwd: Path, **env) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k not in SLURM_VARS}
    e |= {"PATH": f"{bindir}{os.pathsep}{e.get('PATH', '')}", **env}
    return subprocess.run(["bash", str(script)], cwd=cwd, env=e, capture_output=True, text=True, timeout=120)


#: out-dir names: every shell metacharacter, quoting, SLURM's % patterns and sbatch's # and quotes
NASTY_DIRS = {
    "space": "job dir",
    "double-quote": 'job"q',
    "single-quote": "job'q",
    "command-substitution": "job$(touch PWNED)",
    "backticks": "job`touch PWNED`",
    "semicolons": "job;touch PWNED;",
    "variables": "job$HOME${IFS}$1",
    "percent-patterns": "job%j%A%a%%x",
    "hash": "job #x",
    "glob": "job*?[ab]",
    "operators": "job&&touch PWNED||x|y>z<w&",
    "unicode": "jöb-日本-🚀",
    "leading-dash": "-job",
    "braces-tilde": "job{a,b}~x",
    "exclamation": "job!!x!-1",
    "everything": "j o\"b'$(touch PWNED)`touch PWNED`;#%j{a,b}*",
}
#: --set values that reach the scripts (bare words are strings, see scenario.apply_overrides)
NASTY_SETS = [
    "scenario.description=a $(touch PWNED) `touch PWNED` \"q\" 'q' ; b & c | d",
    "scenario.description=line one\nline two; touch PWNED",
    "scenario.description='$(touch PWNED)' ",
    'scenario.description="`touch PWNED` \\\" $HOME"',
]


@pytest.mark.parametrize("case", sorted(NASTY_DIRS))
def test_out_dir_is_never_executed(tmp_path, fakes, case):
    """submit.sh, array.sbatch and merge.sbatch run by bash pass the out-dir through as data, exactly."""
    bindir, calls = fakes
    d = tmp_path / "jobs" / NASTY_DIRS[case]
    (tmp_path / "jobs").mkdir()
    ok(invoke("slurm", NK, "--runs", 100, "--shards", 2, "--out-dir", d, "--set", NASTY_SETS[0]))
    for script in ("array.sbatch", "merge.sbatch", "submit.sh"):
        subprocess.run(["bash", "-n", str(d / script)], check=True)

    p = bash(d / "submit.sh", bindir, tmp_path)
    assert p.returncode == 0, p.stderr
    merged = d / f"{NAME}.nc"
    assert p.stdout.splitlines()[-1] == f"result: {merged}"
    p = bash(d / "array.sbatch", bindir, tmp_path, SLURM_ARRAY_TASK_ID="1", SLURM_ARRAY_TASK_COUNT="2")
    assert p.returncode == 0, p.stderr
    p = bash(d / "merge.sbatch", bindir, tmp_path)
    assert p.returncode == 0, p.stderr

    warm, sb1, sb2, task, merge = recorded(calls)
    sets = ["--set", NASTY_SETS[0]]
    assert warm == ["python", "-m", "artysim.cli", "run", "scenario.toml", "--runs", "1", "--shards", "1", "-o",
                    ".warm-up.nc", "--force", "--quiet", *sets]
    assert sb1 == ["sbatch", "--parsable", "array.sbatch"]
    assert sb2 == ["sbatch", "--parsable", "--dependency=afterok:421", "merge.sbatch"]
    shard = d / "shards" / shards_mod.shard_name(NAME, 1, 2)
    assert task == ["python", "-m", "artysim.cli", "run", str(d / "scenario.toml"), "--runs", "100", "--seed",
                    task[8], "--shard", "1", "--shards", "2", "-o", str(shard), "--skip-valid", "--force", *sets]
    assert merge == ["python", "-m", "artysim.cli", "merge", "--force", "-o", str(merged), str(d / "shards")]
    no_pwned(tmp_path)

    # the log paths sbatch reads from the headers are the job's logs folder, whatever its name
    for script, pattern, want in (("array.sbatch", "/%A_%a.out", "77_1.out"), ("merge.sbatch", "/merge_%j.out",
                                                                                "merge_77.out")):
        opts = sbatch_directives((d / script).read_text())
        outs = [o for o in opts if o.startswith("--output=")]
        assert len(outs) == 1 and outs[0].endswith(pattern), opts
        assert slurm_filename(outs[0].removeprefix("--output=")) == str(d / "logs" / want)
        assert all(o.startswith("--") for o in opts), opts  # nothing but options: no stray word


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
@pytest.mark.parametrize("case", ["everything", "unicode", "space"])
def test_scripts_pass_shellcheck(tmp_path, case):
    """shellcheck finds nothing but SC2016 (single quotes that do not expand: what they are for)."""
    d = tmp_path / NASTY_DIRS[case]
    ok(invoke("slurm", NK, "--runs", 100, "--shards", 3, "--out-dir", d, "--set", NASTY_SETS[0]))
    for script in ("array.sbatch", "merge.sbatch", "submit.sh"):
        p = subprocess.run(["shellcheck", "-s", "bash", "-e", "SC2016", str(d / script)], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stdout


@pytest.mark.parametrize("value", NASTY_SETS, ids=["metachars", "newline", "toml-literal", "toml-basic"])
def test_set_values_are_never_executed(tmp_path, fakes, value):
    bindir, calls = fakes
    d = tmp_path / "job"
    ok(invoke("slurm", NK, "--runs", 100, "--shards", 2, "--out-dir", d, "--set", value))
    for script, env in (("submit.sh", {}), ("array.sbatch", {"SLURM_ARRAY_TASK_ID": "0",
                                                             "SLURM_ARRAY_TASK_COUNT": "2"})):
        p = bash(d / script, bindir, tmp_path, **env)
        assert p.returncode == 0, p.stderr
    warm, _, _, task = recorded(calls)
    assert warm[-2:] == ["--set", value] and task[-2:] == ["--set", value]
    no_pwned(tmp_path)


def test_nasty_out_dir_end_to_end(tmp_path):
    """The real interpreter: a task of array.sbatch writes its shard and merge.sbatch the merged file
    into a folder whose name holds every kind of shell and SLURM metacharacter."""
    d = tmp_path / NASTY_DIRS["everything"]
    ok(invoke("slurm", NK, "--runs", 60, "--shards", 2, "--out-dir", d))
    env = {"NUMBA_CACHE_DIR": str(cache.CACHE_DIR.parent), "PATH": os.environ.get("PATH", "")}
    for k in (0, 1):
        p = bash(d / "array.sbatch", Path("/nonexistent"), tmp_path, SLURM_ARRAY_TASK_ID=str(k),
                 SLURM_ARRAY_TASK_COUNT="2", **env)
        assert p.returncode == 0, p.stderr
    assert leftovers(d / "shards") == [shards_mod.shard_name(NAME, k, 2) for k in (0, 1)]
    p = bash(d / "merge.sbatch", Path("/nonexistent"), tmp_path, **env)
    assert p.returncode == 0, p.stderr
    assert (d / f"{NAME}.nc").is_file()
    no_pwned(tmp_path)


@pytest.mark.parametrize("name", ["new\nline", "cr\rx", "tab\tx", "esc\x1b[31mx", "del\x7fx", "back\\slash",
                                  "nl-then-cmd\ntouch PWNED", "c1\x85x", "ls\u2028x"])
def test_out_dir_that_no_script_can_hold_is_refused(tmp_path, name):
    d = tmp_path / name
    line = assert_refused(invoke("slurm", NK, "--runs", 100, "--shards", 2, "--out-dir", d), "--out-dir")
    assert "\n" not in line
    assert leftovers(tmp_path) == []


# -- SLURM options: what SLURM accepts, nothing else ---------------------------------------------------

BAD_OPTIONS = {
    "--partition": ["debug\ntouch PWNED", "debug touch", "debug;id", "$(id)", "`id`", "", "a,,b", ",a", "a,",
                    "déb", "debug#x", "a/b", "a\rb", "x y"],
    "--account": ["proj\n#SBATCH --x", "proj 42", "a,b", "$(id)", "", "p;q", "p#q", "pröj"],
    "--time": ["1:00:00\n#SBATCH --x", "1h", "", "01:00:00 ", "-1", "1-", "1-1:1:1:1", "1:1:1:1", "abc",
               "1:123", "1-123", "$(id)", "UNLIMITED\n"],
    "--mem": ["4G\ntouch PWNED", "4GB", "4.5G", "", "-1", "G", "4 G", "4P", "4G;id", "0x10"],
}
GOOD_OPTIONS = {
    "--partition": ["debug", "gpu-a100", "a.b_c", "debug,long", "p1,p2,p3"],
    "--account": ["proj42", "my.acct_1-x"],
    "--time": ["30", "30:00", "01:00:00", "100:00:00", "2-12", "2-12:30", "2-12:30:15", "0"],
    "--mem": ["4G", "4096", "512M", "1T", "100k", "0"],
}


@pytest.mark.parametrize("opt, value", [(o, v) for o, vs in BAD_OPTIONS.items() for v in vs])
def test_bad_slurm_option_refused_nothing_written(tmp_path, opt, value):
    d = tmp_path / "job"
    line = assert_refused(invoke("slurm", NK, "--runs", 100, "--shards", 2, "--out-dir", d, opt, value), opt)
    assert "\n" not in line and not d.exists()


@pytest.mark.parametrize("opt, value", [(o, v) for o, vs in GOOD_OPTIONS.items() for v in vs])
def test_good_slurm_option_written_as_given(tmp_path, opt, value):
    d = tmp_path / "job"
    ok(invoke("slurm", NK, "--runs", 100, "--shards", 2, "--out-dir", d, opt, value))
    for script in ("array.sbatch", "merge.sbatch"):
        opts = sbatch_directives((d / script).read_text())
        assert f"{opt}={value}" in opts
        assert len(opts) == (7 if script == "array.sbatch" else 6) + (opt in ("--partition", "--account"))


def test_extra_sbatch_options_are_checked(tmp_path):
    from artysim.errors import ArtysimError
    from artysim.jobs import slurm

    for bad in ["--qos=normal\ntouch PWNED", "touch PWNED", "--x=\r"]:
        with pytest.raises(ArtysimError, match="extra #SBATCH option"):
            slurm.check_options(slurm.SlurmOptions(extra=[bad]))
    slurm.check_options(slurm.SlurmOptions(extra=["--qos=normal"]))


@pytest.mark.parametrize("path", ["/a b/c", "/a%jb/%%", "/a#b", "/q'\"x", "/é/日本", "/plain/path"])
def test_directive_value_round_trips_through_sbatch(path):
    from artysim.jobs.slurm import directive_value

    opts = sbatch_directives(f"#!/bin/bash\n#SBATCH --output={directive_value(path)}/%A_%a.out\necho\n")
    assert len(opts) == 1
    assert slurm_filename(opts[0].removeprefix("--output=")) == f"{path}/77_1.out"


# -- 3: no writer follows a planted link -----------------------------------------------------------------

@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Two shards of a small job and the whole run (for merge and plot)."""
    d = tmp_path_factory.mktemp("inputs")
    for k in (0, 1):
        ok(invoke("run", NK, "--runs", 60, "--shard", k, "--shards", 2, "-o",
                  d / shards_mod.shard_name(NAME, k, 2), "-q"))
    ok(invoke("run", NK, "--runs", 60, "-o", d / "whole.nc", "-q"))
    return d


def writer_args(writer: str, inputs: Path, target: Path) -> list:
    return {
        "run": ["run", NK, "--runs", 40, "-o", target, "-q"],
        "merge": ["merge", "-o", target, *(inputs / shards_mod.shard_name(NAME, k, 2) for k in (0, 1))],
        "sweep": ["sweep", NK, "--vary", "demand.base=15000,20000", "--runs", 20, "-o", target, "-q"],
        "plot": ["plot", inputs / "whole.nc", "--kind", "fan", "-o", target],
    }[writer]


WRITERS = ["run", "merge", "sweep", "plot"]


def _target(tmp_path: Path, writer: str) -> Path:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return out / ("pic.png" if writer == "plot" else "r.nc")


@pytest.fixture
def spy(monkeypatch):
    """Every artysim temporary folder made: (path, mode) at creation."""
    made: list[tuple[Path, int]] = []
    real = atomic.TempDir.__init__

    def init(self, *a, **kw):
        real(self, *a, **kw)
        made.append((self.dir, stat.S_IMODE(self.dir.lstat().st_mode)))

    monkeypatch.setattr(atomic.TempDir, "__init__", init)
    return made


def _plant(target: Path, victim: Path) -> list[Path]:
    """Links where the old writers put their temporary files (``.NAME.part-PID``, the next pids), and
    in the sweep's old folder pattern, all pointing at the victim."""
    links = []
    pid = os.getpid()
    for p in range(pid - 2, pid + 40):
        for name in (f".{target.name}.part-{p}", f".{target.name}.sweep-{p}"):
            link = target.parent / name
            link.symlink_to(victim)
            links.append(link)
    return links


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("at_target", ["link-to-victim", "dangling-link", "nothing"])
def test_planted_links_are_never_followed(tmp_path, inputs, spy, writer, at_target):
    target = _target(tmp_path, writer)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    links = _plant(target, victim)
    if at_target == "link-to-victim":
        target.symlink_to(victim)
    elif at_target == "dangling-link":
        target.symlink_to(tmp_path / "nowhere")
    if at_target != "nothing":  # without --force a link at the target is an existing file
        assert_refused(invoke(*writer_args(writer, inputs, target)), str(target), "--force")
        assert target.is_symlink()
        assert not spy
    ok(invoke(*writer_args(writer, inputs, target), "--force"))
    assert victim.read_text() == "precious" and victim.stat().st_nlink == 1
    assert target.is_file() and not target.is_symlink()
    assert all(p.is_symlink() and p.resolve() == victim for p in links)
    assert spy and all(mode == 0o700 for _, mode in spy), spy
    assert all(not d.exists() for d, _ in spy)
    assert not (tmp_path / "nowhere").exists()
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(atomic.PREFIX)] == []


FAIL_AT = {  # something that breaks each writer after its temporary folder exists
    "run": ("artysim.results.writer.ResultsWriter.write_stats", RuntimeError("NetCDF: HDF error")),
    "merge": ("artysim.results.writer.ResultsWriter.write_stats", RuntimeError("NetCDF: HDF error")),
    "sweep": ("artysim.jobs.sweep._copy_var", OSError(5, "Input/output error")),
    "plot": ("matplotlib.figure.Figure.savefig", OSError(28, "No space left on device")),
}


@pytest.mark.parametrize("writer", WRITERS)
def test_temporary_folder_gone_after_a_failure(tmp_path, inputs, spy, monkeypatch, writer):
    target = _target(tmp_path, writer)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target.symlink_to(victim)
    where, err = FAIL_AT[writer]

    def fail(*a, **k):
        raise err

    monkeypatch.setattr(where, fail)
    r = CliRunner().invoke(main, [str(a) for a in writer_args(writer, inputs, target)] + ["--force"])
    assert r.exit_code != 0
    assert victim.read_text() == "precious" and target.is_symlink()
    assert spy and all(mode == 0o700 and not d.exists() for d, mode in spy), spy
    assert leftovers(target.parent) == [target.name]
