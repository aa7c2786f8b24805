"""A scenario file -> its validated document and the model built from it, once.

Every command starts here: the text is read, overridden (``--set``), validated, and the model is built
(which also checks what needs the whole model: correlations between sampled parameters, regimes that
form one chain), so a bad file is refused up front, naming it, and nothing downstream builds it again.
"""

from __future__ import annotations

from pathlib import Path

from artysim.errors import ScenarioError
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


def load(path: str | Path, overrides: list[str] | None = None) -> Loaded:
    """Read, override and validate a scenario file, and build its model."""
    origin = str(path)
    text = read_text(path)
    raw = parse_toml(text, origin)
    raw = apply_overrides(raw, overrides or [])
    scn = parse(raw, origin)
    return Loaded(scn, text, raw, overrides or [], origin)


def loads(text: str, overrides: list[str] | None = None, origin: str = "<string>") -> Loaded:
    """``load`` of a scenario given as text (tests, results files that carry their scenario)."""
    raw = apply_overrides(parse_toml(text, origin), overrides or [])
    return Loaded(parse(raw, origin), text, raw, overrides or [], origin)
