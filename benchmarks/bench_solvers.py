"""The flow's integrators across the conditioning of the data: DOP853, BDF and ``auto``.

Usage (from the repository root)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_solvers.py     # writes its section of results.md

Data: the default sweep's ``conditioned`` datasets (n = 200, N = 50, m = 1, singular values of X
log-spaced from 1 to 1/kappa, so lam_1 / lam_r = kappa^2), Wishart-sampled alpha = 1/2 at
h = 10^4, default settings (rtol 1e-10, atol 1e-13, stop when the excess loss fell by 1e-12),
``max_time`` 1e12. Per kappa and solver: in-process CPU seconds (best of 3), right-hand-side
evaluations, BDF steps, and the accuracy contract against a tight reference: the worst relative
deviation of every recorded time series where the reference's excess loss is above 1e-6 of its
start, the final distance's relative error, and the imbalance drift. The reference is DOP853 at
rtol 1e-13 (atol 1e-16) up to kappa = 100; beyond, DOP853 needs ~3.5e-4 s per unit of kappa^2
(hours at kappa = 10^4), so there the reference is BDF at rtol 1e-13 and DOP853 is not run.
Last row: the Fig. 7 setting (gaussian data, n = 500, N = 100), where ``auto`` keeps DOP853.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

import numpy as np

import linflow
from linflow import data, init, theory
from linflow.record import TIME_VARIABLES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sections import write_section  # noqa: E402

KAPPAS = (1, 10, 100, 1000, 10_000)
DOP853_UP_TO = 100
WIDTH = 10_000


def best_of(repeats, function):
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.process_time()
        result = function()
        best = min(best, time.process_time() - start)
    return best, result


def contract(ds, ref) -> tuple[float, float]:
    n = min(ds.sizes["time"], ref.sizes["time"]) - 1
    assert np.array_equal(ds["time"].values[:n], ref["time"].values[:n])
    keep = ref["excess_loss"].values[:n] > 1e-6 * ref["excess_loss"].values[0]
    along = max(float(np.max(np.abs(ds[v].values[:n][keep] / ref[v].values[:n][keep] - 1))) for v in TIME_VARIABLES)
    final = abs(ds["final_distance_fro"].item() / ref["final_distance_fro"].item() - 1)
    return along, final


def case(X, Y, n, m):
    problem = theory.reduce_problem(X, Y)
    start = init.wishart(m, problem.r, n - problem.r, WIDTH, WIDTH**-0.5, np.random.default_rng(1))
    return problem, (lambda **kw: linflow.simulate(X, Y, init=start, problem=problem, method="flow", alpha=0.5,
                                                   max_time=1e12, **kw))


def measure(label: str, problem, run, ref, solver: str, repeats: int) -> str:
    """One table row: ``solver`` on ``run``, timed and checked against ``ref``."""
    seconds, ds = best_of(repeats, lambda: run(solver=solver))
    along, final = contract(ds, ref)
    row = (f"| {label} | {problem.lam_1 / problem.lam_r:.3g} | {solver}"
           f"{' -> ' + ds['solver'].item() if solver == 'auto' else ''} | {seconds:.4f} | "
           f"{ds['n_evaluations'].item():.0f} | {ds['n_steps'].item():.0f} | {along:.1e} | {final:.1e} | "
           f"{ds['imbalance_drift'].item():.1e} |")
    print(row, flush=True)
    return row


def main() -> int:
    rows = []
    header = ("| data | lam_1/lam_r | solver | seconds | evaluations | BDF steps | worst along | final distance | "
              "drift |\n|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for kappa in KAPPAS:
        X, Y = data.make_dataset("conditioned", n=200, N=50, m=1, noise=0.01, condition_number=kappa,
                                 rng=np.random.default_rng(0))
        problem, run = case(X, Y, 200, 1)
        tight = ("dop853", 1e-13, 1e-16) if kappa <= DOP853_UP_TO else ("bdf", 1e-13, 1e-16)
        ref = run(solver=tight[0], rtol=tight[1], atol=tight[2])
        solvers = ("dop853", "bdf", "auto") if kappa <= DOP853_UP_TO else ("bdf", "auto")
        rows += [measure(f"kappa = {kappa:g} (ref. {tight[0]})", problem, run, ref, solver, 3) for solver in solvers]
    X, Y = data.make_dataset("gaussian", n=500, N=100, m=1, noise=0.01, rng=np.random.default_rng(0))
    problem, run = case(X, Y, 500, 1)
    ref = run(solver="dop853", rtol=1e-13, atol=1e-16)
    rows += [measure("Fig. 7 (gaussian)", problem, run, ref, solver, 7) for solver in ("dop853", "auto", "bdf")]
    text = (f"## Flow integrators across conditioning (bench_solvers.py, {dt.date.today()}, "
            f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')})\n\n"
            f"h = 10^4, Wishart alpha = 1/2, default settings; CPU seconds per run (best of 3; Fig. 7: of 7). "
            f"'worst along': largest relative deviation of any recorded series from the reference where "
            f"the excess loss is above 1e-6 of its start; 'final distance': relative error of "
            f"||U V^T - Theta_hat||_F at the end. BDF steps: nan for DOP853 (SciPy does not report them).\n\n"
            + header + "\n" + "\n".join(rows))
    print(write_section("solvers", text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
