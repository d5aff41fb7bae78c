"""The time axis of every simulator, point by point (end points do not see a wrong speed)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import linflow
from linflow import init, theory
from conftest import random_problem


def explicit_excess_loss(X, Y, U0, V0, times):
    """Excess loss 1/2 ||W^T (Y - X U V^T)||_F^2 of the explicit-weights gradient flow
    dU/dt = X^T R V, dV/dt = R^T X U at ``times`` (an independent integration)."""
    n, h = U0.shape
    m = V0.shape[0]
    W = theory.reduce_problem(X, Y).W

    def rhs(_t, y):
        U, V = y[: n * h].reshape(n, h), y[n * h:].reshape(m, h)
        R = Y - X @ U @ V.T
        return np.concatenate([(X.T @ R @ V).ravel(), (R.T @ X @ U).ravel()])

    sol = solve_ivp(rhs, (0.0, float(times[-1])), np.concatenate([U0.ravel(), V0.ravel()]), method="DOP853",
                    t_eval=times, rtol=1e-12, atol=1e-15)
    out = []
    for y in sol.y.T:
        U, V = y[: n * h].reshape(n, h), y[n * h:].reshape(m, h)
        out.append(0.5 * np.sum((W.T @ (Y - X @ U @ V.T)) ** 2))
    return np.array(out)


@pytest.mark.parametrize("N,n,m,h", [(4, 8, 2, 12), (6, 10, 1, 40)])
def test_flow_excess_loss_follows_the_explicit_flow_at_every_recorded_time(rng, N, n, m, h):
    X, Y = random_problem(rng, N, n, m)
    U0, V0 = init.gaussian(n, m, h, 0.5, rng)
    run = linflow.simulate(X, Y, 2 * U0, 2 * V0, method="flow", stop_factor=1e-10)
    times = run["time"].values
    assert times.size > 40  # the log grid, not just the end points
    reference = explicit_excess_loss(X, Y, 2 * U0, 2 * V0, times)
    np.testing.assert_allclose(run["excess_loss"].values, reference, rtol=1e-6)


def test_gd_step_k_sits_at_time_eta_k_and_tracks_the_flow(rng):
    """``t = eta k`` for the 1/2 ||.||^2 objective: the GD excess loss at a recorded step is the
    flow's at that time up to GD's O(eta) error, point by point."""
    X, Y = random_problem(rng, 5, 9, 1)
    U0, V0 = init.gaussian(9, 1, 30, 0.5, rng)
    eta = 1e-3
    gd = linflow.simulate(X, Y, 2 * U0, 2 * V0, method="gd", step=eta, stop_factor=1e-6, max_steps=10**6)
    np.testing.assert_array_equal(gd["time"].values, eta * gd["step"].values)
    times = gd["time"].values[1:]
    reference = explicit_excess_loss(X, Y, 2 * U0, 2 * V0, times)
    relative = np.abs(gd["excess_loss"].values[1:] - reference) / reference
    assert relative.max() < 0.05  # O(eta) error of GD, relative to a loss that falls 10^6-fold
