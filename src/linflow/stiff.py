"""Gradient flow on ill-conditioned data: BDF (SUNDIALS CVODE) with our Jacobian and preconditioner.

On the state ``Z = [V; U1]`` ((m + r) x k) the flow is ``F(Z) = A(E) Z`` with
``E = W^T Y - S U1 V^T`` and ``A(E) = [[0, E^T S], [S E, 0]]``. Near convergence its slow
directions relax at rates ~ ``lam_r`` and its fast ones at ~ ``lam_1`` (times the Gram scale),
so an explicit method's step is held below ~ ``3 / lam_1`` for a run that lasts ~ ``1 / lam_r``:
the cost of DOP853 grows like ``lam_1 / lam_r``. An implicit (BDF) method takes steps set by
accuracy once the fast modes have settled; each step solves ``(I - gamma J) x = b``. Both pieces
of that solve come from the structure of the flow (docs/theory.md, "Stiffness"):

* the Jacobian-vector product
  ``J dZ = A(E) dZ + [dM^T U1; dM V]``, ``dM = S dE = -S^2 (dU1 V^T + U1 dV^T)`` (r x m);
* the exact inverse of ``I - gamma J``: ``B = I - gamma A(E)`` is (m + r) x (m + r) and acts on
  each column, and the rest has rank at most ``r m``, a Woodbury correction of size ``r m``
  whose matrix depends on ``Z`` only through the Grams ``V V^T``, ``U1 U1^T`` and ``U1 V^T``.

Used as the preconditioner of CVODE's matrix-free Newton-Krylov (GMRES) iteration, the exact
inverse makes GMRES converge in about one iteration. The integration itself is SUNDIALS CVODE
through ``scikit-sundae``.
"""

from __future__ import annotations

import numpy as np

from . import theory
from .kernels import Trajectory, error, record_times
from .state import CompressedInit
from .theory import ReducedProblem


class Linearization:
    """The flow's Jacobian at a state ``Z`` ((m + r) x k) and the exact solve of ``I - gamma J``."""

    def __init__(self, s: np.ndarray, Yt: np.ndarray, m: int, Z: np.ndarray):
        self.m, self.Z = m, Z
        self.V, self.U1 = Z[:m], Z[m:]
        self.s2 = (s**2)[:, None]
        self.P = self.U1 @ self.V.T  # U1 V^T, r x m
        self.SE = s[:, None] * (Yt - s[:, None] * self.P)  # S E
        r = self.U1.shape[0]
        self.A = np.zeros((m + r, m + r))
        self.A[:m, m:] = self.SE.T
        self.A[m:, :m] = self.SE
        self.gamma = None

    def jvp(self, dZ: np.ndarray) -> np.ndarray:
        """``J dZ`` for ``dZ`` of the state's shape."""
        m, V, U1 = self.m, self.V, self.U1
        dV, dU1 = dZ[:m], dZ[m:]
        dM = -self.s2 * (dU1 @ V.T + U1 @ dV.T)
        out = self.A @ dZ
        out[:m] += dM.T @ U1
        out[m:] += dM @ V
        return out

    def factor(self, gamma: float) -> None:
        """Factor ``I - gamma J``: ``B = I - gamma A(E)`` and the Woodbury system ``I - gamma T``.

        ``T(D) = C(B^-1 Q(D))`` on r x m matrices ``D``, with ``Q(D) = [D^T U1; D V]`` and
        ``C(Y) = -S^2 (Y_U1 V^T + U1 Y_V^T)``; written with the Grams it is
        ``-S^2 (B21 D^T P + B22 D V V^T + U1 U1^T D B11^T + P D^T B12^T)``, ``P = U1 V^T``.
        """
        m, r = self.m, self.P.shape[0]
        B = np.eye(m + r) - gamma * self.A
        Binv = np.linalg.solve(B, np.eye(m + r))
        B11, B12, B21, B22 = Binv[:m, :m], Binv[:m, m:], Binv[m:, :m], Binv[m:, m:]
        P, Gvv, Guu = self.P, self.V @ self.V.T, self.U1 @ self.U1.T
        # T[a, b, i, j]: the (a, b) entry of T(e_i e_j^T)
        T = (np.einsum("aj,ib->abij", B21, P) + np.einsum("ai,jb->abij", B22, Gvv)
             + np.einsum("ai,bj->abij", Guu, B11) + np.einsum("aj,bi->abij", P, B12))
        T *= -self.s2[:, :, None, None]
        self.gamma, self.Binv = gamma, Binv
        self.gBinv_V, self.gBinv_U = gamma * Binv[:, :m], gamma * Binv[:, m:]  # column blocks, times gamma
        # the exact inverse of I - gamma T; a preconditioner solve is then three small products
        self.woodbury = np.linalg.inv(np.eye(r * m) - gamma * T.reshape(r * m, r * m))

    def solve(self, b: np.ndarray) -> np.ndarray:
        """``x`` with ``(I - gamma J) x = b`` (``gamma`` of the last :meth:`factor`).

        ``x = B^-1 (b + gamma Q(D))`` where ``D = C(x)`` solves ``(I - gamma T) D = C(B^-1 b)``.
        """
        m, V, U1, Binv = self.m, self.V, self.U1, self.Binv
        y = Binv @ b
        D0 = -self.s2 * (y[m:] @ V.T + U1 @ y[:m].T)
        D = (self.woodbury @ D0.ravel()).reshape(D0.shape)
        # gamma B^-1 Q(D) = gamma B^-1[:, :m] D^T U1 + gamma B^-1[:, m:] D V
        y += (self.gBinv_V @ D.T) @ U1
        y += (self.gBinv_U @ D) @ V
        return y


def flow_bdf(problem: ReducedProblem, init: CompressedInit, target, max_time, rtol, atol, per_decade) -> Trajectory:
    """Integrate ``dZc/dt = A(E) Zc`` with CVODE's BDF and a preconditioned Newton-Krylov solve.

    Records on the same log-spaced grid as :func:`linflow.kernels.flow`, a root where the
    excess loss ``1/2 ||E||^2`` falls to ``target`` ends the run. ``Trajectory.stats`` counts
    the steps, right-hand sides, Jacobian-vector products and preconditioner setups and solves.
    """
    from sksundae.cvode import CVODE, CVODEJacTimes, CVODEPrecond  # SUNDIALS: loaded only to integrate

    s, Yt, m = problem.s, problem.Yt, problem.m
    shape = init.Zc.shape
    s_col = s[:, None]
    counts = dict(rhs=0, jvp=0, precond_setups=0, precond_solves=0)
    current: dict = {}

    def rhs(_t, y, yp):
        counts["rhs"] += 1
        Z = y.reshape(shape)
        SE = s_col * (Yt - s_col * (Z[m:] @ Z[:m].T))
        out = yp.reshape(shape)
        np.dot(SE.T, Z[m:], out=out[:m])
        np.dot(SE, Z[:m], out=out[m:])

    def jvp_setup(_t, y, _yp):
        current["jac"] = Linearization(s, Yt, m, y.reshape(shape).copy())

    def jvp(_t, _y, _yp, v, Jv):
        counts["jvp"] += 1
        Jv[:] = current["jac"].jvp(v.reshape(shape)).ravel()

    def precond_setup(_t, y, _yp, jok, jnew, gamma):
        counts["precond_setups"] += 1
        current["pre"] = Linearization(s, Yt, m, y.reshape(shape).copy())
        current["pre"].factor(gamma)
        jnew[0] = 1

    def precond_solve(_t, _y, _yp, rvec, zvec, gamma, _delta, _lr):
        counts["precond_solves"] += 1
        pre = current["pre"]
        if gamma != pre.gamma:  # CVODE changed the step since the setup: refactor (size m + r, r m)
            pre.factor(gamma)
        zvec[:] = pre.solve(rvec.reshape(shape)).ravel()

    def reached_target(_t, y, events):
        events[0] = theory.excess_loss(error(s, Yt, y.reshape(shape), m)) - target

    reached_target.terminal = [True]
    reached_target.direction = [-1]

    t_eval = record_times(problem, init.Zc, max_time, per_decade)
    solver = CVODE(rhs, method="BDF", rtol=rtol, atol=atol, linsolver="gmres", krylov_dim=10,
                   jactimes=CVODEJacTimes(jvp_setup, jvp), precond=CVODEPrecond(precond_setup, precond_solve),
                   eventsfn=reached_target, num_events=1, max_num_steps=100_000)
    # One internal step at a time, to count them; the records are CVODE's interpolants at the
    # grid times inside the last step, so recording does not change the steps taken.
    solver.init_step(0.0, init.Zc.ravel())
    times, states, steps, i_next = [0.0], [init.Zc.ravel().copy()], 0, 1
    status, message = "not_converged", f"time limit {max_time:g} reached before the target"
    while True:
        result = solver.step(max_time, method="onestep", tstop=max_time)
        if not result.success:
            status, message = "failed", f"integrator failed: {result.message}"
            break
        steps += 1
        t_step = float(result.t)
        root = result.status == 2
        while i_next < t_eval.size and (t_eval[i_next] < t_step or (t_eval[i_next] == t_step and not root)):
            times.append(float(t_eval[i_next]))
            states.append(np.array(solver.step(t_eval[i_next]).y, dtype=float).ravel())
            i_next += 1
        if root:  # the excess loss reached the target
            times.append(t_step)
            states.append(np.array(result.y, dtype=float).ravel())
            status, message = "converged", "excess loss reached the target"
            break
        if t_step >= max_time:
            break
    Zc = np.asarray(states).reshape((len(states),) + shape)
    if not np.all(np.isfinite(Zc)):
        status, message = "failed", "integrator produced non-finite states"
        keep = np.all(np.isfinite(Zc), axis=(1, 2))
        Zc, times = Zc[keep], list(np.asarray(times)[keep])
    stats = dict(steps=steps, **counts)
    return Trajectory(np.asarray(times), None, Zc, init.U2c, status, message, counts["rhs"], True, stats)
