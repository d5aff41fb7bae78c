"""Runs of a sweep, one at a time or a chunk in one process.

:func:`run_one` is the single definition of a run (data, random stream, initialization,
simulation): ``linflow simulate`` (one run) and :func:`run_chunk` (a workflow job) both call
it, so a run computed in a chunk has exactly the data variables of the same run computed
alone. :func:`run_chunk` writes the records of its runs to one file (the chunk's records file,
:class:`linflow.record.RecordStack`) and then a table of the runs' scalars (the chunk table,
read by the aggregation step instead of the records). An exception in one run is recorded as
that run's record (``status = "failed"``, the message in ``status_message``) and the chunk
goes on; only errors that make every run impossible (an unreadable dataset, a bad
spec) stop it.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import xarray as xr

from . import grid, record, resources, seeding, theory
from . import init as init_mod
from . import parameters as P
from .simulate import output_factor, simulate, simulate_options
from .state import CompressedInit

class Reductions:
    """The SVD reduction of ``(gamma X, Y)`` per output scale ``gamma``, computed once, with the
    dataset's rank cut ``rank_rtol`` (real data; None: NumPy's default tolerance)."""

    def __init__(self, X: np.ndarray, Y: np.ndarray, rank_rtol: float | None = None):
        self.X, self.Y, self.rank_rtol, self._cache = X, Y, rank_rtol, {}

    def __call__(self, gamma: float) -> theory.ReducedProblem:
        if gamma not in self._cache:
            X = self.X if gamma == 1.0 else gamma * self.X
            self._cache[gamma] = theory.reduce_problem(X, self.Y, rank_rtol=self.rank_rtol)
        return self._cache[gamma]

    @property
    def data_bytes(self) -> int:
        return resources.data_memory_bytes(*self.X.shape, self.Y.shape[1])


def run_one(reductions: Reductions, *, experiment: str, case: str, width: int, seed: int, params: dict,
            entropy: int, dataset_attrs: dict, available_memory: int | None = None) -> xr.Dataset:
    """One run of a sweep: its record (the schema of :mod:`linflow.record`).

    ``params`` are the run's resolved parameters (:func:`linflow.parameters.resolve`). The
    initialization draws from the stream ``(entropy, "init", experiment, width, seed)``, shared
    by the cases of an experiment (common random numbers across cases); SGD's batches from the
    distinct stream ``(entropy, "batches", experiment, width, seed)``.
    """
    X, Y = reductions.X, reductions.Y
    gamma = output_factor(params.get("output_scale", P.default("output_scale")), Y.shape[1], width)
    problem = reductions(gamma)
    if available_memory is not None:  # the job's declared memory: every term of the run, before any allocation
        resources.check_fits(resources.job_memory_bytes(params, n=problem.n, m=problem.m, rank=problem.r,
                                                        width=width, data_bytes=reductions.data_bytes),
                             f"run {case} at width {width} (method {params['method']}, sampling {params['sampling']})",
                             available_memory)
    rng = seeding.rng_for(entropy, "init", experiment, width, seed)
    start = init_mod.initialize(
        params["init"], problem, width, rng, alpha=params.get("alpha"), a=params.get("a"), b=params.get("b"),
        sampling=params["sampling"], wishart_min_width=params.get("wishart_min_width", P.default("wishart_min_width")),
        available_memory=available_memory,
    )
    weights = {"init": start} if isinstance(start, CompressedInit) else {"U0": start[0], "V0": start[1]}
    run_parameters = dict(params, experiment=experiment, case=case, seed=seed, entropy=entropy,
                          sampled_wishart=isinstance(start, CompressedInit),
                          dataset_parameters_hash=dataset_attrs.get("parameters_hash", ""))
    options = simulate_options(params)
    if params["method"] in P.SGD_METHODS:  # its own stream: init draws never depend on batch options
        options["batch_rng"] = seeding.rng_for(entropy, "batches", experiment, width, seed)
    return simulate(
        X, Y, **weights, **options, output_scale=gamma, problem=problem,
        attrs={"run_parameters": run_parameters, "experiment": experiment, "case": case, "seed": seed,
               "dataset": dataset_attrs.get("path", "")},
    )


def failed_run(message: str, *, reductions: Reductions, experiment: str, case: str, width: int, seed: int,
               params: dict, entropy: int, wall_time: float) -> xr.Dataset:
    settings = dict(params, width=width)
    run_parameters = dict(params, experiment=experiment, case=case, seed=seed, entropy=entropy)
    n, m = reductions.X.shape[1], reductions.Y.shape[1]
    return record.failed_record(message, n=n, m=m, settings=settings, wall_time=wall_time,
                                extra_attrs={"run_parameters": run_parameters, "experiment": experiment,
                                             "case": case, "seed": seed})


def data_description(dataset_attrs: dict) -> str:
    """JSON of the dataset's parameters (name, kind, preprocessing) and what came out (N, n, m,
    r, lam_1 / lam_r): carried to the summary, so a figure can say which data it shows."""
    described = json.loads(dataset_attrs.get("parameters", "{}"))
    for key in ("N", "n", "m", "r", "lam_ratio"):
        if key in dataset_attrs:
            described[key] = np.asarray(dataset_attrs[key]).item()
    return grid.canonical(described)


def load_dataset(path) -> tuple[np.ndarray, np.ndarray, dict]:
    ds = record.open_netcdf(path, ("X", "Y"))
    return ds["X"].values, ds["Y"].values, dict(ds.attrs, path=str(path))


def check_spec(spec: dict) -> dict:
    """The chunk spec (from :meth:`linflow.grid.Plan.chunk_spec`) with every case's parameters
    re-resolved, so a hand-written or stale spec fails here, before any run."""
    cases = {}
    for case, params in spec["cases"].items():
        resolved = P.resolve(params, where=f"spec.cases.{case}")
        if resolved != {k: v for k, v in params.items() if v is not None}:
            raise P.ParameterError(f"spec.cases.{case}: parameters are not resolved "
                                   f"(expected {grid.canonical(resolved)})")
        cases[case] = resolved
    for case, seed in spec["runs"]:
        if case not in cases:
            raise P.ParameterError(f"spec.runs: case {case!r} has no parameters; known: {', '.join(cases)}")
    return dict(spec, cases=cases)


def run_chunk(dataset_path, spec: dict, records_path, table_path, *, log=None, overwrite: bool = False,
              available_memory: int | None = None) -> xr.Dataset:
    """Run every run of a chunk ``spec``, write their records to the one file ``records_path``
    (:class:`linflow.record.RecordStack`; run i of the spec is record i) and the chunk table to
    ``table_path``. Progress (runs done / total, elapsed time, ETA) goes to ``log``."""
    log = log or (lambda line: print(line, flush=True))
    spec = check_spec(spec)
    X, Y, dataset_attrs = load_dataset(dataset_path)
    experiment, width, entropy = spec["experiment"], int(spec["width"]), int(spec["entropy"])
    runs = [(case, int(seed)) for case, seed in spec["runs"]]
    existing = [str(p) for p in (Path(records_path), Path(table_path)) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"outputs exist: {', '.join(existing)}; pass --overwrite to replace them")
    # A job killed while writing leaves hidden temporaries next to its outputs; this job owns
    # them, so a rerun removes what the killed one left.
    for output in (Path(records_path), Path(table_path)):
        for stale in output.parent.glob(f".{output.name}.*.tmp.nc"):
            stale.unlink(missing_ok=True)
    rank_rtol = dataset_attrs.get("rank_rtol")
    reductions = Reductions(X, Y, None if rank_rtol is None else float(rank_rtol))
    records, rows, clock = record.RecordStack(), [], time.perf_counter()
    for i, (case, seed) in enumerate(runs, start=1):
        start = time.perf_counter()
        try:  # storing the record is part of the run: its failure is this run's failure
            ds = run_one(reductions, experiment=experiment, case=case, width=width, seed=seed,
                         params=spec["cases"][case], entropy=entropy, dataset_attrs=dataset_attrs,
                         available_memory=available_memory)
            index = records.add(ds)
        except Exception as exc:  # a bad run never costs its neighbours
            traceback.print_exc(file=sys.stderr)
            ds = failed_run(f"{type(exc).__name__}: {exc}", reductions=reductions, experiment=experiment, case=case,
                            width=width, seed=seed, params=spec["cases"][case], entropy=entropy,
                            wall_time=time.perf_counter() - start)
            index = records.add(ds)
        rows.append(record.table_row(ds, records_path, index))
        elapsed = time.perf_counter() - clock
        eta = elapsed / i * (len(runs) - i)
        log(f"[{experiment} h{width}] {i}/{len(runs)} runs, {elapsed:.1f} s elapsed, ETA {eta:.0f} s; "
            f"{case} s={seed}: {rows[-1]['status']} in {time.perf_counter() - start:.2f} s")
    attrs = {"experiment": experiment, "width": width, "entropy": entropy, "cases": grid.canonical(spec["cases"]),
             "data": data_description(dataset_attrs)}
    records.write(records_path, attrs)  # the records before the table: a table always has its records
    table = record.chunk_table(rows, attrs)
    record.write_netcdf(table, table_path)
    return table
