"""Benchmark mini-batch SGD: its cost does not grow with the width (Wishart sampling).

Usage (from the repository root, single-threaded BLAS as in the workflow)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_sgd.py           # writes benchmarks/sgd-results.md
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_sgd.py --quick   # fewer repeats, same file name + -quick

Setting: the Fig. 7 data ``make_dataset("gaussian", n=500, N=100, m=1, noise=0.01)``, Gaussian
init alpha = 1/2 sampled as its Wishart Gram factor (``init.wishart``; never forms weights),
``method="sgd"`` with step 0.3 on ``1/2 ||Y_B - X_B U V^T||^2``, batches without replacement,
until the full-batch excess loss fell by 1e-12 (the ``sgd_batch`` experiment of config.yaml).
Rows: every batch size in {1, 10, 100} at widths 10^3, 10^4, 10^5, 10^6; median wall time over
repeats (the widths of a batch size timed round-robin) after one untimed warm-up, iterations,
CPU (process) time per iteration, tracemalloc peak of one extra call. Then ``sgd_explicit`` (full n x h weights, b = 10, loss checked only at the end, few
recorded points) for 200 steps at h = 10^3 and 10 steps at h = 10^5: the per-step cost the
width-independent kernel avoids (it includes one compression of the weights per recorded point).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
import tracemalloc
from pathlib import Path

import numpy as np

import linflow
from linflow import data, init, theory
from linflow.sgd import batch_sequence

HERE = Path(__file__).resolve().parent
DATA_SEED, INIT_SEED, BATCH_SEED = 20240601, 7, 11
STEP = 0.3
WIDTHS = (10**3, 10**4, 10**5, 10**6)
BATCH_SIZES = (1, 10, 100)


def load() -> float:
    return os.getloadavg()[0]


def interleaved(functions: dict, repeats: int) -> dict:
    """Time every function ``repeats`` times, round-robin (so a change of the machine's load hits
    all of them alike): median and range of wall and CPU (process) time, tracemalloc peak."""
    for function in functions.values():
        function()  # warm-up
    wall = {key: [] for key in functions}
    cpu = {key: [] for key in functions}
    results = {}
    for _ in range(repeats):
        for key, function in functions.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            results[key] = function()
            wall[key].append(time.perf_counter() - start)
            cpu[key].append(time.process_time() - start_cpu)
    out = {}
    for key, function in functions.items():
        tracemalloc.start()
        function()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out[key] = dict(wall=statistics.median(wall[key]), low=min(wall[key]), high=max(wall[key]),
                        cpu=statistics.median(cpu[key]), peak=peak, result=results[key])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, fewer widths")
    args = parser.parse_args()
    repeats = 1 if args.quick else 5
    started, load_start = time.perf_counter(), load()
    X, Y = data.make_dataset("gaussian", n=500, N=100, m=1, noise=0.01, rng=np.random.default_rng(DATA_SEED))
    problem = theory.reduce_problem(X, Y)
    n, m, r, N = 500, 1, problem.r, 100
    rows = []
    starts = {width: init.wishart(m, r, n - r, width, width**-0.5, np.random.default_rng([INIT_SEED, width]))
              for width in (WIDTHS[::3] if args.quick else WIDTHS)}
    for b in BATCH_SIZES:
        def runner(start, b=b):
            return lambda: linflow.simulate(X, Y, init=start, method="sgd", step=STEP, batch_size=b,
                                            batch_rng=BATCH_SEED, problem=problem, alpha=0.5)
        timings = interleaved({width: runner(start) for width, start in starts.items()}, repeats)
        for width, timing in timings.items():
            ds = timing["result"]
            steps = int(ds["step"].values[-1])
            rows.append(dict(method="sgd", width=width, b=b, steps=steps, wall=timing["wall"], cpu=timing["cpu"],
                             spread=f"{timing['low']:.3f}-{timing['high']:.3f}", per_step=timing["cpu"] / max(steps, 1),
                             peak=timing["peak"] / 2**20, load=load(),
                             note=f"{ds['status'].item()}; dist_F = {float(ds['final_distance_fro']):.6f}"))
            print(rows[-1], flush=True)
    for width, explicit_steps in ((10**3, 200),) if args.quick else ((10**3, 200), (10**5, 10)):
        rng = np.random.default_rng([INIT_SEED, width])
        U0, V0 = init.gaussian(n, m, width, 0.5, rng)
        batches = batch_sequence(BATCH_SEED, N, 10, "without_replacement", explicit_steps)
        start, start_cpu = time.perf_counter(), time.process_time()
        # full-batch loss checked only at the end: the per-step time is that of the updates
        ds = linflow.simulate(X, Y, U0, V0, method="sgd_explicit", step=STEP, batches=batches, problem=problem,
                              check_every=explicit_steps, points_per_decade=1)
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        reference = linflow.simulate(X, Y, U0, V0, method="sgd", step=STEP, batches=batches, problem=problem,
                                     check_every=explicit_steps, points_per_decade=1)
        diff = float(np.abs(ds["end_to_end"] - reference["end_to_end"]).max() / np.abs(reference["end_to_end"]).max())
        rows.append(dict(method="sgd_explicit", width=width, b=10, steps=explicit_steps, wall=wall, cpu=cpu,
                         spread="1 run", per_step=cpu / explicit_steps, peak=float("nan"), load=load(),
                         note=f"{explicit_steps} fixed steps; vs sgd (same batches): rel diff end_to_end = {diff:.2e}"))
        print(rows[-1], flush=True)

    by = {(row["method"], row["width"], row["b"]): row for row in rows}
    lines = [
        "# SGD benchmark",
        "",
        f"Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC. Total script runtime: "
        f"{time.perf_counter() - started:.0f} s. Load average (1 min) at start / end: {load_start:.2f} / {load():.2f}.",
        "",
        "Reproduce (from the repository root): `OPENBLAS_NUM_THREADS=1 python benchmarks/bench_sgd.py`",
        "",
        f"Machine: nproc {os.cpu_count()}, Python {platform.python_version()}, numpy {np.__version__}, linflow "
        f"{linflow.__version__}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}. "
        "The machine was shared with other work: the `load` column says how much (2 cores).",
        "",
        "Setting: " + __doc__.split("Setting: ", 1)[1].split("\n\n")[0].replace("\n", " "),
        "",
        "| method | width | b | iterations | wall s (median) | wall spread | CPU s (median) | CPU us / iteration "
        "| peak MiB | load | note |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(f"| {row['method']} | {row['width']} | {row['b']} | {row['steps']} | {row['wall']:.4f} | "
                     f"{row['spread']} | {row['cpu']:.4f} | {1e6 * row['per_step']:.1f} | {row['peak']:.1f} | {row['load']:.1f} | "
                     f"{row['note']} |")
    lines.append("")
    widths = [w for w in (10**3, 10**6) if ("sgd", w, 1) in by]
    if len(widths) == 2:
        lines.append("**Width independence** (SGD's cost must not grow with the width): CPU time at h = 10^6 over that at h = 10^3, per "
                     "batch size (widths timed round-robin, so load changes hit both): " + ", ".join(
                         f"b = {b}: {by[('sgd', 10**6, b)]['cpu']:.3f} s / {by[('sgd', 10**3, b)]['cpu']:.3f} s = "
                         f"{by[('sgd', 10**6, b)]['cpu'] / by[('sgd', 10**3, b)]['cpu']:.2f}" for b in BATCH_SIZES)
                     + ". Iterations differ between widths (the runs stop on the loss), so CPU time per iteration "
                       "is the like-for-like comparison: " + ", ".join(
                         f"b = {b}: {1e6 * by[('sgd', 10**6, b)]['per_step']:.1f} vs "
                         f"{1e6 * by[('sgd', 10**3, b)]['per_step']:.1f} us" for b in BATCH_SIZES) + ". The state "
                       "has the same shape at every width (Zc is (m + r) x (m + r) = 101 x 101 from h = 101 on), so "
                       "the arithmetic per iteration is identical; differences are the machine's load.")
        lines.append("")
    path = HERE / ("sgd-results-quick.md" if args.quick else "sgd-results.md")
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
