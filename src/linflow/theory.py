"""The paper's quantities (Min, Tarmoun, Vidal, Mallada): reduction, imbalance, bounds.

Every function is a pure function of arrays. Notation follows docs/theory.md:
``X = W S Phi1^T`` (Section 2.1), ``Z = [V; U1]`` stacks the output weights and the
data-space part of the input weights, ``G = Z Z^T`` and ``K = Z U2(0)^T``.
Functions that take per-time arrays accept a leading time axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReducedProblem:
    """SVD reduction of the least-squares problem (Section 2.1).

    ``X = W diag(s) Phi1^T`` with ``r = rank(X)``; ``Phi2`` completes ``Phi1`` to an
    orthonormal basis of the input space. ``Yt = W^T Y`` is the part of the targets the
    network can fit and ``loss_star = 1/2 ||(I - W W^T) Y||_F^2`` the unreachable part.
    """

    W: np.ndarray  # N x r
    s: np.ndarray  # r, nonzero singular values of X, descending
    Phi1: np.ndarray  # n x r
    Phi2: np.ndarray  # n x (n - r)
    Yt: np.ndarray  # r x m
    loss_star: float
    y_fro: float

    @property
    def r(self) -> int:
        return self.s.size

    @property
    def m(self) -> int:
        return self.Yt.shape[1]

    @property
    def n(self) -> int:
        return self.Phi1.shape[0]

    @property
    def lam_1(self) -> float:
        """Largest eigenvalue of Sigma_X = S^2."""
        return float(self.s[0] ** 2)

    @property
    def lam_r(self) -> float:
        """Smallest nonzero eigenvalue of Sigma_X = S^2."""
        return float(self.s[-1] ** 2)

    @property
    def theta_hat_reduced(self) -> np.ndarray:
        """``S^{-1} W^T Y`` (r x m): the min-norm solution in the basis Phi1."""
        return self.Yt / self.s[:, None]

    @property
    def theta_hat(self) -> np.ndarray:
        """Min-norm solution ``X^T (X X^T)^+ Y = Phi1 S^{-1} W^T Y`` (n x m), Section 4."""
        return self.Phi1 @ self.theta_hat_reduced


def reduce_problem(X: np.ndarray, Y: np.ndarray, rank_rtol: float | None = None) -> ReducedProblem:
    """Reduce ``L = 1/2 ||Y - X U V^T||_F^2`` to the coordinates of Section 2.1.

    The numerical rank uses NumPy's default ``matrix_rank`` tolerance unless
    ``rank_rtol`` (relative to the largest singular value) is given.

    Economy factorization: no ``N x N`` matrix for tall data (``N >= n``: the right factor is
    already the ``n x n`` basis ``[Phi1, Phi2]``). Wide data (``N < n``) need the complement
    ``Phi2`` of the ``N`` right singular vectors, which the full factorization gives at the
    cost of an ``N x N`` left factor, smaller than the ``n x n`` basis itself.
    """
    N, n = X.shape
    Wfull, s_all, Vt = np.linalg.svd(X, full_matrices=N < n)
    tol = (s_all[0] * rank_rtol) if rank_rtol is not None else (s_all[0] * max(N, n) * np.finfo(float).eps)
    r = int(np.count_nonzero(s_all > tol))
    W = Wfull[:, :r]
    Yt = W.T @ Y
    residual = Y - W @ Yt
    return ReducedProblem(
        W=W,
        s=s_all[:r].copy(),
        Phi1=Vt[:r].T.copy(),
        Phi2=Vt[r:].T.copy(),
        Yt=Yt,
        loss_star=0.5 * float(np.sum(residual**2)),
        y_fro=float(np.linalg.norm(Y)),
    )


# ---------------------------------------------------------------------------
# Imbalance (Section 3.2)
# ---------------------------------------------------------------------------


def imbalance_signature(m: int, r: int) -> np.ndarray:
    """Diagonal of ``J = diag(-I_m, I_r)`` with ``D = Z^T J Z = U1^T U1 - V^T V``."""
    return np.concatenate([-np.ones(m), np.ones(r)])


def imbalance_eigenvalues(Zc: np.ndarray, m: int) -> np.ndarray:
    """Nonzero spectrum of the imbalance ``D = U1^T U1 - V^T V`` (Section 3.2), descending.

    ``Zc`` is any factor with ``G = Zc Zc^T`` (shape ``(..., m + r, k)``); the nonzero
    eigenvalues of ``D`` are those of ``Zc^T J Zc``, so the ``h x h`` matrix is never
    formed. Returns ``k`` values (zeros included when ``k > rank``).
    """
    r = Zc.shape[-2] - m
    J = imbalance_signature(m, r)
    Dc = np.swapaxes(Zc, -1, -2) @ (J[:, None] * Zc)
    return np.linalg.eigvalsh(Dc)[..., ::-1]


def _kth_positive(values: np.ndarray, k: int) -> np.ndarray:
    """``max(l_k, 0)`` for the k-th largest entry along the last axis (0 beyond the size)."""
    if k <= 0 or k > values.shape[-1]:
        return np.zeros(values.shape[:-1])
    ordered = -np.sort(-values, axis=-1)
    return np.maximum(ordered[..., k - 1], 0.0)


def imbalance_deltas(eigenvalues: np.ndarray, m: int, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Delta_+, Delta_-, Delta_)`` of Section 3.2 from the nonzero spectrum of ``D``.

    ``Delta_+ = max(l_1(D),0) - max(l_r(D),0)``, ``Delta_- = max(l_1(-D),0) - max(l_m(-D),0)``,
    ``Delta_ = max(l_r(D),0) + max(l_m(-D),0)``; eigenvalues beyond the size count as 0,
    which the zero eigenvalues of ``D`` that are not passed in do not change.
    """
    ev = np.asarray(eigenvalues, dtype=float)
    top_pos, rth_pos = _kth_positive(ev, 1), _kth_positive(ev, r)
    top_neg, mth_neg = _kth_positive(-ev, 1), _kth_positive(-ev, m)
    return top_pos - rth_pos, top_neg - mth_neg, rth_pos + mth_neg


# ---------------------------------------------------------------------------
# Loss and its instantaneous rate (Proposition 1)
# ---------------------------------------------------------------------------


def residual(s: np.ndarray, Yt: np.ndarray, product: np.ndarray) -> np.ndarray:
    """Reduced error ``E = W^T Y - S U1 V^T`` (Section 2.1); ``product = U1 V^T``."""
    return Yt - s[:, None] * product


def excess_loss(E: np.ndarray) -> np.ndarray:
    """``L~ = 1/2 ||E||_F^2``, computed directly to avoid the cancellation in ``L - L*``."""
    return 0.5 * np.sum(E**2, axis=(-2, -1))


def loss_decrease_rate(s: np.ndarray, E: np.ndarray, Vc: np.ndarray, U1c: np.ndarray) -> np.ndarray:
    """``-dL~/dt = ||S E V||_F^2 + ||U1^T S E||_F^2`` along gradient flow (proof of Prop. 1).

    ``Vc`` (m x k) and ``U1c`` (r x k) may be any factor of the state with the same Gram
    matrix; both norms only depend on ``G``: ``||S E V||^2 = <(S E)^T S E, V V^T>`` (m x m).
    """
    SE = s[:, None] * E
    SEt = np.swapaxes(SE, -1, -2)
    first = np.sum((SEt @ SE) * (Vc @ np.swapaxes(Vc, -1, -2)), axis=(-2, -1))
    return first + np.sum((np.swapaxes(U1c, -1, -2) @ SE) ** 2, axis=(-2, -1))


def kth_singular_value(M: np.ndarray, k: int) -> np.ndarray:
    """``s_k(M)`` along the last two axes, 1-based, 0 beyond the matrix size.

    A matrix with one row or column (the ``r x 1`` product for m = 1) needs no SVD: its only
    singular value is its norm. (Gram eigenvalues would square the condition number, and
    Prop. 1 is attained at rank-deficient states, so the SVD stays for the rest.)
    """
    a, b = M.shape[-2:]
    if k > min(a, b):
        return np.zeros(M.shape[:-2])
    if min(a, b) == 1:
        return np.sqrt(np.sum(M * M, axis=(-2, -1)))
    return np.linalg.svd(M, compute_uv=False)[..., k - 1]


def _two_sided_rate(delta_plus, delta_minus, delta_under, a_m, a_r):
    """``-D+ + sqrt((D+ + D)^2 + 4 a_m^2) - D- + sqrt((D- + D)^2 + 4 a_r^2)`` (Prop. 1, Thm. 3)."""
    return (
        -delta_plus
        + np.sqrt((delta_plus + delta_under) ** 2 + 4.0 * a_m**2)
        - delta_minus
        + np.sqrt((delta_minus + delta_under) ** 2 + 4.0 * a_r**2)
    )


def prop1_rate_bound(lam_r, delta_plus, delta_minus, delta_under, product, m: int, r: int):
    """Proposition 1: lower bound on ``-(dL~/dt)/L~`` at a state with ``U1 V^T = product``.

    ``lam_r [ -D+ + sqrt((D+ + D)^2 + 4 s_m(U1V^T)^2) - D- + sqrt((D- + D)^2 + 4 s_r(U1V^T)^2) ]``.
    """
    s_m = kth_singular_value(product, m)
    s_r = kth_singular_value(product, r)
    return lam_r * _two_sided_rate(delta_plus, delta_minus, delta_under, s_m, s_r)


def margins(Yt: np.ndarray, E: np.ndarray, m: int, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Theorem 3 / Corollary 5 margins ``mu_k = max(s_k(Yt) - ||Yt - S U1 V^T||_F, 0)`` for k = m, r."""
    e_fro = np.sqrt(np.sum(E**2, axis=(-2, -1)))
    mu_m = np.maximum(kth_singular_value(Yt, m) - e_fro, 0.0)
    mu_r = np.maximum(kth_singular_value(Yt, r) - e_fro, 0.0)
    return mu_m, mu_r


def theorem3_c(delta_plus, delta_minus, delta_under, mu_m, mu_r, lam_1):
    """Theorem 3's ``c``: the loss obeys ``L~(t) <= exp(-lam_r c(0) t) L~(0)``.

    ``c = -D+ + sqrt((D+ + D)^2 + 4 mu_m^2/lam_1) - D- + sqrt((D- + D)^2 + 4 mu_r^2/lam_1)``.
    """
    return _two_sided_rate(delta_plus, delta_minus, delta_under, mu_m / np.sqrt(lam_1), mu_r / np.sqrt(lam_1))


def theorem3_loss_bound(t, excess0, lam_r, c0):
    """Theorem 3: ``L~(t) <= exp(-lam_r c(0) t) L~(0)``."""
    return excess0 * np.exp(-lam_r * c0 * np.asarray(t, dtype=float))


def corollary4_rate(lam_r, delta_under):
    """Corollary 4 (sufficient imbalance): exponential rate at least ``2 lam_r Delta_(0)``."""
    return 2.0 * lam_r * delta_under


def corollary6_c(delta_plus, delta_minus, delta_under, Yt, lam_1, m: int, r: int):
    """Corollary 6 (asymptotic rate): Theorem 3's ``c`` with ``mu_k = s_k(Yt)``."""
    return theorem3_c(
        delta_plus, delta_minus, delta_under, kth_singular_value(Yt, m), kth_singular_value(Yt, r), lam_1
    )


def scalar_rate(u: float, v: float) -> float:
    """Scalar warm-up (eq. 14): ``-(dL/dt)/L = 2 sqrt(d^2 + 4 (u v)^2)`` for ``L = 1/2 (y - u v)^2``
    with ``d = u^2 - v^2`` (this is the ``lam = 1`` case)."""
    return 2.0 * np.sqrt((u * u - v * v) ** 2 + 4.0 * (u * v) ** 2)


# ---------------------------------------------------------------------------
# Implicit bias (Section 4)
# ---------------------------------------------------------------------------


def distance_to_min_norm(product: np.ndarray, K_V: np.ndarray, theta_hat_reduced: np.ndarray):
    """``||U V^T - Theta_hat||`` in Frobenius and operator norm (Section 4, Theorem 12).

    ``U V^T - Theta_hat = Phi1 (U1 V^T - S^{-1} W^T Y) + Phi2 U2 V^T`` with ``U2 V^T = K_V^T``;
    ``Phi`` is orthogonal, so both norms are those of the stacked ``n x m`` matrix.
    """
    top = product - theta_hat_reduced
    bottom = np.swapaxes(K_V, -1, -2)
    stacked = np.concatenate([top, bottom], axis=-2)
    fro = np.sqrt(np.sum(stacked**2, axis=(-2, -1)))
    gram = np.swapaxes(stacked, -1, -2) @ stacked  # m x m
    op = np.sqrt(np.maximum(np.linalg.eigvalsh(gram)[..., -1], 0.0))
    return fro, op


def lemma11_orthogonality_bound(m: int, n: int, r: int, h: float, alpha: float, delta: float) -> float:
    """Lemma 11: ``||K(0)||_F <= 2 sqrt(m+r) (sqrt(m+n) + 1/2 log(2/delta)) / h^{2 alpha - 1/2}``."""
    return 2.0 * np.sqrt(m + r) * (np.sqrt(m + n) + 0.5 * np.log(2.0 / delta)) / h ** (2 * alpha - 0.5)


#: Theorem 12's range of the initialization exponent: ``1/4 < alpha <= 1/2``.
THEOREM12_ALPHA = (0.25, 0.5)


def theorem12_applies(alpha) -> np.ndarray:
    """Whether Theorem 12 covers the Gaussian initialization ``N(0, h^{-2 alpha})``: ``1/4 < alpha <= 1/2``."""
    alpha = np.asarray(alpha, dtype=float)
    return (alpha > THEOREM12_ALPHA[0]) & (alpha <= THEOREM12_ALPHA[1])


def theorem12_outside_note(alpha: float) -> str:
    """Why a Theorem 12 quantity is NaN at ``alpha`` (an attribute of the NaN it explains)."""
    return (f"NaN: alpha = {float(alpha):g} is outside Theorem 12's range 1/4 < alpha <= 1/2, "
            "where the theorem gives no bound")


def theorem12_bound(
    lam_1: float, lam_r: float, y_fro: float, m: int, n: int, r: int, h: float, alpha: float, delta: float
) -> float:
    """Theorem 12: w.p. ``1 - delta`` the end point satisfies ``||U V^T - Theta_hat||_2 <=``
    ``2 exp(1 + lam_1^{1/2} ||Y||_F / (lam_r h^{1-2 alpha})) sqrt(m+r) (sqrt(m+n) + 1/2 log(2/delta)) / h^{2 alpha - 1/2}``.

    The constant is reconstructed from the proof chain (E.14)-(E.17) of the paper's appendix E, see docs/theory.md, section 6 (the four steps of the proof chain).
    NaN outside the theorem's range ``1/4 < alpha <= 1/2`` (:func:`theorem12_applies`).
    """
    if not theorem12_applies(alpha):
        return float("nan")
    growth = np.exp(1.0 + np.sqrt(lam_1) * y_fro / (lam_r * h ** (1.0 - 2.0 * alpha)))
    return float(growth * lemma11_orthogonality_bound(m, n, r, h, alpha, delta))


def theory_exponent(alpha):
    """Theorem 12's decay exponent of the distance in the width: ``-(2 alpha - 1/2)``; NaN where
    ``alpha`` is outside the theorem's range ``1/4 < alpha <= 1/2``."""
    alpha = np.asarray(alpha, dtype=float)
    return np.where(theorem12_applies(alpha), -(2.0 * alpha - 0.5), np.nan)
