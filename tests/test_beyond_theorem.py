"""Initializations outside Theorem 12's range 1/4 < alpha <= 1/2: the theorem-only quantities
are NaN and say why, and small initializations (alpha = 1: a long plateau near the saddle at
zero, then an escape) are simulated exactly, along the time axis."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import linflow
from linflow import data, init, theory
from conftest import random_problem

BOUND_ARGS = dict(lam_1=2.0, lam_r=0.5, y_fro=1.0, m=1, n=10, r=4, h=1e4, delta=0.1)


@pytest.mark.parametrize("alpha,inside", [(0.1, False), (0.25, False), (0.2500001, True), (0.375, True),
                                          (0.5, True), (0.5000001, False), (1.0, False), (2.0, False)])
def test_theorem12_quantities_exist_exactly_inside_the_range(alpha, inside):
    bound = theory.theorem12_bound(alpha=alpha, **BOUND_ARGS)
    exponent = float(theory.theory_exponent(alpha))
    assert np.isfinite(bound) == inside and np.isfinite(exponent) == inside
    if inside:
        assert exponent == pytest.approx(-(2 * alpha - 0.5), abs=0)


def test_theory_exponent_is_elementwise():
    np.testing.assert_allclose(theory.theory_exponent([0.2, 0.3, 0.5, 0.75]), [np.nan, -0.1, -0.5, np.nan], rtol=1e-15)


def _small_init_problem(alpha=1.0, h=3000):
    rng = np.random.default_rng(7)
    X, Y = random_problem(rng, N=6, n=12, m=2)
    Y = Y @ np.diag([2.0, 0.5])  # well-separated target directions: learned one after the other
    U0, V0 = init.gaussian(n=12, m=2, h=h, alpha=alpha, rng=rng)
    return X, Y, U0, V0


def test_a_record_outside_the_range_has_nan_theorem12_bound_with_its_reason():
    X, Y, U0, V0 = _small_init_problem()
    run = linflow.simulate(X, Y, U0, V0, method="flow", alpha=1.0, max_time=50.0)
    assert np.isnan(run["theorem12_bound"].item())
    assert "outside Theorem 12's range" in run["theorem12_bound"].attrs["comment"]
    inside = linflow.simulate(X, Y, U0, V0, method="flow", alpha=0.5, max_time=50.0)
    assert np.isfinite(inside["theorem12_bound"].item()) and "comment" not in inside["theorem12_bound"].attrs


def test_small_initialization_flow_matches_explicit_weights_along_the_time_axis():
    """alpha = 1: the excess loss sits near its initial value (the saddle at zero), drops in two
    steps (one per target direction), and the exact flow follows the explicit-weights flow at
    every recorded time, plateaus and escapes included; so do the product's singular values."""
    X, Y, U0, V0 = _small_init_problem()
    n, h = U0.shape
    m = V0.shape[0]
    run = linflow.simulate(X, Y, U0, V0, method="flow", alpha=1.0, rtol=1e-12, atol=1e-16, max_time=1e3)
    assert run["status"].item() == "converged"
    times = run["time"].values

    def rhs(_t, y):  # dU/dt = X^T (Y - X U V^T) V, dV/dt = (Y - X U V^T)^T X U
        U, V = y[: n * h].reshape(n, h), y[n * h:].reshape(m, h)
        R = Y - X @ U @ V.T
        return np.concatenate([(X.T @ R @ V).ravel(), (R.T @ X @ U).ravel()])

    sol = solve_ivp(rhs, (0.0, times[-1]), np.concatenate([U0.ravel(), V0.ravel()]), method="DOP853",
                    t_eval=times, rtol=1e-12, atol=1e-18)
    row_space = np.linalg.pinv(X) @ X
    loss_star = theory.reduce_problem(X, Y).loss_star
    excess, singular = [], []
    for y in sol.y.T:
        U, V = y[: n * h].reshape(n, h), y[n * h:].reshape(m, h)
        excess.append(0.5 * np.linalg.norm(Y - X @ U @ V.T) ** 2 - loss_star)
        singular.append(np.linalg.svd(row_space @ U @ V.T, compute_uv=False))
    excess, singular = np.array(excess), np.array(singular)

    relative = excess / excess[0]
    assert np.any((times > 0.5) & (relative > 0.99))  # a plateau near the saddle ...
    middle = (relative < 0.3) & (relative > 0.05)
    assert np.any(middle)  # ... an intermediate level: one direction learned, the other not yet
    np.testing.assert_allclose(run["excess_loss"].values, excess, rtol=1e-6, atol=1e-10 * excess[0])
    np.testing.assert_allclose(run["product_singular_values"].values, singular, rtol=1e-6, atol=1e-12)
    # incremental learning: on the intermediate level the first singular value is learned, the second small
    sv = run["product_singular_values"].values[middle]
    assert np.all(sv[:, 1] < 0.1 * sv[:, 0])
    # the end point's distance splits into the null-space part (the limit distance) and the
    # row-space part (the convergence error), each as the explicit weights give it
    U, V = sol.y[: n * h, -1].reshape(n, h), sol.y[n * h:, -1].reshape(m, h)
    theta_hat = np.linalg.pinv(X) @ Y
    null = np.linalg.norm((np.eye(n) - row_space) @ U @ V.T)
    row = np.linalg.norm(row_space @ U @ V.T - theta_hat)
    assert run["final_distance_null_fro"].item() == pytest.approx(null, rel=1e-6)
    assert run["final_distance_row_fro"].item() == pytest.approx(row, rel=1e-3, abs=1e-9)
    assert run["final_distance_row_fro"].item() < 1e-2 * null  # converged: the limit distance dominates
    assert run["final_distance_fro"].item() == pytest.approx(np.hypot(null, row), rel=1e-6)


def test_a_chunk_records_file_keeps_each_runs_reason_and_singular_values(tmp_path):
    """In a chunk's records file a NaN's comment stays with its run (cases of different alpha
    share a chunk) and the singular values come back with their shape."""
    from linflow import record

    X, Y, U0, V0 = _small_init_problem(h=200)
    runs = [linflow.simulate(X, Y, U0, V0, method="flow", alpha=alpha, max_time=50.0) for alpha in (0.5, 1.0, 0.4)]
    stack = record.RecordStack()
    for run in runs:
        stack.add(run)
    stack.write(tmp_path / "records.nc", {"experiment": "e"})
    for index, run in enumerate(runs):
        back = record.open_run(tmp_path / "records.nc", index)
        assert back["theorem12_bound"].attrs.get("comment") == run["theorem12_bound"].attrs.get("comment")
        np.testing.assert_array_equal(back["product_singular_values"].values, run["product_singular_values"].values)
    assert "comment" in record.open_run(tmp_path / "records.nc", 1)["theorem12_bound"].attrs
    assert "comment" not in record.open_run(tmp_path / "records.nc", 2)["theorem12_bound"].attrs


def test_one_output_singular_value_is_the_products_norm_on_the_row_space():
    rng = np.random.default_rng(3)
    X, Y = random_problem(rng, N=6, n=12, m=1)
    U0, V0 = init.gaussian(n=12, m=1, h=500, alpha=1.0, rng=rng)
    run = linflow.simulate(X, Y, U0, V0, method="flow", alpha=1.0, max_time=100.0)
    row_space = np.linalg.pinv(X) @ X
    assert run["product_singular_values"].shape == (run.sizes["time"], 1)
    assert run["product_singular_values"].values[0, 0] == pytest.approx(np.linalg.norm(row_space @ U0 @ V0.T), rel=1e-10)
    end = np.linalg.norm(row_space @ run["end_to_end"].values)
    assert run["product_singular_values"].values[-1, 0] == pytest.approx(end, rel=1e-10)


def _half_times(run):
    """Time at which each singular value of U1 V^T first reaches half its final value."""
    t, sv = run["time"].values, run["product_singular_values"].values
    return np.array([t[np.argmax(sv[:, i] >= 0.5 * sv[-1, i])] for i in range(sv.shape[1])])


def test_small_initializations_learn_separated_directions_one_at_a_time():
    """m = 3 targets with singular values 1 : 1/3 : 1/9 at h = 10^6: from alpha = 1 the
    directions are learned one after the other, each on a plateau of the previous one; from
    alpha = 1/2 together."""
    X, Y = data.make_dataset("gaussian", n=100, N=30, m=3, noise=0.01, target_decay=3.0,
                             rng=np.random.default_rng(5))
    problem = theory.reduce_problem(X, Y)
    runs = {}
    for alpha in (0.5, 1.0):
        state = init.wishart(m=3, r=problem.r, n_minus_r=100 - problem.r, h=10**6,
                             std=init.gaussian_std(h=10**6, alpha=alpha), rng=np.random.default_rng(1))
        runs[alpha] = linflow.simulate(X, Y, init=state, method="flow", alpha=alpha, problem=problem)
        assert runs[alpha]["status"].item() == "converged"
    small, standard = _half_times(runs[1.0]), _half_times(runs[0.5])
    assert np.all(small[1:] > 1.5 * small[:-1]), small  # one after the other
    assert np.all(standard[1:] < 1.5 * standard[:-1]), standard  # together
    sv = runs[1.0]["product_singular_values"].values
    learned_first = (sv[:, 0] > 0.9 * sv[-1, 0]) & (sv[:, 1] < 0.1 * sv[-1, 1])
    assert np.any(learned_first)  # a plateau: the first direction learned, the second not begun
    sv = runs[0.5]["product_singular_values"].values
    assert not np.any((sv[:, 0] > 0.9 * sv[-1, 0]) & (sv[:, 1] < 0.1 * sv[-1, 1]))


def test_a_separated_target_has_the_asked_spectrum():
    rng = np.random.default_rng(0)
    theta0 = data.separated_target(50, 4, 3.0, rng)
    s = np.linalg.svd(theta0, compute_uv=False)
    np.testing.assert_allclose(s[:-1] / s[1:], 3.0, rtol=1e-12)
    assert np.linalg.norm(theta0) ** 2 == pytest.approx(4.0, rel=1e-12)
    np.testing.assert_array_equal(theta0, data.separated_target(50, 4, 3.0, np.random.default_rng(0)))
    # without target_decay the targets are the paper's: theta0 ~ N(0, I/n), drawn as before
    X = np.random.default_rng(1).standard_normal((10, 50))
    Y = data.linear_targets(X, 2, 0.0, np.random.default_rng(2))
    np.testing.assert_array_equal(Y, X @ (np.random.default_rng(2).standard_normal((50, 2)) / np.sqrt(50)))


@pytest.mark.parametrize("kwargs,words", [(dict(n=50, m=2, decay=0.5), "target_decay must be a finite number >= 1"),
                                          (dict(n=2, m=3, decay=2.0), "needs m <= n")])
def test_a_bad_target_decay_is_refused_by_name(kwargs, words):
    with pytest.raises(ValueError, match=words):
        data.separated_target(rng=np.random.default_rng(0), **kwargs)


def test_the_limit_distance_is_the_untouched_null_space_weights_times_the_trained_v():
    """U2 never moves and (U1, V) evolve without it, so for the Gaussian initialization the limit
    distance ||U2(0) V^T||_F^2 is (n - r) h^(-2 alpha) ||V||_F^2 times a chi^2_{n-r} / (n - r)
    variable (m = 1): mean 1, standard deviation sqrt(2 / (n - r)). Over 40 Wishart-sampled runs
    (alpha = 1, h = 10^5, n - r = 300) its mean is 1 to within 4 standard errors."""
    X, Y = data.make_dataset("gaussian", n=330, N=30, m=1, noise=0.01, rng=np.random.default_rng(0))
    problem = theory.reduce_problem(X, Y)
    n_null, h, alpha = 330 - problem.r, 10**5, 1.0
    ratios = []
    for seed in range(40):
        state = init.wishart(m=1, r=problem.r, n_minus_r=n_null, h=h, std=init.gaussian_std(h=h, alpha=alpha),
                             rng=np.random.default_rng(seed))
        run = linflow.simulate(X, Y, init=state, method="flow", alpha=alpha, problem=problem)
        ratios.append(run["final_distance_null_fro"].item() ** 2
                      / (n_null * h ** (-2 * alpha) * run["final_v_fro"].item() ** 2))
    spread = np.sqrt(2 / n_null)
    assert abs(np.mean(ratios) - 1) < 4 * spread / np.sqrt(len(ratios)), np.mean(ratios)
    assert 0.5 * spread < np.std(ratios, ddof=1) < 2 * spread  # chi^2 spread, not a constant


def test_the_smallest_initialization_escapes_its_plateau_and_converges_by_the_stopping_rule():
    """alpha = 2 at h = 10^6: the product starts at ~1e-21 and the flow sits near the saddle
    (excess loss unchanged to 1e-6 at t = 10) far longer than from alpha = 1, then escapes and
    stops only once the excess loss has fallen by stop_factor from its initial value."""
    X, Y = data.make_dataset("gaussian", n=100, N=30, m=1, noise=0.01, rng=np.random.default_rng(6))
    problem = theory.reduce_problem(X, Y)
    escape = {}
    for alpha in (1.0, 2.0):
        state = init.wishart(m=1, r=problem.r, n_minus_r=100 - problem.r, h=10**6,
                             std=init.gaussian_std(h=10**6, alpha=alpha), rng=np.random.default_rng(2))
        run = linflow.simulate(X, Y, init=state, method="flow", alpha=alpha, problem=problem, stop_factor=1e-12)
        assert run["status"].item() == "converged"
        t, excess = run["time"].values, run["excess_loss"].values
        # stopped by the rule, at it (the event is located to its tolerance)
        assert excess[-1] == pytest.approx(1e-12 * excess[0], rel=1e-8) and excess[-2] > 1e-12 * excess[0]
        escape[alpha] = t[np.argmax(excess < 0.5 * excess[0])]
        if alpha == 2.0:
            assert run["product_singular_values"].values[0, 0] < 1e-18
            assert excess[t <= 10][-1] > (1 - 1e-6) * excess[0]
    assert escape[2.0] > 1.5 * escape[1.0]  # the plateau lasts ~ alpha log h
