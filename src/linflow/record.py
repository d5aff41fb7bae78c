"""The NetCDF schema of linflow's files: datasets, run records, a chunk's records file, chunk
tables and summaries.

Only this module names variables, units and attributes, writes files and opens them.
Writes are atomic (temporary file in the same directory, then ``os.replace``), so a killed
job never leaves a file that looks complete; reads turn a corrupt file into an error that
names it.

Formats, chosen on measurement: a run record is small (about 35 variables of at most a few
hundred numbers), and HDF5 (NETCDF4) spends ~500 bytes of metadata per variable on it, so run
records are written as classic netCDF (``NETCDF3_64BIT_OFFSET``, readable by every netCDF
tool): a flow run of the Fig. 7 setting takes 19 KB instead of 43 KB, and it loads about 4x
faster; compression does not pay at that size (zlib made it 65 KB). A workflow chunk writes its
runs' records into one file (:class:`RecordStack`), not one file each. Records files, chunk
tables, summaries and datasets are NETCDF4.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from . import __version__
from .checks import VIOLATIONS, bound_violations
from .theory import ReducedProblem

ENGINE = "netcdf4"
RUN_FORMAT = "NETCDF3_64BIT_OFFSET"

#: Values of the ``status`` variable of a run record.
STATUSES = ("converged", "not_converged", "diverged", "failed")

#: Run-record variables on dimension ``time``: (units, long_name).
TIME_VARIABLES = {
    "loss": ("1", "training loss 1/2 ||Y - X U V^T||_F^2 (full batch, also for SGD)"),
    "excess_loss": ("1", "excess loss 1/2 ||E||_F^2 = L - L*"),
    "inst_rate": ("1/time", "instantaneous rate -(dL~/dt)/L~ (exact, from the state)"),
    "rate_bound": ("1/time", "Proposition 1 lower bound on the instantaneous rate"),
    "rate_thm3": ("1/time", "lam_r c(t): Theorem 3's rate with the margin at the current state"),
    "loss_bound": ("1", "Theorem 3 bound exp(-lam_r c(0) t) L~(0) on the excess loss"),
    "distance_fro": ("1", "||U V^T - Theta_hat||_F, distance to the min-norm solution"),
    "distance_op": ("1", "||U V^T - Theta_hat||_2, distance to the min-norm solution"),
    "orthogonality": ("1", "||K||_F, K = [V U2(0)^T; U1 U2(0)^T] (Section 4)"),
}

#: Run-record scalar variables: (units, long_name).
SCALAR_VARIABLES = {
    "delta_plus": ("1", "Delta_+ of the imbalance at t = 0 (Section 3.2)"),
    "delta_minus": ("1", "Delta_- of the imbalance at t = 0 (Section 3.2)"),
    "delta_under": ("1", "effective imbalance Delta_ at t = 0 (Section 3.2)"),
    "c0": ("1", "Theorem 3 constant c(0)"),
    "rate_cor4": ("1/time", "Corollary 4 rate 2 lam_r Delta_(0)"),
    "rate_thm3_0": ("1/time", "Theorem 3 rate lam_r c(0)"),
    "margin_m": ("1", "Corollary 5 margin mu_m(0)"),
    "margin_r": ("1", "Corollary 5 margin mu_r(0)"),
    "fitted_rate": ("1/time", "late-phase exponential rate of the excess loss (least squares)"),
    "final_distance_fro": ("1", "||U V^T - Theta_hat||_F at the end point"),
    "final_distance_op": ("1", "||U V^T - Theta_hat||_2 at the end point"),
    "final_distance_null_fro": ("1", "null-space part ||Phi2 U2 V^T||_F of the end-point distance: U2 never "
                                "moves, so this converges with V alone to the limit distance ||U V^T(inf) - "
                                "Theta_hat||_F (Theorem 12's quantity), unlike the row-space part"),
    "final_v_fro": ("1", "||V||_F at the end point (the null-space part is U2(0) V^T: for the Gaussian init, "
                    "E ||Phi2 U2 V^T||_F^2 = (n - r) h^(-2 alpha) E ||V||_F^2)"),
    "final_distance_row_fro": ("1", "row-space part ||U1 V^T - S^-1 W^T Y||_F of the end-point distance: the "
                               "convergence error, 0 in the limit"),
    "orthogonality0": ("1", "Lemma 11: ||K(0)||_F"),
    "end_to_end0_fro": ("1", "Lemma 11: ||U1(0) V(0)^T||_F"),
    "theorem12_bound": ("1", "Theorem 12 bound on ||U V^T - Theta_hat||_2 (Gaussian init only)"),
    "imbalance_drift": ("1", "max relative drift ||D(t) - D(0)||_F / ||D(0)||_F (conserved by the flow)"),
    "lam_1": ("1", "largest eigenvalue of Sigma_X"),
    "lam_r": ("1", "smallest nonzero eigenvalue of Sigma_X"),
    "loss_star": ("1", "unreachable loss L* = 1/2 ||(I - W W^T) Y||_F^2"),
    "n_evaluations": ("1", "right-hand-side evaluations (flow) or iterations (gd, sgd)"),
}

#: The flow integrator's counts (NaN where it does not report them: DOP853 reports only its
#: right-hand-side evaluations; gradient descent and SGD have no integrator).
SOLVER_STATISTICS = {
    "n_steps": ("1", "integrator steps (BDF; NaN for DOP853, gd, sgd)"),
    "n_jvp": ("1", "Jacobian-vector products of the Newton-Krylov solves (BDF; NaN otherwise)"),
    "n_precond_setups": ("1", "preconditioner setups: exact factorizations of I - gamma J (BDF; NaN otherwise)"),
    "n_precond_solves": ("1", "preconditioner solves (BDF; NaN otherwise)"),
}
SCALAR_VARIABLES.update(SOLVER_STATISTICS)

#: Values of the ``solver`` variable: the flow integrator a run used ("none": gd, sgd).
SOLVERS_USED = ("dop853", "bdf", "none")
SCALAR_VARIABLES.update({name: ("1", long_name) for name, long_name in VIOLATIONS.items()})

RUN_VARIABLES = (
    tuple(TIME_VARIABLES)
    + ("imbalance_eigenvalues", "product_singular_values", "end_to_end", "converged", "status", "solver")
    + tuple(SCALAR_VARIABLES)
)


class CorruptFileError(RuntimeError):
    """A NetCDF file that cannot be read or lacks the schema's variables."""


# ---------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------


def canonical_json(params: dict) -> str:
    def default(obj):
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        raise TypeError(f"not serialisable: {obj!r}")

    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=default)


def params_hash(params: dict) -> str:
    """SHA-256 of the canonical JSON of the parameters (first 16 hex digits)."""
    return hashlib.sha256(canonical_json(params).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(params: dict, kind: str) -> dict:
    """Global attributes: version, commit, the parameters (JSON) and their hash, history."""
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    attrs = {
        "Conventions": "CF-1.10",
        "title": f"linflow {kind}",
        "source": f"linflow {__version__}",
        "linflow_version": __version__,
        "git_commit": _git_commit(),
        "parameters": canonical_json(params),
        "parameters_hash": params_hash(params),
        "history": f"{now} created by linflow {__version__}",
    }
    job = os.environ.get("SLURM_JOB_ID")
    if job:
        attrs["slurm_job_id"] = job
    return attrs


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------


def _with_attrs(values, dims, units, long_name):
    return xr.Variable(dims, values, attrs={"units": units, "long_name": long_name})


def run_record(
    diag: dict,
    *,
    status: str,
    message: str,
    scalars: dict,
    dims: dict,
    objective_scale: float,
    settings: dict,
    extra_attrs: dict,
    wall_time: float,
    notes: dict | None = None,
) -> xr.Dataset:
    """Assemble one run's :class:`xarray.Dataset`.

    ``notes``: ``{variable: why its value is NaN}``, kept as the variable's ``comment``.

    ``diag``: the per-trajectory quantities (:func:`linflow.diagnostics.diagnostics`);
    ``scalars``: ``theorem12_bound``, ``lam_1``, ``lam_r``, ``loss_star``, ``n_evaluations``;
    ``dims``: ``m``, ``r``, ``n`` (global attributes, with ``settings["width"]``).
    """
    data_vars = {
        name: _with_attrs(np.asarray(diag[name], dtype=np.float64), ("time",), *meta)
        for name, meta in TIME_VARIABLES.items()
    }
    values = dict(diag)
    values.update(bound_violations(diag["inst_rate"], diag["rate_bound"], diag["rate_thm3"], diag["excess_loss"],
                                   diag["loss_bound"], flow=settings["method"] == "flow"))
    values.update(scalars)
    for name in SOLVER_STATISTICS:
        values.setdefault(name, np.nan)
    for name, meta in SCALAR_VARIABLES.items():
        data_vars[name] = _with_attrs(np.float64(values[name]), (), *meta)
    for name, note in (notes or {}).items():
        data_vars[name].attrs["comment"] = note
    data_vars["imbalance_eigenvalues"] = _with_attrs(
        np.asarray(diag["imbalance_eigenvalues"], dtype=np.float64), ("eig",), "1",
        "nonzero eigenvalues of the imbalance D at t = 0, descending")
    data_vars["product_singular_values"] = _with_attrs(
        np.asarray(diag["product_singular_values"], dtype=np.float64), ("time", "mode"), "1",
        "singular values of U1 V^T (r x m), the end-to-end product on the data's row space, descending")
    data_vars["end_to_end"] = _with_attrs(diag["end_to_end"], ("input", "output"), "1", "final end-to-end matrix U V^T")
    data_vars["converged"] = xr.Variable((), np.bool_(status == "converged"),
                                         attrs={"long_name": "run reached its stopping target"})
    data_vars["status"] = xr.Variable((), np.array(status, dtype=object), attrs={
        "long_name": "how the run ended", "flag_meanings": " ".join(STATUSES)})
    data_vars["solver"] = xr.Variable((), np.array(diag.get("solver", "none"), dtype=object), attrs={
        "long_name": "flow integrator used (the solver setting auto resolved)", "flag_meanings": " ".join(SOLVERS_USED)})
    coords = {"time": _with_attrs(np.asarray(diag["time"], dtype=np.float64), ("time",), "1",
                                  "gradient-flow time of the 1/2 ||.||_F^2 loss")}
    if diag.get("step") is not None:  # int32: classic netCDF has no int64 (max_steps < 2^31)
        coords["step"] = xr.Variable(("time",), np.asarray(diag["step"], dtype=np.int32),
                                     attrs={"long_name": "gradient-descent iteration"})
    if diag.get("epoch") is not None:  # SGD: passes over the data, k b / N
        coords["epoch"] = xr.Variable(("time",), np.asarray(diag["epoch"], dtype=np.float64),
                                      attrs={"units": "1", "long_name": "SGD epochs: samples drawn / N = k b / N"})
    ds = xr.Dataset(data_vars, coords=coords)
    params = dict(settings)
    params.update(extra_attrs.get("run_parameters", {}))
    attrs = provenance(params, "run record")
    attrs.update({k: v for k, v in extra_attrs.items() if k != "run_parameters"})
    attrs.update(
        status_message=message,
        objective_scale=objective_scale,
        wall_time_seconds=round(float(wall_time), 6),
        m=int(dims["m"]), r=int(dims["r"]), n=int(dims["n"]), width=int(settings["width"]),
    )
    ds.attrs.update(attrs)
    return ds


def failed_record(message: str, *, n: int, m: int, settings: dict, extra_attrs: dict, wall_time: float) -> xr.Dataset:
    """The record of a run that raised: every variable of the schema, empty or NaN, with
    ``status = "failed"`` and the error in ``status_message`` (a bad run never costs its chunk)."""
    empty = np.zeros(0)
    diag = {name: empty for name in TIME_VARIABLES}
    diag.update({name: np.nan for name in SCALAR_VARIABLES})
    # classic netCDF allows one zero-length (unlimited) dimension: time; the spectrum is one NaN
    diag.update(time=empty, step=None, imbalance_eigenvalues=np.full(1, np.nan), end_to_end=np.full((n, m), np.nan),
                product_singular_values=np.zeros((0, 1)))
    scalars = {name: np.nan for name in ("theorem12_bound", "lam_1", "lam_r", "loss_star")}
    scalars.update({name: np.nan for name in VIOLATIONS}, n_evaluations=0)
    return run_record(diag, status="failed", message=message, scalars=scalars, dims={"m": m, "r": -1, "n": n},
                      objective_scale=np.nan, settings=settings, extra_attrs=extra_attrs, wall_time=wall_time)


# ---------------------------------------------------------------------------
# Chunk tables: the scalars of a chunk's runs, one row per run
# ---------------------------------------------------------------------------

#: Per-run entries of a chunk table besides the run-record scalars: (units, long_name).
TABLE_EXTRAS = {
    "wall_time_seconds": ("s", "in-process time of the run (simulate call)"),
    "n_points": ("1", "number of recorded points of the trajectory"),
    "time_first": ("1", "first recorded positive gradient-flow time"),
    "time_last": ("1", "last recorded gradient-flow time (where the run stopped)"),
}
TABLE_STRINGS = ("case", "status", "status_message", "file", "solver")
#: Where the run's record is: ``file`` and, in a chunk's records file, the run's index there.
TABLE_LINKS = {"file": ("", "path of the run's record (a chunk's records file)"),
               "record": ("1", "index of the run in its records file (-1: a file of its own)")}


def table_row(ds: xr.Dataset, path, index: int = -1) -> dict:
    """The chunk-table row of one run record: run ``index`` of the records file ``path``
    (-1: the file of this run alone)."""
    variables = ds.variables
    times = variables["time"].values
    positive = times[times > 0]
    row = {
        "case": str(ds.attrs["case"]), "width": int(ds.attrs["width"]), "seed": int(ds.attrs["seed"]),
        "status": str(variables["status"].values.item()), "status_message": str(ds.attrs.get("status_message", "")),
        "file": str(path), "record": int(index), "converged": bool(variables["converged"].values),
        "solver": str(variables["solver"].values.item()),
        "wall_time_seconds": float(ds.attrs["wall_time_seconds"]), "n_points": int(times.size),
        "time_first": float(positive[0]) if positive.size else np.nan,
        "time_last": float(times[-1]) if times.size else np.nan,
    }
    row.update({name: float(variables[name].values) for name in SCALAR_VARIABLES})
    return row


def chunk_table(rows: list[dict], attrs: dict) -> xr.Dataset:
    """The table of a chunk's runs (dimension ``run``), NETCDF4-ready."""
    columns = {}
    for key in rows[0]:
        values = np.array([row[key] for row in rows], dtype=object if key in TABLE_STRINGS else None)
        meta = SCALAR_VARIABLES.get(key) or TABLE_EXTRAS.get(key) or TABLE_LINKS.get(key)
        columns[key] = xr.Variable(("run",), values, attrs={k: v for k, v in zip(("units", "long_name"), meta or ()) if v})
    ds = xr.Dataset(columns)
    ds.attrs.update(provenance(attrs, "chunk table"))
    ds.attrs.update(attrs)
    return ds


TABLE_VARIABLES = ("case", "width", "seed", "status", "status_message", "file", "record", "converged", "solver") + tuple(TABLE_EXTRAS) \
    + tuple(SCALAR_VARIABLES)


def open_table(path) -> xr.Dataset:
    """Open a chunk table, checking it has every column."""
    return open_netcdf(path, TABLE_VARIABLES)


def dataset_record(X: np.ndarray, Y: np.ndarray, problem: ReducedProblem, params: dict) -> xr.Dataset:
    """The data file of one experiment: X, Y, min-norm solution and SVD quantities."""
    ds = xr.Dataset(
        {
            "X": _with_attrs(X, ("sample", "input"), "1", "inputs X (N x n)"),
            "Y": _with_attrs(Y, ("sample", "output"), "1", "targets Y (N x m)"),
            "theta_hat": _with_attrs(problem.theta_hat, ("input", "output"), "1", "min-norm solution X^+ Y"),
            "singular_values": _with_attrs(problem.s, ("rank",), "1", "nonzero singular values of X"),
            "lam_1": _with_attrs(np.float64(problem.lam_1), (), "1", "largest eigenvalue of Sigma_X"),
            "lam_r": _with_attrs(np.float64(problem.lam_r), (), "1", "smallest nonzero eigenvalue of Sigma_X"),
            "loss_star": _with_attrs(np.float64(problem.loss_star), (), "1", "unreachable loss L*"),
        }
    )
    ds.attrs.update(provenance(params, "dataset"))
    # What came out, for figures to say which data they show; rank_rtol: the cut the runs reuse.
    ds.attrs.update(N=int(X.shape[0]), n=problem.n, m=problem.m, r=problem.r, lam_ratio=problem.lam_1 / problem.lam_r,
                    **{key: params[key] for key in ("rank_rtol", "source_sha256") if key in params})
    return ds


# ---------------------------------------------------------------------------
# I/O
# ---------------------------------------------------------------------------


def write_netcdf(ds: xr.Dataset, path, *, overwrite: bool = True, format: str = "NETCDF4",
                 encoding: dict | None = None) -> Path:
    """Write atomically: a temporary file in the target directory, fsync, then rename.

    ``overwrite=False`` refuses to replace an existing file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists; refusing to overwrite it")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp.nc", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
    try:
        encoding = dict(encoding or {})
        if format == "NETCDF4":
            for name, var in ds.data_vars.items():
                if var.dtype == object:
                    encoding.setdefault(name, {})["dtype"] = str
        ds.to_netcdf(tmp, engine=ENGINE, format=format, encoding=encoding)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def open_netcdf(path, required: tuple[str, ...] = ()) -> xr.Dataset:
    """Load a linflow NetCDF file fully into memory and close it.

    Raises :class:`CorruptFileError` naming the file (and what to do) when it cannot be read
    or misses any of the ``required`` variables.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with xr.open_dataset(path, engine=ENGINE) as ds:
            loaded = ds.load()
    except Exception as exc:  # netCDF4/HDF5 raise OSError, RuntimeError, ValueError, KeyError...
        raise CorruptFileError(
            f"{path} is not a readable NetCDF file ({type(exc).__name__}: {exc}). "
            f"It is probably truncated or corrupt: delete it and rerun the workflow to regenerate it."
        ) from None
    missing = [name for name in required if name not in loaded.variables]
    if missing:
        raise CorruptFileError(
            f"{path} lacks the variables {', '.join(missing)}: it was not written by this version of "
            f"linflow or is incomplete. Delete it and rerun the workflow to regenerate it."
        )
    return loaded


def write_run(ds: xr.Dataset, path, *, overwrite: bool = True) -> Path:
    """Write a run record (classic netCDF, see the module docstring). NaN marks missing values
    itself, so no ``_FillValue`` attributes (24 bytes per variable)."""
    encoding = {name: {"_FillValue": None} for name, var in ds.variables.items() if var.dtype.kind == "f"}
    return write_netcdf(ds.assign_attrs(_classic_attrs(ds.attrs)), path, overwrite=overwrite, format=RUN_FORMAT,
                        encoding=encoding)


INT32 = (-(2**31), 2**31 - 1)


def _classic_attrs(attrs: dict) -> dict:
    """Classic netCDF has no 64-bit integer attributes: an integer outside int32 (a width of
    10^10, a seed of 2^40) is written as its decimal string, exact; ``int()`` reads either."""
    def fits(value):
        return isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or (
            INT32[0] <= value <= INT32[1])

    return {key: value if fits(value) else str(int(value)) for key, value in attrs.items()}


def open_run(path, index: int | None = None) -> xr.Dataset:
    """One run record, checking it has every variable of the schema: the file ``path`` of one
    run (``index`` None), or run ``index`` of a chunk's records file (:class:`RecordStack`)."""
    if index is None:
        ds = open_netcdf(path, RUN_VARIABLES)
        if STACK_DIM in ds.dims:
            raise ValueError(f"{path} holds the records of a chunk's runs: pass the run's index")
        return ds
    return _unstack(_open_rows(path, [int(index)], None).isel({STACK_DIM: 0}), path, index)


# ---------------------------------------------------------------------------
# A chunk's run records in one file
# ---------------------------------------------------------------------------

#: The records file's dimensions: runs, and the padded ``time`` / ``eig`` / ``mode`` axes of each run.
STACK_DIM, POINT_DIM, STACK_EIG_DIM, STACK_MODE_DIM = "run", "point", "eig", "mode"
#: Optional coordinates on ``time`` and the integer fill of ``step`` after a run's points.
OPTIONAL_COORDS = ("step", "epoch")
STEP_FILL = -1
#: Per-run variables of a records file that are not run-record variables.
STACK_EXTRAS = {
    "n_points": "recorded points of the run: its values on point 0 .. n_points - 1, NaN after",
    "n_eig": "length of the run's imbalance_eigenvalues, NaN after",
    "n_mode": "number of the run's product_singular_values at each point, NaN after",
    "comments": "the run's per-variable comment attributes (why a value is NaN), JSON",
    "coordinates": "the run's coordinates on time besides time itself (step, epoch), space separated",
    "attributes": "the run record's global attributes, JSON",
}
STACK_VARIABLES = RUN_VARIABLES + ("time",) + tuple(STACK_EXTRAS)


class RecordStack:
    """The run records of a chunk, collected run by run and written as one NetCDF file.

    A records file holds one row per run on dimension ``run`` (in the order added): every
    variable of the run-record schema, the trajectories on ``(run, point)`` padded with NaN
    after the run's ``n_points`` (``step``: -1), ``imbalance_eigenvalues`` on ``(run, eig)``,
    ``end_to_end`` on ``(run, input, output)``, and the run's global attributes as JSON.
    :func:`open_run` with the run's index gives back the run's own :class:`xarray.Dataset`,
    values bit for bit. One file instead of one per run: writing ~40 variables of a tiny run
    through xarray costs more than the run itself (docs/performance.md).
    """

    def __init__(self):
        self.rows: list[dict] = []
        self.variable_attrs: dict[str, dict] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, ds: xr.Dataset) -> int:
        """Pack the run record ``ds`` (raises, adding nothing, if it cannot be stored); returns
        its index in the file."""
        variables = ds.variables
        row = {name: variables[name].values for name in RUN_VARIABLES + ("time",)}
        extra = [name for name in OPTIONAL_COORDS if name in variables]
        row.update({name: variables[name].values for name in extra})
        if any(variables[name].dims != ("time",) for name in tuple(TIME_VARIABLES) + tuple(extra)):
            raise ValueError("a run record's trajectories must be on its dimension time")
        # a comment belongs to this run's value (e.g. why its theorem12_bound is NaN), not to the column
        comments = {name: var.attrs["comment"] for name, var in variables.items() if "comment" in var.attrs}
        row.update(coordinates=" ".join(extra), attributes=canonical_json(ds.attrs), comments=canonical_json(comments))
        for name in row:
            if name in variables and name not in self.variable_attrs:
                self.variable_attrs[name] = {k: v for k, v in variables[name].attrs.items() if k != "comment"}
        self.rows.append(row)
        return len(self.rows) - 1

    def dataset(self, attrs: dict) -> xr.Dataset:
        """The records file's :class:`xarray.Dataset` (global attributes: provenance of ``attrs``)."""
        rows, runs = self.rows, len(self.rows)
        if not runs:
            raise ValueError("no run records to write")
        points = max(1, max(row["time"].size for row in rows))
        eigs = max(1, max(row["imbalance_eigenvalues"].size for row in rows))
        shapes = {row["end_to_end"].shape for row in rows}
        if len(shapes) != 1:
            raise ValueError(f"the runs' end_to_end matrices differ in shape: {sorted(shapes)}")

        def padded(name, width, fill=np.nan, dtype=np.float64):
            out = np.full((runs, width), fill, dtype=dtype)
            for i, row in enumerate(rows):
                if name in row:
                    out[i, : row[name].size] = row[name]
            return out

        run_dims = (STACK_DIM, POINT_DIM)
        data = {name: (run_dims, padded(name, points)) for name in ("time",) + tuple(TIME_VARIABLES)}
        data["step"] = (run_dims, padded("step", points, STEP_FILL, np.int32))
        data["epoch"] = (run_dims, padded("epoch", points))
        data["imbalance_eigenvalues"] = ((STACK_DIM, STACK_EIG_DIM), padded("imbalance_eigenvalues", eigs))
        modes = max(1, max(row["product_singular_values"].shape[1] for row in rows))
        singular = np.full((runs, points, modes), np.nan)
        for i, row in enumerate(rows):
            values = row["product_singular_values"]
            singular[i, : values.shape[0], : values.shape[1]] = values
        data["product_singular_values"] = ((STACK_DIM, POINT_DIM, STACK_MODE_DIM), singular)
        data["end_to_end"] = ((STACK_DIM, "input", "output"), np.stack([row["end_to_end"] for row in rows]))
        for name in tuple(SCALAR_VARIABLES) + ("converged",):
            data[name] = ((STACK_DIM,), np.array([row[name] for row in rows]))
        for name in ("status", "solver", "coordinates", "attributes", "comments"):
            data[name] = ((STACK_DIM,), np.array([str(row[name]) for row in rows], dtype=object))
        data["n_points"] = ((STACK_DIM,), np.array([row["time"].size for row in rows], dtype=np.int32))
        data["n_eig"] = ((STACK_DIM,), np.array([row["imbalance_eigenvalues"].size for row in rows], dtype=np.int32))
        data["n_mode"] = ((STACK_DIM,), np.array([row["product_singular_values"].shape[1] for row in rows],
                                                 dtype=np.int32))
        ds = xr.Dataset({name: xr.Variable(dims, values, attrs=self.variable_attrs.get(name, {}))
                         for name, (dims, values) in data.items()})
        for name, long_name in STACK_EXTRAS.items():
            ds[name].attrs["long_name"] = long_name
        ds.attrs.update(provenance(attrs, "chunk run records"))
        ds.attrs.update(attrs)
        return ds

    def write(self, path, attrs: dict, *, overwrite: bool = True) -> Path:
        """Write the records file atomically (NETCDF4; no fill values: NaN marks the padding)."""
        ds = self.dataset(attrs)
        encoding = {name: {"_FillValue": None} for name, var in ds.variables.items() if var.dtype.kind in "fi"}
        return write_netcdf(ds, path, overwrite=overwrite, encoding=encoding)


def _open_rows(path, indices, names: tuple[str, ...] | None) -> xr.Dataset:
    """Rows ``indices`` (a list or a slice) of a records file (the variables ``names``, all if
    None), loaded."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with xr.open_dataset(path, engine=ENGINE) as ds:
            missing = [name for name in (names or STACK_VARIABLES) if name not in ds.variables]
            if STACK_DIM not in ds.dims:
                missing = ["the dimension run"] + missing
            if not missing:
                selected = ds if names is None else ds[list(names)]
                if isinstance(indices, slice):
                    rows = selected.isel({STACK_DIM: indices}).load()
                else:  # the file is read in increasing order, the rows come back in the order asked
                    order = np.argsort(indices, kind="stable")
                    rows = selected.isel({STACK_DIM: np.asarray(indices)[order]}).load()
                    rows = rows.isel({STACK_DIM: np.argsort(order, kind="stable")})
    except IndexError:
        raise IndexError(f"{path} holds {ds.sizes[STACK_DIM]} runs, not run {indices}") from None
    except Exception as exc:
        raise CorruptFileError(
            f"{path} is not a readable NetCDF file ({type(exc).__name__}: {exc}). "
            f"It is probably truncated or corrupt: delete it and rerun the workflow to regenerate it."
        ) from None
    if missing:
        raise CorruptFileError(f"{path} is not a chunk's records file of this version of linflow: it lacks "
                               f"{', '.join(missing)}. Delete it and rerun the workflow to regenerate it.")
    return rows


def open_runs(path) -> list[xr.Dataset]:
    """Every run record of a chunk's records file, in its order (one read of the file)."""
    rows = _open_rows(path, slice(None), None)
    return [_unstack(rows.isel({STACK_DIM: i}), path, i) for i in range(rows.sizes[STACK_DIM])]


def read_trajectories(path, indices, names: tuple[str, ...]) -> tuple[np.ndarray, dict, np.ndarray]:
    """``time`` and the trajectories ``names`` of runs ``indices`` of a records file, padded:
    ``(time (k, points), {name: (k, points)}, n_points (k,))``; one read for all of them."""
    rows = _open_rows(path, [int(i) for i in indices], ("time", "n_points") + tuple(names))
    return rows["time"].values, {name: rows[name].values for name in names}, rows["n_points"].values


def _unstack(row: xr.Dataset, path, index) -> xr.Dataset:
    """Run ``index``'s own record from its row of a records file."""
    points, eigs, modes = int(row["n_points"]), int(row["n_eig"]), int(row["n_mode"])

    def variable(name, dims, values):
        return xr.Variable(dims, values, attrs=row[name].attrs)

    data = {name: variable(name, ("time",), row[name].values[:points]) for name in TIME_VARIABLES}
    for name in tuple(SCALAR_VARIABLES) + ("converged",):
        data[name] = variable(name, (), row[name].values)
    data["imbalance_eigenvalues"] = variable("imbalance_eigenvalues", ("eig",),
                                             row["imbalance_eigenvalues"].values[:eigs])
    data["product_singular_values"] = variable("product_singular_values", ("time", "mode"),
                                               row["product_singular_values"].values[:points, :modes])
    data["end_to_end"] = variable("end_to_end", ("input", "output"), row["end_to_end"].values)
    try:
        for name, comment in json.loads(str(row["comments"].item())).items():
            data[name].attrs["comment"] = comment
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"{path}: run {index}'s comments are not JSON ({exc})") from None
    for name in ("status", "solver"):
        data[name] = variable(name, (), np.array(str(row[name].item()), dtype=object))
    coords = {"time": variable("time", ("time",), row["time"].values[:points])}
    for name in str(row["coordinates"].item()).split():
        coords[name] = variable(name, ("time",), row[name].values[:points])
    try:
        attrs = json.loads(str(row["attributes"].item()))
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"{path}: run {index}'s attributes are not JSON ({exc})") from None
    return xr.Dataset(data, coords=coords, attrs=attrs)
