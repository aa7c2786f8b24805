"""Scenario documents that are bad in ways pydantic or tomllib did not catch on their own (issue 11,
class 9): nesting deeper than the stack, booleans and strings read as numbers, weights whose sum
overflows, a byte order mark, huge keys and values echoed in full, a scenario that is not a file.

Every refusal is one line naming the file (or ``--set``) and the key path, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from support import assert_refused

from artysim.cli import main
from artysim.errors import ArtysimError, ScenarioError
from artysim.model.load import load, loads
from artysim.model.scenario import MAX_DEPTH

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"

BASE = """\
[scenario]
name = "bad"
start_date = "2024-01-01"
horizon_days = 30

[run]
runs = 20
seed = 1

[demand]
base = 1000
daily_cv = 0.2

[[source]]
name = "old"
kind = "stockpile"
initial = { dist = "uniform", low = 10000, high = 40000 }
dud_rate = 0.1

[[source]]
name = "fab"
kind = "production"
annual = 200000
"""


def refused(fn, *needles) -> str:
    with pytest.raises(ScenarioError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 700, msg[:2000]
    for n in needles:
        assert n in msg, (n, msg)
    return msg


@pytest.fixture(scope="module")
def scn(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("badscn") / "s.toml"
    p.write_text(BASE)
    return p


# -- nesting ------------------------------------------------------------------------------------------

def _nested(kind: str, n: int) -> str:
    if kind == "array":
        return "x = " + "[" * n + "]" * n
    if kind == "inline":
        return "x = " + "{ a = " * n + "1" + " }" * n
    if kind == "mixed":
        return "x = " + "[{ a = " * (n // 2) + "1" + " }]" * (n // 2)
    if kind == "dotted":
        return ".".join(["a"] * n) + " = 1"
    if kind == "header":
        return "[" + ".".join(["a"] * n) + "]\nb = 1"
    if kind == "unclosed":
        return "x = " + "[" * n
    raise AssertionError(kind)


KINDS = ["array", "inline", "mixed", "dotted", "header", "unclosed"]
DEPTHS = [MAX_DEPTH + 1, 400, 3000, 100_000]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", DEPTHS)
def test_deep_nesting_in_a_file(tmp_path, kind, n):
    p = tmp_path / "deep.toml"
    p.write_text(BASE + "\n" + _nested(kind, n) + "\n" if kind not in ("dotted", "header") else
                 _nested(kind, n) + "\n" + BASE)
    msg = refused(lambda: load(p), str(p))
    assert "nested" in msg or "not valid TOML" in msg


@pytest.mark.parametrize("kind", ["array", "inline", "mixed", "unclosed"])
@pytest.mark.parametrize("n", [MAX_DEPTH + 1, 3000, 100_000])
def test_deep_nesting_in_set_and_loads(scn, kind, n):
    value = _nested(kind, n).split(" = ", 1)[1]
    msg = refused(lambda: load(scn, [f"demand.base={value}"]), "--set" if kind != "unclosed" else "demand.base")
    assert "characters" in msg or len(value) < 80  # the value is shortened in the message
    refused(lambda: loads(BASE + "\n" + _nested(kind, n) + "\n"), "<string>")


def test_nesting_up_to_the_limit_is_only_refused_as_unknown(scn):
    refused(lambda: load(scn, ["demand.base=" + "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)]), "demand.base")


@pytest.mark.parametrize("n", [3000, 100_000])
def test_deep_nesting_in_vary(scn, n):
    r = CliRunner().invoke(main, ["sweep", str(scn), "--vary", "demand.base=" + "[" * n, "-o", "/nonexistent/x.nc"],
                           catch_exceptions=False)
    line = assert_refused(r, "--vary")
    assert len(line) < 700


# -- booleans (and strings) are not numbers -----------------------------------------------------------

BOOL_PATHS = [
    "scenario.horizon_days", "run.runs", "run.seed", "output.trajectory_sample", "output.shortage_threshold",
    "demand.base", "demand.daily_cv", "source.old.initial", "source.old.dud_rate", "source.old.accuracy",
    "source.fab.annual", "source.fab.daily_cv", "policy.reserve_days",
]
NESTED_BOOL = [
    ("demand.base={{ dist = \"uniform\", low = {b}, high = 5 }}", "demand.base.low"),
    ("demand.base={{ dist = \"uniform\", low = 1, high = {b} }}", "demand.base.high"),
    ("demand.base={{ dist = \"normal\", mean = 1000, sd = {b} }}", "demand.base.sd"),
    ("demand.base={{ dist = \"lognormal\", median = {b}, p95 = 2000 }}", "demand.base.median"),
    ("demand.base={{ dist = \"triangular\", min = 1, mode = {b}, max = 3 }}", "demand.base.mode"),
    ("demand.base={{ dist = \"pert\", min = {b}, mode = 2, max = 3 }}", "demand.base.min"),
    ("demand.base={{ dist = \"gamma\", mean = 1000, sd = {b} }}", "demand.base.sd"),
    ("demand.base={{ dist = \"fixed\", value = {b} }}", "demand.base.value"),
    ("demand.base={{ dist = \"discrete\", values = [1, {b}] }}", "demand.base.values[1]"),
    ("demand.base={{ dist = \"discrete\", values = [1, 2], weights = [{b}, 1] }}", "demand.base.weights[0]"),
    ("source.old.dud_rate={{ dist = \"beta\", mean = 0.1, concentration = {b} }}", "source.old.dud_rate.concentration"),
    ("demand.base=[{{ from = 2024-01-01, value = {b} }}]", "demand.base[0].value"),
    ("demand.base=[{{ from = 2024-01-01, value = 5 }}, {{ from = 2024-02-01, value = {b} }}]",
     "demand.base[1].value"),
    ("source.fab.annual=[{{ from = 2024-01-01, value = {{ dist = \"uniform\", low = {b}, high = 9 }} }}]",
     "source.fab.annual[0].value.low"),
    ("output.quantiles=[0.1, {b}]", "output.quantiles[1]"),
    ("output.quantiles=[{b}]", "output.quantiles[0]"),
    ("correlation=[{{ between = [\"a\", \"b\"], spearman = {b} }}]", "correlation[0].spearman"),
    ("strikes={{ per_year = {b}, fraction = 0.1 }}", "strikes.per_year"),
    ("strikes={{ per_year = 1, fraction = {b} }}", "strikes.fraction"),
]


@pytest.mark.parametrize("b", ["true", "false"])
@pytest.mark.parametrize("path", BOOL_PATHS)
def test_boolean_is_not_a_number_in_set(scn, path, b):
    # an override's problem is blamed on it, with the source by name, as --set spells it
    refused(lambda: load(scn, [f"{path}={b}"]), f"--set {path}={b}: {path}", b, "boolean")


@pytest.mark.parametrize("b", ["true", "false"])
@pytest.mark.parametrize("template, shown", NESTED_BOOL, ids=[s for _, s in NESTED_BOOL])
def test_boolean_inside_distributions_and_schedules(scn, template, shown, b):
    refused(lambda: load(scn, [template.format(b=b)]), shown, "boolean")


@pytest.mark.parametrize("line, shown", [
    ("horizon_days = true", "scenario.horizon_days"),
    ("horizon_days = false", "scenario.horizon_days"),
], ids=["true", "false"])
def test_boolean_in_the_file(tmp_path, line, shown):
    p = tmp_path / "b.toml"
    p.write_text(BASE.replace("horizon_days = 30", line))
    refused(lambda: load(p), str(p), shown, "boolean")
    p.write_text(BASE.replace("runs = 20", "runs = true"))
    refused(lambda: load(p), "run.runs", "boolean")


def test_boolean_regime_weight(tmp_path):
    text = (DATA / "all-mechanisms.toml").read_text().replace("to = { offensive = 2, lull = 1 }",
                                                               "to = { offensive = true, lull = 1 }")
    refused(lambda: loads(text), "demand.regime[0].to.offensive", "boolean")


@pytest.mark.parametrize("value", ['"30"', '"1e3"', '"true"', "2024-01-01", "[30]", "{ a = 1 }"])
def test_other_types_are_not_numbers(scn, value):
    refused(lambda: load(scn, [f"scenario.horizon_days={value}"] if value.startswith(('"', "[", "{", "2"))
                  else [f"scenario.horizon_days={value}"]), "scenario.horizon_days")


@pytest.mark.parametrize("sets, horizon, runs", [
    (["scenario.horizon_days=30.0"], 30, 20), (["run.runs=1e2"], 30, 100), (["run.runs=2_0"], 30, 20),
])
def test_integral_floats_are_still_integers(scn, sets, horizon, runs):
    s = load(scn, sets).scenario
    assert (s.horizon, s.run.runs) == (horizon, runs)


def test_fractional_float_is_not_an_integer(scn):
    refused(lambda: load(scn, ["scenario.horizon_days=30.5"]), "scenario.horizon_days")


def test_cli_refuses_boolean_before_running(scn, tmp_path):
    for args in (["validate", str(scn), "--set", "scenario.horizon_days=true"],
                 ["run", str(scn), "-o", str(tmp_path / "r.nc"), "--set", "run.runs=true"],
                 ["sweep", str(scn), "--vary", "demand.base=1,2", "-o", str(tmp_path / "s.nc"), "--set",
                  "run.runs=false"],
                 ["slurm", str(scn), "--runs", "10", "--shards", "2", "--out-dir", str(tmp_path / "j"), "--set",
                  "output.trajectory_sample=true"]):
        assert_refused(CliRunner().invoke(main, args, catch_exceptions=False), "boolean")
    assert sorted(os.listdir(tmp_path)) == []


# -- weights whose sum overflows ----------------------------------------------------------------------

@pytest.mark.parametrize("weights, expect", [
    ([1e308, 1e308], [0.5, 0.5]),
    ([1e308, 1e308, 1e308], [1 / 3, 1 / 3, 1 / 3]),
    ([1.7e308, 1.7e308, 0.0], [0.5, 0.5, 0.0]),
    ([1e308, 3e307], [1e308 / 1.3e308, 3e307 / 1.3e308]),
    ([5e-324, 5e-324], [0.5, 0.5]),
    ([1e-310, 3e-310], [0.25, 0.75]),
])
def test_discrete_weights_normalise_safely(scn, weights, expect):
    from artysim.model.distributions import Discrete

    values = list(range(1, len(weights) + 1))
    d = Discrete(dist="discrete", values=values, weights=weights)
    _, _, vals, cum = d.kernel_spec()
    assert np.all(np.isfinite(cum)) and cum[-1] == 1.0
    np.testing.assert_allclose(np.diff(np.concatenate([[0.0], cum])), expect, rtol=1e-12, atol=1e-15)
    u = (np.arange(10_000) + 0.5) / 10_000
    drawn = d.ppf(u)
    np.testing.assert_allclose([np.mean(drawn == v) for v in values], expect, atol=1e-3)
    assert np.isclose(d.mean(), float(np.dot(expect, values)))
    # the same through a scenario, per run (the kernel's tables)
    w = ", ".join(repr(x) for x in weights)
    loaded = load(scn, [f'demand.base={{ dist = "discrete", values = {values}, weights = [{w}] }}'])
    assert loaded.model is not None


@pytest.mark.parametrize("weights", [[1e308, 1e308], [1.7e308, 1.7e308], [1e308, 1e308, 1e308]])
def test_regime_weights_normalise_safely(weights):
    text = (DATA / "all-mechanisms.toml").read_text().replace(
        "to = { offensive = 2, lull = 1 }", f"to = {{ offensive = {weights[0]!r}, lull = {weights[1]!r} }}")
    m = loads(text).model
    assert np.all(np.isfinite(m.reg_cum)) and np.all(np.diff(m.reg_cum, axis=1) >= 0)
    np.testing.assert_allclose(m.reg_cum[0], [0.0, 0.5, 1.0])


# -- byte order mark ----------------------------------------------------------------------------------

def test_byte_order_mark_is_accepted(tmp_path):
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + BASE.encode())
    plain = tmp_path / "plain.toml"
    plain.write_text(BASE)
    a, b = load(p), load(plain)
    assert a.hash == b.hash and a.scenario == b.scenario
    assert loads("\ufeff" + BASE).hash == b.hash
    p.write_bytes(b"\xef\xbb\xbf" * 2 + BASE.encode())  # one mark from the decoder, one from parse_toml
    assert load(p).hash == b.hash
    r = CliRunner().invoke(main, ["validate", str(p)], catch_exceptions=False)
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("data, needle", [
    (b"\xef\xbb\xbf" + BASE.replace("horizon_days = 30", "horizon_days = true").encode(), "boolean"),
    (b"\xff\xfe" + BASE.encode("utf-16-le"), "UTF-8"),  # a UTF-16 file
    (b"\xef\xbb", "required key is missing"),  # a truncated mark alone: Python's decoder reads it as empty
    (b"\xef\xbb" + BASE.encode(), "UTF-8"),  # a truncated mark before the text
])
def test_byte_order_mark_with_other_problems(tmp_path, data, needle):
    p = tmp_path / "x.toml"
    p.write_bytes(data)
    refused(lambda: load(p), str(p), needle)


# -- long keys and values are shortened in every message ----------------------------------------------

MB = 2**20
LONG = [
    ("top-level key", lambda: BASE + "\n" + "k" * MB + " = 1\n"),
    ("key in a table", lambda: BASE.replace("[run]\n", "[run]\n" + "k" * MB + " = 1\n")),
    ("key in a source", lambda: BASE + "z" * MB + " = 1\n"),
    ("key in a distribution", lambda: BASE.replace("low = 10000", "low = 10000, " + "q" * MB + " = 1")),
    ("quoted key with unicode", lambda: BASE + "\n\"" + "é\\n" * (MB // 3) + "\" = 1\n"),
    ("string for a number", lambda: BASE.replace("base = 1000", "base = \"" + "9" * MB + "\"")),
    ("distribution name", lambda: BASE.replace("dist = \"uniform\"", "dist = \"" + "u" * MB + "\"")),
    ("source kind", lambda: BASE.replace("kind = \"production\"", "kind = \"" + "p" * MB + "\"")),
    ("date", lambda: BASE.replace("\"2024-01-01\"", "\"" + "2" * MB + "\"")),
    ("name", lambda: BASE.replace("name = \"bad\"", "name = \"" + "n" * MB + "\"")),
    ("policy", lambda: BASE + "\n[policy]\nissue = \"" + "i" * MB + "\"\n"),
    ("priority order", lambda: BASE + "\n[policy]\nissue = \"priority\"\norder = [\"" + "o" * MB + "\"]\n"),
    ("regime weight key", lambda: (DATA / "all-mechanisms.toml").read_text().replace(
        "to = { offensive = 2, lull = 1 }", "to = { " + "r" * MB + " = 1 }")),
    ("many problems", lambda: BASE + "".join(f"k{i} = 1\n" for i in range(20_000))),
    ("bad TOML", lambda: BASE + "\n" + "x" * MB + "\n"),
]


@pytest.mark.parametrize("what, make", LONG, ids=[w for w, _ in LONG])
def test_long_keys_and_values_are_shortened(tmp_path, what, make):
    p = tmp_path / "long.toml"
    p.write_text(make())
    refused(lambda: load(p), str(p))


@pytest.mark.parametrize("item", [
    "k" * MB + "=1", "demand." + "k" * MB + "=1", "demand.base=" + "x" * MB, "source." + "s" * MB + ".dud_rate=1",
    "demand.base" + "=" * 0, "demand." + "." * MB + "=1", "demand.base.low." + "l" * MB + "=1",
    "demand.base={ dist = \"" + "d" * MB + "\" }", "scenario.start_date=" + "9" * MB,
])
def test_long_set_items_are_shortened(scn, item):
    with pytest.raises(ArtysimError) as e:
        load(scn, [item if "=" in item else item + "x" * MB])
    assert "\n" not in str(e.value) and len(str(e.value)) < 700


def test_long_vary_is_shortened(scn):
    for v in ("demand.base=" + "1," * (MB // 2), "demand.base=" + "a" * MB, "d" * MB + "=1,2", "x" * MB):
        r = CliRunner().invoke(main, ["sweep", str(scn), "--vary", v, "-o", "/nonexistent/x.nc"],
                               catch_exceptions=False)
        assert_refused(r)
        assert len(r.stderr) < 1100


# -- a scenario that is not a regular file ------------------------------------------------------------

def test_fifo_and_devices_are_refused_without_blocking(tmp_path, scn):
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    holder = threading.Thread(target=lambda: None)
    holder.start()
    for target in (fifo, Path("/dev/zero"), Path("/dev/null")):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        r = subprocess.run([sys.executable, "-m", "artysim.cli", "validate", str(target)], capture_output=True,
                           text=True, timeout=60, env=env)
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert "not a regular file" in r.stderr
    big = tmp_path / "big.toml"
    with open(big, "wb") as f:
        f.truncate(64 * MB)
    refused(lambda: load(big), "too large")
