"""Scenario fuzzing: every generated document either loads (and simulates sanely) or is refused with a
``ScenarioError`` whose one-line message names the key path; nothing else escapes.

Documents come from ``strategies.scenario_doc`` (valid) and ``strategies.mutated_doc`` (one class of
damage from ``strategies.MUTATIONS`` each). Each is tried as a parsed document and as TOML text.
"""

from __future__ import annotations

import copy
import datetime as dt
import textwrap

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from invariants import check_components, check_run_outputs
from strategies import MUTATIONS, examples, path_str, paths, scenario_doc, to_toml

from artysim.core import layout
from artysim.errors import ArtysimError, ScenarioError
from artysim.jobs import resources
from artysim.jobs import run as runner
from artysim.model import build, scenario
from artysim.model import load as loading

ORIGIN = "fuzz.toml"


def _known_paths(*docs) -> set[str]:
    out = {""}
    for d in docs:
        if isinstance(d, dict):
            out |= {path_str(p) for p in paths(d)}
    return out


def assert_names_path(msg: str, *docs) -> str:
    """The message is one line, ``ORIGIN: PATH: reason``, PATH a key path of the document (or a key
    missing from one of its tables). Returns PATH."""
    assert "\n" not in msg, msg
    assert msg.startswith(ORIGIN + ": "), msg
    rest = msg[len(ORIGIN) + 2:]
    if rest.startswith("(top level): "):
        return ""
    known = _known_paths(*docs)
    for cand in sorted(known, key=len, reverse=True):
        for tail in ("", ".*"):
            if tail == "":
                if cand and rest.startswith(cand + ": "):
                    return cand
            else:  # a key below a known table (a missing key, or the 'dist'/'kind' tag)
                prefix = cand + "." if cand else ""
                head = rest.split(": ", 1)[0]
                if head.startswith(prefix) and "." not in head[len(prefix):] and "[" not in head[len(prefix):]:
                    return head
    raise AssertionError(f"message does not start with a key path of the document: {msg!r}")


def _simulate_small(loaded: loading.Loaded, runs: int = 8) -> None:
    """A short simulation of a scenario that loaded: outputs must satisfy the invariants."""
    doc = copy.deepcopy(loaded.raw)
    doc["scenario"]["horizon_days"] = min(int(doc["scenario"]["horizon_days"]), 40)
    if doc.get("observation"):  # keep the observations whose window lies inside the shortened horizon
        start = dt.date.fromisoformat(str(doc["scenario"]["start_date"]))
        last = start + dt.timedelta(days=doc["scenario"]["horizon_days"] - 1)
        doc["observation"] = [o for o in doc["observation"]
                              if dt.date.fromisoformat(str(o["to"])) <= last] or None
        if doc["observation"] is None:
            del doc["observation"]
    doc.get("output", {}).pop("trajectory_sample", None)
    scn = scenario.parse(doc, ORIGIN)
    small = loading.Loaded(scn, loaded.text, doc, [], ORIGIN)
    try:  # what could overflow 64-bit counts is refused before a run (`artysim run` does this)
        resources.check_magnitudes(build.build(scn), runs)
    except ArtysimError as e:
        # refused for 64-bit overflow, or for values beyond the top bin of the per-day histograms
        assert ("overflow" in str(e) or "quantiles resolve" in str(e)) and "\n" not in str(e)
        return
    model, cat, daily = runner.simulate_in_memory(small, runs, seed=1, threads=1)
    check_run_outputs(model, cat["totals"], cat["per_source"])
    check_components(model.comp_src, model.horizon, cat["per_source"][:, :, layout.P_RECEIVED], cat["per_component"])
    assert (daily.sums >= 0).all()


def _try(doc: dict, original: dict):
    """Parse ``doc`` as a document and as TOML text; both must agree on success/refusal."""
    outcomes = []
    try:
        loaded = loading.Loaded(scenario.parse(doc, ORIGIN), "", doc, [], ORIGIN)  # builds the model
        outcomes.append(("ok", loaded))
    except ScenarioError as e:
        outcomes.append(("refused", assert_names_path(str(e), doc, original)))
    text = to_toml(doc)
    try:
        loading.loads(text, origin=ORIGIN)
        outcomes.append(("ok", None))
    except ScenarioError as e:
        msg = str(e)
        assert "\n" not in msg, msg
        if "not valid TOML" not in msg:  # e.g. a date TOML cannot hold, or nan in an array
            assert_names_path(msg, doc, original)
        outcomes.append(("refused-toml" if "not valid TOML" in msg else "refused", msg))
    return outcomes


@examples(100)
@given(scenario_doc(max_horizon=400))
def test_valid_documents_load_build_and_round_trip(doc):
    loaded = loading.Loaded(scenario.parse(doc, ORIGIN), "", doc, [], ORIGIN)
    model = loaded.model
    assert model.horizon == doc["scenario"]["horizon_days"]
    assert loaded.scenario.source_names() == [s["name"] for s in doc["source"]]
    again = loading.loads(to_toml(doc), origin=ORIGIN)
    assert again.scenario == loaded.scenario


@pytest.mark.parametrize("kind", sorted(MUTATIONS))
@examples(60)
@given(data=st.data())
def test_mutated_documents_load_or_are_refused_with_the_key_path(kind, data):
    original = data.draw(scenario_doc(max_horizon=120))
    mut = MUTATIONS[kind](data.draw, copy.deepcopy(original))
    outcomes = _try(mut.doc, original)
    doc_outcome, detail = outcomes[0]
    event(f"{mut.kind}: {doc_outcome}")
    if mut.must_fail:
        assert doc_outcome == "refused", (mut.kind, mut.path, mut.doc)
    if mut.must_fail and mut.expect is not None:
        assert detail == mut.expect or detail.startswith((mut.expect + ".", mut.expect + "[")), \
            (mut.kind, mut.expect, detail)
    if outcomes[1][0] != "refused-toml":  # TOML can hold the document: same verdict either way
        assert outcomes[1][0] == doc_outcome, (mut.kind, outcomes)
    if doc_outcome == "ok":
        _simulate_small(detail)


# ----------------------------------------------------------------------------- overflow


BIG = textwrap.dedent("""\
    [scenario]
    name = "big"
    start_date = "2000-01-01"
    horizon_days = {horizon}

    [demand]
    base = {base}
    daily_cv = {cv}

    [[source]]
    name = "old"
    kind = "stockpile"
    initial = {initial}
    dud_rate = 0.25

    [[source]]
    name = "fab"
    kind = "production"
    annual = {annual}

    [output]
    trajectory_sample = 2
    """)


@pytest.mark.slow  # 10^4 days (~18 s here): .ci/run runs it with -m slow
def test_trillion_rounds_a_day_for_ten_thousand_days_is_computed_exactly():
    """10^12 rounds/day x 10^4 days: totals of ~10^16 fit in int64 and balance exactly."""
    text = BIG.format(horizon=10_000, base="1e12", cv=0.0, initial="1e13", annual="1e14")
    loaded = loading.loads(text, origin="big.toml")
    model, cat, daily = runner.simulate_in_memory(loaded, 4, seed=3, threads=1)
    tot, ps = cat["totals"], cat["per_source"]
    # demand 10^12 a day without noise: floor(1e12 + U) is 1e12 + 1 only when U rounds up to 1 in float
    # arithmetic (P = 6e-5 a day at this magnitude, so a few times in 10^4 days)
    assert (np.abs(tot[:, 0] - 10**16) <= 10).all()
    check_run_outputs(model, tot, ps)
    # production 1e14/365 a day by stochastic rounding: within one round a day of the exact total
    received = ps[:, 1, 1]
    assert (np.abs(received - 1e14 / 365 * 10_000) <= 10_000).all()
    # demand exceeds production every day, so everything is fired: the stock ends empty
    assert (tot[:, 5] == 0).all() and (tot[:, 1] == 10**13 + received).all()
    assert (daily.sums >= 0).all()


@pytest.mark.parametrize("field, value", [("base", "1e14"), ("initial", "1e14"), ("annual", "1e18")])
def test_values_that_could_overflow_are_refused(field, value):
    text = BIG.format(horizon=10_000, base="1e6", cv=0.0, initial="1e6", annual="1e6").replace(
        f"{field} = 1e6", f"{field} = {value}")
    with pytest.raises(ScenarioError) as e:
        loading.loads(text, origin="big.toml")
    assert field in str(e.value) and "expected" in str(e.value)


def test_horizon_beyond_the_limit_is_refused():
    with pytest.raises(ScenarioError, match="scenario.horizon_days"):
        loading.loads(BIG.format(horizon=10**6, base="1", cv=0, initial="1", annual="1"), origin="big.toml")


def test_largest_accepted_values_cannot_overflow_a_run():
    """The loader's ceilings (10^13 rounds/day, 36500 days) with a noisy demand: the run-level totals
    stay below 2^63 or the resource check refuses the run before any work."""
    text = BIG.format(horizon=36_500, base="1e13", cv=10, initial="1e13", annual="3.65e15")
    loaded = loading.loads(text, origin="big.toml")
    with pytest.raises(ArtysimError, match="overflow"):
        resources.check_magnitudes(loaded.model, runs=1000)


@pytest.mark.parametrize("start, horizon, ok", [("9999-12-01", 31, True), ("9999-12-01", 32, False),
                                                ("9999-01-01", 36500, False), ("0001-01-01", 36500, True)])
def test_horizon_must_end_on_a_calendar_date(start, horizon, ok):
    """A horizon running past 9999-12-31 used to load and then crash the summary (OverflowError)."""
    text = BIG.format(horizon=horizon, base="1", cv=0, initial="1", annual="1").replace("2000-01-01", start)
    if ok:
        assert loading.loads(text, origin="big.toml").scenario.horizon == horizon
    else:
        with pytest.raises(ScenarioError, match=r"big.toml: scenario.horizon_days: .*9999-12-31"):
            loading.loads(text, origin="big.toml")


def test_normal_truncated_at_zero_is_accepted_for_counts():
    """Found by the property tests: scipy put the support of a normal truncated at low = 0 at -1e-78,
    so a count that cannot be negative was refused as negative."""
    text = BIG.format(horizon=10, base="{ dist = \"normal\", mean = 1e-62, sd = 0.47, low = 0, high = 0.8125 }",
                      cv=0, initial="1", annual="1")
    loaded = loading.loads(text, origin="big.toml")
    d = loaded.scenario.demand.base
    assert d.support() == (0.0, 0.8125)
    u = np.linspace(0, 1, 1001)
    assert (d.ppf(u) >= 0).all() and (d.ppf(u) <= 0.8125).all()


@examples(60)
@given(st.data())
def test_validate_command_on_fuzzed_files(tmp_path_factory, data):
    """The command line on fuzzed files: exit 0, or exit 2 with one line naming the file; never a traceback
    (CliRunner re-raises anything uncaught)."""
    from click.testing import CliRunner

    from artysim.cli import main

    kind = data.draw(st.sampled_from(sorted(MUTATIONS)))
    mut = MUTATIONS[kind](data.draw, copy.deepcopy(data.draw(scenario_doc(max_horizon=120))))
    f = tmp_path_factory.mktemp("cli") / "fuzz.toml"
    f.write_text(to_toml(mut.doc), encoding="utf-8")
    r = CliRunner().invoke(main, ["validate", str(f)], catch_exceptions=False)
    assert r.exit_code in (0, 2), (kind, r.output)
    if r.exit_code == 2:
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith("artysim: error: "), (kind, r.stderr)
        assert str(f) in lines[0] or "overflow" in lines[0] or "quantiles resolve" in lines[0], lines[0]
    else:
        assert not mut.must_fail, (kind, mut.doc)


OVERRIDE_PATHS = st.one_of(
    st.sampled_from(["demand.base", "demand.daily_cv", "scenario.horizon_days", "scenario.start_date", "run.runs",
                     "output.quantiles", "policy.issue", "policy.order", "source", "scenario", "demand.base.low",
                     "source.{name}.dud_rate", "source.{name}.kind", "source.{name}", "source.{name}.initial.dist",
                     "source.ghost.dud_rate", "source.{name}.name", "nope.deeper.still", "demand..base", ".", "a.b.c"]),
    st.text(min_size=0, max_size=20),
)
OVERRIDE_VALUES = st.one_of(
    st.sampled_from(["1", "-1", "0.5", "1e300", "nan", "inf", "abc", "", "[1, 2]", "{ dist = \"uniform\" }",
                     "{ dist = \"uniform\", low = 1, high = 2 }", "2023-02-30", "2024-01-01", "true", "\"x\"",
                     "[", "{", "1 2", "9999999999999999999999"]),
    st.text(max_size=20),
)


@examples(150)
@given(scenario_doc(max_horizon=60), st.lists(st.tuples(OVERRIDE_PATHS, OVERRIDE_VALUES), min_size=1, max_size=3),
       st.booleans())
def test_set_overrides_load_or_are_refused_in_one_line(doc, sets, with_equals):
    """--set PATH=VALUE with odd paths and values: the scenario loads or a ScenarioError names the problem."""
    name = doc["source"][0]["name"]
    items = [f"{p.replace('{name}', name)}{'=' if with_equals else ''}{v}" for p, v in sets]
    try:
        loading.loads(to_toml(doc), items, origin=ORIGIN)
    except ScenarioError as e:
        msg = str(e)
        assert "\n" not in msg, msg
        assert msg.startswith(("--set ", ORIGIN + ": ")), msg


@pytest.mark.parametrize("dist", [
    '{ dist = "pert", min = 0.2, mode = 0.5, max = 0.6, lambda = 1e300 }',
    '{ dist = "pert", min = 0.2, mode = 0.5, max = 0.6, lambda = 1e7 }',
])
def test_distributions_too_extreme_to_evaluate_are_refused(dist):
    """scipy gives NaN quantiles for a PERT this sharp; a NaN dud rate once kept the binomial
    sampler looping forever (found by a 2x fuzz run). It is refused at load, naming the path; any
    other distribution whose quantiles are not finite is refused the same way, and the engine
    refuses a non-finite sampled parameter rather than pass it to the kernel."""
    text = BIG.format(horizon=10, base=100, cv=0.1, initial=1000, annual=1000).replace(
        "dud_rate = 0.25", f"dud_rate = {dist}")
    with pytest.raises(ScenarioError, match=r"source\[0\]\.dud_rate"):
        loading.loads(text, origin=ORIGIN)
