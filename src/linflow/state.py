"""The width-independent state of a network: a factor of the Gram matrix of ``[V; U1]``.

A width-h network ``(U, V)`` enters gradient flow, gradient descent and SGD only through
``G = Z Z^T`` (``Z = [V; Phi1^T U]``) and ``K = Z U2^T`` (``U2 = Phi2^T U``, constant), see
docs/theory.md, section 2. :class:`CompressedInit` holds a factor of both;
:func:`compress` computes it exactly from explicit weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import qr, solve_triangular
from scipy.linalg.lapack import dpocon, dpotrf

from .theory import ReducedProblem


@dataclass(frozen=True)
class CompressedInit:
    """A factor of the initial state: ``G0 = Zc Zc^T`` and ``K0 = Zc U2c^T``.

    ``Zc`` is ``(m + r) x k`` (rows: ``V`` then ``U1``), ``U2c`` is ``(n - r) x k`` and
    ``width`` is the width ``h`` of the network it stands for.
    """

    Zc: np.ndarray
    U2c: np.ndarray
    width: int



def compress(problem: ReducedProblem, U: np.ndarray, V: np.ndarray) -> CompressedInit:
    """Exact factor of explicit weights with as many columns as ``rank(Z)`` (at most ``m + r``).

    ``Z = [V; Phi1^T U]`` and ``Z^T = Q R`` give ``Z = R^T Q^T``; since the flow acts on
    ``Z`` from the left (``dZ/dt = A(E) Z``), ``Zc = R^T`` and ``U2c = (Phi2^T U) Q`` carry
    the whole trajectory of ``G = Z Z^T`` and ``K = Z U2^T`` (docs/theory.md, section 2).
    A rank-deficient ``Z`` (the balanced initialization, Section 3.2) keeps only the columns
    of a column-pivoted QR above round-off, so its factor is as narrow as its rank.
    """
    Z = np.vstack([V, problem.Phi1.T @ U])
    k0, h = Z.shape
    if h > k0:
        # Z = L Q^T with G = Z Z^T = L L^T (Cholesky) and Q = Z^T L^-T: a third of the cost of a
        # QR of Z^T, and as accurate while G is well conditioned (LAPACK's estimate, no SVD).
        G = Z @ Z.T
        L, info = dpotrf(G, lower=1, clean=1)
        if info == 0 and dpocon(L, np.linalg.norm(G, 1), uplo="L")[0] > 1e-8:
            U2c = solve_triangular(L, (Z @ U.T) @ problem.Phi2, lower=True).T  # (Phi2^T U) Q
            return CompressedInit(Zc=L, U2c=U2c, width=h)
    # Z^T[:, piv] = Q R, so Z[piv] = R^T Q^T; columns of Q beyond the numerical rank only carry round-off.
    Q, R, piv = qr(Z.T, mode="economic", pivoting=True)
    diag = np.abs(np.diag(R))
    q = int(np.count_nonzero(diag > max(h, k0) * np.finfo(float).eps * diag[0])) if diag[0] > 0 else 0
    if h <= k0 and q == h:  # full column rank already: Z itself is the narrowest exact factor
        return CompressedInit(Zc=Z, U2c=problem.Phi2.T @ U, width=h)
    q = max(q, 1)  # a zero state still needs one (zero) column
    Zc = np.empty((k0, q))
    Zc[piv] = R[:q].T
    # Phi2^T (U Q) costs n h q, not the (n - r) n h of forming Phi2^T U first.
    return CompressedInit(Zc=Zc, U2c=problem.Phi2.T @ (U @ Q[:, :q]), width=h)
