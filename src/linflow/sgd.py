"""Mini-batch SGD on the width-independent state, the explicit-weights references (SGD, and
gradient descent as SGD with the full batch), and batches.

docs/theory.md, section 2 ("Mini-batch SGD is exact too"): for a batch ``B`` of rows,
``L_B = 1/2 ||Y_B - X_B U V^T||_F^2`` with ``X_B = W_B S Phi1^T``. The gradient in ``U`` lies in
the row space of ``X``, so ``U2`` is constant, and with ``R_B = Y_B - W_B S U1 V^T`` and
``E_B = W_B^T R_B`` (``r x m``) one step is

    ``U1 <- U1 + eta S E_B V``,  ``V <- V + eta E_B^T S U1``,  i.e.  ``Zc <- (I + eta A(E_B)) Zc``,

gradient descent's update (:func:`linflow.kernels.gd`) with ``E`` replaced by ``E_B``, which
depends on the state only through ``U1 V^T``. ``E_B`` is not ``(W^T Y - S U1 V^T)`` restricted to
anything: it needs the batch rows ``Y_B`` of the raw targets (the part of ``Y`` outside the
column space of ``W`` enters it), so the kernel takes ``Y``. For the full batch ``E_B = E``.

Batches: ``without_replacement`` draws a fresh permutation of the ``N`` rows every epoch and
cuts it into ``N // b`` batches (the ``N mod b`` rows left over are skipped that epoch);
``with_replacement`` draws every row of every batch iid uniform. :class:`BatchStream` is the
one generator of both, so :func:`batch_sequence` returns exactly the batches a run draws.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from . import parameters as P
from . import theory
from .kernels import Trajectory, _diverged, _record_steps, error
from .resources import SGD_BLOCK_ROWS
from .state import compress


class BatchStream:
    """Iterator over mini-batches (integer arrays of ``b`` row indices in ``[0, N)``)."""

    def __init__(self, rng: np.random.Generator, N: int, b: int, sampling: str):
        if not 1 <= b <= N:
            raise ValueError(f"batch_size: expected an integer in [1, N = {N}], got {b}")
        self.rng, self.N, self.b, self.sampling = rng, int(N), int(b), P.check("batch_sampling", sampling)
        self._block: np.ndarray = np.empty((0, b), dtype=np.int64)
        self._next = 0

    def _refill(self) -> None:
        if self.sampling == "without_replacement":
            per_epoch = self.N // self.b
            self._block = self.rng.permutation(self.N)[: per_epoch * self.b].reshape(per_epoch, self.b)
        else:
            self._block = self.rng.integers(0, self.N, size=(max(1, SGD_BLOCK_ROWS // self.b), self.b))
        self._next = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        return self

    def __next__(self) -> np.ndarray:
        if self._next == len(self._block):
            self._refill()
        batch = self._block[self._next]
        self._next += 1
        return batch


def batch_sequence(rng, N: int, b: int, sampling: str, steps: int) -> np.ndarray:
    """The first ``steps`` batches (``steps x b`` row indices) that :func:`linflow.simulate` with
    ``method="sgd"`` and ``batch_rng=rng`` would draw."""
    stream = BatchStream(np.random.default_rng(rng), N, b, sampling)
    return np.array([next(stream) for _ in range(steps)], dtype=np.int64).reshape(steps, b)


def _run_steps(excess_now, snapshot, advance, batches, target, max_steps, per_decade, divergence_factor,
               check_every, stop_at_target):
    """The loop of :func:`sgd` and :func:`sgd_explicit`: check, record, stop, step.

    ``excess_now()`` is the full-batch excess loss of the current state, ``snapshot()`` what to
    record of it, ``advance(rows)`` one step on the batch ``rows``. The excess loss is checked
    every ``check_every`` steps and at the last one: the run stops when it is below ``target``
    (if ``stop_at_target``) or diverged (as :func:`linflow.kernels.gd`). Between checks a
    diverging state may overflow, so only states that have not diverged are recorded. Returns
    ``(snapshots, steps, status, message, evaluations)``.
    """
    record = set(_record_steps(max_steps, per_decade).tolist())
    snapshots, steps = [], []
    excess0 = None
    status, message = "not_converged", f"step limit {max_steps} reached before the target"
    every = max(1, int(check_every))
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(max_steps + 1):
            done, excess = False, None
            if k % every == 0 or k == max_steps:  # always at k = 0, which sets excess0
                excess = excess_now()
                excess0 = excess if excess0 is None else excess0
                if _diverged(excess, excess0, divergence_factor):
                    status, message = "diverged", f"excess loss {excess:.3e} at step {k} (initial {excess0:.3e})"
                    break
                done = excess <= target
                if k == max_steps and done:
                    status, message = "converged", "excess loss at the target after the last step"
                done = done and stop_at_target
            if k in record or done or k == max_steps:
                if not _diverged(excess_now() if excess is None else excess, excess0, divergence_factor):
                    snapshots.append(snapshot())
                    steps.append(k)
            if done:
                status, message = "converged", "excess loss reached the target"
                break
            if k == max_steps:
                break
            advance(next(batches))
    return snapshots, np.asarray(steps, dtype=np.int64), status, message, int(k + 1)


def sgd(problem, Y, init, eta, batches, target, max_steps, per_decade, divergence_factor, check_every,
        time_per_step, stop_at_target=True) -> Trajectory:
    """Mini-batch SGD ``Zc <- (I + eta A(E_B)) Zc``, ``E_B = W_B^T (Y_B - W_B S U1 V^T)``.

    ``batches`` yields the row indices of each step; checks, records and stopping as in
    :func:`_run_steps`. Step ``k`` sits at flow time ``k * time_per_step``.
    """
    s, Yt, W, m = problem.s, problem.Yt, problem.W, problem.m
    Y = np.asarray(Y, dtype=np.float64)
    Z = init.Zc.copy()

    def advance(rows):
        nonlocal Z
        W_B = W[rows]
        product = Z[m:] @ Z[:m].T  # U1 V^T, r x m
        R_B = Y[rows] - W_B @ (s[:, None] * product)
        SE = s[:, None] * (W_B.T @ R_B)  # S E_B
        Z = np.vstack([Z[:m] + eta * (SE.T @ Z[m:]), Z[m:] + eta * (SE @ Z[:m])])

    snapshots, steps, status, message, evaluations = _run_steps(
        lambda: theory.excess_loss(error(s, Yt, Z, m)), lambda: Z.copy(), advance, batches, target, max_steps,
        per_decade, divergence_factor, check_every, stop_at_target)
    return Trajectory(time_per_step * steps, steps, np.asarray(snapshots), init.U2c, status, message, evaluations,
                      True)


def sgd_explicit(problem, X, Y, U, V, eta, batches, target, max_steps, per_decade, divergence_factor, check_every,
                 time_per_step, stop_at_target=True) -> Trajectory:
    """Naive mini-batch SGD on the full weights: ``R_B = Y_B - X_B U V^T``, ``V += eta R_B^T X_B U``,
    ``U += eta X_B^T R_B V`` (the reference :func:`sgd` is tested against)."""
    U, V = U.copy(), V.copy()

    def advance(rows):
        nonlocal U, V
        X_B = X[rows]
        X_BU = X_B @ U
        R_B = Y[rows] - X_BU @ V.T
        V, U = V + eta * (R_B.T @ X_BU), U + eta * (X_B.T @ (R_B @ V))

    def snapshot():
        c = compress(problem, U, V)
        return c.Zc, c.U2c

    # excess loss from the reduced error (no L - L* cancellation), as for the other methods
    snapshots, steps, status, message, evaluations = _run_steps(
        lambda: theory.excess_loss(problem.W.T @ (Y - X @ U @ V.T)), snapshot, advance, batches, target,
        max_steps, per_decade, divergence_factor, check_every, stop_at_target)
    Zc = np.asarray([z for z, _ in snapshots])
    U2c = np.asarray([u for _, u in snapshots])
    return Trajectory(time_per_step * steps, steps, Zc, U2c, status, message, evaluations, False)
