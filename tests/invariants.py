"""Invariants every run must satisfy, in one place, for kernel outputs and for results files.

Conservation per run and source: ``INFLOWS`` and ``OUTFLOWS`` name kernel columns (``layout.P_*``)
and results variables; every one must exist (a renamed column or variable fails loudly, it is never
skipped), so a new mechanism (refurbishment, depot strikes, ...) only adds a line here:

    initial + received [+ refurbished] - fired [- lost] = final

Re-fire (``demand.refire``) extends the fire balance: rounds asked are the wanted fire plus the re-fire
corrections, ``demand + refire_asked = fired + shortfall``; re-fired rounds are part of fired, by source.
"""

from __future__ import annotations

import numpy as np

from artysim.core import layout

#: (kernel per-source constant, results variable) of flows into and out of a source's stock
INFLOWS = [("P_INITIAL", "initial_stock"), ("P_RECEIVED", "received"), ("P_REFURBISHED", "refurbished")]
OUTFLOWS = [("P_FIRED", "fired_by_source"), ("P_LOST", "lost")]
FINAL = ("P_FINAL", "stock_final_by_source")

INT64_MAX = np.iinfo(np.int64).max


def _cols(pairs) -> list[int]:
    return [getattr(layout, k) for k, _ in pairs]


def balance_kernel(per_source: np.ndarray) -> np.ndarray:
    """inflows - outflows - final, per run and source (zero when conservation holds)."""
    ps = per_source.astype(np.int64)
    inflow = sum(ps[:, :, c] for c in _cols(INFLOWS))
    outflow = sum(ps[:, :, c] for c in _cols(OUTFLOWS))
    return inflow - outflow - ps[:, :, getattr(layout, FINAL[0])]


def balance_dataset(ds) -> np.ndarray:
    """The same balance from a results file's per-run, per-source variables."""
    def get(name):
        return np.asarray(ds[name].values, dtype=np.int64)

    inflow = sum(get(v) for _, v in INFLOWS)
    outflow = sum(get(v) for _, v in OUTFLOWS)
    return inflow - outflow - get(FINAL[1])


def _fail(what: str, bad: np.ndarray) -> str:
    runs = np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))[:5]
    return f"{what} violated in {int(bad.reshape(bad.shape[0], -1).any(axis=1).sum())} runs (first: {runs.tolist()})"


def check_run_outputs(model, totals: np.ndarray, per_source: np.ndarray) -> None:
    """Assert every per-run invariant on kernel outputs (runs x N_TOTALS, runs x sources x N_PER_SOURCE)."""
    k = layout
    T = model.horizon
    ps = per_source
    bal = balance_kernel(ps)
    assert (bal == 0).all(), _fail("conservation initial + received - fired = final", bal != 0)
    for name in ("P_INITIAL", "P_RECEIVED", "P_FIRED", "P_DUDS", "P_EFFECTIVE", "P_FINAL", "P_DISPATCHED",
                 "P_REFURBISHED", "P_LOST", "P_REFIRED"):
        col = ps[:, :, getattr(k, name)]
        assert (col >= 0).all(), _fail(f"{name} >= 0 (no negative stock or flow)", col < 0)
    fired, duds, eff = ps[:, :, k.P_FIRED], ps[:, :, k.P_DUDS], ps[:, :, k.P_EFFECTIVE]
    assert (duds <= fired).all(), _fail("duds <= fired", duds > fired)
    assert (eff <= fired - duds).all(), _fail("effective <= fired - duds", eff > fired - duds)
    imports = model.kinds == k.KIND_IMPORT
    rec, disp = ps[:, imports, k.P_RECEIVED], ps[:, imports, k.P_DISPATCHED]
    assert (rec <= disp).all(), _fail("received <= dispatched (imports)", rec > disp)
    t = totals
    dem, fir, eff_t, short = t[:, k.O_DEMAND], t[:, k.O_FIRED], t[:, k.O_EFFECTIVE], t[:, k.O_SHORTFALL]
    assert (dem >= 0).all() and (dem < INT64_MAX).all(), _fail("0 <= demand", dem < 0)
    ask = t[:, k.O_REFIRE_ASKED]
    refired = ps[:, :, k.P_REFIRED]
    assert (ask >= 0).all(), _fail("refire asked >= 0", ask < 0)
    assert (refired <= fired).all(), _fail("refired <= fired", refired > fired)
    assert (refired.sum(axis=1) <= ask).all(), _fail("refired <= refire asked", refired.sum(axis=1) > ask)
    assert (fir - refired.sum(axis=1) <= dem).all(), _fail("first salvo <= demand", fir - refired.sum(axis=1) > dem)
    assert (fir <= dem + ask).all(), _fail("fired <= demand + refire asked", fir > dem + ask)
    assert (short == dem + ask - fir).all(), _fail("shortfall = demand + refire asked - fired",
                                                   short != dem + ask - fir)
    assert (fired.sum(axis=1) == fir).all(), _fail("sum of fired by source = fired", fired.sum(axis=1) != fir)
    assert (eff.sum(axis=1) == eff_t).all(), _fail("sum of effective by source = effective", eff.sum(axis=1) != eff_t)
    assert (eff_t <= fir - duds.sum(axis=1)).all()
    final = ps[:, :, k.P_FINAL].sum(axis=1)
    assert (t[:, k.O_STOCK_FINAL] == final).all(), _fail("stock_final = sum by source", t[:, k.O_STOCK_FINAL] != final)
    smin = t[:, k.O_STOCK_MIN]
    assert ((smin >= 0) & (smin <= final)).all(), _fail("0 <= stock_min <= stock_final", (smin < 0) | (smin > final))
    sd, fs = t[:, k.O_SHORT_DAYS], t[:, k.O_FIRST_SHORT]
    assert ((sd >= 0) & (sd <= T)).all(), _fail("0 <= shortage days <= horizon", (sd < 0) | (sd > T))
    assert ((fs >= -1) & (fs < T)).all(), _fail("first shortage day in the horizon or none", (fs < -1) | (fs >= T))
    assert ((fs == -1) == (sd == 0)).all(), _fail("never short <=> no shortage day", (fs == -1) != (sd == 0))
    assert (short[sd == 0] <= dem[sd == 0]).all()


def check_components(comp_src: np.ndarray, T: int, received: np.ndarray, per_component: np.ndarray) -> None:
    """Per-run invariants of component lines (comp_src: the source of each line; received: runs x sources;
    per_component: runs x lines x N_PER_COMPONENT): each line's units are conserved (initial + produced =
    assembled + final), every day some line of the source binds (it is left at 0), so its lines' binding
    days add to at least the horizon and one of them ends empty."""
    k = layout
    pc = per_component
    for s in np.unique(comp_src):
        lines = np.flatnonzero(comp_src == s)
        assembled = received[:, s][:, None]
        bal = pc[:, lines, k.C_INITIAL] + pc[:, lines, k.C_PRODUCED] - assembled - pc[:, lines, k.C_FINAL]
        assert (bal == 0).all(), _fail("component conservation initial + produced = assembled + final", bal != 0)
        for col in (k.C_INITIAL, k.C_PRODUCED, k.C_FINAL, k.C_BOUND):
            assert (pc[:, lines, col] >= 0).all(), _fail("component counts >= 0", pc[:, lines, col] < 0)
        bound = pc[:, lines, k.C_BOUND]
        assert (bound <= T).all(), _fail("binding days <= horizon", bound > T)
        assert (bound.sum(axis=1) >= T).all(), _fail("some line binds every day", bound.sum(axis=1) < T)
        if T > 0:
            empty = pc[:, lines, k.C_FINAL].min(axis=1)
            assert (empty == 0).all(), _fail("the last day's binding line ends empty", empty != 0)


def check_dataset(ds) -> None:
    """Assert the per-run invariants on a results file opened with ``artysim.open_results``."""
    bal = balance_dataset(ds)
    assert (bal == 0).all(), _fail("conservation (file)", bal != 0)
    fired = np.asarray(ds["fired_by_source"].values, dtype=np.int64)
    duds = np.asarray(ds["duds"].values, dtype=np.int64)
    eff = np.asarray(ds["effective_by_source"].values, dtype=np.int64)
    assert (duds <= fired).all() and (eff <= fired - duds).all() and (eff >= 0).all()
    dem = np.asarray(ds["demand_total"].values, dtype=np.int64)
    fir = np.asarray(ds["fired_total"].values, dtype=np.int64)
    ask = np.asarray(ds["refire_asked_total"].values, dtype=np.int64)
    refired = np.asarray(ds["refired"].values, dtype=np.int64)
    assert (refired >= 0).all() and (refired <= fired).all() and (refired.sum(axis=1) <= ask).all()
    assert (fir <= dem + ask).all() and (fired.sum(axis=1) == fir).all()
    assert (np.asarray(ds["shortfall_total"].values, dtype=np.int64) == dem + ask - fir).all()
    final = np.asarray(ds["stock_final_by_source"].values, dtype=np.int64)
    assert (final >= 0).all() and (np.asarray(ds["stock_min"].values) >= 0).all()
    assert (np.asarray(ds["stock_final"].values, dtype=np.int64) == final.sum(axis=1)).all()
    for v in ("stock_sample", "fired_sample"):
        assert (np.asarray(ds[v].values) >= 0).all(), f"{v} negative"
    if "component" in ds.dims:
        names = [str(x) for x in ds["source"].values]
        comp_src = np.array([names.index(str(x)) for x in ds["component_source"].values])
        pc = np.zeros((int(ds.sizes["run"]), len(comp_src), layout.N_PER_COMPONENT), dtype=np.int64)
        pc[:, :, layout.C_INITIAL] = np.asarray(ds["component_initial"].values)
        pc[:, :, layout.C_PRODUCED] = np.asarray(ds["component_produced"].values)
        pc[:, :, layout.C_FINAL] = np.asarray(ds["component_final"].values)
        pc[:, :, layout.C_BOUND] = np.asarray(ds["component_bound_days"].values)
        check_components(comp_src, int(ds.sizes["time"]), np.asarray(ds["received"].values), pc)
