"""Fingerprints of results files: every variable's dims, dtype, bytes and attributes, and every global
attribute, as a JSON-able dict, so two versions' files can be compared variable by variable without
keeping the files themselves in the repository."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import netCDF4
import numpy as np

#: global attributes that name the writing version, time or command line, not the results
VOLATILE_ATTRS = ("source", "history", "artysim_version", "scenario_file",
                  # run --until records its rule and stopping point; solve records its search
                  "until_rule", "until_met", "until_runs", "until_looks", "until_value")


def _jsonable(v):
    if isinstance(v, np.ndarray):
        return [_jsonable(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        return v.item()
    return v


def fingerprint(path: str | Path) -> dict:
    """{"attrs": {...}, "variables": {name: {"dims", "dtype", "shape", "sha256", "attrs"}}}."""
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_maskandscale(False)
        attrs = {k: _jsonable(nc.getncattr(k)) for k in sorted(nc.ncattrs()) if k not in VOLATILE_ATTRS}
        out = {}
        for name in sorted(nc.variables):
            v = nc.variables[name]
            data = v[...]
            if v.dtype is str:
                raw = json.dumps([str(x) for x in np.asarray(data).ravel()]).encode()
                dtype = "str"
            else:
                arr = np.ascontiguousarray(np.asarray(data))
                raw = arr.tobytes()
                dtype = arr.dtype.str
            out[name] = {
                "dims": list(v.dimensions), "dtype": dtype, "shape": list(v.shape),
                "sha256": hashlib.sha256(raw).hexdigest(),
                "attrs": {k: _jsonable(v.getncattr(k)) for k in sorted(v.ncattrs())},
            }
    return {"attrs": attrs, "variables": out}


def differences(a: dict, b: dict) -> list[str]:
    """What differs between two fingerprints, one line each (empty when identical)."""
    diff = []
    for k in sorted(set(a["attrs"]) | set(b["attrs"])):
        if a["attrs"].get(k) != b["attrs"].get(k):
            diff.append(f"global attribute {k}: {str(a['attrs'].get(k))[:80]!r} != {str(b['attrs'].get(k))[:80]!r}")
    for k in sorted(set(a["variables"]) | set(b["variables"])):
        va, vb = a["variables"].get(k), b["variables"].get(k)
        if va is None or vb is None:
            diff.append(f"variable {k}: only in {'the second' if va is None else 'the first'} file")
            continue
        for field in ("dims", "dtype", "shape", "attrs", "sha256"):
            if va[field] != vb[field]:
                diff.append(f"variable {k}: {field} differs")
    return diff
