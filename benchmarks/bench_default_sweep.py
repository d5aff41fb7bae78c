"""Wall time of the default sweep (``snakemake --cores N`` on config.yaml) for several commits,
each in a fresh clone with its own ``src`` first on ``PYTHONPATH`` (so an editable install of
another version does not leak in), the commits alternated over the repeats (A B B A ...) so that
a drift of the machine's load falls on both. Writes the section ``default-sweep`` of
benchmarks/results.md.

    python benchmarks/bench_default_sweep.py b02608d HEAD --repeats 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sections import write_section

REPO = Path(__file__).resolve().parents[1]


def run_once(commit: str, cores: int, workdir: Path) -> tuple[float, int, int]:
    """Seconds, Snakemake jobs (rule all excluded) and runs of one sweep of ``commit``."""
    clone = workdir / commit
    shutil.rmtree(clone, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", commit], check=True)
    env = dict(os.environ, PYTHONPATH=str(clone / "src"))
    start = time.perf_counter()
    done = subprocess.run(["snakemake", "--cores", str(cores)], cwd=clone, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"snakemake failed for {commit}:\n{done.stderr[-3000:]}")
    jobs = done.stderr.count("Finished jobid") - 1
    runs = sum(len(path.read_text().splitlines()) - 1 for path in (clone / "results").glob("*/runs.csv"))
    return seconds, jobs, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commits", nargs="+", help="commits to time (the first is the baseline)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    commits = [subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", c], check=True, capture_output=True,
                              text=True).stdout.strip() for c in args.commits]
    times = {c: [] for c in commits}
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="linflow-sweep-") as tmp:
        for repeat in range(args.repeats):
            for commit in commits if repeat % 2 == 0 else commits[::-1]:
                seconds, jobs, runs = run_once(commit, args.cores, Path(tmp))
                times[commit].append(seconds)
                sizes[commit] = (jobs, runs)
                print(f"{commit}: {seconds:.1f} s ({jobs} jobs, {runs} runs)", flush=True)
    base = min(times[commits[0]])
    lines = [f"Default sweep, `snakemake --cores {args.cores}` in fresh clones, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"order alternated over {args.repeats} repeats (`python benchmarks/bench_default_sweep.py "
             f"{' '.join(args.commits)} --repeats {args.repeats}`).", "",
             "| commit | jobs | runs | wall times (s) | best (s) | best / baseline |", "|---|---:|---:|---|---:|---:|"]
    for commit in commits:
        best = min(times[commit])
        lines.append(f"| {commit} | {sizes[commit][0]} | {sizes[commit][1]} | "
                     f"{', '.join(f'{t:.1f}' for t in times[commit])} | {best:.1f} | {best / base:.2f} |")
    print(f"written to {write_section('default-sweep', chr(10).join(lines))}")


if __name__ == "__main__":
    main()
