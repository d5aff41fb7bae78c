"""Combine a sweep's runs into a labeled cube, with statistics over seeds and fits in the width.

The input is the chunk tables (one row of scalars per run, written by the chunk jobs beside
their records files; :func:`verify_runs` checks them against the records). The output,
:func:`summarize`, is one :class:`xarray.Dataset`:

* on ``(case, width, seed)``: every per-run scalar and the run's ``status`` (``missing`` where
  no run exists); runs that did not converge stay in the cube, NaN where they have no value;
* on ``case``: the case's parameters as coordinates (``init``, ``alpha``, ``a``, ``b``, ...,
  and any simulation setting a case overrides), so ``ds.sel(case=ds.alpha == 0.4)`` works;
* on ``(case, width)``: counts per status, mean, std and 95% t-interval of the final distances
  over converged runs, mean rates and bounds;
* on ``case``: the least-squares log-log slope of the distance in the width, with its 95%
  interval, next to Theorem 12's exponent ``-(2 alpha - 1/2)``.

Runs whose status is not ``converged`` are counted per width and excluded from means and fits.
Proposition 1 and Theorem 3 are checked on every run (:mod:`linflow.checks`): a violation is
a bug and stops the aggregation.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from . import checks, htmltable, record, theory
from . import parameters as P

#: Per-run variables of the cube besides ``status`` (from the chunk tables).
RUN_VARIABLES = tuple(record.SCALAR_VARIABLES) + tuple(record.TABLE_EXTRAS)
RATIOS = {
    "ratio_rate_cor4": ("fitted_rate", "rate_cor4", "measured late-phase rate / Corollary 4 rate 2 lam_r Delta(0)"),
    "ratio_rate_thm3": ("fitted_rate", "rate_thm3_0", "measured late-phase rate / Theorem 3 rate lam_r c(0)"),
    "ratio_distance_thm12": ("final_distance_op", "theorem12_bound",
                             "final ||U V^T - Theta_hat||_2 / Theorem 12 bound"),
}
BoundViolation = checks.BoundViolation


def read_tables(paths) -> tuple[xr.Dataset, dict]:
    """The chunk tables concatenated on ``run``, and the parameters of every case."""
    tables, cases = [], {}
    for path in paths:
        table = record.open_table(path)
        cases.update(json.loads(table.attrs["cases"]))
        tables.append(table)
    if not tables:
        raise ValueError("no chunk tables to aggregate")
    return xr.concat(tables, dim="run", data_vars="all", coords="minimal", compat="override",
                     combine_attrs="drop"), cases


def check_table_bounds(table: xr.Dataset, rtol: float) -> None:
    """Refuse runs whose Proposition 1 / Theorem 3 violations exceed ``rtol`` (a bug).
    Diverged and failed runs are skipped: they end at overflowing or missing states."""
    checked = np.isin(table["status"].values, ("converged", "not_converged"))
    for i in np.flatnonzero(checked):
        checks.check_bounds({name: float(table[name].values[i]) for name in checks.VIOLATIONS},
                            table["file"].values[i], rtol)


def _case_coordinates(cases: dict[str, dict], order: list[str]) -> dict:
    """Case parameters as coordinates: every initialization parameter, and the simulation
    parameters that differ between cases (the rest is the same for every run: attributes)."""
    keys = sorted({k for params in cases.values() for k in params})
    coords = {}
    for key in keys:
        values = [cases[c].get(key) for c in order]
        parameter = P.PARAMETERS[key]
        varies = len({json.dumps(v) for v in values}) > 1
        if parameter.block != P.CASE and not varies:
            continue
        if parameter.type == "string" or parameter.choices:
            array = np.array(["" if v is None else v for v in values], dtype=object)
        elif None in values or parameter.type == "number":
            array = np.array([np.nan if v is None else v for v in values], dtype=float)
        else:
            array = np.array(values, dtype=np.int64)
        coords[key] = xr.Variable(("case",), array, attrs={"long_name": parameter.doc})
    return coords


def _shared_settings(cases: dict[str, dict]) -> dict:
    first = next(iter(cases.values()))
    return {k: v for k, v in first.items()
            if P.PARAMETERS[k].block != P.CASE and all(c.get(k) == v for c in cases.values())}


def cube(table: xr.Dataset, cases: dict[str, dict]) -> xr.Dataset:
    """Per-run scalars of ``table`` on ``(case, width, seed)``; absent runs are NaN, ``missing``."""
    case_order = list(cases)
    widths = np.unique(table["width"].values.astype(np.int64))
    seeds = np.unique(table["seed"].values.astype(np.int64))
    shape = (len(case_order), widths.size, seeds.size)
    ci = np.array([case_order.index(c) for c in table["case"].values])
    wi = np.searchsorted(widths, table["width"].values)
    si = np.searchsorted(seeds, table["seed"].values)
    flat = np.ravel_multi_index((ci, wi, si), shape)
    if np.unique(flat).size != flat.size:
        raise ValueError("the chunk tables hold a run twice")
    dims = ("case", "width", "seed")
    data = {}
    for name in RUN_VARIABLES:
        values = np.full(shape, np.nan)
        values.flat[flat] = table[name].values
        data[name] = xr.Variable(dims, values, attrs=table[name].attrs)
    for name, fill in (("status", "missing"), ("status_message", ""), ("file", ""), ("solver", "")):
        values = np.full(shape, fill, dtype=object)
        values.flat[flat] = table[name].values
        data[name] = xr.Variable(dims, values)
    data["status"].attrs.update(long_name="how the run ended ('missing': no run)",
                                flag_meanings=" ".join(record.STATUSES + ("missing",)))
    data["status_message"].attrs["long_name"] = "why the run ended so (the error of a failed run)"
    data["file"].attrs["long_name"] = "path of the run's record (trajectories): its chunk's records file"
    index = np.full(shape, -1, dtype=np.int64)
    index.flat[flat] = table["record"].values
    data["record"] = xr.Variable(dims, index, attrs={
        "long_name": "index of the run in its records file (linflow.record.open_run(file, record); -1: no run)"})
    data["solver"].attrs["long_name"] = "flow integrator the run used (none: gd, sgd; empty: no run)"
    converged = data["status"].values == "converged"
    data["converged"] = xr.Variable(dims, converged, attrs={"long_name": "run reached its stopping target"})
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, (num, den, long_name) in RATIOS.items():
            data[name] = xr.Variable(dims, data[num].values / data[den].values,
                                     attrs={"units": "1", "long_name": long_name})
    coords = {"case": ("case", np.array(case_order, dtype=object)), "width": ("width", widths),
              "seed": ("seed", seeds)}
    coords.update(_case_coordinates(cases, case_order))
    ds = xr.Dataset(data, coords=coords)
    ds["width"].attrs.update(long_name="hidden width h", units="1")
    ds["seed"].attrs["long_name"] = "seed index of the run (its own random stream)"
    ds["case"].attrs["long_name"] = "initialization case"
    return ds


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


def mean_interval(values: np.ndarray, confidence: float = 0.95):
    """Mean, standard deviation and the t-interval of the mean (NaN where undefined)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    n = values.size
    if n == 0:
        return np.nan, np.nan, np.nan, np.nan
    mean = float(values.mean())
    if n == 1:
        return mean, np.nan, np.nan, np.nan
    std = float(values.std(ddof=1))
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * std / np.sqrt(n)
    return mean, std, mean - half, mean + half


STATS = {  # per (case, width), over the converged seeds: (long_name)
    "distance_fro": "||U V^T - Theta_hat||_F at the end point",
    "distance_op": "||U V^T - Theta_hat||_2 at the end point",
    "distance_null_fro": "null-space part ||Phi2 U2 V^T||_F of the end-point distance (the limit distance)",
}
MEANS = {
    "theorem12_bound_mean": ("theorem12_bound", "Theorem 12 bound on ||U V^T - Theta_hat||_2 (mean over seeds)"),
    "fitted_rate_mean": ("fitted_rate", "late-phase exponential rate (mean over converged seeds)"),
    "rate_cor4_mean": ("rate_cor4", "Corollary 4 rate (mean over converged seeds)"),
    "rate_thm3_mean": ("rate_thm3_0", "Theorem 3 rate lam_r c(0) (mean over converged seeds)"),
    "ratio_rate_cor4_mean": ("ratio_rate_cor4", "fitted / Corollary 4 rate (mean over converged seeds)"),
    "ratio_rate_thm3_mean": ("ratio_rate_thm3", "fitted / Theorem 3 rate (mean over converged seeds)"),
    "ratio_distance_thm12_mean": ("ratio_distance_thm12", "distance / Theorem 12 bound (mean over converged seeds)"),
}
MINS = {
    "ratio_rate_cor4_min": ("ratio_rate_cor4", "fitted / Corollary 4 rate (min over converged seeds)"),
    "ratio_rate_thm3_min": ("ratio_rate_thm3", "fitted / Theorem 3 rate (min over converged seeds)"),
}


def statistics(ds: xr.Dataset) -> xr.Dataset:
    """Add the per-(case, width) statistics and the per-case fits to a cube."""
    converged = ds["converged"].values
    C, W, _ = converged.shape
    out = {}
    for status in record.STATUSES + ("missing",):
        out[f"n_{status}"] = (("case", "width"), (ds["status"].values == status).sum(axis=2),
                              {"long_name": f"runs with status {status}"})
    out["n_runs"] = (("case", "width"), (ds["status"].values != "missing").sum(axis=2), {"long_name": "runs"})
    for name, long_name in STATS.items():
        values = np.where(converged, ds[f"final_{name}"].values, np.nan)
        table = np.array([[mean_interval(values[c, w]) for w in range(W)] for c in range(C)]).reshape(C, W, 4)
        for i, suffix in enumerate(("mean", "std", "ci_low", "ci_high")):
            what = {"mean": "mean", "std": "standard deviation", "ci_low": "lower end of the 95% interval of the mean",
                    "ci_high": "upper end of the 95% interval of the mean"}[suffix]
            out[f"{name}_{suffix}"] = (("case", "width"), table[..., i],
                                       {"units": "1", "long_name": f"{long_name}: {what} over converged seeds"})
    with warnings.catch_warnings():  # all-NaN widths (no seed converged) are NaN on purpose
        warnings.simplefilter("ignore", category=RuntimeWarning)
        for name, (source, long_name) in MEANS.items():
            values = np.where(converged, ds[source].values, np.nan)
            out[name] = (("case", "width"), np.nanmean(values, axis=2), {"units": "1", "long_name": long_name})
        for name, (source, long_name) in MINS.items():
            values = np.where(converged, ds[source].values, np.nan)
            out[name] = (("case", "width"), np.nanmin(values, axis=2), {"units": "1", "long_name": long_name})
    widths = ds["width"].values
    per_case = {key: [] for key in ("slope_fro", "slope_fro_ci_low", "slope_fro_ci_high", "intercept_fro",
                                    "n_fit_points", "slope_upper_fro", "slope_upper_fro_ci_low",
                                    "slope_upper_fro_ci_high", "upper_min_width", "slope_op", "slope_op_ci_low",
                                    "slope_op_ci_high", "slope_null_fro", "slope_null_fro_ci_low",
                                    "slope_null_fro_ci_high", "n_excluded")}
    for c in range(C):
        w = np.broadcast_to(widths[:, None], converged[c].shape)
        ok = converged[c]
        fro, op = ds["final_distance_fro"].values[c], ds["final_distance_op"].values[c]
        fit_fro, fit_op = loglog_slope(w[ok], fro[ok]), loglog_slope(w[ok], op[ok])
        fit_null = loglog_slope(w[ok], ds["final_distance_null_fro"].values[c][ok])
        distinct = np.unique(w[ok])  # the same fit on the larger half of the widths: less finite-width bias
        upper_min = int(distinct[len(distinct) // 2]) if distinct.size else -1
        upper = ok & (w >= upper_min)
        fit_upper = loglog_slope(w[upper], fro[upper])
        for key, value in (("slope_fro", fit_fro["slope"]), ("slope_fro_ci_low", fit_fro["slope_low"]),
                           ("slope_fro_ci_high", fit_fro["slope_high"]), ("intercept_fro", fit_fro["intercept"]),
                           ("n_fit_points", fit_fro["n_points"]), ("slope_upper_fro", fit_upper["slope"]),
                           ("slope_upper_fro_ci_low", fit_upper["slope_low"]),
                           ("slope_upper_fro_ci_high", fit_upper["slope_high"]), ("upper_min_width", upper_min),
                           ("slope_op", fit_op["slope"]), ("slope_op_ci_low", fit_op["slope_low"]),
                           ("slope_op_ci_high", fit_op["slope_high"]), ("slope_null_fro", fit_null["slope"]),
                           ("slope_null_fro_ci_low", fit_null["slope_low"]),
                           ("slope_null_fro_ci_high", fit_null["slope_high"]),
                           ("n_excluded", int(((ds["status"].values[c] != "missing") & ~ok).sum()))):
            per_case[key].append(value)
    fit_names = {
        "slope_fro": "fitted log-log slope of the Frobenius distance in the width (all widths)",
        "slope_fro_ci_low": "lower end of its 95% interval", "slope_fro_ci_high": "upper end of its 95% interval",
        "intercept_fro": "intercept of that fit (log distance at h = 1)",
        "n_fit_points": "converged runs in the fit",
        "slope_upper_fro": "the same slope over the larger half of the widths",
        "slope_upper_fro_ci_low": "lower end of its 95% interval",
        "slope_upper_fro_ci_high": "upper end of its 95% interval",
        "upper_min_width": "smallest width of the upper-half fit",
        "slope_op": "fitted log-log slope of the operator-norm distance in the width",
        "slope_op_ci_low": "lower end of its 95% interval", "slope_op_ci_high": "upper end of its 95% interval",
        "slope_null_fro": "fitted log-log slope of the limit distance (the end point's null-space part "
                          "||Phi2 U2 V^T||_F, free of the convergence error) in the width (all widths)",
        "slope_null_fro_ci_low": "lower end of its 95% interval",
        "slope_null_fro_ci_high": "upper end of its 95% interval",
        "n_excluded": "runs excluded from the fits (not converged)",
    }
    for key, values in per_case.items():
        out[key] = (("case",), np.asarray(values), {"long_name": fit_names[key]})
    alpha = ds["alpha"].values if "alpha" in ds.coords else np.full(C, np.nan)
    exponent_attrs = {"long_name": "Theorem 12's exponent -(2 alpha - 1/2)"}
    outside = np.isfinite(alpha) & ~theory.theorem12_applies(alpha)
    if outside.any():  # say why these entries are NaN
        exponent_attrs["comment"] = ("NaN for alpha outside Theorem 12's range 1/4 < alpha <= 1/2 (here: "
                                     + ", ".join(f"{a:g}" for a in np.unique(alpha[outside])) + ")")
    out["theory_exponent"] = (("case",), np.asarray(theory.theory_exponent(alpha), dtype=float), exponent_attrs)
    return ds.assign({name: xr.Variable(dims, values, attrs=attrs) for name, (dims, values, attrs) in out.items()})


def summarize(table_paths, *, experiment: str, bound_rtol: float = checks.DEFAULT_RTOL, root=None) -> xr.Dataset:
    """The summary cube of an experiment from its chunk tables (bounds checked). Run-file paths
    are stored relative to ``root`` (the folder of ``summary.nc``), where given."""
    table, cases = read_tables([Path(p) for p in table_paths])
    if root is not None:
        table["file"] = ("run", np.array([os.path.relpath(f, root) for f in table["file"].values], dtype=object))
    check_table_bounds(table, bound_rtol)
    ds = statistics(cube(table, cases))
    ds.attrs.update(record.provenance({"experiment": experiment, "n_runs": int(table.sizes["run"])}, "summary"))
    ds.attrs.update(experiment=experiment, simulation=json.dumps(_shared_settings(cases), sort_keys=True))
    data = record.open_table(table_paths[0]).attrs.get("data")  # one dataset per experiment
    if data is not None:
        ds.attrs["data"] = data
    return ds


def verify_runs(table_paths, rtol: float = 0.0) -> int:
    """Check every run record against its chunk-table row (the records are the source of
    truth); returns the number of runs checked. Raises ValueError naming the first mismatch."""
    checked = 0
    for path in table_paths:
        table = record.open_table(path)
        stacked = {}  # a chunk's records file, read once
        for i in range(table.sizes["run"]):
            run_file, index = table["file"].values[i], int(table["record"].values[i])
            if index < 0:
                ds = record.open_run(run_file)
            else:
                if run_file not in stacked:
                    stacked = {run_file: record.open_runs(run_file)}
                ds = stacked[run_file][index]
            # Scalars straight from the record's variables (not through table_row, the code
            # that wrote the table); the derived columns (n_points, times, ...) through it.
            row = record.table_row(ds, run_file, index)
            row.update({key: ds[key].item() for key in row if key in ds.data_vars and ds[key].ndim == 0})
            for key, value in row.items():
                expected = table[key].values[i]
                same = (value == expected) if isinstance(value, str) or isinstance(value, bool) else (
                    np.isclose(value, expected, rtol=rtol, atol=0) or (np.isnan(value) and np.isnan(expected)))
                if not same:
                    raise ValueError(f"{run_file} (run {index}): {key} is {value!r} in the record but {expected!r} "
                                     f"in {path}")
            checked += 1
    return checked


def tables(ds: xr.Dataset) -> dict[str, pd.DataFrame]:
    """The CSV tables: ``runs`` (one row per run), ``summary`` (per case and width, with the
    case's fit) and ``fits`` (per case)."""
    experiment = ds.attrs.get("experiment", "")
    case_coords = [name for name in ds.coords if ds[name].dims == ("case",) and name != "case"]
    run_vars = [name for name in ds.data_vars if ds[name].dims == ("case", "width", "seed")]
    runs = ds[run_vars].to_dataframe().reset_index()
    runs = runs[runs["status"] != "missing"]
    grid_vars = [name for name in ds.data_vars if ds[name].dims == ("case", "width")]
    case_vars = [name for name in ds.data_vars if ds[name].dims == ("case",)]
    per_case = ds[case_vars].reset_coords(case_coords).to_dataframe().reset_index() if case_vars else None
    summary = ds[grid_vars].reset_coords(case_coords, drop=True).to_dataframe().reset_index()
    if per_case is not None:
        summary = summary.merge(per_case, on="case", how="left")
    for frame in (runs, summary, per_case):
        frame.insert(0, "experiment", experiment)
    return {"runs": runs, "summary": summary, "fits": per_case}


def column_descriptions(ds: xr.Dataset) -> dict[str, str]:
    """What each column of the CSV tables holds (the cube's long names)."""
    columns = {"experiment": "experiment of the config", "case": "initialization case of the experiment",
               "width": "hidden width h", "seed": "seed index"}
    for name, variable in {**ds.coords, **ds.data_vars}.items():
        if "long_name" in variable.attrs:
            columns.setdefault(str(name), str(variable.attrs["long_name"]))
    return columns


TABLE_PAGES = {  # table -> (title, description) of its HTML page
    "fits": ("Fitted exponents", "One row per case: the least-squares log-log slope of the final distance to "
             "the min-norm solution against the width, with its 95% interval, over all widths and over the "
             "larger half of them, next to Theorem 12's exponent -(2 alpha - 1/2)."),
    "summary": ("Statistics per width and bound tightness", "One row per (case, width): runs per status, "
                "mean and 95% interval of the final distances over converged seeds, the Theorem 12 bound, the "
                "fitted rate against the Corollary 4 and Theorem 3 rates (ratios >= 1 by the theorems) and the "
                "distance against the Theorem 12 bound (<= 1), with the case's fit."),
}


def write_outputs(ds: xr.Dataset, *, summary_nc, summary_csv, runs_csv, fits_csv, summary_html=None,
                  fits_html=None) -> None:
    """``summary.nc`` (the cube, compressed) and the three CSV tables, each written atomically;
    optionally the summary and fits tables also as HTML pages (:mod:`linflow.htmltable`)."""
    encoding = {name: {"zlib": True, "complevel": 4} for name, var in ds.data_vars.items()
                if var.dtype.kind == "f" and var.ndim >= 2}
    record.write_netcdf(ds, summary_nc, encoding=encoding)
    frames = tables(ds)
    for frame, path in ((frames["summary"], summary_csv), (frames["runs"], runs_csv), (frames["fits"], fits_csv)):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        frame.to_csv(tmp, index=False)
        tmp.replace(path)
    columns = column_descriptions(ds)
    experiment = ds.attrs.get("experiment", "")
    for name, path, csv in (("summary", summary_html, summary_csv), ("fits", fits_html, fits_csv)):
        if path is not None:
            title, description = TABLE_PAGES[name]
            htmltable.write(frames[name], path, title=f"{title}: experiment {experiment}", description=description,
                            columns=columns, csv_name=Path(csv).name)
