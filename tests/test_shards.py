"""Shards, merge and SLURM job scripts (SPEC §3-§6), in-process through the CLI.

The central property: the runs of one job split into K shards (``--shard k --shards K``) and merged
give exactly the file a single run writes, variable by variable, whatever K (including K that does
not divide the run count, and a trajectory sample that straddles shard boundaries).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from support import assert_refused, leftovers

import artysim
from artysim.cli import main
from artysim.core import cache
from artysim.jobs import run as runner
from artysim.results import schema
from artysim.results import shards as shards_mod

REPO = Path(__file__).resolve().parent.parent
NK = REPO / "configs" / "nk-deal-2023.toml"
N = 1000
SAMPLE = 300  # trajectory sample: runs 0..299, so it straddles the boundaries of K = 7 (142, 285)
SETS = ("--set", f"output.trajectory_sample={SAMPLE}")
SLURM_VARS = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX",
              "SLURM_ARRAY_JOB_ID", "SLURM_JOB_ID")
#: attributes a merged file may differ in from the single run: when/how it was written, and what from
MERGE_ONLY_ATTRS = ("history", "merged_from")


@pytest.fixture(autouse=True)
def _no_slurm_env(monkeypatch):
    """These tests may themselves run inside a SLURM job: its array variables must not pick a shard."""
    for v in SLURM_VARS:
        monkeypatch.delenv(v, raising=False)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def ok(result):
    assert result.exit_code == 0, (result.output, result.stderr)
    return result


def run_shard(out: Path, shard: int | None, shards: int | None, *extra, runs: int = N):
    args = ["run", NK, "--runs", runs, *SETS, "-o", out, "-q", *extra]
    if shard is not None:
        args += ["--shard", shard]
    if shards is not None:
        args += ["--shards", shards]
    return ok(invoke(*args))


def _equal_values(x: np.ndarray, y: np.ndarray) -> bool:
    if x.shape != y.shape or x.dtype != y.dtype:
        return False
    if x.dtype.kind in "fc":
        return bool(np.array_equal(x, y, equal_nan=True))
    return bool(np.array_equal(x, y))


def _equal_attr(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    return a == b


def assert_same_results(merged: Path, single: Path, *, ignore_attrs=MERGE_ONLY_ATTRS) -> None:
    """Every variable and coordinate equal (values, dtype, dims, attributes), and the global attributes
    equal except ``ignore_attrs``."""
    with xr.open_dataset(merged, decode_times=False) as m, xr.open_dataset(single, decode_times=False) as s:
        assert dict(m.sizes) == dict(s.sizes)
        assert sorted(m.variables) == sorted(s.variables)
        for name in s.variables:
            a, b = m[name], s[name]
            assert a.dims == b.dims, name
            assert _equal_values(a.values, b.values), f"{name} differs"
            assert sorted(a.attrs) == sorted(b.attrs), name
            for k in b.attrs:
                assert _equal_attr(a.attrs[k], b.attrs[k]), (name, k)
        ma = {k: v for k, v in m.attrs.items() if k not in ignore_attrs}
        sa = {k: v for k, v in s.attrs.items() if k not in ignore_attrs}
        assert sorted(ma) == sorted(sa)
        for k in sa:
            assert _equal_attr(ma[k], sa[k]), (k, ma[k], sa[k])


# -- fixtures: one single run, and its shards for several K (written once per module) --------------

@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "nk.nc"
    run_shard(out, None, None)
    return out


@pytest.fixture(scope="module")
def shard_sets(tmp_path_factory):
    """``shard_sets(K)``: a folder holding the K shard files of the job (made on first use)."""
    made: dict[int, Path] = {}

    def get(k: int) -> Path:
        if k not in made:
            d = tmp_path_factory.mktemp(f"shards{k}")
            for i in range(k):
                run_shard(d / shards_mod.shard_name("nk", i, k), i, k)
            made[k] = d
        return made[k]

    return get


def copy_shards(src: Path, dst: Path, indices, k: int) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for i in indices:
        shutil.copy(src / shards_mod.shard_name("nk", i, k), dst)
    return dst


# -- merged shards equal the single run -------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_merged_shards_equal_single_run(tmp_path, single, shard_sets, k):
    out = tmp_path / "merged.nc"
    r = ok(invoke("merge", "-o", out, shard_sets(k)))
    assert f"wrote {out}" in r.stdout
    assert_same_results(out, single)
    with xr.open_dataset(out, decode_times=False) as m:
        assert int(m.attrs["merged_from"]) == k
        assert "merge" in m.attrs["history"]
        assert m.sizes["sample"] == SAMPLE and m.sizes["run"] == N
    assert leftovers(tmp_path) == ["merged.nc"]


def test_merge_takes_folder_glob_and_file_list(tmp_path, single, shard_sets):
    d = shard_sets(3)
    files = sorted(d.glob("*.nc"))
    for name, inputs in {
        "folder": [d],
        "glob": [d / "nk.shard-*-of-3.nc"],
        "files": [files[2], files[0], files[1]],  # any order
        "mixed": [files[1], d / "*-0-of-3.nc", files[2], files[1]],  # duplicates collapse
    }.items():
        out = tmp_path / f"{name}.nc"
        ok(invoke("merge", "-o", out, *inputs))
        assert_same_results(out, single)


def test_shard_files_record_their_place(shard_sets, single):
    with xr.open_dataset(single, decode_times=False) as s:
        ref = dict(s.attrs)
    assert (ref["run_start"], ref["run_stop"], ref["shard"], ref["shards"]) == (0, N, 0, 1)
    k = 7
    for i, f in enumerate(sorted(shard_sets(k).glob("*.nc"))):
        with xr.open_dataset(f, decode_times=False) as ds:
            a = ds.attrs
            r0, r1 = runner.shard_range(N, i, k)
            assert (a["run_start"], a["run_stop"], a["shard"], a["shards"]) == (r0, r1, i, k)
            assert a["runs_total"] == N
            assert a["scenario_hash"] == ref["scenario_hash"]
            assert a["seed"] == ref["seed"]
            assert a["artysim_version"] == artysim.__version__ == ref["artysim_version"]
            np.testing.assert_array_equal(ds["run"].values, np.arange(r0, r1))
            np.testing.assert_array_equal(ds["sample"].values, np.arange(r0, min(r1, SAMPLE)))
    # the shard sizes differ by at most one run and cover all runs
    sizes = [np.diff(runner.shard_range(N, i, k))[0] for i in range(k)]
    assert sum(sizes) == N and max(sizes) - min(sizes) <= 1


# -- merge refusals -----------------------------------------------------------------------------------

@pytest.fixture
def mixed(tmp_path, shard_sets):
    """``mixed(extra_args)``: a folder with shards 0 and 1 of 3 of the job, and shard 2 of 3 written
    with ``extra_args`` (another scenario, seed, run count)."""
    def make(*extra, runs=N) -> Path:
        d = copy_shards(shard_sets(3), tmp_path / "in", [0, 1], 3)
        run_shard(d / shards_mod.shard_name("nk", 2, 3), 2, 3, *extra, runs=runs)
        return d
    return make


@pytest.fixture
def outdir(tmp_path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


def test_merge_refuses_different_scenarios(mixed, outdir):
    d = mixed("--set", "source.north_korea.dud_rate=0.3")
    assert_refused(invoke("merge", "-o", outdir / "m.nc", d), "different scenarios", "scenario_hash")
    assert leftovers(outdir) == []


def test_merge_refuses_different_seeds(mixed, outdir):
    d = mixed("--seed", "99")
    assert_refused(invoke("merge", "-o", outdir / "m.nc", d), "different seeds", "seed=99")
    assert leftovers(outdir) == []


def test_merge_refuses_different_run_totals(mixed, outdir):
    d = mixed(runs=N + 1)
    assert_refused(invoke("merge", "-o", outdir / "m.nc", d), "different run counts", str(N + 1))
    assert leftovers(outdir) == []


def test_merge_refuses_different_versions(tmp_path, shard_sets, outdir, monkeypatch):
    d = copy_shards(shard_sets(3), tmp_path / "in", [0, 1], 3)
    monkeypatch.setattr("artysim.results.writer.__version__", "0.0.0+other")
    run_shard(d / shards_mod.shard_name("nk", 2, 3), 2, 3)
    monkeypatch.undo()
    assert_refused(invoke("merge", "-o", outdir / "m.nc", d), "different artysim versions", "0.0.0+other")
    assert leftovers(outdir) == []


def test_merge_refuses_overlapping_runs(tmp_path, shard_sets, outdir):
    d = copy_shards(shard_sets(3), tmp_path / "in", [0, 1], 3)
    copy_shards(shard_sets(2), d, [1], 2)  # runs 500..999 overlap shard 1 of 3 (333..665)
    line = assert_refused(invoke("merge", "-o", outdir / "m.nc", d), "overlapping")
    assert "333..665" in line and "500..999" in line
    assert leftovers(outdir) == []


@pytest.mark.parametrize("k, present, needles", [
    (3, [0, 2], ["runs 333..665", "shards 1 of 3"]),
    (7, [0, 1, 2, 4, 5], ["runs 428..570, 857..999", "shards 3, 6 of 7"]),
    (7, [1, 2, 3, 4, 5, 6], ["runs 0..141", "shards 0 of 7"]),
])
def test_merge_names_missing_shards(tmp_path, shard_sets, outdir, k, present, needles):
    d = copy_shards(shard_sets(k), tmp_path / "in", present, k)
    assert_refused(invoke("merge", "-o", outdir / "m.nc", d), "missing", "--allow-partial", *needles)
    assert leftovers(outdir) == []


def test_merge_refuses_existing_output_without_force(tmp_path, shard_sets, single):
    out = tmp_path / "m.nc"
    out.write_bytes(b"precious")
    assert_refused(invoke("merge", "-o", out, shard_sets(2)), str(out), "exists", "--force")
    assert out.read_bytes() == b"precious"
    assert leftovers(tmp_path) == ["m.nc"]
    ok(invoke("merge", "-o", out, shard_sets(2), "--force"))
    assert_same_results(out, single)
    assert leftovers(tmp_path) == ["m.nc"]


def test_merge_refuses_foreign_netcdf(tmp_path, shard_sets, outdir):
    d = copy_shards(shard_sets(2), tmp_path / "in", [0, 1], 2)
    xr.Dataset({"x": ("run", np.arange(5.0))}, attrs={"title": "not artysim"}).to_netcdf(d / "foreign.nc")
    assert_refused(invoke("merge", "-o", outdir / "m.nc", d), "foreign.nc", "not an artysim results file")
    assert leftovers(outdir) == []


@pytest.mark.parametrize("name, content", [("junk.nc", b"not netCDF at all\n"), ("notes.txt", b"hello\n"),
                                           ("empty.nc", b"")])
def test_merge_refuses_non_netcdf_input(tmp_path, shard_sets, outdir, name, content):
    d = copy_shards(shard_sets(2), tmp_path / "in", [0, 1], 2)
    (d / name).write_bytes(content)
    assert_refused(invoke("merge", "-o", outdir / "m.nc", *sorted(d.iterdir())), name, "netCDF")
    assert leftovers(outdir) == []


def test_merge_refuses_no_inputs(tmp_path, outdir):
    (tmp_path / "empty").mkdir()
    assert_refused(invoke("merge", "-o", outdir / "m.nc", tmp_path / "nothing-*.nc"), "nothing-*.nc", "no such")
    assert_refused(invoke("merge", "-o", outdir / "m.nc", tmp_path / "missing.nc"), "missing.nc", "no such")
    assert_refused(invoke("merge", "-o", outdir / "m.nc", tmp_path / "empty"), "no shard files")
    r = invoke("merge", "-o", outdir / "m.nc")  # no argument at all: a usage error
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert leftovers(outdir) == []


@pytest.mark.parametrize("k, missing", [(3, 1), (3, 0), (7, 6)])
def test_merge_allow_partial(tmp_path, shard_sets, single, outdir, k, missing):
    present = [i for i in range(k) if i != missing]
    d = copy_shards(shard_sets(k), tmp_path / "in", present, k)
    out = outdir / "partial.nc"
    ok(invoke("merge", "-o", out, d, "--allow-partial"))
    assert leftovers(outdir) == ["partial.nc"]
    g0, g1 = runner.shard_range(N, missing, k)
    keep = np.concatenate([np.arange(0, g0), np.arange(g1, N)])
    with xr.open_dataset(out, decode_times=False) as p, xr.open_dataset(single, decode_times=False) as s:
        assert int(p.attrs["partial"]) == 1
        assert f"runs {g0}..{g1 - 1}" in p.attrs["missing_runs"]
        assert f"shards {missing} of {k}" in p.attrs["missing_runs"]
        np.testing.assert_array_equal(p["run"].values, keep)
        ref = s.sel(run=keep)
        for v in schema.PER_RUN:
            assert _equal_values(p[v.name].values, ref[v.name].values), v.name
        # the trajectory sample holds the sampled runs that are present
        want = keep[keep < SAMPLE]
        np.testing.assert_array_equal(p["sample"].values, want)
        for name in ("stock_sample", "fired_sample"):
            assert _equal_values(p[name].values, s[name].sel(sample=want).values), name
        # per-day counts are those of the present runs only
        short = 0
        for i in present:
            with xr.open_dataset(d / shards_mod.shard_name("nk", i, k), decode_times=False) as sh:
                short = short + sh["n_short"].values
        np.testing.assert_array_equal(p["n_short"].values, short)
        np.testing.assert_allclose(p["p_short"].values, short / len(keep))
    # the partial file is still a results file artysim reads
    r = ok(invoke("summary", out))
    assert f"PARTIAL: {len(keep):,} of {N:,} runs" in r.stdout.splitlines()[0]  # said on the first line


# -- shard selection: options and SLURM array variables -----------------------------------------------

def test_shard_from_slurm_array_variables(tmp_path, monkeypatch, shard_sets):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
    out = tmp_path / shards_mod.shard_name("s", 1, 3)  # the output says it is that shard
    r = ok(invoke("run", NK, "--runs", N, *SETS, "-o", out))
    assert "shard 1 of 3" in r.stderr and "SLURM_ARRAY_TASK_ID" in r.stderr
    with xr.open_dataset(out, decode_times=False) as ds:
        assert (ds.attrs["run_start"], ds.attrs["run_stop"], ds.attrs["shard"], ds.attrs["shards"]) == (333, 666, 1, 3)
    assert_same_results(out, shard_sets(3) / shards_mod.shard_name("nk", 1, 3), ignore_attrs=("history",))

    # explicit options win over the environment, silently
    out2 = tmp_path / "s2.nc"
    r = ok(invoke("run", NK, "--runs", N, *SETS, "-o", out2, "--shard", "0", "--shards", "2"))
    assert "SLURM" not in r.stderr
    with xr.open_dataset(out2, decode_times=False) as ds:
        assert (ds.attrs["run_start"], ds.attrs["run_stop"], ds.attrs["shard"], ds.attrs["shards"]) == (0, 500, 0, 2)


@pytest.mark.parametrize("task_id, count, needle", [("3", "3", "--shard"), ("x", "3", "SLURM_ARRAY_TASK_ID")])
def test_bad_slurm_array_variables_refused(tmp_path, monkeypatch, task_id, count, needle):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", task_id)
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", count)
    assert_refused(invoke("run", NK, "--runs", "100", "-o", tmp_path / "x.nc", "-q"), needle)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("args, needle", [
    (["--shard", "5", "--shards", "3"], "--shard"),
    (["--shard", "3", "--shards", "3"], "--shard"),
    (["--shard", "1"], "--shards"),
    (["--shards", "3"], "--shard"),
    (["--shards", "0"], "--shards"),
    (["--shard", "-1", "--shards", "3"], "--shard"),
])
def test_bad_shard_options_refused(tmp_path, args, needle):
    assert_refused(invoke("run", NK, "--runs", "100", "-o", tmp_path / "x.nc", *args), needle)
    assert leftovers(tmp_path) == []


def test_shards_one_alone_is_the_whole_job(tmp_path, single):
    out = tmp_path / "x.nc"
    run_shard(out, None, 1)
    assert_same_results(out, single, ignore_attrs=("history",))


# -- --skip-valid -----------------------------------------------------------------------------------

def _age(p: Path) -> int:
    """Backdate a file so that any rewrite shows in its mtime; returns the new mtime (ns)."""
    t = 1_600_000_000 * 10**9
    os.utime(p, ns=(t, t))
    return p.stat().st_mtime_ns


def test_skip_valid_keeps_a_valid_shard(tmp_path, shard_sets):
    out = tmp_path / "s.nc"
    args = ["run", NK, "--runs", N, *SETS, "--shard", "1", "--shards", "3", "-o", out, "--skip-valid"]
    ok(invoke(*args, "-q"))  # no file yet: computed
    assert_same_results(out, shard_sets(3) / shards_mod.shard_name("nk", 1, 3), ignore_attrs=("history",))
    before, mtime = out.read_bytes(), _age(out)
    r = ok(invoke(*args))
    assert "nothing to do" in r.stderr
    assert out.stat().st_mtime_ns == mtime and out.read_bytes() == before
    assert leftovers(tmp_path) == ["s.nc"]
    # without --skip-valid (and --force) an existing file is still refused
    assert_refused(invoke(*args[:-1], "-q"), "exists", "--force")
    assert out.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("case", ["other-seed", "other-shard", "other-runs", "other-scenario", "other-version",
                                  "junk"])
def test_skip_valid_refuses_a_file_of_another_job_unless_force(tmp_path, shard_sets, monkeypatch, case):
    out = tmp_path / "s.nc"
    if case == "junk":
        out.write_bytes(b"half-written garbage")
    elif case == "other-version":  # merge would refuse to mix it with this version's shards
        monkeypatch.setattr("artysim.results.writer.__version__", "0.0.0+other")
        run_shard(out, 1, 3)
        monkeypatch.undo()
    else:
        extra = {"other-seed": ["--seed", "99"], "other-runs": ["--runs", str(N + 3)],
                 "other-scenario": ["--set", "source.north_korea.dud_rate=0.3"]}.get(case, [])
        shard = 2 if case == "other-shard" else 1
        ok(invoke("run", NK, "--runs", N, *SETS, "--shard", shard, "--shards", "3", "-o", out, "-q", *extra))
    before, mtime = out.read_bytes(), _age(out)
    args = ["run", NK, "--runs", N, *SETS, "--shard", "1", "--shards", "3", "-o", out, "-q", "--skip-valid"]
    assert_refused(invoke(*args), str(out), "not shard 1 of 3", "--force")
    assert out.read_bytes() == before and out.stat().st_mtime_ns == mtime
    ok(invoke(*args, "--force"))
    assert out.stat().st_mtime_ns != mtime
    assert_same_results(out, shard_sets(3) / shards_mod.shard_name("nk", 1, 3), ignore_attrs=("history",))
    assert leftovers(tmp_path) == ["s.nc"]


# -- artysim slurm ------------------------------------------------------------------------------------

def sbatch_options(script: Path) -> dict[str, str]:
    opts = {}
    for line in script.read_text().splitlines():
        m = re.match(r"#SBATCH --([\w-]+)(?:=(.*))?$", line)
        if m:
            opts[m.group(1)] = m.group(2)
    return opts


def test_slurm_writes_job(tmp_path):
    d = tmp_path / "job"
    r = ok(invoke("slurm", NK, "--runs", N, "--shards", 4, "--out-dir", d, *SETS))
    assert "submit.sh" in r.stdout and "4 of 4 shards" in r.stdout
    assert leftovers(d) == ["array.sbatch", "job.json", "logs", "merge.sbatch", "scenario.toml", "shards", "submit.sh"]
    assert leftovers(d / "shards") == [] and leftovers(d / "logs") == []
    assert (d / "scenario.toml").read_text() == NK.read_text()
    a = sbatch_options(d / "array.sbatch")
    assert a["array"] == "0-3"
    assert a["time"] == "01:00:00" and a["mem"] == "4G" and a["cpus-per-task"] == "1"
    assert "partition" not in a and "account" not in a
    text = (d / "array.sbatch").read_text()
    assert text.startswith("#!/bin/bash\n")
    assert f"--runs {N}" in text and "--shards 4" in text and "--skip-valid" in text
    assert f"--set output.trajectory_sample={SAMPLE}" in text
    assert str(d.resolve() / "scenario.toml") in text
    m = (d / "merge.sbatch").read_text()
    assert "artysim.cli merge" in m and str(d.resolve() / "shards") in m
    s = (d / "submit.sh").read_text()
    assert "--dependency=afterok:" in s and "array.sbatch" in s and "merge.sbatch" in s
    assert os.access(d / "submit.sh", os.X_OK)
    for script in ("array.sbatch", "merge.sbatch", "submit.sh"):
        subprocess.run(["bash", "-n", str(d / script)], check=True)  # valid shell syntax


def test_slurm_options_reflected(tmp_path):
    d = tmp_path / "job"
    ok(invoke("slurm", NK, "--runs", N, "--shards", 10, "--out-dir", d, "--time", "00:10:00", "--mem", "2G",
              "--cpus-per-task", 3, "--partition", "debug", "--account", "proj42", "--array-limit", 4))
    for script, array in (("array.sbatch", "0-9%4"), ("merge.sbatch", None)):
        o = sbatch_options(d / script)
        assert o.get("array") == array
        assert o["time"] == "00:10:00" and o["mem"] == "2G" and o["cpus-per-task"] == "3"
        assert o["partition"] == "debug" and o["account"] == "proj42"


def test_slurm_only_missing_keeps_the_job_options(tmp_path):
    """--only-missing resubmits with the partition, time, memory, CPUs, account, array limit, design and
    threads of the first call (DIR/job.json), unless given again; before, it reverted them to defaults."""
    d = tmp_path / "job"
    first = ["--time", "00:10:00", "--mem", "2G", "--cpus-per-task", 3, "--partition", "debug", "--account",
             "proj42", "--array-limit", 2, "--threads", 3]
    args = ["slurm", NK, "--runs", N, "--shards", 4, "--out-dir", d]
    ok(invoke(*args, *first))
    want = sbatch_options(d / "array.sbatch")
    ok(invoke(*_script_command(d, 0), "-q"))
    ok(invoke(*args, "--only-missing"))
    again = sbatch_options(d / "array.sbatch")
    assert again.pop("array") == "1-3%2" and want.pop("array") == "0-3%2"
    assert again == want and want["partition"] == "debug" and want["mem"] == "2G"
    assert "--threads 3" in " ".join(_script_command(d, 1))
    # an option given again wins, and is what a later --only-missing keeps
    ok(invoke(*args, "--only-missing", "--mem", "8G"))
    ok(invoke(*args, "--only-missing"))
    o = sbatch_options(d / "array.sbatch")
    assert o["mem"] == "8G" and o["time"] == "00:10:00" and o["cpus-per-task"] == "3"
    # a damaged record is one line, not a silent default
    (d / "job.json").write_text('{"mem": 4}')
    assert_refused(invoke(*args, "--only-missing"), "job.json", "mem")


def test_slurm_passes_design_and_threads(tmp_path):
    """--design sobol and --threads reach every task's run; the job's run count is the Saltelli design's."""
    from artysim.model import design as design_mod
    from artysim.model.load import load

    d = tmp_path / "job"
    ok(invoke("slurm", NK, "--runs", 64, "--shards", 2, "--out-dir", d, "--design", "sobol", "--threads", 2,
              "--set", "scenario.horizon_days=30"))
    argv = _script_command(d, 1)
    assert argv[argv.index("--design") + 1] == "sobol" and argv[argv.index("--threads") + 1] == "2"
    ok(invoke(*_script_command(d, 0), "-q"))
    shard0 = d / "shards" / shards_mod.shard_name("nk-deal-2023", 0, 2)
    dd = len(load(NK).model.sampled)
    total = design_mod.sobol_runs(design_mod.sobol_base_n(64, dd), dd)
    with xr.open_dataset(shard0, decode_times=False) as ds:
        assert ds.attrs["design"] == "sobol" and int(ds.attrs["runs_total"]) == total
    # the shard written counts as present: only shard 1 is resubmitted, still with the design
    r = ok(invoke("slurm", NK, "--runs", 64, "--shards", 2, "--out-dir", d, "--set", "scenario.horizon_days=30",
                  "--only-missing"))
    assert "1 of 2 shards" in r.stdout
    argv = _script_command(d, 1)
    assert argv[argv.index("--design") + 1] == "sobol"


def test_slurm_refusals(tmp_path):
    d = tmp_path / "job"
    ok(invoke("slurm", NK, "--runs", N, "--shards", 4, "--out-dir", d))
    before = {p: p.read_bytes() for p in d.glob("*.sbatch")}
    assert_refused(invoke("slurm", NK, "--runs", N, "--shards", 4, "--out-dir", d), str(d), "--only-missing")
    assert {p: p.read_bytes() for p in d.glob("*.sbatch")} == before
    # --only-missing with another scenario file than the job's
    other = tmp_path / "other.toml"
    other.write_text(NK.read_text().replace("trajectory_sample = 100", "trajectory_sample = 99"))
    assert_refused(invoke("slurm", other, "--runs", N, "--shards", 4, "--out-dir", d, "--only-missing"),
                   "different scenario")
    # --only-missing where there is no job
    assert_refused(invoke("slurm", NK, "--runs", N, "--shards", 4, "--out-dir", tmp_path / "none",
                          "--only-missing"), "no job")
    assert_refused(invoke("slurm", NK, "--runs", 3, "--shards", 4, "--out-dir", tmp_path / "j2"), "--shards")
    for bad in (["--runs", "0", "--shards", "1"], ["--runs", "10", "--shards", "0"]):
        r = invoke("slurm", NK, *bad, "--out-dir", tmp_path / "j3")
        assert r.exit_code == 2 and "Traceback" not in r.output
    assert not (tmp_path / "j2").exists() and not (tmp_path / "j3").exists()


def _script_command(d: Path, k: int) -> list[str]:
    """The artysim command line array.sbatch runs for task ``k`` (arguments after ``-m artysim.cli``)."""
    import shlex

    text = (d / "array.sbatch").read_text()
    assigns = [line for line in text.splitlines() if re.match(r"[A-Z_]+=", line) and not line.startswith("K=")]
    run_line = next(line for line in text.splitlines() if " -m artysim.cli run " in line)
    # evaluate the assignments (SHARDS_DIR=, OUT=) as the shell would, for SLURM_ARRAY_TASK_ID=k
    out = subprocess.run(["bash", "-c", f'K={k}; {"; ".join(assigns)}; printf %s "$OUT"'], check=True,
                         capture_output=True, text=True).stdout
    argv = shlex.split(run_line.replace('"$K"', str(k)).replace('"$OUT"', shlex.quote(out)))
    i = argv.index("-m")
    assert argv[0] == sys.executable and argv[i + 1] == "artysim.cli"
    return argv[i + 2:]


@pytest.mark.parametrize("change, needle", [
    (["--set", "source.north_korea.dud_rate=0.3"], "--set"),
    (["--seed", "99"], "--seed"),
    (["--runs", str(N + 1)], "--runs"),
    (["--shards", "5"], "--shards"),
])
def test_slurm_only_missing_refuses_another_job(tmp_path, change, needle):
    """Completing a job with other options would leave shards of two jobs in DIR/shards (the merge
    job would then fail on overlapping runs or mixed seeds, or silently redo every shard)."""
    d = tmp_path / "job"
    args = ["slurm", NK, "--runs", N, "--shards", 4, "--out-dir", d]
    ok(invoke(*args))
    ok(invoke(*_script_command(d, 0), "-q"))
    before = {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()}
    # (a repeated option: its last value counts)
    assert_refused(invoke(*args, *change, "--only-missing"), "different job", needle)
    assert {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()} == before
    # with the job's own options it goes on
    ok(invoke(*args, "--only-missing"))
    assert sbatch_options(d / "array.sbatch")["array"] == "1-3"


def test_slurm_only_missing(tmp_path, single):
    d = tmp_path / "job"
    args = ["slurm", NK, "--runs", N, "--shards", 4, "--out-dir", d, *SETS]
    ok(invoke(*args))
    for k in (0, 1, 3):  # what the array tasks would run, in-process
        argv = _script_command(d, k)
        assert "--skip-valid" in argv and " ".join(SETS) in " ".join(argv)
        ok(invoke(*argv, "-q"))
    assert leftovers(d / "shards") == [shards_mod.shard_name("nk-deal-2023", k, 4) for k in (0, 1, 3)]
    r = ok(invoke(*args, "--only-missing"))
    assert "1 of 4 shards" in r.stdout
    assert sbatch_options(d / "array.sbatch")["array"] == "2"
    assert "--dependency=afterok:" in (d / "submit.sh").read_text()

    ok(invoke(*_script_command(d, 2), "-q"))
    stamps = {p.name: (p.read_bytes(), _age(p)) for p in d.iterdir() if p.is_file()}
    r = ok(invoke(*args, "--only-missing"))
    assert "all 4 shards" in r.stdout and "present" in r.stdout
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in d.iterdir() if p.is_file()} == stamps
    # and the merge the job would run gives the single run
    merged = d / "nk-deal-2023.nc"
    assert str(merged) in r.stdout
    ok(invoke("merge", "-o", merged, d / "shards"))
    assert_same_results(merged, single, ignore_attrs=(*MERGE_ONLY_ATTRS, "scenario_file"))


def test_slurm_array_script_runs_a_task(tmp_path, single):
    """array.sbatch itself, run by bash as a SLURM task would (no scheduler), writes its shard."""
    d = tmp_path / "job"
    ok(invoke("slurm", NK, "--runs", 200, "--shards", 2, "--out-dir", d, *SETS))
    env = {k: v for k, v in os.environ.items() if k not in SLURM_VARS}
    env |= {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2",
            "NUMBA_CACHE_DIR": str(cache.CACHE_DIR.parent)}  # the warm cache
    p = subprocess.run(["bash", str(d / "array.sbatch")], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    shard = d / "shards" / shards_mod.shard_name("nk-deal-2023", 1, 2)
    with xr.open_dataset(shard, decode_times=False) as ds:
        assert (ds.attrs["run_start"], ds.attrs["run_stop"], ds.attrs["shard"], ds.attrs["shards"]) == (100, 200, 1, 2)
    # a requeued task finds its shard and does nothing
    mtime = _age(shard)
    p = subprocess.run(["bash", str(d / "array.sbatch")], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0 and "nothing to do" in p.stderr, p.stderr
    assert shard.stat().st_mtime_ns == mtime


# -- many shards ------------------------------------------------------------------------------------------

@pytest.mark.slow  # 200 shard files written (~30 CPU-s): .ci/run runs it with -m slow
def test_merge_of_200_tiny_shards(tmp_path):
    """200 one-run shards merge into the single run; the merge opens one file at a time."""
    n = k = 200
    sets = ["output.trajectory_sample=50", "scenario.horizon_days=90"]
    d = tmp_path / "shards"
    d.mkdir()
    t0 = time.perf_counter()
    single = runner.run(str(NK), sets=sets, runs=n, output=tmp_path / "single.nc", quiet=True, threads=1)
    for i in range(k):
        runner.run(str(NK), sets=sets, runs=n, shard=i, shards=k, output=d / shards_mod.shard_name("nk", i, k),
                   quiet=True, threads=1)
    t1 = time.perf_counter()
    out = tmp_path / "merged.nc"
    r = ok(invoke("merge", "-o", out, d))
    t2 = time.perf_counter()
    print(f"\n200 shards: written in {t1 - t0:.1f} s, merged in {t2 - t1:.2f} s")
    assert f"wrote {out}" in r.stdout
    assert_same_results(out, single)
    assert t2 - t1 < 60
