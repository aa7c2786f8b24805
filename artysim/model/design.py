"""Experimental designs for the sampled parameters' uniforms.

The default design draws each parameter's uniform from its own random stream (engine.Model.uniforms).
``SobolDesign`` replaces those uniforms with rows of a Saltelli design (the layout of
``SALib.sample.sobol.sample`` with ``calc_second_order=False``), so that ``SALib.analyze.sobol`` can
estimate first-order and total Sobol indices from the runs' outputs.

Run ``r`` uses design row ``r``: base point ``i = r // (D + 2)`` of a scrambled Sobol' sequence in
``2 D`` dimensions (seeded with the scenario seed) and slot ``k = r % (D + 2)``: slot 0 is matrix A,
slot 1 + j is A with column j taken from B, slot D + 1 is B. Rows are generated only for the runs
asked for (``fast_forward`` to the first base point), so memory is bounded by the batch and the row
of a run depends only on (seed, D, N, r): shards and merges see the same design as one run.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from artysim.errors import ArtysimError

DESIGNS = ("random", "sobol")
_EPS = 2.0**-53  # keep uniforms inside (0, 1): inverse CDFs of unbounded laws are infinite at 0 and 1


def sobol_base_n(runs: int, d: int) -> int:
    """Base sample size N of a Saltelli design for at least ``runs`` runs over ``d`` parameters:
    the smallest power of two with N (d + 2) >= runs (Sobol' sequences balance only at powers of two)."""
    if d < 1:
        raise ArtysimError("--design sobol needs at least one sampled parameter (this scenario has none)")
    need = max(1, math.ceil(runs / (d + 2)))
    return 1 << (need - 1).bit_length()


def sobol_runs(n_base: int, d: int) -> int:
    """Runs of a Saltelli design without second-order terms: N (D + 2)."""
    return n_base * (d + 2)


@dataclass(frozen=True)
class SobolDesign:
    """Saltelli design rows for ``d`` sampled parameters, base size ``n_base``, scrambled with ``seed``."""

    d: int
    n_base: int
    seed: int

    @property
    def runs(self) -> int:
        return sobol_runs(self.n_base, self.d)

    def attrs(self, parameter_paths: list[str]) -> dict:
        """Global attributes that let ``sensitivity`` (and a reader) recognise and check the design."""
        return {"design": "sobol", "sobol_n": self.n_base, "sobol_d": self.d,
                "sobol_calc_second_order": 0, "sobol_parameters": "\n".join(parameter_paths)}

    def uniforms(self, run0: int, n: int) -> np.ndarray:
        """Design rows of runs run0 .. run0+n-1 (n x d), each in (0, 1)."""
        from scipy.stats import qmc

        if run0 < 0 or run0 + n > self.runs:
            raise ArtysimError(f"runs {run0}..{run0 + n - 1} are outside the Sobol design of {self.runs} runs "
                               f"(N = {self.n_base}, D = {self.d})")
        d, k = self.d, self.d + 2
        if n == 0:
            return np.empty((0, d))
        i0, i1 = run0 // k, (run0 + n - 1) // k + 1
        gen = qmc.Sobol(d=2 * d, scramble=True, seed=self.seed)
        if i0:
            gen.fast_forward(i0)
        with warnings.catch_warnings():  # a batch or shard is a slice of the whole (power-of-two) design
            warnings.filterwarnings("ignore", message=".*balance properties.*", category=UserWarning)
            base = gen.random(i1 - i0)  # (i1 - i0) x 2d: columns [A | B]
        rows = np.arange(run0, run0 + n)
        i = rows // k - i0
        slot = rows % k
        out = base[i, :d].copy()
        is_b = slot == d + 1
        out[is_b] = base[i[is_b], d:]
        ab = (slot >= 1) & (slot <= d)
        j = slot[ab] - 1
        out[np.flatnonzero(ab), j] = base[i[ab], d + j]
        return np.clip(out, _EPS, 1.0 - _EPS)


def make(name: str, runs: int, d: int, seed: int) -> SobolDesign | None:
    """The design named on the command line (None = independent random uniforms)."""
    if name == "random":
        return None
    if name == "sobol":
        return SobolDesign(d=d, n_base=sobol_base_n(runs, d), seed=int(seed))
    raise ArtysimError(f"--design must be one of {', '.join(DESIGNS)} (found {name!r})")


def file_design(path) -> str:
    """The design a results file was written with ("random" for files without the attribute)."""
    import netCDF4

    try:
        with netCDF4.Dataset(path) as nc:
            return str(nc.getncattr("design")) if "design" in nc.ncattrs() else "random"
    except OSError:
        return "unreadable"
