"""Mini-batch SGD: the width-independent kernel against explicit weights and against
gradient descent, its batch streams, its records and its input checks."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import xarray as xr
import yaml

import linflow
from conftest import REPO, random_problem
from linflow import batch, grid, init, resources, seeding, theory
from linflow import parameters as P
from linflow.sgd import BatchStream, batch_sequence


def close(a, b, rtol):
    """Max-norm relative agreement of two arrays (scale: the larger of their max entries)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = max(np.abs(a).max(), np.abs(b).max(), np.finfo(float).tiny)
    return np.abs(a - b).max() / scale <= rtol


# (N, n, m, h, b): m > 1 with r = N < n; r < m with b = 1; b = N; r = n (no U2); h < m + r;
# N > n (r = n < N: part of Y outside the column space of W, L* > 0).
SHAPES = [(30, 50, 2, 400, 7), (2, 6, 4, 9, 1), (8, 12, 2, 20, 8), (5, 5, 3, 9, 2), (6, 10, 2, 5, 3),
          (12, 6, 2, 15, 4)]


@pytest.mark.parametrize("N,n,m,h,b", SHAPES)
@pytest.mark.parametrize("sampling", ["without_replacement", "with_replacement"])
def test_sgd_equals_explicit_weights_sgd_with_the_same_batches(rng, N, n, m, h, b, sampling):
    X, Y = random_problem(rng, N, n, m)
    U0, V0 = init.gaussian(n, m, h, 0.5, rng)
    batches = batch_sequence(7, N, b, sampling, 300)
    kwargs = dict(step=0.05, batches=batches, stop_factor=1e-30)
    a = linflow.simulate(X, Y, U0, V0, method="sgd", **kwargs)
    e = linflow.simulate(X, Y, U0, V0, method="sgd_explicit", **kwargs)
    np.testing.assert_array_equal(a["step"], e["step"])
    assert int(a["step"][-1]) == 300
    for name in ("loss", "excess_loss", "distance_fro", "orthogonality", "inst_rate"):
        assert close(a[name], e[name], 1e-10), name
    assert close(a["end_to_end"], e["end_to_end"], 1e-10)


def explicit_sgd(X, Y, U, V, batches, eta, mean):
    """SGD written out from the objective: (1/b)||Y_B - X_B U V^T||^2 (mean) or 1/2 ||.||^2."""
    for rows in batches:
        XB, YB = X[rows], Y[rows]
        R = YB - XB @ U @ V.T
        factor = 2.0 / len(rows) if mean else 1.0  # gradient of (1/b)||R||^2 is 2/b that of 1/2||R||^2
        U, V = U + eta * factor * XB.T @ R @ V, V + eta * factor * R.T @ XB @ U
    return U, V


@pytest.mark.parametrize("loss_scale", ["half", "mean"])
def test_sgd_matches_sgd_written_out_from_the_objective(rng, loss_scale):
    """The loss scalings of the paper: 1/2 ||Y_B - X_B U V^T||^2 and (1/b) ||Y_B - X_B U V^T||^2;
    the recorded loss is the full-batch 1/2 ||Y - X U V^T||^2, step k at t = eta_half k b / N."""
    N, n, m, h, b, eta = 12, 20, 2, 30, 5, 0.04
    X, Y = random_problem(rng, N, n, m)
    U0, V0 = init.gaussian(n, m, h, 0.5, rng)
    batches = batch_sequence(3, N, b, "with_replacement", 200)
    ds = linflow.simulate(X, Y, U0, V0, method="sgd", step=eta, loss_scale=loss_scale, batches=batches,
                          stop_factor=1e-30)
    U, V = explicit_sgd(X, Y, U0, V0, batches, eta, loss_scale == "mean")
    assert close(ds["end_to_end"], U @ V.T, 1e-10)
    assert float(ds["loss"][-1]) == pytest.approx(0.5 * np.linalg.norm(Y - X @ U @ V.T) ** 2, rel=1e-10)
    eta_half = eta * (2 / b if loss_scale == "mean" else 1.0)
    np.testing.assert_allclose(ds["time"], ds["step"] * eta_half * b / N, rtol=1e-15)
    np.testing.assert_allclose(ds["epoch"], ds["step"] * b / N, rtol=1e-15)
    assert ds.attrs["time_per_step"] == pytest.approx(eta_half * b / N, rel=1e-15)
    assert ds.attrs["batch_size"] == b and "given by the caller" in ds.attrs["batches"]


@pytest.mark.parametrize("loss_scale", ["half", "mean"])
@pytest.mark.parametrize("N,n,m,h", [(8, 12, 2, 20), (6, 10, 1, 300), (3, 9, 4, 7)])
def test_full_batch_sgd_is_gradient_descent(rng, N, n, m, h, loss_scale):
    """b = N: every batch is a permutation of all rows, E_B = E up to round-off."""
    X, Y = random_problem(rng, N, n, m)
    U0, V0 = init.gaussian(n, m, h, 0.5, rng)
    kwargs = dict(step=0.02 if loss_scale == "half" else 0.02 * N / 2, loss_scale=loss_scale, max_steps=400,
                  stop_factor=1e-30)
    s = linflow.simulate(X, Y, U0, V0, method="sgd", batch_size=N, batch_rng=5, **kwargs)
    g = linflow.simulate(X, Y, U0, V0, method="gd", **kwargs)
    np.testing.assert_array_equal(s["step"], g["step"])
    np.testing.assert_allclose(s["time"], g["time"], rtol=1e-15)
    for name in ("loss", "excess_loss", "distance_fro", "orthogonality"):
        assert close(s[name], g[name], 1e-12), name
    assert close(s["end_to_end"], g["end_to_end"], 1e-12)


def test_full_batch_sgd_converges_where_gd_does(rng):
    N, n, m, h = 6, 10, 1, 40
    X, Y = random_problem(rng, N, n, m)
    U0, V0 = init.gaussian(n, m, h, 0.5, rng)
    s = linflow.simulate(X, Y, U0, V0, method="sgd", step=0.05, batch_size=N, batch_rng=0, stop_factor=1e-10)
    g = linflow.simulate(X, Y, U0, V0, method="gd", step=0.05, stop_factor=1e-10)
    assert s["status"].item() == g["status"].item() == "converged"
    assert int(s["step"][-1]) == int(g["step"][-1])


def test_batches_drawn_from_a_seed_are_the_batch_sequence(rng):
    N, n, m, h, b = 10, 14, 2, 25, 3
    X, Y = random_problem(rng, N, n, m)
    U0, V0 = init.gaussian(n, m, h, 0.5, rng)
    drawn = linflow.simulate(X, Y, U0, V0, method="sgd", step=0.05, batch_size=b, batch_rng=11, max_steps=250,
                             stop_factor=1e-30)
    given = linflow.simulate(X, Y, U0, V0, method="sgd", step=0.05, batches=batch_sequence(11, N, b,
                             "without_replacement", 250), stop_factor=1e-30)
    xr.testing.assert_identical(drawn.drop_attrs()[list(drawn.data_vars)], given.drop_attrs()[list(given.data_vars)])


def test_given_batches_take_exactly_their_steps(rng):
    """A replay never stops early on the loss target: it takes every given step."""
    N, n, m, h = 6, 10, 1, 30
    X, Y = random_problem(rng, N, n, m)
    U0, V0 = init.gaussian(n, m, h, 0.5, rng)
    batches = batch_sequence(1, N, 2, "without_replacement", 3000)
    ds = linflow.simulate(X, Y, U0, V0, method="sgd", step=0.1, batches=batches, stop_factor=0.5)
    assert int(ds["step"][-1]) == 3000 and ds["status"].item() == "converged"
    early = linflow.simulate(X, Y, U0, V0, method="sgd", step=0.1, batch_size=2, batch_rng=1, stop_factor=0.5)
    assert early["status"].item() == "converged" and int(early["step"][-1]) < 100


def test_without_replacement_is_epochs_of_fresh_permutations():
    N, b = 10, 3
    seq = batch_sequence(4, N, b, "without_replacement", 3 * 6)  # N // b = 3 batches per epoch
    epochs = seq.reshape(6, 3 * b)
    for epoch in epochs:
        assert np.unique(epoch).size == 3 * b  # disjoint batches within an epoch
    assert len({tuple(e) for e in epochs}) == 6  # a fresh permutation every epoch
    full = batch_sequence(4, N, N, "without_replacement", 5)
    assert all(sorted(row) == list(range(N)) for row in full)


def test_with_replacement_draws_iid_uniform_rows():
    N, b = 7, 7
    seq = batch_sequence(9, N, b, "with_replacement", 4000)
    assert seq.min() == 0 and seq.max() == N - 1
    counts = np.bincount(seq.ravel(), minlength=N) / seq.size
    np.testing.assert_allclose(counts, 1 / N, atol=0.01)
    repeated = np.mean([np.unique(row).size < b for row in seq])
    assert repeated == pytest.approx(1 - np.prod(1 - np.arange(b) / N), abs=0.03)  # birthday problem


def test_batch_stream_reproduces_bit_for_bit_and_depends_on_the_seed():
    a = batch_sequence(np.random.SeedSequence(3), 50, 4, "with_replacement", 40000)
    b = batch_sequence(np.random.SeedSequence(3), 50, 4, "with_replacement", 40000)
    c = batch_sequence(np.random.SeedSequence(4), 50, 4, "with_replacement", 40000)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    stream = BatchStream(np.random.default_rng(3), 50, 4, "with_replacement")
    np.testing.assert_array_equal(np.array([next(stream) for _ in range(40000)]), a)


def test_batch_stream_refuses_bad_options_itself():
    with pytest.raises(ValueError, match=r"batch_size: expected an integer in \[1, N = 6\], got 7"):
        batch_sequence(0, 6, 7, "with_replacement", 3)
    with pytest.raises(ValueError, match=r"batch_size: expected an integer in \[1, N = 6\], got 0"):
        batch_sequence(0, 6, 0, "without_replacement", 3)
    with pytest.raises(ValueError, match="batch_sampling: 'shuffle' is not allowed; allowed: one of"):
        batch_sequence(0, 6, 2, "shuffle", 3)


# ---------------------------------------------------------------------------
# Workflow runs: the batches' own stream
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reductions():
    rng = np.random.default_rng(77)
    X, Y = random_problem(rng, 12, 30, 2)
    return batch.Reductions(X, Y)


def params(**change):
    given = dict(init="gaussian", alpha=0.5, sampling="explicit", method="sgd", step=0.05, batch_size=4,
                 max_steps=300, stop_factor=1e-30)
    given.update(change)
    return P.resolve(given)


def run(reductions, seed=0, width=40, **change):
    return batch.run_one(reductions, experiment="e", case="c", width=width, seed=seed, params=params(**change),
                         entropy=5, dataset_attrs={})


def test_a_workflow_run_is_reproducible_bit_for_bit(reductions):
    a, b = run(reductions), run(reductions)
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    assert a.attrs["parameters_hash"] == b.attrs["parameters_hash"]
    other_seed = run(reductions, seed=1)
    assert not np.array_equal(a["end_to_end"], other_seed["end_to_end"])


def test_a_workflow_run_draws_its_batches_from_the_batches_stream(reductions):
    X, Y = reductions.X, reductions.Y
    ds = run(reductions)
    U0, V0 = init.gaussian(30, 2, 40, 0.5, seeding.rng_for(5, "init", "e", 40, 0))
    batches = batch_sequence(seeding.rng_for(5, "batches", "e", 40, 0), 12, 4, "without_replacement", 300)
    replay = linflow.simulate(X, Y, U0, V0, method="sgd", step=0.05, batches=batches, stop_factor=1e-30)
    np.testing.assert_array_equal(ds["end_to_end"], replay["end_to_end"])
    np.testing.assert_array_equal(ds["loss"], replay["loss"])


INIT_VARIABLES = ("imbalance_eigenvalues", "orthogonality0", "end_to_end0_fro", "delta_under", "c0")


@pytest.mark.parametrize("sampling", ["explicit", "wishart"])
def test_init_draws_do_not_depend_on_batch_options(reductions, sampling):
    base = run(reductions, sampling=sampling)
    for change in (dict(batch_size=1), dict(batch_size=12), dict(batch_sampling="with_replacement"),
                   dict(check_every=7), dict(method="gd", batch_size=None)):
        other = run(reductions, sampling=sampling, **change)
        for name in INIT_VARIABLES:
            np.testing.assert_array_equal(base[name], other[name], err_msg=f"{name} with {change}")
        assert float(base["loss"][0]) == float(other["loss"][0])
    assert not np.array_equal(base["end_to_end"], run(reductions, sampling=sampling, batch_size=1)["end_to_end"])


def test_wide_sgd_runs_with_wishart_sampling(reductions):
    """h = 10^7 from a Bartlett factor: no weights are formed."""
    ds = run(reductions, width=10**7, sampling="wishart", max_steps=200)
    assert np.all(np.isfinite(ds["loss"])) and ds.attrs["width"] == 10**7
    assert ds["excess_loss"].values[-1] < ds["excess_loss"].values[0]


# ---------------------------------------------------------------------------
# Stopping, divergence, check_every
# ---------------------------------------------------------------------------


def test_stopping_is_checked_every_check_every_steps_on_the_full_batch_loss(rng):
    N, n, m, h = 8, 12, 1, 30
    X, Y = random_problem(rng, N, n, m)
    U0, V0 = init.gaussian(n, m, h, 0.5, rng)
    kwargs = dict(method="sgd", step=0.1, batch_size=2, batch_rng=3, loss_threshold=1e-6, stop_factor=1e-30)
    every = linflow.simulate(X, Y, U0, V0, **kwargs)
    sparse = linflow.simulate(X, Y, U0, V0, check_every=25, **kwargs)
    assert every["status"].item() == sparse["status"].item() == "converged"
    first = int(every["step"][-1])
    assert float(every["excess_loss"][-1]) <= 1e-6  # full batch, half scale
    assert int(sparse["step"][-1]) == 25 * int(np.ceil(first / 25))  # the first check at or after it
    assert float(sparse["excess_loss"][-1]) <= 1e-6


def test_sgd_divergence_is_reported_not_raised(rng):
    X, Y = random_problem(rng, 6, 10, 1)
    U0, V0 = init.gaussian(10, 1, 20, 0.5, rng)
    for check_every in (1, 50):
        ds = linflow.simulate(X, Y, U0, V0, method="sgd", step=30.0, batch_size=3, batch_rng=0,
                              check_every=check_every, max_steps=10000)
        assert ds["status"].item() == "diverged" and not bool(ds["converged"])
        assert np.all(np.isfinite(ds["loss"].values))


# ---------------------------------------------------------------------------
# Bad input: ValueError (Python) or schema error (config) naming the key and the allowed values
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,match", [
    (dict(batch_size=0), r"batch_size: expected an integer in \[1, inf\), got 0"),
    (dict(batch_size=7), r"batch_size: expected an integer in \[1, N = 6\].*got 7"),
    (dict(batch_size=2.5), r"batch_size: expected an integer"),
    (dict(batch_size=None), r"batch_size is required for SGD"),
    (dict(batch_sampling="shuffle"), "batch_sampling: 'shuffle' is not allowed; allowed: one of "
                                     "without_replacement, with_replacement"),
    (dict(step=0.0), r"step: expected a number in \(0, inf\), got 0.0"),
    (dict(step=-0.1), r"step: expected a number in \(0, inf\)"),
    (dict(check_every=0), r"check_every: expected an integer in \[1, inf\)"),
    (dict(batch_rng=None), "SGD needs batch_rng"),
    (dict(batch_rng="seed"), "batch_rng must be"),
    (dict(batch_rng=None, batch_size=None, batches=np.zeros(5, dtype=int)), r"shape \(steps >= 1, b\).*got shape \(5,\)"),
    (dict(batch_rng=None, batch_size=None, batches=np.zeros((5, 7), dtype=int)), r"1 <= b <= N = 6.*\(5, 7\)"),
    (dict(batch_rng=None, batch_size=None, batches=np.zeros((0, 2), dtype=int)), r"steps >= 1"),
    (dict(batch_rng=None, batch_size=None, batches=np.full((5, 2), 6)), r"row indices must be in \[0, N - 1 = 5\]"),
    (dict(batch_rng=None, batch_size=None, batches=np.full((5, 2), -1)), r"row indices must be in \[0, N - 1 = 5\]"),
    (dict(batch_rng=None, batch_size=None, batches=np.zeros((5, 2))), "integer row indices"),
    (dict(batch_size=3, batches=np.zeros((5, 2), dtype=int), batch_rng=None), "does not match"),
    (dict(batches=np.zeros((5, 2), dtype=int)), "not both"),
])
def test_bad_sgd_input_raises_a_value_error_naming_the_key(rng, kwargs, match):
    X, Y = random_problem(rng, 6, 10, 1)
    U0, V0 = init.gaussian(10, 1, 20, 0.5, rng)
    options = dict(method="sgd", step=0.1, batch_size=2, batch_rng=0)
    options.update(kwargs)
    with pytest.raises(ValueError, match=match):
        linflow.simulate(X, Y, U0, V0, **options)


def test_batch_options_are_refused_for_other_methods(rng):
    X, Y = random_problem(rng, 6, 10, 1)
    U0, V0 = init.gaussian(10, 1, 20, 0.5, rng)
    with pytest.raises(ValueError, match="batch_size is used only by the methods sgd, sgd_explicit"):
        linflow.simulate(X, Y, U0, V0, method="gd", step=0.1, batch_size=2)
    with pytest.raises(ValueError, match="explicit weights"):
        p = theory.reduce_problem(X, Y)
        linflow.simulate(X, Y, init=init.wishart(1, p.r, 10 - p.r, 50, 0.1, rng), method="sgd_explicit", step=0.1,
                         batch_size=2, batch_rng=0)


SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SGD_CONFIG = {
    "seed_entropy": 1,
    "datasets": {"g": {"kind": "gaussian", "n": 20, "N": 8, "m": 1}},
    "experiments": {"s": {"dataset": "g", "widths": [30], "seeds": 2,
                          "cases": {"b": {"init": "gaussian", "alpha": 0.5, "sweep": {"batch_size": [1, 4]}}},
                          "simulation": {"method": "sgd", "step": 0.1, "batch_sampling": "with_replacement"}}},
    "figures": {},
}


def validate(config):
    from snakemake.utils import validate as snakemake_validate

    snakemake_validate(copy.deepcopy(config), str(SCHEMA), set_default=False)


def test_an_sgd_config_validates_and_sweeps_the_batch_size():
    validate(SGD_CONFIG)
    cases = grid.plan(SGD_CONFIG).experiments["s"].cases
    assert {c: p["batch_size"] for c, p in cases.items()} == {"b1": 1, "b4": 4}
    assert all(p["batch_sampling"] == "with_replacement" and p["check_every"] == 1 for p in cases.values())


@pytest.mark.parametrize("change,words", [
    (lambda s: s["simulation"].update(batch_sampling="shuffle"),
     ["'shuffle' is not one of", "'without_replacement', 'with_replacement'"]),
    (lambda s: s["cases"]["b"]["sweep"].update(batch_size=[0, 4]), ["0 is less than the minimum of 1"]),
    (lambda s: s["simulation"].update(step=0), ["0 is less than or equal to the minimum of 0"]),
    (lambda s: s["simulation"].update(check_every=0), ["0 is less than the minimum of 1"]),
    (lambda s: s["simulation"].update(method="gd", batch_sampling="with_replacement"),
     ["'batch_sampling' is not one of"]),
])
def test_the_schema_refuses_bad_sgd_settings_naming_the_key(change, words):
    config = copy.deepcopy(SGD_CONFIG)
    change(config["experiments"]["s"])
    with pytest.raises(Exception) as error:
        validate(config)
    for word in words:
        assert word in str(error.value), f"{word!r} not in {error.value}"


def test_batch_size_above_n_is_refused_by_the_run():
    """The schema cannot see N; the run names the key and the allowed range."""
    X, Y = random_problem(np.random.default_rng(0), 8, 20, 1)
    with pytest.raises(ValueError, match=r"batch_size: expected an integer in \[1, N = 8\]"):
        batch.run_one(batch.Reductions(X, Y), experiment="s", case="b", width=30, seed=0,
                      params=params(batch_size=9), entropy=1, dataset_attrs={})


def test_resources_cover_sgd():
    from linflow import sgd

    for b in (1, 3, 100):  # the block of batches a stream holds fits the memory estimate
        stream = sgd.BatchStream(np.random.default_rng(0), 100, b, "with_replacement")
        next(stream)
        assert 0 < stream._block.nbytes <= resources.SGD_BATCH_BYTES
    p = params()
    assert resources.run_memory_bytes(p, n=500, m=1, rank=100, width=10) > resources.run_memory_bytes(
        params(method="gd", batch_size=None), n=500, m=1, rank=100, width=10)
    assert resources.run_seconds(p, n=500, m=1, rank=100, width=10**6) > 300 * 3e-5
    explicit = params(method="sgd_explicit")
    assert resources.run_memory_bytes(explicit, n=500, m=1, rank=100, width=10**5) > resources.run_memory_bytes(
        p, n=500, m=1, rank=100, width=10**5)


def test_default_config_has_the_sgd_experiments():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    plan = grid.plan(config)
    assert {"sgd_batch", "gd_step"} <= set(plan.experiments)
    assert {p["method"] for p in plan.experiments["sgd_batch"].cases.values()} == {"sgd"}


# ---------------------------------------------------------------------------
# The workflow's path for SGD experiments: chunks -> summary -> figures
# ---------------------------------------------------------------------------

PIPELINE_CONFIG = {
    "seed_entropy": 3,
    "datasets": {"g": {"kind": "gaussian", "n": 20, "N": 6, "m": 1}},
    "experiments": {
        "sgd_batch": {"dataset": "g", "widths": [30, 300, 3000], "seeds": 3,
                      "cases": {"b": {"init": "gaussian", "alpha": 0.5, "sampling": "wishart",
                                      "sweep": {"batch_size": [1, 6]}}},
                      "simulation": {"method": "sgd", "step": 0.2, "stop_factor": 1e-6}},
        "gd_step": {"dataset": "g", "widths": [30, 3000], "seeds": 3,
                    "cases": {"step": {"init": "gaussian", "alpha": 0.5, "sampling": "wishart",
                                       "sweep": {"step": [0.05, 0.2, 50.0]}}},
                    "simulation": {"method": "gd", "stop_factor": 1e-6}},
    },
    "figures": {},
}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    from linflow import aggregate, data, record

    folder = tmp_path_factory.mktemp("pipeline")
    X, Y = data.make_dataset("gaussian", n=20, N=6, m=1, noise=0.01, rng=np.random.default_rng(0))
    dataset = folder / "dataset.nc"
    record.write_netcdf(record.dataset_record(X, Y, theory.reduce_problem(X, Y), {"kind": "gaussian"}), dataset)
    plan = grid.plan(PIPELINE_CONFIG)
    summaries = {}
    for name, experiment in plan.experiments.items():
        tables = []
        for chunk in experiment.chunks:
            table = folder / name / "chunks" / f"{chunk.id}.nc"
            batch.run_chunk(dataset, plan.chunk_spec(chunk), folder / name / "runs" / chunk.id, table,
                            log=lambda line: None)
            tables.append(table)
        summary = aggregate.summarize(tables, experiment=name, root=folder / name)
        aggregate.write_outputs(summary, summary_nc=folder / name / "summary.nc", summary_csv=folder / name / "s.csv",
                                runs_csv=folder / name / "runs.csv", fits_csv=folder / name / "fits.csv")
        summaries[name] = summary
    return folder, summaries


def test_sgd_experiments_aggregate_with_the_case_parameter_as_a_coordinate(pipeline):
    _, summaries = pipeline
    sgd_summary, step_summary = summaries["sgd_batch"], summaries["gd_step"]
    assert list(sgd_summary["batch_size"].values) == [1, 6]
    assert np.all(sgd_summary["status"].values == "converged")
    assert np.all(np.isfinite(sgd_summary["slope_fro"].values))
    assert list(step_summary["step"].values) == [0.05, 0.2, 50.0]
    assert np.all(step_summary["n_diverged"].sel(case="step50").values == 3)  # recorded, excluded
    assert np.all(step_summary["n_converged"].sel(case="step0.05").values == 3)


@pytest.mark.parametrize("experiment", ["sgd_batch", "gd_step"])
@pytest.mark.parametrize("kind", ["sgd_batch", "gd_step"])
def test_sgd_figures_draw_from_the_summary(pipeline, kind, experiment):
    """Each figure draws from its experiment's summary, and from any other summary too."""
    from linflow import plots

    folder, _ = pipeline
    png, pdf = folder / f"{kind}-{experiment}.png", folder / f"{kind}-{experiment}.pdf"
    plots.draw(kind, [folder / experiment / "summary.nc"], png=png, pdf=pdf)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:4] == b"%PDF"


@pytest.mark.parametrize("kind", ["sgd_batch", "gd_step"])
def test_sgd_figures_follow_the_figure_layout(pipeline, kind):
    """One-column panels and no text under 7 pt, as every other figure (tests/test_workflow.py),
    and one legend in which each label appears once, also when two summaries repeat labels."""
    from figure_helpers import assert_one_column_panels_and_legible_text, draw

    folder, _ = pipeline
    plt, fig, texts = draw(kind, [folder / "sgd_batch" / "summary.nc", folder / "gd_step" / "summary.nc"])
    try:
        assert_one_column_panels_and_legible_text(fig, texts)
        assert len(fig.legends) == 1  # one legend below the panels, each label once
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert len(labels) == len(set(labels)) > 0
    finally:
        plt.close(fig)
