"""Failure modes of sweeps: interruption, locks, diverging runs, determinism, corrupt inputs."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from conftest import REPO, copy_repository
import linflow
from linflow import plots, record, seeding
from workflow_helpers import local_env, scheduled_jobs, snakemake

pytestmark = pytest.mark.workflow
SMOKE = REPO / "tests" / "config" / "smoke.yaml"
FAILURES = REPO / "tests" / "config" / "failures.yaml"


def checksums(repo: Path, pattern: str = "runs/**/*.nc") -> dict:
    """Checksums of the finished files (a writer killed mid-write leaves only its hidden
    temporary file, ``.<name>.<random>.tmp.nc``, never a file under the final name)."""
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((repo / "results").rglob(pattern))
            if not p.name.startswith(".")}


def test_interrupted_sweep_resumes_without_touching_finished_chunks(tmp_path):
    repo = copy_repository(tmp_path / "repo", SMOKE)
    total = scheduled_jobs(repo)["simulate"]
    proc = subprocess.Popen(["snakemake", "--cores", "2"], cwd=repo, start_new_session=True, env=local_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while len(checksums(repo, "chunks/*.nc") if (repo / "results").exists() else {}) < 4:
            assert proc.poll() is None, "workflow finished before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # A second invocation on the same directory is refused by Snakemake's lock
        # (--rerun-incomplete, or it may stop earlier, on the first run's in-progress outputs).
        second = snakemake(repo, "--cores", "1", "--rerun-incomplete", timeout=120, check=False)
        assert second.returncode != 0 and "Directory cannot be locked" in second.stdout + second.stderr
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole job tree, as a killed node would
        proc.wait()
    time.sleep(0.5)
    tables = checksums(repo, "chunks/*.nc")
    assert 4 <= len(tables) < total
    for path in checksums(repo):
        record.open_runs(path)  # every records file that exists is complete (atomic writes), even in a killed chunk

    snakemake(repo, "--unlock", timeout=120)  # the killed run left its lock behind
    # Chunks killed while running are "incomplete" to Snakemake and are rerun as a whole (a job
    # killed after writing its table but before Snakemake recorded it counts as incomplete too).
    dry = snakemake(repo, "-n", "--cores", "1", timeout=300, check=False)
    listed = (dry.stdout + dry.stderr).split("Incomplete files:", 1)
    incomplete = {line.strip() for line in listed[1].splitlines()} if len(listed) == 2 else set()
    finished = {table for table in tables if str(table.relative_to(repo)) not in incomplete}
    assert len(finished) >= len(tables) - 2  # at most one job per core was caught in that window
    records = {t.parent.parent / "runs" / t.name for t in finished}  # a table is written after its records
    before = {p: c for p, c in checksums(repo).items() if p in records}
    assert len(before) == len(finished)
    before.update({t: tables[t] for t in finished})
    rerun = snakemake(repo, "--cores", "2", "--rerun-incomplete")
    output = rerun.stdout + rerun.stderr
    stats = output.split("Job stats:", 1)[1]
    simulate_line = next(line for line in stats.splitlines() if line.strip().startswith("simulate"))
    assert int(simulate_line.split()[1]) == total - len(finished)
    after = {**checksums(repo), **checksums(repo, "chunks/*.nc")}
    assert len(checksums(repo, "chunks/*.nc")) == total
    assert {p: after[p] for p in before} == before  # finished chunks byte-identical
    assert not list((repo / "results").rglob("*.tmp.nc"))  # killed chunks' temporaries were removed


def run_record(folder: Path, **where) -> xr.Dataset:
    """A run's record, found as a user would: its records file and index from the summary."""
    summary = linflow.open_sweep(folder).sel(where)
    return record.open_run(folder / str(summary["file"].item()), int(summary["record"].item()))


@pytest.fixture(scope="module")
def failures_repo(tmp_path_factory):
    repo = copy_repository(tmp_path_factory.mktemp("failures") / "repo", FAILURES)
    proc = snakemake(repo, "--cores", "2")
    return repo, proc.stdout + proc.stderr


def test_diverged_and_unconverged_runs_are_reported_and_excluded(failures_repo):
    repo, _ = failures_repo
    unstable = pd.read_csv(repo / "results" / "unstable" / "summary.csv").set_index("width")
    overflow = linflow.open_sweep(repo / "results" / "overflow")
    assert (overflow["status"].sel(case="huge") == "failed").all()  # a bad run costs only itself
    assert (overflow["status"].sel(case="ok") == "converged").all()
    assert "initial loss is not finite" in str(overflow["status_message"].sel(case="huge", width=20, seed=0).item())
    assert np.isnan(overflow["final_distance_fro"].sel(case="huge")).all()
    assert int(overflow["n_failed"].sum()) == 4
    assert unstable.loc[1000, "n_diverged"] == 2 and np.isnan(unstable.loc[1000, "distance_fro_mean"])
    assert unstable.loc[10, "n_converged"] == 2
    runs = pd.read_csv(repo / "results" / "unstable" / "runs.csv")
    assert set(runs.loc[runs["width"] == 1000, "status"]) == {"diverged"}
    short = pd.read_csv(repo / "results" / "short" / "summary.csv")
    assert short["n_not_converged"].sum() == 8 and short["n_converged"].sum() == 0
    for name in ("bias_unstable", "bias_stable", "tightness", "bias_overflow"):
        assert (repo / "results" / "figures" / f"{name}.png").stat().st_size > 10_000
    ds = run_record(repo / "results" / "unstable", case="a1", width=1000, seed=0)
    assert ds["status"].item() == "diverged" and np.all(np.isfinite(ds["loss"].values))


def test_flow_runs_record_their_numerical_health(failures_repo):
    repo, _ = failures_repo
    summary = xr.open_dataset(repo / "results" / "stable" / "summary.nc", engine="netcdf4")
    assert np.all(summary["imbalance_drift"].values < 1e-8)
    ds = run_record(repo / "results" / "stable", case="alpha0.50", width=50, seed=0)
    assert "rtol" in ds.attrs["parameters"] and ds["imbalance_drift"].attrs["long_name"]


def data_variables(repo: Path) -> dict:
    """Every NetCDF file's variables; the only ones that may differ between runs are the
    measured wall times (attributes, and a variable of the chunk tables and summaries)."""
    files = sorted(list((repo / "results").rglob("*.nc")) + list((repo / "data").rglob("*.nc")))
    out = {}
    for p in files:
        ds = record.open_netcdf(p).drop_attrs().drop_vars("wall_time_seconds", errors="ignore")
        if "attributes" in ds:  # a records file: each run's global attributes, as JSON
            runs = [{k: v for k, v in json.loads(text).items() if k not in ("wall_time_seconds", "history")}
                    for text in ds["attributes"].values]
            ds["attributes"] = ("run", np.array([json.dumps(r, sort_keys=True) for r in runs], dtype=object))
        out[p.relative_to(repo)] = ds
    return out


def test_results_do_not_depend_on_cores(failures_repo, tmp_path):
    repo, _ = failures_repo
    serial = copy_repository(tmp_path / "serial", FAILURES)
    snakemake(serial, "--cores", "1")
    a, b = data_variables(repo), data_variables(serial)
    assert a.keys() == b.keys()
    for path in a:
        xr.testing.assert_identical(a[path], b[path])  # every data variable, bit for bit


def test_random_streams_are_independent_and_stable():
    def draw(*key):
        return seeding.rng_for(5, *key).standard_normal(4)

    assert np.array_equal(draw("init", "exp", 100, 0), draw("init", "exp", 100, 0))
    streams = [draw("init", "exp", w, s) for w in (100, 200) for s in (0, 1)] + [draw("init", "other", 100, 0)]
    assert len({tuple(x) for x in streams}) == len(streams)


def test_figure_with_corrupt_input_names_the_file(failures_repo, tmp_path):
    repo, _ = failures_repo
    broken = tmp_path / "summary.nc"
    broken.write_bytes((repo / "results" / "stable" / "summary.nc").read_bytes()[:1500])
    with pytest.raises(record.CorruptFileError, match="summary.nc.*delete it and rerun"):
        plots.draw("implicit_bias", [broken], png=tmp_path / "f.png", pdf=tmp_path / "f.pdf")
    assert not (tmp_path / "f.png").exists()
