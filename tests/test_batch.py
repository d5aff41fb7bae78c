"""Chunks: one process runs many runs, each exactly as if computed alone; a bad run costs only itself."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from linflow import aggregate, batch, grid, init, record, seeding, theory
from linflow import parameters as P


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "linflow", *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "dataset.nc"
    proc = run_cli("dataset", "--name", "g", "--kind", "gaussian", "--n", "30", "--N", "6", "--m", "2",
                   "--output", path)
    assert proc.returncode == 0, proc.stderr
    return path


CONFIG = {
    "seed_entropy": 11,
    "datasets": {"g": {"kind": "gaussian", "n": 30, "N": 6, "m": 2}},
    "experiments": {"e": {
        "dataset": "g", "widths": [40], "seeds": 3, "simulation": {"method": "flow"},
        "cases": {
            "gauss": {"init": "gaussian", "alpha": 0.5},
            # U(0) = 1e200 U0: the initial loss overflows; this run must fail alone.
            "huge": {"init": "scaled", "a": 1e200, "b": 1.0, "sampling": "explicit"},
            "wide": {"init": "invariant", "alpha": 0.4, "sampling": "wishart"},
        },
    }},
    "figures": {},
}


def run_of(folder, case, seed):
    """Run (case, seed)'s record, found through the chunk's table (file and index)."""
    table = record.open_table(folder / "table.nc")
    (i,) = np.flatnonzero((table["case"].values == case) & (table["seed"].values == seed))
    return record.open_run(table["file"].values[i], int(table["record"].values[i]))


@pytest.fixture(scope="module")
def chunk(dataset, tmp_path_factory):
    folder = tmp_path_factory.mktemp("chunk")
    plan = grid.plan(CONFIG)
    (only,) = plan.experiments["e"].chunks
    spec = plan.chunk_spec(only)
    proc = run_cli("chunk", "--dataset", dataset, "--spec", json.dumps(spec), "--records", folder / "records.nc",
                   "--table", folder / "table.nc")
    assert proc.returncode == 0, proc.stderr
    return folder, spec, proc


def test_a_run_in_a_chunk_equals_the_run_computed_alone(dataset, chunk, tmp_path):
    folder, spec, _ = chunk
    for case in ("gauss", "wide"):
        params = spec["cases"][case]
        flags = [f"{P.PARAMETERS[k].flag}={v}" for k, v in params.items()]
        alone = tmp_path / f"{case}.nc"
        proc = run_cli("simulate", "--dataset", dataset, "--experiment", "e", "--case", case, "--entropy", "11",
                       "--width", "40", "--seed", "2", *flags, "--output", alone)
        assert proc.returncode == 0, proc.stderr
        a = record.open_run(alone)
        b = run_of(folder, case, 2)
        assert a["status"].item() == "converged"
        xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())  # every variable, bit for bit
        assert a.attrs["parameters_hash"] == b.attrs["parameters_hash"]


def test_a_failing_run_is_recorded_and_costs_only_itself(chunk):
    folder, spec, proc = chunk
    table = record.open_table(folder / "table.nc")
    assert table.sizes["run"] == 9
    statuses = dict(zip(zip(table["case"].values, table["seed"].values), table["status"].values))
    for seed in range(3):
        assert statuses[("huge", seed)] == "failed"
        assert statuses[("gauss", seed)] == "converged" and statuses[("wide", seed)] == "converged"
    failed = run_of(folder, "huge", 0)
    assert failed["status"].item() == "failed" and not bool(failed["converged"])
    assert "initial" in failed.attrs["status_message"] and "ValueError" in failed.attrs["status_message"]
    assert failed.sizes["time"] == 0 and np.isnan(float(failed["final_distance_fro"]))
    assert "9/9 runs" in proc.stdout and "ETA" in proc.stdout  # progress in the job's log


def test_chunk_table_agrees_with_the_records(chunk, tmp_path):
    folder, _, _ = chunk
    assert aggregate.verify_runs([folder / "table.nc"]) == 9
    table = record.open_table(folder / "table.nc")
    assert set(table["file"].values) == {str(folder / "records.nc")} and table["record"].values.tolist() == list(range(9))
    compared = 0
    for i, path in enumerate(table["file"].values):  # every scalar of every run, bit for bit
        run = record.open_run(path, i)
        for name in record.SCALAR_VARIABLES:
            np.testing.assert_array_equal(table[name].values[i], run[name].values, err_msg=f"{path}: {name}")
            compared += 1
        assert table["status"].values[i] == run["status"].item()
    assert compared >= 9 * 20
    i = table["record"].values[(table["case"].values == "gauss") & (table["seed"].values == 1)].item()
    stack = record.RecordStack()
    for j, run in enumerate(record.open_runs(folder / "records.nc")):
        if j == i:
            run["final_distance_fro"] = run["final_distance_fro"] * (1 + 1e-9)
        stack.add(run)
    stack.write(tmp_path / "records.nc", {})
    table["file"] = ("run", np.full(9, str(tmp_path / "records.nc"), dtype=object))
    copy = tmp_path / "table.nc"
    record.write_netcdf(table, copy)
    with pytest.raises(ValueError, match="final_distance_fro"):
        aggregate.verify_runs([copy])


@pytest.mark.parametrize("spec_change,needle", [
    (lambda s: s["cases"]["gauss"].pop("rtol"), "not resolved"),
    (lambda s: s["cases"]["gauss"].update(alpha=2.5), "alpha"),
    (lambda s: s["runs"].append(["nope", 0]), "case 'nope'"),
])
def test_a_bad_spec_stops_the_chunk_before_any_run(dataset, tmp_path, spec_change, needle):
    plan = grid.plan(CONFIG)
    spec = plan.chunk_spec(plan.experiments["e"].chunks[0])
    spec_change(spec)
    proc = run_cli("chunk", "--dataset", dataset, "--spec", json.dumps(spec), "--records", tmp_path / "r.nc",
                   "--table", tmp_path / "t.nc")
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r.nc").exists() and not (tmp_path / "t.nc").exists()


def test_an_unreadable_dataset_stops_the_chunk(tmp_path):
    bad = tmp_path / "dataset.nc"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    plan = grid.plan(CONFIG)
    proc = run_cli("chunk", "--dataset", bad, "--spec", json.dumps(plan.chunk_spec(plan.experiments["e"].chunks[0])),
                   "--records", tmp_path / "r.nc", "--table", tmp_path / "t.nc")
    assert proc.returncode == 2 and "delete it and rerun" in proc.stderr
    assert not (tmp_path / "r.nc").exists()


def test_chunks_are_stable_when_seeds_widths_or_cases_are_added():
    def chunks(seeds=8, widths=(100, 1000), cases=("c1", "c2"), chunk_size=4):
        config = json.loads(json.dumps(CONFIG))
        e = config["experiments"]["e"]
        e.update(seeds=seeds, widths=list(widths), chunk_size=chunk_size,
                 cases={c: {"init": "gaussian", "alpha": 0.5} for c in cases})
        plan = grid.plan(config)
        return {c.id: grid.canonical(plan.chunk_spec(c)) for c in plan.experiments["e"].chunks}

    base = chunks()
    assert len(base) == 8  # 2 widths x 4 blocks of 2 seeds x 2 cases
    more_seeds = chunks(seeds=9)
    assert {k for k in base if more_seeds[k] != base[k]} == set() and set(more_seeds) - set(base) == {
        "h100_b4", "h1000_b4"}
    more_widths = chunks(widths=(100, 1000, 5000))
    assert all(more_widths[k] == v for k, v in base.items()) and len(more_widths) == 12
    more_cases = chunks(cases=("c1", "c2", "c3"))
    assert all(more_cases[k] != base.get(k) for k in more_cases)  # a new case joins every chunk


def test_explicit_weights_that_cannot_fit_are_refused_up_front(dataset, tmp_path):
    base = ["simulate", "--dataset", dataset, "--experiment", "e", "--width", "1000000000", "--seed", "0",
            "--init", "invariant", "--alpha", "0.5", "--method", "flow"]
    proc = run_cli(*base, "--sampling", "explicit", "--output", tmp_path / "x.nc")
    assert proc.returncode == 2, proc.stderr
    assert "width 1000000000" in proc.stderr and "bytes" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.nc").exists()
    proc = run_cli(*base, "--output", tmp_path / "wide.nc")  # sampling auto: width-independent
    assert proc.returncode == 0, proc.stderr
    ds = record.open_run(tmp_path / "wide.nc")
    assert ds["status"].item() == "converged" and float(ds["orthogonality0"]) == 0.0


def test_each_run_draws_its_initialization_from_its_own_stream(dataset, chunk):
    """Run (experiment, width, seed) draws from SeedSequence(entropy, ("init", experiment,
    width, seed)): streams differ between widths and seeds, so runs are independent draws."""
    folder, spec, _ = chunk
    X, Y, _ = batch.load_dataset(dataset)
    problem = theory.reduce_problem(X, Y)
    for seed in range(3):
        rng = seeding.rng_for(11, "init", "e", 40, seed)
        U0, V0 = init.initialize("gaussian", problem, 40, rng, alpha=0.5, sampling=spec["cases"]["gauss"]["sampling"])
        run = run_of(folder, "gauss", seed)
        expected = np.linalg.norm((problem.Phi1.T @ U0) @ V0.T)  # ||U1(0) V(0)^T||_F
        assert float(run["end_to_end0_fro"]) == pytest.approx(expected, rel=1e-12)


def test_widths_and_seeds_beyond_int32_run_and_are_recorded(dataset, tmp_path):
    """Classic netCDF has no int64 attributes: a width of 10^10 or a seed of 2^33 used to take the
    whole chunk down while its record was written."""
    config = json.loads(json.dumps(CONFIG))
    config["experiments"]["e"].update(widths=[1000, 10**10], seeds=[0, 2**33],
                                      cases={"w": {"init": "gaussian", "alpha": 0.5, "sampling": "wishart"}})
    plan = grid.plan(config)
    for chunk in plan.experiments["e"].chunks:
        folder = tmp_path / chunk.id
        proc = run_cli("chunk", "--dataset", dataset, "--spec", json.dumps(plan.chunk_spec(chunk)),
                       "--records", folder / "records.nc", "--table", folder / "table.nc")
        assert proc.returncode == 0, proc.stderr
        table = record.open_table(folder / "table.nc")
        assert set(table["status"].values) == {"converged"}, table["status_message"].values
        for case, width, seed in chunk.runs:
            ds = run_of(folder, case, seed)
            assert (int(ds.attrs["width"]), int(ds.attrs["seed"])) == (width, seed)
            assert ds["status"].item() == "converged"
        assert sorted(table["seed"].values.tolist()) == sorted(seed for _, _, seed in chunk.runs)


def test_an_error_while_storing_a_run_is_that_runs_failure(dataset, tmp_path, monkeypatch):
    plan = grid.plan(CONFIG)
    (only,) = plan.experiments["e"].chunks
    add = record.RecordStack.add

    def failing_for_gauss_seed_1(self, ds):
        if ds.attrs.get("case") == "gauss" and int(ds.attrs.get("seed", -1)) == 1 and ds["status"].item() != "failed":
            raise OSError("disk full (simulated)")
        return add(self, ds)

    monkeypatch.setattr(record.RecordStack, "add", failing_for_gauss_seed_1)
    table = batch.run_chunk(dataset, plan.chunk_spec(only), tmp_path / "records.nc", tmp_path / "table.nc",
                            log=lambda _: None)
    status = dict(zip(zip(table["case"].values, table["seed"].values), table["status"].values))
    assert status[("gauss", 1)] == "failed" and status[("gauss", 0)] == status[("gauss", 2)] == "converged"
    failed = run_of(tmp_path, "gauss", 1)
    assert "disk full (simulated)" in failed.attrs["status_message"]


EXPLICIT_GD = {
    "seed_entropy": 11, "datasets": {"g": {"kind": "gaussian", "n": 30, "N": 6, "m": 2}},
    "experiments": {"e": {"dataset": "g", "widths": [20000], "seeds": 1,
                          "simulation": {"method": "gd_explicit", "step": 0.01, "max_steps": 3},
                          "cases": {"x": {"init": "gaussian", "alpha": 0.5, "sampling": "explicit"}}}},
    "figures": {}}


def test_a_run_is_refused_from_the_jobs_declared_memory_counting_the_explicit_methods_weights(dataset, tmp_path):
    """The estimate of a gd_explicit run includes the weights it updates; the initialization's own
    check (a flow's terms) would let it through."""
    from linflow import resources

    plan = grid.plan(EXPLICIT_GD)
    params = plan.experiments["e"].cases["x"]
    data_bytes = resources.data_memory_bytes(6, 30, 2)  # the dataset's own terms, in every job
    full = resources.job_memory_bytes(params, n=30, m=2, rank=6, width=20000, data_bytes=data_bytes)
    flow_only = resources.job_memory_bytes(dict(params, method="flow"), n=30, m=2, rank=6, width=20000,
                                           data_bytes=data_bytes)
    assert flow_only < full
    declared = (flow_only + full) // 2
    table = batch.run_chunk(dataset, plan.chunk_spec(plan.experiments["e"].chunks[0]), tmp_path / "records.nc",
                            tmp_path / "t.nc", log=lambda _: None, available_memory=declared)
    assert table["status"].values.tolist() == ["failed"]
    assert "more than the" in str(table["status_message"].values[0]) and "gd_explicit" in str(
        table["status_message"].values[0])
    table = batch.run_chunk(dataset, plan.chunk_spec(plan.experiments["e"].chunks[0]), tmp_path / "records2.nc",
                            tmp_path / "t2.nc", log=lambda _: None, available_memory=full)
    assert table["status"].values.tolist() != ["failed"]


def test_the_declared_memory_decides_not_the_load_of_the_machine(dataset, tmp_path, monkeypatch):
    from linflow import resources

    monkeypatch.setattr(resources, "available_memory_bytes", lambda: 1)  # a node under heavy load
    plan = grid.plan(EXPLICIT_GD)
    spec = plan.chunk_spec(plan.experiments["e"].chunks[0])
    declared = plan.chunk_resources(plan.experiments["e"].chunks[0])["mem_mb"] * 1_000_000
    table = batch.run_chunk(dataset, spec, tmp_path / "records.nc", tmp_path / "t.nc", log=lambda _: None,
                            available_memory=declared)
    assert table["status"].values.tolist() != ["failed"], table["status_message"].values


def test_the_cgroup_limit_is_read_from_the_process_own_cgroup():
    from linflow import resources

    v2 = resources.own_cgroup_files("0::/system.slice/slurmstepd.scope/job_42/step_0\n")
    assert [str(p) for p in v2] == ["/sys/fs/cgroup/system.slice/slurmstepd.scope/job_42/step_0/memory.max"]
    v1 = resources.own_cgroup_files("12:cpu,cpuacct:/slurm/uid_0/job_7\n4:memory:/slurm/uid_0/job_7/step_0\n")
    assert [str(p) for p in v1] == ["/sys/fs/cgroup/memory/slurm/uid_0/job_7/step_0/memory.limit_in_bytes"]


def test_a_rerun_chunk_removes_the_temporary_files_a_killed_job_left(dataset, tmp_path):
    plan = grid.plan(CONFIG)
    (only,) = plan.experiments["e"].chunks
    table, records = tmp_path / "chunks" / "h40_b0.nc", tmp_path / "runs" / "h40_b0.nc"
    stale, others = [], []
    for output in (table, records):
        output.parent.mkdir()
        stale.append(output.parent / ".h40_b0.nc.abc123.tmp.nc")
        stale[-1].write_bytes(b"half a file")
        others.append(output.parent / ".h80_b0.nc.abc123.tmp.nc")  # another chunk's: not this job's to remove
        others[-1].write_bytes(b"")
    batch.run_chunk(dataset, plan.chunk_spec(only), records, table, log=lambda _: None)
    assert table.exists() and records.exists()
    assert not any(p.exists() for p in stale) and all(p.exists() for p in others)


def test_a_records_file_gives_back_every_run_bit_for_bit(tmp_path):
    """Runs of different lengths and kinds in one file (flow; gd with step; sgd with step and
    epoch; a failed run with no points): each comes back exactly as simulate built it, every
    variable, dtype and attribute, and as its own file would read."""
    import linflow

    from conftest import random_problem

    rng = np.random.default_rng(3)
    X, Y = random_problem(rng, 8, 12, 2)
    U0, V0 = init.gaussian(12, 2, 60, 0.5, rng)
    runs = [
        linflow.simulate(X, Y, U0, V0, method="flow", alpha=0.5, attrs={"case": "f", "seed": 0}),
        linflow.simulate(X, Y, U0, V0, method="gd", step=0.02, max_steps=40, attrs={"case": "g", "seed": 1}),
        linflow.simulate(X, Y, U0, V0, method="sgd", step=0.02, batch_size=3, batch_rng=4, max_steps=30,
                         attrs={"case": "s", "seed": 2}),
        record.failed_record("ValueError: boom", n=12, m=2, settings={"method": "flow", "width": 60},
                             extra_attrs={"case": "x", "seed": 3}, wall_time=0.5),
    ]
    assert [ds.sizes["time"] for ds in runs][-1] == 0 and len({ds.sizes["time"] for ds in runs}) == 4
    stack = record.RecordStack()
    assert [stack.add(ds) for ds in runs] == [0, 1, 2, 3]
    path = stack.write(tmp_path / "records.nc", {"experiment": "t"})
    assert xr.open_dataset(path).sizes["run"] == 4
    for i, (ds, back) in enumerate(zip(runs, record.open_runs(path))):
        for got in (back, record.open_run(path, i)):
            xr.testing.assert_identical(got, ds)
            assert {name: got[name].dtype for name in got.variables} == {name: ds[name].dtype for name in ds.variables}
        own = record.write_run(ds, tmp_path / f"own{i}.nc")
        xr.testing.assert_identical(record.open_run(own).drop_attrs(deep=False), back.drop_attrs(deep=False))
    assert set(runs[1].coords) == {"time", "step"} and set(runs[2].coords) == {"time", "step", "epoch"}
    with pytest.raises(ValueError, match="pass the run's index"):
        record.open_run(path)
    with pytest.raises(IndexError, match="holds 4 runs"):
        record.open_run(path, 4)


def test_open_sweep_reads_trajectories_from_the_records_file(chunk, tmp_path, monkeypatch):
    """The summary points at each run's records file and index; a selection of many runs reads
    that file once, and every run's trajectory is its own record's, interpolated."""
    import linflow
    from linflow import sweep

    folder, _, _ = chunk
    summary = aggregate.summarize([folder / "table.nc"], experiment="e", root=tmp_path)
    record.write_netcdf(summary, tmp_path / "summary.nc")
    reads = []
    read = record.read_trajectories
    monkeypatch.setattr(record, "read_trajectories", lambda path, *args: reads.append(path) or read(path, *args))
    cube = linflow.open_sweep(tmp_path, trajectories=True)
    loss = cube["excess_loss"].sel(case=["gauss", "wide"]).values  # 6 runs, one read
    assert len(reads) == 1 and loss.shape[:3] == (2, 1, 3)
    for i, case in enumerate(["gauss", "wide"]):
        for seed in range(3):
            where = dict(case=case, width=40, seed=seed)
            run = record.open_run(tmp_path / str(cube["file"].sel(where).item()), int(cube["record"].sel(where)))
            assert (run.attrs["case"], run.attrs["seed"]) == (case, seed)
            expected = sweep.interpolate(run["time"].values, run["excess_loss"].values, cube["time"].values)
            np.testing.assert_array_equal(loss[i, 0, seed], expected)
    huge = cube["excess_loss"].sel(case="huge", seed=0).values  # failed: no points, all NaN
    assert np.isnan(huge).all()


def test_a_chunks_memory_counts_the_records_it_holds(chunk):
    """A chunk holds its runs' records until it writes them (then their padded stack): the
    planned memory grows by twice the per-run estimate, which bounds the real records."""
    from linflow import resources

    folder, spec, _ = chunk
    params = spec["cases"]["gauss"]
    per_run = resources.record_bytes(params, n=30, m=2, rank=6)
    for run in record.open_runs(folder / "records.nc"):
        assert sum(v.values.nbytes for v in run.variables.values() if v.dtype.kind in "fiub") <= per_run
    one = resources.chunk_resources([params], n=30, m=2, rank=6, widths=[40])["mem_mb"]
    many = resources.chunk_resources([params] * 2001, n=30, m=2, rank=6, widths=[40] * 2001)["mem_mb"]
    assert many - one == pytest.approx(2 * 2000 * per_run / 1e6, abs=1)
