"""Largest relative difference between the outputs of two runs of the same workflow.

Usage (from the repository root)::

    python benchmarks/compare_sweeps.py OLD_CHECKOUT NEW_CHECKOUT [--top 15]

Compares every numeric data variable and coordinate of every NetCDF file the two checkouts
share (``data/*/dataset.nc``, ``results/*/summary.nc``, chunk tables, run records), variable by
variable: ``max |new - old| / max |old|`` over the finite entries (NaN and infinities must sit in
the same places, else the difference is reported as infinite). Wall times and other measured
run statistics (``wall_time_seconds``) are skipped. Prints the largest differences, the worst
variable first, and exits 1 if a file or variable exists on one side only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import xarray as xr

SKIPPED = {"wall_time_seconds"}  # measured, not computed
PATTERNS = ("data/*/dataset.nc", "results/*/summary.nc", "results/*/chunks/*.nc", "results/*/runs/*/*/*.nc")


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
    for item in missing:
        print(f"variable on one side only: {item}")
    ranked = sorted(worst.items(), key=lambda kv: -kv[1][0])
    print(f"{len(old_files & new_files)} files compared, {len(worst)} variables")
    for name, (d, path) in ranked[: args.top]:
        print(f"{d:10.2e}  {name:28s} {path}")
    return 1 if only or missing else 0


if __name__ == "__main__":
    sys.exit(main())
