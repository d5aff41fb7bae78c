"""Initializations: the width-independent (Wishart) samplers have the law of the explicit ones,
for every family; one sampling decision; explicit weights that cannot fit are refused."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import digamma

from linflow import init, resources, state, theory
from linflow.state import CompressedInit
from conftest import random_problem


def statistics(c: CompressedInit, m: int) -> np.ndarray:
    """Moments of the state that the simulation sees: blocks of G = Zc Zc^T and ||K||^2."""
    G = c.Zc @ c.Zc.T
    K = c.Zc @ c.U2c.T
    return np.array([np.trace(G[:m, :m]), np.trace(G[m:, m:]), np.sum(G[m:, :m] ** 2), np.sum(K**2),
                     np.sum(K[:m] ** 2)])


@pytest.mark.parametrize("kind,options", [
    ("gaussian", dict(alpha=0.4)), ("invariant", dict(alpha=0.5)), ("scaled", dict(a=0.7, b=1.3)),
    ("balanced", dict(a=0.7, b=1.3)),
])
def test_wishart_sampling_has_the_law_of_explicit_sampling(kind, options):
    rng = np.random.default_rng(4)
    X, Y = random_problem(rng, 3, 6, 2)  # r = 3, k = m + r = 5, n - r = 3
    problem = theory.reduce_problem(X, Y)
    h, samples = 9, 3000
    draws = {}
    for sampling in ("explicit", "wishart"):
        stats = []
        for i in range(samples):
            start = init.initialize(kind, problem, h, np.random.default_rng([i, 7 if sampling == "wishart" else 8]),
                                    sampling=sampling, **options)
            compressed = start if isinstance(start, CompressedInit) else state.compress(problem, *start)
            stats.append(statistics(compressed, problem.m))
        draws[sampling] = np.array(stats)
    assert isinstance(init.initialize(kind, problem, h, rng, sampling="wishart", **options), CompressedInit)
    mean = {s: d.mean(axis=0) for s, d in draws.items()}
    se = np.sqrt(draws["explicit"].var(axis=0) / samples + draws["wishart"].var(axis=0) / samples)
    scale = np.abs(mean["explicit"][:3]).max()  # K = 0 up to round-off for invariant and balanced
    close = np.abs(mean["explicit"] - mean["wishart"]) <= 4 * se + 1e-12 * scale
    assert close.all(), (mean, se)
    if kind in ("invariant", "balanced"):
        assert np.all(draws["wishart"][:, 3] == 0)  # K = Z U2(0)^T = 0: Proposition 10's invariant set


def test_bartlett_factor_has_the_wishart_log_determinant():
    """E[log det W] = sum_i psi((h - i)/2) + k log 2 for W ~ Wishart_k(h, I): at h = k + 1 this
    separates chi(h - i) on the diagonal from chi(h) everywhere (a degrees-of-freedom error)."""
    k, h, samples = 5, 6, 20000
    rng = np.random.default_rng(0)
    logdet = np.array([2 * np.sum(np.log(np.diag(init.bartlett_factor(k, h, rng)))) for _ in range(samples)])
    expected = sum(digamma((h - i) / 2) for i in range(k)) + k * np.log(2)
    assert abs(logdet.mean() - expected) < 4 * logdet.std() / np.sqrt(samples)
    wrong = sum(digamma(h / 2) for _ in range(k)) + k * np.log(2)
    assert abs(wrong - expected) > 20 * logdet.std() / np.sqrt(samples)  # the test can tell them apart


def test_wishart_state_has_the_right_scale_in_every_block():
    """E[G] = h std^2 I, E[||U2c||^2] = (n - r) k std^2 (the K part), for the Gaussian init."""
    m, r, n_minus_r, h, std = 1, 3, 4, 12, 0.3
    rng = np.random.default_rng(1)
    draws = [init.wishart(m, r, n_minus_r, h, std, rng) for _ in range(4000)]
    mean_G = np.mean([d.Zc @ d.Zc.T for d in draws], axis=0)
    np.testing.assert_allclose(mean_G, h * std**2 * np.eye(m + r), atol=0.08 * h * std**2)
    u2 = np.array([np.sum(d.U2c**2) for d in draws])
    assert abs(u2.mean() - n_minus_r * (m + r) * std**2) < 4 * u2.std() / np.sqrt(u2.size)
    scaled = init.scaled_wishart(m, r, n_minus_r, h, 2.0, 0.5, np.random.default_rng(2))
    assert scaled.Zc.shape == (m + r, m + r) and np.allclose(scaled.Zc[:m], 0.5 * init.bartlett_factor(
        m + r, h, np.random.default_rng(2))[:m])


def test_balanced_state_has_zero_imbalance_and_the_scaled_product():
    rng = np.random.default_rng(3)
    X, Y = random_problem(rng, 4, 9, 2)
    problem = theory.reduce_problem(X, Y)
    c = init.initialize("balanced", problem, 10**9, rng, a=0.1, b=0.2)
    assert c.Zc.shape == (problem.m + problem.r, min(problem.m, problem.r))  # rank-many columns
    eigenvalues = theory.imbalance_eigenvalues(c.Zc, problem.m)
    assert np.abs(eigenvalues).max() < 1e-12 * np.sum(c.Zc**2)
    assert np.all(c.U2c == 0)


def test_one_sampling_decision():
    assert not resources.uses_wishart("auto", 19_999, 20_000, 101)
    assert resources.uses_wishart("auto", 20_000, 20_000, 101)
    assert not resources.uses_wishart("auto", 100, 50, 101)  # the Bartlett factor needs h >= m + r
    assert resources.uses_wishart("wishart", 101, 20_000, 101)
    with pytest.raises(ValueError, match="needs width >= m \\+ r = 101"):
        resources.uses_wishart("wishart", 100, 20_000, 101)
    problem = theory.reduce_problem(*random_problem(np.random.default_rng(0), 5, 12, 1))
    for kind, options in (("scaled", dict(a=1, b=1)), ("invariant", dict(alpha=0.5)), ("balanced", dict(a=1, b=1))):
        assert isinstance(init.initialize(kind, problem, 30_000, np.random.default_rng(0), **options), CompressedInit)
        assert isinstance(init.initialize(kind, problem, 19_999, np.random.default_rng(0), **options), tuple)


def test_explicit_weights_that_cannot_fit_are_refused():
    problem = theory.reduce_problem(*random_problem(np.random.default_rng(0), 5, 12, 1))
    with pytest.raises(ValueError, match=r"width 1000000 .* needs about [0-9.e+]+ bytes, more than the 1e\+06"):
        init.initialize("scaled", problem, 10**6, np.random.default_rng(0), a=1, b=1, sampling="explicit",
                        available_memory=10**6)
    estimate = init.memory_bytes({"sampling": "explicit", "method": "flow"}, problem, 10**6)
    assert 8 * 10**6 * (problem.n + problem.m) < estimate < 8 * 10**6 * 10 * (problem.n + problem.m)
