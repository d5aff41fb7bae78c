"""The theorems checked on every run: Proposition 1 and Theorem 3 at every recorded point.

Both bounds hold pointwise at any state (docs/theory.md, section 5), and Theorem 3's loss bound along the
gradient flow, so a violation beyond round-off is a bug in the simulator or in the bounds,
never a finding. :func:`bound_violations` measures the largest relative excess of each bound
(<= 0 when it holds); every run record stores them, and :func:`check_bounds` (the aggregation
step) refuses a run whose excess is above a tolerance.
"""

from __future__ import annotations

import numpy as np

#: Run-record scalars: (name, long_name).
VIOLATIONS = {
    "prop1_violation": "largest relative excess of the Proposition 1 rate bound over the exact rate "
                       "(<= 0: the bound holds at every recorded point)",
    "thm3_violation": "largest relative excess of Theorem 3's rate lam_r c(t) over the exact rate "
                      "(<= 0: the bound holds at every recorded point)",
    "loss_bound_violation": "largest relative excess of the excess loss over Theorem 3's bound "
                            "exp(-lam_r c(0) t) L~(0) (<= 0: it holds; gradient flow only, NaN otherwise)",
}

# Absolute slack, relative to the largest rate (resp. the initial excess loss): the bounds are
# attained in some cases, where round-off decides the sign.
RATE_FLOOR = 1e-13
LOSS_FLOOR = 1e-12
#: Relative excess above which a bound counts as violated (``linflow aggregate --bound-rtol``).
DEFAULT_RTOL = 1e-8


class BoundViolation(RuntimeError):
    """A theorem's bound failed on a recorded state: a bug in the simulator or the bounds."""


def _relative_excess(bound: np.ndarray, value: np.ndarray, floor: float) -> float:
    ok = np.isfinite(bound) & np.isfinite(value)
    if not np.any(ok):
        return float("nan")
    bound, value = bound[ok], value[ok]
    scale = np.maximum(np.maximum(np.abs(bound), np.abs(value)), np.finfo(float).tiny)
    return float(np.max((bound - value - floor) / scale))


def bound_violations(inst_rate, rate_bound, rate_thm3, excess_loss, loss_bound, flow: bool) -> dict:
    """The three entries of :data:`VIOLATIONS` from a run's trajectories."""
    inst = np.asarray(inst_rate, dtype=float)
    rate_floor = RATE_FLOOR * float(np.max(np.abs(inst[np.isfinite(inst)]), initial=0.0))
    excess = np.asarray(excess_loss, dtype=float)
    loss = float("nan")
    if flow and excess.size:
        loss = _relative_excess(excess, np.asarray(loss_bound, dtype=float), LOSS_FLOOR * float(excess[0]))
    return {
        "prop1_violation": _relative_excess(np.asarray(rate_bound, dtype=float), inst, rate_floor),
        "thm3_violation": _relative_excess(np.asarray(rate_thm3, dtype=float), inst, rate_floor),
        "loss_bound_violation": loss,
    }


def check_bounds(violations: dict, where, rtol: float = DEFAULT_RTOL) -> None:
    """Raise :class:`BoundViolation` naming ``where`` if any violation exceeds ``rtol``."""
    bad = [f"{name} = {value:.3e}" for name, value in violations.items() if np.isfinite(value) and value > rtol]
    if bad:
        raise BoundViolation(f"{where}: bound violated beyond numerical tolerance {rtol:g} (a bug): " + "; ".join(bad))
