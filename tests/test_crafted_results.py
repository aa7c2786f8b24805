"""Results files crafted to look like artysim's (issue 11, classes 11 and 12): every reading command
(summary, its JSON and combined forms, merge alone and with a shard, compare either way, the five
plots, sensitivity, and the Python entry points open_results/combine_shards) checks a file's
structure and the memory it would need before reading it (``results.structure.check``, one place),
and refuses inconsistent contents with one line naming the file and what is wrong. Messages blame
the right file: a damaged shard, not the merge's output; a shard's garbage scenario_toml, not the
scenario file it was once made from."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from crafted import commands, outcome
from ncmutate import copy_with, corrupt_bytes, drop_attr, drop_var, redim, resize, retype, set_attr, set_values

from artysim.errors import ResultsError
from artysim.results import reader, structure

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(crafted_files):
    return crafted_files  # made once for the session (conftest.py), read only


@pytest.fixture(scope="module")
def base(files):
    return files["shards"] / "c.shard-0-of-2.nc"


def _huge(n):
    return [resize("run", n), set_attr("run_stop", n), set_attr("runs_total", n)]


#: (name, mutations, words the one line must hold)
CASES = [
    # attributes missing or of the wrong type
    *[(f"no {a}", [drop_attr(a)], [a, "missing"]) for a in
      ("seed", "run_start", "run_stop", "runs_total", "start_date", "horizon_days", "shard", "shards",
       "trajectory_sample", "scenario_hash", "scenario_toml", "artysim_version")],
    ("no schema version", [drop_attr("artysim_schema_version")], ["not an artysim results file"]),
    ("schema version text", [set_attr("artysim_schema_version", "2")], ["artysim_schema_version", "integer"]),
    ("schema version float", [set_attr("artysim_schema_version", 2.0)], ["artysim_schema_version", "integer"]),
    ("schema version array", [set_attr("artysim_schema_version", np.array([2, 2]))], ["artysim_schema_version"]),
    ("schema version 0", [set_attr("artysim_schema_version", 0)], ["artysim_schema_version", "out of range"]),
    ("schema version newer", [set_attr("artysim_schema_version", 99)], ["newer"]),
    ("seed float", [set_attr("seed", 1.5)], ["seed", "integer"]),
    ("seed text", [set_attr("seed", "three")], ["seed", "integer"]),
    ("seed negative", [set_attr("seed", -4)], ["seed", "out of range"]),
    ("seed huge", [set_attr("seed", "99999999999999999999")], ["seed"]),
    ("run_start text", [set_attr("run_start", "0")], ["run_start", "integer"]),
    ("run_start negative", [set_attr("run_start", -1)], ["run_start"]),
    ("run_stop float", [set_attr("run_stop", 20.0)], ["run_stop", "integer"]),
    ("run range reversed", [set_attr("run_start", 30), set_attr("run_stop", 10)], ["run range"]),
    ("run range beyond total", [set_attr("runs_total", 10)], ["run range", "runs_total"]),
    ("runs_total array", [set_attr("runs_total", np.arange(3))], ["runs_total"]),
    ("shard beyond shards", [set_attr("shard", 5)], ["shard 5"]),
    ("start_date number", [set_attr("start_date", 20240101)], ["start_date", "text"]),
    ("start_date not a date", [set_attr("start_date", "2024-02-30")], ["start_date", "date"]),
    ("start_date near the end", [set_attr("start_date", "9999-12-30")], ["horizon"]),
    ("horizon text", [set_attr("horizon_days", "30")], ["horizon_days", "integer"]),
    ("horizon differs from time", [set_attr("horizon_days", 31)], ["time dimension", "horizon_days"]),
    ("threshold text", [set_attr("shortage_threshold", "5%")], ["shortage_threshold"]),
    ("threshold above 1", [set_attr("shortage_threshold", 3.0)], ["shortage_threshold"]),
    ("scenario_hash number", [set_attr("scenario_hash", 7)], ["scenario_hash", "text"]),
    ("scenario_toml number", [set_attr("scenario_toml", np.arange(4))], ["scenario_toml", "text"]),
    ("trajectory_sample text", [set_attr("trajectory_sample", "ten")], ["trajectory_sample"]),
    ("sweep_paths not JSON", [set_attr("sweep_paths", "[demand.base"), set_attr("sweep_variants", 2)],
     ["sweep_paths"]),
    ("sobol without sobol_n", [set_attr("design", "sobol")], ["sobol_n"]),
    # dimensions
    ("time of 0", [resize("time", 0)], ["time dimension of 0"]),
    ("time of 0 and horizon 0", [resize("time", 0), set_attr("horizon_days", 0)], ["horizon_days"]),
    ("quantile of 0", [resize("quantile", 0)], ["quantile dimension of 0"]),
    ("source of 0", [resize("source", 0)], ["source dimension of 0"]),
    ("bin of 10", [resize("bin", 10)], ["bin dimension"]),
    ("run of 0", [resize("run", 0)], ["run dimension of 0"]),
    ("run shorter than range", [resize("run", 5)], ["run dimension of 5"]),
    ("sample beyond trajectory_sample", [resize("sample", 11)], ["sample dimension"]),
    ("regime of 0", [resize("regime", 0)], ["regime dimension of 0"]),
    # variables
    *[(f"no {v}", [drop_var(v)], ["missing", v]) for v in
      ("fired_total", "stock_hist", "quantile", "sample", "run", "stock_quantile", "parameters", "source")],
    ("wrong dims", [redim("fired_total", ("time",))], ["fired_total", "dimensions"]),
    ("swapped dims", [redim("stock_hist", ("bin", "time"))], ["stock_hist", "dimensions"]),
    ("extra dim", [redim("shortage_days", ("run", "source"))], ["shortage_days", "dimensions"]),
    ("variant dim outside a sweep", [redim("fired_total", ("variant", "run"))], ["fired_total"]),
    ("float counts", [retype("shortage_days", np.float64)], ["shortage_days", "type"]),
    ("int32 run", [retype("run", np.int32)], ["run", "type"]),
    ("unsigned sums", [retype("stock_sum", np.uint64)], ["stock_sum", "type"]),
    ("text quantiles", [retype("quantile", str)], ["quantile", "type"]),
    ("numeric sources", [retype("source", np.int64)], ["source", "type"]),
    ("float32 quantiles", [retype("stock_quantile", np.float32)], ["stock_quantile", "type"]),
    ("a group", [lambda d: d.groups.append("extra")], ["groups"]),
    # values
    ("sample beyond runs", [set_values("sample", lambda a: a + 1000)], ["sample run indices"]),
    ("sample negative", [set_values("sample", lambda a: a - 5)], ["sample run indices"]),
    ("sample repeated", [set_values("sample", lambda a: np.zeros_like(a))], ["sample run indices"]),
    ("run indices outside range", [set_values("run", lambda a: a + 100)], ["run indices"]),
    ("run indices shuffled", [set_values("run", lambda a: a[::-1])], ["run indices"]),
    ("NaN quantile levels", [set_values("quantile", lambda a: a * np.nan)], ["quantile levels"]),
    ("one NaN quantile level", [set_values("quantile", lambda a: np.where(np.arange(len(a)) == 2, np.nan, a))],
     ["quantile levels"]),
    ("quantile level 1", [set_values("quantile", lambda a: a / a.max())], ["quantile levels"]),
    ("quantile levels decreasing", [set_values("quantile", lambda a: a[::-1])], ["quantile levels"]),
    ("negative n_short", [set_values("n_short", lambda a: a - 5)], ["n_short", "negative"]),
    ("n_short beyond runs", [set_values("n_short", lambda a: a + 10**6)], ["n_short"]),
    ("negative sums", [set_values("fired_sum", lambda a: -a - 1)], ["fired_sum", "negative"]),
    ("negative per-run counts", [set_values("shortage_days", lambda a: a - 50)], ["shortage_days", "negative"]),
    ("negative per-source counts", [set_values("duds", lambda a: -a - 1)], ["duds", "negative"]),
    ("negative regime days", [set_values("regime_days", lambda a: -a - 1)], ["regime_days", "negative"]),
    ("days beyond horizon", [set_values("first_shortage_day", lambda a: a * 0 + 400)], ["first_shortage_day"]),
    ("negative histogram", [set_values("stock_hist", lambda a: -a)], ["stock_hist", "negative"]),
    ("histogram miscounts runs", [set_values("fired_hist", lambda a: a * 2)], ["fired_hist", "runs"]),
    ("time values shifted", [set_values("time", lambda a: a + 3)], ["time coordinate"]),
    ("time values huge", [set_values("time", lambda a: a * 0 + 2**30)], ["time coordinate"]),
    ("bin edges changed", [set_values("bin", lambda a: a * 2)], ["bin edges"]),
    ("bin upper edges changed", [set_values("bin_upper", lambda a: a - 1)], ["bin edges"]),
    ("duplicate source names", [set_values("source", lambda a: np.array(["x"] * a.size, dtype=object))],
     ["source labels"]),
    ("duplicate parameter names", [resize("parameter", 2), set_values("parameter",
                                   lambda a: np.array(["p", "p"], dtype=object))], ["parameter labels"]),
    ("empty regime name", [set_values("regime", lambda a: np.array([""] * a.size, dtype=object))],
     ["regime labels"]),
    # huge claims in small files
    ("9 GB of runs", _huge(2 * 10**8), ["memory"]),
    ("22 GB of runs", _huge(5 * 10**8), ["memory"]),
    ("5 PiB of runs", _huge(2**47), ["memory"]),
    ("huge parameters", [resize("parameter", 10**11)], ["memory"]),
    ("huge horizon", [resize("time", 10**7), set_attr("horizon_days", 10**7)], ["horizon"]),
]


@pytest.fixture(scope="module")
def crafted(files, base, tmp_path_factory):
    d = tmp_path_factory.mktemp("cases")
    return {name: copy_with(base, d / f"case-{i:03d}.nc", *muts) for i, (name, muts, _) in enumerate(CASES)}


@pytest.mark.parametrize("name, muts, needles", CASES, ids=[c[0] for c in CASES])
def test_structure_check_refuses(crafted, name, muts, needles):
    bad = crafted[name]
    assert bad.stat().st_size < 6 * 2**20  # small files, whatever they claim
    with pytest.raises(ResultsError) as e:
        structure.check(bad)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(bad)), msg
    for n in needles:
        assert n in msg, (n, msg)


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_every_reading_command_refuses(crafted, files, tmp_path, name):
    bad = crafted[name]
    for what, argv in commands(bad, files, tmp_path).items():
        code, line = outcome(argv)
        assert code == 2, (name, what)
        assert bad.name in line, (what, line)
    for fn in (lambda: reader.open_results(bad), lambda: reader.open_results([bad, files["shards"]]),
               lambda: reader.combine_shards([bad, files["shards"] / "c.shard-1-of-2.nc"])):
        with pytest.raises(ResultsError):
            fn()
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("m*.nc"))


def test_the_real_files_pass(files, tmp_path):
    for f in [files["good"], files["sweep"], *files["shards"].iterdir()]:
        structure.check(f)
    for what, argv in commands(files["good"], files, tmp_path).items():
        if what.startswith(("merge", "summary-combined")):
            continue  # good.nc is all 40 runs: it overlaps a shard, and merging it alone is fine
        assert outcome(argv)[0] == 0, what


def test_memory_needed_against_available(files, monkeypatch):
    need = structure.check(files["good"]).memory + structure.READ_BASE
    monkeypatch.setattr(structure, "available_memory", lambda: need - 1)
    with pytest.raises(ResultsError, match="memory"):
        reader.open_file(files["good"])
    monkeypatch.setattr(structure, "available_memory", lambda: need + 1)
    reader.open_file(files["good"]).close()
    monkeypatch.setattr(structure, "available_memory", lambda: None)  # no probe (not Linux): no limit
    reader.open_file(files["good"]).close()


def test_combined_shards_memory(files, monkeypatch):
    monkeypatch.setattr(reader, "available_memory", lambda: 1000)
    with pytest.raises(ResultsError, match="shards would need"):
        reader.open_results(files["shards"])


FLOATS = ["stock_quantile", "fired_quantile", "p_short", "p_depleted", "stock_mean", "shortfall_mean",
          "fired_by_source_mean", "effective_by_source_mean", "parameters"]
FLOAT_CHANGES = {"nan": lambda a: a * np.nan, "huge": lambda a: a * 0 + 1e308, "negative": lambda a: -a - 1,
                 "inf": lambda a: a * 0 + np.inf}


def _odd_float_cases():
    """Every (variable, change); each costs thirteen commands, five of them drawing (~5 s here), so the
    default run keeps one change per variable, in turn (every variable and every change is tried), and
    the other 27 are marked slow (.ci/run runs them with -m slow)."""
    changes = list(FLOAT_CHANGES)
    for i, var in enumerate(FLOATS):
        for change in changes:
            marks = () if change == changes[i % len(changes)] else (pytest.mark.slow,)
            yield pytest.param(var, change, id=f"{change}-{var}", marks=marks)


@pytest.mark.parametrize("var, change", list(_odd_float_cases()))
def test_odd_float_values_never_crash(files, base, tmp_path, var, change):
    """Values that are not counts pass the structure check (NaN may be an honest 'no data'): every
    reading command still exits 0 or 2 with one line."""
    bad = copy_with(base, tmp_path / "odd.nc", set_values(var, FLOAT_CHANGES[change]))
    for argv in commands(bad, files, tmp_path).values():
        outcome(argv)


# -- not regular files --------------------------------------------------------------------------------

#: runs reading commands, given as JSON argv lists, in one child process, through the CLI's ``main`` as the
#: console script does, and prints [exit status, stderr] of each as JSON. One child per case, not one per
#: command: each interpreter start imports artysim (and scipy), ~3 s here, which was nearly all the time
#: these tests took; a command that hangs on a FIFO still hangs the child, and the timeout fails the test.
_CHILD = """
import json, sys
from click.testing import CliRunner
from artysim.cli import main
print(json.dumps([[r.exit_code, r.stderr] for r in (CliRunner().invoke(main, a) for a in json.loads(sys.argv[1]))]))
"""


def _cli_all(*argvs, timeout=120) -> list[tuple[int, str]]:
    """(exit status, stderr) of each command, all run in one fresh interpreter that must say nothing else."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argj = json.dumps([[str(a) for a in argv] for argv in argvs])
    r = subprocess.run([sys.executable, "-c", _CHILD, argj], capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0 and r.stderr == "", r.stderr[-2000:]
    return [(code, err) for code, err in json.loads(r.stdout)]


@pytest.fixture
def specials(tmp_path):
    d = tmp_path / "special"
    d.mkdir()
    os.mkfifo(d / "fifo.nc")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(d / "sock.nc"))
    os.symlink("/dev/zero", d / "zero.nc")
    os.symlink(d / "fifo.nc", d / "link-to-fifo.nc")
    yield d
    s.close()


@pytest.mark.parametrize("name", ["fifo.nc", "sock.nc", "zero.nc", "link-to-fifo.nc"])
def test_non_regular_files_are_refused_without_hanging(specials, files, tmp_path, name):
    bad = specials / name
    argvs = (["summary", bad], ["merge", "-o", tmp_path / "m.nc", bad], ["compare", bad, files["good"]],
             ["plot", bad, "--kind", "fan", "-o", tmp_path / "p.png"], ["sensitivity", bad])
    for argv, (code, stderr) in zip(argvs, _cli_all(*argvs), strict=True):
        assert code == 2, (argv, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and name in lines[0], stderr
        assert "pipe" in lines[0] or "socket" in lines[0] or "device" in lines[0], lines[0]
    assert not list(tmp_path.glob("*.png")) and not (tmp_path / "m.nc").exists()


def test_fifo_inside_a_folder_or_glob(specials, files, tmp_path):
    argvs = (["summary", specials], ["merge", "-o", tmp_path / "m.nc", specials], ["summary", str(specials / "*.nc")])
    for code, stderr in _cli_all(*argvs):
        assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
    with pytest.raises(ResultsError, match="pipe"):
        reader.open_results(specials / "fifo.nc")


# -- blame the right file -----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_merge_of_a_damaged_shard_names_the_shard(files, tmp_path, seed):
    d = tmp_path / "in"
    d.mkdir()
    for f in files["shards"].iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    victim = d / "c.shard-1-of-2.nc"
    corrupt_bytes(victim, np.random.default_rng(seed), n=400)
    out = tmp_path / "out" / "merged.nc"
    out.parent.mkdir()
    code, line = outcome(["merge", "-o", out, d])
    if code == 0:
        pytest.skip("the bytes hit nothing that is read")
    assert "c.shard-1-of-2.nc" in line and "merged.nc" not in line, line
    assert list(out.parent.iterdir()) == []


GARBAGE_TOML = [
    ("not TOML", "this is [not toml"),
    ("empty", ""),
    ("not a scenario", "[scenario]\nname = 1\n"),
    ("nested deep", "x = " + "[" * 5000),
    ("boolean horizon", None),  # the real text with horizon_days = true
    ("long key", "k" * 10**6 + " = 1"),
]


@pytest.mark.parametrize("what, text", GARBAGE_TOML, ids=[g[0] for g in GARBAGE_TOML])
def test_garbage_scenario_toml_names_the_shard(files, tmp_path, what, text):
    src = files["shards"] / "c.shard-0-of-2.nc"
    if text is None:
        import netCDF4

        with netCDF4.Dataset(src) as nc:
            text = nc.scenario_toml.replace("horizon_days = 30", "horizon_days = true")
    d = tmp_path / "in"
    d.mkdir()
    copy_with(src, d / "c.shard-0-of-2.nc", set_attr("scenario_toml", text))
    (d / "c.shard-1-of-2.nc").write_bytes((files["shards"] / "c.shard-1-of-2.nc").read_bytes())
    code, line = outcome(["merge", "-o", tmp_path / "m.nc", "--allow-partial", d / "c.shard-0-of-2.nc"])
    assert code == 2
    assert "c.shard-0-of-2.nc" in line and "scenario_toml" in line and "crafted.toml" not in line, line
    assert len(line) < 1100


def test_scenario_of_other_dimensions_names_the_shard(files, tmp_path):
    import netCDF4

    src = files["shards"] / "c.shard-0-of-2.nc"
    with netCDF4.Dataset(src) as nc:
        text = nc.scenario_toml.replace("horizon_days = 30", "horizon_days = 31")
    from artysim.model.scenario import parse_toml, scenario_hash

    bad = copy_with(src, tmp_path / "c.shard-0-of-2.nc", set_attr("scenario_toml", text),
                    set_attr("scenario_hash", scenario_hash(parse_toml(text, "x"))))
    code, line = outcome(["merge", "-o", tmp_path / "m.nc", "--allow-partial", bad])
    assert code == 2 and bad.name in line and "time dimension" in line, line


def test_merge_of_a_sweep_file_is_refused(files, tmp_path):
    for argv in (["merge", "-o", tmp_path / "m.nc", files["sweep"]],
                 ["merge", "-o", tmp_path / "m.nc", "--allow-partial", files["sweep"], files["shards"]],
                 ["summary", files["sweep"], files["shards"] / "c.shard-0-of-2.nc"]):
        code, line = outcome(argv)
        assert code == 2 and "sweep" in line and "sweep.nc" in line, line
    assert not (tmp_path / "m.nc").exists()


def test_sweep_file_structure(files, tmp_path):
    for muts, needle in (([set_attr("sweep_variants", 3)], "variant dimension"),
                         ([drop_var("vary_0")], "vary_0"),
                         ([redim("fired_total", ("run", "variant"))], "fired_total")):
        bad = copy_with(files["sweep"], tmp_path / "s.nc", *muts)
        for argv in (["summary", bad], ["plot", bad, "--kind", "sweep", "-o", tmp_path / "p.png"],
                     ["sensitivity", bad, "--variant", "0"]):
            code, line = outcome(argv)
            assert code == 2 and needle in line, line
