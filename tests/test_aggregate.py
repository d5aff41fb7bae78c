"""Aggregation: statistics over seeds, slopes, status handling, bound checks, corrupt files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import linflow
from linflow import aggregate, cli, init, record
from conftest import random_problem


def make_run(path, X, Y, h, seed, case="c", **kwargs):
    rng = np.random.default_rng([h, seed])
    U0, V0 = init.gaussian(X.shape[1], Y.shape[1], h, 0.5, rng)
    ds = linflow.simulate(X, Y, U0, V0, alpha=0.5, attrs={"case": case, "seed": seed}, **kwargs)
    record.write_netcdf(ds, path)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    X, Y = random_problem(np.random.default_rng(0), 10, 40, 1)
    paths = [make_run(folder / f"h{h}_s{s}.nc", X, Y, h, s) for h in (50, 200, 800) for s in range(3)]
    # A diverging gradient-descent run at one width, and one that hits its step limit.
    paths.append(make_run(folder / "h200_s7.nc", X, Y, 200, 7, method="gd", step=100.0))
    paths.append(make_run(folder / "h800_s8.nc", X, Y, 800, 8, method="gd", step=1e-3, max_steps=5))
    return paths


def aggregate_to(tmp_path, paths):
    out = dict(summary_nc=tmp_path / "s.nc", summary_csv=tmp_path / "s.csv", runs_csv=tmp_path / "r.csv",
               fits_csv=tmp_path / "f.csv")
    ds = aggregate.aggregate_files(paths, experiment="test", **out)
    return ds, pd.read_csv(out["summary_csv"]), pd.read_csv(out["runs_csv"])


def test_failed_runs_are_counted_and_excluded(tmp_path, runs):
    ds, summary, table = aggregate_to(tmp_path, runs)
    by_width = summary.set_index("width")
    assert by_width.loc[200, "n_diverged"] == 1 and by_width.loc[800, "n_not_converged"] == 1
    assert list(by_width["n_converged"]) == [3, 3, 3]
    good = table[(table["width"] == 200) & (table["status"] == "converged")]
    assert by_width.loc[200, "distance_fro_mean"] == pytest.approx(good["final_distance_fro"].mean(), rel=1e-12)
    assert summary["n_excluded"].iloc[0] == 2
    assert set(table["status"]) == {"converged", "diverged", "not_converged"}


def test_slope_and_intervals(tmp_path, runs):
    ds, summary, _ = aggregate_to(tmp_path, runs)
    row = summary.iloc[0]
    assert row["slope_fro_ci_low"] < row["slope_fro"] < row["slope_fro_ci_high"]
    assert -0.8 < row["slope_fro"] < -0.2
    assert row["theory_exponent"] == -0.5
    assert np.all(summary["distance_fro_ci_low"] < summary["distance_fro_mean"])
    assert np.all(summary["ratio_rate_cor4_min"] >= 1.0)  # Corollary 4 is a lower bound on the rate
    assert ds["distance_fro_mean"].dims == ("case", "width")


def test_loglog_slope_recovers_a_power_law():
    rng = np.random.default_rng(1)
    widths = np.repeat([100, 1000, 10000, 100000], 6)
    distance = 3.0 * widths**-0.37 * np.exp(0.05 * rng.standard_normal(widths.size))
    fit = aggregate.loglog_slope(widths, distance)
    assert fit["slope_low"] < -0.37 < fit["slope_high"]
    assert fit["slope_high"] - fit["slope_low"] < 0.05


def test_bound_violation_fails_loudly(tmp_path, runs):
    ds = record.open_run(runs[0])
    ds["rate_bound"] = ds["inst_rate"] * 1.01  # a bound above the exact rate: impossible
    tampered = record.write_netcdf(ds, tmp_path / "tampered.nc")
    with pytest.raises(aggregate.BoundViolation, match="tampered.nc.*rate_bound"):
        aggregate_to(tmp_path, [runs[1], tampered])


def test_corrupt_run_file_is_named(tmp_path, runs):
    truncated = tmp_path / "h50_s9.nc"
    truncated.write_bytes(runs[0].read_bytes()[:2000])
    with pytest.raises(record.CorruptFileError, match="h50_s9.nc.*delete it and rerun"):
        aggregate_to(tmp_path, [runs[1], truncated])
    code = cli.main(["aggregate", str(runs[1]), str(truncated), "--experiment", "x",
                     "--summary-nc", str(tmp_path / "a.nc"), "--summary-csv", str(tmp_path / "a.csv"),
                     "--runs-csv", str(tmp_path / "b.csv"), "--fits-csv", str(tmp_path / "c.csv")])
    assert code == 2 and not (tmp_path / "a.nc").exists()


def test_file_from_another_schema_is_rejected(tmp_path, runs):
    other = tmp_path / "other.nc"
    xr.Dataset({"loss": ("time", np.ones(3))}).to_netcdf(other, engine="netcdf4")
    with pytest.raises(record.CorruptFileError, match="lacks the variables"):
        aggregate_to(tmp_path, [other])
