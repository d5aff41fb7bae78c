"""Before/after benchmark of linflow's simulator kernels, written into results.md.

Usage (from the repository root; ``BEFORE`` is a checkout of the code to compare against)::

    git worktree add /tmp/kern-before 62c7954
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_kernels.py --before /tmp/kern-before
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_kernels.py --before /tmp/kern-before --quick

The ``BEFORE`` tree's ``src/linflow`` is imported as a second package, ``linflow_before``, so
both versions run in one process, interleaved (before, after, before, ...), with
single-threaded BLAS; each row keeps the best of its repeats, as CPU time (``process_time``,
least sensitive to other work on a shared machine) and wall time. Rows:

1. flow in-process time (one ``linflow.simulate`` call with ``problem=`` given) on the Fig. 7
   data (n = 500, N = 100, m = 1) from explicit weights (widths that fit) and from Wishart
   sampling, widths 10^3 ... 10^8, with the largest relative differences before/after of the
   recorded data;
2. gradient descent microseconds per step at m + r = 11, 101, 501 (difference of a long and
   a short fixed-step run, Wishart init at h = 2000);
3. the balanced Fig. 6 run (orthonormal data n = 500, N = 100, m = 1, width 500, balanced init
   a = b = 0.1, step 5e-4 on the mean loss, stop_factor 1e-9): after in full; before in full
   with ``--full-before``, otherwise its per-step time on 20,000 steps times the step count;
4. flow from explicit weights at h = 4000 against a plain explicit-weights gradient-descent
   loop (eta = 0.01, 1200 steps on 1/2 ||.||^2) to the same end time t = 12.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import linflow  # noqa: E402
from linflow import data, init, theory  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from sections import write_section  # noqa: E402


def import_before(tree: Path):
    """Import ``tree/src/linflow`` as the package ``linflow_before``."""
    tmp = Path(tempfile.mkdtemp(prefix="linflow-before-"))
    shutil.copytree(tree / "src" / "linflow", tmp / "linflow_before", ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(tmp))
    return importlib.import_module("linflow_before")


def clocked(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.process_time() - c0, time.perf_counter() - w0, out


def interleaved(fns: dict, repeats: int):
    """Best (cpu, wall) and the last result of each callable, called in turn ``repeats`` times."""
    best = {name: [np.inf, np.inf, None] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            c, w, out = clocked(fn)
            b = best[name]
            b[0], b[1], b[2] = min(b[0], c), min(b[1], w), out
    return best


def rel_diff(a, b, names) -> float:
    """Largest relative difference (max-norm) over the data variables ``names``."""
    worst = 0.0
    for v in names:
        x, y = np.asarray(a[v].values, float), np.asarray(b[v].values, float)
        ok = np.isfinite(y)
        scale = np.max(np.abs(y[ok])) if ok.any() else 0.0
        if scale > 0:
            worst = max(worst, float(np.max(np.abs(x[ok] - y[ok])) / scale))
    return worst


RECORDED = ("final_distance_fro", "final_distance_op", "excess_loss", "inst_rate", "rate_bound", "distance_fro",
            "orthogonality", "fitted_rate", "end_to_end")


def fig7():
    X, Y = data.make_dataset("gaussian", n=500, N=100, m=1, noise=0.01, rng=np.random.default_rng(20240601))
    return X, Y, theory.reduce_problem(X, Y)


def bench_flow(before, widths, explicit_widths, repeats):
    X, Y, p = fig7()
    kw = dict(method="flow", loss_scale="mean", loss_threshold=1e-8, problem=p)
    rows = []
    for h in widths:
        starts = {"wishart": dict(init=init.wishart(1, p.r, 500 - p.r, h, h**-0.5, np.random.default_rng([7, h])))}
        if h in explicit_widths:
            U0, V0 = init.gaussian(500, 1, h, 0.5, np.random.default_rng([7, h]))
            starts["explicit"] = dict(U0=U0, V0=V0)
        for sampling, start in starts.items():
            best = interleaved({"before": lambda start=start: before.simulate(X, Y, **start, **kw),
                                "after": lambda start=start: linflow.simulate(X, Y, **start, **kw)}, repeats)
            a, b = best["after"][2], best["before"][2]
            rows.append(dict(
                what=f"flow, {sampling}, h = {h:.0e}", before_cpu=best["before"][0], after_cpu=best["after"][0],
                before_wall=best["before"][1], after_wall=best["after"][1], unit="s",
                note=f"evals {int(b.n_evaluations)}/{int(a.n_evaluations)}, points {b.sizes['time']}/{a.sizes['time']}, "
                     f"drift {float(b.imbalance_drift):.1e}/{float(a.imbalance_drift):.1e}; "
                     f"rel diff {rel_diff(a, b, RECORDED):.1e}"))
            print(rows[-1], flush=True)
            del start
    return rows


def bench_gd(before, repeats):
    rows = []
    for N in (10, 100, 500):
        n = max(500, 2 * N)
        X, Y = data.make_dataset("gaussian", n=n, N=N, m=1, noise=0.01, rng=np.random.default_rng(1))
        p = theory.reduce_problem(X, Y)
        start = init.wishart(1, p.r, n - p.r, 2000, 2000**-0.5, np.random.default_rng(3))
        kw = dict(init=start, problem=p, method="gd", step=5e-3, loss_scale="mean", stop_factor=1e-300,
                  points_per_decade=1)
        S = 20000 if N < 500 else 3000
        fns = {}
        for name, mod in (("before", before), ("after", linflow)):
            for steps in (10, S):
                fns[(name, steps)] = (lambda mod=mod, steps=steps: mod.simulate(X, Y, max_steps=steps, **kw))
        best = interleaved(fns, repeats)
        per = {name: [(best[(name, S)][i] - best[(name, 10)][i]) / (S - 10) * 1e6 for i in (0, 1)]
               for name in ("before", "after")}
        a, b = best[("after", S)][2], best[("before", S)][2]
        rows.append(dict(what=f"gd, m + r = {1 + p.r}", before_cpu=per["before"][0], after_cpu=per["after"][0],
                         before_wall=per["before"][1], after_wall=per["after"][1], unit="us/step",
                         note=f"{S} steps; rel diff {rel_diff(a, b, ('excess_loss', 'end_to_end', 'distance_fro')):.1e}"))
        print(rows[-1], flush=True)
    return rows


def bench_fig6(before, full_before):
    X, Y = data.make_dataset("orthonormal_rows", n=500, N=100, m=1, noise=0.01, rng=np.random.default_rng(1))
    p = theory.reduce_problem(X, Y)
    U, V = init.initialize("balanced", p, 500, np.random.default_rng(2), a=0.1, b=0.1, sampling="explicit")
    kw = dict(method="gd", step=5e-4, loss_scale="mean", stop_factor=1e-9, max_steps=4_000_000, problem=p)
    a_cpu, a_wall, a = clocked(lambda: linflow.simulate(X, Y, U, V, **kw))
    steps = int(a.step[-1])
    if full_before:
        b_cpu, b_wall, b = clocked(lambda: before.simulate(X, Y, U, V, **kw))
        note = f"{steps} steps, both in full; rel diff {rel_diff(a, b, ('excess_loss', 'end_to_end', 'final_distance_fro')):.1e}"
    else:
        fixed = dict(kw, stop_factor=1e-300, points_per_decade=1)
        best = interleaved({s: (lambda s=s: before.simulate(X, Y, U, V, **dict(fixed, max_steps=s))) for s in (10, 20000)}, 2)
        b_cpu, b_wall = ((best[20000][i] - best[10][i]) / 19990 * steps for i in (0, 1))
        note = f"{steps} steps; before extrapolated from 20,000 steps"
    row = dict(what="gd, balanced Fig. 6 run", before_cpu=b_cpu, after_cpu=a_cpu, before_wall=b_wall,
               after_wall=a_wall, unit="s", note=f"{a.status.item()}, {note}")
    print(row, flush=True)
    return [row]


def bench_flow_vs_explicit_loop(repeats):
    X, Y, p = fig7()
    h, eta, steps = 4000, 0.01, 1200
    U0, V0 = init.gaussian(500, 1, h, 0.5, np.random.default_rng([7, h]))

    def loop():
        U, V = U0.copy(), V0.copy()
        for _ in range(steps):
            XU = X @ U
            R = Y - XU @ V.T
            U, V = U + eta * (X.T @ (R @ V)), V + eta * (R.T @ XU)
        return U @ V.T

    def flow():
        return linflow.simulate(X, Y, U0, V0, method="flow", max_time=eta * steps, stop_factor=1e-300, problem=p)

    l_cpu, l_wall, end_loop = clocked(loop)
    best = interleaved({"flow": flow}, repeats)
    f_cpu, f_wall, ds = best["flow"]
    diff = np.linalg.norm(ds.end_to_end.values - end_loop) / np.linalg.norm(end_loop)
    row = dict(what="explicit GD loop (eta 0.01, 1200 steps) vs flow to t = 12, h = 4000", before_cpu=l_cpu,
               after_cpu=f_cpu, before_wall=l_wall, after_wall=f_wall, unit="s",
               note=f"columns: loop / flow; end points differ by {diff:.1e} relative (GD's O(eta) bias)")
    print(row, flush=True)
    return [row]


def fmt(x, unit):
    return f"{x:.3g}" if unit == "s" else f"{x:.1f}"


def table(rows) -> list[str]:
    out = ["| run | unit | before cpu | after cpu | speedup (cpu) | before wall | after wall | speedup (wall) | notes |",
           "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        u = r["unit"]
        out.append(f"| {r['what']} | {u} | {fmt(r['before_cpu'], u)} | {fmt(r['after_cpu'], u)} | "
                   f"{r['before_cpu'] / r['after_cpu']:.1f}x | {fmt(r['before_wall'], u)} | {fmt(r['after_wall'], u)} | "
                   f"{r['before_wall'] / r['after_wall']:.1f}x | {r['note']} |")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, required=True, help="checkout of the code to compare against")
    ap.add_argument("--label", default="62c7954", help="name of the before version in the report")
    ap.add_argument("--quick", action="store_true", help="fewer widths and repeats, no Fig. 6 run")
    ap.add_argument("--full-before", action="store_true", help="run the before Fig. 6 run in full (minutes)")
    ap.add_argument("--out", type=Path, default=HERE / "results.md")
    args = ap.parse_args(argv)
    before = import_before(args.before)
    started, clock, load0 = dt.datetime.now(dt.timezone.utc), time.perf_counter(), os.getloadavg()[0]
    repeats = 3 if args.quick else 7
    widths = [10**3, 10**4] if args.quick else [10**e for e in range(3, 9)]
    rows = bench_flow(before, widths, {10**3, 10**4, 10**5}, repeats)
    rows += bench_gd(before, 2 if args.quick else 3)
    rows += bench_flow_vs_explicit_loop(repeats)
    if not args.quick:
        rows += bench_fig6(before, args.full_before)
    section = [
        f"## Simulator kernels: before ({args.label}) and after",
        "",
        f"Date {started:%Y-%m-%d %H:%M} UTC, {time.perf_counter() - clock:.0f} s; load average (1 min) "
        f"{load0:.1f} at start, {os.getloadavg()[0]:.1f} at end on {os.cpu_count()} cores "
        f"(wall times on a loaded machine are inflated; CPU times less so). Python {platform.python_version()}, "
        f"numpy {np.__version__}, BLAS threads 1.",
        "",
        f"Reproduce: `git worktree add /tmp/kern-before {args.label} && OPENBLAS_NUM_THREADS=1 python "
        f"benchmarks/bench_kernels.py --before /tmp/kern-before`.",
        "",
        *table(rows),
        "",
        "`rel diff`: largest relative difference (max-norm over the variable, relative to its largest entry) "
        "between before and after over the recorded data variables. Flow rows: one `linflow.simulate` call "
        "with `problem=` given (explicit rows include `compress`, two `(m + r) x n x h` GEMMs).",
    ]
    write_section("kernels", "\n".join(section), args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
