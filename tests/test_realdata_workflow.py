"""Real data in the workflow: a data file is an input (editing it reruns exactly its dataset and
the simulations that use it), a scikit-learn dataset runs, figures name the data they show."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import xarray as xr
import yaml

from conftest import copy_repository
from linflow import realdata
from workflow_helpers import scheduled_jobs, snakemake

pytestmark = pytest.mark.workflow

CASES = {"a": {"init": "gaussian", "alpha": 0.5, "sampling": "wishart"}}
CONFIG = {
    "seed_entropy": 3,
    "datasets": {
        "mine": {"kind": "file", "path": "inputs/mine.npz", "standardize": True},
        "labels": {"kind": "file", "path": "inputs/labels.nc", "one_hot": True, "subsample": 30},
        "lin": {"kind": "sklearn", "source": "linnerud", "center": True},
        "synthetic": {"kind": "gaussian", "n": 20, "N": 8, "m": 1},
    },
    "experiments": {name: {"dataset": name, "cases": CASES, "widths": [100, 1000], "seeds": 1,
                           "simulation": {"method": "flow"}}
                    for name in ("mine", "labels", "lin", "synthetic")},
    "figures": {"mine_bias": {"kind": "implicit_bias", "experiments": ["mine"]},
                "lin_bias": {"kind": "implicit_bias", "experiments": ["lin"]},
                "synthetic_bias": {"kind": "implicit_bias", "experiments": ["synthetic"]}},
}


def write_inputs(repo, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((25, 12))
    (repo / "inputs").mkdir(exist_ok=True)
    np.savez(repo / "inputs" / "mine.npz", X=X, Y=X @ rng.standard_normal((12, 2)))
    labels = rng.integers(0, 4, size=(40, 1))
    xr.Dataset({"X": (("sample", "pixel"), rng.standard_normal((40, 9))),
                "Y": (("sample", "label"), labels)}).to_netcdf(repo / "inputs" / "labels.nc")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    pytest.importorskip("sklearn")
    repo = copy_repository(tmp_path_factory.mktemp("realdata") / "repo")
    (repo / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    write_inputs(repo)
    snakemake(repo, "--cores", "2")
    return repo


def test_real_datasets_record_what_came_out(repo):
    with xr.open_dataset(repo / "data" / "mine" / "dataset.nc") as ds:
        assert ds.attrs["source_sha256"] == realdata.sha256(repo / "inputs" / "mine.npz")
        assert (int(ds.attrs["N"]), int(ds.attrs["n"]), int(ds.attrs["m"]), int(ds.attrs["r"])) == (25, 12, 2, 12)
        assert json.loads(ds.attrs["parameters"])["standardize"] is True
    with xr.open_dataset(repo / "data" / "labels" / "dataset.nc") as ds:
        assert ds["Y"].shape == (30, 4) and np.all(ds["Y"].values.sum(axis=1) == 1)
    with xr.open_dataset(repo / "results" / "lin" / "summary.nc") as summary:
        described = json.loads(summary.attrs["data"])
        assert (described["name"], described["N"], described["n"], described["m"]) == ("lin", 20, 3, 3)
        assert summary["status"].values.ravel().tolist() == ["converged"] * 2
    for name in ("mine_bias", "lin_bias", "synthetic_bias"):
        assert (repo / "results" / "figures" / f"{name}.png").stat().st_size > 10_000


def test_editing_a_data_file_reruns_exactly_its_dataset_and_simulations(repo):
    assert scheduled_jobs(repo) == Counter()
    path = repo / "inputs" / "mine.npz"
    before = path.read_bytes()
    rng = np.random.default_rng(1)
    X = rng.standard_normal((25, 12))
    np.savez(path, X=X, Y=X @ rng.standard_normal((12, 2)))
    try:
        # its dataset, its experiment's 2 chunks, its summary and the figure that reads it
        assert scheduled_jobs(repo) == Counter(dataset=1, simulate=2, aggregate=1, figure=1, all=1)
    finally:
        path.write_bytes(before)
        snakemake(repo, "--cores", "2", "--touch")  # back to "nothing to do" for the other tests


def test_a_bad_data_file_stops_the_plan_before_any_job(repo, tmp_path):
    broken = copy_repository(tmp_path / "broken")
    (broken / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    write_inputs(broken)
    rng = np.random.default_rng(0)
    np.savez(broken / "inputs" / "mine.npz", X=rng.standard_normal((25, 12)), Y=rng.standard_normal(25))
    proc = snakemake(broken, "--cores", "2", check=False)
    assert proc.returncode != 0
    assert "datasets.mine: inputs/mine.npz: variable 'Y' is 1-D (shape (25,))" in proc.stdout + proc.stderr
    assert not (broken / "data").exists() and not (broken / "results").exists()
