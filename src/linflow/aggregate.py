"""Combine run records: Theorem 12 distances over seeds, slopes in the width, rates vs bounds.

Run files are opened, checked and closed one at a time (memory stays flat for thousands of
files). Runs whose status is not ``converged`` are counted per width and excluded from means
and fits. A bound of Proposition 1 or Theorem 3 violated beyond round-off raises
:class:`BoundViolation`: they are theorems, so a violation is a bug, not a finding.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from . import record, theory

#: Per-run scalars copied into the summary.
RUN_SCALARS = (
    "final_distance_fro", "final_distance_op", "fitted_rate", "rate_cor4", "rate_thm3_0", "theorem12_bound",
    "delta_plus", "delta_minus", "delta_under", "c0", "imbalance_drift", "lam_1", "lam_r", "orthogonality0",
    "end_to_end0_fro",
)


class BoundViolation(RuntimeError):
    """A theorem's bound failed on a recorded state: a bug in the simulator or the bounds."""


def check_bounds(ds: xr.Dataset, path, rtol: float = 1e-8) -> None:
    """Proposition 1 and Theorem 3 (pointwise, every method) and the Theorem 3 loss bound (flow).

    Allows ``rtol`` relative slack (the bounds are attained in some cases, see THEORY.md).
    """
    inst = ds["inst_rate"].values
    ok = np.isfinite(inst)
    problems = []
    scale = np.abs(inst[ok]).max(initial=0.0)
    for name in ("rate_bound", "rate_thm3"):
        bound = ds[name].values[ok]
        excess = bound - inst[ok] - rtol * np.maximum(np.abs(bound), np.abs(inst[ok])) - 1e-13 * scale
        if np.any(excess > 0):
            i = int(np.argmax(excess))
            problems.append(f"{name}: instantaneous rate {inst[ok][i]:.6e} < bound {bound[i]:.6e}")
    params = json.loads(ds.attrs.get("parameters", "{}"))
    if params.get("method") == "flow":
        excess, bound = ds["excess_loss"].values, ds["loss_bound"].values
        tol = rtol * bound + 1e-12 * float(excess[0])
        if np.any(excess > bound + tol):
            i = int(np.argmax(excess - bound - tol))
            problems.append(f"loss_bound: excess loss {excess[i]:.6e} > Theorem 3 bound {bound[i]:.6e} at t={float(ds.time[i]):.4g}")
    if problems:
        raise BoundViolation(f"{path}: bound violated beyond numerical tolerance (a bug): " + "; ".join(problems))


def run_table(paths, bound_rtol: float = 1e-8) -> pd.DataFrame:
    """One row per run file: identity (case, width, seed), status and the scalars of RUN_SCALARS."""
    rows = []
    for path in paths:
        ds = record.open_run(path)
        params = json.loads(ds.attrs.get("parameters", "{}"))
        status = str(ds["status"].item())
        if status == "converged":
            check_bounds(ds, path, bound_rtol)
        row = {
            "file": str(path),
            "case": str(ds.attrs.get("case", params.get("case", "default"))),
            "width": int(ds.attrs["width"]),
            "seed": int(ds.attrs.get("seed", params.get("seed", -1))),
            "method": params.get("method"),
            "alpha": params.get("alpha"),
            "status": status,
        }
        row.update({name: float(ds[name]) for name in RUN_SCALARS})
        rows.append(row)
    if not rows:
        raise ValueError("no run files to aggregate")
    table = pd.DataFrame(rows).sort_values(["case", "width", "seed"], kind="stable").reset_index(drop=True)
    table["alpha"] = pd.to_numeric(table["alpha"], errors="coerce")
    with np.errstate(divide="ignore", invalid="ignore"):
        table["ratio_rate_cor4"] = table["fitted_rate"] / table["rate_cor4"]
        table["ratio_rate_thm3"] = table["fitted_rate"] / table["rate_thm3_0"]
        table["ratio_distance_thm12"] = table["final_distance_op"] / table["theorem12_bound"]
    return table


def loglog_slope(width, distance, confidence: float = 0.95) -> dict:
    """Least-squares slope of ``log distance`` against ``log width`` with its confidence interval."""
    width, distance = np.asarray(width, float), np.asarray(distance, float)
    ok = np.isfinite(distance) & (distance > 0)
    x, y = np.log(width[ok]), np.log(distance[ok])
    nan = dict(slope=np.nan, slope_low=np.nan, slope_high=np.nan, intercept=np.nan, n_points=int(ok.sum()))
    if np.unique(x).size < 2 or x.size < 3:
        return nan
    fit = stats.linregress(x, y)
    half = stats.t.ppf(0.5 + confidence / 2, x.size - 2) * fit.stderr
    return dict(slope=fit.slope, slope_low=fit.slope - half, slope_high=fit.slope + half,
                intercept=fit.intercept, n_points=int(x.size))


def _mean_interval(values: np.ndarray, confidence: float = 0.95):
    n = values.size
    if n == 0:
        return np.nan, np.nan, np.nan, np.nan
    mean = float(values.mean())
    if n == 1:
        return mean, np.nan, np.nan, np.nan
    std = float(values.std(ddof=1))
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * std / np.sqrt(n)
    return mean, std, mean - half, mean + half


def summarize(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (case, width) statistics over seeds and per-case fits, from a :func:`run_table`."""
    per_width = []
    for (case, width), group in table.groupby(["case", "width"], sort=True):
        good = group[group["status"] == "converged"]
        mean, std, low, high = _mean_interval(good["final_distance_fro"].to_numpy())
        mean_op, std_op, low_op, high_op = _mean_interval(good["final_distance_op"].to_numpy())
        per_width.append(dict(
            case=case, width=width, n_runs=len(group), n_converged=len(good),
            n_diverged=int((group["status"] == "diverged").sum()),
            n_not_converged=int((group["status"] == "not_converged").sum()),
            n_failed=int((group["status"] == "failed").sum()),
            distance_fro_mean=mean, distance_fro_std=std, distance_fro_ci_low=low, distance_fro_ci_high=high,
            distance_op_mean=mean_op, distance_op_std=std_op, distance_op_ci_low=low_op, distance_op_ci_high=high_op,
            theorem12_bound_mean=float(good["theorem12_bound"].mean()) if len(good) else np.nan,
            fitted_rate_mean=float(good["fitted_rate"].mean()) if len(good) else np.nan,
            rate_cor4_mean=float(good["rate_cor4"].mean()) if len(good) else np.nan,
            rate_thm3_mean=float(good["rate_thm3_0"].mean()) if len(good) else np.nan,
            ratio_rate_cor4_min=float(good["ratio_rate_cor4"].min()) if len(good) else np.nan,
            ratio_rate_cor4_mean=float(good["ratio_rate_cor4"].mean()) if len(good) else np.nan,
            ratio_rate_thm3_min=float(good["ratio_rate_thm3"].min()) if len(good) else np.nan,
            ratio_distance_thm12_mean=float(good["ratio_distance_thm12"].mean()) if len(good) else np.nan,
            alpha=float(group["alpha"].iloc[0]),
        ))
    per_width = pd.DataFrame(per_width)
    per_case = []
    for case, group in table.groupby("case", sort=True):
        good = group[group["status"] == "converged"]
        fit_fro = loglog_slope(good["width"], good["final_distance_fro"])
        fit_op = loglog_slope(good["width"], good["final_distance_op"])
        # The same fit on the larger half of the widths: finite-width bias shrinks with h.
        distinct = np.unique(good["width"])
        upper = good[good["width"] >= distinct[len(distinct) // 2]] if distinct.size else good
        fit_upper = loglog_slope(upper["width"], upper["final_distance_fro"])
        alpha = float(group["alpha"].iloc[0])
        per_case.append(dict(
            case=case, alpha=alpha,
            theory_exponent=float(theory.theory_exponent(alpha)) if np.isfinite(alpha) else np.nan,
            slope_fro=fit_fro["slope"], slope_fro_ci_low=fit_fro["slope_low"], slope_fro_ci_high=fit_fro["slope_high"],
            intercept_fro=fit_fro["intercept"], n_fit_points=fit_fro["n_points"],
            slope_upper_fro=fit_upper["slope"], slope_upper_fro_ci_low=fit_upper["slope_low"],
            slope_upper_fro_ci_high=fit_upper["slope_high"],
            upper_min_width=int(distinct[len(distinct) // 2]) if distinct.size else -1,
            slope_op=fit_op["slope"], slope_op_ci_low=fit_op["slope_low"], slope_op_ci_high=fit_op["slope_high"],
            n_runs_total=len(group), n_excluded=len(group) - len(good),
        ))
    return per_width, pd.DataFrame(per_case)


def summary_dataset(table: pd.DataFrame, per_width: pd.DataFrame, per_case: pd.DataFrame, experiment: str) -> xr.Dataset:
    """The summary in one NetCDF-ready Dataset: dims ``run``, ``(case, width)`` and ``case``."""
    # Run-level identity columns get a prefix: "case" and "width" are dimensions of the grid.
    run_columns = table.rename(columns={"case": "run_case", "width": "run_width", "alpha": "run_alpha"})
    runs = xr.Dataset.from_dataframe(run_columns.rename_axis("run"))
    grid = xr.Dataset.from_dataframe(per_width.set_index(["case", "width"]))
    cases = xr.Dataset.from_dataframe(per_case.set_index("case"))
    ds = xr.merge([runs, grid.drop_vars("alpha"), cases], compat="no_conflicts", join="outer")
    for name in ds.data_vars:
        if ds[name].dtype == object:
            ds[name] = ds[name].astype(str)
    ds.attrs.update(record.provenance({"experiment": experiment, "n_runs": int(len(table))}, "summary"))
    ds.attrs["experiment"] = experiment
    return ds


def aggregate_files(
    paths, *, experiment: str, summary_nc, summary_csv, runs_csv, fits_csv, bound_rtol: float = 1e-8
) -> xr.Dataset:
    """Read run files, check the bounds, and write ``summary.nc`` and the CSV tables: per (case,
    width) ``summary.csv``, per run ``runs.csv``, per case (fitted exponent vs theory) ``fits.csv``."""
    table = run_table([Path(p) for p in paths], bound_rtol)
    per_width, per_case = summarize(table)
    ds = summary_dataset(table, per_width, per_case, experiment)
    record.write_netcdf(ds, summary_nc)
    tidy = per_width.merge(per_case.drop(columns=["alpha"]), on="case", how="left")
    tidy.insert(0, "experiment", experiment)
    _write_csv(tidy, summary_csv)
    _write_csv(table.assign(experiment=experiment), runs_csv)
    _write_csv(per_case.assign(experiment=experiment), fits_csv)
    return ds


def _write_csv(frame: pd.DataFrame, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)
