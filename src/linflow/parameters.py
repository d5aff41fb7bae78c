"""Every parameter of linflow, defined once.

Each :class:`Parameter` carries its name, type, default, allowed values, documentation, the
config block it belongs to and the conditions under which it applies. Everything else is
derived from these definitions or checked against them by the tests:

* the JSON schema of ``config.yaml`` (``linflow schema`` writes
  ``workflow/schemas/config.schema.yaml``; a test checks the committed file is current),
* the flags of ``linflow dataset`` and ``linflow simulate``,
* the validation and defaults of :func:`linflow.simulate` (a test compares its signature),
* the parameters of each workflow job: :func:`resolve` returns exactly the parameters a run
  uses, defaults filled in, so changing a parameter reruns only the jobs that use it.

This module is pure Python (no NumPy): the Snakefile imports it to plan jobs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

# Allowed values of the choice parameters (imported by data, init, simulate and the CLI).
SYNTHETIC_KINDS = ("factorization", "orthonormal_rows", "gaussian", "conditioned")
REAL_DATA_KINDS = ("file", "sklearn")  # data read from a file or from scikit-learn (linflow.realdata)
DATA_KINDS = SYNTHETIC_KINDS + REAL_DATA_KINDS
SKLEARN_SOURCES = ("digits", "diabetes", "linnerud")  # bundled with scikit-learn: no download
INIT_KINDS = ("gaussian", "scaled", "balanced", "invariant")
SAMPLING_KINDS = ("explicit", "wishart", "auto")
FLOW_METHODS = ("flow",)
GD_METHODS = ("gd", "gd_explicit")
SGD_METHODS = ("sgd", "sgd_explicit")
METHODS = FLOW_METHODS + GD_METHODS + SGD_METHODS
STEPPED_METHODS = GD_METHODS + SGD_METHODS
EXPLICIT_METHODS = ("gd_explicit", "sgd_explicit")  # naive references on the full n x h weights
FLOW_SOLVERS = ("auto", "dop853", "bdf")
LOSS_SCALES = ("half", "mean")
BATCH_SAMPLINGS = ("without_replacement", "with_replacement")
OUTPUT_SCALES = ("none", "inverse_sqrt_mh")
ALPHA_INITS = ("gaussian", "invariant")  # initializations with entries N(0, h^-2 alpha)
SCALE_INITS = ("scaled", "balanced")  # U(0) = a U0, V(0) = b V0

# Config blocks a parameter can appear in.
DATASET, CASE, SIMULATION, EXPERIMENT = "dataset", "case", "simulation", "experiment"


class ParameterError(ValueError):
    """A parameter value or key that is not allowed; the message names the key and the allowed values."""


@dataclass(frozen=True)
class Parameter:
    """One parameter. ``when`` maps context keys to the values under which the parameter
    applies (all must hold; empty: always). ``required`` says whether it must be given where
    it applies; otherwise ``default`` (None: no default, the parameter is optional)."""

    name: str
    type: str  # "integer" | "number" | "string" | "boolean"
    doc: str
    block: str
    default: Any = None
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    when: Mapping[str, tuple] = field(default_factory=dict)
    required: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def allowed(self) -> str:
        """The allowed values in words, e.g. ``a number in (0.25, 0.5]``."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.type == "boolean":
            return "true or false"
        noun = "an integer" if self.type == "integer" else "a number"
        low = (f"({self.exclusive_minimum:g}" if self.exclusive_minimum is not None
               else f"[{self.minimum:g}" if self.minimum is not None else "(-inf")
        high = (f"{self.exclusive_maximum:g})" if self.exclusive_maximum is not None
                else f"{self.maximum:g}]" if self.maximum is not None else "inf)")
        return f"{noun} in {low}, {high}" if self.type != "string" else "a string"

    def check(self, value, where: str = "") -> Any:
        """``value`` converted to this parameter's type; :class:`ParameterError` naming
        ``where`` (or the name) and the allowed values if it is not allowed."""
        label = where or self.name
        if self.choices:
            if value not in self.choices:
                raise ParameterError(f"{label}: {value!r} is not allowed; allowed: {self.allowed()}")
            return value
        if self.type == "string":
            if not isinstance(value, str):
                raise ParameterError(f"{label}: expected a string, got {value!r}")
            return value
        if self.type == "boolean":
            if type(value).__name__ not in ("bool", "bool_"):  # numpy's bool too, but not 0 / 1
                raise ParameterError(f"{label}: expected {self.allowed()}, got {value!r}")
            return bool(value)
        if isinstance(value, bool) or not _is_number(value):
            raise ParameterError(f"{label}: expected {self.allowed()}, got {value!r}")
        if self.type == "integer":
            if float(value) != int(value):
                raise ParameterError(f"{label}: expected {self.allowed()}, got {value!r}")
            value = int(value)
        else:
            value = float(value)
        if not math.isfinite(value) or not self._in_range(value):
            raise ParameterError(f"{label}: expected {self.allowed()}, got {value!r}")
        return value

    def parse(self, text: str) -> Any:
        """A command-line value: ``text`` converted and checked (argparse type function)."""
        if self.choices or self.type == "string":
            return self.check(text)
        if self.type == "boolean":
            words = {"true": True, "false": False}
            if text.lower() not in words:
                raise ParameterError(f"{self.flag}: expected {self.allowed()}, got {text!r}")
            return words[text.lower()]
        try:
            number = int(text) if self.type == "integer" else float(text)
        except ValueError:
            raise ParameterError(f"expected {self.allowed()}, got {text!r}") from None
        return self.check(number, where=self.flag)

    def _in_range(self, value: float) -> bool:
        return ((self.minimum is None or value >= self.minimum)
                and (self.maximum is None or value <= self.maximum)
                and (self.exclusive_minimum is None or value > self.exclusive_minimum)
                and (self.exclusive_maximum is None or value < self.exclusive_maximum))

    def applies(self, context: Mapping) -> bool:
        return all(context.get(key) in values for key, values in self.when.items())

    def json_schema(self) -> dict:
        schema: dict = {"description": self.doc}
        if self.choices:
            schema["enum"] = list(self.choices)
        else:
            schema["type"] = self.type
        for key, value in (("minimum", self.minimum), ("maximum", self.maximum),
                           ("exclusiveMinimum", self.exclusive_minimum),
                           ("exclusiveMaximum", self.exclusive_maximum)):
            if value is not None:
                schema[key] = value
        if self.default is not None:
            schema["default"] = self.default
        return schema


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, str)


def _p(name, type, doc, block, **kwargs) -> Parameter:
    return Parameter(name, type, doc, block, **kwargs)


_NEEDS_N = {"kind": ("orthonormal_rows", "gaussian", "conditioned")}
_SYNTHETIC = {"kind": SYNTHETIC_KINDS}
_REAL = {"kind": REAL_DATA_KINDS}

PARAMETERS: dict[str, Parameter] = {p.name: p for p in (
    # Synthetic data (Appendix A of the paper).
    _p("kind", "string", "data model", DATASET, choices=DATA_KINDS, required=True),
    _p("n", "integer", "input dimension", DATASET, minimum=1, when=_SYNTHETIC, required=True),
    _p("m", "integer", "output dimension", DATASET, minimum=1, when=_SYNTHETIC, required=True),
    _p("N", "integer", "number of samples", DATASET, minimum=1, when=_NEEDS_N, required=True),
    _p("noise", "number", "standard deviation of the target noise eps", DATASET, default=0.01,
       minimum=0, when=_NEEDS_N),
    _p("target_decay", "number", "ratio d of consecutive singular values of theta0 (1, 1/d, 1/d^2, ..., scaled to "
       "||theta0||_F^2 = m; random singular vectors): well-separated target directions, learned one at a time "
       "from small initializations. Default: theta0 with iid N(0, 1/n) entries", DATASET, minimum=1,
       when=_NEEDS_N),
    _p("target_variance", "number", "variance of the iid Gaussian targets (factorization)", DATASET,
       default=0.1, minimum=0, when={"kind": ("factorization",)}),
    _p("condition_number", "number", "s_1 / s_r of X (conditioned data)", DATASET, default=1.0, minimum=1,
       when={"kind": ("conditioned",)}),
    # Real data (linflow.realdata) and its preprocessing, applied in this order: one_hot, subsample,
    # center / standardize, scale; then rank_rtol decides the rank.
    _p("path", "string", "data file: NetCDF (.nc) or NumPy (.npz) with X (samples x features) and Y (samples x "
       "outputs); relative to the working directory. The workflow reruns the dataset when the file changes",
       DATASET, when={"kind": ("file",)}, required=True),
    _p("source", "string", "scikit-learn's bundled dataset (no download; needs the extra linflow[data]): digits "
       "(1797 x 64, one-hot targets m = 10), diabetes (442 x 10, m = 1) or linnerud (20 x 3, m = 3)", DATASET,
       choices=SKLEARN_SOURCES, when={"kind": ("sklearn",)}, required=True),
    _p("one_hot", "boolean", "Y is one column of integer class labels: replace it by one-hot rows (m = number of "
       "classes)", DATASET, default=False, when={"kind": ("file",)}),
    _p("subsample", "integer", "keep this many rows, drawn without replacement from the dataset's own random "
       "stream (default: all rows)", DATASET, minimum=1, when=_REAL),
    _p("center", "boolean", "subtract the mean of every column of X", DATASET, default=False, when=_REAL),
    _p("standardize", "boolean", "center every column of X and divide it by its standard deviation (constant "
       "columns become 0)", DATASET, default=False, when=_REAL),
    _p("scale", "number", "multiply X by this factor (after centering / standardizing)", DATASET, default=1.0,
       exclusive_minimum=0, when=_REAL),
    _p("rank_rtol", "number", "singular values of X below rank_rtol * s_1 count as zero (so a constant column "
       "does not become a tiny singular value)", DATASET, default=1e-10, exclusive_minimum=0, exclusive_maximum=1,
       when=_REAL),
    # Initialization (a case of an experiment).
    _p("init", "string", "initialization", CASE, choices=INIT_KINDS, required=True),
    _p("alpha", "number", "Gaussian init variance h^(-2 alpha): alpha < 1/2 lazy, alpha > 1/2 small (rich); "
       "Theorem 12 covers 1/4 < alpha <= 1/2, its bound and exponent are NaN outside", CASE,
       exclusive_minimum=0, maximum=2, when={"init": ALPHA_INITS}, required=True),
    _p("a", "number", "scale of U(0) = a U0 (U0 standard normal)", CASE, exclusive_minimum=0,
       when={"init": SCALE_INITS}, required=True),
    _p("b", "number", "scale of V(0) = b V0 (V0 standard normal)", CASE, exclusive_minimum=0,
       when={"init": SCALE_INITS}, required=True),
    _p("sampling", "string", "initial weights sampled explicitly (n x h arrays) or as their Wishart Gram "
       "factor (width-independent cost), or auto (Wishart from wishart_min_width on)", CASE,
       default="auto", choices=SAMPLING_KINDS),
    _p("wishart_min_width", "integer", "with sampling auto: widths from this on use Wishart sampling", CASE,
       default=20_000, minimum=1, when={"sampling": ("auto",)}),
    # Simulation.
    _p("method", "string", "simulator: exact gradient flow, gradient descent or mini-batch SGD (the "
       "_explicit variants update full n x h weights: references for tests)", SIMULATION,
       default="flow", choices=METHODS),
    _p("step", "number", "step size on the objective (gradient descent, SGD)", SIMULATION,
       exclusive_minimum=0, when={"method": STEPPED_METHODS}, required=True),
    _p("loss_scale", "string", "objective 1/2 ||Y - X U V^T||_F^2 (half) or (1/N) ||.||_F^2 (mean; for SGD "
       "the batch mean (1/b) ||Y_B - X_B U V^T||_F^2)", SIMULATION, default="half", choices=LOSS_SCALES),
    _p("stop_factor", "number", "stop when the excess loss has fallen by this factor", SIMULATION,
       default=1e-12, exclusive_minimum=0, exclusive_maximum=1),
    _p("loss_threshold", "number", "also stop when the objective's excess loss is below this", SIMULATION,
       exclusive_minimum=0),
    _p("max_time", "number", "gradient-flow time limit", SIMULATION, default=1e4, exclusive_minimum=0,
       when={"method": FLOW_METHODS}),
    _p("max_steps", "integer", "iteration limit", SIMULATION, default=1_000_000, minimum=1,
       maximum=2**31 - 1, when={"method": STEPPED_METHODS}),
    _p("solver", "string", "flow integrator: explicit DOP853 (SciPy), implicit BDF (SUNDIALS CVODE with an exact "
       "preconditioner; for ill-conditioned data) or auto (BDF when lam_1 / lam_r of the data is large, see "
       "docs/solvers.md)", SIMULATION, default="auto", choices=FLOW_SOLVERS, when={"method": FLOW_METHODS}),
    _p("rtol", "number", "relative tolerance of the flow integrator (BDF runs at a tenth of it: same accuracy)",
       SIMULATION, default=1e-10, exclusive_minimum=0, exclusive_maximum=1, when={"method": FLOW_METHODS}),
    _p("atol", "number", "absolute tolerance of the flow integrator (BDF runs at a tenth of it)", SIMULATION,
       default=1e-13, exclusive_minimum=0, when={"method": FLOW_METHODS}),
    _p("points_per_decade", "integer", "density of the log-spaced grid of recorded points", SIMULATION,
       default=20, minimum=1),
    _p("divergence_factor", "number", "diverged once the excess loss exceeds this multiple of its start",
       SIMULATION, default=1e6, exclusive_minimum=1, when={"method": STEPPED_METHODS}),
    _p("delta", "number", "confidence 1 - delta of the Theorem 12 bound", SIMULATION, default=0.1,
       exclusive_minimum=0, exclusive_maximum=1, when={"init": ALPHA_INITS}),
    _p("batch_size", "integer", "rows per mini-batch (SGD)", SIMULATION, minimum=1,
       when={"method": SGD_METHODS}, required=True),
    _p("batch_sampling", "string", "mini-batches from a fresh permutation every epoch (rows left over "
       "when b does not divide N are skipped that epoch) or rows drawn iid with replacement", SIMULATION,
       default="without_replacement", choices=BATCH_SAMPLINGS, when={"method": SGD_METHODS}),
    _p("check_every", "integer", "SGD: check the full-batch loss (stopping, divergence) every this many steps",
       SIMULATION, default=1, minimum=1, when={"method": SGD_METHODS}),
    # Experiment-level model setting.
    _p("output_scale", "string", "network f(x) = gamma V U^T x with gamma = 1 (none) or (m h)^(-1/2) "
       "(inverse_sqrt_mh, the matrix factorization of Fig. 2/4/5)", EXPERIMENT, default="none",
       choices=OUTPUT_SCALES),
    _p("chunk_size", "integer", "runs per simulation job: a job runs one width and a block of "
       "max(1, chunk_size // cases) consecutive seeds for every case, in one Python process",
       EXPERIMENT, default=200, minimum=1),
)}

#: Keys whose values decide which other parameters apply.
CONTEXT_KEYS = ("kind", "init", "sampling", "method")

DATASET_PARAMETERS = tuple(p for p in PARAMETERS.values() if p.block == DATASET)
RUN_PARAMETERS = tuple(p for p in PARAMETERS.values() if p.block in (CASE, SIMULATION) or p.name == "output_scale")


def default(name: str):
    """The default of parameter ``name``."""
    return PARAMETERS[name].default


def resolve(given: Mapping, parameters=RUN_PARAMETERS, where: str = "",
            label: Callable[[Parameter], str] = lambda p: p.name, inherited: frozenset = frozenset()) -> dict:
    """Exactly the parameters that apply, checked, with defaults filled in (sorted by name).

    ``given`` holds the values set by the user. A key that is unknown, or known but not used in
    this context (``alpha`` for ``init: scaled``, ``max_steps`` for ``method: flow``), a value out
    of range and a missing required key raise :class:`ParameterError`, naming ``where``, the key
    (as ``label`` writes it: config key or command-line flag) and what is allowed. Keys in
    ``inherited`` (set for a whole experiment) are dropped where they do not apply.
    """
    prefix = f"{where}: " if where else ""
    known = {p.name: p for p in parameters}
    given = {key: value for key, value in given.items() if value is not None}
    for key in given:
        if key not in known:
            raise ParameterError(f"{prefix}unknown key {key!r}; allowed: {', '.join(sorted(known))}")
    context = {}
    for key in CONTEXT_KEYS:
        if key not in known:
            continue
        p = known[key]
        if key in given:
            context[key] = p.check(given[key], prefix + label(p))
        elif p.required:
            raise ParameterError(f"{prefix}{label(p)} is required ({p.doc}); expected {p.allowed()}")
        else:
            context[key] = p.default
    resolved = {}
    for p in parameters:
        applies = p.applies(context)
        if p.name in given:
            if applies:
                resolved[p.name] = p.check(given[p.name], prefix + label(p))
            elif p.name not in inherited:
                condition = " and ".join(f"{k} is {context.get(k)!r}" for k in p.when)
                usable = ", ".join(label(q) for q in parameters if q.applies(context))
                raise ParameterError(f"{prefix}{label(p)} is not used when {condition}; used here: {usable}")
        elif applies and p.required:
            raise ParameterError(f"{prefix}{label(p)} is required here ({p.doc}); expected {p.allowed()}")
        elif applies and p.default is not None:
            resolved[p.name] = p.default
    return dict(sorted(resolved.items()))


def check(name: str, value, where: str = "") -> Any:
    """``value`` checked against parameter ``name`` (the Python API's validation)."""
    return PARAMETERS[name].check(value, where or name)
