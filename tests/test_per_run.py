"""``[output] per_run`` (issue 16 §3): a results file keeping only some per-run variables. What it keeps
equals the full file's, run by run; shards of it merge into the single run; the reading commands work
for what is kept and refuse, naming the variable, what needs a dropped one.
"""

from __future__ import annotations

import json
import shutil

import netCDF4
import numpy as np
import pytest
from click.testing import CliRunner
from fingerprint import differences, fingerprint
from support import assert_refused

from artysim.analysis import compare
from artysim.cli import main
from artysim.jobs import resources
from artysim.jobs import run as runner
from artysim.model.load import load
from artysim.results import schema
from artysim.results.reader import open_results
from artysim.results.shards import shard_name

NK = "nk-deal-2023"
N = 400
KEEP = ["parameters", "first_shortage_day", "fired_total", "received"]
SET = f"output.per_run={json.dumps(KEEP)}"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("perrun")
    full = runner.run(NK, runs=N, seed=3, output=d / "full.nc", quiet=True)
    kept = runner.run(NK, sets=[SET], runs=N, seed=3, output=d / "kept.nc", quiet=True)
    return full, kept


def test_keeps_exactly_the_chosen_variables_with_the_full_files_values(files):
    full, kept = files
    with netCDF4.Dataset(full) as f, netCDF4.Dataset(kept) as k:
        per_run = {v.name for v in schema.PER_RUN}
        assert {n for n in k.variables if n in per_run} == set(KEEP)
        assert k.getncattr(schema.KEPT_ATTR) == " ".join(KEEP)
        assert schema.KEPT_ATTR not in f.ncattrs()  # the default writes every variable, as before
        for name in k.variables:  # kept per-run variables, coordinates and every per-day statistic
            assert np.array_equal(np.asarray(k[name][:]), np.asarray(f[name][:])), name


def test_shards_of_a_kept_file_merge_into_its_single_run(tmp_path, files):
    _, kept = files
    for i in range(3):
        runner.run(NK, sets=[SET], runs=N, seed=3, output=tmp_path / shard_name("nk", i, 3), quiet=True,
                   shard=i, shards=3)
    r = invoke("merge", "-o", tmp_path / "m.nc", *[tmp_path / shard_name("nk", i, 3) for i in range(3)])
    assert r.exit_code == 0, r.output
    a, b = fingerprint(tmp_path / "m.nc"), fingerprint(kept)
    a["attrs"].pop("merged_from")
    assert differences(a, b) == []
    shards = tmp_path / "shards"
    shards.mkdir()
    for i in range(3):
        shutil.move(tmp_path / shard_name("nk", i, 3), shards)
    with open_results(str(shards)) as ds, open_results(kept) as one:  # shards read lazily as one dataset
        assert set(KEEP) <= set(ds.data_vars)
        for name in KEEP:
            assert np.array_equal(ds[name].values, one[name].values, equal_nan=True), name


def test_statistics_and_sensitivity_of_what_is_kept(files):
    full, kept = files
    stats = ["--stat", "mean(fired_total)", "--stat", "p_any_shortage", "--stat", "mean(received:north_korea)",
             "--stat", "quantile(first_shortage_day, 0.25)"]
    outs = []
    for f in (full, kept):
        r = invoke("summary", f, *stats)
        assert r.exit_code == 0, r.output
        outs.append(r.output)
    assert outs[0] == outs[1]  # same numbers from the kept variables
    sens = [invoke("sensitivity", f, "--format", "json") for f in (full, kept)]
    assert sens[0].exit_code == 0 and sens[1].exit_code == 0
    assert json.loads(sens[0].output) == json.loads(sens[1].output)


def test_pairing_of_kept_files(files):
    full, kept = files
    with open_results(full) as a, open_results(kept) as b:
        paired, why = compare.pairing(a, b)
    assert paired, why


@pytest.mark.parametrize("args, needles", [
    (["summary", "{kept}"], ["the summary needs the per-run variables demand_total", "keeps parameters"]),
    (["summary", "{kept}", "--stat", "mean(effective_total)"], ["unknown variable 'effective_total'"]),
    (["sensitivity", "{kept}", "--outcome", "fill_rate"], ["--outcome fill_rate needs the per-run variable"]),
    (["sensitivity", "{kept}", "--outcome", "shortfall_total"], ["shortfall_total", "does not keep"]),
    (["compare", "{full}", "{kept}"], ["compare (file B) needs the per-run variables effective_total"]),
    (["plot", "{kept}", "--kind", "sources", "-o", "{png}"], ["per-run variable", "does not keep"]),
])
def test_what_needs_a_dropped_variable_is_refused(files, tmp_path, args, needles):
    full, kept = files
    argv = [a.format(full=full, kept=kept, png=tmp_path / "p.png") for a in args]
    assert_refused(invoke(*argv), *needles)
    assert not (tmp_path / "p.png").exists()


def test_run_prints_why_there_is_no_summary(tmp_path):
    r = invoke("run", NK, "--runs", 50, "--set", SET, "-o", tmp_path / "r.nc")
    assert r.exit_code == 0, r.output
    assert "(no summary: [output] per_run does not keep demand_total" in r.output


def test_estimate_of_the_file_shrinks_with_what_is_kept():
    a = resources.estimate(load(runner.resolve(NK)).model, 10**6, 2, 1 << 17)
    b = resources.estimate(load(runner.resolve(NK), [SET]).model, 10**6, 2, 1 << 17)
    assert b.file < a.file / 2


def test_crafted_kept_attribute_refused(tmp_path, files):
    _, kept = files
    bad = tmp_path / "bad.nc"
    shutil.copy(kept, bad)
    with netCDF4.Dataset(bad, "a") as nc:
        nc.setncattr(schema.KEPT_ATTR, "parameters nonsense")
    assert_refused(invoke("summary", bad), "per_run_variables", "not a list of distinct per-run variables")
