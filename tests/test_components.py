"""Production limited by its scarcest component (``components``, SPEC §7).

Truth not written here: closed forms of deterministic lines (daily_cv = 0 and whole rounds a day, so
the stochastic rounding floor(x + U) of an integer x is x), conservation of component units
(tests/invariants.py), shard-merge identity, and the streams keyed by name (adding a component line
changes no other draw)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from invariants import check_components, check_dataset, check_run_outputs
from support import assert_refused, header, simulate

from artysim.cli import main
from artysim.results.reader import open_file

T = 150


def _scn(components: str, *, base: str = "1", horizon: int = T, extra: str = "") -> str:
    return header(horizon, sample=2) + f"""
[demand]
base = {base}

[[source]]
name = "plant"
kind = "production"
components = [{components}]
""" + extra


def _checked(text: str, runs: int, seed: int = 7):
    s = simulate(text, runs, seed=seed)
    check_run_outputs(s.model, s.totals, s.per_source)
    s_rec = s.per_source[:, :, 1]  # layout.P_RECEIVED
    check_components(s.model.comp_src, s.model.horizon, s_rec, s.per_component)
    return s


def test_two_deterministic_lines_give_the_slower_ones_output():
    """120 and 60 units a day (43,800 and 21,900 a year), no initial inventory: 60 shells a day are
    assembled, the faster line's surplus grows by 60 a day, and the slower line binds every day."""
    s = _checked(_scn('{ name = "body", annual = 43800 }, { name = "fuze", annual = 21900 }'), 5)
    assert (s.src("plant", "received") == 60 * T).all()
    assert (s.comp("plant.body", "produced") == 120 * T).all()
    assert (s.comp("plant.body", "final") == 60 * T).all()
    assert (s.comp("plant.fuze", "final") == 0).all()
    assert (s.comp("plant.fuze", "bound") == T).all()
    assert (s.comp("plant.body", "bound") == 0).all()


def test_an_initial_inventory_is_consumed_exactly():
    """Fuzes only from an inventory of 1,000, bodies at 10 a day: 10 a day are assembled for 100 days
    (day 99 both inventories reach 10: both bind), then none; 1,000 shells in all, 500 bodies left."""
    s = _checked(_scn('{ name = "body", annual = 3650 }, { name = "fuze", initial = 1000 }'), 4)
    assert (s.src("plant", "received") == 1000).all()
    assert (s.comp("plant.fuze", "initial") == 1000).all() and (s.comp("plant.fuze", "final") == 0).all()
    assert (s.comp("plant.body", "final") == 10 * T - 1000).all()
    assert (s.comp("plant.body", "bound") == 100).all()  # days 0..99
    assert (s.comp("plant.fuze", "bound") == T - 100 + 1).all()  # day 99 (a tie) and days 100..T-1


def test_a_ramp_makes_the_triangular_number():
    """A ramp from 0 to 365 T a year makes t units on day t (rate exactly t): T (T - 1) / 2 over the
    horizon; with an ample second line that is also the assembled output."""
    s = _checked(_scn(f'{{ name = "body", annual = 0, annual_end = {365 * T} }}, '
                      f'{{ name = "fuze", initial = 1e9 }}'), 3)
    assert (s.comp("plant.body", "produced") == T * (T - 1) // 2).all()
    assert (s.src("plant", "received") == T * (T - 1) // 2).all()


def test_noisy_lines_conserve_units_and_match_their_mean():
    """Random lines (daily_cv > 0, a sampled annual, disruptions) keep every invariant; the mean units a
    line makes with daily_cv (mean-one noise) match annual / 365 x T within 4 Monte Carlo SEs."""
    runs = 200
    s = _checked(_scn('{ name = "body", annual = 36500, daily_cv = 0.3 }, '
                      '{ name = "fuze", annual = { dist = "uniform", low = 20000, high = 40000 }, daily_cv = 0.5, '
                      'initial = 300 }', base="50",
                      extra="disruptions = { per_year = 0.0001, cut = 0.5, days = 5 }\n"), runs, seed=11)
    made = s.comp("plant.body", "produced").astype(float)
    se = made.std(ddof=1) / np.sqrt(runs)
    assert abs(made.mean() - 100 * T) < 4 * se + 1e-9, (made.mean(), se)
    assert "source.plant.components.fuze.annual" in [s.model.params[i].path for i in s.model.sampled]


def test_adding_a_line_changes_no_other_draw():
    """The body line's noise is on its own stream, keyed by its name: adding a third line (an ample
    inventory, so nothing binds differently) leaves the body and fuze lines' units made run for run."""
    two = '{ name = "body", annual = 36500, daily_cv = 0.4 }, { name = "fuze", annual = 30000, daily_cv = 0.4 }'
    a = simulate(_scn(two), 50, seed=3)
    b = simulate(_scn(two + ', { name = "fill", initial = 1e9 }'), 50, seed=3)
    for line in ("plant.body", "plant.fuze"):
        np.testing.assert_array_equal(a.comp(line, "produced"), b.comp(line, "produced"))
    np.testing.assert_array_equal(a.src("plant", "received"), b.src("plant", "received"))


def test_file_merge_and_summary_carry_components(tmp_path):
    """Written, merged from two shards (equal to the single file), checked and summarised."""
    scn = tmp_path / "c.toml"
    scn.write_text(_scn('{ name = "body", annual = 36500, daily_cv = 0.3 }, '
                        '{ name = "fuze", annual = 30000, daily_cv = 0.3, initial = 100 }', base="80", horizon=60)
                   + "\n[run]\nruns = 40\nseed = 2\n")
    r = CliRunner()
    one, s0, s1, merged = (tmp_path / n for n in ("one.nc", "s0.nc", "s1.nc", "m.nc"))
    for args in (["-o", one], ["-o", s0, "--shard", "0", "--shards", "2"], ["-o", s1, "--shard", "1", "--shards", "2"]):
        res = r.invoke(main, ["run", str(scn), "--quiet", *map(str, args)])
        assert res.exit_code == 0, res.output
    res = r.invoke(main, ["merge", "-o", str(merged), str(s0), str(s1)])
    assert res.exit_code == 0, res.output
    a, b = open_file(one), open_file(merged)
    assert list(a["component"].values) == ["plant.body", "plant.fuze"]
    for v in ("component_initial", "component_produced", "component_final", "component_bound_days"):
        np.testing.assert_array_equal(a[v].values, b[v].values)
    check_dataset(a)
    res = r.invoke(main, ["summary", str(merged), "--format", "json"])
    assert res.exit_code == 0, res.output
    import json

    comps = json.loads(res.stdout)["components"]
    assert [c["name"] for c in comps] == ["plant.body", "plant.fuze"]
    bound = np.asarray(a["component_bound_days"].values, dtype=float).mean(axis=0)
    assert comps[1]["bound_days"][0] == pytest.approx(bound[1])
    res = r.invoke(main, ["summary", str(merged)])
    assert "plant.fuze" in res.stdout and "days bound" in res.stdout


def test_scenarios_without_components_have_no_component_dimension(tmp_path):
    scn = tmp_path / "p.toml"
    scn.write_text(header(20) + '\n[demand]\nbase = 5\n\n[[source]]\nname = "p"\nkind = "production"\n'
                   'annual = 3650\n\n[run]\nruns = 5\n')
    res = CliRunner().invoke(main, ["run", str(scn), "--quiet", "-o", str(tmp_path / "p.nc")])
    assert res.exit_code == 0, res.output
    ds = open_file(tmp_path / "p.nc")
    assert "component" not in ds.dims and "component_final" not in ds


BAD = [
    ('{ name = "body", annual = 3650 }, { name = "fuze" }', "", "source[0].components[1].annual"),
    ('{ name = "body", annual = 0, initial = 0 }', "", "source[0].components[0].annual"),
    ('{ name = "fuze", annual = 3650 }, { name = "fuze", initial = 9 }', "", "source[0].components[1].name"),
    ('{ name = "body", annual = 3650 }', "annual = 3650\n", "source[0].annual"),
    ('{ name = "body", annual = 3650 }', "daily_cv = 0.1\n", "source[0].daily_cv"),
]


@pytest.mark.parametrize("comps,extra,path", BAD)
def test_bad_components_are_refused_naming_the_key(tmp_path, comps, extra, path):
    scn = tmp_path / "bad.toml"
    scn.write_text(_scn(comps, extra=extra))
    out = tmp_path / "bad.nc"
    res = CliRunner().invoke(main, ["run", str(scn), "-o", str(out), "--runs", "2"])
    assert_refused(res, path)
    assert not out.exists()


def test_components_on_a_stockpile_are_refused(tmp_path):
    scn = tmp_path / "bad.toml"
    scn.write_text(header(10) + '\n[demand]\nbase = 1\n\n[[source]]\nname = "d"\nkind = "stockpile"\n'
                   'initial = 10\ncomponents = [{ name = "body", initial = 5 }]\n')
    res = CliRunner().invoke(main, ["validate", str(scn)])
    assert_refused(res, "source[0].components", "production")
