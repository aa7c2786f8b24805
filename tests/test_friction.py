"""Friction an analyst meets in the commands (issue 15 section 4): overrides blamed by name, warnings
for inputs that look like a unit mistake, the policy switch a sweep needs."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from support import assert_refused

from artysim.cli import main
from artysim.errors import ScenarioError
from artysim.jobs.bundled import resolve
from artysim.model import sanity
from artysim.model.load import load

NK = str(resolve("nk-deal-2023"))


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


# -- --set errors name the override and the source by name ------------------------------------------

@pytest.mark.parametrize("item, needle", [
    ("source.domestic.dud_rat=0.1", "--set source.domestic.dud_rat=0.1: source.domestic.dud_rat: unknown key"),
    ("source.north_korea.dud_rate=2", "--set source.north_korea.dud_rate=2: source.north_korea.dud_rate"),
    ("demand.daily_cv=-1", "--set demand.daily_cv=-1: demand.daily_cv"),
])
def test_set_error_names_the_override_and_the_source(item, needle):
    r = invoke("validate", NK, "--set", item)
    line = assert_refused(r, needle, f"(in {NK})")
    assert "source[" not in line  # the source by its name, as --set spells it


def test_the_override_at_fault_is_blamed_not_the_first():
    with pytest.raises(ScenarioError) as e:
        load(NK, ["demand.daily_cv=0.3", "source.domestic.dud_rate=1.5", "demand.base=1000"])
    assert str(e.value).startswith("--set source.domestic.dud_rate=1.5: source.domestic.dud_rate:")


def test_a_bad_file_is_still_blamed_on_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(open(NK).read().replace("daily_cv = 0.25", "daily_cv = -0.25", 1))
    assert "daily_cv = -0.25" in bad.read_text()
    with pytest.raises(ScenarioError) as e:
        load(bad, ["demand.base=1000"])
    assert str(e.value).startswith(f"{bad}: demand.daily_cv")


# -- unit sanity: warnings that do not refuse ---------------------------------------------------------

def test_bundled_scenarios_raise_no_unit_warning():
    from artysim.jobs.bundled import bundled

    assert len(bundled()) >= 6
    for path in bundled():
        assert sanity.warnings(load(path).scenario) == [], path


def test_yearly_demand_entered_as_daily_warns_in_validate():
    r = invoke("validate", NK, "--set", "demand.base=7.7e6")
    assert r.exit_code == 0, r.output
    warn = [x for x in r.stderr.splitlines() if x.startswith("artysim: warning: demand.base")]
    assert len(warn) == 1 and "7.7 M rounds/day" in warn[0] and "yearly" in warn[0], r.stderr
    # the bound is the sources' own: stock + production over the horizon + what the supplier holds, each
    # at its 99th percentile (the nk-deal inputs give about 52 k rounds/day over 365 days)
    assert "at most 52.3 k rounds/day" in warn[0]


def test_daily_production_entered_as_yearly_warns_in_run(tmp_path):
    out = tmp_path / "r.nc"
    r = invoke("run", NK, "--runs", 5, "-o", out, "-q", "--set", "source.domestic.annual=20000")
    assert r.exit_code == 0 and out.is_file()  # a warning, not a refusal
    assert "artysim: warning: source.domestic.annual: at most 20 k rounds/year" in r.stderr, r.stderr
    assert "daily figure entered as rounds/year" in r.stderr


def test_run_until_warns_too(tmp_path):
    r = invoke("run", NK, "--until", "se(p_any_shortage) <= 0.5", "--runs", 4, "-o", tmp_path / "u.nc", "-q",
               "--set", "demand.base=7.7e6")
    assert r.exit_code == 0 and "artysim: warning: demand.base" in r.stderr, r.output


def test_plausible_inputs_stay_silent():
    r = invoke("validate", NK, "--set", "demand.base=30000")
    assert r.exit_code == 0 and "warning" not in r.stderr


# -- a priority order may stay in the file while the policy is proportional ---------------------------

def test_order_is_kept_with_proportional_and_still_checked():
    order = 'policy.order=["north_korea", "domestic", "refurbished", "stockpile"]'
    loaded = load(NK, [order])
    assert loaded.scenario.policy.issue == "proportional"
    assert any(w.startswith("policy.order: not used") for w in sanity.warnings(loaded.scenario))
    with pytest.raises(ScenarioError, match="policy.order: must name every source"):
        load(NK, ['policy.order=["north_korea"]'])


# -- a cold start says what is happening ----------------------------------------------------------------

def test_first_run_says_it_compiles_once(tmp_path, monkeypatch):
    from artysim.jobs import run as runner

    monkeypatch.setattr(runner, "cache_is_cold", lambda: True)
    r = invoke("run", NK, "--runs", 5, "-o", tmp_path / "a.nc")
    assert r.exit_code == 0, r.output
    assert "compiling the simulation core" in r.stderr and "once" in r.stderr
    monkeypatch.setattr(runner, "cache_is_cold", lambda: False)
    r = invoke("run", NK, "--runs", 5, "-o", tmp_path / "b.nc")
    assert r.exit_code == 0 and "compiling" not in r.stderr


# -- help that stands on its own ------------------------------------------------------------------------

def test_bare_artysim_prints_help_and_exits_0():
    r = CliRunner().invoke(main, [])
    assert r.exit_code == 0 and "Commands:" in r.stdout and "artysim run nk-deal-2023" in r.stdout


def test_help_is_complete_on_an_installed_wheel():
    """The command list gives whole first sentences (click cut them mid-sentence), and no --help points to
    the README or to docs/ files, which an installed wheel does not have."""
    top = CliRunner().invoke(main, ["--help"])
    assert top.exit_code == 0 and "..." not in top.stdout.split("Commands:")[1]
    for name, cmd in main.commands.items():
        first = cmd.get_short_help_str(limit=400)
        assert first.endswith("."), (name, first)
        assert " ".join(first.split())[:60] in " ".join(top.stdout.split()), name
        r = CliRunner().invoke(main, [name, "--help"])
        assert r.exit_code == 0, name
        assert "README" not in r.stdout and "docs/" not in r.stdout, name
