"""Benchmark the workflow around the simulator: planning, batched jobs, aggregation, disk.

Usage (from the repository root)::

    python benchmarks/bench_workflow.py                 # 10^3, 10^4 and 10^5 runs (~25 min on 2 cores)
    python benchmarks/bench_workflow.py --sizes 1000    # one size
    python benchmarks/bench_workflow.py --no-run        # dry runs only

For sweeps of N flow runs (Fig. 7 data, Wishart sampling, widths log-spaced 10^2.5 .. 10^6,
the exponent-law setting of the default config) it measures, in a scratch copy of the
workflow:

* ``snakemake -n``: wall time, peak memory and the number of jobs;
* for the sizes that are run: the marginal wall time of ``snakemake --cores 2``, i.e. the wall
  time of the sweep minus that of the same config with a single run (which holds the fixed
  costs: Snakemake start-up, the dataset, aggregation, figures), against the in-process floor
  (sum of the runs' ``wall_time_seconds`` / cores);
* aggregation: ``linflow aggregate`` over the sweep's chunk tables, per run (in-process and as
  a command), and its peak memory;
* the run records' size on disk.

Results go to the ``workflow`` section of ``benchmarks/results.md`` (copied into the README).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sections import RESULTS, write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CORES = 2

# (alphas, widths, seeds) per size: runs = alphas x widths x seeds.
SHAPES = {1: (1, 1, 1), 1000: (1, 10, 100), 10_000: (10, 10, 100), 100_000: (10, 50, 200),
          1_000_000: (10, 50, 2000)}


#: --small: the cheapest valid flow runs (n = 30, N = 8: a 9 x 9 state), chunks of 2,000 runs, so
#: that a 10^5-run sweep runs in minutes on 2 cores; the default is the Fig. 7 data.
SMALL = {"n": 30, "N": 8, "chunk_size": 2000}
OPTIONS = {"small": False}


def config_for(runs: int) -> dict:
    alphas, widths, seeds = SHAPES[runs]
    alpha_values = [round(0.3 + 0.2 * i / max(alphas - 1, 1), 4) for i in range(alphas)] if alphas > 1 else [0.5]
    return {
        "seed_entropy": 20240601,
        "datasets": {"gaussian": {"kind": "gaussian", "n": SMALL["n"] if OPTIONS["small"] else 500,
                                  "N": SMALL["N"] if OPTIONS["small"] else 100, "m": 1, "noise": 0.01}},
        "experiments": {"sweep": {
            "dataset": "gaussian",
            "cases": {"alpha": {"init": "gaussian", "sampling": "wishart", "sweep": {"alpha": alpha_values}}},
            "widths": {"logspace": [2.5, 6], "num": widths} if widths > 1 else [1000],
            "seeds": seeds,
            "simulation": {"method": "flow"},
            **({"chunk_size": SMALL["chunk_size"]} if OPTIONS["small"] else {}),
        }},
        "figures": {"exponents": {"kind": "exponents", "experiments": ["sweep"]}},
    }


def workspace(root: Path, runs: int) -> Path:
    target = root / f"n{runs}"
    target.mkdir(parents=True)
    for name in ("Snakefile", "workflow", "src", "profiles"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    (target / "config.yaml").write_text(yaml.safe_dump(config_for(runs)))
    return target


def timed(cmd, cwd) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (MB, from /usr/bin/time) and output of a command."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M", *cmd], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    rss = int(re.search(r"MAXRSS (\d+)", proc.stderr).group(1)) // 1024
    return wall, rss, proc.stdout + proc.stderr


def job_count(output: str) -> dict:
    table = output.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines():
        match = re.match(r"^(\w+)\s+(\d+)\s*$", line.strip())
        if match:
            counts[match.group(1)] = int(match.group(2))
    return counts


def floor_seconds(repo: Path) -> tuple[float, int]:
    import xarray as xr

    total, n = 0.0, 0
    for path in sorted((repo / "results").rglob("chunks/*.nc")):
        with xr.open_dataset(path) as table:
            total += float(table["wall_time_seconds"].sum())
            n += table.sizes["run"]
    return total / CORES, n


def aggregation(repo: Path) -> dict:
    """Aggregate the sweep's chunk tables again, in-process (best of 3) and as a command."""
    sys.path.insert(0, str(repo / "src"))
    from linflow import aggregate

    tables = sorted((repo / "results" / "sweep" / "chunks").glob("*.nc"))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        ds = aggregate.summarize(tables, experiment="sweep", root=repo / "results" / "sweep")
        with tempfile.TemporaryDirectory() as scratch:
            aggregate.write_outputs(ds, summary_nc=Path(scratch) / "s.nc", summary_csv=Path(scratch) / "s.csv",
                                    runs_csv=Path(scratch) / "r.csv", fits_csv=Path(scratch) / "f.csv")
        best = min(best, time.perf_counter() - start)
    runs = int((ds["status"] != "missing").sum())
    with tempfile.TemporaryDirectory() as scratch:
        cmd = [sys.executable, "-m", "linflow", "aggregate", *map(str, tables), "--experiment", "sweep",
               "--summary-nc", f"{scratch}/s.nc", "--summary-csv", f"{scratch}/s.csv", "--runs-csv",
               f"{scratch}/r.csv", "--fits-csv", f"{scratch}/f.csv"]
        wall, rss, _ = timed(cmd, repo)
    return {"runs": runs, "tables": len(tables), "in_process_s": best, "command_s": wall, "rss_mb": rss}


def cube_seconds(repo: Path) -> dict:
    """``linflow.open_sweep`` on the sweep: open and select one case's distances over widths and
    seeds; open with trajectories and read one run's (best of 3, in-process)."""
    sys.path.insert(0, str(repo / "src"))
    import linflow

    def best(function):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
        return min(times)

    path = repo / "results" / "sweep"
    case = str(linflow.open_sweep(path)["case"].values[0])
    select = best(lambda: linflow.open_sweep(path)["final_distance_fro"].sel(case=case).values)
    one_run = best(lambda: linflow.open_sweep(path, trajectories=True)["excess_loss"].sel(case=case).isel(
        width=0, seed=0).values)
    return {"select_s": select, "trajectory_s": one_run}


def record_files(repo: Path) -> dict:
    """The run records on disk: files (one per chunk), and KB per run."""
    files = list((repo / "results").rglob("runs/**/*.nc"))
    total = sum(p.stat().st_size for p in files)
    return {"files": len(files), "mb": total / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000],
                        choices=[1000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--section", default="workflow",
                        help="section of results.md to write (another name keeps the default section's rows)")
    parser.add_argument("--run", type=int, nargs="*", default=[1000, 10_000],
                        help="sizes to run for real (marginal wall time); default 1000 10000")
    parser.add_argument("--no-run", action="store_true", help="dry runs only")
    parser.add_argument("--small", action="store_true",
                        help=f"the cheapest valid runs (n = {SMALL['n']}, N = {SMALL['N']}) in chunks of "
                             f"{SMALL['chunk_size']}: a 10^5-run sweep in minutes")
    args = parser.parse_args()
    OPTIONS["small"] = args.small
    env_note = f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start"
    started = time.perf_counter()
    rows, runs_rows = [], []
    with tempfile.TemporaryDirectory(prefix="linflow-bench-") as scratch:
        root = Path(scratch)
        base = None
        for size in sorted(args.sizes):
            repo = workspace(root, size)
            dry = [timed(["snakemake", "-n", "--cores", str(CORES), "--quiet", "rules"], repo) for _ in range(2)]
            wall, rss, output = min(dry, key=lambda r: r[0])
            counts = job_count(output)
            rows.append((size, counts.get("simulate", 0), counts.get("total", 0), wall, rss))
            print(f"n={size}: dry run {wall:.1f} s, {rss} MB, jobs {counts}", flush=True)
            if args.no_run or size not in args.run:
                continue
            if base is None:
                one = workspace(root, 1)
                base = timed(["snakemake", "--cores", str(CORES)], one)[0]
                print(f"one-run config: {base:.1f} s", flush=True)
            full = timed(["snakemake", "--cores", str(CORES)], repo)[0]
            floor, n_runs = floor_seconds(repo)
            agg = aggregation(repo)
            runs_rows.append(dict(size=size, full=full, base=base, marginal=full - base, floor=floor, n=n_runs,
                                  agg=agg, disk=record_files(repo), cube=cube_seconds(repo)))
            print(runs_rows[-1], flush=True)
    total = time.perf_counter() - started
    lines = [
        "## Workflow benchmark (`benchmarks/bench_workflow.py`)", "",
        f"Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC. {env_note}. "
        f"Total script runtime: {total:.0f} s. Reproduce: `python benchmarks/bench_workflow.py {' '.join(sys.argv[1:])}`.", "",
        ("Sweeps of flow runs on small Gaussian data (n = 30, N = 8, m = 1), `chunk_size` 2000 (`--small`)"
         if args.small else "Sweeps of flow runs on the Fig. 7 data (n = 500, N = 100, m = 1), default `chunk_size`")
        + ", Wishart sampling, widths log-spaced 10^2.5 .. 10^6.", "",
        "### Planning (`snakemake -n`, best of 2)", "",
        "| runs | simulation jobs | all jobs | dry-run wall s | peak MB |", "|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {s:,} | {sim:,} | {tot:,} | {w:.1f} | {r} |" for s, sim, tot, w, r in rows]
    if runs_rows:
        lines += ["", f"### Running (`snakemake --cores {CORES}`)", "",
                  "| runs | sweep wall s | one-run config s | marginal s | floor s (sum of run times / cores) "
                  "| marginal / floor |", "|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['n']:,} | {r['full']:.1f} | {r['base']:.1f} | {r['marginal']:.1f} | {r['floor']:.1f} | "
                  f"{r['marginal'] / r['floor']:.2f} |" for r in runs_rows]
        lines += ["", "### Aggregation (chunk tables -> summary cube and CSVs)", "",
                  "| runs | chunk tables | in-process s (best of 3) | ms per run | command s (incl. start-up) | "
                  "ms per run | peak RSS MB |", "|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['agg']['runs']:,} | {r['agg']['tables']} | {r['agg']['in_process_s']:.2f} | "
                  f"{1e3 * r['agg']['in_process_s'] / r['agg']['runs']:.2f} | {r['agg']['command_s']:.2f} | "
                  f"{1e3 * r['agg']['command_s'] / r['agg']['runs']:.2f} | {r['agg']['rss_mb']} |" for r in runs_rows]
        lines += ["", "### The sweep as a cube (`linflow.open_sweep`, in-process, best of 3)", "",
                  "| runs | open + one case's distances over widths and seeds, s | open with trajectories + one "
                  "run's excess loss, s |", "|---:|---:|---:|"]
        lines += [f"| {r['n']:,} | {r['cube']['select_s']:.3f} | {r['cube']['trajectory_s']:.3f} |" for r in runs_rows]
        lines += ["", "### Run records on disk (one records file per chunk)", "",
                  "| runs | files | MB | KB per run |", "|---:|---:|---:|---:|"]
        lines += [f"| {r['n']:,} | {r['disk']['files']} | {r['disk']['mb']:.1f} | {1e3 * r['disk']['mb'] / r['n']:.1f} |"
                  for r in runs_rows]
    if args.section != "workflow":
        lines[0] = f"## Workflow benchmark, {args.section} (`benchmarks/bench_workflow.py --section {args.section}`)"
    write_section(args.section, "\n".join(lines))
    print(f"wrote the {args.section} section of {RESULTS}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
