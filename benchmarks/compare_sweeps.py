"""Largest relative difference between the outputs of two runs of the same workflow.

Usage (from the repository root)::

    python benchmarks/compare_sweeps.py OLD_CHECKOUT NEW_CHECKOUT [--top 15]

Compares every numeric data variable and coordinate of every NetCDF file the two checkouts
share (``data/*/dataset.nc``, ``results/*/summary.nc``, chunk tables), variable by
variable: ``max |new - old| / max |old|`` over the finite entries (NaN and infinities must sit in
the same places, else the difference is reported as infinite). Then every run record, found
through each summary's ``file`` (and ``record``, the run's index in a chunk's records file) and
read with ``linflow.record.open_run``, so a checkout that wrote one file per run compares with
one that writes a records file per chunk. Wall times and other measured run statistics
(``wall_time_seconds``) are skipped; the paths and indices of the records (``file``,
``record``) are compared only through the runs they lead to. Prints the
largest differences, the worst variable first, and exits 1 if a file, run or variable exists on
one side only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import xarray as xr

SKIPPED = {"wall_time_seconds", "file", "record"}  # measured, or where a run is stored
#: Files compared file by file; the run records (a file per run, or a records file per chunk)
#: are compared run by run.
PATTERNS = ("data/*/dataset.nc", "results/*/summary.nc", "results/*/chunks/*.nc")


def relative_difference(old: np.ndarray, new: np.ndarray) -> float:
    old, new = np.asarray(old, dtype=float), np.asarray(new, dtype=float)
    if old.shape != new.shape:
        return float("inf")
    finite_old, finite_new = np.isfinite(old), np.isfinite(new)
    if not np.array_equal(finite_old, finite_new) or not np.array_equal(old[~finite_old], new[~finite_new],
                                                                        equal_nan=True):
        return float("inf")
    if not finite_old.any():
        return 0.0
    scale = float(np.max(np.abs(old[finite_old])))
    diff = float(np.max(np.abs(new[finite_old] - old[finite_old])))
    return diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))


def run_records(root: Path) -> dict:
    """Every run's record of a checkout's sweeps: (experiment, case, width, seed) -> Dataset."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from linflow import record

    runs = {}
    for summary_path in sorted(root.glob("results/*/summary.nc")):
        with xr.open_dataset(summary_path) as summary:
            files = summary["file"].load()
            index = summary["record"].load() if "record" in summary else xr.full_like(files, -1, dtype=int)
        for position in np.ndindex(files.shape):
            name = str(files.values[position])
            if name:
                key = (summary_path.parent.name,) + tuple(str(files[dim].values[i]) for dim, i in
                                                          zip(files.dims, position))
                i = int(index.values[position])
                runs[key] = record.open_run(summary_path.parent / name, None if i < 0 else i)
    return runs


def files(root: Path) -> set[Path]:
    return {p.relative_to(root) for pattern in PATTERNS for p in root.glob(pattern)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--top", type=int, default=15, help="how many of the largest differences to print")
    args = parser.parse_args(argv)
    old_files, new_files = files(args.old), files(args.new)
    only = sorted(old_files ^ new_files)
    for path in only:
        print(f"only in {'old' if path in old_files else 'new'}: {path}")
    worst: dict[str, tuple[float, str]] = {}  # variable -> (difference, file)
    missing = []
    for path in sorted(old_files & new_files):
        with xr.open_dataset(args.old / path) as a, xr.open_dataset(args.new / path) as b:
            for name in sorted(set(a.variables) | set(b.variables)):
                if name in SKIPPED:
                    continue
                if name not in a.variables or name not in b.variables:
                    missing.append(f"{path}: {name}")
                    continue
                if a[name].dtype.kind not in "fiu" or b[name].dtype.kind not in "fiu":
                    if not np.array_equal(a[name].values, b[name].values):
                        worst[name] = max(worst.get(name, (0.0, "")), (float("inf"), str(path)))
                    continue
                d = relative_difference(a[name].values, b[name].values)
                if d >= worst.get(name, (-1.0, ""))[0]:
                    worst[name] = (d, str(path))
    old_runs, new_runs = run_records(args.old), run_records(args.new)
    runs_only = sorted(set(old_runs) ^ set(new_runs))
    for key in runs_only:
        print(f"run only in {'old' if key in old_runs else 'new'}: {key}")
    for key in sorted(set(old_runs) & set(new_runs)):
        a, b = old_runs[key], new_runs[key]
        for name in sorted(set(a.variables) | set(b.variables)):
            if name in SKIPPED:
                continue
            if name not in a.variables or name not in b.variables:
                missing.append(f"run {key}: {name}")
                continue
            label = f"{name} (run records)"
            if a[name].dtype.kind not in "fiub" or b[name].dtype.kind not in "fiub":
                d = 0.0 if np.array_equal(a[name].values, b[name].values) else float("inf")
            else:
                d = relative_difference(a[name].values, b[name].values)
            if d >= worst.get(label, (-1.0, ""))[0]:
                worst[label] = (d, str(key))
    for item in missing:
        print(f"variable on one side only: {item}")
    ranked = sorted(worst.items(), key=lambda kv: -kv[1][0])
    print(f"{len(old_files & new_files)} files and {len(set(old_runs) & set(new_runs))} run records compared, "
          f"{len(worst)} variables")
    for name, (d, path) in ranked[: args.top]:
        print(f"{d:10.2e}  {name:28s} {path}")
    return 1 if only or runs_only or missing else 0


if __name__ == "__main__":
    sys.exit(main())
