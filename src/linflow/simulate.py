"""Gradient flow, gradient descent and mini-batch SGD on ``L = 1/2 ||Y - X U V^T||_F^2``.

One entry point, :func:`simulate`: validate -> reduce the problem (Section 2.1) -> build the
width-independent initial state -> run the method's entry of :mod:`linflow.methods` ->
diagnostics (:mod:`linflow.diagnostics`) -> the run record of :mod:`linflow.record`.

``flow``
    exact gradient flow ``dZc/dt = A(E) Zc`` (docs/theory.md, section 2), SciPy's DOP853 with a terminal event
    on the excess loss.
``gd``, ``sgd``
    gradient descent and mini-batch SGD, exact in the same variables:
    ``Zc <- (I + eta A(E)) Zc`` with the full-batch or the mini-batch error.
``gd_explicit``, ``sgd_explicit``
    the naive references that update the full ``U`` (n x h) and ``V`` (m x h).

Time is gradient-flow time of the ``1/2 ||.||_F^2`` loss (:mod:`linflow.methods` maps steps to it).
"""

from __future__ import annotations

import inspect
import time as _time

import numpy as np
import xarray as xr

from . import methods, record, theory
from . import parameters as P
from .diagnostics import diagnostics
from .kernels import error
from .state import CompressedInit, compress
from .theory import ReducedProblem


def _finite_matrix(name: str, value, ndim: int = 2, check_finite: bool = True) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if check_finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return arr


def output_factor(output_scale, m: int, width: int) -> float:
    """``gamma`` from a positive number or an ``output_scale`` rule (:mod:`linflow.parameters`)."""
    if isinstance(output_scale, str):
        return 1.0 if P.check("output_scale", output_scale) == "none" else (m * width) ** -0.5
    if isinstance(output_scale, bool) or not np.isfinite(output_scale) or not output_scale > 0:
        raise ValueError(f"output_scale must be a positive finite number or one of "
                         f"{', '.join(P.OUTPUT_SCALES)}, got {output_scale!r}")
    return float(output_scale)


def objective_scale(loss_scale: str, N: int) -> float:
    """The objective as a multiple of ``1/2 ||Y - X U V^T||_F^2``: 1 (half) or ``2/N`` (mean)."""
    return 2.0 / N if P.check("loss_scale", loss_scale) == "mean" else 1.0


def simulate(
    X,
    Y,
    U0=None,
    V0=None,
    *,
    init: CompressedInit | None = None,
    method: str = "flow",
    step: float | None = None,
    loss_scale: str = "half",
    output_scale: float | str = "none",
    stop_factor: float = 1e-12,
    loss_threshold: float | None = None,
    max_time: float = 1e4,
    max_steps: int = 1_000_000,
    solver: str = "auto",
    rtol: float = 1e-10,
    atol: float = 1e-13,
    points_per_decade: int = 20,
    divergence_factor: float = 1e6,
    alpha: float | None = None,
    delta: float = 0.1,
    attrs: dict | None = None,
    problem: ReducedProblem | None = None,
    batch_size: int | None = None,
    batch_sampling: str = "without_replacement",
    check_every: int = 1,
    batch_rng=None,
    batches=None,
) -> xr.Dataset:
    """Simulate training of ``f(x) = output_scale * V U^T x`` from ``(U0, V0)`` or ``init``.

    Parameters
    ----------
    X, Y : (N, n) and (N, m) arrays, finite.
    U0, V0 : (n, h) and (m, h) explicit initial weights; or ``init``, a
        :class:`~linflow.init.CompressedInit` (e.g. from :func:`linflow.init.wishart`).
    method : ``"flow"``, ``"gd"``, ``"sgd"`` or the explicit-weights references ``"gd_explicit"``,
        ``"sgd_explicit"`` (need explicit weights).
    step : gradient-descent / SGD step on the objective (required for ``gd*`` and ``sgd*``).
    loss_scale : objective ``1/2 ||.||_F^2`` (``"half"``, the paper's theory) or
        ``(1/N) ||.||_F^2`` (``"mean"``, the paper's experiments).
    output_scale : ``gamma`` in ``f(x) = gamma V U^T x``: a positive number, or the config's
        rule ``"none"`` (1) or ``"inverse_sqrt_mh"`` (``(m h)^{-1/2}``, Fig. 2/4/5).
    stop_factor : stop when the excess loss has fallen by this factor.
    loss_threshold : also stop when the objective's excess loss is below this (Fig. 7: 1e-8).
    max_time, max_steps : limits for ``flow`` (flow time) and ``gd*`` (iterations).
    solver : ``flow``'s integrator: ``"dop853"`` (explicit), ``"bdf"`` (implicit, for ill-conditioned
        data) or ``"auto"`` (BDF when ``lam_1 / lam_r`` is large; :func:`linflow.methods.choose_solver`).
    rtol, atol : tolerances of ``flow``'s integrator (BDF integrates at a tenth of them).
    points_per_decade : density of the log-spaced record grid.
    divergence_factor : ``gd*`` stop with status ``"diverged"`` once the excess loss exceeds
        this multiple of its initial value (or is not finite).
    alpha, delta : Gaussian-init exponent and confidence, for the Theorem 12 bound.
    attrs : extra provenance attributes for the record.
    problem : the reduction ``theory.reduce_problem(output_scale * X, Y)`` if the caller already
        has it (e.g. to build the initialization); computed here otherwise.
    batch_size, batch_sampling : ``sgd*``: rows per mini-batch ``b`` (1 <= b <= N) and how batches
        are drawn (``without_replacement``: a fresh permutation every epoch, ``N mod b`` rows
        skipped per epoch; ``with_replacement``: iid rows), see :mod:`linflow.sgd`. The batch
        objective is ``1/2 ||Y_B - X_B U V^T||_F^2`` (half) or ``(1/b) ||.||_F^2`` (mean).
    check_every : ``sgd*``: evaluate the full-batch loss (stopping rule, divergence) every this
        many steps.
    batch_rng : ``sgd*``: the batches' random stream (a ``numpy.random.Generator``, a
        ``SeedSequence`` or an integer seed); required unless ``batches`` is given.
    batches : ``sgd*``: the batch sequence itself, an integer array ``(steps, b)`` of row
        indices, to replay another code's run: the run takes exactly these steps (no early stop
        on the target; ``max_steps`` is ignored), ``b`` is its second dimension.

    Returns
    -------
    xarray.Dataset in the run-record schema of :mod:`linflow.record`.
    """
    clock = _time.perf_counter()
    entry = methods.method(method)
    options = _checked_options(entry, dict(
        step=step, loss_scale=loss_scale, stop_factor=stop_factor, loss_threshold=loss_threshold, max_time=max_time,
        max_steps=max_steps, solver=solver, rtol=rtol, atol=atol, points_per_decade=points_per_decade,
        divergence_factor=divergence_factor, alpha=alpha, delta=delta, batch_size=batch_size,
        batch_sampling=batch_sampling, check_every=check_every, batch_rng=batch_rng, batches=batches))
    X, Y = _finite_matrix("X", X), _finite_matrix("Y", Y)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must have the same number of rows (samples), got X {X.shape} and Y {Y.shape}")
    width = _width(U0, V0, init)
    gamma = output_factor(output_scale, Y.shape[1], width)
    X_eff = X if gamma == 1.0 else gamma * X  # one copy at most: X may be 60,000 x 784
    problem = _reduction(X_eff, Y, problem)
    state = _initial_state(problem, U0, V0, init, entry)
    N, scale = X.shape[0], objective_scale(options["loss_scale"], X.shape[0])
    plan = entry.prepare(options, N) if entry.prepare else {}
    with np.errstate(over="ignore", invalid="ignore"):
        excess0 = float(theory.excess_loss(error(problem.s, problem.Yt, state.Zc, problem.m)))
    if not np.isfinite(excess0):
        raise ValueError(f"the initial loss is not finite ({excess0}): the initialization is too large for this data")
    target = options["stop_factor"] * excess0
    if options["loss_threshold"] is not None:
        target = max(target, options["loss_threshold"] / scale)
    run = methods.Run(problem, X_eff, Y, U0, V0, state, options, scale, excess0, target, plan)

    traj = entry.run(run)

    diag = diagnostics(problem, traj, deltas_along=not entry.conserves_imbalance)
    theorem12 = float("nan") if options["alpha"] is None else theory.theorem12_bound(
        problem.lam_1, problem.lam_r, problem.y_fro, problem.m, problem.n, problem.r, width, options["alpha"],
        options["delta"])
    notes = {}
    if options["alpha"] is not None and not theory.theorem12_applies(options["alpha"]):
        notes["theorem12_bound"] = theory.theorem12_outside_note(options["alpha"])
    settings = {name: options[name] for name in RECORDED_SETTINGS}
    settings.update(method=entry.name, width=int(width), output_scale=gamma, max_steps=int(options["max_steps"]))
    attrs = dict(attrs or {})
    if entry.time_per_step is not None:
        per_step = entry.time_per_step(run)
        attrs.update(time_per_step=per_step, time_mapping=f"step k sits at gradient-flow time t = k * {per_step:.17g}")
    if entry.annotate is not None:
        entry.annotate(run, traj, diag, settings, attrs)
    return record.run_record(
        diag, status=traj.status, message=traj.message,
        scalars=dict(theorem12_bound=theorem12, lam_1=problem.lam_1, lam_r=problem.lam_r,
                     loss_star=problem.loss_star, n_evaluations=traj.n_evaluations),
        dims=dict(m=problem.m, r=problem.r, n=problem.n), objective_scale=scale, settings=settings,
        extra_attrs=attrs, wall_time=_time.perf_counter() - clock, notes=notes)


#: Options recorded in a run record's parameters (with method, width and the output scale).
RECORDED_SETTINGS = ("step", "loss_scale", "stop_factor", "loss_threshold", "max_time", "max_steps", "rtol", "atol",
                     "points_per_decade", "divergence_factor", "alpha", "delta")

#: Options checked against the registry when given (None: not given).
_CHECKED = RECORDED_SETTINGS + ("batch_size", "solver")


def _checked_options(entry: methods.Method, options: dict) -> dict:
    """``options`` validated against the registry; keywords of other methods refused."""
    for name in (k for other in methods.METHODS.values() for k in other.keywords):
        if options.get(name) is not None and name not in entry.keywords:
            users = ", ".join(m.name for m in methods.METHODS.values() if name in m.keywords)
            raise ValueError(f"{name} is used only by the methods {users}, not {entry.name!r}")
    for name in _CHECKED:
        if options[name] is not None and (name != "step" or entry.time_per_step is not None):
            options[name] = P.check(name, options[name])
    if entry.time_per_step is not None and options["step"] is None:
        raise ValueError(f"step is required for method {entry.name!r}; expected {P.PARAMETERS['step'].allowed()}")
    return options


def _width(U0, V0, init: CompressedInit | None) -> int:
    if init is not None:
        if U0 is not None or V0 is not None:
            raise ValueError("pass either explicit weights (U0, V0) or init, not both")
        return init.width
    if U0 is None or V0 is None:
        raise ValueError("pass explicit weights U0 (n x h) and V0 (m x h), or init")
    return np.shape(U0)[-1]


def _reduction(X_eff: np.ndarray, Y: np.ndarray, problem: ReducedProblem | None) -> ReducedProblem:
    """The reduction of ``(X_eff, Y)`` (Section 2.1), computed, or the caller's checked against them."""
    if problem is None:
        problem = theory.reduce_problem(X_eff, Y)
    # X = W S Phi1^T exactly when W^T X = S Phi1^T and ||X||_F^2 = ||S||_F^2 (nothing outside W's
    # span): checked with r x n products, never an N x n temporary.
    elif (problem.W.shape[0], problem.n, problem.m) != (X_eff.shape[0], X_eff.shape[1], Y.shape[1]) or not (
        np.allclose(problem.W.T @ X_eff, problem.s[:, None] * problem.Phi1.T)
        and np.isclose(np.vdot(X_eff, X_eff), np.sum(problem.s**2), rtol=1e-10)
        and np.allclose(problem.W.T @ Y, problem.Yt)
    ):
        raise ValueError("problem is not the reduction of (output_scale * X, Y)")
    if problem.r == 0:
        raise ValueError("X has rank 0: there is nothing to fit")
    return problem


def _initial_state(problem: ReducedProblem, U0, V0, init: CompressedInit | None,
                   entry: methods.Method) -> CompressedInit:
    """The compressed initial state, from ``init`` (checked) or from explicit weights (exact)."""
    n, m, r = problem.n, problem.m, problem.r
    if init is not None:
        if entry.explicit:
            raise ValueError(f"method {entry.name!r} needs explicit weights U0, V0, not a compressed init")
        if init.Zc.shape[0] != m + r or init.U2c.shape != (n - r, init.Zc.shape[1]):
            raise ValueError(
                f"init does not fit the data: Zc {init.Zc.shape} and U2c {init.U2c.shape}, "
                f"expected ({m + r}, k) and ({n - r}, k) for m={m}, rank r={r}, n={n}"
            )
        if not (np.all(np.isfinite(init.Zc)) and np.all(np.isfinite(init.U2c))):
            raise ValueError("init contains NaN or infinite entries")
        return init
    # A non-finite entry makes the compressed state non-finite; the full pass over the n x h
    # weights is only needed then (for its message) or when the method uses the weights.
    U0 = _finite_matrix("U0", U0, check_finite=entry.explicit)
    V0 = _finite_matrix("V0", V0, check_finite=entry.explicit)
    if U0.shape[0] != n:
        raise ValueError(f"U0 must have n = {n} rows (the input dimension of X), got shape {U0.shape}")
    if V0.shape[0] != m:
        raise ValueError(f"V0 must have m = {m} rows (the output dimension of Y), got shape {V0.shape}")
    if U0.shape[1] != V0.shape[1]:
        raise ValueError(f"U0 and V0 must have the same width (columns), got {U0.shape[1]} and {V0.shape[1]}")
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            state = compress(problem, U0, V0)
        finite = bool(np.all(np.isfinite(state.Zc)) and np.all(np.isfinite(state.U2c)))
    except (ValueError, np.linalg.LinAlgError):  # SciPy refuses non-finite input
        finite = False
    if not finite:
        _finite_matrix("U0", U0), _finite_matrix("V0", V0)
        raise ValueError("the initial weights overflow: their Gram matrix is not finite; scale them down")
    return state


def simulate_options(params: dict) -> dict:
    """The entries of a run's resolved parameters that :func:`simulate` takes as keywords.

    All but ``init`` (the parameter names the initialization's kind; :func:`simulate` takes
    the initial state itself) and ``output_scale`` (the caller turns its rule into a number for
    the width).
    """
    keywords = set(inspect.signature(simulate).parameters) - {"init", "output_scale"}
    return {key: value for key, value in params.items() if key in keywords}
