"""Where numba keeps artysim's compiled kernels, keyed by the core's source.

numba re-compiles a cached function when *its own* file changes, not when a function it calls in
another file does: an edited sampler in ``rng.py`` or a column in ``layout.py`` could otherwise run
inside a stale cached kernel. Caches therefore live in a folder named after a hash of every numba module, under
``$NUMBA_CACHE_DIR`` when set (clusters: a writable, shared path) or the user's cache folder
(works when the install directory is read-only). Imported before any ``@njit`` is applied.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba

_CORE = ("cache.py", "layout.py", "contract.py", "bins.py", "rng.py", "histogram.py", "kernel.py")


def _source_hash() -> str:
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _CORE:
        h.update((here / name).read_bytes())
    h.update(numba.__version__.encode())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    base = os.environ.get("NUMBA_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "artysim")
    return Path(base) / f"kernels-{_source_hash()}"


CACHE_DIR = cache_dir()
numba.config.CACHE_DIR = str(CACHE_DIR)
