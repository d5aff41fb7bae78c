"""Shared fixtures: small random problems, and a temporary copy of the repository for the
workflow tests (so Snakemake runs never touch the working tree)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Single-threaded BLAS, as in the workflow's jobs: the matrices are small, and threads only
# contend on a loaded 2-core CI machine (set before NumPy loads its BLAS).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")


def pytest_collection_modifyitems(config, items):
    """The Slurm tests first: with two xdist workers (``--dist loadfile``, pyproject.toml) one
    worker spends their minutes mostly waiting on the cluster while the other runs the rest;
    collected last, they would be the tail."""
    items.sort(key=lambda item: item.get_closest_marker("slurm") is None)


def skip_unless_ci(reason: str) -> None:
    """Skip where a test's environment cannot be had (no root, no apt); under CI=true, where
    the test must run, the same condition is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true, so this test must run, but: {reason}")
    pytest.skip(reason)


def random_problem(rng, N, n, m, scale=1.0):
    X = rng.standard_normal((N, n)) / np.sqrt(n)
    Y = scale * rng.standard_normal((N, m))
    return X, Y


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def copy_repository(target: Path, config: Path | None = None) -> Path:
    """Copy what the workflow needs (no results, no .snakemake) into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "workflow", "src", "profiles", "config.yaml", "pyproject.toml"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif source.exists():
            shutil.copy2(source, target / name)
    if config is not None:
        shutil.copy2(config, target / "config.yaml")
    return target
