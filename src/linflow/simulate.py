"""Gradient flow and gradient descent on ``L = 1/2 ||Y - X U V^T||_F^2``.

Three methods share one entry point, :func:`simulate`:

``flow``
    exact gradient flow in the width-independent variables (``G = Z Z^T``, ``K = Z U2(0)^T``),
    carried by a factor ``Zc`` with ``G = Zc Zc^T``: ``dZc/dt = A(E) Zc`` (THEORY.md),
    integrated by SciPy's DOP853 with a terminal event on the excess loss.
``gd``
    gradient descent, exact in the same variables: ``Zc <- (I + eta A(E)) Zc``.
``gd_explicit``
    the naive reference that updates the full ``U`` (n x h) and ``V`` (m x h).

Time is gradient-flow time of the ``1/2 ||.||_F^2`` loss. With ``loss_scale="mean"`` the
objective is ``(1/N) ||.||_F^2`` (the paper's experiments), gradient descent with step
``eta`` on it is gradient descent with step ``2 eta / N`` on ``1/2 ||.||_F^2``, and step k
sits at time ``2 eta k / N``.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy.integrate import solve_ivp

from . import theory
from .init import CompressedInit, compress
from .theory import ReducedProblem

METHODS = ("flow", "gd", "gd_explicit")
LOSS_SCALES = ("half", "mean")


@dataclass
class Trajectory:
    """Raw output of a simulator: snapshots of the compressed state at recorded points."""

    time: np.ndarray  # T
    step: np.ndarray | None  # T, gradient-descent iteration (None for flow)
    Zc: np.ndarray  # T x (m + r) x k
    U2c: np.ndarray  # (n - r) x k, or T x (n - r) x k
    status: str
    message: str
    n_evaluations: int
    conserved_basis: bool  # True when every Zc[t] lives in the same k-dim basis


def _finite_matrix(name: str, value, ndim: int = 2) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return arr


def _positive(name: str, value, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _log_grid(first: float, last: float, per_decade: int) -> np.ndarray:
    decades = max(np.log10(last / first), 1e-9)
    grid = np.logspace(np.log10(first), np.log10(last), int(np.ceil(decades * per_decade)) + 1)
    grid[0], grid[-1] = first, last  # exact ends: solve_ivp rejects t_eval beyond t_span
    return grid


# ---------------------------------------------------------------------------
# Simulators on the compressed state
# ---------------------------------------------------------------------------


def _error(s, Yt, Zc, m):
    return theory.residual(s, Yt, Zc[m:] @ Zc[:m].T)


def _flow(problem: ReducedProblem, init: CompressedInit, target, max_time, rtol, atol, per_decade) -> Trajectory:
    """Integrate ``dZc/dt = A(E) Zc`` (``dV/dt = E^T S U1``, ``dU1/dt = S E V``)."""
    s, Yt, m = problem.s, problem.Yt, problem.m
    shape = init.Zc.shape

    def rhs(_t, y):
        Z = y.reshape(shape)
        SE = s[:, None] * _error(s, Yt, Z, m)
        return np.concatenate([(SE.T @ Z[m:]).ravel(), (SE @ Z[:m]).ravel()])

    def reached_target(_t, y):
        return theory.excess_loss(_error(s, Yt, y.reshape(shape), m)) - target

    reached_target.terminal = True
    reached_target.direction = -1

    # The fastest time scale is about lam_1 ||G0||; record from well below it, log-spaced.
    speed = problem.lam_1 * max(np.linalg.norm(init.Zc, 2) ** 2, 1e-300) + np.linalg.norm(problem.Yt) * problem.s[0]
    first = min(1e-3 / speed, max_time * 1e-9)
    t_eval = np.concatenate([[0.0], _log_grid(first, max_time, per_decade)])
    sol = solve_ivp(
        rhs,
        (0.0, max_time),
        init.Zc.ravel(),
        method="DOP853",
        t_eval=t_eval,
        events=reached_target,
        rtol=rtol,
        atol=atol,
    )
    times, states = list(sol.t), list(sol.y.T)
    if sol.status == 1:  # terminal event: the target was reached
        times.append(float(sol.t_events[0][0]))
        states.append(sol.y_events[0][0])
        status, message = "converged", "excess loss reached the target"
    elif sol.status == 0:
        status, message = "not_converged", f"time limit {max_time:g} reached before the target"
    else:
        status, message = "failed", f"integrator failed: {sol.message}"
    Zc = np.asarray(states).reshape((len(states),) + shape)
    if not np.all(np.isfinite(Zc)):
        status, message = "failed", "integrator produced non-finite states"
        keep = np.all(np.isfinite(Zc), axis=(1, 2))
        Zc, times = Zc[keep], list(np.asarray(times)[keep])
    return Trajectory(np.asarray(times), None, Zc, init.U2c, status, message, int(sol.nfev), True)


def _record_steps(max_steps: int, per_decade: int) -> np.ndarray:
    steps = np.unique(np.rint(_log_grid(1.0, max(max_steps, 1), per_decade)).astype(np.int64))
    return np.concatenate([[0], steps[steps <= max_steps]])


def _diverged(excess, excess0, divergence_factor) -> bool:
    return not np.isfinite(excess) or excess > divergence_factor * max(excess0, np.finfo(float).tiny)


def _gd(problem, init, eta, target, max_steps, per_decade, divergence_factor) -> Trajectory:
    """Gradient descent ``Zc <- (I + eta A(E)) Zc`` (exact in the width-independent variables)."""
    s, Yt, m = problem.s, problem.Yt, problem.m
    record = set(_record_steps(max_steps, per_decade).tolist())
    Z = init.Zc.copy()
    snapshots, steps = [], []
    excess0 = theory.excess_loss(_error(s, Yt, Z, m))
    status, message = "not_converged", f"step limit {max_steps} reached before the target"
    for k in range(max_steps + 1):
        E = _error(s, Yt, Z, m)
        excess = theory.excess_loss(E)
        if _diverged(excess, excess0, divergence_factor):
            status, message = "diverged", f"excess loss {excess:.3e} at step {k} (initial {excess0:.3e})"
            break
        done = excess <= target
        if k in record or done or k == max_steps:
            snapshots.append(Z.copy())
            steps.append(k)
        if done:
            status, message = "converged", "excess loss reached the target"
            break
        if k == max_steps:
            break
        SE = s[:, None] * E
        Z = np.vstack([Z[:m] + eta * (SE.T @ Z[m:]), Z[m:] + eta * (SE @ Z[:m])])
    steps = np.asarray(steps)
    return Trajectory(eta * steps, steps, np.asarray(snapshots), init.U2c, status, message, int(k + 1), True)


def _gd_explicit(problem, X, Y, U, V, eta, target, max_steps, per_decade, divergence_factor) -> Trajectory:
    """Naive gradient descent on the full weights: ``V += eta R^T X U``, ``U += eta X^T R V``."""
    record = set(_record_steps(max_steps, per_decade).tolist())
    U, V = U.copy(), V.copy()
    snapshots, steps = [], []
    excess0 = None
    status, message = "not_converged", f"step limit {max_steps} reached before the target"
    for k in range(max_steps + 1):
        XU = X @ U
        R = Y - XU @ V.T
        # Excess loss from the reduced error, as for the other methods (no L - L* cancellation).
        excess = theory.excess_loss(problem.W.T @ R)
        excess0 = excess if excess0 is None else excess0
        if _diverged(excess, excess0, divergence_factor):
            status, message = "diverged", f"excess loss {excess:.3e} at step {k} (initial {excess0:.3e})"
            break
        done = excess <= target
        if k in record or done or k == max_steps:
            c = compress(problem, U, V)
            snapshots.append((c.Zc, c.U2c))
            steps.append(k)
        if done:
            status, message = "converged", "excess loss reached the target"
            break
        if k == max_steps:
            break
        V, U = V + eta * (R.T @ XU), U + eta * (X.T @ (R @ V))
    steps = np.asarray(steps)
    Zc = np.asarray([z for z, _ in snapshots])
    U2c = np.asarray([u for _, u in snapshots])
    return Trajectory(eta * steps, steps, Zc, U2c, status, message, int(k + 1), False)


# ---------------------------------------------------------------------------
# Diagnostics: the paper's quantities along a trajectory
# ---------------------------------------------------------------------------


def fitted_rate(time: np.ndarray, excess: np.ndarray, late_fraction: float = 0.5) -> float:
    """Late-phase exponential rate of the excess loss: ``-slope`` of ``log L~`` against ``t``,
    least squares over the points in the last ``late_fraction`` of the decrease of ``log L~``."""
    ok = np.isfinite(excess) & (excess > 0)
    t, log_e = time[ok], np.log(excess[ok])
    if t.size < 3 or log_e[-1] >= log_e[0]:
        return float("nan")
    late = log_e <= log_e[0] + (1.0 - late_fraction) * (log_e[-1] - log_e[0])
    late &= t >= t[np.argmax(late)]
    if np.count_nonzero(late) < 3:
        return float("nan")
    slope = np.polyfit(t[late], log_e[late], 1)[0]
    return float(-slope)


def _imbalance_drift(Zc: np.ndarray, m: int, max_points: int = 33) -> float:
    """Max over (a subsample of) the recorded points of ``||D(t) - D(0)||_F / ||D(0)||_F``.

    ``D = Z^T J Z = R^T (Zc^T J Zc) R`` with ``R`` fixed and orthonormal-rowed, so the drift is
    that of the small matrix ``Zc^T J Zc``.
    """
    J = theory.imbalance_signature(m, Zc.shape[1] - m)
    idx = np.unique(np.linspace(0, Zc.shape[0] - 1, min(max_points, Zc.shape[0])).astype(int))
    sub = Zc[idx]
    Dc = np.swapaxes(sub, 1, 2) @ (J[:, None] * sub)
    scale = np.linalg.norm(Dc[0])
    if scale == 0:
        scale = max(np.linalg.norm(Zc[0]) ** 2, np.finfo(float).tiny)
    return float(np.max(np.linalg.norm(Dc - Dc[0], axis=(1, 2))) / scale)


def diagnostics(problem: ReducedProblem, traj: Trajectory, deltas_along: bool) -> dict:
    """Every quantity of the run record, computed from the compressed snapshots.

    ``deltas_along``: recompute ``Delta_+, Delta_-, Delta_`` at every point (gradient descent,
    where ``D`` is not conserved); for the flow they are the conserved ``t = 0`` values.
    """
    m, r = problem.m, problem.r
    s, Yt, lam_1, lam_r = problem.s, problem.Yt, problem.lam_1, problem.lam_r
    Zc = traj.Zc
    Vc, U1c = Zc[:, :m], Zc[:, m:]
    product = U1c @ np.swapaxes(Vc, 1, 2)  # U1 V^T, T x r x m
    E = theory.residual(s, Yt, product)
    excess = theory.excess_loss(E)
    with np.errstate(divide="ignore", invalid="ignore"):
        inst_rate = np.where(excess > 0, theory.loss_decrease_rate(s, E, Vc, U1c) / excess, np.nan)

    eig0 = theory.imbalance_eigenvalues(Zc[0], m)
    if deltas_along:
        dp, dm, du = theory.imbalance_deltas(theory.imbalance_eigenvalues(Zc, m), m, r)
    else:
        dp, dm, du = (np.full(len(Zc), v) for v in theory.imbalance_deltas(eig0, m, r))
    rate_bound = theory.prop1_rate_bound(lam_r, dp, dm, du, product, m, r)
    mu_m, mu_r = theory.margins(Yt, E, m, r)
    rate_thm3 = lam_r * theory.theorem3_c(dp, dm, du, mu_m, mu_r, lam_1)
    c0 = float(theory.theorem3_c(dp[0], dm[0], du[0], mu_m[0], mu_r[0], lam_1))

    U2c = traj.U2c
    U2c_t = np.swapaxes(U2c, -1, -2)
    K_V = Vc @ U2c_t  # m x (n - r)
    # ||K||_F^2 = tr(Zc (U2c^T U2c) Zc^T): cheaper than forming K when n - r > k.
    gram_U2 = U2c_t @ U2c
    orthogonality = np.sqrt(np.maximum(np.sum((Zc @ gram_U2) * Zc, axis=(1, 2)), 0.0))
    dist_fro, dist_op = theory.distance_to_min_norm(product, K_V, problem.theta_hat_reduced)
    end_to_end = problem.Phi1 @ product[-1] + problem.Phi2 @ K_V[-1].T
    return dict(
        time=traj.time,
        step=traj.step,
        loss=excess + problem.loss_star,
        excess_loss=excess,
        inst_rate=inst_rate,
        rate_bound=rate_bound,
        rate_thm3=rate_thm3,
        loss_bound=theory.theorem3_loss_bound(traj.time, excess[0], lam_r, c0),
        distance_fro=dist_fro,
        distance_op=dist_op,
        orthogonality=orthogonality,
        imbalance_eigenvalues=eig0,
        delta_plus=float(dp[0]),
        delta_minus=float(dm[0]),
        delta_under=float(du[0]),
        c0=c0,
        rate_cor4=float(theory.corollary4_rate(lam_r, du[0])),
        rate_thm3_0=float(lam_r * c0),
        margin_m=float(mu_m[0]),
        margin_r=float(mu_r[0]),
        fitted_rate=fitted_rate(traj.time, excess),
        final_distance_fro=float(dist_fro[-1]),
        final_distance_op=float(dist_op[-1]),
        orthogonality0=float(orthogonality[0]),
        end_to_end0_fro=float(np.linalg.norm(product[0])),
        end_to_end=end_to_end,
        imbalance_drift=_imbalance_drift(Zc, m) if traj.conserved_basis else float("nan"),
    )


# ---------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------


def simulate(
    X,
    Y,
    U0=None,
    V0=None,
    *,
    init: CompressedInit | None = None,
    method: str = "flow",
    step: float | None = None,
    loss_scale: str = "half",
    output_scale: float = 1.0,
    stop_factor: float = 1e-12,
    loss_threshold: float | None = None,
    max_time: float = 1e4,
    max_steps: int = 1_000_000,
    rtol: float = 1e-10,
    atol: float = 1e-13,
    points_per_decade: int = 20,
    divergence_factor: float = 1e6,
    alpha: float | None = None,
    delta: float = 0.1,
    attrs: dict | None = None,
    problem: ReducedProblem | None = None,
) -> xr.Dataset:
    """Simulate training of ``f(x) = output_scale * V U^T x`` from ``(U0, V0)`` or ``init``.

    Parameters
    ----------
    X, Y : (N, n) and (N, m) arrays, finite.
    U0, V0 : (n, h) and (m, h) explicit initial weights; or ``init``, a
        :class:`~linflow.init.CompressedInit` (e.g. from :func:`linflow.init.wishart`).
    method : ``"flow"``, ``"gd"`` or ``"gd_explicit"`` (needs explicit weights).
    step : gradient-descent step on the objective (required for ``gd*``).
    loss_scale : objective ``1/2 ||.||_F^2`` (``"half"``, the paper's theory) or
        ``(1/N) ||.||_F^2`` (``"mean"``, the paper's experiments).
    output_scale : ``gamma`` in ``f(x) = gamma V U^T x`` (``(m h)^{-1/2}`` for Fig. 2/4/5).
    stop_factor : stop when the excess loss has fallen by this factor.
    loss_threshold : also stop when the objective's excess loss is below this (Fig. 7: 1e-8).
    max_time, max_steps : limits for ``flow`` (flow time) and ``gd*`` (iterations).
    rtol, atol : DOP853 tolerances for ``flow``.
    points_per_decade : density of the log-spaced record grid.
    divergence_factor : ``gd*`` stop with status ``"diverged"`` once the excess loss exceeds
        this multiple of its initial value (or is not finite).
    alpha, delta : Gaussian-init exponent and confidence, for the Theorem 12 bound.
    attrs : extra provenance attributes for the record.
    problem : the reduction ``theory.reduce_problem(output_scale * X, Y)`` if the caller already
        has it (e.g. to build the initialization); computed here otherwise.

    Returns
    -------
    xarray.Dataset in the run-record schema of :mod:`linflow.record`.
    """
    from . import record

    clock = _time.perf_counter()
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if loss_scale not in LOSS_SCALES:
        raise ValueError(f"loss_scale must be one of {', '.join(LOSS_SCALES)}; got {loss_scale!r}")
    X = _finite_matrix("X", X)
    Y = _finite_matrix("Y", Y)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must have the same number of rows (samples), got X {X.shape} and Y {Y.shape}")
    output_scale = _positive("output_scale", output_scale)
    stop_factor = _positive("stop_factor", stop_factor)
    loss_threshold = _positive("loss_threshold", loss_threshold, allow_none=True)
    max_time = _positive("max_time", max_time)
    rtol, atol = _positive("rtol", rtol), _positive("atol", atol)
    divergence_factor = _positive("divergence_factor", divergence_factor)
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
    if isinstance(points_per_decade, bool) or not isinstance(points_per_decade, (int, np.integer)) or points_per_decade < 1:
        raise ValueError(f"points_per_decade must be a positive integer, got {points_per_decade!r}")
    if alpha is not None and not 0.25 < alpha <= 0.5:
        raise ValueError(f"alpha must lie in (1/4, 1/2] (Theorem 12), got {alpha!r}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must lie in (0, 1), got {delta!r}")

    X_eff = output_scale * X
    if problem is None:
        problem = theory.reduce_problem(X_eff, Y)
    elif (problem.W.shape[0], problem.n, problem.m) != (X.shape[0], X.shape[1], Y.shape[1]) or not (
        np.allclose((problem.W * problem.s) @ problem.Phi1.T, X_eff) and np.allclose(problem.W.T @ Y, problem.Yt)
    ):
        raise ValueError("problem is not the reduction of (output_scale * X, Y)")
    if problem.r == 0:
        raise ValueError("X has rank 0: there is nothing to fit")
    n, m, r = X.shape[1], Y.shape[1], problem.r

    if init is not None:
        if U0 is not None or V0 is not None:
            raise ValueError("pass either explicit weights (U0, V0) or init, not both")
        if method == "gd_explicit":
            raise ValueError("method 'gd_explicit' needs explicit weights U0, V0, not a compressed init")
        if init.Zc.shape[0] != m + r or init.U2c.shape != (n - r, init.Zc.shape[1]):
            raise ValueError(
                f"init does not fit the data: Zc {init.Zc.shape} and U2c {init.U2c.shape}, "
                f"expected ({m + r}, k) and ({n - r}, k) for m={m}, rank r={r}, n={n}"
            )
        compressed, h = init, init.width
    else:
        if U0 is None or V0 is None:
            raise ValueError("pass explicit weights U0 (n x h) and V0 (m x h), or init")
        U0, V0 = _finite_matrix("U0", U0), _finite_matrix("V0", V0)
        if U0.shape[0] != n:
            raise ValueError(f"U0 must have n = {n} rows (the input dimension of X), got shape {U0.shape}")
        if V0.shape[0] != m:
            raise ValueError(f"V0 must have m = {m} rows (the output dimension of Y), got shape {V0.shape}")
        if U0.shape[1] != V0.shape[1]:
            raise ValueError(f"U0 and V0 must have the same width (columns), got {U0.shape[1]} and {V0.shape[1]}")
        h = U0.shape[1]
        compressed = compress(problem, U0, V0)

    N = X.shape[0]
    objective_scale = 2.0 / N if loss_scale == "mean" else 1.0  # objective = scale * (1/2 ||.||^2)
    excess0 = float(theory.excess_loss(_error(problem.s, problem.Yt, compressed.Zc, m)))
    target = stop_factor * excess0
    if loss_threshold is not None:
        target = max(target, loss_threshold / objective_scale)

    if method == "flow" and excess0 <= target:  # already fitted: no event can fire
        traj = Trajectory(np.zeros(1), None, compressed.Zc[None], compressed.U2c, "converged",
                          "excess loss at the target from the start", 0, True)
    elif method == "flow":
        traj = _flow(problem, compressed, target, max_time, rtol, atol, points_per_decade)
    else:
        step = _positive("step", step)
        eta = step * objective_scale
        if method == "gd":
            traj = _gd(problem, compressed, eta, target, max_steps, points_per_decade, divergence_factor)
        else:
            traj = _gd_explicit(problem, X_eff, Y, U0, V0, eta, target, max_steps, points_per_decade, divergence_factor)

    diag = diagnostics(problem, traj, deltas_along=method != "flow")
    theorem12 = (
        theory.theorem12_bound(problem.lam_1, problem.lam_r, problem.y_fro, m, n, r, h, alpha, delta)
        if alpha is not None
        else float("nan")
    )
    settings = dict(
        method=method,
        width=int(h),
        step=step,
        loss_scale=loss_scale,
        output_scale=output_scale,
        stop_factor=stop_factor,
        loss_threshold=loss_threshold,
        max_time=max_time,
        max_steps=int(max_steps),
        rtol=rtol,
        atol=atol,
        points_per_decade=int(points_per_decade),
        divergence_factor=divergence_factor,
        alpha=alpha,
        delta=delta,
    )
    return record.run_record(
        diag,
        problem=problem,
        status=traj.status,
        message=traj.message,
        theorem12_bound=theorem12,
        objective_scale=objective_scale,
        n_evaluations=traj.n_evaluations,
        settings=settings,
        extra_attrs=attrs or {},
        wall_time=_time.perf_counter() - clock,
    )
