"""The user guide: generated references up to date, links that resolve, and every documented command run
as printed (in page order, from a copy of a fresh clone)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def test_generated_references_are_up_to_date():
    p = subprocess.run([sys.executable, str(REPO / "docs" / "gen_reference.py"), "--check"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr


def test_the_scenario_reference_names_every_key():
    """Every key the validation models accept appears in the reference (it is generated from them)."""
    from artysim.model import scenario as scn

    text = (REPO / "docs" / "scenario-reference.md").read_text()
    for model in (scn.Meta, scn.RunCfg, scn.Demand, scn.Regime, scn.Stockpile, scn.Production, scn.Import,
                  scn.Disruptions, scn.Policy, scn.Strikes, scn.Correlation, scn.Output):
        for name, info in model.model_fields.items():
            assert f"| `{info.alias or name}` |" in text, f"{model.__name__}.{name}"


def test_links_resolve():
    bad = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            if not (page.parent / target).exists():
                bad.append(f"{page.relative_to(REPO)} -> {target}")
    assert not bad, bad


def test_readme_is_short():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 120 and len(text.split()) <= 1200
    assert max(len(x) for x in text.splitlines() if not x.startswith("first shortage day ")) <= 120
    assert "python -m pytest -q" in text and "$ python3 -m venv .venv" in text


def _commands(text: str) -> list[tuple[str, str]]:
    """(kind, body) in page order: ("sh", a `$ ` command, continuation lines joined), ("python", a snippet),
    ("file", 'NAME\\nTEXT') for a TOML block that starts with ``# file: NAME``."""
    out = []
    for lang, body in FENCE.findall(text):
        if lang == "python":
            out.append(("python", body))
        elif lang == "toml" and body.startswith("# file: "):
            name, _, rest = body.partition("\n")
            out.append(("file", name.removeprefix("# file: ").strip() + "\n" + rest))
        elif lang in ("console", "text", "bash", ""):
            lines = body.splitlines()
            i = 0
            while i < len(lines):
                line = lines[i]
                if line.startswith("$ "):
                    cmd = line[2:]
                    while cmd.endswith("\\") and i + 1 < len(lines):
                        i += 1
                        cmd = cmd[:-1] + " " + lines[i].strip()
                    out.append(("sh", cmd))
                i += 1
    return out


def _artysim_parts(cmd: str) -> str | None:
    """The part of a documented command line that this test runs: the `artysim ...` commands of a line
    (an install step before them is the environment this test already has); None for none."""
    parts = [p.strip() for p in cmd.split("&&")]
    keep = [p for p in parts if p.startswith("artysim ") or p == "artysim"]
    return " && ".join(keep) if keep else None


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """What a fresh clone holds that the commands use, and an `artysim` on PATH that is this checkout's."""
    d = tmp_path_factory.mktemp("clone")
    bin_dir = d / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "artysim"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} -m artysim.cli \"$@\"\n")
    exe.chmod(0o755)
    return d


@pytest.mark.slow
@pytest.mark.parametrize("page", [p.name if p.parent == REPO else f"docs/{p.name}" for p in PAGES
                                  if _commands(p.read_text())])
def test_documented_commands_run_as_printed(page, fresh, tmp_path):
    """Each page's commands and snippets, in order, from a copy of a fresh clone (configs/, data/,
    benchmarks/ and an empty results/), exit 0."""
    work = tmp_path / "clone"
    for sub in ("configs", "data", "benchmarks", "results"):
        if (REPO / sub).is_dir():
            shutil.copytree(REPO / sub, work / sub, ignore=shutil.ignore_patterns("*.nc", "__pycache__"))
    (work / "results").mkdir(exist_ok=True)
    env = dict(os.environ, PATH=f"{fresh / 'bin'}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    ran = 0
    for kind, body in _commands((REPO / page).read_text()):
        if kind == "file":
            name, _, text = body.partition("\n")
            (work / name).write_text(text)
            continue
        if kind == "python":
            p = subprocess.run([sys.executable, "-c", body], cwd=work, env=env, capture_output=True, text=True,
                               timeout=600)
        else:
            cmd = _artysim_parts(body)
            if cmd is None:
                continue
            p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=work, env=env, capture_output=True,
                               text=True, timeout=600)
            if p.returncode == 141 and "| head" in cmd:  # head closed the pipe: the command itself was fine
                continue
        assert p.returncode == 0, f"{page}: {body[:300]}\n{p.stdout[-1500:]}\n{p.stderr[-1500:]}"
        ran += 1
    assert ran
