"""Real data: kind file (NetCDF, npz) and kind sklearn, the preprocessing keys, the errors on
bad input (message checked, nothing written), the economy reduction and the data's memory term."""

from __future__ import annotations

import sys
import tracemalloc

import numpy as np
import pytest
import xarray as xr

from linflow import data, grid, realdata, resources, seeding, theory
from linflow import parameters as P
from linflow.cli import main as cli


def write(path, X, Y, **extra):
    """X, Y (and any other variables) as .npz or NetCDF, by the suffix."""
    if str(path).endswith(".npz"):
        np.savez(path, X=X, Y=Y, **extra)
    else:
        variables = {"X": (("sample", "feature"), X)}
        variables.update({name: (("sample",) + tuple(f"{name}_{i}" for i in range(np.ndim(v) - 1)), v)
                          for name, v in dict(Y=Y, **extra).items()})
        xr.Dataset(variables).to_netcdf(path)
    return path


@pytest.fixture
def arrays():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 6)) * np.arange(1, 7) + np.arange(6)  # columns of different scale and mean
    return X, X @ rng.standard_normal((6, 2))


@pytest.mark.parametrize("suffix", [".npz", ".nc"])
def test_a_file_loads_as_stored_and_records_its_sha256(tmp_path, arrays, suffix):
    X, Y = arrays
    path = write(tmp_path / f"d{suffix}", X, Y)
    loaded = data.load("file", path=path)
    np.testing.assert_array_equal(loaded.X, X)
    np.testing.assert_array_equal(loaded.Y, Y)
    import hashlib
    assert loaded.info["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    s = np.linalg.svd(X, compute_uv=False)
    assert (loaded.info["N"], loaded.info["n"], loaded.info["m"], loaded.info["r"]) == (40, 6, 2, 6)
    assert loaded.info["lam_ratio"] == pytest.approx((s[0] / s[-1]) ** 2, rel=1e-12)
    assert realdata.dims(P.resolve({"kind": "file", "path": str(path)}, P.DATASET_PARAMETERS)) == (40, 6, 2)


def test_center_and_standardize_and_scale(tmp_path, arrays):
    X, Y = arrays
    X = X.copy()
    X[:, 2] = 0.1  # a constant column (its mean is not exactly 0.1)
    path = write(tmp_path / "d.npz", X, Y)
    centered = data.load("file", path=path, center=True).X
    np.testing.assert_allclose(centered, X - X.mean(axis=0), rtol=0, atol=1e-13)
    standard = data.load("file", path=path, standardize=True)
    assert np.all(standard.X[:, 2] == 0.0)  # the constant column is exactly 0, not round-off noise
    others = np.delete(standard.X, 2, axis=1)
    np.testing.assert_allclose(others.mean(axis=0), 0.0, atol=1e-14)
    np.testing.assert_allclose(others.std(axis=0), 1.0, rtol=1e-13)
    assert standard.problem.r == 5  # the constant column adds no singular value
    scaled = data.load("file", path=path, standardize=True, scale=0.25)
    np.testing.assert_array_equal(scaled.X, 0.25 * standard.X)
    assert scaled.info["lam_1"] == pytest.approx(standard.info["lam_1"] / 16, rel=1e-12)
    assert data.load("file", path=path, scale=3.0).X.tolist() == (3.0 * X).tolist()


def test_one_hot_turns_a_label_column_into_indicator_rows(tmp_path, arrays):
    X, _ = arrays
    labels = np.array([3, 1, 3, 7] * 10)[:, None]
    loaded = data.load("file", path=write(tmp_path / "d.npz", X, labels), one_hot=True)
    assert loaded.Y.shape == (40, 3)
    np.testing.assert_array_equal(loaded.Y[:4], [[0, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(realdata.DataError, match="one_hot needs Y to be one column of integer class labels"):
        data.load("file", path=write(tmp_path / "e.npz", X, labels + 0.5), one_hot=True)


def test_subsample_draws_rows_from_the_given_stream_in_their_order(tmp_path, arrays):
    X, Y = arrays
    path = write(tmp_path / "d.npz", X, Y)
    a = data.load("file", path=path, subsample=10, rng=np.random.default_rng(5))
    rows = np.sort(np.random.default_rng(5).choice(40, 10, replace=False))
    np.testing.assert_array_equal(a.X, X[rows])
    np.testing.assert_array_equal(a.Y, Y[rows])
    assert a.info["N"] == 10
    b = data.load("file", path=path, subsample=10, rng=np.random.default_rng(6))
    assert not np.array_equal(a.X, b.X)
    with pytest.raises(realdata.DataError, match=r"subsample 41 is more than the 40 rows .* \[1, 40\]"):
        data.load("file", path=path, subsample=41)


def test_the_dataset_command_subsamples_from_the_datasets_own_stream(tmp_path, arrays):
    X, Y = arrays
    path = write(tmp_path / "d.npz", X, Y)
    out = tmp_path / "out.nc"
    assert cli(["dataset", "--name", "mine", "--entropy", "11", "--kind", "file", "--path", path,
                "--subsample", "8", "--output", out]) == 0
    rows = np.sort(seeding.rng_for(11, "dataset", "mine").choice(40, 8, replace=False))
    with xr.open_dataset(out) as ds:
        np.testing.assert_array_equal(ds["X"].values, X[rows])
        assert (int(ds.attrs["N"]), int(ds.attrs["m"]), float(ds.attrs["rank_rtol"])) == (8, 2, 1e-10)
        assert ds.attrs["source_sha256"] == realdata.sha256(path)


def test_rank_rtol_is_the_relative_cut_of_the_singular_values(tmp_path, arrays):
    X, Y = arrays
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    s[-1] = 1e-12 * s[0]
    path = write(tmp_path / "d.npz", (U * s) @ Vt, Y)
    assert data.load("file", path=path).problem.r == 5  # default 1e-10: the tiny value is zero
    assert data.load("file", path=path, rank_rtol=1e-13).problem.r == 6


@pytest.mark.parametrize("source", P.SKLEARN_SOURCES)
def test_sklearn_datasets_load_without_download_with_the_planned_dims(source, monkeypatch):
    pytest.importorskip("sklearn")
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("the bundled datasets must not touch the network")

    monkeypatch.setattr(socket, "socket", no_network)
    loaded = data.load("sklearn", source=source)
    assert (loaded.info["N"], loaded.info["n"], loaded.info["m"]) == realdata.SKLEARN_DIMS[source]
    assert realdata.dims({"kind": "sklearn", "source": source}) == realdata.SKLEARN_DIMS[source]
    if source == "digits":
        assert np.all(loaded.Y.sum(axis=1) == 1) and set(np.unique(loaded.Y)) == {0.0, 1.0}
        assert loaded.info["r"] == 61  # three pixels are 0 in every image
        assert loaded.label.startswith("digits: N = 1797, n = 64, m = 10, r = 61, lam_1/lam_r = ")


def test_sklearn_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn now raises ImportError
    with pytest.raises(realdata.MissingExtraError, match=r"pip install 'linflow\[data\]'"):
        data.load("sklearn", source="digits")


# ---------------------------------------------------------------------------
# Bad input: an error naming the file, the variable and the expectation; nothing written
# ---------------------------------------------------------------------------


def _bad_inputs(tmp_path, X, Y):
    nan, inf = X.copy(), Y.copy()
    nan[3, 1] = np.nan
    inf[5, 0] = np.inf
    return [
        ("missing file", tmp_path / "absent.npz", {}, FileNotFoundError, r"absent\.npz: no such data file"),
        ("wrong type", write(tmp_path / "d.npz", X, Y).rename(tmp_path / "d.csv"), {}, realdata.DataError,
         r"d\.csv: unknown file type '\.csv'; expected a NetCDF file \(\.nc\) or a NumPy archive \(\.npz\)"),
        ("missing Y npz", _save(tmp_path / "noy.npz", X=X, labels=Y), {}, realdata.DataError,
         r"noy\.npz: no variable 'Y' \(the file has: X, labels\); expected X \(samples x features\) and Y"),
        ("missing X nc", _netcdf(tmp_path / "nox.nc", Z=X, Y=Y), {}, realdata.DataError,
         r"nox\.nc: no variable 'X' \(the file has: Y, Z\)"),
        ("NaN", write(tmp_path / "nan.npz", nan, Y), {}, realdata.DataError,
         r"nan\.npz: variable 'X' has 1 NaN or infinite entries \(first at row 3, column 1\); expected finite"),
        ("inf nc", write(tmp_path / "inf.nc", X, inf), {}, realdata.DataError,
         r"inf\.nc: variable 'Y' has 1 NaN or infinite entries \(first at row 5, column 0\)"),
        ("row mismatch", write(tmp_path / "rows.npz", X, Y[:-1]), {}, realdata.DataError,
         r"rows\.npz: X has 40 rows \(samples\) but Y has 39; expected the same number of rows"),
        ("1-D Y", write(tmp_path / "flat.npz", X, Y[:, 0]), {}, realdata.DataError,
         r"flat\.npz: variable 'Y' is 1-D \(shape \(40,\)\); expected a 2-D array of numbers, samples x outputs"),
        ("rank 0", write(tmp_path / "const.npz", np.ones_like(X) * 2.5, Y), {"center": True}, realdata.DataError,
         r"const\.npz: variable 'X' has rank 0 after preprocessing"),
        ("text npz", _save(tmp_path / "text.npz", X=X.astype(str), Y=Y), {}, realdata.DataError,
         r"text\.npz: variable 'X' has non-numeric entries \(dtype <U\d+\); expected a 2-D array of numbers"),
        ("objects npz", _save(tmp_path / "obj.npz", X=X, Y=np.array([["a", 1]] * 40, dtype=object)), {},
         realdata.DataError, r"obj\.npz: variable 'Y' holds Python objects \(text or mixed columns\)"),
        ("table npz", _save(tmp_path / "table.npz", X=_table(X), Y=Y), {}, realdata.DataError,
         r"table\.npz: variable 'X' is a table with columns height, city \(non-numeric: city\)"),
        ("text nc", _netcdf(tmp_path / "text.nc", X=X, Y=Y.astype(str).astype(object)), {}, realdata.DataError,
         r"text\.nc: variable 'Y' has non-numeric entries"),
    ]


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


def _netcdf(path, **arrays):
    xr.Dataset({name: (("sample", f"{name}_col"), a) for name, a in arrays.items()}).to_netcdf(path)
    return path


def _table(X):
    table = np.zeros(X.shape[0], dtype=[("height", float), ("city", "U8")])
    table["height"] = X[:, 0]
    return table


BAD = [
    "missing file", "wrong type", "missing Y npz", "missing X nc", "NaN", "inf nc", "row mismatch", "1-D Y", "rank 0",
    "text npz", "objects npz", "table npz", "text nc"]


@pytest.mark.parametrize("label", BAD)
def test_bad_data_is_refused_naming_file_variable_and_expectation(tmp_path, arrays, label):
    cases = {case[0]: case[1:] for case in _bad_inputs(tmp_path, *arrays)}
    path, options, error, pattern = cases[label]
    with pytest.raises(error, match=pattern):
        data.load("file", path=path, **options)


@pytest.mark.parametrize("label", ["missing file", "NaN", "1-D Y", "rank 0", "text npz"])
def test_the_dataset_command_exits_2_naming_the_problem_and_writes_nothing(tmp_path, arrays, label, capsys):
    cases = {case[0]: case[1:] for case in _bad_inputs(tmp_path, *arrays)}
    path, options, _, pattern = cases[label]
    out = tmp_path / "out" / "dataset.nc"
    flags = [f for key, value in options.items() for f in (P.PARAMETERS[key].flag, str(value).lower())]
    assert cli(["dataset", "--name", "x", "--kind", "file", "--path", path, *flags, "--output", out]) == 2
    assert not out.exists() and not out.parent.exists()
    assert __import__("re").search(pattern, capsys.readouterr().err)


def test_planning_refuses_bad_data_naming_the_dataset_key(tmp_path, arrays):
    X, Y = arrays
    config = {"seed_entropy": 1, "datasets": {"mine": {"kind": "file", "path": str(write(tmp_path / "f.npz", X, Y[:-1]))}},
              "experiments": {"e": {"dataset": "mine", "cases": {"a": {"init": "gaussian", "alpha": 0.5}},
                                    "widths": [100], "seeds": 1, "simulation": {"method": "flow"}}}, "figures": {}}
    with pytest.raises(grid.ConfigError, match=r"datasets\.mine: .*f\.npz: X has 40 rows \(samples\) but Y has 39"):
        grid.plan(config)
    config["datasets"]["mine"]["path"] = str(tmp_path / "absent.npz")
    with pytest.raises(grid.ConfigError, match=r"datasets\.mine: .*absent\.npz: no such data file"):
        grid.plan(config)


def test_boolean_parameters_take_true_or_false_only():
    p = P.PARAMETERS["standardize"]
    assert p.check(True) is True and p.parse("false") is False and p.parse("True") is True
    for bad in (1, "yes", 0.0):
        with pytest.raises(P.ParameterError, match="expected true or false"):
            p.check(bad)
    with pytest.raises(P.ParameterError, match="--standardize: expected true or false, got 'yes'"):
        p.parse("yes")


# ---------------------------------------------------------------------------
# Data at the sizes people have
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("N,n,r", [(300, 20, 20), (300, 20, 14), (12, 50, 12), (12, 50, 7)])
def test_economy_reduction_equals_the_full_one(N, n, r):
    rng = np.random.default_rng(N + n + r)
    X = rng.standard_normal((N, r)) @ rng.standard_normal((r, n))
    Y = rng.standard_normal((N, 3))
    p = theory.reduce_problem(X, Y)
    W, s, Vt = np.linalg.svd(X, full_matrices=True)
    assert p.W.shape == (N, r) and p.Phi1.shape == (n, r) and p.Phi2.shape == (n, n - r)
    np.testing.assert_allclose(p.s, s[:r], rtol=1e-12)
    basis = np.hstack([p.Phi1, p.Phi2])
    np.testing.assert_allclose(basis.T @ basis, np.eye(n), atol=1e-13)  # Phi2 completes Phi1
    np.testing.assert_allclose(p.Phi2 @ p.Phi2.T, Vt[r:].T @ Vt[r:], atol=1e-12)
    np.testing.assert_allclose(p.theta_hat, np.linalg.pinv(X) @ Y, atol=1e-10)
    assert p.loss_star == pytest.approx(0.5 * np.sum((Y - W[:, :r] @ (W[:, :r].T @ Y)) ** 2), rel=1e-10, abs=1e-20)


def test_the_reduction_of_tall_data_allocates_no_N_by_N_matrix():
    N, n = 3000, 20  # the N x N factor alone would be 72 MB
    X, Y = np.random.default_rng(0).standard_normal((N, n)), np.ones((N, 1))
    tracemalloc.start()
    theory.reduce_problem(X, Y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * N * N / 4, f"peak {peak / 1e6:.1f} MB"


def test_job_memory_counts_the_datas_own_terms():
    """The planned memory of a chunk grows by data_memory_bytes with N, and the refusal of a
    job uses the same term."""
    def mem(N):
        config = {"seed_entropy": 1, "datasets": {"g": {"kind": "gaussian", "n": 50, "N": N, "m": 2}},
                  "experiments": {"e": {"dataset": "g", "cases": {"a": {"init": "gaussian", "alpha": 0.5,
                                                                         "sampling": "wishart"}},
                                        "widths": [1000], "seeds": 1, "simulation": {"method": "flow"}}},
                  "figures": {}}
        plan = grid.plan(config)
        return plan.chunk_resources(plan.experiments["e"].chunks[0])["mem_mb"]

    grown = resources.data_memory_bytes(2_000_000, 50, 2) - resources.data_memory_bytes(100, 50, 2)
    assert mem(2_000_000) - mem(100) == pytest.approx(grown / 1e6, abs=1)
    assert resources.data_memory_bytes(60_000, 784, 10) == 8 * (2 * 60_000 * 784 + 60_000 * 784 + 2 * 784**2
                                                                 + 3 * 60_000 * 10) + 60_000 * 784
    params = {"method": "flow", "sampling": "wishart"}
    assert resources.job_memory_bytes(params, n=50, m=2, rank=50, width=1000, data_bytes=10**9) \
        == resources.job_memory_bytes(params, n=50, m=2, rank=50, width=1000) + 10**9
