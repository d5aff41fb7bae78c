"""Synthetic data of the paper's experiments (Appendix A), deterministic from a generator.

All functions take a ``numpy.random.Generator`` and return float64 arrays ``X`` (N x n)
and ``Y`` (N x m). Real data (a NetCDF / ``.npz`` file, or scikit-learn's bundled datasets):
:func:`load`, from :mod:`linflow.realdata`.
"""

from __future__ import annotations

import numpy as np

from . import parameters as P
from .realdata import DataError, LoadedData, load  # noqa: F401  (the notebook API: linflow.data.load)

DATA_KINDS = P.DATA_KINDS


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def factorization_inputs(n: int) -> np.ndarray:
    """Matrix factorization (Fig. 2/4/5): ``X = I_n``.

    The paper's normalisation ``(m h)^{-1/2}`` depends on the width, so it is applied by the
    simulator (``output_scale="inverse_sqrt_mh"``), which makes the effective input
    ``(m h)^{-1/2} I_n`` as in Appendix A.
    """
    return np.eye(_check_positive_int("n", n))


def orthonormal_row_inputs(N: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``X`` with orthonormal rows (all nonzero singular values 1), from a Gaussian matrix (Fig. 3/6)."""
    N, n = _check_positive_int("N", N), _check_positive_int("n", n)
    if N > n:
        raise ValueError(f"orthonormal_rows needs N <= n, got N={N}, n={n}")
    q, _ = np.linalg.qr(rng.standard_normal((n, N)))
    return q.T.copy()


def gaussian_inputs(N: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``X`` with iid ``N(0, 1/n)`` entries (Fig. 7, Theorem 12)."""
    N, n = _check_positive_int("N", N), _check_positive_int("n", n)
    return rng.standard_normal((N, n)) / np.sqrt(n)


def conditioned_inputs(N: int, n: int, condition_number: float, rng: np.random.Generator) -> np.ndarray:
    """``X = W diag(s) Phi^T`` with Haar-random ``W``, ``Phi`` and singular values log-spaced
    from 1 down to ``1/condition_number``, so ``lam_1/lam_r = condition_number^2``."""
    N, n = _check_positive_int("N", N), _check_positive_int("n", n)
    if not np.isfinite(condition_number) or condition_number < 1:
        raise ValueError(f"condition_number must be a finite number >= 1, got {condition_number!r}")
    r = min(N, n)
    s = np.logspace(0.0, -np.log10(condition_number), r)
    W, _ = np.linalg.qr(rng.standard_normal((N, r)))
    Phi, _ = np.linalg.qr(rng.standard_normal((n, r)))
    return (W * s) @ Phi.T


def separated_target(n: int, m: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """``theta0 = Q1 diag(s) Q2^T`` (n x m) with singular values ``s_i ~ decay^-i`` scaled to
    ``||theta0||_F^2 = m`` (the Gaussian ``theta0``'s mean) and random orthonormal singular
    vectors (QR factors of Gaussian matrices)."""
    if not np.isfinite(decay) or decay < 1:
        raise ValueError(f"target_decay must be a finite number >= 1, got {decay!r}")
    if m > n:
        raise ValueError(f"target_decay needs m <= n (m singular values of the n x m theta0), got m = {m}, n = {n}")
    s = decay ** -np.arange(m, dtype=float)
    s *= np.sqrt(m) / np.linalg.norm(s)
    Q1, _ = np.linalg.qr(rng.standard_normal((n, m)))
    Q2, _ = np.linalg.qr(rng.standard_normal((m, m)))
    return (Q1 * s) @ Q2.T


def linear_targets(X: np.ndarray, m: int, noise: float, rng: np.random.Generator,
                   target_decay: float | None = None) -> np.ndarray:
    """``Y = X theta0 + eps`` with ``eps ~ N(0, noise^2)`` and ``theta0 ~ N(0, I/n)`` (n x m,
    Appendix A) or, with ``target_decay``, the separated spectrum of :func:`separated_target`."""
    m = _check_positive_int("m", m)
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    N, n = X.shape
    if target_decay is None:
        theta0 = rng.standard_normal((n, m)) / np.sqrt(n)
    else:
        theta0 = separated_target(n, m, target_decay, rng)
    return X @ theta0 + noise * rng.standard_normal((N, m))


def gaussian_targets(N: int, m: int, variance: float, rng: np.random.Generator) -> np.ndarray:
    """Iid ``N(0, variance)`` targets (the factorization experiments; variance 0.1 in Appendix A)."""
    if not np.isfinite(variance) or variance < 0:
        raise ValueError(f"target_variance must be a finite number >= 0, got {variance!r}")
    return np.sqrt(variance) * rng.standard_normal((_check_positive_int("N", N), _check_positive_int("m", m)))


def make_dataset(
    kind: str,
    *,
    n: int,
    m: int,
    N: int | None = None,
    noise: float = P.default("noise"),
    target_variance: float = P.default("target_variance"),
    condition_number: float = P.default("condition_number"),
    target_decay: float | None = None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Build ``(X, Y)`` for one of :data:`DATA_KINDS`.

    ``factorization``: ``X = I_n`` (so ``N = n``) and iid Gaussian ``Y`` with
    ``target_variance``; the other kinds use :func:`linear_targets` with ``noise``.
    """
    if kind == "factorization":
        X = factorization_inputs(n)
        return X, gaussian_targets(X.shape[0], m, target_variance, rng)
    if N is None:
        raise ValueError(f"data kind {kind!r} needs the number of samples N")
    if kind == "orthonormal_rows":
        X = orthonormal_row_inputs(N, n, rng)
    elif kind == "gaussian":
        X = gaussian_inputs(N, n, rng)
    elif kind == "conditioned":
        X = conditioned_inputs(N, n, condition_number, rng)
    else:
        raise ValueError(f"unknown data kind {kind!r}; allowed: {', '.join(DATA_KINDS)}")
    return X, linear_targets(X, m, noise, rng, target_decay)
