"""Simulators on the width-independent state: exact gradient flow, gradient descent.

A simulator advances a factor ``Zc`` of the Gram matrix ``G = Z Z^T`` of ``Z = [V; U1]``
(THEORY.md, "A width-independent exact formulation") and returns a :class:`Trajectory` of
snapshots at the recorded points; :mod:`linflow.diagnostics` turns it into the paper's
quantities. ``gd_explicit`` is the naive reference on the full ``n x h`` weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate._ivp import dop853_coefficients as _dop  # the DOP853 tableau
from scipy.optimize import brentq
from scipy.linalg.blas import dgemm as _dgemm

from . import theory
from .state import CompressedInit, compress
from .theory import ReducedProblem

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


# DOP853 (Dormand-Prince 8(5,3), Hairer, Norsett & Wanner, Solving ODEs I, II.5), driven as
# SciPy's DOP853 + solve_ivp(t_eval, events) drive it: same tableau, step control, initial step,
# dense output and event root finding, so the trajectory agrees with solve_ivp to round-off.
# Written out so the stages can stay factored (class _Stages): SciPy's driver combines full
# (m + r) x k stage vectors, 16 of them, which no longer fit in cache.
_N_STAGES = 12
_A = _dop.A[:_N_STAGES, :_N_STAGES]
_B = _dop.B
_A_EXTRA = _dop.A[_N_STAGES + 1:]  # the three extra stages of the dense output
_D = _dop.D
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0
_ERROR_EXPONENT = -1.0 / 8.0  # error estimator of order 7
_EPS = np.finfo(float).eps


def _dense_weights(x: np.ndarray) -> np.ndarray:
    """Weights ``w`` (len(x) x 7) with ``y(x) = y_old + w @ F`` for DOP853's interpolant
    (SciPy's nested form ``(((F6 x + F5)(1 - x) + F4) x + ...)``)."""
    x = np.asarray(x, dtype=float)[:, None]
    factors = np.where(np.arange(_dop.INTERPOLATOR_POWER) % 2 == 0, x, 1.0 - x)  # factor after F[6 - i]
    return np.cumprod(factors[:, ::-1], axis=1)  # w[:, j] = product of the factors after F[j]


# Dense output y(t_old + x h) = y_old + h (w(x) @ _DENSE) @ K: SciPy's interpolant rows
# F0 = y_new - y_old = h B.K, F1 = h K0 - F0, F2 = 2 F0 - h (K12 + K0), F3.. = h D.K as stage weights.
_BETA = np.concatenate([_B, np.zeros(_dop.N_STAGES_EXTENDED - _N_STAGES)])
_UNIT = np.eye(_dop.N_STAGES_EXTENDED)
_DENSE = np.vstack([_BETA, _UNIT[0] - _BETA, 2 * _BETA - _UNIT[_N_STAGES] - _UNIT[0], _D])


class _Stages:
    """DOP853 stage derivatives ``K_j = A(E_j) Z_j`` kept in factored form.

    ``A(E)`` has rank ``2m`` (THEORY.md), so ``K_j = [dV_j; S E_j V_j]`` is stored as
    ``dV_j`` (m x k), ``S E_j`` (r x m) and ``V_j`` (m x k): a stage state
    ``Z + h sum_j a_j K_j`` has ``V + h sum a_j dV_j`` and ``U1 + (S E) diag(h a) V_.``, a
    rank-``(i m)`` update of ``U1``. Evaluating a stage is then two thin products with ``U1``
    instead of combinations of full ``(m + r) x k`` stage vectors.
    """

    def __init__(self, problem: ReducedProblem, k: int):
        m, r = problem.m, problem.r
        self.m, self.theta, self.s2 = m, problem.theta_hat_reduced, (problem.s**2)[:, None]
        n_st = _dop.N_STAGES_EXTENDED
        self.SE = np.empty((r, n_st * m), order="F")  # column block j: S E_j
        self.V = np.empty((n_st * m, k))  # row block j: V_j
        self.dV = np.empty((n_st, m * k))  # row j: dV_j = E_j^T S U1_j, flattened
        self.count = 0  # right-hand-side evaluations

    def _weights(self, coef):
        return coef if self.m == 1 else np.repeat(coef, self.m)

    def combine_V(self, V0, coef):
        """``V0 + sum_j coef_j dV_j`` over the first ``len(coef)`` stages."""
        return V0 + (coef @ self.dV[: len(coef)]).reshape(V0.shape)

    def combine_U1(self, U10, coef):
        """``U10 + sum_j coef_j S E_j V_j`` (full r x k)."""
        J = len(coef) * self.m
        return _dgemm(1.0, self.SE[:, :J] * self._weights(coef), self.V[:J], 1.0, U10)

    def error_F(self, V_j, U10, coef):
        """``F = S^-1 W^T Y - U1_j V_j^T`` at the stage state with base ``U10`` and weights ``coef``."""
        P = U10 @ V_j.T
        if len(coef):
            J = len(coef) * self.m
            P += self.SE[:, :J] @ (self._weights(coef)[:, None] * (self.V[:J] @ V_j.T))
        return self.theta - P

    def excess(self, V_j, U10, coef) -> float:
        F = self.error_F(V_j, U10, coef)
        return 0.5 * float(np.vdot(F, self.s2 * F))

    def evaluate(self, j, V_j, U10, coef) -> float:
        """Store ``K_j`` at the stage state; returns its excess loss ``1/2 ||S F||^2``."""
        self.count += 1
        m, J = self.m, len(coef) * self.m
        F = self.error_F(V_j, U10, coef)
        SE = self.SE[:, j * m:(j + 1) * m]
        np.multiply(self.s2, F, out=SE)
        dV = SE.T @ U10  # E^T S U1_j = E^T S U10 + sum_i coef_i (E^T S S E_i) V_i
        if J:
            dV += ((SE.T @ self.SE[:, :J]) * self._weights(coef)) @ self.V[:J]
        self.dV[j] = dV.ravel()
        self.V[j * m:(j + 1) * m] = V_j
        return 0.5 * float(np.vdot(F, SE))

    def copy(self, src, dst):
        m = self.m
        self.SE[:, dst * m:(dst + 1) * m] = self.SE[:, src * m:(src + 1) * m]
        self.V[dst * m:(dst + 1) * m] = self.V[src * m:(src + 1) * m]
        self.dV[dst] = self.dV[src]

    def full(self, j):
        """``K_j`` as the ``(m + r) x k`` matrix ``[dV_j; S E_j V_j]``."""
        m = self.m
        return np.vstack([self.dV[j].reshape(m, -1), self.SE[:, j * m:(j + 1) * m] @ self.V[j * m:(j + 1) * m]])


def flow(problem: ReducedProblem, init: CompressedInit, target, max_time, rtol, atol, per_decade) -> Trajectory:
    """Integrate ``dZc/dt = A(E) Zc`` (``dV/dt = E^T S U1``, ``dU1/dt = S E V``; THEORY.md).

    DOP853 with records at the log-spaced ``t_eval`` grid (dense output) and a terminal event
    where the excess loss ``1/2 ||E||^2`` falls to ``target``, step for step the algorithm of
    SciPy's ``solve_ivp(method="DOP853", t_eval=..., events=...)``; the stages are kept in the
    factored form of :class:`_Stages` (``A(E)`` has rank ``2m``).
    """
    m = problem.m
    Z0 = np.asarray(init.Zc, dtype=float)
    shape, n = Z0.shape, Z0.size
    st = _Stages(problem, shape[1])

    # The fastest time scale is about lam_1 ||G0||; record from well below it, log-spaced.
    gram0 = Z0 @ Z0.T if Z0.shape[0] <= Z0.shape[1] else Z0.T @ Z0  # ||Z0||_2^2 = l_1(gram0), no SVD
    speed = problem.lam_1 * max(np.linalg.eigvalsh(gram0)[-1], 1e-300) + np.linalg.norm(problem.Yt) * problem.s[0]
    first = min(1e-3 / speed, max_time * 1e-9)
    t_eval = np.concatenate([[0.0], _log_grid(first, max_time, per_decade)])

    V, U1 = Z0[:m].copy(), np.asfortranarray(Z0[m:])
    none = np.zeros(0)
    g = st.evaluate(0, V, U1, none) - target  # K_0 = f(y0)
    # Initial step (Hairer, Norsett & Wanner II.4; SciPy's select_initial_step, t_bound = max_time).
    y0, f0 = Z0, st.full(0)
    scale = atol + np.abs(y0) * rtol
    d0, d1 = np.linalg.norm(y0 / scale) / n**0.5, np.linalg.norm(f0 / scale) / n**0.5
    h0 = min(1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1, max_time)
    y1 = y0 + h0 * f0
    st.evaluate(15, y1[:m], np.asfortranarray(y1[m:]), none)
    d2 = np.linalg.norm((st.full(15) - f0) / scale) / n**0.5 / h0
    h1 = max(1e-6, h0 * 1e-3) if d1 <= 1e-15 and d2 <= 1e-15 else (0.01 / max(d1, d2)) ** (1 / 8)
    h_abs = min(100 * h0, h1, max_time)

    t, i_eval = 0.0, 0
    times, states = [], []
    status, message = None, ""
    abs_V, abs_U1 = np.abs(V), np.abs(U1)
    while status is None:
        # One step (SciPy's RungeKutta._step_impl).
        min_step = 10 * abs(np.nextafter(t, np.inf) - t)
        rejected = False
        while True:
            if h_abs < min_step:
                status = "failed"
                message = "integrator failed: Required step size is less than spacing between numbers."
                break
            t_new = min(t + h_abs, max_time)
            h = t_new - t
            h_abs = abs(h)
            for i in range(1, _N_STAGES):
                coef = h * _A[i, :i]
                st.evaluate(i, st.combine_V(V, coef), U1, coef)
            coef = h * _B
            V_new, U1_new = st.combine_V(V, coef), st.combine_U1(U1, coef)
            excess_new = st.evaluate(_N_STAGES, V_new, U1_new, none)  # f(y_new), the next step's K_0
            abs_V_new, abs_U1_new = np.abs(V_new), np.abs(U1_new)
            scale_V = atol + np.maximum(abs_V, abs_V_new) * rtol
            scale_U1 = atol + np.maximum(abs_U1, abs_U1_new) * rtol
            norms = []
            for e in (_dop.E5, _dop.E3):  # ||sum_j e_j K_j / scale||^2
                top = st.combine_V(np.zeros_like(V), e) / scale_V
                bottom = st.combine_U1(np.zeros_like(U1), e) / scale_U1
                norms.append(float(np.vdot(top, top)) + float(np.vdot(bottom, bottom)))
            err5_2, err3_2 = norms
            if err5_2 == 0 and err3_2 == 0:
                error_norm = 0.0
            else:
                error_norm = h_abs * err5_2 / np.sqrt((err5_2 + 0.01 * err3_2) * n)
            if error_norm < 1:
                factor = _MAX_FACTOR if error_norm == 0 else min(_MAX_FACTOR, _SAFETY * error_norm**_ERROR_EXPONENT)
                if rejected:
                    factor = min(1.0, factor)
                h_abs *= factor
                break
            h_abs *= max(_MIN_FACTOR, _SAFETY * error_norm**_ERROR_EXPONENT)
            rejected = True
        if status is not None:
            break
        t_old, V_old, U1_old = t, V, U1
        t, V, U1, abs_V, abs_U1 = t_new, V_new, U1_new, abs_V_new, abs_U1_new
        if t == max_time:
            status = "not_converged"
        g_new = excess_new - target
        crossed = g >= 0 and g_new <= 0  # event direction -1
        i_new = int(np.searchsorted(t_eval, t, side="right"))
        if crossed or i_new > i_eval:
            # Dense output on [t_old, t] (SciPy's DOP853._dense_output_impl): three extra stages.
            for j, a_row in enumerate(_A_EXTRA, start=_N_STAGES + 1):
                coef = h * a_row[:j]
                st.evaluate(j, st.combine_V(V_old, coef), U1_old, coef)

            def coefficients(tt):
                x = (tt - t_old) / h
                return h * (_dense_weights([x])[0] @ _DENSE)

            if crossed:  # SciPy's solve_event_equation
                def event(tt):
                    c = coefficients(tt)
                    return st.excess(st.combine_V(V_old, c), U1_old, c) - target

                t = brentq(event, t_old, t, xtol=4 * _EPS, rtol=4 * _EPS)
                i_new = int(np.searchsorted(t_eval, t, side="right"))
                status, message = "converged", "excess loss reached the target"
            for tt in list(t_eval[i_eval:i_new]) + ([t] if crossed else []):
                c = coefficients(tt)
                times.append(float(tt))
                states.append(np.vstack([st.combine_V(V_old, c), st.combine_U1(U1_old, c)]))
            i_eval = max(i_eval, i_new)
        st.copy(_N_STAGES, 0)  # FSAL: f(y_new) is the next step's first stage
        g = g_new
    if status == "not_converged":
        message = f"time limit {max_time:g} reached before the target"
    Zc = np.asarray(states).reshape((len(states),) + shape)
    if not np.all(np.isfinite(Zc)):
        status, message = "failed", "integrator produced non-finite states"
        keep = np.all(np.isfinite(Zc), axis=(1, 2))
        Zc, times = Zc[keep], list(np.asarray(times)[keep])
    return Trajectory(np.asarray(times), None, Zc, init.U2c, status, message, st.count, True)


def _record_steps(max_steps: int, per_decade: int) -> np.ndarray:
    steps = np.unique(np.rint(_log_grid(1.0, max(max_steps, 1), per_decade)).astype(np.int64))
    return np.concatenate([[0], steps[steps <= max_steps]])


def _diverged(excess, excess0, divergence_factor) -> bool:
    return not np.isfinite(excess) or excess > divergence_factor * max(excess0, np.finfo(float).tiny)


def gd(problem, init, eta, target, max_steps, per_decade, divergence_factor) -> Trajectory:
    """Gradient descent ``Zc <- (I + eta A(E)) Zc`` (THEORY.md: ``Z_{k+1} = (I + eta A(E_k)) Z_k``).

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


def gd_explicit(problem, X, Y, U, V, eta, target, max_steps, per_decade, divergence_factor) -> Trajectory:
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
