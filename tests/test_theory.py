"""The paper's quantities (theory.py) against direct computations on explicit weights."""

import numpy as np
import pytest

from linflow import state, theory
from conftest import random_problem


def explicit_imbalance(problem, U, V):
    U1 = problem.Phi1.T @ U
    return U1.T @ U1 - V.T @ V


@pytest.mark.parametrize("N,n,m,h", [(5, 9, 2, 13), (3, 7, 4, 6), (6, 6, 1, 20)])
def test_reduction_reproduces_loss_and_min_norm(rng, N, n, m, h):
    X, Y = random_problem(rng, N, n, m)
    p = theory.reduce_problem(X, Y)
    U, V = rng.standard_normal((n, h)), rng.standard_normal((m, h))
    E = theory.residual(p.s, p.Yt, p.Phi1.T @ U @ V.T)
    loss = 0.5 * np.linalg.norm(Y - X @ U @ V.T) ** 2
    assert theory.excess_loss(E) + p.loss_star == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(p.theta_hat, np.linalg.pinv(X) @ Y, atol=1e-10)


@pytest.mark.parametrize("m,h", [(2, 13), (4, 3), (1, 30)])
def test_imbalance_spectrum_matches_explicit_D(rng, m, h):
    X, Y = random_problem(rng, 5, 9, m)
    p = theory.reduce_problem(X, Y)
    U, V = rng.standard_normal((9, h)), rng.standard_normal((m, h))
    D = explicit_imbalance(p, U, V)
    full = np.sort(np.linalg.eigvalsh(D))[::-1]
    compressed = state.compress(p, U, V)
    small = theory.imbalance_eigenvalues(compressed.Zc, m)
    nonzero = lambda v: np.sort(v[np.abs(v) > 1e-9 * np.abs(v).max()])
    np.testing.assert_allclose(nonzero(small), nonzero(full), rtol=1e-10, atol=1e-10)
    # Deltas from the padded small spectrum equal those from the full h x h spectrum.
    np.testing.assert_allclose(theory.imbalance_deltas(small, m, p.r), theory.imbalance_deltas(full, m, p.r),
                               atol=1e-10)


def test_instantaneous_rate_matches_gradient_norms(rng):
    """-dL/dt along the flow equals the squared norm of the raw gradients."""
    X, Y = random_problem(rng, 4, 10, 3)
    p = theory.reduce_problem(X, Y)
    U, V = rng.standard_normal((10, 7)), rng.standard_normal((3, 7))
    R = Y - X @ U @ V.T
    grad_sq = np.linalg.norm(X.T @ R @ V) ** 2 + np.linalg.norm(R.T @ X @ U) ** 2
    E = theory.residual(p.s, p.Yt, p.Phi1.T @ U @ V.T)
    c = state.compress(p, U, V)
    rate = theory.loss_decrease_rate(p.s, E, c.Zc[:3], c.Zc[3:])
    assert rate == pytest.approx(grad_sq, rel=1e-11)


def test_prop1_limits():
    """D = 0 gives 2 lam_r s_min (r != m) or 4 lam_r s_min (r = m); U1 V^T = 0 gives 2 lam_r Delta."""
    product = np.diag([3.0, 2.0])
    assert theory.prop1_rate_bound(0.5, 0.0, 0.0, 0.0, product, 2, 2) == pytest.approx(0.5 * 4 * 2.0)
    tall = np.array([[3.0], [0.0], [0.0]])  # r = 3, m = 1
    assert theory.prop1_rate_bound(0.5, 0.0, 0.0, 0.0, tall, 1, 3) == pytest.approx(0.5 * 2 * 3.0)
    assert theory.prop1_rate_bound(0.5, 1.0, 2.0, 0.7, np.zeros((3, 2)), 2, 3) == pytest.approx(2 * 0.5 * 0.7)


def test_theorem12_bound_decays_with_the_theory_exponent():
    args = dict(lam_1=2.0, lam_r=0.3, y_fro=0.5, m=1, n=500, r=100, alpha=0.5, delta=0.1)
    b1, b2 = theory.theorem12_bound(h=1e4, **args), theory.theorem12_bound(h=1e6, **args)
    # For alpha = 1/2 the exponential factor is constant in h, so the bound is exactly h^-1/2.
    assert b2 / b1 == pytest.approx(0.1, rel=1e-12)
    assert theory.theory_exponent(0.375) == pytest.approx(-0.25)
