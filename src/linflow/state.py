"""The width-independent state of a network: a factor of the Gram matrix of ``[V; U1]``.

A width-h network ``(U, V)`` enters gradient flow, gradient descent and SGD only through
``G = Z Z^T`` (``Z = [V; Phi1^T U]``) and ``K = Z U2^T`` (``U2 = Phi2^T U``, constant), THEORY.md
"A width-independent exact formulation". :class:`CompressedInit` holds a factor of both;
:func:`compress` computes it exactly from explicit weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_triangular

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
    """Exact width-``min(h, m + r)`` factor of explicit weights.

    ``Z = [V; Phi1^T U]`` and ``Z^T = Q R`` give ``Z = R^T Q^T``; since the flow acts on
    ``Z`` from the left (``dZ/dt = A(E) Z``), ``Zc = R^T`` and ``U2c = (Phi2^T U) Q`` carry
    the whole trajectory of ``G = Z Z^T`` and ``K = Z U2^T``.
    """
    Z = np.vstack([V, problem.Phi1.T @ U])
    h = Z.shape[1]
    if h <= Z.shape[0]:
        return CompressedInit(Zc=Z, U2c=problem.Phi2.T @ U, width=h)
    # Z = L Q^T with G = Z Z^T = L L^T (Cholesky) and Q = Z^T L^-T: a third of the cost of a
    # QR of Z^T, and as accurate while G is well conditioned; QR otherwise.
    G = Z @ Z.T
    if np.linalg.cond(G) < 1e8:
        L = np.linalg.cholesky(G)
        U2c = solve_triangular(L, (Z @ U.T) @ problem.Phi2, lower=True).T  # (Phi2^T U) Q
        return CompressedInit(Zc=L, U2c=U2c, width=h)
    Q, R = np.linalg.qr(Z.T)
    # Phi2^T (U Q) costs n h k, not the (n - r) n h of forming Phi2^T U first.
    return CompressedInit(Zc=R.T.copy(), U2c=problem.Phi2.T @ (U @ Q), width=h)
