"""Simulators on the width-independent state: exact gradient flow, gradient descent.

A simulator advances a factor ``Zc`` of the Gram matrix ``G = Z Z^T`` of ``Z = [V; U1]``
(docs/theory.md, section 2) and returns a :class:`Trajectory` of
snapshots at the recorded points; :mod:`linflow.diagnostics` turns it into the paper's
quantities. The explicit-weights references (``gd_explicit``, ``sgd_explicit``) are in
:mod:`linflow.sgd`: gradient descent is SGD with the full batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg.blas import dgemm as _dgemm

from . import theory
from .state import CompressedInit
from .theory import ReducedProblem

_EPS = np.finfo(float).eps  # solve_ivp's event tolerance is 4 eps

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
    stats: dict | None = None  # the integrator's counts (steps, evaluations, ...), where it has them




def _log_grid(first: float, last: float, per_decade: int) -> np.ndarray:
    decades = max(np.log10(last / first), 1e-9)
    grid = np.logspace(np.log10(first), np.log10(last), int(np.ceil(decades * per_decade)) + 1)
    grid[0], grid[-1] = first, last  # exact ends: solve_ivp rejects t_eval beyond t_span
    return grid


# ---------------------------------------------------------------------------
# Simulators on the compressed state
# ---------------------------------------------------------------------------


def error(s, Yt, Zc, m):
    """Reduced error ``E = W^T Y - S U1 V^T`` of the factor ``Zc`` (rows: ``V``, then ``U1``)."""
    return theory.residual(s, Yt, Zc[m:] @ Zc[:m].T)


def fastest_rate(problem: ReducedProblem, Z0: np.ndarray) -> float:
    """Estimate of the flow's fastest rate at ``Z0``: ``lam_1 ||G0|| + s_1 ||W^T Y||``."""
    gram0 = Z0 @ Z0.T if Z0.shape[0] <= Z0.shape[1] else Z0.T @ Z0  # ||Z0||_2^2 = l_1(gram0), no SVD
    return problem.lam_1 * max(np.linalg.eigvalsh(gram0)[-1], 1e-300) + np.linalg.norm(problem.Yt) * problem.s[0]


def record_times(problem: ReducedProblem, Z0: np.ndarray, max_time: float, per_decade: int) -> np.ndarray:
    """The flow's record grid: 0, then log-spaced from well below the fastest time scale
    (about ``1 / (lam_1 ||G0||)``) to ``max_time``."""
    first = min(1e-3 / fastest_rate(problem, Z0), max_time * 1e-9)
    return np.concatenate([[0.0], _log_grid(first, max_time, per_decade)])


def flow(problem: ReducedProblem, init: CompressedInit, target, max_time, rtol, atol, per_decade) -> Trajectory:
    """Integrate ``dZc/dt = A(E) Zc`` (``dV/dt = E^T S U1``, ``dU1/dt = S E V``; docs/theory.md, section 2).

    SciPy's DOP853, stepped as ``solve_ivp`` steps it, with records on the log-spaced grid
    and a terminal event where the excess loss ``1/2 ||E||^2`` falls to ``target``.
    """
    # Imported here: scipy.integrate takes ~0.8 s to import, and gradient-descent and SGD jobs
    # (and every command that only reads Trajectory) never integrate.
    from scipy.integrate import DOP853
    from scipy.optimize import brentq

    s, Yt, m = problem.s, problem.Yt, problem.m
    shape = init.Zc.shape
    r, k = shape[0] - m, shape[1]
    mk = m * k
    s_col = s[:, None]

    def rhs(_t, y):
        # Seven NumPy calls, no temporaries beyond SE (r x m) and the result: the call overhead
        # is most of the cost at these sizes. The result must be a new array: SciPy keeps it.
        Z = y.reshape(shape)
        V, U1 = Z[:m], Z[m:]
        SE = np.dot(U1, V.T)  # U1 V^T, then S E = S (Yt - S U1 V^T), in place
        np.multiply(s_col, SE, out=SE)
        np.subtract(Yt, SE, out=SE)
        np.multiply(s_col, SE, out=SE)
        out = np.empty(y.size)
        np.dot(SE.T, U1, out=out[:mk].reshape(m, k))  # dV/dt = E^T S U1
        np.dot(SE, V, out=out[mk:].reshape(r, k))  # dU1/dt = S E V
        return out

    def reached_target(y):
        return theory.excess_loss(error(s, Yt, y.reshape(shape), m)) - target

    t_eval = record_times(problem, init.Zc, max_time, per_decade)
    solver = DOP853(rhs, 0.0, init.Zc.ravel(), float(max_time), rtol=rtol, atol=atol)
    # solve_ivp's loop (t_eval records, a terminal event on the target, found by brentq on the
    # dense output), writing each record straight into its slot: solve_ivp would hold the
    # records twice at the end (its list and the stacked array), 0.9 GB at m + r ~ 800. The
    # buffer has a slot for every point of the grid; untouched slots are never resident.
    records = np.empty((t_eval.size + 1, solver.n))
    times: list[float] = []
    g = reached_target(solver.y)
    status = None
    while status is None:
        message = solver.step()
        if solver.status == "finished":
            status = 0
        elif solver.status == "failed":
            status = -1
            break
        t, y, sol = solver.t, solver.y, None
        g_new = reached_target(y)
        if g >= 0 and g_new <= 0:  # the excess loss crossed the target downwards in this step
            sol = solver.dense_output()
            root = brentq(lambda time: reached_target(sol(time)), solver.t_old, t, xtol=4 * _EPS, rtol=4 * _EPS)
            event_state = sol(root)
            status, t = 1, root
        g = g_new
        upto = int(np.searchsorted(t_eval, t, side="right"))
        if upto > len(times):
            if sol is None:
                sol = solver.dense_output()
            step_times = t_eval[len(times):upto]
            records[len(times):upto] = sol(step_times).T
            times.extend(float(v) for v in step_times)
    if status == 1:  # terminal event: the target was reached
        records[len(times)] = event_state
        times.append(float(root))
        status, message = "converged", "excess loss reached the target"
    elif status == 0:
        status, message = "not_converged", f"time limit {max_time:g} reached before the target"
    else:
        status, message = "failed", f"integrator failed: {message}"
    Zc = records[:len(times)].reshape((len(times),) + shape)
    if not np.all(np.isfinite(Zc)):
        status, message = "failed", "integrator produced non-finite states"
        keep = np.all(np.isfinite(Zc), axis=(1, 2))
        Zc, times = Zc[keep], list(np.asarray(times)[keep])
    n_evaluations = int(solver.nfev)
    return Trajectory(np.asarray(times), None, Zc, init.U2c, status, message, n_evaluations, True)


def _record_steps(max_steps: int, per_decade: int) -> np.ndarray:
    steps = np.unique(np.rint(_log_grid(1.0, max(max_steps, 1), per_decade)).astype(np.int64))
    return np.concatenate([[0], steps[steps <= max_steps]])


def _diverged(excess, excess0, divergence_factor) -> bool:
    return not np.isfinite(excess) or excess > divergence_factor * max(excess0, np.finfo(float).tiny)


def gd(problem, init, eta, target, max_steps, per_decade, divergence_factor) -> Trajectory:
    """Gradient descent ``Zc <- (I + eta A(E)) Zc`` (docs/theory.md, section 2).

    ``V <- V + eta E^T S U1``, ``U1 <- U1 + eta S E V``, written with ``F = S^{-1} W^T Y - U1 V^T``
    (``E = S F``): ``eta S E = eta S^2 F`` and ``1/2 ||E||^2 = 1/2 <F, S^2 F>``. A step is two
    thin products with the factor and one in-place rank-``m`` BLAS update of ``U1`` (``A(E)``
    has rank ``2m``), into preallocated buffers; the excess loss of iterate k, which forms
    step k anyway, is its stopping and divergence check.
    """
    m = problem.m
    record = _record_steps(max_steps, per_decade)  # ascending, last entry max_steps
    V = np.array(init.Zc[:m], dtype=np.float64, order="C")
    U1 = np.array(init.Zc[m:], dtype=np.float64, order="F")  # Fortran order: dgemm updates it in place
    Vt = V.T
    theta = problem.theta_hat_reduced  # S^-1 W^T Y
    eta_s2 = (eta * problem.s**2)[:, None]
    half_over_eta = 0.5 / eta
    P = np.empty((U1.shape[0], m))  # U1 V^T, then F
    SE = np.empty_like(P)  # eta S E = eta S^2 F
    SEt = SE.T
    dV = np.empty_like(V)

    def excess_of(U1):  # F = theta - U1 V^T into P and eta S E into SE; returns 1/2 ||S F||^2
        np.matmul(U1, Vt, out=P)
        np.subtract(theta, P, out=P)
        np.multiply(eta_s2, P, out=SE)
        return half_over_eta * float(np.vdot(P, SE))

    excess0 = excess = excess_of(U1)
    # the cap makes an infinite excess diverge; "not excess <= limit" also catches NaN
    limit = min(divergence_factor * max(excess0, np.finfo(float).tiny), np.finfo(float).max)
    snapshots, steps = [], []
    status, message = "not_converged", f"step limit {max_steps} reached before the target"
    next_record, i_record, k = 0, 0, 0
    while True:
        if not excess <= limit:
            status, message = "diverged", f"excess loss {excess:.3e} at step {k} (initial {excess0:.3e})"
            break
        if excess <= target or k == next_record:
            snapshots.append(np.vstack([V, U1]))
            steps.append(k)
            if excess <= target:
                status, message = "converged", "excess loss reached the target"
                break
            if k == max_steps:
                break
            i_record += 1
            next_record = int(record[i_record])
        np.matmul(SEt, U1, out=dV)  # eta E^T S U1, from the old U1
        U1 = _dgemm(1.0, SE, V, 1.0, U1, overwrite_c=1)  # U1 += eta S E V, from the old V
        np.add(V, dV, out=V)
        k += 1
        excess = excess_of(U1)
    steps = np.asarray(steps)
    return Trajectory(eta * steps, steps, np.asarray(snapshots), init.U2c, status, message, int(k + 1), True)
