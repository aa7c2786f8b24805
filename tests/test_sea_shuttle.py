"""V02 (data/validation_targets.md): the North Korean sea shuttle by the container, configs/nk-sea-shuttle.toml.

The same code path gives both published totals when only the loading changes: the OSC effective
loading 266-367 rounds a container on ~15,800 containers gives 4.2-5.8M rounds (N25, N26), the ROK
capacity loading 430-470 on the ~28,000 containers of N19 gives >12M. Fixed seed, common random numbers:
the loading is a per-run parameter on its own stream, so changing it leaves every container in place.
Means are held against the published bands and the hand value within K Monte Carlo standard errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tomllib
from click.testing import CliRunner
from support import assert_mc, assert_refused, se_mean, simulate

from artysim.cli import main
from artysim.core.layout import DAYS_PER_MONTH
from artysim.model import load as loading

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "nk-sea-shuttle.toml"
RUNS, SEED, K = 1000, 20250415, 4  # K: how many standard errors a mean may miss by
RPC = "source.north_korea.shipment_size.rounds_per_container"
ROK_LOADING = f'{RPC}={{ dist = "uniform", low = 430, high = 470 }}'
# the ROK count: 28,000 / 15,800 = 1.772 times the containers a voyage, TRI(150, 250, 340) -> TRI(266, 443, 603)
ROK_COUNT = ('source.north_korea.shipment_size.containers='
             '{ dist = "triangular", min = 266, mode = 443, max = 603 }')


def _run(*overrides: str):
    return simulate(loading.load(CONFIG, list(overrides)), RUNS, seed=SEED)


@pytest.fixture(scope="module")
def sims():
    return {"osc": _run(), "rok_loading": _run(ROK_LOADING), "rok": _run(ROK_LOADING, ROK_COUNT)}


def _nk(sim, col: str) -> np.ndarray:
    return sim.src("north_korea", col).astype(np.float64)


def _observed(sim, name: str) -> np.ndarray:
    names = [o.name for o in sim.model.scenario.observation]
    return sim.observed[:, names.index(name)]


def test_only_the_loading_changes_so_the_containers_do_not_move(sims):
    osc, rok = sims["osc"], sims["rok_loading"]
    np.testing.assert_array_equal(_nk(osc, "containers"), _nk(rok, "containers"))
    # the loading's uniform is the same run by run (same parameter path, same stream)
    u_osc, u_rok = (osc.param(RPC) - 266) / 101, (rok.param(RPC) - 430) / 40
    np.testing.assert_allclose(u_osc, u_rok, atol=1e-9)
    assert (_nk(rok, "received") > _nk(osc, "received")).all()


@pytest.mark.parametrize("case", ["osc", "rok_loading", "rok"])
def test_rounds_are_containers_times_loading(sims, case):
    """Each voyage rounds containers x loading to whole rounds (at most 1/2 a voyage; a voyage holds at
    least 150 containers, so a run has at most containers / 150 voyages)."""
    sim = sims[case]
    cont, rec, rpc = _nk(sim, "containers"), _nk(sim, "received"), sim.param(RPC)
    assert (np.abs(rec - cont * rpc) <= 0.5 * cont / 150 + 1e-6).all()
    # the observations see the same totals (their window is the whole horizon)
    np.testing.assert_array_equal(_observed(sim, "v02_nk_containers_by_2025_03"), cont)
    np.testing.assert_array_equal(_observed(sim, "v02_nk_received_by_2025_03"), rec)
    np.testing.assert_array_equal(_observed(sim, "v02_nk_dispatched_by_2025_03"), _nk(sim, "dispatched"))


def _hand_dispatched(doc: dict, containers: tuple[float, float, float], loading_band: tuple[float, float]) -> float:
    """E[voyages] x E[containers a voyage] x E[loading]: voyages Poisson at the file's rate over the
    days from the first sailing (day ceil(start), mean (low + high) / 2 + 1/2) to the last day."""
    nk = next(s for s in doc["source"] if s["name"] == "north_korea")
    start = nk["start_day"]
    days = doc["scenario"]["horizon_days"] - ((start["low"] + start["high"]) / 2 + 0.5)
    return nk["shipments_per_month"] / DAYS_PER_MONTH * days * sum(containers) / 3 * sum(loading_band) / 2


def test_the_totals_are_the_hand_values_and_the_published_bands(sims):
    doc = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    size = doc["source"][1]["shipment_size"]
    c = size["containers"]
    osc_c = (c["min"], c["mode"], c["max"])
    osc_l = (size["rounds_per_container"]["low"], size["rounds_per_container"]["high"])
    cases = {"osc": (osc_c, osc_l), "rok_loading": (osc_c, (430, 470)), "rok": ((266, 443, 603), (430, 470))}
    for case, (cc, ll) in cases.items():
        disp = _nk(sims[case], "dispatched")
        assert_mc(disp.mean(), _hand_dispatched(doc, cc, ll), se_mean(disp), K, f"{case}: mean dispatched")
    # OSC: 4.2-5.8M (N25), dispatched (the port count) and received (past the port)
    for col in ("dispatched", "received"):
        x = _nk(sims["osc"], col)
        assert 4.2e6 - K * se_mean(x) <= x.mean() <= 5.8e6 + K * se_mean(x), (col, x.mean())
    cont = _nk(sims["osc"], "containers")
    assert 15_000 - K * se_mean(cont) <= cont.mean() <= 16_600 + K * se_mean(cont), cont.mean()
    # ROK: >12M 152 mm-equivalent (N19) on ~28,000 containers
    x, cont = _nk(sims["rok"], "received"), _nk(sims["rok"], "containers")
    assert x.mean() >= 12e6 - K * se_mean(x), x.mean()
    assert abs(cont.mean() - 28_000) <= 0.02 * 28_000 + K * se_mean(cont), cont.mean()
    # the capacity loading on the OSC containers alone is not the ROK figure: the count differs too
    assert _nk(sims["rok_loading"], "received").mean() < 12e6


@pytest.mark.parametrize(("edit", "needles"), [
    (('quantity = "containers"\nsource = "north_korea"', 'quantity = "containers"\nsource = "depot"'),
     ["observation[2].source", "containers counts an import by the container", "'depot' is a stockpile"]),
    (('quantity = "containers"\nsource = "north_korea"\nto = "2025-03-31"\nstatistic = "sum"',
      'quantity = "containers"\nsource = "north_korea"\nto = "2025-03-31"\nstatistic = "share_of_fired"'),
     ["observation[2].statistic", "containers are not rounds"]),
])
def test_bad_container_observations_are_one_line(tmp_path, edit, needles):
    text = CONFIG.read_text(encoding="utf-8")
    assert edit[0] in text
    p = tmp_path / "nk-sea-shuttle.toml"
    p.write_text(text.replace(edit[0], edit[1]), encoding="utf-8")
    assert_refused(CliRunner().invoke(main, ["validate", str(p)]), *needles)
