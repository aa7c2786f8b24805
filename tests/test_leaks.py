"""The whole model never leaks randomness: for each bundled scenario and each of its parameters and
mechanisms, change that one input and every per-run output that does not depend on it (the table in
``tests/dependencies.py``) stays bit-identical, run by run. 200 runs each, full horizons."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from dependencies import MECHANISM_INPUT, MECHANISMS, depends, locate, outputs, values
from support import simulate

from artysim.errors import ArtysimError
from artysim.jobs.solve import scaled
from artysim.model.load import Loaded
from artysim.model.scenario import parse, parse_toml, read_text

REPO = Path(__file__).resolve().parent.parent
CONFIGS = sorted((REPO / "configs").glob("*.toml")) + [REPO / "tests" / "data" / "all-mechanisms.toml"]
RUNS = 200
SEED = 99
COVERAGE: dict[str, list[int]] = {}  # scenario -> [inputs changed, outputs checked equal, outputs allowed]


def _loaded(raw: dict, origin: str) -> Loaded | None:
    try:
        return Loaded(parse(copy.deepcopy(raw), origin), "", raw, [], origin)
    except ArtysimError:
        return None


def _perturbed(raw: dict, path: str, origin: str) -> Loaded | None:
    """The scenario with only ``path`` changed (its distribution scaled, or the number moved), or None."""
    where = locate(raw, path)
    if where is None:
        return None
    node, key = where
    old = node[key]
    tries = [scaled(old, f, path) for f in (0.9, 1.1, 0.5)] if not isinstance(old, bool) else []
    if isinstance(old, (int, float)):
        tries += [old + 0.05, old + 1]
    for new in tries:
        if json.dumps(new, sort_keys=True) == json.dumps(old, sort_keys=True):
            continue
        doc = copy.deepcopy(raw)
        n2, k2 = locate(doc, path)
        n2[k2] = new
        got = _loaded(doc, origin)
        if got is not None:
            return got
    return None


#: the parameters each mechanism brings (path prefixes); correlations naming them go with it
_GONE = {"accuracy": ["source.{src}.accuracy"], "lots": ["source.{src}.lot_concentration"], "strikes": ["strikes."],
         "rationing": ["policy."], "disruptions": ["source.{src}.disruptions."],
         "rejection": ["source.{src}.reject_on_receipt", "source.{src}.rework_"],
         "legacy": ["source.{src}.legacy", "source.{src}.refurbish"]}


def _mechanism_off(raw: dict, mech: str, src: str | None) -> tuple[dict, list[str]] | None:
    """The scenario without the mechanism, and the parameters whose correlation went with it."""
    doc = copy.deepcopy(raw)
    s = next((x for x in doc["source"] if x["name"] == src), None) if src else None
    if mech == "accuracy" and s is not None and "accuracy" in s:
        s["accuracy"] = 1.0
    elif mech == "lots" and s is not None and "lot_concentration" in s:
        del s["lot_concentration"]
    elif mech == "strikes" and "strikes" in doc:
        del doc["strikes"]
    elif mech == "rationing" and "reserve_days" in doc.get("policy", {}):
        del doc["policy"]["reserve_days"], doc["policy"]["ration_fraction"]
    elif mech == "disruptions" and s is not None and "disruptions" in s:
        del s["disruptions"]
    elif mech == "rejection" and s is not None and "reject_on_receipt" in s:
        for k in ("reject_on_receipt", "rework_days", "rework_yield"):
            s.pop(k, None)
    elif mech == "legacy" and s is not None and "legacy" in s:
        for k in ("legacy", "legacy_serviceable", "refurbish_per_day", "refurbished_dud_rate"):
            s.pop(k, None)
    else:
        return None
    gone = [g.replace("{src}", src or "") for g in _GONE[mech]]
    partners: list[str] = []
    kept = []
    for c in doc.get("correlation", []):
        if any(p.startswith(g) for p in c["between"] for g in gone):
            partners += [p for p in c["between"] if not any(p.startswith(g) for g in gone)]
        else:
            kept.append(c)
    if "correlation" in doc:
        doc["correlation"] = kept
    return doc, partners


def _check(base, other, allowed: set[str], what: str, scn: str) -> None:
    """Every output of ``base`` outside ``allowed`` equals ``other``'s, run by run (bitwise)."""
    names = base.model.scenario.source_names()
    params = [base.model.params[i].path for i in base.model.sampled]
    theirs = {other.model.params[i].path for i in other.model.sampled}
    outs = [o for o in outputs(names, params, base.per_regime.shape[1] > 1)
            if not (o.startswith("parameters:") and o.split(":", 1)[1] not in theirs)]
    checked = 0
    for o in outs:
        if o in allowed:
            continue
        a, b = values(base, o), values(other, o)
        assert np.array_equal(a, b), f"{scn}: changing {what} changed {o} in {int(np.sum(a != b))} runs"
        checked += 1
    c = COVERAGE.setdefault(scn, [0, 0, 0])
    c[0] += 1
    c[1] += checked
    c[2] += len(outs) - checked


@pytest.fixture(scope="module", params=CONFIGS, ids=lambda p: p.stem)
def scenario(request):
    path = request.param
    raw = parse_toml(read_text(path), str(path))
    base_loaded = _loaded(raw, str(path))
    return path.stem, raw, base_loaded, simulate(base_loaded, RUNS, SEED)


def test_one_parameter_changes_only_what_depends_on_it(scenario):
    name, raw, loaded, base = scenario
    names = loaded.scenario.source_names()
    changed = 0
    for p in loaded.model.params:
        other = _perturbed(raw, p.path, name)
        if other is None:
            continue  # a default the file does not state (e.g. no supply cap)
        allowed = depends(p.path, names) | {f"parameters:{p.path}"}
        _check(base, simulate(other, RUNS, SEED), allowed, p.path, name)
        changed += 1
    assert changed >= len(loaded.model.sampled) // 2, "most parameters of the file were changed and checked"


def test_one_mechanism_off_changes_only_what_depends_on_it(scenario):
    name, raw, loaded, base = scenario
    names = loaded.scenario.source_names()
    for mech in MECHANISM_INPUT:
        for src in (names if "{src}" in MECHANISM_INPUT[mech] else [None]):
            off = _mechanism_off(raw, mech, src)
            if off is None:
                continue
            doc, partners = off
            other = _loaded(doc, name)
            assert other is not None, f"{name}: {MECHANISMS[mech]} is a valid scenario"
            allowed = depends(MECHANISM_INPUT[mech].replace("{src}", src or ""), names)
            for p in partners:  # no longer correlated with what was removed: drawn alone
                allowed |= depends(p, names) | {f"parameters:{p}"}
            _check(base, simulate(other, RUNS, SEED), allowed, MECHANISMS[mech].replace("{src}", src or ""), name)


#: a new shape for a per-shipment distribution: a gamma draws a varying number of numbers per shipment,
#: so on a shared stream it would move every later draw
_GAMMA = {"transit_days": {"dist": "gamma", "mean": 20, "sd": 9},
          "shipment_size": {"dist": "gamma", "mean": 40000, "sd": 25000},
          "containers": {"dist": "gamma", "mean": 250, "sd": 80}}


def test_a_shipment_distribution_changes_only_what_depends_on_it(scenario):
    """An import's transit time or shipment size (or containers per shipment) given a new shape: only
    what depends on it changes (a transit time never moves what was dispatched, a size never moves
    another source or the lots' dud rates), run by run."""
    name, raw, loaded, base = scenario
    names = loaded.scenario.source_names()
    for i, src in enumerate(raw["source"]):
        if src.get("kind") != "import":
            continue
        for key in ("transit_days", "shipment_size"):
            if key not in src:
                continue
            doc = copy.deepcopy(raw)
            s = doc["source"][i]
            path = f"source.{src['name']}.{key}"
            if key == "shipment_size" and isinstance(s[key], dict) and "containers" in s[key]:
                s[key] = {**s[key], "containers": _GAMMA["containers"]}
                path += ".containers"
            else:
                s[key] = _GAMMA[key]
            other = _loaded(doc, name)
            assert other is not None, f"{name}: {path} as a gamma is a valid scenario"
            _check(base, simulate(other, RUNS, SEED), depends(path, names), f"{path} (a gamma)", name)


def test_a_value_turned_into_a_schedule_keeps_its_draws(scenario):
    """A single value replaced by a schedule whose first piece is that value: nothing changes, and the
    first piece's column is the old parameter's, run by run (its stream is the value's)."""
    name, raw, loaded, base = scenario
    start = str(raw["scenario"]["start_date"])
    done = 0
    for p in loaded.model.params:
        if "@" in p.path or p.path.split(".")[-1] not in ("base", "annual", "shipments_per_month"):
            continue
        doc = copy.deepcopy(raw)
        node, key = locate(doc, p.path)
        if isinstance(node[key], list) or (key == "annual" and "annual_end" in node):
            continue
        node[key] = [{"from": start, "value": node[key]}]
        other = _loaded(doc, name)
        sim = simulate(other, RUNS, SEED)
        piece = f"{p.path}@{start}"
        if not p.dist.is_fixed:
            assert np.array_equal(base.param(p.path), sim.param(piece)), f"{name}: {piece} lost the draws of {p.path}"
        names = loaded.scenario.source_names()
        params = [loaded.model.params[i].path for i in loaded.model.sampled]
        for o in outputs(names, params, base.per_regime.shape[1] > 1):
            if o == f"parameters:{p.path}":
                continue
            assert np.array_equal(values(base, o), values(sim, o)), f"{name}: scheduling {p.path} changed {o}"
        done += 1
    c = COVERAGE.setdefault(name, [0, 0, 0])
    c[0] += done


def test_report_coverage():
    """Prints the inputs x outputs checked (pytest -s shows it); runs after the tests above."""
    for scn, (inputs, checked, allowed) in sorted(COVERAGE.items()):
        print(f"leak coverage {scn}: {inputs} inputs changed, {checked} output comparisons bit-identical, "
              f"{allowed} allowed to differ")
    assert all(c[1] > 0 for c in COVERAGE.values()) or not COVERAGE


def test_recorded_keys_are_the_kernels_keys():
    """``layout.key_of`` (pure Python, written to results files) equals the kernel's stream key."""
    from artysim.core import layout, rng

    for seed in (0, 1, 20230913, 2**63 - 1):
        for name in ("model:demand", "model:lots.north_korea", "param:demand.base"):
            kernel = rng.stream_key(np.uint64(seed), np.uint64(layout.path_domain(name)))
            assert layout.key_of(seed, name) == int(kernel)
