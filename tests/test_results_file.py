"""The netCDF results file: SPEC §3's variables, CF metadata, compliance, and equality with memory."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from artysim.jobs import run as runner
from artysim.model import load as sc
from artysim.results import reader, schema
from artysim.version import __version__

REPO = Path(__file__).resolve().parent.parent
NK = REPO / "configs" / "nk-deal-2023.toml"
RUNS = 300
SEED = 20230913  # the scenario's own seed

#: SPEC §3: names users rely on, with their dimensions
SPEC_VARIABLES = {
    "parameters": ("run", "parameter"),
    "first_shortage_day": ("run",),
    "shortage_days": ("run",),
    "demand_total": ("run",),
    "fired_total": ("run",),
    "effective_total": ("run",),
    "shortfall_total": ("run",),
    "stock_min": ("run",),
    "stock_final": ("run",),
    "received": ("run", "source"),
    "fired_by_source": ("run", "source"),
    "duds": ("run", "source"),
    "stock_quantile": ("time", "quantile"),
    "fired_quantile": ("time", "quantile"),
    "effective_quantile": ("time", "quantile"),
    "shortfall_quantile": ("time", "quantile"),
    "stock_mean": ("time",),
    "fired_mean": ("time",),
    "effective_mean": ("time",),
    "shortfall_mean": ("time",),
    "p_short": ("time",),
    "p_depleted": ("time",),
    "stock_sample": ("sample", "time"),
    "fired_sample": ("sample", "time"),
}
SPEC_DIMENSIONS = {"run", "time", "quantile", "source", "sample"}

#: UDUNITS strings CF accepts and artysim uses ("day" and "days" are the same unit)
UNITS = {"1", "day-1", "day", "days", "year-1", "month-1"}
TIME_UNITS = re.compile(r"^days since \d{4}-\d{2}-\d{2}$")


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results") / "nk.nc"
    runner.run(str(NK), runs=RUNS, seed=SEED, output=out, quiet=True)
    return out


@pytest.fixture(scope="module")
def ds(result):
    # loaded and closed: netCDF-C 4.10.1 can crash when a file with string variables is opened
    # again (and closed twice) while another handle on it is still open
    with xr.open_dataset(result) as d:
        return d.load()


def _is_string(v: netCDF4.Variable) -> bool:
    return v.dtype is str or np.dtype(v.dtype).kind in "SU"


# -- structure -------------------------------------------------------------------------------------

def test_spec_variables_and_dimensions(ds):
    assert SPEC_DIMENSIONS <= set(ds.sizes)
    assert ds.sizes["run"] == RUNS
    assert ds.sizes["time"] == 365
    assert ds.sizes["quantile"] == 5
    assert ds.sizes["source"] == 4
    assert ds.sizes["sample"] == 100
    for name, dims in SPEC_VARIABLES.items():
        assert name in ds.variables, name
        assert ds[name].dims == dims, (name, ds[name].dims)
    for name in ("run", "time", "quantile", "source", "sample", "parameter"):
        assert name in ds.coords, name
    assert list(ds["source"].values) == ["stockpile", "domestic", "refurbished", "north_korea"]
    assert list(ds["quantile"].values) == [0.05, 0.25, 0.5, 0.75, 0.95]
    assert "demand.base" in ds["parameter"].values
    assert "source.north_korea.dud_rate" in ds["parameter"].values
    assert set(schema.BY_NAME) <= set(ds.variables)


def test_every_variable_has_units_and_long_name(result):
    with netCDF4.Dataset(result) as nc:
        for name, v in nc.variables.items():
            attrs = v.ncattrs()
            assert "long_name" in attrs and v.long_name.strip(), name
            if _is_string(v):  # CF: string-valued variables carry no units
                assert "units" not in attrs, name
                continue
            assert "units" in attrs, name
            assert v.units in UNITS or TIME_UNITS.match(v.units), (name, v.units)
            assert "rounds" not in v.units
        units_per_parameter = list(nc["parameter_units"][:])
    assert set(units_per_parameter) <= UNITS


def test_units_are_udunits_valid(result):
    cf_units = pytest.importorskip("cf_units")  # installed with compliance-checker
    with netCDF4.Dataset(result) as nc:
        units = {v.units for v in nc.variables.values() if "units" in v.ncattrs()}
        units |= set(nc["parameter_units"][:])
    for u in units:
        assert not cf_units.Unit(u).is_unknown(), u
    assert cf_units.Unit("day").is_convertible(cf_units.Unit("days"))


def test_no_fill_value_on_coordinates(result):
    with netCDF4.Dataset(result) as nc:
        for name in ("run", "time", "quantile", "sample", "bin"):
            assert "_FillValue" not in nc[name].ncattrs(), name


def test_global_attributes(result):
    with xr.open_dataset(result) as d:
        a = d.attrs
    assert a["Conventions"] == "CF-1.9"
    assert "nk-deal-2023" in a["title"]
    assert "artysim" in a["source"] and __version__ in a["source"]
    assert a["history"].strip()
    assert a["scenario_toml"] == NK.read_text(encoding="utf-8")
    assert a["scenario_hash"] == sc.load(NK).hash
    assert re.fullmatch(r"[0-9a-f]{64}", a["scenario_hash"])
    assert str(a["seed"]) == str(SEED)
    assert int(a["run_start"]) == 0 and int(a["run_stop"]) == RUNS
    assert int(a["shard"]) == 0 and int(a["shards"]) == 1
    assert int(a["runs_total"]) == RUNS
    assert a["start_date"] == "2023-09-01"
    assert int(a["artysim_schema_version"]) == schema.SCHEMA_VERSION


def test_seed_above_int64_attributes_survive(tmp_path):
    out = tmp_path / "bigseed.nc"
    seed = 2**63 - 1
    runner.run(str(NK), runs=20, seed=seed, output=out, quiet=True)
    with xr.open_dataset(out) as d:
        assert d.attrs["seed"] == str(seed)


# -- decoding by plain xarray ------------------------------------------------------------------------

def test_first_shortage_day_is_nan_or_whole_days_for_plain_xarray(result):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. xarray's FutureWarning about decoding timedeltas
        with xr.open_dataset(result) as d:
            fsd = d["first_shortage_day"].load()
            short_days = d["shortage_days"].values
            horizon = d.sizes["time"]
    assert fsd.dtype.kind == "f", fsd.dtype  # not timedelta64, not an integer with a sentinel
    v = fsd.values
    never = np.isnan(v)
    assert never.any() and (~never).any(), "pick a scenario where some runs are short and some not"
    assert np.array_equal(never, short_days == 0)
    assert np.all(v[~never] == np.round(v[~never]))
    assert np.all((v[~never] >= 0) & (v[~never] < horizon))
    assert fsd.attrs["units"] in ("day", "days")
    assert short_days.dtype.kind in "iu"


def test_first_shortage_day_raw_fill_value(result):
    with netCDF4.Dataset(result) as nc:
        v = nc["first_shortage_day"]
        assert v._FillValue == schema.FILL_DAY
        raw = np.ma.getdata(v[:])
        assert np.all((raw == schema.FILL_DAY) | (raw >= 0))


def test_time_decodes_to_dates_from_start_date(result):
    with xr.open_dataset(result) as d:
        t = d["time"].values
    assert t.dtype.kind == "M"
    assert t[0] == np.datetime64("2023-09-01")
    assert t[-1] == np.datetime64("2023-09-01") + np.timedelta64(364, "D")
    assert np.all(np.diff(t) == np.timedelta64(1, "D"))
    with netCDF4.Dataset(result) as nc:
        assert nc["time"].standard_name == "time"
        assert nc["time"].units == "days since 2023-09-01"
        assert nc["time"].calendar in ("standard", "gregorian", "proleptic_gregorian")


def test_compression_is_on(result):
    with xr.open_dataset(result) as d:
        for name in ("parameters", "first_shortage_day", "fired_total", "received", "duds", "stock_hist"):
            enc = d[name].encoding
            assert enc.get("zlib") or enc.get("compression") in ("zlib", "zstd"), (name, enc)
    with netCDF4.Dataset(result) as nc:
        assert nc["fired_total"].filters()["zlib"]
        assert nc["fired_total"].filters()["shuffle"]


# -- tools ------------------------------------------------------------------------------------------

def _compliance_checker() -> list[str]:
    exe = Path(sys.executable).with_name("compliance-checker")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("compliance-checker")
    if found:
        return [found]
    pytest.skip("compliance-checker is not installed (pip install -e '.[test]')")


def test_cf_compliance_checker_reports_no_errors(result, tmp_path):
    report = tmp_path / "cc.json"
    p = subprocess.run([*_compliance_checker(), "--test=cf:1.9", "--format=json_new", "-o", str(report),
                        str(result)], capture_output=True, text=True, timeout=300)
    assert report.exists(), p.stdout + p.stderr
    r = next(iter(json.loads(report.read_text()).values()))["cf:1.9"]
    errors = [f"{x['name']}: {m}" for x in r["high_priorities"] for m in x["msgs"]]
    assert r["high_count"] == 0 and not errors, errors
    # warnings are accepted; only the dimension order of (time, quantile) and (time, bin) is known
    warnings_ = [x["name"] for x in r["medium_priorities"] if x["msgs"]]
    assert set(warnings_) <= {"§2.4 Dimensions"}, warnings_


def test_ncdump_header(result):
    ncdump = shutil.which("ncdump")
    if ncdump is None:
        pytest.skip("ncdump not found (Debian package netcdf-bin; .ci/run installs it)")
    p = subprocess.run([ncdump, "-h", str(result)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    for text in ("dimensions:", "run = 300", "time = 365", "int first_shortage_day(run)",
                 'first_shortage_day:units = "day"', ':Conventions = "CF-1.9"',
                 'time:units = "days since 2023-09-01"', "double p_depleted(time)"):
        assert text in p.stdout, text


# -- in memory == on disk ------------------------------------------------------------------------------

def _kernel_values(var, model, cat) -> np.ndarray:
    """What the kernel computed for a schema variable, from its declared column."""
    kind = var.column[0]
    if kind == "params":
        return cat["params"][:, model.sampled]
    if kind == "totals":
        return cat["totals"][:, var.column[1]]
    return cat[kind][:, :, var.column[1]]


def _assert_per_run_equal(d, model, cat) -> None:
    """Every per-run variable of the schema, and no other, is in the file, equal to the kernel's values."""
    in_file = {name for name, v in d.data_vars.items() if v.dims[:1] == ("run",)}
    assert in_file == {v.name for v in schema.PER_RUN}
    for var in schema.PER_RUN:
        expect = _kernel_values(var, model, cat)
        got = d[var.name].values
        if var.fill is not None:  # missing where the kernel wrote the fill value
            never = expect == var.fill
            assert np.array_equal(np.isnan(got), never), var.name
            np.testing.assert_array_equal(got[~never], expect[~never], err_msg=var.name)
        else:
            np.testing.assert_array_equal(got, expect, err_msg=var.name)


def test_file_equals_in_memory_simulation(result):
    loaded = sc.load(NK)
    model, cat, daily = runner.simulate_in_memory(loaded, RUNS, SEED)
    with xr.open_dataset(result, decode_times=False) as d:
        d.load()
    sampled = model.sampled
    assert list(d["parameter"].values) == [model.params[i].path for i in sampled]
    np.testing.assert_array_equal(d["parameters"].values, cat["params"][:, sampled])
    _assert_per_run_equal(d, model, cat)
    # per-day statistics
    for j, n in enumerate(schema.DAILY_NAMES):
        np.testing.assert_array_equal(d[f"{n}_hist"].values, daily.hist[:, j, :], err_msg=n)
        np.testing.assert_array_equal(d[f"{n}_sum"].values, daily.sums[:, j], err_msg=n)
        np.testing.assert_array_equal(d[f"{n}_mean"].values, daily.sums[:, j] / RUNS, err_msg=n)
    np.testing.assert_array_equal(d["p_short"].values, daily.n_short / RUNS)
    np.testing.assert_array_equal(d["p_depleted"].values, np.cumsum(daily.n_first_short) / RUNS)
    np.testing.assert_array_equal(d["fired_by_source_sum"].values, daily.src_sums[:, 0, :])
    np.testing.assert_array_equal(d["effective_by_source_mean"].values, daily.src_sums[:, 1, :] / RUNS)
    np.testing.assert_array_equal(d["stock_sample"].values, daily.sample_stock)
    np.testing.assert_array_equal(d["fired_sample"].values, daily.sample_fired)


def test_per_run_statistics_are_consistent(ds):
    """Cross-checks between variables that users will make in their notebooks."""
    fsd = ds["first_shortage_day"].values
    # p_depleted on the last day is the share of runs ever short
    assert ds["p_depleted"].values[-1] == pytest.approx(np.mean(~np.isnan(fsd)))
    assert np.all(np.diff(ds["p_depleted"].values) >= 0)
    assert np.all((ds["p_short"].values >= 0) & (ds["p_short"].values <= 1))
    np.testing.assert_array_equal(ds["fired_total"].values, ds["fired_by_source"].sum("source").values)
    np.testing.assert_array_equal(ds["shortfall_total"].values,
                                  ds["demand_total"].values - ds["fired_total"].values)
    assert np.all(ds["effective_total"].values <= ds["fired_total"].values - ds["duds"].sum("source").values)
    assert np.all(ds["stock_min"].values <= ds["stock_final"].values)
    # means over runs of the per-day values add up to the per-run totals
    assert float(ds["fired_mean"].sum()) == pytest.approx(float(ds["fired_total"].mean()), rel=1e-12)
    q = ds["stock_quantile"].values
    assert np.all(np.diff(q, axis=1) >= 0)
    # sampled trajectories are runs 0..99
    np.testing.assert_array_equal(ds["sample"].values, np.arange(100))
    np.testing.assert_array_equal(ds["fired_sample"].sum("time").values, ds["fired_total"].values[:100])


def test_open_results_accepts_its_own_file(result):
    with reader.open_file(result) as d:
        assert d.sizes["run"] == RUNS
        assert d["first_shortage_day"].dtype.kind == "f"


# -- every mechanism of model depth --------------------------------------------------------------------

@pytest.fixture(scope="module")
def mech_result(tmp_path_factory) -> tuple[Path, sc.Loaded]:
    from support import ALL_MECHANISMS

    folder = tmp_path_factory.mktemp("mech")
    src = folder / "all.toml"
    src.write_text(ALL_MECHANISMS)
    out = folder / "all.nc"
    runner.run(str(src), runs=RUNS, seed=SEED, output=out, quiet=True)
    return out, sc.load(src)


def test_cf_compliance_with_every_mechanism(mech_result, tmp_path):
    """Regimes (a string coordinate) and correlations (their own dimension) keep the file CF-clean."""
    test_cf_compliance_checker_reports_no_errors(mech_result[0], tmp_path)


def test_file_equals_memory_with_every_mechanism(mech_result):
    path, loaded = mech_result
    model, cat, _ = runner.simulate_in_memory(loaded, RUNS, SEED)
    with xr.open_dataset(path, decode_times=False) as d:
        d.load()
    _assert_per_run_equal(d, model, cat)
    assert list(d["regime"].values) == model.regime_names
    for v in ("regime_days", "rationed_days", "lost", "refurbished", "correlation_achieved"):
        assert d[v].attrs["units"] in UNITS and d[v].attrs["long_name"], v
