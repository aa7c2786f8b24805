"""Writers on file systems that fail (issue 11, class 10): ``slurm`` with an out-dir under a file, a
read-only or full file system, a pipe as the scenario; ``plot`` on a read-only or full disk; ``sweep``
on a disk that fills while combining; a legal 248-byte output name for every writer. Each is one
line, exit 2, and nothing half-made is left (no job folder, no temporary file or folder)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from crafted import SCENARIO, invoke
from support import assert_refused

NAME248 = "r" * 245 + ".nc"  # 248 bytes: legal (255 is the limit); temporary names must stay legal too


@pytest.fixture(scope="module")
def scn(tmp_path_factory):
    p = tmp_path_factory.mktemp("jobs") / "j.toml"
    p.write_text(SCENARIO)
    return p


def _slurm(scn, out, *more):
    return invoke("slurm", scn, "--runs", 10, "--shards", 2, "--out-dir", out, *more)


def _nothing_left(folder: Path, allowed=()):
    left = sorted(p.name for p in folder.iterdir() if p.name not in allowed)
    assert left == [], left


# -- slurm --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("under", ["f/job", "f/a/b/job", "f"])
def test_slurm_out_dir_under_a_file(scn, tmp_path, under):
    (tmp_path / "f").write_text("a file")
    r = _slurm(scn, tmp_path / under)
    assert_refused(r, "file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"] and (tmp_path / "f").read_text() == "a file"


@pytest.mark.parametrize("kind", ["fifo", "folder", "devnull", "socket-like-missing"])
def test_slurm_scenario_that_is_not_a_file(tmp_path, kind):
    src = tmp_path / "s.toml"
    if kind == "fifo":
        os.mkfifo(src)
    elif kind == "folder":
        src.mkdir()
    elif kind == "devnull":
        os.symlink("/dev/null", src)
    r = _slurm(src, tmp_path / "job")
    assert_refused(r, "s.toml")
    assert not (tmp_path / "job").exists()
    _nothing_left(tmp_path, {"s.toml"})


def _fail_nth_write(monkeypatch, n: int, err: int):
    """The n-th file written by slurm.write_folder fails with ``err`` (ENOSPC: the disk fills)."""
    from artysim.jobs import slurm

    real = os.fdopen
    count = {"k": 0}

    def fdopen(fd, *a, **kw):
        f = real(fd, *a, **kw)
        if count["k"] == n:
            f.close()
            raise OSError(err, os.strerror(err))
        count["k"] += 1
        return f

    monkeypatch.setattr(slurm.os, "fdopen", fdopen)


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO])
@pytest.mark.parametrize("n", range(4))
def test_slurm_full_or_read_only_disk_leaves_nothing(scn, tmp_path, monkeypatch, n, err):
    _fail_nth_write(monkeypatch, n, err)
    line = assert_refused(_slurm(scn, tmp_path / "job"), "cannot write the job folder", os.strerror(err))
    assert "nothing was written" in line
    _nothing_left(tmp_path)


@pytest.mark.parametrize("where", ["mkdtemp", "mkdir", "rename"])
def test_slurm_read_only_file_system(scn, tmp_path, monkeypatch, where):
    from artysim.jobs import slurm

    def refuse(*a, **kw):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(a[0]) if a else None)

    if where == "mkdtemp":
        monkeypatch.setattr(slurm.tempfile, "mkdtemp", refuse)
    elif where == "rename":
        monkeypatch.setattr(slurm.os, "rename", refuse)
    else:
        monkeypatch.setattr(Path, "mkdir", refuse)
    assert_refused(_slurm(scn, tmp_path / "job"), "Read-only file system")
    _nothing_left(tmp_path)


@pytest.mark.parametrize("n", range(3))
def test_slurm_only_missing_on_a_full_disk_keeps_the_job(scn, tmp_path, monkeypatch, n):
    out = tmp_path / "job"
    assert _slurm(scn, out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    _fail_nth_write(monkeypatch, n, errno.ENOSPC)
    line = assert_refused(_slurm(scn, out, "--only-missing"), "No space left")
    assert "unchanged" in line
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_slurm_into_an_existing_empty_folder_and_a_long_name(scn, tmp_path):
    (tmp_path / "empty").mkdir()
    assert _slurm(scn, tmp_path / "empty").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == [
        "array.sbatch", "job.json", "logs", "merge.sbatch", "scenario.toml", "shards", "submit.sh"]
    assert os.access(tmp_path / "empty" / "submit.sh", os.X_OK)
    long = tmp_path / ("j" * 250)
    assert _slurm(scn, long).exit_code == 0
    _nothing_left(tmp_path, {"empty", "j" * 250})


# -- plot ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nc(scn):
    out = scn.parent / "r.nc"
    assert invoke("run", scn, "-o", out, "-q").exit_code == 0
    return out


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS, errno.EDQUOT])
@pytest.mark.parametrize("kind", ["fan", "depletion", "histogram"])
def test_plot_on_a_full_or_read_only_disk(nc, tmp_path, monkeypatch, err, kind):
    from matplotlib.figure import Figure

    def savefig(self, path, **kw):
        Path(path).write_bytes(b"\x89PNG half")
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(Figure, "savefig", savefig)
    assert_refused(invoke("plot", nc, "--kind", kind, "-o", tmp_path / "p.png"), "p.png", os.strerror(err))
    _nothing_left(tmp_path)


def test_plot_where_no_temporary_folder_can_be_made(nc, tmp_path, monkeypatch):
    import tempfile

    def refuse(*a, **kw):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    assert_refused(invoke("plot", nc, "--kind", "fan", "-o", tmp_path / "p.svg"), "Read-only")
    _nothing_left(tmp_path)


# -- sweep --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 5, 30])
@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"), RuntimeError("NetCDF: HDF error")])
def test_sweep_disk_fills_while_combining(scn, tmp_path, monkeypatch, n, exc):
    from artysim.jobs import sweep

    real = sweep._copy_var
    count = {"k": 0}

    def copy_var(*a, **kw):
        if count["k"] == n:
            raise exc
        count["k"] += 1
        return real(*a, **kw)

    monkeypatch.setattr(sweep, "_copy_var", copy_var)
    line = assert_refused(invoke("sweep", scn, "--vary", "demand.base=900,1400", "-o", tmp_path / "s.nc", "-q",
                                 "--runs", 10), "s.nc", "combining")
    assert "no partial file" in line
    _nothing_left(tmp_path)


# -- a legal 248-byte output name, for every writer ---------------------------------------------------

def test_248_byte_names_for_every_writer(scn, nc, tmp_path):
    d = tmp_path / "w"
    d.mkdir()
    assert invoke("run", scn, "-o", d / NAME248, "-q").exit_code == 0
    sh = d / "sh"
    sh.mkdir()
    for k in range(2):
        assert invoke("run", scn, "--shard", k, "--shards", 2, "-o", sh / f"{'s' * 230}.shard-{k}-of-2.nc",
                      "-q").exit_code == 0
    m = d / ("m" * 245 + ".nc")
    r = invoke("merge", "-o", m, sh)
    assert r.exit_code == 0, r.output
    s = d / ("s" * 245 + ".nc")
    r = invoke("sweep", scn, "--vary", "demand.base=900,1400", "-o", s, "-q", "--runs", 10)
    assert r.exit_code == 0, r.output
    p = d / ("p" * 244 + ".png")
    r = invoke("plot", nc, "--kind", "fan", "-o", p)
    assert r.exit_code == 0, r.output
    r = invoke("run", scn, "-o", d / NAME248, "-q", "--force")  # replacing one works too
    assert r.exit_code == 0, r.output
    assert sorted(x.name for x in d.iterdir()) == sorted([NAME248, "sh", m.name, s.name, p.name])
    assert all(len(x.name.encode()) <= 255 for x in d.iterdir())
