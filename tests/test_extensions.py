"""Beyond the paper: the Theorem 12 exponent law across alpha, at widths only the
width-independent simulator reaches."""

from __future__ import annotations

import numpy as np
import pytest

import linflow
from linflow import aggregate, data, init, theory


@pytest.mark.parametrize("alpha", [0.5, 0.375])
def test_fitted_exponent_recovers_theorem12(alpha):
    """Fig. 7 data, widths 10^4 .. 10^8 (Wishart sampling), 6 seeds: the 95% interval of the
    fitted log-log slope contains -(2 alpha - 1/2). (At widths <= 10^4 finite-width bias shows:
    about -0.48 for alpha = 1/2.)"""
    X, Y = data.make_dataset("gaussian", n=500, N=100, m=1, noise=0.01, rng=np.random.default_rng(2024))
    problem = theory.reduce_problem(X, Y)
    widths, distances = [], []
    for h in np.logspace(4, 8, 5).astype(int):
        for seed in range(6):
            start = init.wishart(1, problem.r, 500 - problem.r, int(h), float(h) ** -alpha,
                                 np.random.default_rng([int(h), seed]))
            run = linflow.simulate(X, Y, init=start, method="flow", alpha=alpha)
            assert run["status"].item() == "converged"
            widths.append(h)
            distances.append(float(run["final_distance_fro"]))
    fit = aggregate.loglog_slope(widths, distances)
    assert fit["slope_low"] <= theory.theory_exponent(alpha) <= fit["slope_high"], fit
    assert fit["slope_high"] - fit["slope_low"] < 0.05
