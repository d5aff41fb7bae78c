"""The paper's quantities along a simulated trajectory (run-record variables).

:func:`diagnostics` maps the compressed snapshots of a :class:`~linflow.kernels.Trajectory`
to losses, rates and their bounds (Prop. 1, Thm. 3, Cor. 4), the imbalance (Section 3.2) and
the distance to the min-norm solution (Section 4, Theorem 12).
"""

from __future__ import annotations

import numpy as np

from . import theory
from .kernels import Trajectory
from .theory import ReducedProblem

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
    # one 2-D product per sampled point: NumPy's stacked matmul of transposed views is slower
    # (one k x k matrix at a time: with m + r ~ 800, a stack of 33 would take 170 MB)
    D0 = Zc[idx[0]].T @ (J[:, None] * Zc[idx[0]])
    scale = np.linalg.norm(D0)
    if scale == 0:
        scale = max(np.linalg.norm(Zc[0]) ** 2, np.finfo(float).tiny)
    drift = max(float(np.linalg.norm(Zc[i].T @ (J[:, None] * Zc[i]) - D0)) for i in idx)
    return drift / scale


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
    if U2c.ndim == 2:  # one basis for every point: GEMMs over blocks of stacked snapshots
        # (blocks of ~8 MB: a T x k x k product would double the trajectory's memory at m + r ~ 800)
        block = max(1, 1_000_000 // Zc[0].size)
        squares = [np.einsum("tij,tij->t", (Zc[i:i + block].reshape(-1, Zc.shape[-1]) @ gram_U2).reshape(
            Zc[i:i + block].shape), Zc[i:i + block]) for i in range(0, len(Zc), block)]
        orthogonality = np.sqrt(np.maximum(np.concatenate(squares), 0.0))
    else:
        orthogonality = np.sqrt(np.maximum(np.einsum("tij,tij->t", Zc @ gram_U2, Zc), 0.0))
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
        # the limit distance is the null-space part alone (the row-space part tends to 0)
        final_distance_null_fro=float(np.linalg.norm(K_V[-1])),
        final_v_fro=float(np.linalg.norm(Vc[-1])),  # ||V||_F = ||Vc||_F: the basis is orthonormal
        final_distance_row_fro=float(np.linalg.norm(product[-1] - problem.theta_hat_reduced)),
        orthogonality0=float(orthogonality[0]),
        end_to_end0_fro=float(np.linalg.norm(product[0])),
        end_to_end=end_to_end,
        # incremental learning: the target's directions appear one by one as these grow
        product_singular_values=(np.linalg.norm(product, axis=1) if m == 1  # one output: the norm, ~50x cheaper
                                 else np.linalg.svd(product, compute_uv=False)),
        imbalance_drift=_imbalance_drift(Zc, m) if traj.conserved_basis else float("nan"),
    )


# ---------------------------------------------------------------------------
# Public entry point
