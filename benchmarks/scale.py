"""What a 10^8-run study needs: a real study of N runs in K shards (default 10^6 in 100), for the
default per-run variables and for a minimal ``[output] per_run``: the shards' and the merged file's
bytes per run, the merge's time and peak memory (``artysim merge`` in its own process), the
simulation's run-days/s; then the same extrapolated to 10^8 runs in K shards.

    python benchmarks/scale.py [--runs 1000000] [--shards 100] [--threads 2] [--out-dir /tmp/artysim-scale]
                               [--only default|minimal] [--json FILE]

Shards are computed in this process one after another (``jobs.run.run``, as an array task would);
the files are removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from artysim.jobs import run as runner  # noqa: E402
from artysim.model.load import load  # noqa: E402
from artysim.results import merge as merge_mod  # noqa: E402
from artysim.results import shards as shards_mod  # noqa: E402

SCENARIO = REPO / "benchmarks" / "b1.toml"
MINIMAL = ["parameters", "first_shortage_day"]  # sensitivity, p_any_shortage, quantiles of the first shortage


def measure(label: str, sets: list[str], runs: int, shards: int, threads: int, folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    loaded = load(SCENARIO, sets)
    T = loaded.model.horizon
    t0 = time.perf_counter()
    paths = []
    for k in range(shards):
        p = folder / shards_mod.shard_name("b1", k, shards)
        runner.run(str(SCENARIO), sets=sets, runs=runs, output=p, threads=threads, quiet=True, shard=k,
                   shards=shards, force=True)
        paths.append(p)
    sim_s = time.perf_counter() - t0
    shard_bytes = sum(p.stat().st_size for p in paths)
    infos = [shards_mod.read_info(p) for p in paths]
    est_mem, est_parts = merge_mod.estimate_memory(infos)
    out = folder / "merged.nc"
    cmd = [sys.executable, "-m", "artysim.cli", "merge", "-o", str(out), "--force", str(folder / "b1.shard-*.nc")]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t1 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    merge_s = time.perf_counter() - t1
    if status != 0:
        raise SystemExit(f"merge failed ({status})")
    merged_bytes = out.stat().st_size
    return {"label": label, "per_run": sets, "runs": runs, "shards": shards, "horizon": T, "threads": threads,
            "simulate_s": sim_s, "run_days_per_s": runs * T / sim_s, "shard_bytes": shard_bytes,
            "merged_bytes": merged_bytes, "bytes_per_run": merged_bytes / runs, "merge_s": merge_s,
            "merge_peak_rss": usage.ru_maxrss * 1024, "merge_estimate": est_mem,
            "merge_estimate_parts": est_parts}


def extrapolate(m: dict, target: int, shards: int) -> dict:
    """Linear in runs: file bytes, merge time (an upper bound: the measured time includes the merge's
    fixed costs) and simulation time. The merge's memory is its own estimate (results/merge.py,
    calibrated by benchmarks/resources.py --merge): one shard's runs, which grow with the shard's size,
    plus the per-day counts and trajectory sample, which do not."""
    f = target / m["runs"]
    parts = dict(m["merge_estimate_parts"])
    parts["one shard's runs"] *= (target / shards) / (m["runs"] / m["shards"])
    return {"runs": target, "shards": shards, "merged_bytes": m["merged_bytes"] * f,
            "disk_bytes": (m["merged_bytes"] + m["shard_bytes"]) * f, "merge_s": m["merge_s"] * f,
            "merge_memory": merge_mod.MERGE_BASE + sum(parts.values()),
            "node_hours": target * m["horizon"] / m["run_days_per_s"] / 3600}


def gb(x: float) -> str:
    return f"{x / 1e9:.2f} GB" if x < 1e12 else f"{x / 1e12:.2f} TB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10**6)
    ap.add_argument("--shards", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--target", type=int, default=10**8)
    ap.add_argument("--out-dir", default="/tmp/artysim-scale")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", help="also write the measurements to this file")
    ap.add_argument("--only", choices=("default", "minimal"), help="measure one of the two outputs (a 10^7-run "
                    "check of both takes twice the compute)")
    a = ap.parse_args()
    base = Path(a.out_dir)
    rows = []
    kinds = (("default", "default (all per-run variables)", []),
             ("minimal", f"per_run = {json.dumps(MINIMAL)}", [f"output.per_run={json.dumps(MINIMAL)}"]))
    for _, label, sets in (k for k in kinds if a.only in (None, k[0])):
        m = measure(label, sets, a.runs, a.shards, a.threads, base / f"s{len(rows)}")
        m["at_target"] = extrapolate(m, a.target, a.shards)
        rows.append(m)
        if not a.keep:
            shutil.rmtree(base / f"s{len(rows) - 1}", ignore_errors=True)
    print(f"b1 ({rows[0]['horizon']} days), {a.runs:,} runs in {a.shards} shards, {a.threads} threads:")
    print("| per-run variables | bytes/run | merged file | shards | merge time | merge peak RSS | run-days/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for m in rows:
        print(f"| {m['label']} | {m['bytes_per_run']:.0f} | {gb(m['merged_bytes'])} | {gb(m['shard_bytes'])} | "
              f"{m['merge_s']:.1f} s | {m['merge_peak_rss'] / 1e6:.0f} MB | {m['run_days_per_s'] / 1e6:.1f} M |")
    print(f"\nextrapolated to {a.target:,} runs in {a.shards} shards (linear in runs; a merge holds one shard):")
    print("| per-run variables | merged file | disk (shards + merged) | merge time | merge memory | node-hours |")
    print("| --- | --- | --- | --- | --- | --- |")
    for m in rows:
        x = m["at_target"]
        print(f"| {m['label']} | {gb(x['merged_bytes'])} | {gb(x['disk_bytes'])} | {x['merge_s'] / 60:.0f} min | "
              f"{x['merge_memory'] / 1e9:.1f} GB | {x['node_hours']:.1f} |")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
