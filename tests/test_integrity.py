"""Integrity of results under misuse and signals (items 4-8 of the security issue).

4. merge never writes onto one of its inputs (by file identity); 5. ``run --skip-valid`` replaces
nothing but its own shard without ``--force``; 6. SIGINT/SIGTERM at any moment of every writer leave
nothing behind, and the leftovers of a SIGKILL are removed by the next writer (nothing that is not
artysim's); 7. after a signal the message is true (no partial results / the file had been written)
and the exit status is 130 or 143; 8. inside a SLURM array task a run must say it is a shard.

Signal tests run real processes (``tests/pausecli.py``: the CLI with one function made to pause, so
that a real signal lands at an exact moment) and send real signals.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr
from click.testing import CliRunner
from support import assert_refused, leftovers

from artysim.cli import main
from artysim.core import cache
from artysim.results import atomic
from artysim.results import shards as shards_mod

REPO = Path(__file__).resolve().parent.parent
NK = REPO / "configs" / "nk-deal-2023.toml"
NAME = "nk-deal-2023"
N = 60
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


def stamp(p: Path) -> tuple[bytes, int]:
    return p.read_bytes(), p.stat().st_mtime_ns


def temp_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(atomic.PREFIX))


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """Shards 0..2 of a 3-shard job, the whole run, and a sweep file's inputs."""
    d = tmp_path_factory.mktemp("job")
    for k in range(3):
        ok(invoke("run", NK, "--runs", N, "--shard", k, "--shards", 3, "-o", d / shards_mod.shard_name(NAME, k, 3),
                  "-q"))
    ok(invoke("run", NK, "--runs", N, "-o", d / "whole.nc", "-q"))
    return d


def shard(d: Path, k: int) -> Path:
    return d / shards_mod.shard_name(NAME, k, 3)


@pytest.fixture
def m(tmp_path, job):
    """A fresh copy of the job's shards in tmp/m."""
    d = tmp_path / "m"
    d.mkdir()
    for k in range(3):
        shutil.copy2(shard(job, k), shard(d, k))
    return d


# -- 4: merge never writes onto one of its inputs -----------------------------------------------------

def _spellings(m: Path, tmp_path: Path) -> dict[str, tuple[str, list[str]]]:
    """(output, inputs) pairs where the output is one of the inputs, spelled in many ways."""
    s0 = shard(m, 0)
    hard = tmp_path / "hard.nc"
    os.link(s0, hard)
    soft = tmp_path / "soft.nc"
    soft.symlink_to(s0)
    rest = [str(shard(m, 1)), str(shard(m, 2))]
    return {
        "same-path": (str(s0), [str(s0), *rest]),
        "dot-segments": (f"{m}/./../m/{s0.name}", [str(s0), *rest]),
        "double-slash": (f"{m}//{s0.name}", [str(s0), *rest]),
        "hard-link": (str(hard), [str(s0), *rest]),
        "output-is-a-link-to-an-input": (str(soft), [str(s0), *rest]),
        "input-is-a-link-to-the-output": (str(s0), [str(soft), *rest]),
        "in-a-folder-input": (str(s0), [str(m)]),
        "in-a-glob": (str(s0), [f"{m}/*.nc"]),
        "last-input": (str(shard(m, 2)), [str(s0), str(shard(m, 1)), str(shard(m, 2))]),
    }


CASES_4 = ["same-path", "dot-segments", "double-slash", "hard-link", "output-is-a-link-to-an-input",
           "input-is-a-link-to-the-output", "in-a-folder-input", "in-a-glob", "last-input"]


@pytest.mark.parametrize("flags", [["--force", "--allow-partial"], ["--force"], ["--allow-partial"], []],
                         ids=["force+partial", "force", "partial", "plain"])
@pytest.mark.parametrize("case", CASES_4)
def test_merge_refuses_an_output_that_is_an_input(tmp_path, m, case, flags):
    out, ins = _spellings(m, tmp_path)[case]
    before = {p: stamp(p) for p in m.iterdir()}
    r = invoke("merge", *flags, "-o", out, *ins)
    if "--force" in flags:
        assert_refused(r, "one of the shards to merge")
    else:  # without --force an existing output is refused anyway; either way one line, exit 2
        assert_refused(r)
    assert {p: stamp(p) for p in m.iterdir()} == before
    assert temp_folders(m) == [] and temp_folders(tmp_path) == []


def test_merge_into_another_folder_still_works(tmp_path, m):
    out = tmp_path / shards_mod.shard_name(NAME, 0, 3)  # the same name as an input, another file
    ok(invoke("merge", "-o", out, m))
    assert out.is_file()


# -- 5: --skip-valid replaces nothing but its own shard without --force -------------------------------

def _other(kind: str, out: Path, job: Path) -> None:
    if kind == "foreign-netcdf":
        import netCDF4

        with netCDF4.Dataset(out, "w") as nc:
            nc.title = "somebody else's data"
    elif kind == "other-design":
        ok(invoke("run", NK, "--runs", 8, "--shard", 1, "--shards", 3, "-o", out, "-q", "--design", "sobol"))
    elif kind == "empty":
        out.write_bytes(b"")
    elif kind == "whole-run":
        shutil.copy2(job / "whole.nc", out)
    elif kind == "link-to-another-file":
        victim = out.parent / "victim.nc"
        shutil.copy2(job / "whole.nc", victim)
        out.symlink_to(victim)


@pytest.mark.parametrize("kind", ["foreign-netcdf", "other-design", "empty", "whole-run", "link-to-another-file"])
def test_skip_valid_refuses_anything_but_its_own_shard(tmp_path, job, kind):
    out = tmp_path / "s.nc"
    _other(kind, out, job)
    keep = {p: stamp(p) for p in tmp_path.iterdir() if p.is_file()}
    args = ["run", NK, "--runs", N, "--shard", 1, "--shards", 3, "-o", out, "-q", "--skip-valid"]
    args[3] = 8 if kind == "other-design" else N
    assert_refused(invoke(*args), str(out), "--force")
    assert {p: stamp(p) for p in tmp_path.iterdir() if p.is_file()} == keep
    ok(invoke(*args, "--force"))
    assert out.is_file() and not out.is_symlink()
    if kind == "link-to-another-file":
        assert stamp(tmp_path / "victim.nc") == keep[tmp_path / "victim.nc"]
    r = ok(invoke(*args))  # now its own valid shard: nothing to do
    assert "nothing to do" in r.stderr


def test_array_task_recomputes_its_own_damaged_shard(tmp_path):
    """array.sbatch passes --skip-valid --force: a half-written file at its own shard name is replaced."""
    d = tmp_path / "job"
    ok(invoke("slurm", NK, "--runs", N, "--shards", 3, "--out-dir", d))
    own = d / "shards" / shards_mod.shard_name(NAME, 1, 3)
    own.write_bytes(b"CDF\x01 truncated")
    env = {k: v for k, v in os.environ.items() if k not in SLURM_VARS}
    env |= {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3",
            "NUMBA_CACHE_DIR": str(cache.CACHE_DIR.parent)}
    p = subprocess.run(["bash", str(d / "array.sbatch")], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    with xr.open_dataset(own, decode_times=False) as ds:
        assert (ds.attrs["shard"], ds.attrs["shards"]) == (1, 3)


# -- 8: inside a SLURM array task a run must say it is a shard ------------------------------------------

@pytest.mark.parametrize("quiet", [["-q"], []], ids=["quiet", "verbose"])
@pytest.mark.parametrize("name, extra, outcome", [
    ("r.nc", [], "refused"),
    ("results.nc", ["--skip-valid"], "refused"),
    (shards_mod.shard_name("r", 2, 3), [], "refused"),  # says another shard than the task's
    (shards_mod.shard_name("r", 1, 4), [], "refused"),
    ("r.shard-1-of-3.nc.bak", [], "refused"),
    (shards_mod.shard_name("r", 1, 3), [], (1, 3)),
    ("r.nc", ["--shard", "1", "--shards", "3"], (1, 3)),
    ("r.nc", ["--shard", "0", "--shards", "2"], (0, 2)),
    ("r.nc", ["--shards", "1"], (0, 1)),
])
def test_run_in_an_array_task(tmp_path, monkeypatch, quiet, name, extra, outcome):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
    out = tmp_path / name
    r = invoke("run", NK, "--runs", N, "-o", out, *quiet, *extra)
    if outcome == "refused":
        assert_refused(r, "SLURM_ARRAY_TASK_ID", "--shard")
        assert leftovers(tmp_path) == []
        return
    ok(r)
    with xr.open_dataset(out, decode_times=False) as ds:
        assert (ds.attrs["shard"], ds.attrs["shards"]) == outcome


def test_run_in_an_array_task_default_output_is_a_shard_name(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
    monkeypatch.chdir(tmp_path)
    ok(invoke("run", NK, "--runs", N, "-q"))
    assert leftovers(tmp_path / "results") == [shards_mod.shard_name(NAME, 2, 3)]


# -- 6: SIGKILL leftovers removed by the next writer, nothing else ----------------------------------------

def _owner(folder: Path, **info) -> Path:
    folder.mkdir()
    base = {"what": "artysim temporary folder", "purpose": "test", "pid": 1, "host": socket.gethostname(),
            "created": time.time()}
    (folder / "owner").write_text(json.dumps(base | info))
    (folder / "part.nc").write_bytes(b"partial")
    return folder


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def plant_stale_and_foreign(out: Path) -> tuple[set[str], set[str]]:
    """Folders a writer in ``out`` must remove (stale, artysim's) and must keep (anything else)."""
    keep_target = out.parent / "elsewhere"
    keep_target.mkdir(exist_ok=True)
    _owner(keep_target / "inner", pid=_dead_pid())
    stale = {
        _owner(out / ".artysim-dead.tmp", pid=_dead_pid()).name,
        _owner(out / ".artysim-oldhost.tmp", host="another-node", created=time.time() - 8 * 86400).name,
    }
    keep = {
        _owner(out / ".artysim-live.tmp", pid=os.getppid()).name,  # a live process of this host
        _owner(out / ".artysim-newhost.tmp", host="another-node", created=time.time() - 3600).name,
        _owner(out / ".artysim-notours.tmp", what="something else", pid=_dead_pid()).name,
        _owner(out / ".other-dead.tmp", pid=_dead_pid()).name,  # another name pattern
        _owner(out / ".artysim-dead.tmp.bak", pid=_dead_pid()).name,
    }
    noowner = out / ".artysim-noowner.tmp"  # being made right now, or not ours
    noowner.mkdir()
    keep.add(noowner.name)
    linked = out / ".artysim-link.tmp"  # a link to a stale-looking folder: neither followed nor removed
    linked.symlink_to(keep_target / "inner")
    keep.add(linked.name)
    f = out / ".artysim-file.tmp"
    f.write_text("{}")
    keep.add(f.name)
    ownerlink = out / ".artysim-ownerlink.tmp"
    ownerlink.mkdir()
    (ownerlink / "owner").symlink_to(keep_target / "inner" / "owner")
    keep.add(ownerlink.name)
    return stale, keep


@pytest.fixture(scope="module")
def killed(tmp_path_factory, job):
    """The leftover of a real run killed by SIGKILL while writing."""
    d = tmp_path_factory.mktemp("killed")
    proc, mark = spawn(d, ["run", NK, "--runs", N, "-o", d / "r.nc", "-q"],
                       "artysim.results.writer:ResultsWriter.write_daily:before:20")
    wait_mark(proc, mark)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    left = [p for p in d.iterdir() if p.name.startswith(atomic.PREFIX)]
    assert len(left) == 1 and (left[0] / "owner").is_file()
    return left[0]


WRITERS = {
    "run": lambda job, out: ["run", NK, "--runs", 20, "-o", out / "r.nc", "-q"],
    "merge": lambda job, out: ["merge", "-o", out / "r.nc", *(shard(job, k) for k in range(3))],
    "sweep": lambda job, out: ["sweep", NK, "--vary", "demand.base=15000,20000", "--runs", 10, "-o", out / "r.nc",
                               "-q"],
    "plot": lambda job, out: ["plot", job / "whole.nc", "--kind", "fan", "-o", out / "p.png"],
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_next_writer_removes_stale_temporary_folders_only(tmp_path, job, killed, writer):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copytree(killed, out / killed.name, symlinks=True)
    stale, keep = plant_stale_and_foreign(out)
    stale.add(killed.name)
    ok(invoke(*WRITERS[writer](job, out)))
    names = {p.name for p in out.iterdir()}
    assert not (stale & names), stale & names
    assert keep <= names, keep - names
    assert (tmp_path / "elsewhere" / "inner" / "owner").is_file()  # the link's target is intact
    assert (out / ".artysim-link.tmp").is_symlink()


# -- 6 and 7: real signals at exact moments of real processes ---------------------------------------------

def spawn(cwd: Path, args: list, pause: str) -> tuple[subprocess.Popen, Path]:
    mark = cwd / "reached.mark"
    env = {k: v for k, v in os.environ.items() if k not in SLURM_VARS}
    env |= {"ARTYSIM_TEST_PAUSE": pause, "ARTYSIM_TEST_MARK": str(mark),
            "NUMBA_CACHE_DIR": str(cache.CACHE_DIR.parent), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "pausecli.py"), *map(str, args)], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return proc, mark


def wait_mark(proc: subprocess.Popen, mark: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not mark.exists():
        if proc.poll() is not None:
            raise AssertionError(f"ended before the moment: {proc.communicate()}")
        assert time.monotonic() < deadline, "the moment was never reached"
        time.sleep(0.01)


W = "artysim.results.writer:ResultsWriter"
#: (writer, moment) -> (pause spec, whether the target is complete when the signal lands)
MOMENTS = {
    ("run", "writing"): (f"{W}.write_daily:before:2", False),
    ("run", "in-the-rename"): ("artysim.results.atomic:_committed.append:before:2", True),
    ("run", "summary-after-commit"): ("artysim.analysis.summary:summarize:before:2", True),
    ("merge", "reading-inputs"): ("artysim.results.shards:read_info:before:2", False),
    ("merge", "writing"): (f"{W}.write_runs_raw:before:2", False),
    ("merge", "in-the-rename"): ("artysim.results.atomic:_committed.append:before:2", True),
    ("sweep", "in-a-variant"): (f"{W}.write_daily:before:2", False),
    ("sweep", "between-variants"): ("artysim.jobs.run:run_loaded:after:2", False),
    ("sweep", "combining"): ("artysim.jobs.sweep:_copy_var:before:2", False),
    ("sweep", "in-the-rename"): ("artysim.results.atomic:_committed.append:before:2:/r.nc", True),
    ("plot", "drawing"): ("matplotlib.figure:Figure.savefig:before:2", False),
    ("plot", "in-the-rename"): ("artysim.results.atomic:_committed.append:before:2", True),
}
#: the cases run by default (each costs a process start); every other (moment, signal) is marked slow
FAST = {("run", "writing", "SIGINT"), ("run", "in-the-rename", "SIGTERM"), ("merge", "writing", "SIGTERM"),
        ("sweep", "between-variants", "SIGTERM"), ("sweep", "combining", "SIGINT"), ("plot", "drawing", "SIGTERM")}


def _signal_cases():
    for m in MOMENTS:
        for sig in (signal.SIGINT, signal.SIGTERM):
            marks = () if (*m, sig.name) in FAST else (pytest.mark.slow,)
            yield pytest.param(*m, sig, id=f"{m[0]}-{m[1]}-{sig.name}", marks=marks)


def _command(writer: str, job: Path, out: Path) -> list:
    return {
        "run": ["run", NK, "--runs", 40, "-o", out],
        "merge": ["merge", "-o", out, *(shard(job, k) for k in range(3))],
        "sweep": ["sweep", NK, "--vary", "demand.base=15000,20000", "--runs", 10, "-o", out, "-q"],
        "plot": ["plot", job / "whole.nc", "--kind", "fan", "-o", out],
    }[writer]


@pytest.mark.parametrize("writer, moment, sig", list(_signal_cases()))
def test_signal_at_every_moment(tmp_path, job, writer, moment, sig):
    pause, complete = MOMENTS[(writer, moment)]
    out = tmp_path / ("p.png" if writer == "plot" else "r.nc")
    old = b"the previous result"
    out.write_bytes(old)  # --force: an existing target, which must stay whole until the rename
    proc, mark = spawn(tmp_path, [*_command(writer, job, out), "--force"], pause)
    try:
        wait_mark(proc, mark)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + sig, (proc.returncode, stderr)
    assert "Traceback" not in stderr
    lines = [x for x in stderr.splitlines() if x.strip() and not re.match(r"artysim: (\d+/\d+ runs|variant )", x)]
    assert len(lines) == 1, stderr
    if complete:
        assert "interrupted" in lines[0] and f"{out} had been written completely" in lines[0], lines
        assert out.read_bytes() != old
        if writer == "plot":
            assert out.read_bytes().startswith(b"\x89PNG")
        else:
            with xr.open_dataset(out, decode_times=False) as ds:
                assert ds.sizes["run"] > 0
    else:
        assert lines[0] == "artysim: interrupted; no partial results were kept", lines
        assert out.read_bytes() == old
        assert "wrote" not in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["reached.mark", out.name])


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(6))
def test_sigint_near_the_end_is_never_lost(tmp_path, trial):
    """SIGINT at spread moments around the end of a short run: exit 130 with a true message, or (if
    it came after the process had finished) exit 0 with the file written; never a lost interrupt."""
    out = tmp_path / "r.nc"
    proc, mark = spawn(tmp_path, ["run", NK, "--runs", 40, "-o", out, "-q"],
                       f"{W}.write_daily:after:{0.02 * trial}")
    try:
        wait_mark(proc, mark)
        time.sleep(0.01 * trial)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode in (0, 130), (proc.returncode, stderr)
    if proc.returncode == 130:
        assert "interrupted" in stderr
        assert out.exists() == ("had been written completely" in stderr), stderr
    else:
        assert out.is_file()
    assert "Traceback" not in stderr
    assert temp_folders(tmp_path) == []


# -- 7 in-process: a signal in the last window of every writer ----------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("window", ["before-commit", "in-the-rename"])
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_signal_in_the_last_window_in_process(tmp_path, job, monkeypatch, writer, window, sig):
    """os.kill of this very process just before AtomicFile.commit (after the writer's last check), or
    between the rename and its record: exit 128+signal, and the message matches the file."""
    out = tmp_path / "out"
    out.mkdir()
    args = WRITERS[writer](job, out)
    target = Path(args[args.index("-o") + 1])
    if window == "before-commit":
        real = atomic.AtomicFile.commit

        def commit(self):
            if self.target == target:
                os.kill(os.getpid(), sig)
            return real(self)

        monkeypatch.setattr(atomic.AtomicFile, "commit", commit)
    else:
        class Signalling(list):
            def append(self, x):
                if x == target:
                    os.kill(os.getpid(), sig)
                super().append(x)

        monkeypatch.setattr(atomic, "_committed", Signalling())
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == 128 + sig, (r.exit_code, r.output, r.exc_info)
    written = target.exists()
    # the rename comes before any signal can be acted on in a writer that defers them (run, merge,
    # sweep) or once it has begun; a plot acts on one at once, before its rename
    assert written == (window == "in-the-rename" or writer != "plot")
    if written:
        assert f"{target} had been written completely" in r.stderr
    else:
        assert "no partial results were kept" in r.stderr
    assert temp_folders(out) == []
