"""The stiff flow solver: our Jacobian-vector product and preconditioner, the accuracy contract
against a tight DOP853 reference, and the automatic choice of the integrator."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import linflow
from linflow import data, init, methods, resources, theory
from linflow import parameters as P
from linflow.record import TIME_VARIABLES
from linflow.stiff import Linearization

FIXTURES = Path(__file__).resolve().parent / "fixtures"
_spec = importlib.util.spec_from_file_location("make_stiff_references", FIXTURES / "make_stiff_references.py")
references = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(references)


def flow_rhs(s, Yt, m, Z):
    SE = s[:, None] * (Yt - s[:, None] * (Z[m:] @ Z[:m].T))
    return np.vstack([SE.T @ Z[m:], SE @ Z[:m]])


def random_state(rng, m, r, k):
    s = np.sort(rng.uniform(0.05, 3.0, r))[::-1]
    return s, rng.normal(size=(r, m)), rng.normal(size=(m + r, k))


@pytest.mark.parametrize("m,r,k", [(1, 5, 6), (3, 4, 9), (2, 6, 5)])
def test_jacobian_vector_product_is_the_derivative_of_the_flow(rng, m, r, k):
    s, Yt, Z = random_state(rng, m, r, k)
    lin = Linearization(s, Yt, m, Z)
    for _ in range(3):
        dZ = rng.normal(size=Z.shape)
        eps = 1e-6
        finite_difference = (flow_rhs(s, Yt, m, Z + eps * dZ) - flow_rhs(s, Yt, m, Z - eps * dZ)) / (2 * eps)
        np.testing.assert_allclose(lin.jvp(dZ), finite_difference, rtol=0, atol=1e-7 * np.abs(finite_difference).max())


@pytest.mark.parametrize("m,r,k", [(1, 5, 6), (3, 4, 9), (2, 6, 5)])
@pytest.mark.parametrize("gamma", [1e-3, 0.37, 20.0])
def test_preconditioner_inverts_i_minus_gamma_j_exactly(rng, m, r, k, gamma):
    """The dense Jacobian comes from finite differences of the right-hand side, not from our JVP."""
    s, Yt, Z = random_state(rng, m, r, k)
    size, eps = Z.size, 1e-6
    J = np.empty((size, size))
    for i in range(size):
        e = np.zeros(size)
        e[i] = eps
        J[:, i] = ((flow_rhs(s, Yt, m, Z + e.reshape(Z.shape)) - flow_rhs(s, Yt, m, Z - e.reshape(Z.shape)))
                   / (2 * eps)).ravel()
    lin = Linearization(s, Yt, m, Z)
    lin.factor(gamma)
    b = rng.normal(size=Z.shape)
    x = lin.solve(b)
    residual = (np.eye(size) - gamma * J) @ x.ravel() - b.ravel()
    assert np.linalg.norm(residual) <= 1e-7 * np.linalg.norm(b) * max(1.0, gamma * np.linalg.norm(J, 2))


def _contract(ds, ref):
    """Worst relative deviation of every recorded quantity where the reference's excess loss is
    above 1e-6 of its start (the final event point excluded: it is where the run stopped)."""
    n = min(ds.sizes["time"], ref["time"].size) - 1
    np.testing.assert_array_equal(ds["time"].values[:n], ref["time"][:n])  # the same record grid
    keep = ref["excess_loss"][:n] > 1e-6 * ref["excess_loss"][0]
    assert keep.sum() >= 20
    worst = {name: float(np.max(np.abs(ds[name].values[:n][keep] / ref[name][:n][keep] - 1)))
             for name in TIME_VARIABLES}
    return worst, n


def _check_contract(ds, ref):
    worst, _ = _contract(ds, ref)
    assert max(worst.values()) < 1e-8, worst
    for name in ("final_distance_fro", "final_distance_op"):
        assert abs(ds[name].item() / ref[name] - 1) < 1e-8, name
    # the contract's 1e-9 is for kappa <= 1000; over the ~3,800 steps of this run BDF drifts 1.8e-9
    assert ds["imbalance_drift"].item() < 1e-8


@pytest.mark.parametrize("m", references.OUTPUTS)
@pytest.mark.parametrize("kappa", [100, 1000])
def test_the_default_settings_meet_the_accuracy_contract_on_stiff_data(kappa, m):
    """auto picks BDF here; every recorded quantity agrees with DOP853 at rtol 1e-13."""
    ref = dict(np.load(references.path(kappa, m)))
    ds = references.run(kappa, m)
    assert ds["solver"].item() == "bdf" and ds["status"].item() == "converged"
    _check_contract(ds, ref)


@pytest.mark.parametrize("m", references.OUTPUTS)
@pytest.mark.parametrize("solver", ["dop853", "bdf"])
def test_both_solvers_meet_the_accuracy_contract_on_well_conditioned_data_at_rtol_1e_11(solver, m):
    ref = dict(np.load(references.path(1, m)))
    ds = references.run(1, m, solver=solver, rtol=1e-11, atol=1e-14)
    assert ds["solver"].item() == solver
    _check_contract(ds, ref)


def test_dop853_meets_the_contract_on_kappa_100_with_m_3():
    ds = references.run(100, 3, solver="dop853")
    _check_contract(ds, dict(np.load(references.path(100, 3))))


def test_the_stored_reference_is_what_the_generator_computes():
    stored = dict(np.load(references.path(1, 3)))
    fresh = references.reference(1, 3)
    assert set(stored) == set(fresh)
    for name, value in fresh.items():
        np.testing.assert_array_equal(stored[name], value, err_msg=name)


def test_the_contract_check_sees_a_wrong_trajectory():
    """A run that is accurate only to 1e-6 fails the contract: the check has teeth."""
    ref = dict(np.load(references.path(100, 1)))
    loose = references.run(100, 1, solver="bdf", rtol=1e-5, atol=1e-8)
    with pytest.raises(AssertionError):
        _check_contract(loose, ref)


def test_auto_takes_bdf_on_stiff_data_over_a_long_horizon_and_dop853_otherwise(rng):
    X, Y = data.make_dataset("gaussian", n=60, N=20, m=1, noise=0.01, rng=rng)  # Fig. 7 kind: lam_1/lam_r ~ 6
    fig7 = theory.reduce_problem(X, Y)
    start = init.wishart(1, fig7.r, 60 - fig7.r, 1000, 1000**-0.5, rng)
    assert methods.choose_solver("auto", fig7, start, 1e6) == "dop853"
    _, _, stiff, stiff_start = references.problem(100, 1)
    assert stiff.lam_1 / stiff.lam_r > resources.STIFF_RATIO
    assert methods.choose_solver("auto", stiff, stiff_start, 1e6) == "bdf"
    assert methods.choose_solver("auto", stiff, stiff_start, 1e-3) == "dop853"  # a short horizon stays explicit
    _, _, mild, mild_start = references.problem(10, 1)  # lam_1 / lam_r = 100: DOP853 still wins
    assert methods.choose_solver("auto", mild, mild_start, 1e6) == "dop853"
    for setting in ("dop853", "bdf"):
        assert methods.choose_solver(setting, fig7, start, 1e6) == setting


def test_the_record_holds_the_solver_and_its_statistics():
    bdf = references.run(100, 1)
    assert bdf["solver"].item() == "bdf"
    steps, jvp, setups, solves = (int(bdf[name].item()) for name in
                                  ("n_steps", "n_jvp", "n_precond_setups", "n_precond_solves"))
    assert 0 < setups < steps < solves and jvp > 0 and bdf["n_evaluations"].item() > 0
    assert '"solver":"auto"' in bdf.attrs["parameters"]
    dop = references.run(1, 1, solver="dop853")
    assert dop["solver"].item() == "dop853" and np.isnan(dop["n_steps"].item()) and np.isnan(dop["n_jvp"].item())
    X, Y = data.make_dataset("gaussian", n=10, N=5, m=1, noise=0.01, rng=np.random.default_rng(0))
    U0, V0 = init.gaussian(10, 1, 12, alpha=0.5, rng=np.random.default_rng(1))
    gd = linflow.simulate(X, Y, U0, V0, method="gd", step=0.1, max_steps=5)
    assert gd["solver"].item() == "none" and np.isnan(gd["n_steps"].item())


def test_kappa_ten_thousand_converges_with_the_default_settings():
    X, Y = data.make_dataset("conditioned", n=30, N=8, m=2, noise=0.01, condition_number=1e4,
                             rng=np.random.default_rng(0))
    reduced = theory.reduce_problem(X, Y)
    start = init.wishart(2, reduced.r, 30 - reduced.r, 10**6, 1e-3, np.random.default_rng(1))
    ds = linflow.simulate(X, Y, init=start, problem=reduced, method="flow", max_time=1e12)
    assert ds["status"].item() == "converged" and ds["solver"].item() == "bdf"
    assert ds["excess_loss"].values[-1] <= 1e-12 * ds["excess_loss"].values[0] * (1 + 1e-6)
    # the contract's 1e-9 is for kappa <= 1000; over the ~3,800 steps of this run BDF drifts 1.8e-9
    assert ds["imbalance_drift"].item() < 1e-8


FLOW = {"init": "gaussian", "alpha": 0.5, "sampling": "wishart", "method": "flow"}


def test_the_runtime_estimate_follows_the_solver_and_covers_measured_runs():
    """Measured at n = 200, N = 50 (m + r = 51), h = 10^4 on conditioned data: DOP853 took 3.3 s
    at lam_1 / lam_r = 10^4 and 102 s at kappa = 600 (3.6 * 10^5); BDF 0.46 s at 10^4 and 0.96 s at
    10^8. The estimate must cover each, and grow like the ratio for DOP853, not like kappa."""
    size = dict(n=200, m=1, rank=50, width=10**4)

    def seconds(solver, ratio):
        return resources.run_seconds(P.resolve(dict(FLOW, solver=solver)), ratio=ratio, **size)

    assert seconds("dop853", 1e4) >= 3.3 and seconds("dop853", 600.0**2) >= 102
    assert seconds("bdf", 1e4) >= 0.46 and seconds("bdf", 1e8) >= 0.96
    assert seconds("dop853", 1e6) - 2 > 50 * (seconds("dop853", 1e4) - 2)  # ~ ratio = kappa^2
    assert seconds("bdf", 1e8) < 5 * seconds("bdf", 1e4)  # ~ log of the ratio
    assert seconds("auto", 1e4) == seconds("bdf", 1e4) and seconds("auto", 10.0) == seconds("dop853", 10.0)
    assert resources.stiffness_ratio({"kind": "conditioned", "condition_number": 30}) == 900
    assert resources.stiffness_ratio({"kind": "orthonormal_rows", "n": 5, "N": 3}) == 1
    assert 6 < resources.stiffness_ratio({"kind": "gaussian", "n": 500, "N": 100}) < 7  # measured 6.82


def test_a_retried_chunk_gets_attempt_times_the_memory_and_time():
    from linflow import grid

    config = {"seed_entropy": 1, "datasets": {"d": {"kind": "conditioned", "n": 20, "N": 6, "m": 1,
                                                    "condition_number": 100}},
              "experiments": {"e": {"dataset": "d", "cases": {"c": {"init": "gaussian", "alpha": 0.5}},
                                    "widths": [100], "seeds": 2, "simulation": {"method": "flow"}},
                              "f": {"dataset": "d", "cases": {"c": {"init": "gaussian", "alpha": 0.5}},
                                    "widths": [100], "seeds": 2, "simulation": {"method": "flow"},
                                    "resources": {"runtime": 7, "mem_mb": 900}}}}
    plan = grid.plan(config)
    for name in ("e", "f"):
        chunk = plan.experiments[name].chunks[0]
        first, third = plan.chunk_resources(chunk), plan.chunk_resources(chunk, attempt=3)
        assert third == {key: 3 * value for key, value in first.items()}
    assert plan.chunk_resources(plan.experiments["f"].chunks[0], attempt=2) == {"runtime": 14, "mem_mb": 1800}
