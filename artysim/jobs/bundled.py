"""The scenarios bundled with artysim (``configs/``, shipped in the wheel) and names that resolve to them."""

from __future__ import annotations

from pathlib import Path

from artysim.errors import ArtysimError

PACKAGE_CONFIGS = Path(__file__).resolve().parent.parent / "configs"
REPO_CONFIGS = Path(__file__).resolve().parent.parent.parent / "configs"

def bundled_dir() -> Path | None:
    for d in (PACKAGE_CONFIGS, REPO_CONFIGS):
        if d.is_dir() and any(d.glob("*.toml")):
            return d
    return None


def bundled() -> list[Path]:
    d = bundled_dir()
    return sorted(d.glob("*.toml")) if d else []


def resolve(path_or_name: str) -> Path:
    """A scenario path, or the name of a bundled scenario."""
    p = Path(path_or_name)
    if p.exists():
        return p
    for b in bundled():
        if b.stem == path_or_name or b.name == path_or_name:
            return b
    return p  # scenario.load reports the missing file


def named(name: str) -> Path:
    """The bundled scenario called ``name`` (its file's stem or name); ArtysimError if there is none."""
    files = bundled()
    for b in files:
        if name in (b.stem, b.name):
            return b
    have = ", ".join(b.stem for b in files) or "none found"
    raise ArtysimError(f"no bundled scenario named '{name}' (bundled: {have})")


def citations(name: str) -> list[str]:
    """The rows of the figures table that bundled scenario ``name`` cites, one line each."""
    from artysim.model import figures

    path = named(name)
    return figures.citation_lines(path.read_text(encoding="utf-8"), f"configs/{path.name}")
