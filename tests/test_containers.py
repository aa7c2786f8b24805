"""Imports by the container: ``shipment_size = { containers = DIST, rounds_per_container = DIST }``.

Containers are drawn per shipment on a stream keyed by the shipment's index, the loading once per run
(a sampled parameter). Closed forms: fixed containers and loading give received = containers x loading
exactly; the mean received is E[shipments] E[containers] E[loading] within the Monte Carlo error."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from support import assert_mc, assert_refused, header, se_mean, simulate

from artysim.cli import main
from artysim.core.layout import DAYS_PER_MONTH

T = 120
LAM = 3.0  # shipments a month


def _scenario(size: str, extra: str = "") -> str:
    return header(T) + f"""
[demand]
base = 10

[[source]]
name = "old"
kind = "stockpile"
initial = 1e9

[[source]]
name = "imp"
kind = "import"
shipments_per_month = {LAM}
shipment_size = {size}
dud_rate = 0.2
{extra}
"""


def test_fixed_containers_and_loading_give_exact_totals():
    sim = simulate(_scenario("{ containers = 12, rounds_per_container = 350 }"), 300, seed=3)
    cont, rec, disp = sim.src("imp", "containers"), sim.src("imp", "received"), sim.src("imp", "dispatched")
    assert np.array_equal(rec, cont * 350)  # every container holds the same loading
    assert np.array_equal(disp, rec)  # no transit: everything dispatched arrives the same day
    assert np.all(cont % 12 == 0)  # whole shipments of 12 containers
    # shipments per run ~ Poisson(LAM T / month): their mean within 4 standard errors
    n = cont / 12
    assert_mc(n.mean(), LAM * T / DAYS_PER_MONTH, se_mean(n), 4, "shipments per run")
    assert "source.imp.shipment_size.rounds_per_container" not in [sim.model.params[i].path for i in sim.model.sampled]


def test_mean_received_is_shipments_times_containers_times_loading():
    size = ('{ containers = { dist = "discrete", values = [10, 20, 30] }, '
            'rounds_per_container = { dist = "uniform", low = 266, high = 367 } }')
    sim = simulate(_scenario(size), 4000, seed=11)
    rec, cont = sim.src("imp", "received").astype(float), sim.src("imp", "containers").astype(float)
    rpc = sim.param("source.imp.shipment_size.rounds_per_container")
    assert rpc.min() >= 266 and rpc.max() <= 367 and len(np.unique(rpc)) == len(rpc)  # drawn once per run
    expected = LAM * T / DAYS_PER_MONTH * 20 * (266 + 367) / 2
    assert_mc(rec.mean(), expected, se_mean(rec), 4, "mean received rounds")  # 4 SE
    # run by run: each shipment rounds containers x loading to whole rounds (at most 1/2 each, and a
    # shipment has at least 10 containers)
    assert np.all(np.abs(rec - cont * rpc) <= 0.5 * cont / 10 + 1e-6)


def test_the_loading_never_moves_the_containers():
    """Only the loading changes: the containers of every run are the same, the rounds scale with it
    (the two published totals, ~266-367 and ~430-470 rounds a container, from one scenario)."""
    low = simulate(_scenario('{ containers = { dist = "triangular", min = 5, mode = 10, max = 20 }, '
                             'rounds_per_container = { dist = "uniform", low = 266, high = 367 } }'), 500, seed=5)
    high = simulate(_scenario('{ containers = { dist = "triangular", min = 5, mode = 10, max = 20 }, '
                              'rounds_per_container = { dist = "uniform", low = 430, high = 470 } }'), 500, seed=5)
    assert np.array_equal(low.src("imp", "containers"), high.src("imp", "containers"))
    assert high.src("imp", "received").sum() > 1.2 * low.src("imp", "received").sum()
    # the loading's uniform is shared run by run (same parameter path, same stream)
    u_low = (low.param("source.imp.shipment_size.rounds_per_container") - 266) / 101
    u_high = (high.param("source.imp.shipment_size.rounds_per_container") - 430) / 40
    assert np.allclose(u_low, u_high, atol=1e-9)


def test_a_capped_supply_counts_the_containers_it_fills():
    sim = simulate(_scenario("{ containers = 10, rounds_per_container = 100 }", "available = 2500"), 200, seed=2)
    assert np.all(sim.src("imp", "received") <= 2500)
    full = sim.src("imp", "received") == 2500
    assert full.any()
    assert np.all(sim.src("imp", "containers")[full] == 25)  # 10 + 10 + a last shipment of 5 containers


def test_transit_holds_containers_back_until_they_arrive():
    sim = simulate(_scenario("{ containers = 4, rounds_per_container = 100 }", "transit_days = 30"), 300, seed=4)
    rec, disp, cont = sim.src("imp", "received"), sim.src("imp", "dispatched"), sim.src("imp", "containers")
    assert np.array_equal(rec, cont * 100)  # containers counted as received, with their rounds
    assert np.all(disp >= rec) and (disp > rec).any()


@pytest.mark.parametrize(("size", "needles"), [
    ("{ containers = 20 }", ["source[1].shipment_size.rounds_per_container", "needed with containers"]),
    ("{ rounds_per_container = 300 }", ["source[1].shipment_size.containers", "needed with rounds_per_container"]),
    ('{ containers = { dist = "normal", mean = 5, sd = 3 }, rounds_per_container = 300 }',
     ["source[1].shipment_size.containers", "containers"]),
    ("{ containers = 20, rounds_per_container = -3 }", ["source[1].shipment_size.rounds_per_container"]),
    ("{ containers = 20, rounds_per_container = 300, rounds = 5 }", ["source[1].shipment_size.rounds"]),
])
def test_bad_containers_are_one_line(tmp_path, size, needles):
    p = tmp_path / "c.toml"
    p.write_text(_scenario(size))
    assert_refused(CliRunner().invoke(main, ["validate", str(p)]), *needles)
