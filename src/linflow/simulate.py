"""Gradient flow, gradient descent and mini-batch SGD on ``L = 1/2 ||Y - X U V^T||_F^2``.

One entry point, :func:`simulate`, validates its input, reduces the problem (Section 2.1),
compresses the initialization to the width-independent state, runs one of the simulators of
:mod:`linflow.kernels` and returns the run record of :mod:`linflow.record`:

``flow``
    exact gradient flow ``dZc/dt = A(E) Zc`` (THEORY.md), SciPy's DOP853 with a terminal event
    on the excess loss.
``gd``, ``sgd``
    gradient descent and mini-batch SGD, exact in the same variables:
    ``Zc <- (I + eta A(E)) Zc`` with the full-batch or the mini-batch error.
``gd_explicit``, ``sgd_explicit``
    the naive references that update the full ``U`` (n x h) and ``V`` (m x h).

Time is gradient-flow time of the ``1/2 ||.||_F^2`` loss. With ``loss_scale="mean"`` the
objective is ``(1/N) ||.||_F^2`` (the paper's experiments), gradient descent with step
``eta`` on it is gradient descent with step ``2 eta / N`` on ``1/2 ||.||_F^2``, and step k
sits at time ``2 eta k / N``.
"""

from __future__ import annotations

import itertools
import time as _time

import numpy as np
import xarray as xr

from . import parameters as P
from . import theory
from .diagnostics import diagnostics
from .state import CompressedInit, compress
from .kernels import Trajectory, error, flow, gd
from .sgd import BatchStream, sgd, sgd_explicit
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


EXPLICIT = ("gd_explicit", "sgd_explicit")


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
    rtol, atol : DOP853 tolerances for ``flow``.
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
    from . import record

    clock = _time.perf_counter()
    method = P.check("method", method)
    if method not in P.SGD_METHODS:
        for name, value in (("batch_size", batch_size), ("batch_rng", batch_rng), ("batches", batches)):
            if value is not None:
                raise ValueError(f"{name} is used only by the methods {', '.join(P.SGD_METHODS)}, not {method!r}")
    loss_scale = P.check("loss_scale", loss_scale)
    X = _finite_matrix("X", X)
    Y = _finite_matrix("Y", Y)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must have the same number of rows (samples), got X {X.shape} and Y {Y.shape}")
    stop_factor = P.check("stop_factor", stop_factor)
    if loss_threshold is not None:
        loss_threshold = P.check("loss_threshold", loss_threshold)
    max_time, max_steps = P.check("max_time", max_time), P.check("max_steps", max_steps)
    rtol, atol = P.check("rtol", rtol), P.check("atol", atol)
    points_per_decade = P.check("points_per_decade", points_per_decade)
    divergence_factor = P.check("divergence_factor", divergence_factor)
    if alpha is not None:
        alpha = P.check("alpha", alpha)
    delta = P.check("delta", delta)
    if method in P.STEPPED_METHODS:
        if step is None:
            raise ValueError(f"step is required for method {method!r}; expected {P.PARAMETERS['step'].allowed()}")
        step = P.check("step", step)

    h = init.width if init is not None else np.shape(U0)[-1] if U0 is not None else 0
    output_scale = output_factor(output_scale, Y.shape[1], h)
    X_eff = output_scale * X
    if problem is None:
        problem = theory.reduce_problem(X_eff, Y)
    elif (problem.W.shape[0], problem.n, problem.m) != (X.shape[0], X.shape[1], Y.shape[1]) or not (
        np.allclose((problem.W * problem.s) @ problem.Phi1.T, X_eff) and np.allclose(problem.W.T @ Y, problem.Yt)
    ):
        raise ValueError("problem is not the reduction of (output_scale * X, Y)")
    if problem.r == 0:
        raise ValueError("X has rank 0: there is nothing to fit")
    n, m, r = X.shape[1], Y.shape[1], problem.r

    if init is not None:
        if U0 is not None or V0 is not None:
            raise ValueError("pass either explicit weights (U0, V0) or init, not both")
        if method in EXPLICIT:
            raise ValueError(f"method {method!r} needs explicit weights U0, V0, not a compressed init")
        if init.Zc.shape[0] != m + r or init.U2c.shape != (n - r, init.Zc.shape[1]):
            raise ValueError(
                f"init does not fit the data: Zc {init.Zc.shape} and U2c {init.U2c.shape}, "
                f"expected ({m + r}, k) and ({n - r}, k) for m={m}, rank r={r}, n={n}"
            )
        if not (np.all(np.isfinite(init.Zc)) and np.all(np.isfinite(init.U2c))):
            raise ValueError("init contains NaN or infinite entries")
        compressed, h = init, init.width
    else:
        if U0 is None or V0 is None:
            raise ValueError("pass explicit weights U0 (n x h) and V0 (m x h), or init")
        # A non-finite entry makes the compressed state non-finite; the full pass over the n x h
        # weights is only needed then (for its message) or when the method uses the weights.
        check = method in EXPLICIT
        U0, V0 = _finite_matrix("U0", U0, check_finite=check), _finite_matrix("V0", V0, check_finite=check)
        if U0.shape[0] != n:
            raise ValueError(f"U0 must have n = {n} rows (the input dimension of X), got shape {U0.shape}")
        if V0.shape[0] != m:
            raise ValueError(f"V0 must have m = {m} rows (the output dimension of Y), got shape {V0.shape}")
        if U0.shape[1] != V0.shape[1]:
            raise ValueError(f"U0 and V0 must have the same width (columns), got {U0.shape[1]} and {V0.shape[1]}")
        h = U0.shape[1]
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                compressed = compress(problem, U0, V0)
            finite = bool(np.all(np.isfinite(compressed.Zc)) and np.all(np.isfinite(compressed.U2c)))
        except (ValueError, np.linalg.LinAlgError):  # SciPy refuses non-finite input
            finite = False
        if not finite:
            _finite_matrix("U0", U0), _finite_matrix("V0", V0)
            raise ValueError("the initial weights overflow: their Gram matrix is not finite; scale them down")

    N = X.shape[0]
    scale = objective_scale(loss_scale, N)
    if method in P.SGD_METHODS:
        batch_plan = _batch_plan(N, batch_size, batch_sampling, check_every, batch_rng, batches)
        batch_size, max_steps = batch_plan["batch_size"], batch_plan.get("steps", max_steps)
    with np.errstate(over="ignore", invalid="ignore"):
        excess0 = float(theory.excess_loss(error(problem.s, problem.Yt, compressed.Zc, m)))
    if not np.isfinite(excess0):
        raise ValueError(f"the initial loss is not finite ({excess0}): the initialization is too large for this data")
    target = stop_factor * excess0
    if loss_threshold is not None:
        target = max(target, loss_threshold / scale)

    if method == "flow" and excess0 <= target:  # already fitted: no event can fire
        traj = Trajectory(np.zeros(1), None, compressed.Zc[None], compressed.U2c, "converged",
                          "excess loss at the target from the start", 0, True)
    elif method == "flow":
        traj = flow(problem, compressed, target, max_time, rtol, atol, points_per_decade)
    elif method in P.SGD_METHODS:
        # batch objective as a multiple of 1/2 ||Y_B - X_B U V^T||^2: 1 (half) or 2/b (mean); in
        # expectation a step moves the full-batch 1/2 ||.||^2 flow by eta * b / N
        eta = step * (2.0 / batch_size if loss_scale == "mean" else 1.0)
        time_per_step = eta * batch_size / N
        arguments = (eta, batch_plan["stream"], target, max_steps, points_per_decade, divergence_factor,
                     batch_plan["check_every"], time_per_step, batch_plan["stop_at_target"])
        if method == "sgd":
            traj = sgd(problem, Y, compressed, *arguments)
        else:
            traj = sgd_explicit(problem, X_eff, Y, U0, V0, *arguments)
    else:
        eta = step * scale
        if method == "gd":
            traj = gd(problem, compressed, eta, target, max_steps, points_per_decade, divergence_factor)
        else:  # gradient descent is SGD with the full batch at every step, checked every step
            every_row = itertools.repeat(np.arange(N))
            traj = sgd_explicit(problem, X_eff, Y, U0, V0, eta, every_row, target, max_steps, points_per_decade,
                                divergence_factor, 1, eta)

    diag = diagnostics(problem, traj, deltas_along=method != "flow")
    theorem12 = (
        theory.theorem12_bound(problem.lam_1, problem.lam_r, problem.y_fro, m, n, r, h, alpha, delta)
        if alpha is not None
        else float("nan")
    )
    settings = dict(
        method=method,
        width=int(h),
        step=step,
        loss_scale=loss_scale,
        output_scale=output_scale,
        stop_factor=stop_factor,
        loss_threshold=loss_threshold,
        max_time=max_time,
        max_steps=int(max_steps),
        rtol=rtol,
        atol=atol,
        points_per_decade=int(points_per_decade),
        divergence_factor=divergence_factor,
        alpha=alpha,
        delta=delta,
    )
    extra = dict(attrs or {})
    if method in P.STEPPED_METHODS:
        per_step = time_per_step if method in P.SGD_METHODS else step * scale
        extra.update(time_per_step=per_step, time_mapping=f"step k sits at gradient-flow time t = k * {per_step:.17g}"
                     + (" (in expectation over the batches: eta b / N per step)" if method in P.SGD_METHODS else ""))
    if method in P.SGD_METHODS:
        settings.update(batch_size=int(batch_size), batch_sampling=batch_plan["sampling"],
                        check_every=batch_plan["check_every"], batches_given=batch_plan["given"])
        extra.update(batch_size=int(batch_size), batch_sampling=batch_plan["sampling"],
                     batches=batch_plan["description"])
        diag["epoch"] = traj.step * (batch_size / N)
    return record.run_record(
        diag,
        status=traj.status,
        message=traj.message,
        scalars=dict(theorem12_bound=theorem12, lam_1=problem.lam_1, lam_r=problem.lam_r,
                     loss_star=problem.loss_star, n_evaluations=traj.n_evaluations),
        dims=dict(m=m, r=r, n=n),
        objective_scale=scale,
        settings=settings,
        extra_attrs=extra,
        wall_time=_time.perf_counter() - clock,
    )


def _batch_plan(N: int, batch_size, batch_sampling, check_every, batch_rng, batches) -> dict:
    """Validated SGD batch options: the batch stream (generated or given) and its size.

    ``batches``: an integer array ``(steps, b)`` of row indices in ``[0, N)``; otherwise
    ``batch_size`` and ``batch_rng`` define a :class:`~linflow.sgd.BatchStream`.
    """
    check_every = P.check("check_every", check_every)
    sampling = P.check("batch_sampling", batch_sampling)
    if batches is not None:
        if batch_rng is not None:
            raise ValueError("pass batch_rng (batches drawn from it) or batches (the sequence itself), not both")
        array = np.asarray(batches)
        if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1 or array.shape[1] > N:
            raise ValueError(f"batches must be an integer array of shape (steps >= 1, b) with 1 <= b <= N = {N}, "
                             f"got shape {array.shape}")
        if array.dtype.kind not in "iu":
            raise ValueError(f"batches must hold integer row indices, got dtype {array.dtype}")
        if array.min() < 0 or array.max() >= N:
            raise ValueError(f"batches: row indices must be in [0, N - 1 = {N - 1}], got values in "
                             f"[{array.min()}, {array.max()}]")
        if batch_size is not None and P.check("batch_size", batch_size) != array.shape[1]:
            raise ValueError(f"batch_size {batch_size} does not match batches of shape {array.shape}")
        return dict(stream=iter(array.astype(np.int64)), batch_size=int(array.shape[1]), steps=int(array.shape[0]),
                    check_every=check_every, sampling=sampling, stop_at_target=False, given=True,
                    description=f"given by the caller: {array.shape[0]} steps of {array.shape[1]} rows")
    if batch_size is None:
        raise ValueError(f"batch_size is required for SGD; expected an integer in [1, N = {N}]")
    batch_size = P.check("batch_size", batch_size)  # b <= N: checked by BatchStream
    if batch_rng is None:
        raise ValueError("SGD needs batch_rng (a numpy Generator, SeedSequence or integer seed) or batches")
    if not isinstance(batch_rng, (np.random.Generator, np.random.SeedSequence, int, np.integer)) or isinstance(
            batch_rng, bool):
        raise ValueError(f"batch_rng must be a numpy Generator, SeedSequence or integer seed, got {batch_rng!r}")
    stream = BatchStream(np.random.default_rng(batch_rng), N, batch_size, sampling)
    return dict(stream=stream, batch_size=batch_size, check_every=check_every, sampling=sampling,
                stop_at_target=True, given=False, description=f"drawn {sampling.replace('_', ' ')} from batch_rng")
