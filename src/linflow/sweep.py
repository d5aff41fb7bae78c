"""A sweep as one labeled cube: ``linflow.open_sweep("results/<experiment>")``.

The per-run scalars come from ``summary.nc`` (dimensions ``case, width, seed``; the cases'
parameters as coordinates on ``case``; see :mod:`linflow.aggregate`). With
``trajectories=True`` the recorded trajectories are added on a common log-spaced time grid,
dimensions ``(case, width, seed, time)``: lazily, the runs a selection touches are read from
their chunks' records files (one read per file) and interpolated, so a 10^5-run sweep never
has its trajectories in memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from . import record

SUMMARY = "summary.nc"


def summary_path(path) -> Path:
    """``path`` if it is a file, else ``path/summary.nc`` (an experiment's results folder)."""
    path = Path(path)
    return path / SUMMARY if path.is_dir() else path


def time_grid(first: float, last: float, points_per_decade: int) -> np.ndarray:
    """``0`` followed by ``points_per_decade`` log-spaced points per decade from ``first`` to ``last``."""
    if not (np.isfinite(first) and np.isfinite(last) and 0 < first <= last):
        return np.zeros(1)
    decades = max(np.log10(last / first), 1e-9)
    grid = np.logspace(np.log10(first), np.log10(last), int(np.ceil(decades * points_per_decade)) + 1)
    grid[0], grid[-1] = first, last
    return np.concatenate([[0.0], grid])


def interpolate(time: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``values(time)`` at ``grid``, linear in log time; the value at ``t = 0`` is exact and
    points outside the recorded span (before the first positive time, after the end) are NaN."""
    out = np.full(grid.shape, np.nan)
    if time.size == 0:
        return out
    if time[0] == 0:
        out[grid == 0] = values[0]
    positive = time > 0
    if np.count_nonzero(positive) == 0:
        return out
    t, v = np.log(time[positive]), values[positive]
    inside = (grid > 0) & (grid >= time[positive][0]) & (grid <= time[positive][-1])
    out[inside] = np.interp(np.log(grid[inside]), t, v)
    return out


class _LazyTrajectory(BackendArray):
    """``variable`` of every run on the grid, read from the records files on indexing: one
    read per records file for all the runs a selection takes from it."""

    def __init__(self, root: Path, files: np.ndarray, records: np.ndarray, variable: str, grid: np.ndarray):
        self.root, self.files, self.records, self.variable, self.grid = root, files, records, variable, grid
        self.shape = files.shape + grid.shape
        self.dtype = np.dtype(np.float64)

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER, self._read)

    def _read(self, key: tuple) -> np.ndarray:
        index, drop = [], []
        for axis, (k, size) in enumerate(zip(key, self.shape)):
            if isinstance(k, (int, np.integer)):
                index.append(np.array([k]))
                drop.append(axis)
            else:
                index.append(np.arange(size)[k])
        files, records = self.files[np.ix_(*index[:3])], self.records[np.ix_(*index[:3])]
        grid = self.grid[index[3]]
        out = np.full(files.shape + grid.shape, np.nan)
        by_file: dict[str, list] = {}
        for position in np.ndindex(files.shape):
            if files[position]:
                by_file.setdefault(files[position], []).append(position)
        for name, positions in by_file.items():
            path = self.root / name
            if records[positions[0]] < 0:  # a run's own file
                ds = record.open_run(path)
                runs = [(ds["time"].values, ds[self.variable].values)]
            else:
                time, values, points = record.read_trajectories(path, [records[p] for p in positions],
                                                                (self.variable,))
                runs = [(time[i, :n], values[self.variable][i, :n]) for i, n in enumerate(points)]
            for position, (time, values) in zip(positions, runs):
                out[position] = interpolate(time, values, grid)
        return out.squeeze(axis=tuple(drop)) if drop else out


def open_sweep(path, *, trajectories: bool = False, points_per_decade: int = 20) -> xr.Dataset:
    """The sweep of an experiment as an :class:`xarray.Dataset` cube.

    ``path``: the experiment's results folder (``results/<experiment>``) or its ``summary.nc``.
    Every per-run scalar and ``status`` is on ``(case, width, seed)`` (``missing`` and NaN
    where a run does not exist or has no value; nothing is dropped); the cases' parameters are
    coordinates on ``case``. ``trajectories=True`` adds the variables of the run records'
    ``time`` dimension (``loss``, ``excess_loss``, ``inst_rate``, bounds, distances, ...) on a
    common grid, ``points_per_decade`` log-spaced points from the earliest first positive
    time of any run to the latest end, plus ``t = 0``, interpolated linearly in log time and
    NaN outside each run's recorded span. They are loaded lazily, only the runs a selection takes.
    """
    summary = summary_path(path)
    ds = record.open_netcdf(summary, ("status", "final_distance_fro"))
    if not trajectories:
        return ds
    files = ds["file"].values  # relative to the summary's folder, joined only when read
    records = ds["record"].values if "record" in ds else np.full(files.shape, -1)
    grid = time_grid(float(np.nanmin(ds["time_first"].values)), float(np.nanmax(ds["time_last"].values)),
                     points_per_decade)
    data = {}
    for name, (units, long_name) in record.TIME_VARIABLES.items():
        lazy = indexing.LazilyIndexedArray(_LazyTrajectory(summary.parent, files, records, name, grid))
        data[name] = xr.Variable(("case", "width", "seed", "time"), lazy, attrs={
            "units": units, "long_name": long_name,
            "interpolation": "linear in log time between recorded points; NaN outside the run's recorded span",
        })
    ds = ds.assign(data).assign_coords(time=("time", grid, {
        "units": "1", "long_name": "gradient-flow time of the 1/2 ||.||_F^2 loss (common grid)",
        "grid": f"0, then {points_per_decade} log-spaced points per decade"}))
    return ds
