"""The figures table that scenarios cite: ``data/figures.csv``, one published estimate per row.

Found like the bundled scenarios: ``artysim/data/`` in an installed wheel (pyproject's force-include),
else the repository's ``data/``. Scenarios cite rows by id in ``sources = [...]`` lists (in
``[scenario]`` and in the tables whose values rest on them) and in comments ("N20", "N13-N16").
Standard library only: no numba, nothing above ``artysim.model``.
"""

from __future__ import annotations

import csv
import functools
import re
from pathlib import Path

import tomllib

from artysim.errors import ArtysimError

FIGURES = "figures.csv"
#: files of the data folder a scenario's ``sources`` may name besides row ids
DATA_FILES = ("recommended_inputs.csv",)
#: the table's columns, in order
COLUMNS = ("id", "topic", "quantity", "value", "unit", "period", "estimated_by", "source_title", "url",
           "confidence")

PACKAGE_DATA = Path(__file__).resolve().parent.parent / "data"
REPO_DATA = Path(__file__).resolve().parent.parent.parent / "data"

_ROW_ID = re.compile(r"[A-Z]\d{2}")
_RANGE = "[-\u2013]"  # "N13-N16" or "N13–N16"


def data_dir() -> Path | None:
    """The folder holding figures.csv: the installed package's, else the repository's."""
    for d in (PACKAGE_DATA, REPO_DATA):
        if (d / FIGURES).is_file():
            return d
    return None


def figures_path() -> Path:
    d = data_dir()
    if d is None:
        raise ArtysimError(f"no figures table found (looked for {PACKAGE_DATA / FIGURES} and {REPO_DATA / FIGURES})")
    return d / FIGURES


@functools.lru_cache(maxsize=4)
def _read(path: Path) -> dict[str, dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ArtysimError(f"{path}: columns {reader.fieldnames} are not {list(COLUMNS)}")
        table: dict[str, dict[str, str]] = {}
        for line, row in enumerate(reader, start=2):
            rid = row["id"] or ""
            if rid in table:
                raise ArtysimError(f"{path}: line {line}: row id {rid!r} appears twice")
            table[rid] = {k: (row[k] or "") for k in COLUMNS}
    return table


def read_table(path: str | Path | None = None) -> dict[str, dict[str, str]]:
    """Rows by id, in file order (every column as the csv has it, '' where empty)."""
    return dict(_read(Path(path).resolve() if path is not None else figures_path()))


def row_ids(table: dict[str, dict[str, str]]) -> set[str]:
    """The ids that look like row ids (a capital letter and two digits); the table also holds a few
    pasted lines whose first column is not an id (data/README.md)."""
    return {i for i in table if _ROW_ID.fullmatch(i)}


def _prefixes(table: dict[str, dict[str, str]]) -> str:
    return "".join(sorted({i[0] for i in row_ids(table)}))


def _sources_entries(doc) -> list[str]:
    """Every entry of every ``sources`` list (or single string) anywhere in a parsed scenario."""
    out: list[str] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == "sources" and isinstance(v, str):
                out.append(v)
            elif k == "sources" and isinstance(v, list):
                out += [str(x) for x in v]
            else:
                out += _sources_entries(v)
    elif isinstance(doc, list):
        for x in doc:
            out += _sources_entries(x)
    return out


def _id_key(rid: str) -> tuple[str, int]:
    return (rid[0], int(rid[1:])) if _ROW_ID.fullmatch(rid) else (rid, -1)


def cited(text: str, table: dict[str, dict[str, str]]) -> tuple[list[str], list[str]]:
    """(row ids, data files) a scenario's TOML text cites, each sorted and without repeats.

    Row ids: the entries of its ``sources`` lists that are not data files, and every token in the text
    (comments included) that looks like an id of this table (one of its id letters and two digits);
    a range "N13-N16" cites N13 to N16."""
    entries = _sources_entries(tomllib.loads(text))
    files = sorted({e for e in entries if e in DATA_FILES})
    ids = {e for e in entries if e not in DATA_FILES}
    letters = _prefixes(table)
    if letters:
        token = rf"\b([{letters}])(\d{{2}})\b"
        ids |= {a + n for a, n in re.findall(token, text)}
        for a, lo, hi in re.findall(rf"\b([{letters}])(\d{{2}})\s*{_RANGE}\s*\1(\d{{2}})\b", text):
            ids |= {f"{a}{n:02d}" for n in range(int(lo), int(hi) + 1)}
    return sorted(ids, key=_id_key), files


def missing(text: str, table: dict[str, dict[str, str]]) -> list[str]:
    """The cited row ids that are not rows of ``table``."""
    ids, _ = cited(text, table)
    known = row_ids(table)
    return [i for i in ids if i not in known]


def format_row(row: dict[str, str]) -> str:
    """One line: id | quantity | value unit | period | estimated by | source title | url [| confidence]."""
    value = f"{row['value']} {row['unit']}".strip()
    parts = [row["id"], row["quantity"], value, row["period"], row["estimated_by"], row["source_title"], row["url"]]
    if row["confidence"]:
        parts.append(f"confidence: {row['confidence']}")
    return " | ".join(parts)


def citation_lines(text: str, origin: str, path: str | Path | None = None) -> list[str]:
    """The rows a scenario cites, one line each (then the data files it cites); ArtysimError naming the
    ids if any is not in the table."""
    table_path = Path(path) if path is not None else figures_path()
    table = read_table(table_path)
    absent = missing(text, table)
    if absent:
        raise ArtysimError(f"{origin} cites rows that are not in {table_path}: {', '.join(absent)}")
    ids, files = cited(text, table)
    if not ids and not files:
        raise ArtysimError(f"{origin} cites no rows of {table_path}")
    lines = [format_row(table[i]) for i in ids]
    lines += [f"{f} | {table_path.parent / f}" for f in files]
    return lines
