"""Aggregation: the (case, width, seed) cube, statistics over seeds, slopes, status handling,
bound checks, corrupt files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import linflow
from linflow import aggregate, checks, cli, init, record
from conftest import random_problem

CASES = {"c": {"init": "gaussian", "alpha": 0.5, "method": "flow"}}


def make_run(folder, X, Y, h, seed, case="c", **kwargs):
    rng = np.random.default_rng([h, seed])
    U0, V0 = init.gaussian(X.shape[1], Y.shape[1], h, 0.5, rng)
    ds = linflow.simulate(X, Y, U0, V0, alpha=0.5, attrs={"case": case, "seed": seed}, **kwargs)
    path = folder / f"h{h}_s{seed}.nc"
    record.write_run(ds, path)
    return ds, path


def write_table(path, runs, cases=CASES):
    rows = [record.table_row(ds, p) for ds, p in runs]
    record.write_netcdf(record.chunk_table(rows, {"experiment": "test", "cases": json.dumps(cases)}), path)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    X, Y = random_problem(np.random.default_rng(0), 10, 40, 1)
    good = [make_run(folder, X, Y, h, s) for h in (50, 200, 800) for s in range(3)]
    # A diverging gradient-descent run at one width, and one that hits its step limit.
    bad = [make_run(folder, X, Y, 200, 7, method="gd", step=100.0),
           make_run(folder, X, Y, 800, 8, method="gd", step=1e-3, max_steps=5)]
    return folder, good, bad


@pytest.fixture(scope="module")
def summary(runs):
    folder, good, bad = runs
    tables = [write_table(folder / "t1.nc", good[:4]), write_table(folder / "t2.nc", good[4:] + bad)]
    return aggregate.summarize(tables, experiment="test")


def test_cube_has_every_run_on_case_width_seed(summary, runs):
    _, good, bad = runs
    assert dict(summary["final_distance_fro"].sizes) == {"case": 1, "width": 3, "seed": 5}
    assert list(summary["width"].values) == [50, 200, 800] and list(summary["seed"].values) == [0, 1, 2, 7, 8]
    assert float(summary["alpha"].sel(case="c")) == 0.5 and summary["init"].sel(case="c").item() == "gaussian"
    ds, _ = good[5]  # h = 200, seed 2
    assert float(summary["final_distance_fro"].sel(case="c", width=200, seed=2)) == float(ds["final_distance_fro"])
    assert summary["status"].sel(case="c", width=200, seed=7).item() == "diverged"
    assert summary["status"].sel(case="c", width=50, seed=7).item() == "missing"
    assert np.isnan(float(summary["final_distance_fro"].sel(case="c", width=50, seed=7)))
    assert int(summary["n_runs"].sum()) == len(good) + len(bad)


def test_failed_runs_are_counted_and_excluded(summary, runs):
    by_width = summary.sel(case="c")
    assert int(by_width["n_diverged"].sel(width=200)) == 1 and int(by_width["n_not_converged"].sel(width=800)) == 1
    assert list(by_width["n_converged"].values) == [3, 3, 3]
    _, good, _ = runs
    at200 = [float(ds["final_distance_fro"]) for ds, _ in good[3:6]]
    assert float(by_width["distance_fro_mean"].sel(width=200)) == pytest.approx(np.mean(at200), rel=1e-12)
    assert int(by_width["n_excluded"]) == 2


def test_mean_interval_is_the_t_interval():
    mean, std, low, high = aggregate.mean_interval(np.array([1.0, 2.0, 3.0, 4.0]))
    assert (mean, std) == pytest.approx((2.5, np.sqrt(5 / 3)))
    half = 3.182446305284263 * np.sqrt(5 / 3) / 2  # t_{0.975, 3} from tables
    assert (low, high) == pytest.approx((2.5 - half, 2.5 + half), rel=1e-9)
    assert np.isnan(aggregate.mean_interval(np.array([3.0]))[2])


def test_slope_and_its_interval_match_an_independent_fit(summary, runs):
    _, good, _ = runs
    widths = np.array([ds.attrs["width"] for ds, _ in good], float)
    distance = np.array([float(ds["final_distance_fro"]) for ds, _ in good])
    slope, intercept = np.polyfit(np.log(widths), np.log(distance), 1)
    residual = np.log(distance) - (slope * np.log(widths) + intercept)
    stderr = np.sqrt(residual @ residual / (len(widths) - 2) / np.sum((np.log(widths) - np.log(widths).mean()) ** 2))
    half = stats.t.ppf(0.975, len(widths) - 2) * stderr
    row = summary.sel(case="c")
    assert float(row["slope_fro"]) == pytest.approx(slope, rel=1e-10)
    assert (float(row["slope_fro_ci_low"]), float(row["slope_fro_ci_high"])) == pytest.approx(
        (slope - half, slope + half), rel=1e-8)
    assert float(row["theory_exponent"]) == -0.5


def test_loglog_slope_recovers_a_power_law():
    rng = np.random.default_rng(1)
    widths = np.repeat([100, 1000, 10000, 100000], 6)
    distance = 3.0 * widths**-0.37 * np.exp(0.05 * rng.standard_normal(widths.size))
    fit = aggregate.loglog_slope(widths, distance)
    assert fit["slope_low"] < -0.37 < fit["slope_high"]
    assert fit["slope_high"] - fit["slope_low"] < 0.05


def test_csv_tables(summary, tmp_path):
    out = dict(summary_nc=tmp_path / "s.nc", summary_csv=tmp_path / "s.csv", runs_csv=tmp_path / "r.csv",
               fits_csv=tmp_path / "f.csv")
    aggregate.write_outputs(summary, **out)
    per_width = pd.read_csv(out["summary_csv"]).set_index("width")
    assert per_width.loc[200, "n_diverged"] == 1 and per_width.loc[200, "slope_fro"] == pytest.approx(
        float(summary["slope_fro"].sel(case="c")))
    runs = pd.read_csv(out["runs_csv"])
    assert len(runs) == 11 and set(runs["status"]) == {"converged", "diverged", "not_converged"}
    fits = pd.read_csv(out["fits_csv"])
    assert list(fits["case"]) == ["c"] and fits.loc[0, "alpha"] == 0.5
    xr.testing.assert_identical(record.open_netcdf(out["summary_nc"]).drop_attrs(), summary.drop_attrs())


def test_bound_violation_fails_loudly(runs, tmp_path):
    folder, good, _ = runs
    ds, path = good[0]
    broken = ds.copy()
    broken["rate_bound"] = broken["inst_rate"] * 1.01  # a bound above the exact rate: impossible
    violations = checks.bound_violations(broken["inst_rate"], broken["rate_bound"], broken["rate_thm3"],
                                         broken["excess_loss"], broken["loss_bound"], flow=True)
    assert violations["prop1_violation"] == pytest.approx(0.01 / 1.01, rel=1e-6)
    broken = broken.assign({name: ((), value) for name, value in violations.items()})
    table = write_table(tmp_path / "t.nc", [(good[1][0], good[1][1]), (broken, tmp_path / "tampered.nc")])
    with pytest.raises(checks.BoundViolation, match="tampered.nc.*prop1_violation"):
        aggregate.summarize([table], experiment="test")
    args = ["aggregate", str(table), "--experiment", "x", "--summary-nc", str(tmp_path / "a.nc"),
            "--summary-csv", str(tmp_path / "a.csv"), "--runs-csv", str(tmp_path / "b.csv"),
            "--fits-csv", str(tmp_path / "c.csv")]
    assert cli.main(args) == 2 and not (tmp_path / "a.nc").exists()  # one line, no traceback (bug 4)


def test_corrupt_table_is_named(tmp_path, runs):
    folder, good, _ = runs
    table = write_table(tmp_path / "ok.nc", good[:2])
    truncated = tmp_path / "h50_b9.nc"
    truncated.write_bytes(table.read_bytes()[:2000])
    with pytest.raises(record.CorruptFileError, match="h50_b9.nc.*delete it and rerun"):
        aggregate.summarize([table, truncated], experiment="test")


def test_file_from_another_schema_is_rejected(tmp_path):
    other = tmp_path / "other.nc"
    xr.Dataset({"loss": ("time", np.ones(3))}).to_netcdf(other, engine="netcdf4")
    with pytest.raises(record.CorruptFileError, match="lacks the variables"):
        aggregate.summarize([other], experiment="test")


def _distance_cube(widths, distances):
    """A one-case cube with given final distances (width x seed), every run converged."""
    shape = (1,) + distances.shape
    data = {name: (("case", "width", "seed"), np.full(shape, 1.0)) for name in aggregate.RUN_VARIABLES}
    data["final_distance_fro"] = (("case", "width", "seed"), distances[None])
    data["final_distance_op"] = (("case", "width", "seed"), distances[None])
    data["status"] = (("case", "width", "seed"), np.full(shape, "converged", dtype=object))
    data["converged"] = (("case", "width", "seed"), np.ones(shape, bool))
    for name in aggregate.RATIOS:
        data[name] = (("case", "width", "seed"), np.full(shape, 1.0))
    return xr.Dataset(data, coords={"case": ["c"], "width": widths, "seed": np.arange(distances.shape[1])})


def test_the_upper_half_fit_uses_exactly_the_larger_half_of_the_widths():
    """Distances ~ h^-0.2 below h = 1000 and ~ h^-0.5 from it on: the full fit mixes them, the
    upper-half fit (widths 1000, 10^4, 10^5 of six) sees only h^-0.5."""
    widths = np.array([10, 30, 100, 1000, 10_000, 100_000])
    rng = np.random.default_rng(3)
    law = np.where(widths < 1000, 1000.0**-0.3 * widths**-0.2, widths**-0.5)
    distances = law[:, None] * np.exp(0.01 * rng.standard_normal((widths.size, 4)))
    out = aggregate.statistics(_distance_cube(widths, distances))
    assert int(out["upper_min_width"].item()) == 1000
    assert abs(out["slope_upper_fro"].item() + 0.5) < 0.02
    assert abs(out["slope_fro"].item() + 0.5) > 0.05  # the full fit is pulled towards -0.2
    independent = stats.linregress(np.log(np.repeat(widths[3:], 4)), np.log(distances[3:].ravel()))
    np.testing.assert_allclose(out["slope_upper_fro"].item(), independent.slope, rtol=1e-12)


def test_the_limit_distance_fit_is_free_of_the_convergence_floor():
    """End-point distances sqrt(null^2 + floor^2) with null ~ h^-1 and a convergence floor of
    1e-6: the fit of the null-space part (the limit distance) finds -1, the end-point fit does not."""
    widths = np.array([10**3, 10**4, 10**5, 10**6, 10**7])
    rng = np.random.default_rng(4)
    null = widths[:, None] ** -1.0 * np.exp(0.01 * rng.standard_normal((widths.size, 3)))
    cube = _distance_cube(widths, np.hypot(null, 1e-6))
    cube["final_distance_null_fro"] = (("case", "width", "seed"), null[None])
    out = aggregate.statistics(cube)
    independent = stats.linregress(np.log(np.repeat(widths, 3)), np.log(null.ravel()))
    np.testing.assert_allclose(out["slope_null_fro"].item(), independent.slope, rtol=1e-12)
    half = stats.t.ppf(0.975, null.size - 2) * independent.stderr
    np.testing.assert_allclose([out["slope_null_fro_ci_low"].item(), out["slope_null_fro_ci_high"].item()],
                               [independent.slope - half, independent.slope + half], rtol=1e-12)
    assert abs(out["slope_fro"].item() + 1.0) > 0.1
    np.testing.assert_allclose(out["distance_null_fro_mean"].values[0], null.mean(axis=1), rtol=1e-12)
