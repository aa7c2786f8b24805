"""Results files are identical, variable by variable, to those the version before the layered package
wrote for the same scenario, seed and runs (``tests/data/reference-results.json`` holds their
fingerprints: every variable's dims, dtype, attributes and a SHA-256 of its bytes, and every global
attribute but those naming the version, time and command). One scenario uses every mechanism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fingerprint import differences, fingerprint

from artysim.cli import main

REPO = Path(__file__).resolve().parent.parent
REFERENCE = json.loads((REPO / "tests" / "data" / "reference-results.json").read_text())["files"]
#: variables added since the reference was written (new statistics of the same runs): they must be present,
#: and every variable the reference has must still be identical
ADDED = {"refired", "refire_asked_total", "stock_by_source_quantile", "stock_by_source_mean",
         "arrivals_by_source_mean", "days_on_hand_quantile", "stock_by_source_hist", "stock_by_source_sum",
         "arrivals_by_source_sum", "days_on_hand_hist"}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_results_identical_to_previous_version(name, tmp_path, monkeypatch):
    ref = REFERENCE[name]
    monkeypatch.chdir(REPO)  # the scenario path is recorded as given
    out = tmp_path / f"{name}.nc"
    args = ["run", ref["scenario"], "--runs", str(ref["runs"]), "-o", str(out), "-q"]
    if ref["seed"] is not None:
        args += ["--seed", str(ref["seed"])]
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    new = fingerprint(out)
    assert ADDED <= set(new["variables"]), sorted(ADDED - set(new["variables"]))
    new["variables"] = {k: v for k, v in new["variables"].items() if k not in ADDED}
    # stream_keys lists every stream with its key: streams added since (re-fire, component lines) add
    # lines, and every stream and parameter line of the reference must be there unchanged
    old_keys = ref["fingerprint"]["attrs"].get("stream_keys")
    new_keys = new["attrs"].pop("stream_keys", None)
    if old_keys is not None:
        missing = set(str(old_keys).splitlines()) - set(str(new_keys).splitlines())
        assert not missing, f"stream_keys lost or changed: {sorted(missing)[:5]}"
        ref = {**ref, "fingerprint": {**ref["fingerprint"],
                                      "attrs": {k: v for k, v in ref["fingerprint"]["attrs"].items()
                                                if k != "stream_keys"}}}
    diff = differences(ref["fingerprint"], new)
    assert not diff, "\n".join(diff[:20])


def test_fingerprint_sees_a_changed_value(tmp_path, monkeypatch):
    """The comparison can fail: one changed number in one variable is reported."""
    import netCDF4

    ref = REFERENCE["all-features"]
    monkeypatch.chdir(REPO)
    out = tmp_path / "x.nc"
    r = CliRunner().invoke(main, ["run", ref["scenario"], "--runs", "50", "--seed", "77", "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    before = fingerprint(out)
    with netCDF4.Dataset(out, "a") as nc:
        nc["fired_total"][3] = nc["fired_total"][3] + 1
    assert differences(before, fingerprint(out)) == ["variable fired_total: sha256 differs"]
