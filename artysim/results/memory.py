"""How much memory this process may still use: a pure probe (no numba, no jobs layer), shared by the
resource guard of runs (``jobs.resources``) and the readers' check of a file before reading it
(``results.structure``)."""

from __future__ import annotations

from pathlib import Path


def available_memory() -> int | None:
    """Memory this process may still use [bytes]: MemAvailable, capped by its cgroup limits (SLURM)."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        return None
    room = cgroup_room()
    if room is not None:
        avail = room if avail is None else min(avail, room)
    return avail


def cgroup_room(root: Path = Path("/sys/fs/cgroup"), proc: Path = Path("/proc/self/cgroup")) -> int | None:
    """Memory left under the tightest memory limit of this process's cgroup and its ancestors
    (cgroup v2 ``memory.max``, or v1 ``memory.limit_in_bytes``); None where there is none."""
    try:
        lines = proc.read_text().splitlines()
    except OSError:
        return None
    best = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, controllers, path = parts
        if hid == "0" and controllers == "":
            base, limit_name, used_name = root, "memory.max", "memory.current"
        elif "memory" in controllers.split(","):
            base, limit_name, used_name = root / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes"
        else:
            continue
        d = base / path.lstrip("/")
        while True:
            try:
                limit = (d / limit_name).read_text().strip()
                used = int((d / used_name).read_text().strip())
                if limit.isdigit() and int(limit) < 2**60:
                    best = int(limit) - used if best is None else min(best, int(limit) - used)
            except (OSError, ValueError):
                pass
            if d == base or base not in d.parents:
                break
            d = d.parent
    return best
