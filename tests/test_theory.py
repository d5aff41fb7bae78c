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
    def nonzero(v):
        return np.sort(v[np.abs(v) > 1e-9 * np.abs(v).max()])

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


def test_theorem12_growth_factor_depends_on_the_width_below_alpha_one_half():
    """At alpha = 3/8 the factor exp(1 + lam_1^(1/2) ||Y|| / (lam_r h^(1 - 2 alpha))) shrinks with h."""
    args = dict(lam_1=2.0, lam_r=0.3, y_fro=0.5, m=1, n=500, r=100, alpha=0.375, delta=0.1)
    b1, b2 = theory.theorem12_bound(h=1e4, **args), theory.theorem12_bound(h=1e8, **args)
    # h^(1 - 2 alpha) = h^(1/4): 10 and 100; h^-(2 alpha - 1/2) = h^(-1/4): 0.1 and 0.01.
    def growth(root):
        return np.exp(1 + np.sqrt(2.0) * 0.5 / (0.3 * root))

    constant = 2 * np.sqrt(101) * (np.sqrt(501) + 0.5 * np.log(20))
    assert b1 == pytest.approx(growth(10) * constant * 0.1, rel=1e-12)
    assert b2 == pytest.approx(growth(100) * constant * 0.01, rel=1e-12)
    assert theory.lemma11_orthogonality_bound(1, 500, 100, 1e4, 0.375, 0.1) == pytest.approx(constant * 0.1)


def test_theorem3_constant_and_corollaries_on_known_cases():
    # No imbalance: c = 2 mu_m / sqrt(lam_1) + 2 mu_r / sqrt(lam_1).
    assert theory.theorem3_c(0.0, 0.0, 0.0, 0.6, 0.3, 4.0) == pytest.approx(2 * 0.3 + 2 * 0.15)
    # No margin: c = -D+ + (D+ + D) - D- + (D- + D) = 2 D, Corollary 4's rate / lam_r.
    c = theory.theorem3_c(1.0, 0.5, 2.0, 0.0, 0.0, 4.0)
    assert c == pytest.approx(4.0)
    assert theory.corollary4_rate(0.25, 2.0) == pytest.approx(0.25 * c) == 1.0
    # Both: -1 + sqrt(9 + 4 * 4 / 4) - 0.5 + sqrt(6.25 + 4 * 1 / 4).
    assert theory.theorem3_c(1.0, 0.5, 2.0, 2.0, 1.0, 4.0) == pytest.approx(-1 + np.sqrt(13) - 0.5 + np.sqrt(7.25))
    t = np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(theory.theorem3_loss_bound(t, 3.0, 0.5, 4.0), 3.0 * np.exp(-2.0 * t), rtol=1e-15)
    Yt = np.array([[3.0], [0.0], [0.0]])  # r = 3, m = 1: s_1 = 3, s_3 = 0
    assert theory.corollary6_c(0.0, 0.0, 0.0, Yt, 1.0, 1, 3) == pytest.approx(2 * 3.0)


def test_margins_on_known_cases():
    Yt = np.diag([3.0, 1.0])  # r = m = 2
    E = np.array([[0.3, 0.0], [0.0, 0.4]])  # ||E||_F = 0.5
    mu_m, mu_r = theory.margins(Yt, E, 2, 2)
    assert (float(mu_m), float(mu_r)) == pytest.approx((0.5, 0.5))
    mu_m, mu_r = theory.margins(np.array([[3.0], [0.0], [0.0]]), np.array([[1.0], [0.0], [0.0]]), 1, 3)
    assert (float(mu_m), float(mu_r)) == pytest.approx((2.0, 0.0))  # s_3 of a 3 x 1 matrix is 0
    mu_m, _ = theory.margins(Yt, 4 * E, 2, 2)
    assert float(mu_m) == 0.0  # clipped at 0


def test_imbalance_deltas_on_a_known_spectrum():
    # D's nonzero spectrum 5, 2, -1, -3 with m = 2, r = 2 (and zeros beyond).
    dp, dm, du = theory.imbalance_deltas(np.array([5.0, 2.0, 0.0, -1.0, -3.0]), 2, 2)
    assert (float(dp), float(dm), float(du)) == (3.0, 2.0, 3.0)
    dp, dm, du = theory.imbalance_deltas(np.array([4.0, -1.0]), 1, 3)  # r = 3 > positive count: l_r = 0
    assert (float(dp), float(dm), float(du)) == (4.0, 0.0, 1.0)


def test_small_gram_forms_match_the_direct_formulas():
    """kth_singular_value (a norm for one row or column) and loss_decrease_rate (m x m
    Gram form of ||S E V||^2) against the SVD and the matrix products they replace."""
    rng = np.random.default_rng(3)
    for shape in [(7, 3), (3, 7), (7, 1), (1, 5), (4, 4)]:
        M = rng.standard_normal((6,) + shape)
        sv = np.linalg.svd(M, compute_uv=False)
        for k in range(1, max(shape) + 2):
            expected = sv[:, k - 1] if k <= min(shape) else np.zeros(6)
            np.testing.assert_allclose(theory.kth_singular_value(M, k), expected, rtol=1e-10, atol=1e-12)
    r, m, k = 5, 3, 8
    s = rng.uniform(0.5, 2.0, r)
    E, Vc, U1c = rng.standard_normal((4, r, m)), rng.standard_normal((4, m, k)), rng.standard_normal((4, r, k))
    SE = s[:, None] * E
    direct = np.sum((SE @ Vc) ** 2, axis=(1, 2)) + np.sum((np.swapaxes(U1c, 1, 2) @ SE) ** 2, axis=(1, 2))
    np.testing.assert_allclose(theory.loss_decrease_rate(s, E, Vc, U1c), direct, rtol=1e-12)
