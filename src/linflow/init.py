"""Initializations of ``U`` (n x h) and ``V`` (m x h), explicit or width-independent.

Explicit initializations return weight arrays ``(U0, V0)``. The Wishart samplers return a
:class:`CompressedInit`: a width-``(m + r)`` network (or narrower, for the rank-deficient
balanced state) with exactly the same gradient-flow trajectory in every quantity the paper
studies (docs/theory.md, sections 2 and 3), so their cost does not depend
on ``h``. Every family has both samplers, with the same distribution.
"""

from __future__ import annotations

import numpy as np

from . import parameters as P
from . import resources
from .state import CompressedInit
from .theory import ReducedProblem

INIT_KINDS = P.INIT_KINDS


def check_width(h) -> int:
    if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1:
        raise ValueError(f"width must be a positive integer, got {h!r}")
    return int(h)


def gaussian_std(h: int, alpha: float) -> float:
    """Standard deviation ``h^{-alpha}`` of the Gaussian initialization of Lemma 11 / Theorem 12."""
    return float(check_width(h)) ** (-P.check("alpha", alpha))


def gaussian(n: int, m: int, h: int, alpha: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Entries of ``U`` and ``V`` iid ``N(0, h^{-2 alpha})`` (Lemma 11 / Theorem 12)."""
    std = gaussian_std(h, alpha)
    return std * rng.standard_normal((n, h)), std * rng.standard_normal((m, h))


def scaled(n: int, m: int, h: int, a: float, b: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``U(0) = a U0``, ``V(0) = b V0`` with standard normal ``U0``, ``V0`` (Fig. 3/6)."""
    h = check_width(h)
    a, b = P.check("a", a), P.check("b", b)
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


def bartlett_factor(k: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Lower-triangular ``L`` with ``L L^T ~ Wishart_k(h, I)`` (Bartlett decomposition): the Gram
    factor of a ``k x h`` matrix of iid ``N(0, 1)`` entries, ``chi(h - i)`` on the diagonal
    (i = 0, 1, ...) and ``N(0, 1)`` below it. Needs ``h >= k``."""
    if h < k:
        raise ValueError(f"Wishart sampling needs width >= m + r = {k}, got {h}; use explicit sampling")
    L = np.tril(rng.standard_normal((k, k)), -1)
    L[np.diag_indices(k)] = np.sqrt(rng.chisquare(h - np.arange(k)))
    return L


def wishart(
    m: int, r: int, n_minus_r: int, h: int, std: float, rng: np.random.Generator
) -> CompressedInit:
    """Sample the Gram factor of iid ``N(0, std^2)`` weights directly (Bartlett decomposition).

    ``[V0; Phi1^T U0]`` has a Wishart Gram matrix with ``h`` degrees of freedom, with factor
    ``std * L`` (:func:`bartlett_factor`); ``U2c = (Phi2^T U0) Q`` is iid ``N(0, std^2)``,
    independent of it, because ``Q`` (orthonormal columns) is independent of the Gaussian
    ``Phi2^T U0``. Cost independent of ``h``.
    """
    return scaled_wishart(m, r, n_minus_r, check_width(h), std, std, rng)


def scaled_wishart(
    m: int, r: int, n_minus_r: int, h: int, a: float, b: float, rng: np.random.Generator
) -> CompressedInit:
    """Width-independent sample of ``U(0) = a U0``, ``V(0) = b V0`` (U0, V0 standard normal):
    ``Z = diag(b I_m, a I_r) [V0; Phi1^T U0]``, so ``Zc = diag(b, a) L`` and ``U2c = a N(0, 1)``."""
    L = bartlett_factor(m + r, check_width(h), rng)
    U2c = rng.standard_normal((n_minus_r, m + r))
    rows = np.concatenate([np.full(m, float(b)), np.full(r, float(a))])
    return CompressedInit(Zc=rows[:, None] * L, U2c=a * U2c, width=h)


def invariant_wishart(m: int, r: int, n_minus_r: int, h: int, std: float, rng: np.random.Generator):
    """Width-independent sample of :func:`invariant`: Gaussian ``[V; U1]`` and ``U2(0) = 0``, so ``K = 0``."""
    L = bartlett_factor(m + r, check_width(h), rng)
    return CompressedInit(Zc=std * L, U2c=np.zeros((n_minus_r, m + r)), width=h)


def _balanced_factor(m: int, product: np.ndarray, n_minus_r: int, h: int) -> CompressedInit:
    """Rank-``q`` factor of the balanced state with ``U1 V^T = product`` (r x m), ``q = rank``:
    ``Zc = [Q Sigma^{1/2}; P Sigma^{1/2}]`` with ``product = P Sigma Q^T``, and ``U2 = 0``."""
    P_, sigma, Qt = np.linalg.svd(product, full_matrices=False)
    root = np.sqrt(sigma)
    Zc = np.vstack([Qt.T * root, P_ * root])
    return CompressedInit(Zc=Zc, U2c=np.zeros((n_minus_r, Zc.shape[1])), width=h)


def balanced_wishart(m: int, r: int, n_minus_r: int, h: int, a: float, b: float, rng: np.random.Generator):
    """Width-independent sample of :func:`balanced`: the product ``U1(0) V(0)^T = a b (L L^T)_{UV}``
    of the scaled initialization, balanced (D = 0, U2 = 0) and carried by a rank-``min(m, r)`` factor."""
    L = bartlett_factor(m + r, check_width(h), rng)
    gram = L @ L.T
    return _balanced_factor(m, a * b * gram[m:, :m], n_minus_r, h)


def memory_bytes(params: dict, problem: ReducedProblem, h: int) -> int:
    """Estimated peak memory of a run with ``params`` on ``problem`` at width ``h`` (bytes)."""
    return resources.run_memory_bytes(params, n=problem.n, m=problem.m, rank=problem.r, width=h)


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
    available_memory: int | None = None,
):
    """Build an initialization of :data:`INIT_KINDS` for the reduced ``problem``.

    Returns ``(U0, V0)`` arrays (explicit sampling) or a :class:`CompressedInit` (Wishart
    sampling, width-independent), as :func:`linflow.resources.uses_wishart` decides from
    ``sampling`` and ``wishart_min_width``; the two have the same distribution for every kind.
    ``gaussian``/``invariant`` need ``alpha``; ``scaled``/``balanced`` need ``a`` and ``b``.
    Explicit sampling that would not fit in memory (``available_memory`` bytes, default: what
    the system reports) is refused before anything is allocated.
    """
    h = check_width(h)
    P.check("init", kind)
    sampling = P.check("sampling", sampling)
    wishart_min_width = P.check("wishart_min_width", wishart_min_width)
    n, m, r = problem.n, problem.m, problem.r
    if kind in P.ALPHA_INITS:
        if alpha is None:
            raise ValueError(f"init {kind!r} needs alpha, {P.PARAMETERS['alpha'].allowed()}")
        std = gaussian_std(h, alpha)
    elif a is None or b is None:
        raise ValueError(f"init {kind!r} needs the scales a and b")
    else:
        a, b = P.check("a", a), P.check("b", b)
    if resources.uses_wishart(sampling, h, wishart_min_width, m + r):
        if kind == "gaussian":
            return wishart(m, r, n - r, h, std, rng)
        if kind == "invariant":
            return invariant_wishart(m, r, n - r, h, std, rng)
        if kind == "scaled":
            return scaled_wishart(m, r, n - r, h, a, b, rng)
        return balanced_wishart(m, r, n - r, h, a, b, rng)
    params = {"sampling": sampling, "wishart_min_width": wishart_min_width, "method": "flow"}
    resources.check_fits(memory_bytes(params, problem, h),
                         f"init {kind!r} with explicit weights at width {h} (n = {n}, m = {m})", available_memory)
    if kind in P.ALPHA_INITS:
        U0, V0 = gaussian(n, m, h, alpha, rng)
        return (invariant(problem, U0), V0) if kind == "invariant" else (U0, V0)
    U0, V0 = scaled(n, m, h, a, b, rng)
    return balanced(problem, U0, V0, rng) if kind == "balanced" else (U0, V0)
