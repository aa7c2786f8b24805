"""--design sobol: the design rows are SALib's Saltelli design, runs map to rows by index only (shards
and merges see the same design), and Sobol indices from a run rank known drivers right."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from SALib.sample import sobol as salib_sobol
from support import assert_refused, header, load_scenario

from artysim.analysis import sensitivity
from artysim.cli import main
from artysim.errors import ArtysimError
from artysim.jobs import run as runner
from artysim.model import design
from artysim.results.reader import open_file as open_results

# A stockpile that never runs out (initial >> horizon x base), no noise: the final stock is
# initial - horizon x base exactly (whole rounds: base is rounded per day), an additive function of
# two inputs whose variance shares are known in closed form; the dud rate changes nothing in it.
HORIZON = 100
ADDITIVE = header(HORIZON, name="additive") + """
[demand]
base = { dist = "uniform", low = 1000, high = 2000 }
daily_cv = 0

[[source]]
name = "depot"
kind = "stockpile"
initial = { dist = "uniform", low = 1000000, high = 1173205 }
dud_rate = { dist = "uniform", low = 0, high = 0.2 }
"""
# Var(initial) = w^2/12 with w = 173205; Var(horizon x base) = (100 x 1000)^2 / 12: w^2 = 3 x 10^10,
# so initial carries 3/4 of the variance of stock_final and demand.base 1/4.
S_EXACT = {"demand.base": 0.25, "source.depot.initial": 0.75, "source.depot.dud_rate": 0.0}


def _problem(d: int) -> dict:
    return {"num_vars": d, "names": [f"x{i}" for i in range(d)], "bounds": [[0.0, 1.0]] * d}


@pytest.mark.parametrize("d,n", [(1, 8), (3, 16), (5, 64)])
def test_rows_are_salibs_saltelli_design(d, n):
    seed = 20230913
    want = salib_sobol.sample(_problem(d), n, calc_second_order=False, scramble=True, seed=seed)
    des = design.SobolDesign(d=d, n_base=n, seed=seed)
    assert des.runs == len(want) == n * (d + 2)
    np.testing.assert_array_equal(des.uniforms(0, des.runs), want)
    # any slice (a batch or a shard) is the same rows: the row depends only on the run index
    for r0, m in [(0, 1), (1, d + 2), (d + 1, 2 * d + 7), (des.runs - 3, 3)]:
        np.testing.assert_array_equal(des.uniforms(r0, m), want[r0:r0 + m])
    u = des.uniforms(0, des.runs)
    assert np.all((u > 0) & (u < 1))


def test_runs_round_up_to_power_of_two_base():
    assert design.sobol_base_n(10, 3) == 2  # 10 runs / 5 rows per base point -> N = 2 (10 runs)
    assert design.sobol_base_n(11, 3) == 4  # 3 base points needed -> next power of two
    assert design.sobol_base_n(1, 14) == 1
    assert design.sobol_base_n(3000, 14) == 256  # 188 needed -> 256, i.e. 4096 runs
    assert design.sobol_runs(256, 14) == 4096
    with pytest.raises(ArtysimError, match="at least one sampled parameter"):
        design.sobol_base_n(100, 0)
    with pytest.raises(ArtysimError, match="outside the Sobol design"):
        design.SobolDesign(2, 4, 1).uniforms(10, 10)


def _run(tmp_path, name, text, runs, **kw):
    scn = tmp_path / "additive.toml"
    scn.write_text(text)
    return runner.run(str(scn), runs=runs, seed=99, output=tmp_path / name, quiet=True, design="sobol", **kw)


def test_run_records_design_and_parameters_follow_its_rows(tmp_path):
    out = _run(tmp_path, "s.nc", ADDITIVE, 100)  # 100 runs / 5 -> N = 32 -> 160 runs
    model = load_scenario(ADDITIVE).model
    des = design.SobolDesign(d=3, n_base=32, seed=99)
    with open_results(out) as ds:
        assert ds.sizes["run"] == 160 and int(ds.attrs["runs_total"]) == 160
        assert ds.attrs["design"] == "sobol" and int(ds.attrs["sobol_n"]) == 32 and int(ds.attrs["sobol_d"]) == 3
        params = [str(p) for p in ds.parameter.values]
        assert ds.attrs["sobol_parameters"].split("\n") == params
        x = ds.parameters.values
    u = des.uniforms(0, 160)
    for j, i in enumerate(model.sampled):  # inverse CDF of the design's uniforms, column by column
        np.testing.assert_allclose(x[:, j], model.params[i].dist.ppf(u[:, j]), rtol=1e-12)
    # uniform laws: hand check of one value
    np.testing.assert_allclose(x[:, params.index("demand.base")], 1000 + 1000 * u[:, 0], rtol=1e-12)


def test_shards_merged_equal_single_design_run(tmp_path):
    single = _run(tmp_path, "single.nc", ADDITIVE, 100)
    shards = [_run(tmp_path, f"s{k}.nc", ADDITIVE, 100, shard=k, shards=3) for k in range(3)]
    res = CliRunner().invoke(main, ["merge", "-o", str(tmp_path / "m.nc"), *map(str, shards)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    with open_results(single) as a, open_results(tmp_path / "m.nc") as b:
        for v in ("parameters", "stock_final", "first_shortage_day", "fired_total"):
            np.testing.assert_array_equal(a[v].values, b[v].values)
        for k in ("design", "sobol_n", "sobol_d", "sobol_parameters"):
            assert str(a.attrs[k]) == str(b.attrs[k])
        sa = sensitivity.analyze(a, "stock_final")
        sb = sensitivity.analyze(b, "stock_final")
    assert sa["sobol"]["available"] and sb["sobol"]["available"]
    assert [r["ST"] for r in sa["rows"]] == [r["ST"] for r in sb["rows"]]
    assert [r["ST_conf"] for r in sa["rows"]] == [r["ST_conf"] for r in sb["rows"]]  # seeded bootstrap


def test_merge_refuses_design_and_random_shards_together(tmp_path):
    scn = tmp_path / "additive.toml"
    scn.write_text(ADDITIVE)
    a = runner.run(str(scn), runs=160, seed=99, output=tmp_path / "a.nc", quiet=True, shard=0, shards=2)
    b = _run(tmp_path, "b.nc", ADDITIVE, 160, shard=1, shards=2)
    res = CliRunner().invoke(main, ["merge", "-o", str(tmp_path / "m.nc"), str(a), str(b)])
    assert_refused(res, "cannot merge", "design")


def test_sobol_indices_rank_known_drivers(tmp_path):
    out = _run(tmp_path, "s.nc", ADDITIVE, 1024 * 5)  # N = 1024
    with open_results(out) as ds:
        res = sensitivity.analyze(ds, "stock_final", num_resamples=200, seed=3)
    rows = {r["parameter"]: r for r in res["rows"]}
    assert res["sobol"]["available"]
    for p, s in S_EXACT.items():
        # SALib's *_conf is the 95 % bootstrap half-width (1.96 SE): allow 2 x that, about 4 SE
        for key in ("S1", "ST"):
            assert abs(rows[p][key] - s) <= 2 * rows[p][f"{key}_conf"] + 1e-3, (p, key, rows[p][key],
                                                                                   rows[p][f"{key}_conf"])
    st = sorted(rows, key=lambda p: -rows[p]["ST"])
    assert st == ["source.depot.initial", "demand.base", "source.depot.dud_rate"]
    assert rows["source.depot.dud_rate"]["ST"] <= rows["source.depot.dud_rate"]["ST_conf"] + 1e-6


def test_sobol_needs_the_whole_design(tmp_path):
    shard = _run(tmp_path, "s0.nc", ADDITIVE, 100, shard=0, shards=2)
    with open_results(shard) as ds:
        res = sensitivity.analyze(ds, "stock_final")
    assert not res["sobol"]["available"] and "80 of the design's 160 runs" in res["sobol"]["note"]
    assert "S1" not in res["rows"][0] and np.isfinite(res["rows"][0]["prcc"])  # PRCC still given


def test_cli_design_option(tmp_path):
    scn = tmp_path / "additive.toml"
    scn.write_text(ADDITIVE)
    res = CliRunner().invoke(main, ["run", str(scn), "--runs", "11", "--design", "sobol", "-o",
                                    str(tmp_path / "x.nc")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "20 runs = N 4" in res.stderr  # the mapping of --runs is said
    res = CliRunner().invoke(main, ["run", str(scn), "--design", "lhs", "-o", str(tmp_path / "y.nc")])
    assert_refused(res, "--design")
    fixed = header(10, name="fixed") + """
[demand]
base = 1000
daily_cv = 0

[[source]]
name = "depot"
kind = "stockpile"
initial = 5000
"""
    f = tmp_path / "fixed.toml"
    f.write_text(fixed)
    res = CliRunner().invoke(main, ["run", str(f), "--design", "sobol", "-o", str(tmp_path / "z.nc")])
    assert_refused(res, "at least one sampled parameter")
    assert not (tmp_path / "z.nc").exists()


def test_skip_valid_does_not_take_a_random_shard_for_a_design_shard(tmp_path):
    scn = tmp_path / "additive.toml"
    scn.write_text(ADDITIVE)
    out = tmp_path / "s0.nc"
    runner.run(str(scn), runs=160, seed=99, output=out, quiet=True, shard=0, shards=2)  # same runs, no design
    assert design.file_design(out) == "random"
    args = ["run", str(scn), "--runs", "160", "--seed", "99", "--shard", "0", "--shards", "2", "-o", str(out),
            "--skip-valid", "-q"]
    res = CliRunner().invoke(main, [*args, "--design", "sobol"], catch_exceptions=False)
    assert_refused(res, "not shard 0 of 2", "--force")  # not this shard: replaced only with --force
    assert design.file_design(out) == "random"
    res = CliRunner().invoke(main, [*args, "--design", "sobol", "--force"], catch_exceptions=False)
    assert res.exit_code == 0 and "nothing to do" not in res.stderr
    assert design.file_design(out) == "sobol"  # recomputed with the design
    res = CliRunner().invoke(main, [*args, "--design", "sobol"], catch_exceptions=False)
    assert "already holds shard 0 of 2" in res.stderr  # now it is valid
