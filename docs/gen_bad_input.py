"""Regenerate docs/bad-input.md: every class of bad input tried, and the exact message users get.

Each row comes from running the real command line (``artysim.cli.main`` with prog name ``artysim``)
on real files in a temporary folder; the exit status is recorded too. The command-line cases are
those of tests/test_bad_options.py, so the table and the tests cannot drift apart.

    .venv/bin/python docs/gen_bad_input.py    # rewrites docs/bad-input.md (about 30 s)
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr
from click.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from test_bad_options import CASES, SCENARIO, fill  # noqa: E402
from test_calibrate import BASE_OBS, OBSERVATION_CASES  # noqa: E402

from artysim.cli import main  # noqa: E402
from artysim.jobs import resources  # noqa: E402
from artysim.results import writer  # noqa: E402

DOC = REPO / "docs" / "bad-input.md"
NK = "nk-deal-2023"  # a bundled scenario, by name


def cli(args: list[str]) -> tuple[int, str]:
    r = CliRunner().invoke(main, [str(a) for a in args], prog_name="artysim")
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        return 99, f"UNCAUGHT {type(r.exception).__name__}: {r.exception}"
    progress = re.compile(r"^artysim: (\d+/\d+ runs|shard \d+ of)")
    lines = [x for x in r.stderr.splitlines() if x.strip() and not progress.match(x)]
    return r.exit_code, " / ".join(lines)


#: scenario damage (one example per fuzzed class, plus file-level problems): (class, edit of SCENARIO)
SCENARIO_CASES = [
    ("wrong type", ("horizon_days = 30", 'horizon_days = "thirty"')),
    ("wrong type (table expected)", ("base = 1000", 'base = [1000, 2000]')),
    ("missing key", ("horizon_days = 30\n", "")),
    ("missing table", ("[demand]", "[demands]")),
    ("unknown key (typo)", ("daily_cv = 0.2", "daily_cvv = 0.2")),
    ("unknown key (unicode)", ("daily_cv = 0.2", "daily_cv = 0.2\n\"d\u00e9bit\" = 3")),
    ("unknown key (newline in it)", ("daily_cv = 0.2", "daily_cv = 0.2\n\"a\\nb\" = 3")),
    ("negative number", ("base = 1000", "base = -1000")),
    ("NaN", ("daily_cv = 0.2", "daily_cv = nan")),
    ("infinity", ("base = 1000", "base = inf")),
    ("probability above 1", ("dud_rate = 0.1", "dud_rate = 1.5")),
    ("probability below 0 (distribution)",
     ("dud_rate = 0.1", 'dud_rate = { dist = "uniform", low = -0.1, high = 0.2 }')),
    ("beta mean outside (0, 1)", ("dud_rate = 0.1", 'dud_rate = { dist = "beta", mean = 1.2, concentration = 10 }')),
    ("min > max", ("low = 10000, high = 40000", "low = 40000, high = 10000")),
    ("triangular mode outside [min, max]",
     ("annual = 200000", 'annual = { dist = "triangular", min = 1, mode = 5, max = 3 }')),
    ("long tail that can go negative", ("base = 1000", 'base = { dist = "normal", mean = 1000, sd = 500 }')),
    ("unknown distribution", ("base = 1000", 'base = { dist = "poisson", mean = 1000 }')),
    ("distribution without dist", ("base = 1000", "base = { mean = 1000 }")),
    ("unknown source kind", ('kind = "production"', 'kind = "factory"')),
    ("empty source list", ("[[source]]", "[[sourcex]]")),
    ("duplicate source names", ('name = "fab"', 'name = "old"')),
    ("priority without order", ("[run]", '[policy]\nissue = "priority"\n\n[run]')),
    ("order naming an unknown source", ("[run]", '[policy]\nissue = "priority"\norder = ["old", "ghost"]\n\n[run]')),
    ("date that does not exist", ('"2024-01-01"', '"2023-02-30"')),
    ("date with a time of day", ('start_date = "2024-01-01"', "start_date = 2024-01-01T12:00:00")),
    ("horizon past 9999-12-31", ('"2024-01-01"\nhorizon_days = 30', '"9999-12-01"\nhorizon_days = 60')),
    ("horizon absurdly long", ("horizon_days = 30", "horizon_days = 1000000000")),
    ("rounds absurdly large", ("base = 1000", "base = 1e14")),
    ("counts that could overflow 64 bits", ("base = 1000\ndaily_cv = 0.2", "base = 1e13\ndaily_cv = 10")),
    ("runs absurdly many", ("runs = 50", "runs = 100000000000")),
    ("seed out of range", ("seed = 1", "seed = 18446744073709551616")),
    ("name with spaces/unicode", ('name = "opts"', 'name = "opérations 1"')),
    ("too many sources", None),
    ("schedule dates not increasing",
     ("base = 1000", 'base = [{ from = "2024-01-01", value = 1000 }, { from = "2023-12-01", value = 900 }]')),
    ("schedule starting after start_date", ("base = 1000", 'base = [{ from = "2024-02-01", value = 1000 }]')),
    ("schedule piece that is not a table", ("base = 1000", "base = [1000, 2000]")),
    ("regime that lasts under a day",
     ("daily_cv = 0.2", 'daily_cv = 0.2\n[[demand.regime]]\nname = "a"\nmultiplier = 1\nmean_days = 0.5')),
    ("regime moving to an unknown regime",
     ("daily_cv = 0.2",
      'daily_cv = 0.2\n[[demand.regime]]\nname = "a"\nmultiplier = 1\nmean_days = 9\nto = { b = 1 }')),
    ("regimes in groups that never meet, no initial_regime", ("daily_cv = 0.2", "daily_cv = 0.2\n" + "".join(
        f'[[demand.regime]]\nname = "{a}"\nmultiplier = 1\nmean_days = 5\nto = {{ {b} = 1 }}\n'
        for a, b in [("a", "b"), ("b", "a"), ("c", "d"), ("d", "c")]))),
    ("re-fire share above 1", ("daily_cv = 0.2", "daily_cv = 0.2\nrefire = 1.5")),
    ("re-fire share that can go below 0 (distribution)",
     ("daily_cv = 0.2", 'daily_cv = 0.2\nrefire = { dist = "normal", mean = 0.5, sd = 0.3 }')),
    ("component with neither output nor inventory",
     ("annual = 200000", 'components = [{ name = "body", annual = 200000 }, { name = "fuze" }]')),
    ("duplicate component names",
     ("annual = 200000", 'components = [{ name = "fuze", annual = 200000 }, { name = "fuze", annual = 9000 }]')),
    ("components together with annual",
     ("annual = 200000", 'annual = 200000\ncomponents = [{ name = "body", annual = 200000 }]')),
    ("components on a stockpile", ("dud_rate = 0.1", 'dud_rate = 0.1\ncomponents = [{ name = "body", initial = 5 }]')),
    ("rationing with only one of its two keys", ("[run]", "[policy]\nreserve_days = 10\n\n[run]")),
    ("legacy stock without a refurbishment rate", ("dud_rate = 0.1", "dud_rate = 0.1\nlegacy = 1e6")),
    ("rework yield without rework days",
     ("[run]", '[[source]]\nname = "imp"\nkind = "import"\nshipments_per_month = 2\nshipment_size = 100\n'
               'reject_on_receipt = 0.4\nrework_yield = 0.5\n\n[run]')),
    ("containers without loading (rounds per container)",
     ("[run]", '[[source]]\nname = "imp"\nkind = "import"\nshipments_per_month = 2\n'
               'shipment_size = { containers = 20 }\n\n[run]')),
    ("loading without containers",
     ("[run]", '[[source]]\nname = "imp"\nkind = "import"\nshipments_per_month = 2\n'
               'shipment_size = { rounds_per_container = 300 }\n\n[run]')),
    ("containers that can go negative",
     ("[run]", '[[source]]\nname = "imp"\nkind = "import"\nshipments_per_month = 2\nshipment_size = '
               '{ containers = { dist = "normal", mean = 5, sd = 3 }, rounds_per_container = 300 }\n\n[run]')),
    ("unknown key beside containers",
     ("[run]", '[[source]]\nname = "imp"\nkind = "import"\nshipments_per_month = 2\nshipment_size = '
               '{ containers = 20, rounds_per_container = 300, rounds = 5 }\n\n[run]')),
    ("strike fraction above 1", ("[run]", "[strikes]\nper_year = 2\nfraction = 1.5\n\n[run]")),
    ("correlation of a fixed number",
     ("[run]", '[[correlation]]\nbetween = ["demand.base", "source.old.initial"]\nspearman = 0.3\n\n[run]')),
    ("correlation of an unknown parameter",
     ("[run]", '[[correlation]]\nbetween = ["demand.bse", "source.old.initial"]\nspearman = 0.3\n\n[run]')),
    ("correlations that cannot hold together", (
        "base = 1000\ndaily_cv = 0.2",
        'base = { dist = "uniform", low = 900, high = 1100 }\ndaily_cv = { dist = "uniform", low = 0.1, high = 0.3 }\n'
        + "".join(f'[[correlation]]\nbetween = ["{a}", "{b}"]\nspearman = {r}\n'
                  for a, b, r in [("demand.base", "demand.daily_cv", 0.9), ("demand.base", "source.old.initial", 0.9),
                                  ("demand.daily_cv", "source.old.initial", -0.9)]))),
    ("boolean for a number", ("horizon_days = 30", "horizon_days = true")),
    ("boolean for a number (runs)", ("runs = 50", "runs = true")),
    ("boolean inside a distribution", ("low = 10000", "low = true")),
    ("string for a number", ("runs = 50", 'runs = "50"')),
    ("nested thousands deep", ("[run]", "x = " + "[" * 5000 + "]" * 5000 + "\n[run]")),
    ("dotted key thousands deep", ("[run]", ".".join(["a"] * 5000) + " = 1\n[run]")),
    ("1 MB unknown key", ("daily_cv = 0.2", "daily_cv = 0.2\n" + "k" * 2**20 + " = 1")),
    ("not TOML", ("[demand]", "[demand")),
    ("not UTF-8", None),
    ("a named pipe (FIFO)", None),
    ("a folder, not a file", None),
    ("no such file", None),
]


def scenario_rows(d: Path) -> list[tuple[str, str, int, str]]:
    rows = []
    for klass, edit in SCENARIO_CASES:
        f = d / "bad.toml"
        if f.is_dir():
            f.rmdir()
        if klass == "too many sources":
            extra = "".join(f'\n[[source]]\nname = "s{i}"\nkind = "stockpile"\ninitial = 1\n' for i in range(70))
            f.write_text(SCENARIO + extra)
        elif klass == "not UTF-8":
            f.write_bytes(b"\xff\xfe[scenario]\n")
        elif klass == "a named pipe (FIFO)":
            f = d / "pipe.toml"
            if not f.exists():
                os.mkfifo(f)
        elif klass == "a folder, not a file":
            f = d / "folder.toml"
            f.mkdir()
        elif klass == "no such file":
            f = d / "nope.toml"
        else:
            old, new = edit
            assert old in SCENARIO, old
            f.write_text(SCENARIO.replace(old, new, 1))
        code, msg = cli(["validate", f])
        shown = "(see the row)" if edit is None else f"`{edit[1].strip()}`".replace("\n", " ")
        if len(shown) > 120:  # the deep and long documents of issue 11
            shown = shown[:60] + f" ... ({len(shown)} characters)`"
        rows.append((klass, shown, code, msg.replace(str(d) + "/", "")))
    return rows


def observation_rows(d: Path) -> list[tuple[str, str, int, str]]:
    """[[observation]] tables that cannot be (tests/test_calibrate.py's cases), then calibrate given a
    file without observations and a file already calibrated."""
    rows = []
    text = SCENARIO + "\n" + BASE_OBS
    for klass, (old, new), _ in OBSERVATION_CASES:
        f = d / "bad.toml"
        f.write_text(text.replace(old, new, 1))
        code, msg = cli(["validate", f])
        shown = f"`{new.strip()}`".replace("\n", " ")
        rows.append((klass, shown if len(shown) <= 120 else shown[:100] + " ...`", code, msg.replace(str(d) + "/", "")))
    scn = d / "obs.toml"
    scn.write_text(text.replace("low = 1, high = 2", "low = 0, high = 1e9"))
    plain, withobs, calibrated = d / "plain.nc", d / "obs.nc", d / "calibrated.nc"
    plain_scn = d / "plain.toml"
    plain_scn.write_text(SCENARIO)
    cli(["run", plain_scn, "-o", plain, "-q"])
    cli(["run", scn, "-o", withobs, "-q"])
    cli(["calibrate", withobs, "-o", calibrated])
    scn2, withobs2, calibrated2 = d / "obs2.toml", d / "obs2.nc", d / "calibrated2.nc"  # other weights, same runs
    scn2.write_text(text.replace('{ dist = "uniform", low = 1, high = 2 }', '{ dist = "normal", mean = 0, sd = 1e9 }'))
    cli(["run", scn2, "-o", withobs2, "-q"])
    cli(["calibrate", withobs2, "-o", calibrated2])
    for klass, args in (("comparing two files calibrated with different weights", ["compare", calibrated, calibrated2]),
                        ("calibrating a file written without observations", ["calibrate", plain, "-o", d / "c.nc"]),
                        ("calibrating a file already calibrated", ["calibrate", calibrated, "-o", d / "c.nc"]),
                        ("calibrate onto an existing file", ["calibrate", withobs, "-o", plain]),
                        ("calibrate onto its input", ["calibrate", withobs, "-o", withobs, "--force"])):
        code, msg = cli(args)
        shown = " ".join(["artysim"] + [str(a).replace(str(d) + "/", "") for a in args])
        rows.append((klass, f"`{shown}`", code, msg.replace(str(d) + "/", "")))
    return rows


def option_rows(d: Path) -> list[tuple[str, str, int, str]]:
    scn = d / "opts.toml"
    scn.write_text(SCENARIO)
    nc = d / "good.nc"
    cli(["run", scn, "-o", nc, "-q"])
    rows = []
    for command, args, _ in CASES:
        out = d / "out"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        argv = [command] + fill(args, {"scn": scn, "nc": nc, "out": out, "missing": d / "missing"})
        code, msg = cli(argv)
        shown = " ".join(["artysim", command] + [a.replace(str(d) + "/", "") for a in argv[1:]])
        if len(shown) > 160:  # the long arguments of issue 11
            shown = shown[:100] + f" ... ({len(shown)} characters)"
        rows.append((command, f"`{shown}`", code, msg.replace(str(d) + "/", "")))
    return rows


def results_rows(d: Path) -> list[tuple[str, str, int, str]]:
    good = d / "good.nc"
    f = {}
    f["netCDF-4 file artysim did not write"] = d / "foreign.nc"
    xr.Dataset({"x": ("t", np.arange(5))}).to_netcdf(f["netCDF-4 file artysim did not write"])
    f["netCDF-3 file"] = d / "foreign3.nc"
    xr.Dataset({"x": ("t", np.arange(5))}).to_netcdf(f["netCDF-3 file"], format="NETCDF3_CLASSIC")
    data = good.read_bytes()
    f["truncated file (first half)"] = d / "trunc.nc"
    f["truncated file (first half)"].write_bytes(data[: len(data) // 2])
    f["newer results schema"] = d / "newer.nc"
    shutil.copy(good, f["newer results schema"])
    with netCDF4.Dataset(f["newer results schema"], "a") as nc:
        nc.setncattr("artysim_schema_version", 99)
    f["variables missing"] = d / "incomplete.nc"
    with xr.open_dataset(good) as ds:
        ds.drop_vars(["fired_total", "duds"]).load().to_netcdf(f["variables missing"])
    f["not netCDF (CSV text)"] = d / "text.nc"
    f["not netCDF (CSV text)"].write_text("run,fired\n0,1\n")
    f["empty file"] = d / "empty.nc"
    f["empty file"].write_bytes(b"")
    f["a folder"] = d / "dir.nc"
    f["a folder"].mkdir(exist_ok=True)
    f["no such file"] = d / "missing.nc"
    f["a named pipe (FIFO) named .nc"] = d / "fifo.nc"
    if not f["a named pipe (FIFO) named .nc"].exists():
        os.mkfifo(f["a named pipe (FIFO) named .nc"])
    # crafted to look like artysim's (tests/test_crafted_results.py has 98 of them)
    sys.path.insert(0, str(REPO / "tests"))
    import ncmutate as M

    crafted = {
        "attribute of the wrong type (seed)": [M.set_attr("seed", 1.5)],
        "attribute missing (start_date)": [M.drop_attr("start_date")],
        "time dimension of 0": [M.resize("time", 0)],
        "sample indices out of range": [M.set_values("sample", lambda a: a + 1000)],
        "variable of the wrong dimensions": [M.redim("fired_total", ("time",))],
        "variable of the wrong dtype": [M.retype("shortage_days", np.float64)],
        "negative counts": [M.set_values("n_short", lambda a: a - 5)],
        "NaN quantile levels": [M.set_values("quantile", lambda a: a * np.nan)],
        "a 150 KB file claiming 5 PiB": [M.resize("run", 2**47), M.set_attr("run_stop", 2**47),
                                          M.set_attr("runs_total", 2**47)],
    }
    for i, (klass, muts) in enumerate(crafted.items()):
        f[klass] = M.copy_with(good, d / f"crafted-{i}.nc", *muts)
    rows = []
    for klass, bad in f.items():
        for args in (["summary", bad], ["merge", "-o", d / "m.nc", bad], ["compare", good, bad],
                     ["plot", bad, "--kind", "fan", "-o", d / "p.png"], ["sensitivity", bad]):
            if args[0] not in main.commands:
                continue
            code, msg = cli(args)
            shown = " ".join(["artysim"] + [str(a).replace(str(d) + "/", "") for a in args])
            rows.append((klass, f"`{shown}`", code, msg.replace(str(d) + "/", "")))
    rows += compare_rows(d, good)
    return rows


def compare_rows(d: Path, good: Path) -> list[tuple[str, str, int, str]]:
    """compare of files that do not line up: other horizon, other start date."""
    scn = d / "cmp.toml"
    rows = []
    for klass, edit in (("compare: different horizons", ("horizon_days = 30", "horizon_days = 40")),
                        ("compare: different start dates", ('"2024-01-01"', '"2024-02-01"'))):
        scn.write_text(SCENARIO.replace(*edit))
        other = d / "cmp.nc"
        cli(["run", scn, "-o", other, "-q", "--force"])
        for extra in ([], ["--common-window"]):
            args = ["compare", good, other, *extra]
            code, msg = cli(args)
            if code == 0:
                continue
            shown = " ".join(["artysim"] + [str(a).replace(str(d) + "/", "") for a in args])
            rows.append((klass, f"`{shown}`", code, msg.replace(str(d) + "/", "")))
    return rows


def output_rows(d: Path) -> list[tuple[str, str, int, str]]:
    rows = []
    good = d / "good.nc"

    def add(klass, args, note=""):
        code, msg = cli(args)
        shown = " ".join(["artysim"] + [str(a).replace(str(d) + "/", "") for a in args])
        rows.append((klass, f"`{shown}`{note}", code, msg.replace(str(d) + "/", "")))

    add("output exists (no --force)", ["run", NK, "--runs", "100", "-o", good])
    add("output folder missing", ["run", NK, "--runs", "100", "-o", d / "nope" / "r.nc"])
    (d / "afile").write_text("x")
    add("output folder is a file", ["run", NK, "--runs", "100", "-o", d / "afile" / "r.nc"])
    add("output is a folder (--force)", ["run", NK, "--runs", "100", "-o", d / "dir.nc", "--force"])
    add("results file larger than the free disk", ["run", NK, "--runs", "1000000000", "-o", d / "huge.nc"],
        " (real free space)")
    real = resources.available_memory
    resources.available_memory = lambda: 200 * 2**20
    try:
        add("more memory than available", ["run", NK, "--set", "scenario.horizon_days=3650", "--runs", "1000",
                                           "-o", d / "long.nc"], " (200 MB available, simulated)")
    finally:
        resources.available_memory = real
    fs = d / "fs"
    fs.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(fs)],
                                                   capture_output=True).returncode == 0
    if mounted:
        try:
            add("disk full while writing", ["run", NK, "--runs", "20000", "-o", fs / "r.nc", "--no-resource-check"],
                " (a 1 MiB tmpfs)")
        finally:
            subprocess.run(["umount", "-l", str(fs)], check=False)
    real_batch = writer.ResultsWriter.write_batch

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    writer.ResultsWriter.write_batch = full
    try:
        add("disk full while writing (ENOSPC)", ["run", NK, "--runs", "100", "-o", d / "enospc.nc"],
            " (ENOSPC simulated)")
    finally:
        writer.ResultsWriter.write_batch = real_batch
    return rows


def _cell(s: str) -> str:
    return s.replace("|", "\\|")


def render() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        sections = [
            ("Scenario files (`artysim validate bad.toml`; `run` gives the same line)", scenario_rows(d)),
            ("Observations and calibration", observation_rows(d)),
            ("Command-line options", option_rows(d)),
            ("Results files given to the reading commands", results_rows(d)),
            ("Output files, disk and memory", output_rows(d)),
        ]
    out = ["# Bad input: what artysim says", "",
           "Every row was produced by running the command line on real files (`python docs/gen_bad_input.py`",
           "regenerates this page). Every refusal is one line on stderr (after any progress lines) and exit",
           "status 2; nothing is written, no temporary file is left, an existing result is not touched.",
           "File names are shown relative to the temporary folder the generator used; the command-line rows",
           "are the cases of tests/test_bad_options.py, the scenario classes those fuzzed by tests/test_fuzz.py.",
           ""]
    total = 0
    for title, rows in sections:
        out += [f"## {title}", "", "| class | input | exit | message |", "| --- | --- | --- | --- |"]
        for klass, shown, code, msg in rows:
            out.append(f"| {_cell(klass)} | {_cell(shown)} | {code} | {_cell(msg)} |")
            total += 1
        out.append("")
    out.append(f"{total} inputs tried.")
    text = "\n".join(out) + "\n"
    return re.sub(r"/tmp/tmp\w+", ".", re.sub(r"/tmp/tmp\w+/", "", text))


def main_() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.parse_args()
    text = render()
    bad = [line for line in text.splitlines() if line.startswith("|") and "| 2 |" not in line
           and not line.startswith(("| class", "| ---"))]
    if bad:
        print("rows that did not exit with status 2:\n" + "\n".join(bad), file=sys.stderr)
    DOC.write_text(text)
    print(f"wrote {DOC} ({text.count(chr(10))} lines)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main_()
