"""The layers hold at run time too: reading, summarising, comparing, plotting and validating never import
numba (nor compile anything), and running never imports xarray or matplotlib. (``lint-imports`` checks the
same statically, from the import graph; this checks what a real process loads.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NK = REPO / "configs" / "nk-deal-2023.toml"


def _modules_after(code: str) -> set[str]:
    """The top-level modules a fresh interpreter has loaded after running ``code``."""
    probe = textwrap.dedent(code) + "\nimport sys\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert p.returncode == 0, p.stderr
    return set(p.stdout.strip().splitlines()[-1].split())


@pytest.fixture(scope="module")
def results_file(tmp_path_factory) -> Path:
    """A results file to read (written in this process: what is probed is the reading processes)."""
    from artysim.jobs import run as runner

    return runner.run(str(NK), runs=300, output=tmp_path_factory.mktemp("layers") / "nk.nc", quiet=True)


def _cli(*args: str) -> str:
    return f"""
from artysim.cli import main
try:
    main.main(args={list(args)!r}, prog_name="artysim", standalone_mode=False)
except SystemExit as e:
    assert not e.code, e.code
"""


def test_validate_imports_no_numba():
    loaded = _modules_after(_cli("validate", str(NK)))
    assert "artysim" in loaded and "numba" not in loaded and "llvmlite" not in loaded


#: the report draws every figure of two files (~40 s here, the rest a few each): marked slow, run by .ci/run
@pytest.mark.parametrize("command", ["summary", "compare", "plot", "sensitivity",
                                     pytest.param("report", marks=pytest.mark.slow)])
def test_reading_commands_import_no_numba(command, results_file, tmp_path):
    args = {"summary": ("summary", str(results_file)),
            "compare": ("compare", str(results_file), str(results_file)),
            "plot": ("plot", str(results_file), "--kind", "fan", "-o", str(tmp_path / "fan.png")),
            "sensitivity": ("sensitivity", str(results_file)),
            "report": ("report", str(results_file), str(results_file), "-o", str(tmp_path / "r.html"))}[command]
    loaded = _modules_after(_cli(*args))
    assert "xarray" in loaded  # it did read the file
    assert "numba" not in loaded and "llvmlite" not in loaded


def test_python_api_reads_without_numba(results_file):
    loaded = _modules_after(f"""
import artysim
ds = artysim.open_results({str(results_file)!r})
ds.artysim.summary()
""")
    assert "numba" not in loaded


def test_run_imports_no_xarray_nor_matplotlib(tmp_path):
    loaded = _modules_after(_cli("run", str(NK), "--runs", "50", "-o", str(tmp_path / "r.nc"), "-q"))
    assert "numba" in loaded  # it did simulate
    assert "xarray" not in loaded and "matplotlib" not in loaded


def test_layout_page_names_every_module():
    """The Layout table (docs/layout.md) names every module of the package, so the map cannot drift from
    the tree."""
    text = (REPO / "docs" / "layout.md").read_text()
    layout = text[text.index("## Layout"):]
    modules = sorted(str(p.relative_to(REPO / "artysim")) for p in (REPO / "artysim").rglob("*.py")
                     if p.name != "__init__.py")
    missing = [m for m in modules if f"`{m}`" not in layout]
    assert not missing, f"modules missing from the Layout section of docs/layout.md: {missing}"
