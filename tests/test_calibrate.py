"""``artysim calibrate`` (SPEC §8), proved against truth it did not write:

(a) a band on a per-run total over the whole horizon is an accept/reject rule, so the calibrated
    P(any shortage) is exactly the share of short runs among the accepted runs (counted here);
(b) simulation-based calibration: 'true' worlds drawn from the prior, observed through known error
    models; the posterior 90 % intervals must cover the truth in 90 % of replicates;
(c) the weights do not depend on shards or threads;
and the refusals: observations that cannot be, files without observations or already calibrated,
evidence no run is compatible with.
"""

from __future__ import annotations

import json
import math

import netCDF4
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from support import assert_refused, header, leftovers, load_scenario, simulate

from artysim.analysis import calibrate as cal
from artysim.analysis.stats import effective_sample_size, weighted_quantile
from artysim.cli import main
from artysim.jobs import run as runner
from artysim.model.distributions import Lognormal, Normal
from artysim.results.merge import merge

SMALL = header(40, name="cal") + """
[demand]
base = { dist = "uniform", low = 1000, high = 3000 }
daily_cv = 0.2

[[source]]
name = "old"
kind = "stockpile"
initial = { dist = "uniform", low = 20000, high = 100000 }

[[source]]
name = "fab"
kind = "production"
annual = { dist = "uniform", low = 50000, high = 400000 }
daily_cv = 0.3

[[observation]]
name = "fired_all"
quantity = "fired"
to = "2024-02-09"
statistic = "sum"
value = { dist = "uniform", low = 50000, high = 70000 }
cite = ["N33"]
"""


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cal")
    loaded = load_scenario(SMALL)
    whole = runner.run_loaded(loaded, output=d / "whole.nc", runs=3000, seed=11, quiet=True, threads=1)
    parts = [runner.run_loaded(loaded, output=d / f"s{k}.nc", runs=3000, seed=11, quiet=True, shard=k, shards=3)
             for k in range(3)]
    merged = merge([str(p) for p in parts], d / "merged.nc")
    r = _cli("calibrate", whole, "-o", d / "whole-cal.nc")
    assert r.exit_code == 0, r.output
    r2 = _cli("calibrate", merged, "-o", d / "merged-cal.nc", "--format", "json")
    assert r2.exit_code == 0, r2.output
    return {"dir": d, "whole": whole, "cal": d / "whole-cal.nc", "merged_cal": d / "merged-cal.nc",
            "report": r.output, "json": json.loads(r2.stdout)}


def test_a_band_on_a_total_gives_the_share_of_short_runs_among_accepted_runs_exactly(files):
    with xr.open_dataset(files["whole"]) as ds:
        fired = ds["fired_total"].values
        short = ~np.isnan(ds["first_shortage_day"].values)
    accepted = (fired >= 50000) & (fired <= 70000)
    assert 100 < accepted.sum() < 2900 and 0 < short[accepted].sum() < accepted.sum()  # the test bites
    exact = short[accepted].sum() / accepted.sum()
    with xr.open_dataset(files["cal"]) as ds:
        assert np.array_equal(ds["weight"].values, accepted.astype(float))  # a band is 0/1
        assert ds.attrs["calibrated_on"] == "fired_all"
        assert ds.attrs["effective_sample_size"] == accepted.sum()
    assert files["json"]["posterior"]["p_any_shortage"][0] == exact
    s = json.loads(_cli("summary", files["cal"], "--format", "json").stdout)
    assert s["p_any_shortage"] == exact
    assert s["calibration"]["effective_sample_size"] == accepted.sum()
    st = json.loads(_cli("summary", files["cal"], "--stat", "p_any_shortage", "--stat", "mean(fired_total)",
                         "--format", "json").stdout)["stats"]
    assert st["p_any_shortage"]["value"] == exact
    assert st["p_any_shortage"]["se"] == pytest.approx(math.sqrt(exact * (1 - exact) / accepted.sum()), rel=1e-12)
    assert st["mean(fired_total)"]["value"] == pytest.approx(fired[accepted].mean(), rel=1e-12)
    table = _cli("summary", files["cal"]).stdout
    assert "calibrated: runs weighted by the evidence on fired_all" in table
    assert "joint acceptance" in files["report"] and "source.fab.annual" in files["report"]


def test_c_weights_do_not_depend_on_shards_or_threads(files):
    with xr.open_dataset(files["cal"]) as a, xr.open_dataset(files["merged_cal"]) as b:
        assert np.array_equal(a["weight"].values, b["weight"].values)
        assert a.attrs["effective_sample_size"] == b.attrs["effective_sample_size"]


def test_calibrating_twice_or_a_file_without_observations_is_refused(files, tmp_path):
    r = _cli("calibrate", files["cal"], "-o", tmp_path / "again.nc")
    assert_refused(r, "already calibrated")
    plain = runner.run_loaded(load_scenario(SMALL.split("[[observation]]")[0]), output=tmp_path / "plain.nc",
                              runs=20, seed=1, quiet=True)
    assert_refused(_cli("calibrate", plain, "-o", tmp_path / "c.nc"), "plain.nc", "without observations")
    assert_refused(_cli("calibrate", files["whole"], "-o", files["cal"]), "exists", "--force")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.nc"]


def test_evidence_no_run_meets_names_the_observation_furthest_away(tmp_path):
    text = SMALL.replace("low = 50000, high = 70000", "low = 5e6, high = 6e6") + """
[[observation]]
name = "fab_received"
quantity = "received"
source = "fab"
to = "2024-02-09"
statistic = "sum"
value = { dist = "normal", mean = 20000, sd = 5000 }
cite = ["N33"]
"""
    f = runner.run_loaded(load_scenario(text), output=tmp_path / "r.nc", runs=200, seed=3, quiet=True)
    line = assert_refused(_cli("calibrate", f, "-o", tmp_path / "c.nc"), "every weight is 0", "'fired_all'",
                          "median")
    assert "fab_received" not in line
    assert leftovers(tmp_path) == ["r.nc"]


def test_a_small_effective_sample_size_warns_with_the_runs_needed(tmp_path):
    text = SMALL.replace("low = 50000, high = 70000", "low = 75000, high = 80000")
    f = runner.run_loaded(load_scenario(text), output=tmp_path / "r.nc", runs=400, seed=3, quiet=True)
    r = _cli("calibrate", f, "-o", tmp_path / "c.nc")
    assert r.exit_code == 0, r.output
    with xr.open_dataset(tmp_path / "c.nc") as ds:
        ess = float(ds.attrs["effective_sample_size"])
    assert 0 < ess < 200
    assert f"about {math.ceil(400 * 1000 / ess):,} runs would give 1,000" in r.stderr


# ----------------------------------------------------------------------------- (b) coverage

SBC = header(20, name="sbc") + """
[demand]
base = { dist = "uniform", low = 1000, high = 3000 }
daily_cv = 0.2

[[source]]
name = "old"
kind = "stockpile"
initial = 1e7

[[source]]
name = "fab"
kind = "production"
annual = { dist = "uniform", low = 50000, high = 400000 }
daily_cv = 0.3

[[observation]]
name = "fired"
quantity = "fired"
to = "2024-01-20"
statistic = "sum"
value = { dist = "normal", mean = 40000, sd = 5000 }
cite = ["N33"]

[[observation]]
name = "made"
quantity = "received"
source = "fab"
to = "2024-01-20"
statistic = "mean_per_day"
value = { dist = "lognormal", median = 600, sigma = 0.3 }
cite = ["N33"]
"""
SD, SIGMA = 5000.0, 0.3
REPLICATES = 400


def test_b_posterior_90_percent_intervals_cover_the_truth_90_percent_of_the_time():
    """Each replicate draws a true world from the prior (a run of an independent seed: its parameters
    and its simulated observations), publishes its observations through the known error models (normal
    sd 5000 rounds, lognormal sigma 0.3) and calibrates one prior ensemble of 6000 runs on them.

    Reusing the ensemble is valid: the worlds are drawn independently of it, so given the ensemble the
    replicates' coverage indicators are independent Bernoulli draws whose mean is the coverage of this
    importance-sampling posterior; for the exact posterior that is 0.9 (the defining property of a
    posterior interval under draws from the prior), and the ensemble's ESS (hundreds per replicate)
    keeps its own error well below the binomial tolerance. Tolerance: 3 binomial SEs of 400 replicates,
    3 sqrt(0.9 x 0.1 / 400) = 0.045, for each parameter."""
    ens = simulate(SBC, 6000, seed=101)
    world = simulate(SBC, REPLICATES, seed=202)
    rng = np.random.default_rng(303)
    paths = ["demand.base", "source.fab.annual"]
    cover = np.zeros((REPLICATES, len(paths)), dtype=bool)
    ess = []
    for i in range(REPLICATES):
        x_fired, x_made = world.observed[i]
        evs = [Normal(dist="normal", mean=x_fired + SD * rng.standard_normal(), sd=SD),
               Lognormal(dist="lognormal", median=x_made * math.exp(SIGMA * rng.standard_normal()), sigma=SIGMA)]
        w, _ = cal.weights(ens.observed, evs)
        ess.append(effective_sample_size(w))
        for j, p in enumerate(paths):
            theta = ens.param(p)
            lo, hi = weighted_quantile(theta, w, 0.05), weighted_quantile(theta, w, 0.95)
            cover[i, j] = lo <= world.param(p)[i] <= hi
    tol = 3 * math.sqrt(0.9 * 0.1 / REPLICATES)
    rates = cover.mean(axis=0)
    print(f"coverage of 90% intervals over {REPLICATES} replicates: {dict(zip(paths, rates))}, "
          f"median ESS {np.median(ess):.0f}")
    assert np.median(ess) > 100
    for p, rate in zip(paths, rates):
        assert abs(rate - 0.9) <= tol, (p, rate)


# ----------------------------------------------------------------------------- bad observations

BASE_OBS = """[[observation]]
name = "fired_jan"
quantity = "fired"
to = "2024-01-20"
statistic = "sum"
value = { dist = "uniform", low = 1, high = 2 }
cite = ["N33"]
"""

#: (class, edit of the observation above, key path and words the one-line refusal must name); also
#: docs/gen_bad_input.py's rows
OBSERVATION_CASES = [
    ("observation window outside the horizon", ('to = "2024-01-20"', 'to = "2024-03-20"'),
     ("observation[0].to", "outside the horizon")),
    ("observation window before start_date", ('to = "2024-01-20"', 'from = "2023-12-01"\nto = "2024-01-20"'),
     ("observation[0].from", "outside the horizon")),
    ("observation window reversed", ('to = "2024-01-20"', 'from = "2024-01-25"\nto = "2024-01-20"'),
     ("observation[0].to", "reversed")),
    ("unknown observed quantity", ('quantity = "fired"', 'quantity = "firing"'),
     ("observation[0].quantity", "demand")),
    ("unknown observed source", ('quantity = "fired"', 'quantity = "fired"\nsource = "ghost"'),
     ("observation[0].source", "unknown source 'ghost'")),
    ("share_of_fired without a source", ('statistic = "sum"', 'statistic = "share_of_fired"'),
     ("observation[0].source", "needs a source")),
    ("band with low > high", ("low = 1, high = 2", "low = 2, high = 1"),
     ("observation[0].value", "low must be below high")),
    ("cite that does not resolve", ('cite = ["N33"]', 'cite = ["N33", "Z99"]'),
     ("observation[0].cite[1]", "'Z99' is not a row")),
    ("evidence that is not a band or an error model", ("{ dist = \"uniform\", low = 1, high = 2 }", "1500"),
     ("observation[0].value", "band")),
    ("duplicate observation names", ("[[observation]]", BASE_OBS + "[[observation]]"),
     ("observation[1].name", "duplicate")),
    ("at_end of a flow", ('statistic = "sum"', 'statistic = "at_end"'), ("observation[0].statistic", "stock")),
]


@pytest.mark.parametrize("klass,edit,needles", OBSERVATION_CASES, ids=[c[0] for c in OBSERVATION_CASES])
def test_bad_observations_are_refused_with_their_key_path(tmp_path, klass, edit, needles):
    text = SMALL.split("[[observation]]")[0] + BASE_OBS
    assert edit[0] in text
    f = tmp_path / "bad.toml"
    f.write_text(text.replace(edit[0], edit[1], 1))
    assert _cli("validate", tmp_path / "bad.toml").exit_code == 2
    assert_refused(_cli("validate", f), "bad.toml", *needles)
    good = tmp_path / "good.toml"
    good.write_text(text)
    assert _cli("validate", good).exit_code == 0


def test_a_crafted_definitions_attribute_is_refused(files, tmp_path):
    bad = tmp_path / "bad.nc"
    bad.write_bytes(files["whole"].read_bytes())
    with netCDF4.Dataset(bad, "a") as nc:
        nc["observed"].definitions = "[{\"name\": 3}"
    assert_refused(_cli("calibrate", bad, "-o", tmp_path / "c.nc"), "bad.nc", "definitions")


def test_plots_of_a_calibrated_file_use_the_weights_and_say_so(files, tmp_path):
    from artysim.analysis import plots
    from artysim.results.reader import open_file

    for kind in ("calibration", "depletion", "histogram", "fan"):
        r = _cli("plot", files["cal"], "--kind", kind, "-o", tmp_path / f"{kind}.png")
        assert r.exit_code == 0, r.output
        assert (tmp_path / f"{kind}.png").stat().st_size > 1000
    with open_file(files["cal"]) as ds, open_file(files["whole"]) as prior:
        fig = plots.plot(ds, "depletion")
        title = fig.axes[0].get_title(loc="left")
        assert "calibrated on fired_all" in title
        assert "PRIOR runs, not weighted" in plots.plot(ds, "fan").axes[0].get_title(loc="left")
        w = ds["weight"].values
        fsd = ds["first_shortage_day"].values
        line = fig.axes[0].lines[0].get_ydata()  # % depleted by the last day: the weighted share
        assert line[-1] == pytest.approx(100 * (w * ~np.isnan(fsd)).sum() / w.sum(), rel=1e-12)
        assert plots.plot(prior, "depletion").axes[0].lines[0].get_ydata()[-1] != pytest.approx(line[-1])
    assert_refused(_cli("plot", files["whole"], "--kind", "calibration", "-o", tmp_path / "x.png"),
                   "needs a calibrated file")
