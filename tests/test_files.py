"""Files: a full disk (a real tiny tmpfs when root may mount one, and a simulated ENOSPC always),
missing, unwritable or odd output folders, --force, and reading files artysim did not write (or
wrote in a newer version, or that were cut short) with every command that reads results.

Every refusal: exit status 2, one line naming the file and the reason, no traceback, no temporary
file left behind, an existing result untouched.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from support import assert_refused, leftovers

from artysim.cli import main
from artysim.core import engine
from artysim.results import reader, writer

NK = Path(__file__).resolve().parent.parent / "configs" / "nk-deal-2023.toml"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _no_simulation(monkeypatch):
    """Make any simulation fail loudly: a refusal must come before the work."""
    def boom(*a, **k):
        raise AssertionError("the simulation started before the refusal")
    monkeypatch.setattr(engine, "run_batches", boom)


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("good") / "good.nc"
    r = invoke("run", NK, "--runs", "200", "-o", out, "-q")
    assert r.exit_code == 0, r.output
    return out


# ----------------------------------------------------------------------------- a full disk


def _mount(path: Path, opts: str) -> bool:
    path.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True)
    return p.returncode == 0


@pytest.fixture
def tiny_fs(tmp_path):
    """A 2 MiB tmpfs (needs root and a kernel that allows it; skipped otherwise)."""
    fs = tmp_path / "fs"
    if not _mount(fs, "size=2m"):
        pytest.skip("cannot mount a tmpfs here (not root, or not allowed)")
    yield fs
    subprocess.run(["umount", "-l", str(fs)], check=False)  # lazy: HDF5 may still hold a deleted file


def test_full_disk_is_refused_before_any_work_by_the_resource_check(tiny_fs, monkeypatch):
    _no_simulation(monkeypatch)
    out = tiny_fs / "r.nc"
    line = assert_refused(invoke("run", NK, "--runs", "20000", "-o", out, "-q"), "results file will take about",
                          "is free", "--no-resource-check")
    assert str(tiny_fs) in line
    assert leftovers(tiny_fs) == []


def test_full_disk_while_writing_a_real_tmpfs(tiny_fs, good):
    """--no-resource-check: the write itself runs out of space; one line, nothing left, the existing
    result (written there before) unchanged."""
    old = tiny_fs / "r.nc"
    shutil.copy(good, old)
    before = old.read_bytes()
    # the 200-run file takes 1.3 MB of the 2 MiB (mostly per-day histograms); 5,000 runs need more than
    # what is left (20,000 would only cost more simulation)
    r = invoke("run", NK, "--runs", "5000", "-o", old, "-q", "--force", "--no-resource-check")
    assert_refused(r, str(old), "could not write the results file", "disk full?", "no partial file was kept",
                   "the existing file is unchanged")
    assert leftovers(tiny_fs) == ["r.nc"]
    assert old.read_bytes() == before
    with reader.open_file(old) as ds:
        assert ds.sizes["run"] == 200


@pytest.mark.parametrize("stage", ["write_batch", "write_daily", "commit"])
def test_no_space_left_simulated(tmp_path, good, monkeypatch, stage):
    """ENOSPC raised by the write path at each stage (any file system): exit 2, the reason, no temp file."""
    old = tmp_path / "r.nc"
    shutil.copy(good, old)
    before = old.read_bytes()
    real = getattr(writer.ResultsWriter, stage)

    def full(self, *a, **k):
        if stage == "commit":  # the file is complete and closed; the rename into place fails
            self.nc.close()
            self.nc = None
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.tmp))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(writer.ResultsWriter, stage, full)
    r = invoke("run", NK, "--runs", "300", "-o", old, "-q", "--force")
    assert_refused(r, str(old), "No space left on device", "no partial file was kept")
    assert leftovers(tmp_path) == ["r.nc"]
    assert old.read_bytes() == before
    monkeypatch.setattr(writer.ResultsWriter, stage, real)


def test_netcdf_library_error_while_writing(tmp_path, monkeypatch):
    """HDF5 reports a full disk as 'NetCDF: HDF error' (a RuntimeError): turned into one line too."""
    def hdf_error(self, *a, **k):
        raise RuntimeError("NetCDF: HDF error")
    monkeypatch.setattr(writer.ResultsWriter, "write_daily", hdf_error)
    assert_refused(invoke("run", NK, "--runs", "100", "-o", tmp_path / "r.nc", "-q"), "NetCDF: HDF error",
                   "no partial file was kept")
    assert leftovers(tmp_path) == []


def test_a_bug_is_not_disguised_as_a_write_error(tmp_path, monkeypatch):
    """Only file-system and netCDF errors are reworded: a programming error stays an error."""
    def bug(self, *a, **k):
        raise RuntimeError("some bug")
    monkeypatch.setattr(writer.ResultsWriter, "write_daily", bug)
    with pytest.raises(RuntimeError, match="some bug"):
        invoke("run", NK, "--runs", "100", "-o", tmp_path / "r.nc", "-q")
    assert leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- output folders


def test_missing_output_folder_refused_before_any_work(tmp_path, monkeypatch):
    _no_simulation(monkeypatch)
    out = tmp_path / "nope" / "deeper" / "r.nc"
    assert_refused(invoke("run", NK, "--runs", "100", "-o", out), str(out.parent), "does not exist")
    assert leftovers(tmp_path) == []


def test_output_folder_that_is_a_file_refused_before_any_work(tmp_path, monkeypatch):
    _no_simulation(monkeypatch)
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "r.nc"
    assert_refused(invoke("run", NK, "--runs", "100", "-o", out), "afile", "is a file, not a folder")
    assert leftovers(tmp_path) == ["afile"]


def test_read_only_output_folder_refused_before_any_work(tmp_path, monkeypatch):
    """A read-only file system refuses writes even to root (chmod does not)."""
    ro = tmp_path / "ro"
    if not _mount(ro, "ro,size=64k"):
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        _no_simulation(monkeypatch)
        assert_refused(invoke("run", NK, "--runs", "100", "-o", ro / "r.nc"), str(ro), "not writable")
        assert_refused(invoke("sweep", NK, "--vary", "demand.daily_cv=0.1,0.2", "-o", ro / "s.nc"), str(ro))
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to folders whatever their permissions")
def test_unwritable_output_folder_refused(tmp_path):
    d = tmp_path / "locked"
    d.mkdir()
    d.chmod(0o555)
    try:
        assert_refused(invoke("run", NK, "--runs", "100", "-o", d / "r.nc"), str(d), "not writable")
    finally:
        d.chmod(0o755)


# ----------------------------------------------------------------------------- --force


def test_existing_result_refused_without_force_and_untouched(tmp_path, good, monkeypatch):
    out = tmp_path / "r.nc"
    shutil.copy(good, out)
    before = out.read_bytes()
    _no_simulation(monkeypatch)
    assert_refused(invoke("run", NK, "--runs", "100", "-o", out), str(out), "exists", "--force")
    assert out.read_bytes() == before and leftovers(tmp_path) == ["r.nc"]


def test_existing_non_result_file_is_also_protected(tmp_path):
    out = tmp_path / "notes.nc"
    out.write_text("my notes")
    assert_refused(invoke("run", NK, "--runs", "100", "-o", out), "exists", "--force")
    assert out.read_text() == "my notes"


def test_force_replaces_atomically(tmp_path, good):
    out = tmp_path / "r.nc"
    shutil.copy(good, out)
    inode = out.stat().st_ino
    r = invoke("run", NK, "--runs", "150", "-o", out, "-q", "--force")
    assert r.exit_code == 0, r.output
    assert out.stat().st_ino != inode  # a new file renamed into place, not the old one rewritten
    with reader.open_file(out) as ds:
        assert ds.sizes["run"] == 150
    assert leftovers(tmp_path) == ["r.nc"]


def test_force_does_not_replace_a_folder(tmp_path):
    (tmp_path / "d.nc").mkdir()
    (tmp_path / "d.nc" / "keep").write_text("k")
    r = invoke("run", NK, "--runs", "50", "-o", tmp_path / "d.nc", "--force", "-q")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert (tmp_path / "d.nc" / "keep").read_text() == "k"


def test_file_that_appears_while_running_is_not_overwritten(tmp_path, monkeypatch):
    """Without --force, a file created by someone else during the run is kept, ours discarded."""
    out = tmp_path / "r.nc"
    real = writer.ResultsWriter.write_daily

    def someone_else(self, daily):
        out.write_text("theirs")
        return real(self, daily)
    monkeypatch.setattr(writer.ResultsWriter, "write_daily", someone_else)
    assert_refused(invoke("run", NK, "--runs", "100", "-o", out, "-q"), "appeared while running", "--force")
    assert out.read_text() == "theirs" and leftovers(tmp_path) == ["r.nc"]


def test_merge_output_exists_refused_and_force(tmp_path, good):
    out = tmp_path / "m.nc"
    out.write_text("mine")
    assert_refused(invoke("merge", "-o", out, good), "exists", "--force")
    assert out.read_text() == "mine"
    r = invoke("merge", "-o", out, good, "--force")
    assert r.exit_code == 0, r.output
    with reader.open_file(out) as ds, reader.open_file(good) as g:
        assert (ds.fired_total.values == g.fired_total.values).all()


# ----------------------------------------------------------------------------- reading bad files


def _bad_files(folder: Path, good: Path) -> dict[str, Path]:
    f = {}
    f["foreign netCDF-4"] = folder / "foreign.nc"
    xr.Dataset({"x": ("t", np.arange(5))}, attrs={"title": "not ours"}).to_netcdf(f["foreign netCDF-4"])
    f["foreign netCDF-3"] = folder / "foreign3.nc"
    xr.Dataset({"x": ("t", np.arange(5))}).to_netcdf(f["foreign netCDF-3"], format="NETCDF3_CLASSIC")
    data = good.read_bytes()
    f["truncated"] = folder / "trunc.nc"
    f["truncated"].write_bytes(data[: len(data) // 2])
    f["newer schema"] = folder / "newer.nc"
    shutil.copy(good, f["newer schema"])
    with netCDF4.Dataset(f["newer schema"], "a") as nc:
        nc.setncattr("artysim_schema_version", 99)
    f["incomplete"] = folder / "incomplete.nc"
    with xr.open_dataset(good) as ds:
        ds.drop_vars(["fired_total", "duds"]).load().to_netcdf(f["incomplete"])
    f["not netCDF"] = folder / "text.nc"
    f["not netCDF"].write_text("run,fired\n0,1\n")
    f["empty"] = folder / "empty.nc"
    f["empty"].write_bytes(b"")
    f["folder"] = folder / "dir.nc"
    f["folder"].mkdir()
    f["missing"] = folder / "missing.nc"
    return f


#: what the one-line message must say for each class (any one of the words)
NEEDLES = {
    "foreign netCDF-4": ["not an artysim results file"],
    "foreign netCDF-3": ["not an artysim results file"],
    "truncated": ["truncated", "not a readable netCDF"],
    "newer schema": ["newer"],
    "incomplete": ["incomplete", "missing"],
    "not netCDF": ["not a netCDF file", "not a readable netCDF"],
    "empty": ["not a netCDF file", "not a readable netCDF", "empty"],
    "folder": ["folder", "directory"],
    "missing": ["no such file"],
}


def _reading_commands(bad: Path, good: Path, out: Path) -> dict[str, list]:
    """Every command that reads results, given the bad file."""
    return {
        "summary": ["summary", bad],
        "merge": ["merge", "-o", out / "m.nc", bad],
        "compare-a": ["compare", bad, good],
        "compare-b": ["compare", good, bad],
        "plot": ["plot", bad, "--kind", "fan", "-o", out / "p.png"],
        "sensitivity": ["sensitivity", bad],
    }


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, good):
    return _bad_files(tmp_path_factory.mktemp("bad"), good)


@pytest.mark.parametrize("klass", sorted(NEEDLES))
def test_reading_bad_files_is_refused_by_every_reading_command(klass, bad_files, good, tmp_path):
    bad = bad_files[klass]
    cmds = _reading_commands(bad, good, tmp_path)
    for name, args in cmds.items():
        r = invoke(*args)
        line = assert_refused(r)
        assert bad.name in line, (name, line)
        assert any(n in line for n in NEEDLES[klass]), (name, klass, line)
    assert leftovers(tmp_path) == []  # no merged file, no picture


def test_sweep_on_a_full_disk(tiny_fs, monkeypatch):
    """sweep runs each variant through the same guard and writer: refused before work, or (with the
    override) one line when the disk fills, and no temporary folder left either way."""
    out = tiny_fs / "s.nc"
    args = ["sweep", NK, "--vary", "demand.daily_cv=0.1,0.2", "--runs", "5000", "-o", out, "-q"]  # over 1.5 MB each
    assert_refused(invoke(*args), "results file will take about", "--no-resource-check")
    assert leftovers(tiny_fs) == []
    assert_refused(invoke(*args, "--no-resource-check"), "could not write the results file", "disk full?")
    assert leftovers(tiny_fs) == []
