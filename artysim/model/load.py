"""A scenario file -> its validated document and the model built from it, once.

Every command starts here: the text is read, overridden (``--set``), validated, and the model is built
(which also checks what needs the whole model: correlations between sampled parameters, regimes that
form one chain), so a bad file is refused up front, naming it, and nothing downstream builds it again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from artysim.errors import ScenarioError
from artysim.model.base import shorten
from artysim.model.build import Model, build
from artysim.model.scenario import Scenario, _one_line, apply_overrides, parse, parse_toml, read_text, scenario_hash


class Loaded:
    """A scenario as validated, with the text and overrides it came from and its built model."""

    def __init__(self, scenario: Scenario, text: str, raw: dict, overrides: list[str], origin: str):
        self.scenario = scenario
        self.text = text
        self.raw = raw
        self.overrides = list(overrides)
        self.origin = origin
        self.hash = scenario_hash(raw)
        try:
            self.model: Model = build(scenario)
        except ScenarioError as e:
            raise ScenarioError(f"{origin}: {_one_line(str(e))}") from None


def load(path: str | Path, overrides: list[str] | None = None, flags: Sequence[str] | None = None) -> Loaded:
    """Read, override and validate a scenario file, and build its model. A problem an override brings
    is blamed on it (``flags[i]`` names the option it came from, default ``--set``), not on the file."""
    origin = str(path)
    return _load(read_text(path), list(overrides or []), origin, flags)


def loads(text: str, overrides: list[str] | None = None, origin: str = "<string>",
          flags: Sequence[str] | None = None) -> Loaded:
    """``load`` of a scenario given as text (tests, results files that carry their scenario)."""
    return _load(text, list(overrides or []), origin, flags)


def _load(text: str, overrides: list[str], origin: str, flags: Sequence[str] | None) -> Loaded:
    base = parse_toml(text, origin)
    raw = apply_overrides(base, overrides)
    try:
        return Loaded(parse(raw, origin), text, raw, overrides, origin)
    except ScenarioError as e:
        if not overrides:
            raise
        blame = _blame(base, overrides, origin)
        if blame is None:
            raise
        i, why = blame
        flag = flags[i] if flags is not None and i < len(flags) else "--set"
        raise ScenarioError(f"{flag} {shorten(overrides[i], 200)}: {why} (in {origin})") from e


def _blame(base: dict, overrides: list[str], origin: str) -> tuple[int, str] | None:
    """(index of the first override that makes a valid file invalid, the problem with sources named), or
    None when the file is refused without any override (the problem is the file's)."""
    for k in range(len(overrides) + 1):
        raw = apply_overrides(base, overrides[:k])
        try:
            Loaded(parse(raw, origin), "", raw, overrides[:k], origin)
        except ScenarioError as e:
            if k == 0:
                return None
            return k - 1, _by_name(str(e).removeprefix(f"{origin}: "), raw)
    return None  # only the whole set is refused (it cannot be, as the last step is the whole set)


def _by_name(msg: str, raw: dict) -> str:
    """``source[3].dud_rat`` -> ``source.domestic.dud_rat``: the path as ``--set`` spells it."""
    names = [s.get("name") if isinstance(s, dict) else None for s in raw.get("source") or []]

    def name(m: re.Match) -> str:
        k = int(m.group(1))
        n = names[k] if k < len(names) else None
        return f"source.{n}" if isinstance(n, str) and re.fullmatch(r"[A-Za-z0-9_\-]+", n) else m.group(0)

    return re.sub(r"\bsource\[(\d+)\]", name, msg)
