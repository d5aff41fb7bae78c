"""Where the time of one simulation chunk goes, in process: simulation vs record building vs
record writing vs chunk table.

Usage (from the repository root)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_chunk.py [--runs 400] [--repeats 3] [--profile]

The chunk is one of the ``scale-1e5`` sweep's (``bench_workflow.py --small``: n = 30, N = 8,
m = 1, flow, Wishart sampling), cut to ``--runs`` runs. ``batch.run_chunk`` runs it with the
functions of :mod:`linflow.record` and ``batch.run_one`` wrapped in timers; the floor is the
runs' ``wall_time_seconds`` (the simulate call, as in ``bench_workflow.py``). Prints milliseconds
per run, best of ``--repeats`` (by chunk wall time); ``--profile`` adds a cProfile listing.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_workflow  # noqa: E402

#: Functions of linflow.record timed when they exist (the writers differ between versions).
RECORD_FUNCTIONS = ("run_record", "write_run", "RecordStack.add", "RecordStack.write", "table_row", "chunk_table")


def dataset(folder: Path, config: dict) -> Path:
    path = folder / "dataset.nc"
    spec = config["datasets"]["gaussian"]
    flags = [f"--{key}={value}" for key, value in spec.items()]
    subprocess.run([sys.executable, "-m", "linflow", "dataset", "--name", "gaussian", "--entropy",
                    str(config["seed_entropy"]), *flags, "--output", str(path)], check=True)
    return path


def wrap(owner, name: str, key: str, totals: collections.Counter) -> None:
    function = getattr(owner, name)

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start

    setattr(owner, name, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    from linflow import batch, grid, record

    bench_workflow.OPTIONS["small"] = True
    config = bench_workflow.config_for(100_000)
    plan = grid.plan(config)
    spec = plan.chunk_spec(plan.experiments["sweep"].chunks[10])
    spec["runs"] = spec["runs"][: args.runs]
    totals = collections.Counter()
    for name in RECORD_FUNCTIONS:
        owner_name, _, attr = name.rpartition(".")
        owner = getattr(record, owner_name, None) if owner_name else record
        if owner is not None and hasattr(owner, attr):
            wrap(owner, attr, name, totals)
    wrap(batch, "run_one", "run_one", totals)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        data = dataset(folder, config)
        for repeat in range(args.repeats):
            totals.clear()
            out = folder / f"out{repeat}"
            profile = cProfile.Profile() if args.profile and repeat == 0 else None
            start = time.perf_counter()
            if profile:
                profile.enable()
            kwargs = {"log": lambda line: None}
            if "records" in batch.run_chunk.__code__.co_varnames:
                table = batch.run_chunk(data, spec, out / "records.nc", out / "table.nc", **kwargs)
            else:
                table = batch.run_chunk(data, spec, out / "runs", out / "table.nc", **kwargs)
            if profile:
                profile.disable()
                pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
                continue
            wall = time.perf_counter() - start
            results.append((wall, float(table["wall_time_seconds"].sum()), dict(totals)))
    if not results:  # the profiled repeat is not timed
        sys.exit("no timed repeat: with --profile, use --repeats 2 or more")
    wall, floor, parts = min(results, key=lambda r: r[0])
    n = args.runs
    print(f"{n} runs, best of {len(results)} (chunk walls {', '.join(f'{r[0]:.2f}' for r in results)} s)")
    print(f"  chunk wall                      {1e3 * wall / n:7.2f} ms/run  ({wall / floor:.2f} x the floor)")
    print(f"  floor: simulate calls           {1e3 * floor / n:7.2f} ms/run  (sum of wall_time_seconds)")
    print(f"  run_one outside simulate        {1e3 * (parts['run_one'] - parts.get('run_record', 0) - floor) / n:7.2f}"
          " ms/run  (initialization, streams)")
    for name in RECORD_FUNCTIONS:
        if name in parts:
            print(f"  record.{name:24s} {1e3 * parts[name] / n:7.2f} ms/run")
    accounted = parts["run_one"] + sum(v for k, v in parts.items() if k not in ("run_one", "run_record"))
    print(f"  rest (loop, log, dataset read)  {1e3 * (wall - accounted) / n:7.2f} ms/run")


if __name__ == "__main__":
    main()
