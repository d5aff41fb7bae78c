"""A small sweep (tests/config/slurm.yaml) through a real single-node Slurm cluster with profiles/slurm.

The module brings the cluster up with tests/slurm/cluster.sh (skipped where that is impossible:
no root, no apt) and always takes it down again. One Snakemake run with the SLURM executor
plugin, simulations grouped, is compared with a local run of the same config.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from conftest import REPO, copy_repository, skip_unless_ci
from linflow import grid
from workflow_helpers import snakemake

pytestmark = pytest.mark.slurm

CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
TEST_PROFILE = REPO / "tests" / "slurm" / "profile"
SWEEP = REPO / "tests" / "config" / "slurm.yaml"  # every stage, few jobs: Slurm latency sets the time
SKIP = 77  # cluster.sh: cannot bring a cluster up here (not root, no apt)
TIMEOUT = 900  # seconds for one Snakemake run; a hang (e.g. status polling) fails the test


def _cluster(command: str, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["timeout", "-k", "10", str(timeout), str(CLUSTER), command],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running cluster (partition `debug`) for the module; `cluster.sh down` in every case."""
    try:
        up = _cluster("up", timeout=900)  # may apt-get install slurm and munge first
        if up.returncode == SKIP:
            skip_unless_ci(f"no Slurm test cluster possible here (cluster.sh up exited 77): {up.stderr.strip()}")
        if up.returncode != 0:
            pytest.fail(f"cluster.sh up failed ({up.returncode}):\n{up.stdout}\n{up.stderr}")
        yield
    finally:
        down = _cluster("down", timeout=120)
        if down.returncode not in (0, SKIP):
            pytest.fail(f"cluster.sh down failed ({down.returncode}):\n{down.stdout}\n{down.stderr}")


class _Snakemake:
    """``timeout -k 10 TIMEOUT snakemake <args>`` started in ``repo`` (in the background, in a
    session of its own), output in ``repo/<name>.log``."""

    def __init__(self, repo: Path, *args: str, name: str):
        self.cmd = ["timeout", "-k", "10", str(TIMEOUT), "snakemake", *args]
        self.repo, self.name, self.log = repo, name, repo / f"{name}.log"
        self.start = time.monotonic()
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(self.cmd, cwd=repo, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.end = None
        self.reaper = threading.Thread(target=self._reap, daemon=True)  # notes when it ended
        self.reaper.start()

    def _reap(self) -> None:
        self.proc.wait()
        self.end = time.monotonic()

    def wait(self) -> None:
        returncode = self.proc.wait()
        self.reaper.join()
        elapsed = self.end - self.start
        if returncode != 0:
            hint = " (timed out: hung?)" if returncode in (124, 137) else ""
            raise AssertionError(f"{' '.join(self.cmd)} failed ({returncode}){hint} after {elapsed:.0f} s "
                                 f"in {self.repo}:\n{self.log.read_text()[-8000:]}")
        print(f"\n{self.name}: {elapsed:.0f} s")

    def stop(self) -> None:
        """End the run if it is still going (after another one failed)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory):
    """The sweep run (a) through Slurm with profiles/slurm plus the test partition and
    limits, simulations packed into group jobs, and (b) locally on 2 cores. Both at once: the
    local run only competes for CPU time, and its results must not depend on that."""
    slurm_repo = copy_repository(tmp_path_factory.mktemp("slurm") / "repo", SWEEP)
    local_repo = copy_repository(tmp_path_factory.mktemp("local") / "repo", SWEEP)
    local = _Snakemake(local_repo, "--cores", "2", name="snakemake-local")
    try:
        slurm = _Snakemake(
            slurm_repo,
            "--profile", "profiles/slurm",
            "--profile", str(TEST_PROFILE),
            name="snakemake-slurm",
        )
        try:
            slurm.wait()
        finally:
            slurm.stop()
        local.wait()
    finally:
        local.stop()
    return slurm_repo, local_repo


@pytest.fixture(scope="module")
def slurm_repo(runs):
    return runs[0]


@pytest.fixture(scope="module")
def local_repo(runs):
    return runs[1]


def _n_simulations() -> int:
    """Simulations in the sweep: one per (experiment, case, width, seed)."""
    plan = grid.plan(yaml.safe_load(SWEEP.read_text()))
    return sum(e.n_runs for e in plan.experiments.values())


def _run_files(repo: Path) -> list[Path]:
    return sorted(p.relative_to(repo) for p in repo.glob("results/*/runs/**/*.nc"))


def _open(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()


def _slurm_logs(repo: Path) -> list[Path]:
    return sorted((repo / ".snakemake" / "slurm_logs").rglob("*.log"))


def test_jobs_ran_under_slurm(slurm_repo):
    """Every job except `all` was an sbatch job: its Slurm log exists, and every run record
    names the Slurm job that wrote it."""
    logs = _slurm_logs(slurm_repo)
    kinds = {log.relative_to(slurm_repo / ".snakemake" / "slurm_logs").parts[0] for log in logs}
    assert {"rule_dataset", "rule_aggregate", "rule_figure"} <= kinds, kinds
    assert any(kind.startswith("group_simulations") for kind in kinds), kinds
    assert "rule_simulate" not in kinds, "simulations were submitted one by one, not grouped"
    log_ids = {log.stem for log in logs}
    assert all(job_id.isdigit() for job_id in log_ids), log_ids

    runs = _run_files(slurm_repo)  # the chunks' records files
    assert sum(_open(slurm_repo / path).sizes["run"] for path in runs) == _n_simulations(), runs
    for path in runs:
        job_id = _open(slurm_repo / path).attrs.get("slurm_job_id", "")
        assert str(job_id).strip(), f"{path} has no slurm_job_id"
        assert str(job_id) in log_ids, f"{path}: Slurm job {job_id} has no log in .snakemake/slurm_logs"
    for path in sorted(slurm_repo.glob("data/*/dataset.nc")) + sorted(slurm_repo.glob("results/*/summary.nc")):
        assert str(_open(path).attrs.get("slurm_job_id", "")).strip(), f"{path} has no slurm_job_id"


def test_simulations_were_grouped(slurm_repo):
    """Group `simulations` packs several simulations into one Slurm job."""
    runs = _run_files(slurm_repo)
    jobs = {str(_open(slurm_repo / path).attrs["slurm_job_id"]) for path in runs}
    group_logs = [log for log in _slurm_logs(slurm_repo) if "group_simulations" in str(log)]
    chunks = sorted(slurm_repo.glob("results/*/chunks/*.nc"))
    print(f"\n{_n_simulations()} simulations in {len(chunks)} chunks, {len(jobs)} Slurm jobs")
    assert 1 <= len(jobs) < len(chunks) == len(runs) < _n_simulations()
    assert len(group_logs) == len(jobs)


def _assert_same_data(a: xr.Dataset, b: xr.Dataset, where: str) -> None:
    """Same variables, coordinates, dtypes and values bit for bit (NaN in the same places);
    global attributes (history, wall time, slurm_job_id, ...) and the measured wall times of
    chunk tables and summaries are not compared."""
    a, b = (ds.drop_vars("wall_time_seconds", errors="ignore") for ds in (a, b))
    if "attributes" in a.variables:  # a records file: each run's global attributes, JSON
        def measured_dropped(text):
            attrs = json.loads(text)
            return {k: v for k, v in attrs.items() if k not in ("history", "wall_time_seconds", "slurm_job_id")}
        assert [measured_dropped(t) for t in a["attributes"].values] == [
            measured_dropped(t) for t in b["attributes"].values], f"{where}: attributes"
        a, b = (ds.drop_vars("attributes") for ds in (a, b))
    assert set(a.variables) == set(b.variables), where
    for name in a.variables:
        x, y = a[name].values, b[name].values
        assert a[name].dims == b[name].dims and x.dtype == y.dtype and x.shape == y.shape, f"{where}: {name}"
        if x.dtype.kind in "fcmMiub":  # numbers: compare the bytes (NaN payloads, signed zeros)
            same = np.ascontiguousarray(x).tobytes() == np.ascontiguousarray(y).tobytes()
        else:  # strings
            same = np.array_equal(x, y)
        assert same, f"{where}: {name} differs between the Slurm and the local run"
    xr.testing.assert_identical(a.drop_attrs(deep=False), b.drop_attrs(deep=False))


def test_results_identical_to_local_run(slurm_repo, local_repo):
    runs = _run_files(local_repo)
    assert runs == _run_files(slurm_repo)
    tables = [p.relative_to(local_repo) for p in sorted(local_repo.glob("results/*/chunks/*.nc"))]
    assert tables == [p.relative_to(slurm_repo) for p in sorted(slurm_repo.glob("results/*/chunks/*.nc"))]
    others = [p.relative_to(local_repo) for p in sorted(local_repo.glob("results/*/summary.nc"))]
    datasets = [p.relative_to(local_repo) for p in sorted(local_repo.glob("data/*/dataset.nc"))]
    config = yaml.safe_load(SWEEP.read_text())
    assert len(others) == len(config["experiments"]) and len(datasets) == len(config["datasets"])
    others += tables
    for path in runs + others + datasets:
        local, remote = _open(local_repo / path), _open(slurm_repo / path)
        _assert_same_data(remote, local, str(path))
        for key in ("linflow_version", "parameters", "parameters_hash"):  # same code, same inputs
            assert remote.attrs[key] == local.attrs[key], f"{path}: {key}"
        if "SLURM_JOB_ID" not in os.environ:  # pytest itself is not a Slurm job
            assert "slurm_job_id" not in local.attrs, path


CANCEL = REPO / "tests" / "config" / "cancel.yaml"
SLOW_CHUNK = "results/slow/chunks/h20000_b0.nc"


def _running_jobs_for(target: str) -> list[str]:
    """Ids of running Slurm jobs whose batch script names ``target`` (a group job's comment
    does not name its members, but its script lists the jobs it runs)."""
    out = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i"], capture_output=True, text=True,
                         check=True).stdout
    found = []
    for job in out.split():
        script = subprocess.run(["scontrol", "write", "batch_script", job, "-"], capture_output=True, text=True)
        if target in script.stdout:
            found.append(job)
    return found


def test_a_cancelled_job_fails_and_only_it_is_recomputed(slurm_cluster, tmp_path):
    """scancel of a running simulation job: Snakemake reports it as failed, nothing it left
    (its records stay in memory until its last run) is taken for a finished chunk, and the next
    run through the profile computes only that chunk."""
    repo = copy_repository(tmp_path / "repo", CANCEL)
    profile = ("--profile", "profiles/slurm", "--profile", str(TEST_PROFILE), "--group-components", "simulations=1")
    run = _Snakemake(repo, *profile, name="snakemake-cancel")
    try:
        deadline = time.monotonic() + 300
        target = None
        while target is None:
            assert run.proc.poll() is None, run.log.read_text()[-4000:]
            assert time.monotonic() < deadline, "the slow job never ran"
            running = _running_jobs_for("h20000_b0")
            if running:  # started: a few seconds in, it is inside its long run (about 25 s)
                time.sleep(5)
                target = running[0]
            time.sleep(0.5)
        subprocess.run(["scancel", target], check=True)
        returncode = run.proc.wait()
        run.reaper.join()
    finally:
        run.stop()
    output = run.log.read_text()
    assert returncode != 0, output[-4000:]
    assert "Error in rule simulate" in output and "h20000_b0" in output, output[-4000:]
    assert not (repo / SLOW_CHUNK).exists()
    assert len(list(repo.glob("results/quick/chunks/*.nc"))) == 2  # the other jobs finished (keep-going)
    # Nothing the cancelled job left counts as done: a dry run schedules exactly that chunk.
    dry = snakemake(repo, "-n", "--cores", "1", timeout=300)
    stats = (dry.stdout + dry.stderr).split("Job stats:", 1)[1]
    assert re.search(r"^simulate\s+1\s*$", stats, re.M), stats
    rerun = _Snakemake(repo, *profile, name="snakemake-cancel-rerun")
    try:
        rerun.wait()
    finally:
        rerun.stop()
    stats = rerun.log.read_text().split("Job stats:", 1)[1]
    assert re.search(r"^simulate\s+1\s*$", stats, re.M), stats
    assert (repo / SLOW_CHUNK).exists()
