"""The NetCDF schema of linflow's files: datasets, run records and summaries.

Only this module names variables, units and attributes, writes files and opens them.
Writes are atomic (temporary file in the same directory, then ``os.replace``), so a killed
job never leaves a file that looks complete; reads turn a corrupt file into an error that
names it.
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
from .theory import ReducedProblem

ENGINE = "netcdf4"

#: Values of the ``status`` variable of a run record.
STATUSES = ("converged", "not_converged", "diverged", "failed")

#: Run-record variables on dimension ``time``: (units, long_name).
TIME_VARIABLES = {
    "loss": ("1", "training loss 1/2 ||Y - X U V^T||_F^2"),
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
    "orthogonality0": ("1", "Lemma 11: ||K(0)||_F"),
    "end_to_end0_fro": ("1", "Lemma 11: ||U1(0) V(0)^T||_F"),
    "theorem12_bound": ("1", "Theorem 12 bound on ||U V^T - Theta_hat||_2 (Gaussian init only)"),
    "imbalance_drift": ("1", "max relative drift ||D(t) - D(0)||_F / ||D(0)||_F (conserved by the flow)"),
    "lam_1": ("1", "largest eigenvalue of Sigma_X"),
    "lam_r": ("1", "smallest nonzero eigenvalue of Sigma_X"),
    "loss_star": ("1", "unreachable loss L* = 1/2 ||(I - W W^T) Y||_F^2"),
    "n_evaluations": ("1", "right-hand-side evaluations (flow) or iterations (gd)"),
}

RUN_VARIABLES = (
    tuple(TIME_VARIABLES)
    + ("imbalance_eigenvalues", "end_to_end", "converged", "status")
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
    problem: ReducedProblem,
    status: str,
    message: str,
    theorem12_bound: float,
    objective_scale: float,
    n_evaluations: int,
    settings: dict,
    extra_attrs: dict,
    wall_time: float,
) -> xr.Dataset:
    """Assemble one run's :class:`xarray.Dataset` (the schema of the core issue)."""
    data_vars = {
        name: _with_attrs(np.asarray(diag[name], dtype=np.float64), ("time",), *meta)
        for name, meta in TIME_VARIABLES.items()
    }
    scalars = dict(diag)
    scalars.update(
        theorem12_bound=theorem12_bound,
        lam_1=problem.lam_1,
        lam_r=problem.lam_r,
        loss_star=problem.loss_star,
        n_evaluations=n_evaluations,
    )
    for name, meta in SCALAR_VARIABLES.items():
        data_vars[name] = _with_attrs(np.float64(scalars[name]), (), *meta)
    data_vars["imbalance_eigenvalues"] = _with_attrs(
        diag["imbalance_eigenvalues"], ("eig",), "1", "nonzero eigenvalues of the imbalance D at t = 0, descending"
    )
    data_vars["end_to_end"] = _with_attrs(diag["end_to_end"], ("input", "output"), "1", "final end-to-end matrix U V^T")
    data_vars["converged"] = xr.Variable((), np.bool_(status == "converged"),
                                         attrs={"long_name": "run reached its stopping target"})
    data_vars["status"] = xr.Variable((), np.array(status, dtype=object), attrs={
        "long_name": "how the run ended", "flag_meanings": " ".join(STATUSES)})
    coords = {"time": _with_attrs(np.asarray(diag["time"], dtype=np.float64), ("time",), "1",
                                  "gradient-flow time of the 1/2 ||.||_F^2 loss")}
    if diag.get("step") is not None:
        coords["step"] = xr.Variable(("time",), np.asarray(diag["step"], dtype=np.int64),
                                     attrs={"long_name": "gradient-descent iteration"})
    ds = xr.Dataset(data_vars, coords=coords)
    params = dict(settings)
    params.update(extra_attrs.get("run_parameters", {}))
    attrs = provenance(params, "run record")
    attrs.update({k: v for k, v in extra_attrs.items() if k != "run_parameters"})
    attrs.update(
        status_message=message,
        objective_scale=objective_scale,
        wall_time_seconds=round(float(wall_time), 6),
        m=problem.m, r=problem.r, n=problem.n, width=int(settings["width"]),
    )
    ds.attrs.update(attrs)
    return ds


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
    return ds


# ---------------------------------------------------------------------------
# I/O
# ---------------------------------------------------------------------------


def write_netcdf(ds: xr.Dataset, path, *, overwrite: bool = True) -> Path:
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
        encoding = {name: {"dtype": str} for name, var in ds.data_vars.items() if var.dtype == object}
        ds.to_netcdf(tmp, engine=ENGINE, format="NETCDF4", encoding=encoding)
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


def open_run(path) -> xr.Dataset:
    """Open one run record, checking it has every variable of the schema."""
    return open_netcdf(path, RUN_VARIABLES)
