"""The resource guard after issue 11 (class 13): the trajectory sample is counted as allocated (rows up to
trajectory_sample however few the runs), the message names what reduces the largest part (never
--shards for goods in transit kept per thread), and merge checks memory and disk before writing."""

from __future__ import annotations

import pytest
from crafted import invoke
from support import assert_refused, leftovers

from artysim.errors import ArtysimError
from artysim.jobs import resources
from artysim.model.load import loads
from artysim.results import merge as mg
from artysim.results import shards as shards_mod

TEXT = """\
[scenario]
name = "guard"
start_date = "2024-01-01"
horizon_days = {T}

[output]
trajectory_sample = {N}

[demand]
base = 1000

[[source]]
name = "old"
kind = "stockpile"
initial = 100000

[[source]]
name = "ship"
kind = "import"
shipments_per_month = 4
shipment_size = 1000
transit_days = {transit}
"""


IMPORT = """
[[source]]
name = "ship{k}"
kind = "import"
shipments_per_month = 4
shipment_size = 1000
transit_days = {transit}
"""


def _model(T=365, N=100, transit=10, imports=0):
    more = "".join(IMPORT.format(k=k, transit=transit) for k in range(imports))
    return loads(TEXT.format(T=T, N=N, transit=transit) + more).model


@pytest.mark.parametrize("T, N, runs", [(3650, 10000, 50), (365, 10000, 1), (1000, 5000, 4999), (200, 100, 10**6),
                                        (3650, 0, 10)])
def test_trajectory_sample_counted_as_allocated(T, N, runs):
    m = _model(T, N)
    part = resources.estimate(m, runs, 2, 1000).memory_parts["trajectory sample"]
    floor = 2 * max(N, 1) * T * 8  # jobs.run's Daily: stock and fired, trajectory_sample rows
    assert part >= floor + 2 * max(min(N, runs), 1) * T * 8
    # a later shard (its runs end at a higher index) holds more of the engine's rows
    later = resources.estimate(m, runs, 2, 1000, run_stop=runs + 10**6).memory_parts["trajectory sample"]
    assert later >= part


def test_measured_case_of_the_issue_is_not_underestimated():
    """benchmarks/resources.py --issue11 measured 1.7 GB for 50 runs of 3650 days with trajectory_sample
    10000 (nk-deal-2023, 2 threads); the estimate must not be below."""
    from artysim.jobs.bundled import resolve
    from artysim.model.load import load

    m = load(resolve("nk-deal-2023"), ["scenario.horizon_days=3650", "output.trajectory_sample=10000"]).model
    est = resources.estimate(m, 50, 2, resources.batch_size_for(3650, 2))
    assert est.memory >= 1.7e9


@pytest.mark.parametrize("threads, transit, imports", [(64, 3000, 20), (8, 20000, 30), (128, 3000, 40)])
def test_goods_in_transit_do_not_suggest_shards(tmp_path, threads, transit, imports):
    m = _model(T=transit, transit=transit, imports=imports)
    est = resources.estimate(m, 100, threads, 100)
    # both per-thread parts (the per-source day histograms now rival the goods in transit): more threads
    # cost memory, more shards do not
    top = max(est.memory_parts, key=est.memory_parts.get)
    assert top in ("goods in transit", "per-thread day histograms"), est.memory_parts
    per_thread = est.memory_parts["goods in transit"] + est.memory_parts["per-thread day histograms"]
    assert per_thread > 0.5 * est.memory, est.memory_parts  # what fewer threads reduce and shards do not
    with pytest.raises(ArtysimError) as e:
        resources.check(m, 100, threads, 100, tmp_path / "r.nc", memory=est.memory - 1, disk=10**15)
    msg = str(e.value)
    assert "fewer --threads" in msg and "--shards does not reduce" in msg, msg


@pytest.mark.parametrize("part, sets, runs, threads", [
    ("merged day histograms", dict(T=20000, N=1), 10, 1),
    ("per-thread day histograms", dict(T=20000, N=1), 10, 16),
    ("run batches", dict(T=2, N=1), 10**8, 1),
])
def test_each_remedy_follows_the_largest_part(tmp_path, part, sets, runs, threads):
    m = _model(**sets)
    est = resources.estimate(m, runs, threads, min(runs, 1 << 17))
    top = max(est.memory_parts, key=est.memory_parts.get)
    assert top == part, est.memory_parts
    with pytest.raises(ArtysimError) as e:
        resources.check(m, runs, threads, min(runs, 1 << 17), tmp_path / "r.nc", memory=est.memory - 1,
                        disk=10**15)
    assert resources.REMEDY[part] in str(e.value)


@pytest.fixture(scope="module")
def files(crafted_files):
    return crafted_files  # made once for the session (conftest.py), read only


def test_merge_estimate_and_check(files, tmp_path, monkeypatch):
    infos = [shards_mod.read_info(p) for p in sorted(files["shards"].iterdir())]
    need, parts = mg.estimate_memory(infos)
    assert need > mg.MERGE_BASE and set(parts) == {"one shard's runs", "per-day counts", "trajectory sample"}
    with pytest.raises(ArtysimError, match="needs about"):
        mg.check_resources(infos, tmp_path / "m.nc", memory=need - 1, disk=None)
    with pytest.raises(ArtysimError, match="is free"):
        mg.check_resources(infos, tmp_path / "m.nc", memory=None, disk=10)
    mg.check_resources(infos, tmp_path / "m.nc", memory=need, disk=10**12)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(mg, "available_memory", lambda: need - 1)
    assert_refused(invoke("merge", "-o", out / "m.nc", files["shards"]), "memory", "--no-resource-check")
    assert leftovers(out) == []
    r = invoke("merge", "-o", out / "m.nc", files["shards"], "--no-resource-check")
    assert r.exit_code == 0, r.output
