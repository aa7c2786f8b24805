"""The kernel's contract: what ``kernel.simulate_chunk`` takes and writes, as named tuples of arrays and scalars.

Pure Python (no numba): numba compiles a function taking a ``collections.namedtuple`` once per tuple
of field types, so every field has one fixed dtype and rank, listed here. Each tuple is built in one
place: ``KernelModel`` by the model (``artysim.model.build.Model.kernel``), the others by
``artysim.core.engine.run_batches``. Fields are named, not positional: two arrays of the same type can
no longer be swapped unnoticed. ``check`` verifies dtypes and shapes against each other.

Shapes: NS sources, NR regimes (0: no regime chain), NP schedule pieces at most, T days, R runs of a
batch, P per-run parameters, NK streams (``layout.n_streams(NS, NC)``), NB histogram bins, NT threads, NO
observations, NC component lines.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from artysim.core import layout

#: The static tables of one scenario (read only by the kernel).
KernelModel = namedtuple("KernelModel", [
    "horizon",  # int: T, days simulated
    "ring",  # int: days of goods in transit (and in rework) an import tracks
    "groles",  # int64 (N_GROLES,): parameter column (or coded row) of each global role, -1 = absent
    "kinds",  # int64 (NS,): KIND_* of each source
    "roles",  # int64 (NS, N_ROLES): parameter column of each source role, -1 = absent
    "erows",  # int64 (NS, N_EROWS): coded-distribution row of each source event, -1 = none
    "sched_cols",  # int64 (1 + 2 NS + NC, NP): per schedule row (SCHED_DEMAND, sched_rate, sched_size,
    #               sched_component),
    #               the parameter column (rates) or coded row (sizes) of each piece, -1 = none
    "sched_piece",  # int64 (1 + 2 NS + NC, T): the piece of each schedule row in force on each day
    "sched_change",  # bool (T,): days on which some piece starts
    "dcode",  # int64 (ND,): K_* code of each coded-distribution row
    "dpar",  # float64 (ND, KERNEL_PARAMS): its parameters
    "ddv",  # float64 (ND, KERNEL_DISCRETE): discrete values
    "ddc",  # float64 (ND, KERNEL_DISCRETE): discrete cumulative weights
    "logf",  # float64 (LOGF_N,): log(k!) table of the binomial sampler (rng.LOGF)
    "reg_mult",  # int64 (NR,): parameter column of each regime's demand multiplier
    "reg_days",  # int64 (NR,): parameter column of each regime's mean stay, days
    "reg_cum", # float64 (NR, NR): cumulative jump probabilities, row i from regime i
    "reg_pi",  # float64 (NR,): stationary law of the jump chain
    "issue",  # int: ISSUE_PROPORTIONAL or ISSUE_PRIORITY
    "order",  # int64 (NS,): sources in issue priority
    "threshold",  # float: a day is short when shortfall > threshold * demand
    "obs",  # int64 (NO, N_OB): each observation's window, source and accumulation (layout.OB_*)
    "comp_src",  # int64 (NC,): the production source of each component line (a source's lines are contiguous)
    "comp_roles",  # int64 (NC, N_CROLES): parameter column of each component role (layout.CR_*), -1 = absent
])

#: One batch of runs: global runs run0 .. run0 + R - 1.
BatchInputs = namedtuple("BatchInputs", [
    "run0",  # int: global index of the batch's first run
    "keys",  # uint64 (NK,): key of each stream, in layout's stream order
    "params",  # float64 (R, P): per-run parameters
    "n_sample",  # int: runs with global index below it have their trajectories written
])

#: Per-run outputs of one batch (written, every element).
RunOutputs = namedtuple("RunOutputs", [
    "totals",  # int64 (R, N_TOTALS)
    "per_source",  # int64 (R, NS, N_PER_SOURCE)
    "per_regime",  # int64 (R, max(NR, 1), N_PER_REGIME)
    "observed",  # int64 (R, NO, 2): each observation's window sum (and, for a share, all rounds fired)
    "per_component",  # int64 (R, max(NC, 1), N_PER_COMPONENT): each component line's inventory and binding days
])

#: Per-day statistics, *added to* (so several batches may be fed into them); all but the trajectories
#: per thread, summed over threads by the caller; trajectories written for the sampled runs.
DailyAccumulators = namedtuple("DailyAccumulators", [
    "hist",  # int32 (NT, T, N_DAILY, NB): day histograms
    "sums",  # int64 (NT, T, N_DAILY): day sums
    "src_sums",  # int64 (NT, T, 2, NS): rounds fired and effective by source
    "n_short",  # int64 (NT, T): runs short on the day
    "sample_stock",  # int64 (n_sample or 1, T): stock left at the end of each day
    "sample_fired",  # int64 (n_sample or 1, T): rounds fired each day
    "src_hist",  # int32 (NT, T, NS, NB): day histograms of end-of-day stock by source
    "src_day",  # int64 (NT, T, 2, NS): day sums of end-of-day stock and of arrivals by source
    "doh_hist",  # int32 (NT, T, NB): day histograms of days of fire on hand, in hundredths of a day
])


def _expect(name: str, a, dtype, shape: tuple) -> None:
    if not isinstance(a, np.ndarray) or a.dtype != dtype or a.ndim != len(shape):
        got = f"{a.dtype} of rank {a.ndim}" if isinstance(a, np.ndarray) else type(a).__name__
        raise TypeError(f"kernel contract: {name} must be a {np.dtype(dtype)} array of rank {len(shape)}, not {got}")
    for i, n in enumerate(shape):
        if n is not None and a.shape[i] != n:
            raise ValueError(f"kernel contract: {name} has shape {a.shape}, axis {i} must be {n}")


def check(model: KernelModel, batch: BatchInputs | None = None, out: RunOutputs | None = None,
          daily: DailyAccumulators | None = None) -> None:
    """Raise if a field has the wrong dtype, rank or a size that disagrees with the others."""
    ns = model.kinds.shape[0] if isinstance(model.kinds, np.ndarray) else None
    nr = model.reg_mult.shape[0] if isinstance(model.reg_mult, np.ndarray) else None
    nc = model.comp_src.shape[0] if isinstance(model.comp_src, np.ndarray) else None
    T = model.horizon
    i8, f8 = np.int64, np.float64
    for name in ("horizon", "ring", "issue"):
        if not isinstance(getattr(model, name), int):
            raise TypeError(f"kernel contract: {name} must be an int")
    if not isinstance(model.threshold, float):
        raise TypeError("kernel contract: threshold must be a float")
    _expect("groles", model.groles, i8, (layout.N_GROLES,))
    _expect("kinds", model.kinds, i8, (ns,))
    _expect("roles", model.roles, i8, (ns, layout.N_ROLES))
    _expect("erows", model.erows, i8, (ns, layout.N_EROWS))
    _expect("comp_src", model.comp_src, i8, (nc,))
    _expect("comp_roles", model.comp_roles, i8, (nc, layout.N_CROLES))
    _expect("sched_cols", model.sched_cols, i8, (1 + 2 * ns + nc, None))
    _expect("sched_piece", model.sched_piece, i8, (1 + 2 * ns + nc, T))
    _expect("sched_change", model.sched_change, np.bool_, (T,))
    nd = model.dcode.shape[0] if isinstance(model.dcode, np.ndarray) else None
    _expect("dcode", model.dcode, i8, (nd,))
    _expect("dpar", model.dpar, f8, (nd, layout.KERNEL_PARAMS))
    _expect("ddv", model.ddv, f8, (nd, layout.KERNEL_DISCRETE))
    _expect("ddc", model.ddc, f8, (nd, layout.KERNEL_DISCRETE))
    _expect("logf", model.logf, f8, (None,))
    _expect("reg_mult", model.reg_mult, i8, (nr,))
    _expect("reg_days", model.reg_days, i8, (nr,))
    _expect("reg_cum", model.reg_cum, f8, (nr, nr))
    _expect("reg_pi", model.reg_pi, f8, (nr,))
    _expect("order", model.order, i8, (None,))
    _expect("obs", model.obs, i8, (None, layout.N_OB))
    if batch is not None:
        for name in ("run0", "n_sample"):
            if not isinstance(getattr(batch, name), int):
                raise TypeError(f"kernel contract: {name} must be an int")
        _expect("keys", batch.keys, np.uint64, (layout.n_streams(ns, nc),))
        _expect("params", batch.params, f8, (None, None))
    R = batch.params.shape[0] if batch is not None else None
    if out is not None:
        _expect("totals", out.totals, i8, (R, layout.N_TOTALS))
        _expect("per_source", out.per_source, i8, (R, ns, layout.N_PER_SOURCE))
        _expect("per_regime", out.per_regime, i8, (R, max(nr, 1), layout.N_PER_REGIME))
        _expect("observed", out.observed, i8, (R, model.obs.shape[0], 2))
        _expect("per_component", out.per_component, i8, (R, max(nc, 1), layout.N_PER_COMPONENT))
    if daily is not None:
        nt = daily.hist.shape[0] if isinstance(daily.hist, np.ndarray) else None
        _expect("hist", daily.hist, np.int32, (nt, T, layout.N_DAILY, None))
        _expect("sums", daily.sums, i8, (nt, T, layout.N_DAILY))
        _expect("src_sums", daily.src_sums, i8, (nt, T, 2, ns))
        _expect("n_short", daily.n_short, i8, (nt, T))
        _expect("sample_stock", daily.sample_stock, i8, (None, T))
        _expect("sample_fired", daily.sample_fired, i8, (None, T))
        _expect("src_hist", daily.src_hist, np.int32, (nt, T, ns, daily.hist.shape[3]))
        _expect("src_day", daily.src_day, i8, (nt, T, 2, ns))
        _expect("doh_hist", daily.doh_hist, np.int32, (nt, T, daily.hist.shape[3]))
