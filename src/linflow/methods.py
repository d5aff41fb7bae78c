"""The simulators behind :func:`linflow.simulate`: one table entry per method.

Each :class:`Method` owns what differs between simulators: whether it runs on the full
explicit weights (the naive references) or on the width-independent state, which
:func:`linflow.simulate` keywords only it uses, how it prepares its options (SGD's batch
stream), its runner (a function of the prepared :class:`Run` returning a
:class:`~linflow.kernels.Trajectory`), how a step maps to gradient-flow time, and what it adds
to the run record. :func:`linflow.simulate` only validates, reduces, builds the initial state,
calls the entry and assembles the record, so a new method is one entry here (its parameters in
:mod:`linflow.parameters`) plus its tests.

Time is gradient-flow time of the ``1/2 ||.||_F^2`` loss. Gradient descent with step ``eta`` on
the objective ``c * 1/2 ||.||_F^2`` (``c = 1`` for ``loss_scale="half"``, ``2/N`` for ``"mean"``)
is gradient descent with step ``c eta`` on ``1/2 ||.||_F^2``: step k sits at ``t = c eta k``.
For SGD the batch objective is ``1/2 ||Y_B - X_B U V^T||^2`` (half) or ``(1/b) ||.||^2`` (mean),
and in expectation a step moves the full-batch flow by ``eta_half b / N``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import kernels, resources, stiff
from . import parameters as P
from .sgd import BatchStream, sgd, sgd_explicit
from .state import CompressedInit
from .theory import ReducedProblem


@dataclass
class Run:
    """A prepared run: what every runner reads.

    ``X`` is the effective data ``output_scale * X``; ``U0``, ``V0`` the explicit weights (None
    for a compressed initialization); ``state`` the compressed initial state; ``options`` the
    validated settings (``step``, ``max_time``, ``max_steps``, ``rtol``, ...); ``scale`` the
    objective as a multiple of ``1/2 ||.||_F^2``; ``target`` the excess loss that stops the run;
    ``plan`` what the method's ``prepare`` returned (SGD: the batch stream and its size).
    """

    problem: ReducedProblem
    X: np.ndarray
    Y: np.ndarray
    U0: np.ndarray | None
    V0: np.ndarray | None
    state: CompressedInit
    options: dict
    scale: float
    excess0: float
    target: float
    plan: dict = field(default_factory=dict)

    @property
    def N(self) -> int:
        return self.Y.shape[0]


@dataclass(frozen=True)
class Method:
    """One simulator.

    ``explicit``: runs on the full weights ``U`` (n x h), ``V`` (m x h); needs ``U0``, ``V0``.
    ``keywords``: :func:`linflow.simulate` keywords (default None) that only this method uses.
    ``conserves_imbalance``: the imbalance ``D`` is constant along the run (gradient flow), so
    ``Delta_+``, ``Delta_-`` and ``Delta_`` need not be evaluated along it.
    ``prepare(options, N)``: the method's plan (validated extra options), before the run.
    ``run(run)``: the trajectory. ``time_per_step(run)``: flow time of one step (stepped methods).
    ``annotate(run, traj, diag, settings, attrs)``: the method's additions to the record.
    """

    name: str
    run: Callable[[Run], kernels.Trajectory]
    explicit: bool = False
    keywords: tuple = ()
    conserves_imbalance: bool = False
    prepare: Callable[[dict, int], dict] | None = None
    time_per_step: Callable[[Run], float] | None = None
    annotate: Callable | None = None


# ---------------------------------------------------------------------------
# Gradient flow
# ---------------------------------------------------------------------------


#: Flow integrators: (problem, state, target, max_time, rtol, atol, per_decade) -> Trajectory.
FLOW_SOLVERS = {"dop853": kernels.flow, "bdf": stiff.flow_bdf}

#: BDF's tolerances relative to the ``rtol``, ``atol`` settings: at a tenth of DOP853's
#: tolerances it meets the same accuracy (docs/solvers.md, the accuracy contract).
BDF_TOLERANCE_FACTOR = 0.1


def choose_solver(setting: str, problem: ReducedProblem, state: CompressedInit, max_time: float) -> str:
    """The flow integrator for the ``solver`` setting: ``auto`` takes BDF on stiff data
    (``lam_1 / lam_r >= resources.STIFF_RATIO``) over a long horizon (DOP853 would need more than
    ``resources.STIFF_MIN_STEPS`` steps to reach ``max_time``), DOP853 otherwise."""
    if setting != "auto":
        return setting
    if problem.lam_1 / problem.lam_r < resources.STIFF_RATIO:  # well-conditioned: no need to estimate the horizon
        return "dop853"
    steps = max_time * kernels.fastest_rate(problem, state.Zc) / 3.0
    return "bdf" if steps >= resources.STIFF_MIN_STEPS else "dop853"


def _flow(run: Run) -> kernels.Trajectory:
    if run.excess0 <= run.target:  # already fitted: no event can fire
        return kernels.Trajectory(np.zeros(1), None, run.state.Zc[None], run.state.U2c, "converged",
                                  "excess loss at the target from the start", 0, True)
    o = run.options
    solver = run.plan["solver"] = choose_solver(o["solver"], run.problem, run.state, o["max_time"])
    factor = BDF_TOLERANCE_FACTOR if solver == "bdf" else 1.0
    return FLOW_SOLVERS[solver](run.problem, run.state, run.target, o["max_time"], factor * o["rtol"],
                                factor * o["atol"], o["points_per_decade"])


def _flow_annotate(run: Run, traj, diag: dict, settings: dict, attrs: dict) -> None:
    settings["solver"] = run.options["solver"]
    diag["solver"] = run.plan.get("solver", "none")
    stats = traj.stats or {}
    diag.update(n_steps=stats.get("steps", np.nan), n_jvp=stats.get("jvp", np.nan),
                n_precond_setups=stats.get("precond_setups", np.nan),
                n_precond_solves=stats.get("precond_solves", np.nan))


# ---------------------------------------------------------------------------
# Gradient descent: step k at flow time k * scale * step
# ---------------------------------------------------------------------------


def _gd_eta(run: Run) -> float:
    return run.options["step"] * run.scale


def _gd(run: Run) -> kernels.Trajectory:
    o = run.options
    return kernels.gd(run.problem, run.state, _gd_eta(run), run.target, o["max_steps"], o["points_per_decade"],
                      o["divergence_factor"])


def _gd_explicit(run: Run) -> kernels.Trajectory:
    """Gradient descent is SGD with the full batch at every step, checked every step."""
    o, eta = run.options, _gd_eta(run)
    return sgd_explicit(run.problem, run.X, run.Y, run.U0, run.V0, eta, itertools.repeat(np.arange(run.N)),
                        run.target, o["max_steps"], o["points_per_decade"], o["divergence_factor"], 1, eta)


# ---------------------------------------------------------------------------
# Mini-batch SGD
# ---------------------------------------------------------------------------

SGD_KEYWORDS = ("batch_size", "batch_rng", "batches")


def _sgd_eta(run: Run) -> float:
    """The step on the batch's ``1/2 ||.||^2``: ``eta`` (half) or ``2 eta / b`` (mean)."""
    return run.options["step"] * (2.0 / run.plan["batch_size"] if run.options["loss_scale"] == "mean" else 1.0)


def _sgd_time_per_step(run: Run) -> float:
    return _sgd_eta(run) * run.plan["batch_size"] / run.N


def _sgd_arguments(run: Run) -> tuple:
    o, plan = run.options, run.plan
    return (_sgd_eta(run), plan["stream"], run.target, plan.get("steps", o["max_steps"]), o["points_per_decade"],
            o["divergence_factor"], plan["check_every"], _sgd_time_per_step(run), plan["stop_at_target"])


def _sgd(run: Run) -> kernels.Trajectory:
    return sgd(run.problem, run.Y, run.state, *_sgd_arguments(run))


def _sgd_explicit(run: Run) -> kernels.Trajectory:
    return sgd_explicit(run.problem, run.X, run.Y, run.U0, run.V0, *_sgd_arguments(run))


def _sgd_annotate(run: Run, traj, diag: dict, settings: dict, attrs: dict) -> None:
    plan = run.plan
    settings.update(batch_size=int(plan["batch_size"]), batch_sampling=plan["sampling"],
                    check_every=plan["check_every"], batches_given=plan["given"])
    if "steps" in plan:
        settings["max_steps"] = int(plan["steps"])
    attrs.update(batch_size=int(plan["batch_size"]), batch_sampling=plan["sampling"], batches=plan["description"],
                 time_mapping=attrs["time_mapping"] + " (in expectation over the batches: eta b / N per step)")
    diag["epoch"] = traj.step * (plan["batch_size"] / run.N)


def batch_plan(options: dict, N: int) -> dict:
    """Validated SGD batch options: the batch stream (generated or given) and its size.

    ``options["batches"]``: an integer array ``(steps, b)`` of row indices in ``[0, N)``;
    otherwise ``batch_size`` and ``batch_rng`` define a :class:`~linflow.sgd.BatchStream`.
    """
    batch_size, batch_rng, batches = options["batch_size"], options["batch_rng"], options["batches"]
    check_every = P.check("check_every", options["check_every"])
    sampling = P.check("batch_sampling", options["batch_sampling"])
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


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------

_SGD = dict(keywords=SGD_KEYWORDS, prepare=batch_plan, time_per_step=_sgd_time_per_step, annotate=_sgd_annotate)

METHODS: dict[str, Method] = {entry.name: entry for entry in (
    Method("flow", _flow, conserves_imbalance=True, annotate=_flow_annotate),
    Method("gd", _gd, time_per_step=_gd_eta),
    Method("gd_explicit", _gd_explicit, explicit=True, time_per_step=_gd_eta),
    Method("sgd", _sgd, **_SGD),
    Method("sgd_explicit", _sgd_explicit, explicit=True, **_SGD),
)}

assert tuple(sorted(METHODS)) == tuple(sorted(P.METHODS)), "every registered method has one entry"
assert {name for name, entry in METHODS.items() if entry.explicit} == set(P.EXPLICIT_METHODS)


def method(name: str) -> Method:
    """The entry of method ``name`` (checked against the registry's allowed values)."""
    return METHODS[P.check("method", name)]
