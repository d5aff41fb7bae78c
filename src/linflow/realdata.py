"""Real data: a user's file (NetCDF or ``.npz``) or a dataset bundled with scikit-learn.

:func:`load` reads ``X`` (samples x features) and ``Y`` (samples x outputs), checks them,
applies the preprocessing keys of :mod:`linflow.parameters` in a fixed order (``one_hot``,
``subsample``, ``center`` / ``standardize``, ``scale``) and reduces the problem with the
rank cut ``rank_rtol``. Every problem with the input is a :class:`DataError` (a ``ValueError``)
raised before anything is computed or written, naming the file, the variable and what was
expected. :func:`dims` gives ``(N, n, m)`` without loading the data (the workflow's planning).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import parameters as P
from . import theory

FILE_SUFFIXES = (".nc", ".npz")
#: (rows, features, outputs) of scikit-learn's bundled datasets (digits: one-hot, 10 classes).
SKLEARN_DIMS = {"digits": (1797, 64, 10), "diabetes": (442, 10, 1), "linnerud": (20, 3, 3)}
_EXPECTED = {"X": "a 2-D array of numbers, samples x features", "Y": "a 2-D array of numbers, samples x outputs"}


class DataError(ValueError):
    """Input data that cannot be used; the message names the file, the variable and the expectation."""


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""


@dataclass(frozen=True)
class LoadedData:
    """Preprocessed data and its reduction (pass ``problem`` to :func:`linflow.simulate` to keep
    the rank cut ``rank_rtol``). ``info`` holds what a figure needs to say which data it shows."""

    X: np.ndarray
    Y: np.ndarray
    problem: theory.ReducedProblem
    info: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return data_label(self.info)


def data_label(info: dict) -> str:
    """``digits (standardize): N = 1797, n = 64, m = 10, lam_1/lam_r = 146``."""
    steps = ", ".join(k for k in ("one_hot", "center", "standardize") if info.get(k))
    if info.get("scale", 1.0) != 1.0:
        steps = ", ".join(filter(None, [steps, f"scale {info['scale']:g}"]))
    head = f"{info.get('data_name', 'data')}" + (f" ({steps})" if steps else "")
    return (f"{head}: N = {info['N']}, n = {info['n']}, m = {info['m']}, r = {info['r']}, "
            f"lam_1/lam_r = {info['lam_ratio']:.3g}")


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


def _check_path(path) -> Path:
    path = Path(path)
    if path.suffix not in FILE_SUFFIXES:
        raise DataError(f"{path}: unknown file type {path.suffix or '(none)'!r}; expected a NetCDF file (.nc) or a "
                        f"NumPy archive (.npz) holding X (samples x features) and Y (samples x outputs)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such data file; expected a NetCDF (.nc) or NumPy (.npz) file with "
                                f"variables X (samples x features) and Y (samples x outputs)")
    return path


def _missing(path, name: str, present) -> DataError:
    return DataError(f"{path}: no variable {name!r} (the file has: {', '.join(sorted(present)) or 'nothing'}); "
                     f"expected X (samples x features) and Y (samples x outputs)")


def _read_arrays(path: Path, names=("X", "Y")) -> dict[str, np.ndarray]:
    """``X`` and ``Y`` (or only ``names``) of a NetCDF or ``.npz`` file, as stored (no conversion yet)."""
    if path.suffix == ".npz":
        try:
            archive = np.load(path, allow_pickle=False)
        except Exception as exc:  # not a zip, truncated...
            raise DataError(f"{path}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None
        with archive:
            arrays = {}
            for name in names:
                if name not in archive.files:
                    raise _missing(path, name, archive.files)
                try:
                    arrays[name] = archive[name]
                except ValueError:  # object arrays need pickle: text or mixed columns
                    raise DataError(f"{path}: variable {name!r} holds Python objects (text or mixed columns); "
                                    f"expected {_EXPECTED[name]}") from None
            return arrays
    import netCDF4

    try:
        handle = netCDF4.Dataset(path, "r")
    except Exception as exc:
        raise DataError(f"{path}: not a readable NetCDF file ({type(exc).__name__}: {exc})") from None
    with handle:
        arrays = {}
        for name in names:
            if name not in handle.variables:
                raise _missing(path, name, handle.variables)
            variable = handle.variables[name]
            variable.set_auto_mask(False)  # a fill value is data here; NaN is caught below
            arrays[name] = np.asarray(variable[...])
        return arrays


def _numeric(array: np.ndarray, where: str, name: str) -> np.ndarray:
    """``array`` as float64 if it is a 2-D numeric array; :class:`DataError` otherwise."""
    array = np.asarray(array)
    if array.dtype.names:  # structured array: name the non-numeric columns
        bad = [f for f in array.dtype.names if array.dtype[f].kind not in "biuf"]
        raise DataError(f"{where}: variable {name!r} is a table with columns {', '.join(array.dtype.names)}"
                        + (f" (non-numeric: {', '.join(bad)})" if bad else "") + f"; expected {_EXPECTED[name]}")
    if array.dtype.kind not in "biuf":
        raise DataError(f"{where}: variable {name!r} has non-numeric entries (dtype {array.dtype}); "
                        f"expected {_EXPECTED[name]}")
    if array.ndim != 2:
        hint = f"; for one {'output' if name == 'Y' else 'feature'} store it as an N x 1 array" if array.ndim == 1 else ""
        raise DataError(f"{where}: variable {name!r} is {array.ndim}-D (shape {array.shape}); "
                        f"expected {_EXPECTED[name]}{hint}")
    if 0 in array.shape:
        raise DataError(f"{where}: variable {name!r} is empty (shape {array.shape}); expected {_EXPECTED[name]}")
    array = np.asarray(array, dtype=np.float64)
    _finite(array, where, name)
    return array


def _finite(array: np.ndarray, where: str, name: str, after: str = "") -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"{where}: variable {name!r} has {int(bad.sum())} NaN or infinite entries{after} (first at "
                        f"row {row}, column {col}); expected finite numbers")


def _checked_pair(X, Y, where: str) -> tuple[np.ndarray, np.ndarray]:
    X, Y = _numeric(X, where, "X"), _numeric(Y, where, "Y")
    if X.shape[0] != Y.shape[0]:
        raise DataError(f"{where}: X has {X.shape[0]} rows (samples) but Y has {Y.shape[0]}; expected the same "
                        f"number of rows in X and Y")
    return X, Y


def _sklearn_arrays(source: str) -> tuple[np.ndarray, np.ndarray]:
    P.check("source", source)
    try:
        from sklearn import datasets
    except ImportError:
        raise MissingExtraError("kind sklearn needs scikit-learn, an optional dependency of linflow: install it "
                                "with pip install 'linflow[data]' (or conda install scikit-learn)") from None
    bunch = getattr(datasets, f"load_{source}")()  # bundled with scikit-learn: reads no network
    X, target = np.asarray(bunch.data, dtype=float), np.asarray(bunch.target)
    if source == "digits":
        return X, (target[:, None] == np.arange(10)[None, :]).astype(float)
    return X, np.asarray(target, dtype=float).reshape(X.shape[0], -1)


def _one_hot(Y: np.ndarray, where: str) -> np.ndarray:
    if Y.shape[1] != 1 or not np.all(Y == np.round(Y)):
        raise DataError(f"{where}: one_hot needs Y to be one column of integer class labels; got shape {Y.shape}"
                        + ("" if Y.shape[1] != 1 else " with non-integer values"))
    classes, labels = np.unique(Y[:, 0], return_inverse=True)
    return (labels[:, None] == np.arange(classes.size)[None, :]).astype(float)


# ---------------------------------------------------------------------------
# Preprocessing and loading
# ---------------------------------------------------------------------------


def preprocess(X: np.ndarray, Y: np.ndarray, *, where: str, one_hot: bool = False, subsample: int | None = None,
               center: bool = False, standardize: bool = False, scale: float = 1.0,
               rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The preprocessing keys of :mod:`linflow.parameters`, in their fixed order (new arrays)."""
    if one_hot:
        Y = _one_hot(Y, where)
    if subsample is not None:
        N = X.shape[0]
        if subsample > N:
            raise DataError(f"{where}: subsample {subsample} is more than the {N} rows of the data; expected an "
                            f"integer in [1, {N}]")
        if rng is None:
            raise ValueError("subsample needs a random generator (rng)")
        rows = np.sort(rng.choice(N, size=subsample, replace=False))  # keep the data's order
        X, Y = X[rows], Y[rows]
    if center or standardize:
        magnitude = np.abs(X).max(axis=0)
        X = X - X.mean(axis=0)
    if standardize:
        # a constant column leaves only the round-off of its mean (<= N eps |value|): make it 0,
        # not unit-variance noise
        std = X.std(axis=0)
        constant = std <= X.shape[0] * np.finfo(float).eps * magnitude
        X = np.where(constant, 0.0, X / np.where(constant, 1.0, std))
    if scale != 1.0:
        X = X * scale
    _finite(X, where, "X", " after preprocessing")
    return np.ascontiguousarray(X), np.ascontiguousarray(Y)


def _settings(kind: str, **given) -> dict:
    """The dataset parameters (registry-checked, defaults filled in), as the config would give them."""
    return P.resolve(dict(given, kind=kind), P.DATASET_PARAMETERS)


def load(kind: str, *, path=None, source: str | None = None, one_hot: bool | None = None,
         subsample: int | None = None, center: bool | None = None, standardize: bool | None = None,
         scale: float | None = None, rank_rtol: float | None = None,
         rng: np.random.Generator | int | None = None, name: str | None = None) -> LoadedData:
    """Load real data: ``kind="file"`` (``path`` to a ``.nc`` or ``.npz`` with ``X`` and ``Y``) or
    ``kind="sklearn"`` (``source`` digits, diabetes or linnerud), preprocessed and reduced.

    The keyword arguments are those of a ``kind: file`` / ``kind: sklearn`` dataset in the
    config (defaults from :mod:`linflow.parameters`). ``subsample`` draws its rows from ``rng``
    (a Generator or a seed; default seed 0); the workflow passes the dataset's own stream.
    """
    if kind not in P.REAL_DATA_KINDS:
        raise ValueError(f"load reads real data: kind must be one of {', '.join(P.REAL_DATA_KINDS)}, got {kind!r} "
                         f"(synthetic data: linflow.data.make_dataset)")
    given = dict(path=None if path is None else str(path), source=source, one_hot=one_hot, subsample=subsample,
                 center=center, standardize=standardize, scale=scale, rank_rtol=rank_rtol)
    params = _settings(kind, **given)
    info = {"data_kind": kind}
    if kind == "file":
        file = _check_path(params["path"])
        where = str(file)
        arrays = _read_arrays(file)
        info.update(data_name=name or file.stem, source_sha256=sha256(file))
    else:
        where = f"sklearn {params['source']}"
        arrays = dict(zip(("X", "Y"), _sklearn_arrays(params["source"])))
        info.update(data_name=name or params["source"])
    X, Y = _checked_pair(arrays["X"], arrays["Y"], where)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(0 if rng is None else rng)
    X, Y = preprocess(X, Y, where=where, one_hot=params.get("one_hot", False), subsample=params.get("subsample"),
                      center=params["center"], standardize=params["standardize"], scale=params["scale"], rng=rng)
    problem = theory.reduce_problem(X, Y, rank_rtol=params["rank_rtol"])
    if problem.r == 0:
        raise DataError(f"{where}: variable 'X' has rank 0 after preprocessing (all entries zero: every column "
                        f"constant, or removed by center/standardize); expected at least one nonzero singular value")
    info.update({key: value for key, value in params.items() if key != "kind"})
    info.update(summary(problem, N=X.shape[0]))
    return LoadedData(X=X, Y=Y, problem=problem, info=info)


def summary(problem: theory.ReducedProblem, *, N: int) -> dict:
    """What came out: N, n, m, r, lam_1, lam_r and their ratio (the dataset file's attributes)."""
    return {"N": int(N), "n": problem.n, "m": problem.m, "r": problem.r, "lam_1": problem.lam_1,
            "lam_r": problem.lam_r, "lam_ratio": problem.lam_1 / problem.lam_r}


def dims(params: dict) -> tuple[int, int, int]:
    """``(N, n, m)`` of a real dataset from its resolved parameters, reading only the file's
    array shapes (and Y's labels for ``one_hot``), for the workflow's planning."""
    if params["kind"] == "sklearn":
        N, n, m = SKLEARN_DIMS[params["source"]]
    else:
        file = _check_path(params["path"])
        shapes = _shapes(file)
        for name in ("X", "Y"):
            if len(shapes[name]) != 2:
                raise DataError(f"{file}: variable {name!r} is {len(shapes[name])}-D (shape {shapes[name]}); "
                                f"expected {_EXPECTED[name]}")
        (N, n), (NY, m) = shapes["X"], shapes["Y"]
        if N != NY:
            raise DataError(f"{file}: X has {N} rows (samples) but Y has {NY}; expected the same number of rows "
                            f"in X and Y")
        if params.get("one_hot"):
            m = int(np.unique(_numeric(_read_arrays(file, ("Y",))["Y"], str(file), "Y")).size)  # Y only
    subsample = params.get("subsample")
    if subsample is not None and subsample > N:
        raise DataError(f"subsample {subsample} is more than the {N} rows of the data; expected an integer in "
                        f"[1, {N}]")
    return (subsample or N), n, m


def _shapes(path: Path) -> dict[str, tuple]:
    if path.suffix == ".npz":
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                names = {Path(f).stem: f for f in archive.namelist()}
                shapes = {}
                for name in ("X", "Y"):
                    if name not in names:
                        raise _missing(path, name, names)
                    with archive.open(names[name]) as fh:
                        version = np.lib.format.read_magic(fh)
                        shape, _, _ = (np.lib.format.read_array_header_1_0(fh) if version == (1, 0)
                                       else np.lib.format.read_array_header_2_0(fh))
                        shapes[name] = shape
                return shapes
        except (zipfile.BadZipFile, ValueError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"{path}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    import netCDF4

    try:
        handle = netCDF4.Dataset(path, "r")
    except Exception as exc:
        raise DataError(f"{path}: not a readable NetCDF file ({type(exc).__name__}: {exc})") from None
    with handle:
        for name in ("X", "Y"):
            if name not in handle.variables:
                raise _missing(path, name, handle.variables)
        return {name: tuple(handle.variables[name].shape) for name in ("X", "Y")}
