"""Initializations of ``U`` (n x h) and ``V`` (m x h), explicit or width-independent.

Explicit initializations return weight arrays ``(U0, V0)``. The Wishart sampler returns a
:class:`CompressedInit`: a width-``(m + r)`` network with exactly the same gradient-flow
trajectory in every quantity the paper studies (THEORY.md, "A width-independent exact
formulation"), so its cost does not depend on ``h``.
"""

from __future__ import annotations

import numpy as np

from .state import CompressedInit
from .theory import ReducedProblem

INIT_KINDS = ("gaussian", "scaled", "balanced", "invariant")
SAMPLING_KINDS = ("explicit", "wishart", "auto")


def check_width(h) -> int:
    if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1:
        raise ValueError(f"width must be a positive integer, got {h!r}")
    return int(h)


def check_alpha(alpha) -> float:
    """Theorem 12 needs ``1/4 < alpha <= 1/2``."""
    if not (isinstance(alpha, (int, float, np.floating)) and 0.25 < alpha <= 0.5):
        raise ValueError(f"alpha must lie in (1/4, 1/2] (Theorem 12), got {alpha!r}")
    return float(alpha)


def gaussian_std(h: int, alpha: float) -> float:
    """Standard deviation ``h^{-alpha}`` of the Gaussian initialization of Lemma 11 / Theorem 12."""
    return float(check_width(h)) ** (-check_alpha(alpha))


def gaussian(n: int, m: int, h: int, alpha: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Entries of ``U`` and ``V`` iid ``N(0, h^{-2 alpha})`` (Lemma 11 / Theorem 12)."""
    std = gaussian_std(h, alpha)
    return std * rng.standard_normal((n, h)), std * rng.standard_normal((m, h))


def scaled(n: int, m: int, h: int, a: float, b: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``U(0) = a U0``, ``V(0) = b V0`` with standard normal ``U0``, ``V0`` (Fig. 3/6)."""
    h = check_width(h)
    for name, value in (("a", a), ("b", b)):
        if not np.isfinite(value):
            raise ValueError(f"scale {name} must be finite, got {value!r}")
    return a * rng.standard_normal((n, h)), b * rng.standard_normal((m, h))


def _orthonormal_rows(q: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random ``q x h`` matrix with orthonormal rows (``q <= h``)."""
    Q, R = np.linalg.qr(rng.standard_normal((h, q)))
    return (Q * np.sign(np.diag(R))).T


def balanced(problem: ReducedProblem, U0: np.ndarray, V0: np.ndarray, rng: np.random.Generator):
    """Balanced initialization with the same ``U1(0) V(0)^T`` as ``(U0, V0)`` and ``D = 0``.

    With ``U1 V^T = P Sigma Q^T``: ``U1 = P Sigma^{1/2} O``, ``V = Q Sigma^{1/2} O`` for ``O``
    with orthonormal rows, and ``U2 = 0``. The initial loss, error and end-to-end map on the
    data are those of ``(U0, V0)``; the imbalance of Section 3.2 is exactly zero. (The paper
    does not say how its balanced run of Fig. 3 was built; this is our reading.)
    """
    h = U0.shape[1]
    P, sigma, Qt = np.linalg.svd(problem.Phi1.T @ U0 @ V0.T, full_matrices=False)
    q = sigma.size
    if h < q:
        raise ValueError(f"balanced initialization needs width >= min(m, r) = {q}, got {h}")
    O = _orthonormal_rows(q, h, rng)
    root = np.sqrt(sigma)[:, None] * O
    return problem.Phi1 @ (P @ root), Qt.T @ root


def invariant(problem: ReducedProblem, U0: np.ndarray) -> np.ndarray:
    """Project ``U0`` onto the row space of ``X`` (``U2(0) = 0``): then ``V U2^T = 0`` and
    ``U1 U2^T = 0``, the invariant set of Proposition 10, and the flow ends at ``Theta_hat``."""
    return problem.Phi1 @ (problem.Phi1.T @ U0)


def wishart(
    m: int, r: int, n_minus_r: int, h: int, std: float, rng: np.random.Generator
) -> CompressedInit:
    """Sample the Gram factor of iid ``N(0, std^2)`` weights directly (Bartlett decomposition).

    ``[V0; Phi1^T U0]`` has a Wishart Gram matrix with ``h`` degrees of freedom; its Cholesky
    factor has ``std * chi(h - i)`` on the diagonal (i = 0, 1, ...) and ``std * N(0, 1)`` below,
    and ``(Phi2^T U0) Q`` is iid ``N(0, std^2)`` independent of it. Cost independent of ``h``.
    """
    h = check_width(h)
    k = m + r
    if h < k:
        raise ValueError(f"Wishart sampling needs width >= m + r = {k}, got {h}; use explicit sampling")
    L = np.tril(rng.standard_normal((k, k)), -1)
    L[np.diag_indices(k)] = np.sqrt(rng.chisquare(h - np.arange(k)))
    U2c = rng.standard_normal((n_minus_r, k))
    return CompressedInit(Zc=std * L, U2c=std * U2c, width=h)


def initialize(
    kind: str,
    problem: ReducedProblem,
    h: int,
    rng: np.random.Generator,
    *,
    alpha: float | None = None,
    a: float | None = None,
    b: float | None = None,
    sampling: str = "auto",
    wishart_min_width: int = 20_000,
):
    """Build an initialization of :data:`INIT_KINDS` for the reduced ``problem``.

    Returns ``(U0, V0)`` arrays, or a :class:`CompressedInit` when ``kind == "gaussian"`` and
    ``sampling`` is ``"wishart"`` (or ``"auto"`` with ``h >= wishart_min_width``).
    ``gaussian``/``invariant`` need ``alpha``; ``scaled``/``balanced`` need ``a`` and ``b``.
    """
    h = check_width(h)
    if kind not in INIT_KINDS:
        raise ValueError(f"unknown init {kind!r}; allowed: {', '.join(INIT_KINDS)}")
    if sampling not in SAMPLING_KINDS:
        raise ValueError(f"unknown sampling {sampling!r}; allowed: {', '.join(SAMPLING_KINDS)}")
    n, m, r = problem.n, problem.m, problem.r
    if kind in ("gaussian", "invariant"):
        if alpha is None:
            raise ValueError(f"init {kind!r} needs alpha in (1/4, 1/2]")
        use_wishart = kind == "gaussian" and (
            sampling == "wishart" or (sampling == "auto" and h >= max(wishart_min_width, m + r))
        )
        if use_wishart:
            return wishart(m, r, n - r, h, gaussian_std(h, alpha), rng)
        if sampling == "wishart":
            raise ValueError("sampling 'wishart' is only available for the gaussian init")
        U0, V0 = gaussian(n, m, h, alpha, rng)
        return (invariant(problem, U0), V0) if kind == "invariant" else (U0, V0)
    if a is None or b is None:
        raise ValueError(f"init {kind!r} needs the scales a and b")
    if sampling == "wishart":
        raise ValueError("sampling 'wishart' is only available for the gaussian init")
    U0, V0 = scaled(n, m, h, a, b, rng)
    return balanced(problem, U0, V0, rng) if kind == "balanced" else (U0, V0)
