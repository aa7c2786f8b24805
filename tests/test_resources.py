"""Resource guard: refusal logic (memory, disk, 64-bit counts), the override flag, and the estimate
against measured peak RSS and file size on small runs.

Stated accuracy (benchmarks/resources.py, 2 cores, numba 0.68): the memory estimate is 1.2-1.45x the
measured peak RSS and the file estimate 1.3-2.1x the real size, never below; the test allows
[1.0, 1.8] and [1.0, 3.0] (a refusal must not come from an estimate that is too low, and an
estimate far too high would refuse runs that fit).
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import assert_refused, leftovers

from artysim.cli import main
from artysim.core import bins, layout
from artysim.errors import ArtysimError
from artysim.jobs import resources
from artysim.jobs import run as runner
from artysim.model import load as loading

REPO = Path(__file__).resolve().parent.parent
NK = REPO / "configs" / "nk-deal-2023.toml"


def _bench():
    """benchmarks/resources.py as a module (not on the import path)."""
    spec = importlib.util.spec_from_file_location("artysim_bench_resources", REPO / "benchmarks" / "resources.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _model(name: str = "nk-deal-2023", sets=()):
    return loading.load(runner.resolve(name), list(sets)).model


def test_refuses_when_memory_is_short(tmp_path):
    m = _model()
    est = resources.estimate(m, 1000, 2, 1000)
    resources.check(m, 1000, 2, 1000, tmp_path / "r.nc", memory=est.memory + 1, disk=est.file + 1)  # fits
    with pytest.raises(ArtysimError) as e:
        resources.check(m, 1000, 2, 1000, tmp_path / "r.nc", memory=est.memory - 1, disk=10**15)
    msg = str(e.value)
    assert "memory" in msg and resources.human(est.memory) in msg and "--no-resource-check" in msg


def test_refuses_when_disk_is_short(tmp_path):
    m = _model()
    est = resources.estimate(m, 1000, 2, 1000)
    with pytest.raises(ArtysimError) as e:
        resources.check(m, 1000, 2, 1000, tmp_path / "r.nc", memory=10**15, disk=est.file - 1)
    msg = str(e.value)
    assert resources.human(est.file) in msg and str(tmp_path) in msg and "--no-resource-check" in msg


def test_long_horizons_blame_threads_many_runs_blame_shards(tmp_path):
    long = _model(sets=["scenario.horizon_days=20000"])
    with pytest.raises(ArtysimError, match="a shorter horizon or fewer --threads"):
        resources.check(long, 100, 8, 100, tmp_path / "r.nc", memory=10**9, disk=10**15)
    short = _model(sets=["scenario.horizon_days=30"])
    est = resources.estimate(short, 10**8, 1, 1 << 17)
    with pytest.raises(ArtysimError, match="fewer runs per shard"):
        resources.check(short, 10**8, 1, 1 << 17, tmp_path / "r.nc", memory=est.memory - 1, disk=10**15,
                        summary=False)


def test_estimate_follows_the_per_thread_histograms():
    """Each extra thread adds its T x (4 + sources + 1) x NBINS int32 day histograms (the totals, stock by
    source, days of fire on hand) and its block state."""
    m = _model(sets=["scenario.horizon_days=1000"])
    one, two = resources.estimate(m, 5000, 1, 5000), resources.estimate(m, 5000, 2, 5000)
    hist = 1000 * (layout.N_DAILY + len(m.kinds) + 1) * bins.NBINS * 4
    assert two.memory - one.memory == hist + len(m.kinds) * layout.BLOCK * m.ring * 16


def test_cli_refusal_names_the_estimate_and_the_flag(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: 50 * 2**20)
    line = assert_refused(invoke("run", NK, "--runs", "100", "-o", tmp_path / "r.nc", "-q"),
                          "of memory", "only 52.4 MB", "--no-resource-check")
    assert "about" in line
    assert leftovers(tmp_path) == []
    r = invoke("run", NK, "--runs", "100", "-o", tmp_path / "r.nc", "-q", "--no-resource-check")
    assert r.exit_code == 0, r.output
    assert leftovers(tmp_path) == ["r.nc"]


def test_cli_disk_refusal(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "free_disk", lambda folder: 1000)
    assert_refused(invoke("run", NK, "--runs", "100", "-o", tmp_path / "r.nc", "-q"), "results file will take",
                   "1.0 KB is free", str(tmp_path))
    assert leftovers(tmp_path) == []


def test_available_memory_is_positive_here():
    mem = resources.available_memory()
    assert mem is None or mem > 0


def test_validate_prints_the_estimate():
    r = invoke("validate", "nk-deal-2023")
    assert r.exit_code == 0, r.output
    assert "10000 runs on" in r.stdout and "of memory" in r.stdout and "of disk" in r.stdout


# ----------------------------------------------------------------------------- 64-bit counts


@pytest.mark.parametrize("name", ["baseline-2023", "nk-deal-2023"])
def test_bundled_scenarios_are_far_from_overflow(name):
    resources.check_magnitudes(_model(name), 10**9)
    m = resources.magnitudes(_model(name))
    assert max(m.values()) < 1e12  # rounds: a million times below the limit per run


def test_sums_over_many_runs_are_guarded(tmp_path):
    text = (REPO / "configs" / "nk-deal-2023.toml").read_text()
    loaded = loading.loads(text, ["source.stockpile.initial=9e12"])
    model = loaded.model
    resources.check_magnitudes(model, 1000)
    with pytest.raises(ArtysimError, match="per-day sums over runs"):
        resources.check_magnitudes(model, 10**7)


# ----------------------------------------------------------------------------- against reality


@pytest.mark.parametrize("runs, horizon", [(2000, None), (300, 1825)])
def test_estimate_within_the_stated_factor_of_measured(tmp_path, runs, horizon):
    bench = _bench()
    est = bench.estimated("nk-deal-2023", runs, horizon, 2)
    try:
        rss, size = bench.measure("nk-deal-2023", runs, horizon, 2, tmp_path)
    except (subprocess.CalledProcessError, FileNotFoundError) as e:  # pragma: no cover
        pytest.fail(f"benchmark run failed: {e}")
    assert 1.0 <= est.memory / rss <= 1.8, (est.memory, rss)
    assert 1.0 <= est.file / size <= 3.0, (est.file, size)


def test_overflow_guard_is_not_skipped_by_the_override(tmp_path):
    """--no-resource-check skips the memory and disk checks only: counts that could overflow stay refused."""
    scn = tmp_path / "s.toml"
    scn.write_text(NK.read_text())
    r = invoke("run", scn, "--runs", "10", "-o", tmp_path / "r.nc", "-q", "--no-resource-check",
               "--set", "demand.base=1e13", "--set", "demand.daily_cv=10")
    # such a demand also draws the unit-sanity warning (model/sanity.py) before the refusal
    lines = [x for x in r.output.splitlines() if x and not x.startswith("artysim: warning:")]
    assert r.exit_code == 2 and len(lines) == 1 and "overflow" in lines[0] and "Traceback" not in r.output, r.output
    assert leftovers(tmp_path) == ["s.toml"]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_cgroup_limit_of_a_slurm_job_is_found(tmp_path, version):
    """A SLURM job's memory limit sits on its own cgroup (or an ancestor), not on the root's."""
    root = tmp_path / "cgroup"
    job = "slurm/uid_0/job_42/step_0"
    if version == "v2":
        proc = "0::/" + job + "\n"
        base, lim, used = root, "memory.max", "memory.current"
    else:
        proc = "9:cpu,cpuacct:/x\n4:memory:/" + job + "\n1:name=systemd:/y\n"
        base, lim, used = root / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes"
    d = base / job
    d.mkdir(parents=True)
    (d / lim).write_text("max\n" if version == "v2" else "9223372036854771712\n")  # the step: no limit
    (d / used).write_text("100\n")
    (d.parent / lim).write_text(f"{4 * 2**30}\n")  # the job: 4 GiB
    (d.parent / used).write_text(f"{2**30}\n")
    (base / lim).write_text(f"{64 * 2**30}\n")  # the node slice: 64 GiB
    (base / used).write_text(f"{10 * 2**30}\n")
    (tmp_path / "cgroup.txt").write_text(proc)
    assert resources.cgroup_room(root, tmp_path / "cgroup.txt") == 3 * 2**30


def test_no_cgroup_limit(tmp_path):
    (tmp_path / "cgroup.txt").write_text("0::/\n")
    assert resources.cgroup_room(tmp_path / "none", tmp_path / "cgroup.txt") is None
    assert resources.cgroup_room(tmp_path, tmp_path / "absent.txt") is None
