"""The simulators against each other, against explicit weights, and against the theorems."""

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

import linflow
from linflow import aggregate, checks, data, init, state, theory
from linflow import parameters as P
from linflow.kernels import flow as _flow
from conftest import random_problem


def test_imbalance_is_conserved_along_flow(rng):
    """D = U1^T U1 - V^T V is invariant under gradient flow (Section 3.2)."""
    for N, n, m, h in [(5, 9, 2, 13), (3, 7, 4, 5), (10, 30, 1, 200)]:
        X, Y = random_problem(rng, N, n, m)
        p = theory.reduce_problem(X, Y)
        U0, V0 = init.gaussian(n, m, h, 0.5, rng)
        c = state.compress(p, 2 * U0, V0)
        traj = _flow(p, c, target=1e-12 * 0.5 * np.sum(p.Yt**2), max_time=1e4, rtol=1e-10, atol=1e-13,
                     per_decade=20)
        J = theory.imbalance_signature(m, p.r)
        D = np.einsum("tik,i,til->tkl", traj.Zc, J, traj.Zc)
        drift = np.linalg.norm(D - D[0], axis=(1, 2)).max() / np.linalg.norm(D[0])
        assert drift < 1e-8
        ds = linflow.simulate(X, Y, 2 * U0, V0, method="flow")
        assert float(ds.imbalance_drift) < 1e-8


@pytest.mark.parametrize("N,n,m,h", [(6, 10, 1, 15), (5, 8, 3, 12), (2, 6, 4, 9), (4, 4, 2, 3)])
def test_gd_matches_explicit_gd(rng, N, n, m, h):
    """gd (width-independent) and gd_explicit (full weights) agree to round-off; (2, 6, 4) has r < m."""
    X, Y = random_problem(rng, N, n, m)
    U0, V0 = init.gaussian(n, m, h, 0.5, rng)
    kwargs = dict(step=0.01, max_steps=300, stop_factor=1e-30)  # loss stays far above round-off
    a = linflow.simulate(X, Y, U0, V0, method="gd", **kwargs)
    b = linflow.simulate(X, Y, U0, V0, method="gd_explicit", **kwargs)
    np.testing.assert_array_equal(a.step, b.step)
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-10)
    np.testing.assert_allclose(a.end_to_end, b.end_to_end, rtol=1e-10, atol=1e-10 * np.abs(b.end_to_end).max())


@pytest.fixture
def moderate(rng):
    N, n, m, h = 4, 8, 2, 12
    X, Y = random_problem(rng, N, n, m)
    U0, V0 = init.gaussian(n, m, h, 0.5, rng)
    return X, Y, 2 * U0, 2 * V0


def test_flow_matches_explicit_weight_integration(moderate):
    X, Y, U0, V0 = moderate
    n, h = U0.shape
    m = V0.shape[0]
    flow = linflow.simulate(X, Y, U0, V0, method="flow", stop_factor=1e-16, rtol=1e-12, atol=1e-15)
    assert flow["status"].item() == "converged"

    def rhs(_t, y):  # dU/dt = X^T (Y - X U V^T) V, dV/dt = (Y - X U V^T)^T X U
        U, V = y[: n * h].reshape(n, h), y[n * h :].reshape(m, h)
        R = Y - X @ U @ V.T
        return np.concatenate([(X.T @ R @ V).ravel(), (R.T @ X @ U).ravel()])

    sol = solve_ivp(rhs, (0, float(flow.time[-1])), np.concatenate([U0.ravel(), V0.ravel()]), method="DOP853",
                    rtol=1e-12, atol=1e-15)
    U, V = sol.y[: n * h, -1].reshape(n, h), sol.y[n * h :, -1].reshape(m, h)
    reference = U @ V.T
    assert np.linalg.norm(flow.end_to_end.values - reference) / np.linalg.norm(reference) < 1e-6


def test_flow_is_the_small_step_limit_of_explicit_gd(moderate):
    """GD's end point has an O(eta) bias; Richardson 2 GD(eta/2) - GD(eta) converges to the flow's."""
    X, Y, U0, V0 = moderate
    flow = linflow.simulate(X, Y, U0, V0, method="flow", stop_factor=1e-16, rtol=1e-12, atol=1e-15)
    ends = {}
    for eta in (1e-3, 5e-4):
        ds = linflow.simulate(X, Y, U0, V0, method="gd_explicit", step=eta, stop_factor=1e-16, max_steps=10**6)
        ends[eta] = ds.end_to_end.values
    reference = flow.end_to_end.values
    def error(e):
        return np.linalg.norm(e - reference) / np.linalg.norm(reference)

    assert error(ends[5e-4]) < 0.6 * error(ends[1e-3])  # first order in eta
    assert error(2 * ends[5e-4] - ends[1e-3]) < 1e-6


def test_invariant_set_ends_at_min_norm_solution(rng):
    """Proposition 10: with U2(0) = 0 the flow converges exactly to Theta_hat."""
    X, Y = random_problem(rng, 5, 12, 2)
    p = theory.reduce_problem(X, Y)
    U0, V0 = init.gaussian(12, 2, 30, 0.5, rng)
    ds = linflow.simulate(X, Y, init.invariant(p, U0), V0, method="flow", stop_factor=1e-20, rtol=1e-12, atol=1e-15)
    assert ds["status"].item() == "converged"
    assert np.linalg.norm(ds.end_to_end.values - p.theta_hat) < 1e-8 * np.linalg.norm(p.theta_hat)
    assert float(ds.final_distance_fro) < 1e-8
    assert float(ds.orthogonality0) < 1e-12  # projection leaves round-off in U2(0)


def test_scalar_warm_up_rate():
    """Eq. (14): for m = r = h = 1 the rate is exactly 2 sqrt(d^2 + 4 (u v)^2), d = u^2 - v^2."""
    for u, v, y in [(0.3, 0.7, 2.0), (1.5, -0.2, 0.4), (0.05, 0.05, 1.0)]:
        ds = linflow.simulate(np.array([[1.0]]), np.array([[y]]), np.array([[u]]), np.array([[v]]), method="flow")
        assert float(ds.inst_rate[0]) == pytest.approx(theory.scalar_rate(u, v), rel=1e-12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    N=st.integers(1, 5), extra=st.integers(0, 4), m=st.integers(1, 4), h=st.integers(1, 9),
    u_scale=st.floats(0.05, 3.0), v_scale=st.floats(0.05, 3.0), y_scale=st.floats(0.1, 5.0),
    seed=st.integers(0, 2**31),
)
def test_bounds_hold_at_every_recorded_point(N, extra, m, h, u_scale, v_scale, y_scale, seed):
    """Proposition 1 and Theorem 3 are theorems: any violation is a bug."""
    rng = np.random.default_rng(seed)
    n = N + extra
    X, Y = random_problem(rng, N, n, m, y_scale)
    U0, V0 = u_scale * rng.standard_normal((n, h)), v_scale * rng.standard_normal((m, h))
    ds = linflow.simulate(X, Y, U0, V0, method="flow", max_time=200.0)
    checks.check_bounds({name: float(ds[name]) for name in checks.VIOLATIONS}, "hypothesis example", rtol=1e-9)


def _fig7_problem():
    from linflow import data

    return data.make_dataset("gaussian", n=500, N=100, m=1, noise=0.01, rng=np.random.default_rng(2024))


def test_theorem12_slope_on_the_paper_setting():
    """Fig. 7 setting: slope of log distance against log width over [500, 16000] near -1/2."""
    X, Y = _fig7_problem()
    widths, distances = [], []
    for h in (500, 1000, 2000, 4000, 8000, 16000):
        for seed in range(5):
            U0, V0 = init.gaussian(500, 1, h, 0.5, np.random.default_rng([h, seed]))
            ds = linflow.simulate(X, Y, U0, V0, method="flow", alpha=0.5)
            assert ds["status"].item() == "converged"
            widths.append(h)
            distances.append(float(ds.final_distance_fro))
    fit = aggregate.loglog_slope(widths, distances)
    assert -0.6 <= fit["slope"] <= -0.4


def test_wishart_and_explicit_sampling_agree_in_distribution():
    X, Y = _fig7_problem()
    p = theory.reduce_problem(X, Y)
    h, seeds = 2000, 16
    explicit, wishart = [], []
    for seed in range(seeds):
        U0, V0 = init.gaussian(500, 1, h, 0.5, np.random.default_rng([1, seed]))
        explicit.append(float(linflow.simulate(X, Y, U0, V0, method="flow").final_distance_fro))
        c = init.wishart(1, p.r, 500 - p.r, h, h**-0.5, np.random.default_rng([2, seed]))
        wishart.append(float(linflow.simulate(X, Y, init=c, method="flow").final_distance_fro))
    explicit, wishart = np.array(explicit), np.array(wishart)
    standard_error = np.sqrt(explicit.var(ddof=1) / seeds + wishart.var(ddof=1) / seeds)
    assert abs(explicit.mean() - wishart.mean()) < 4 * standard_error


def test_wishart_gram_moments(rng):
    """Bartlett factor: E[G] = h std^2 I for the Gram matrix of iid N(0, std^2) weights."""
    h, std, k = 50, 0.3, 4
    grams = [init.wishart(1, 3, 2, h, std, rng).Zc for _ in range(4000)]
    mean = np.mean([L @ L.T for L in grams], axis=0)
    np.testing.assert_allclose(mean, h * std**2 * np.eye(k), atol=0.1 * h * std**2)


def test_gd_divergence_is_reported_not_raised(rng):
    X, Y = random_problem(rng, 6, 10, 1)
    U0, V0 = init.gaussian(10, 1, 20, 0.5, rng)
    ds = linflow.simulate(X, Y, U0, V0, method="gd", step=50.0, max_steps=10000)
    assert ds["status"].item() == "diverged"
    assert not bool(ds["converged"])
    assert np.all(np.isfinite(ds["loss"].values))


def test_time_limit_gives_not_converged(rng):
    X, Y = random_problem(rng, 6, 10, 1)
    U0, V0 = init.gaussian(10, 1, 20, 0.5, rng)
    ds = linflow.simulate(X, Y, U0, V0, method="flow", max_time=1e-3)
    assert ds["status"].item() == "not_converged"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(Y=np.ones((7, 1))), "same number of rows"),
        (dict(X=np.full((6, 10), np.nan)), "NaN or infinite"),
        (dict(X=np.zeros((6, 10))), "rank 0"),
        (dict(U0=np.ones((9, 20))), "U0 must have n = 10 rows"),
        (dict(V0=np.ones((2, 20))), "V0 must have m = 1 rows"),
        (dict(V0=np.ones((1, 21))), "same width"),
        (dict(method="euler"), "method: .euler. is not allowed; allowed: one of flow, gd, gd_explicit, sgd, sgd_explicit"),
        (dict(method="gd"), "step is required for method"),
        (dict(alpha=2.5), r"alpha: expected a number in \(0, 2\]"),
        (dict(U0=np.full((10, 20), np.inf)), "U0 contains NaN"),
    ],
)
def test_bad_input_raises_clear_value_error(rng, kwargs, match):
    X, Y = random_problem(rng, 6, 10, 1)
    U0, V0 = init.gaussian(10, 1, 20, 0.5, rng)
    args = dict(X=X, Y=Y, U0=U0, V0=V0)
    args.update({k: v for k, v in kwargs.items() if k in args})
    options = {k: v for k, v in kwargs.items() if k not in args}
    with pytest.raises(ValueError, match=match):
        linflow.simulate(args["X"], args["Y"], args["U0"], args["V0"], **options)


def test_start_at_a_global_minimum_converges_at_once():
    X = np.eye(3)[:2]
    U0, V0 = np.ones((3, 4)), 0.5 * np.ones((1, 4))
    for method in ("flow", "gd"):
        ds = linflow.simulate(X, X @ U0 @ V0.T, U0, V0, method=method, step=0.1)
        assert ds["status"].item() == "converged" and ds.sizes["time"] == 1
        assert float(ds["excess_loss"][0]) == 0.0


def test_precomputed_reduction_is_checked_and_reused(rng):
    X, Y = random_problem(rng, 6, 10, 1)
    U0, V0 = init.gaussian(10, 1, 20, 0.5, rng)
    p = theory.reduce_problem(0.5 * X, Y)
    a = linflow.simulate(X, Y, U0, V0, output_scale=0.5)
    b = linflow.simulate(X, Y, U0, V0, output_scale=0.5, problem=p)
    np.testing.assert_allclose(a.end_to_end, b.end_to_end, rtol=1e-9)
    with pytest.raises(ValueError, match="not the reduction"):
        linflow.simulate(X, Y, U0, V0, problem=p)  # reduction of 0.5 X, not of X


@pytest.mark.parametrize("method", ["flow", "gd"])
def test_an_infinite_initial_loss_is_an_error_not_convergence(rng, method):
    """Bug: with weights so large that the loss overflows, flow said "converged" and gd crashed."""
    X, Y = random_problem(rng, 6, 10, 1)
    U0, V0 = init.gaussian(10, 1, 20, 0.5, rng)
    with pytest.raises(ValueError, match="not finite|overflow"):
        linflow.simulate(X, Y, 1e200 * U0, V0, method=method, step=0.01)
    c = state.CompressedInit(Zc=np.full((1 + 6, 7), 1e200), U2c=np.zeros((4, 7)), width=10**6)
    with pytest.raises(ValueError, match="initial loss is not finite"):
        linflow.simulate(X, Y, init=c, method=method, step=0.01)


def explicit_gd(X, Y, U, V, eta, steps, gamma=1.0):
    """Gradient descent on 1/2 ||Y - gamma X U V^T||^2 with step eta, on the full weights."""
    for _ in range(steps):
        R = Y - gamma * X @ U @ V.T
        U, V = U + eta * gamma * X.T @ R @ V, V + eta * gamma * R.T @ X @ U
    return U @ V.T


def test_mean_loss_step_maps_to_flow_time_and_matches_explicit_gd(rng):
    """(1/N)||.||^2 with step eta is 1/2||.||^2 with step 2 eta / N: step k at t = 2 eta k / N."""
    N, n, m, h, eta = 8, 12, 2, 15, 0.05
    X, Y = random_problem(rng, N, n, m)
    U0, V0 = init.gaussian(n, m, h, 0.5, rng)
    ds = linflow.simulate(X, Y, U0, V0, method="gd", step=eta, loss_scale="mean", max_steps=400, stop_factor=1e-30)
    np.testing.assert_array_equal(ds["time"].values, 2 * eta * ds["step"].values / N)
    reference = explicit_gd(X, Y, U0, V0, 2 * eta / N, 400)
    np.testing.assert_allclose(ds["end_to_end"].values, reference, rtol=1e-10, atol=1e-12)
    half = linflow.simulate(X, Y, U0, V0, method="gd", step=eta, max_steps=50, stop_factor=1e-30)
    np.testing.assert_array_equal(half["time"].values, eta * half["step"].values)


def test_loss_threshold_stops_at_the_first_step_below_it(rng):
    N, n, m = 8, 12, 1
    X, Y = random_problem(rng, N, n, m)
    U0, V0 = init.gaussian(n, m, 20, 0.5, rng)
    threshold = 1e-6
    ds = linflow.simulate(X, Y, U0, V0, method="gd", step=0.05, loss_scale="mean", loss_threshold=threshold,
                          stop_factor=1e-30)
    assert ds["status"].item() == "converged"
    last = int(ds["step"].values[-1])
    assert 2 / N * float(ds["excess_loss"][-1]) <= threshold  # the mean objective's excess
    before = linflow.simulate(X, Y, U0, V0, method="gd", step=0.05, loss_scale="mean", loss_threshold=threshold,
                              stop_factor=1e-30, max_steps=last - 1)
    assert before["status"].item() == "not_converged" and 2 / N * float(before["excess_loss"][-1]) > threshold
    flow = linflow.simulate(X, Y, U0, V0, loss_scale="mean", loss_threshold=threshold, stop_factor=1e-30)
    assert 2 / N * float(flow["excess_loss"][-1]) == pytest.approx(threshold, rel=1e-6)  # the event's crossing


def test_inverse_sqrt_mh_output_scale_is_the_matrix_factorization_of_fig5(rng):
    """output_scale="inverse_sqrt_mh" trains f(x) = (m h)^-1/2 V U^T x (Fig. 2/4/5)."""
    n, m, h, eta = 6, 3, 10, 0.05
    X, Y = np.eye(n), np.sqrt(0.1) * rng.standard_normal((n, m))
    U0, V0 = rng.standard_normal((n, h)), rng.standard_normal((m, h))
    ds = linflow.simulate(X, Y, U0, V0, method="gd", step=eta, output_scale="inverse_sqrt_mh", max_steps=300,
                          stop_factor=1e-30)
    reference = explicit_gd(X, Y, U0, V0, eta, 300, gamma=(m * h) ** -0.5)
    np.testing.assert_allclose(ds["end_to_end"].values, reference, rtol=1e-10, atol=1e-12)
    loss = 0.5 * np.linalg.norm(Y - (m * h) ** -0.5 * X @ U0 @ V0.T) ** 2
    assert float(ds["loss"][0]) == pytest.approx(loss, rel=1e-12)


def test_conditioned_data_has_the_requested_spectrum():
    from linflow import data

    X, Y = data.make_dataset("conditioned", n=30, N=8, m=1, condition_number=10.0, rng=np.random.default_rng(0))
    s = np.linalg.svd(X, compute_uv=False)
    np.testing.assert_allclose(s, np.logspace(0, -1, 8), rtol=1e-12)
    p = theory.reduce_problem(X, Y)
    assert p.lam_1 / p.lam_r == pytest.approx(100.0)


def test_explicit_balanced_init_has_zero_imbalance_and_the_scaled_product(rng):
    X, Y = random_problem(rng, 5, 12, 2)
    p = theory.reduce_problem(X, Y)
    U0, V0 = init.scaled(12, 2, 30, 0.1, 0.2, np.random.default_rng(1))
    U, V = init.balanced(p, U0, V0, np.random.default_rng(2))
    np.testing.assert_allclose(p.Phi1.T @ U @ V.T, p.Phi1.T @ U0 @ V0.T, rtol=1e-12, atol=1e-15)
    D = (p.Phi1.T @ U).T @ (p.Phi1.T @ U) - V.T @ V
    assert np.abs(D).max() < 1e-13 and np.abs(p.Phi2.T @ U).max() < 1e-13


@pytest.mark.parametrize("h", [30, 4])  # h > m + r and h < m + r
def test_rank_deficient_weights_are_carried_by_a_factor_as_wide_as_their_rank(rng, h):
    """Balanced init: Z = [V; U1] has rank min(m, r), and so must the factor; G and K exact."""
    N, n, m = 5, 12, 2
    X, Y = random_problem(rng, N, n, m)
    p = theory.reduce_problem(X, Y)
    U, V = init.balanced(p, *init.scaled(n, m, h, 0.3, 0.2, np.random.default_rng(1)), np.random.default_rng(2))
    c = state.compress(p, U, V)
    assert c.Zc.shape == (m + p.r, m)
    Z = np.vstack([V, p.Phi1.T @ U])
    np.testing.assert_allclose(c.Zc @ c.Zc.T, Z @ Z.T, rtol=0, atol=1e-14 * np.abs(Z @ Z.T).max())
    np.testing.assert_allclose(c.Zc @ c.U2c.T, Z @ (p.Phi2.T @ U).T, rtol=0, atol=1e-14 * np.abs(Z @ Z.T).max())
    kwargs = dict(step=0.01, max_steps=300, stop_factor=1e-30)  # the loss stays far above round-off
    a = linflow.simulate(X, Y, U, V, method="gd", **kwargs)
    b = linflow.simulate(X, Y, U, V, method="gd_explicit", **kwargs)
    np.testing.assert_array_equal(a.step, b.step)
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-10)
    np.testing.assert_allclose(a.end_to_end, b.end_to_end, rtol=1e-10, atol=1e-10 * np.abs(b.end_to_end).max())


@pytest.mark.parametrize("given", [
    {"init": "gaussian", "alpha": 0.5, "sampling": "wishart", "method": "flow"},
    {"init": "scaled", "a": 1, "b": 1, "method": "gd", "step": 0.1, "loss_threshold": 1e-8},
    {"init": "gaussian", "alpha": 0.4, "method": "sgd", "step": 0.1, "batch_size": 3, "check_every": 2},
    {"init": "balanced", "a": 1, "b": 1, "method": "sgd_explicit", "step": 0.1, "batch_size": 3},
])
def test_a_run_passes_every_simulation_parameter_to_simulate(given):
    """The keywords a chunk passes to simulate() are derived from its signature, not a list:
    every resolved parameter that is not about the initialization reaches simulate()."""
    from linflow.simulate import simulate_options

    params = P.resolve(given)
    initialization = {p.name for p in P.RUN_PARAMETERS if p.block == P.CASE} - {"alpha"}
    expected = {k: v for k, v in params.items() if k not in initialization and k != "output_scale"}
    assert simulate_options(params) == expected


def test_every_method_has_one_table_entry_and_simulate_dispatches_through_it(rng, monkeypatch):
    """simulate() runs the method's entry: replacing an entry's runner changes what runs."""
    from linflow import methods

    assert set(methods.METHODS) == set(P.METHODS)
    assert {name for name, e in methods.METHODS.items() if e.explicit} == set(P.EXPLICIT_METHODS)
    X, Y = data.make_dataset("gaussian", n=8, N=5, m=1, noise=0.01, rng=rng)
    U0, V0 = init.gaussian(8, 1, 12, alpha=0.5, rng=rng)
    calls = []
    entry = methods.METHODS["gd"]

    def spy(run):
        calls.append(run.options["step"])
        return entry.run(run)

    monkeypatch.setitem(methods.METHODS, "gd", dataclasses.replace(entry, run=spy))
    ds = linflow.simulate(X, Y, U0, V0, method="gd", step=0.05, max_steps=10)
    assert calls == [0.05] and json.loads(ds.attrs["parameters"])["method"] == "gd"


def test_simulate_without_weights_names_what_is_missing_for_every_output_scale(rng):
    X, Y = data.make_dataset("gaussian", n=8, N=5, m=1, noise=0.01, rng=rng)
    for output_scale in ("none", "inverse_sqrt_mh", 0.5):
        with pytest.raises(ValueError, match="pass explicit weights U0"):
            linflow.simulate(X, Y, method="flow", output_scale=output_scale)
