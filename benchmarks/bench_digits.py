"""Cost of a digits run per preprocessing and subsample size: how the default sweep's N was chosen.

Usage (from the repository root)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_digits.py     # writes its section of results.md

scikit-learn's digits (one-hot, m = 10), standardized or raw pixels scaled to [0, 1], all 1797
images or a subsample of 300 (``rng`` seed 0). Per setting: lam_1 / lam_r, the solver
``solver: auto`` takes, and the in-process seconds of a flow run (``problem=`` given, as in a
chunk; mean over alpha in {0.375, 0.5} x h in {10^3, 10^7}), its right-hand-side evaluations
and the latest end time.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

import numpy as np

import linflow
from linflow import data, init
from linflow.state import CompressedInit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sections import write_section  # noqa: E402

VARIANTS = {"standardized": {"standardize": True}, "raw [0, 1]": {"scale": 0.0625}}


def main() -> int:
    rows = []
    for N in (300, 1797):
        for variant, options in VARIANTS.items():
            loaded = data.load("sklearn", source="digits", subsample=None if N == 1797 else N, rng=0, **options)
            seconds, evaluations, ends, solvers, statuses = [], [], [], set(), set()
            for alpha in (0.375, 0.5):
                for width in (10**3, 10**7):
                    start = init.initialize("gaussian", loaded.problem, width, np.random.default_rng(width), alpha=alpha)
                    weights = {"init": start} if isinstance(start, CompressedInit) else dict(zip(("U0", "V0"), start))
                    clock = time.perf_counter()
                    run = linflow.simulate(loaded.X, loaded.Y, **weights, method="flow", alpha=alpha, max_time=1e4,
                                           problem=loaded.problem)
                    seconds.append(time.perf_counter() - clock)
                    evaluations.append(int(run["n_evaluations"]))
                    ends.append(float(run["time"][-1]))
                    solvers.add(run["solver"].item())
                    statuses.add(run["status"].item())
            rows.append(f"| {variant} | {N} | {loaded.info['r']} | {loaded.info['lam_ratio']:.3g} | "
                        f"{', '.join(sorted(solvers))} | {', '.join(sorted(statuses))} | {np.mean(seconds):.2f} | "
                        f"{np.mean(evaluations):.0f} | {max(ends):.3g} |")
            print(rows[-1], flush=True)
    text = "\n".join([
        "## Digits runs by preprocessing and N (`benchmarks/bench_digits.py`)",
        "",
        f"{dt.date.today()}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; flow, "
        "solver auto, max_time 1e4, alpha in {0.375, 0.5} x h in {10^3, 10^7} (means over the 4 runs).",
        "",
        "| X | N | r | lam_1 / lam_r | solver | status | s per run | rhs evaluations | latest end time |",
        "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: |",
        *rows,
    ])
    write_section("digits", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
