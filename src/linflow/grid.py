"""The sweep grid of a workflow config: runs, their parameters, and the chunks that run them.

:func:`plan` turns a (schema-valid) config into datasets, experiments and figures:

* widths are a list or a log-spaced range ``{logspace: [lo, hi], num: k}`` (rounded to
  integers; duplicates refused), seeds a count (``0 .. count - 1``) or a list;
* a case may sweep one parameter (``sweep: {alpha: [0.3, 0.4]}`` or a ``linspace``/``logspace``
  range), expanding to one case per value, named ``<case><value>``;
* every run's parameters are resolved by :func:`linflow.parameters.resolve`: exactly the ones
  it uses, defaults filled in, so a job's parameters change only when its results can;
* runs are cut into chunks, the unit of a simulation job: **one width and a block of
  ``max(1, chunk_size // number of cases)`` consecutive seed values, for every case**. Seed
  ``s`` is in block ``s // seeds_per_chunk``; chunk ``h<width>_b<block>``. Adding a width adds
  chunks; adding seeds changes only the block the new seeds join (and adds blocks); adding a
  case or changing ``chunk_size`` changes every chunk of the experiment.

Pure Python: the Snakefile imports it to plan jobs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from . import parameters as P
from . import resources


class ConfigError(ValueError):
    """A config that the schema accepts but that cannot be planned (names the key)."""


@dataclass(frozen=True)
class Chunk:
    """One simulation job: ``width`` and ``seeds`` for every case of ``experiment``."""

    experiment: str
    block: int
    width: int
    seeds: tuple[int, ...]
    cases: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"h{self.width}_b{self.block}"

    @property
    def runs(self) -> list[tuple[str, int, int]]:
        """``(case, width, seed)`` of every run, in the order the job runs them."""
        return [(case, self.width, seed) for seed in self.seeds for case in self.cases]


@dataclass(frozen=True)
class Experiment:
    name: str
    dataset: str
    cases: dict[str, dict]  # case -> resolved run parameters
    widths: tuple[int, ...]
    seeds: tuple[int, ...]
    chunk_size: int
    resources: dict = field(default_factory=dict)  # user overrides: runtime, mem_mb

    @property
    def seeds_per_chunk(self) -> int:
        return max(1, self.chunk_size // len(self.cases))

    @functools.cached_property
    def chunks(self) -> list[Chunk]:
        """The experiment's jobs (computed once: planning asks for them once per job)."""
        blocks: dict[int, list[int]] = {}
        for seed in self.seeds:
            blocks.setdefault(seed // self.seeds_per_chunk, []).append(seed)
        return [Chunk(self.name, block, width, tuple(seeds), tuple(self.cases))
                for width in self.widths for block, seeds in sorted(blocks.items())]

    @functools.cached_property
    def chunk_index(self) -> dict[str, Chunk]:
        return {chunk.id: chunk for chunk in self.chunks}

    @property
    def n_runs(self) -> int:
        return len(self.cases) * len(self.widths) * len(self.seeds)


@dataclass(frozen=True)
class Plan:
    entropy: int
    datasets: dict[str, dict]  # name -> resolved dataset parameters
    experiments: dict[str, Experiment]
    figures: dict[str, dict]
    dims: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # dataset -> (N, n, m)

    def chunk(self, experiment: str, chunk_id: str) -> Chunk:
        try:
            return self.experiments[experiment].chunk_index[chunk_id]
        except KeyError:
            raise KeyError(f"experiment {experiment!r} has no chunk {chunk_id!r}") from None

    def chunk_spec(self, chunk: Chunk) -> dict:
        """Everything the chunk's job uses: its runs and their resolved parameters."""
        experiment = self.experiments[chunk.experiment]
        return {
            "experiment": chunk.experiment,
            "entropy": self.entropy,
            "width": chunk.width,
            "runs": [[case, seed] for case, _, seed in chunk.runs],
            "cases": {case: experiment.cases[case] for case in chunk.cases},
        }

    def chunk_resources(self, chunk: Chunk, attempt: int = 1) -> dict:
        """Memory (MB) and wall time (minutes) of the chunk's job, from the same estimates the
        simulator uses (:mod:`linflow.resources`), unless the experiment sets them; both times
        ``attempt`` for a retried job."""
        experiment = self.experiments[chunk.experiment]
        data = self.datasets[experiment.dataset]
        N, n, m = self.dims[experiment.dataset]
        rank = min(N, n)
        runs = chunk.runs
        estimate = resources.chunk_resources([experiment.cases[c] for c, _, _ in runs], n=n, m=m, rank=rank,
                                             widths=[w for _, w, _ in runs],
                                             ratio=resources.stiffness_ratio(data), attempt=attempt,
                                             data_bytes=resources.data_memory_bytes(N, n, m))
        estimate.update({key: attempt * value for key, value in experiment.resources.items()})
        return estimate


def canonical(value) -> str:
    """Canonical JSON (sorted keys, no spaces): equal parameters give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def spec_hash(spec: dict) -> str:
    """SHA-256 of a chunk spec's canonical JSON (what a job checks it planned)."""
    return hashlib.sha256(canonical(spec).encode()).hexdigest()


def write_plan_config(config: dict, path) -> Path:
    """Write ``config`` as JSON to ``path`` (atomically, only if its content changed)."""
    path = Path(path)
    text = json.dumps(config, indent=1, default=str)  # key order kept: it orders the cases and runs
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def planned_spec(config_path, experiment: str, chunk_id: str, expected_hash: str | None = None) -> dict:
    """The spec of chunk ``chunk_id`` of ``experiment``, planned from the config file; with
    ``expected_hash``, refuse a spec that differs from the one the workflow planned."""
    config = json.loads(Path(config_path).read_text())
    the_plan = plan(config)
    if experiment not in the_plan.experiments:
        raise ConfigError(f"{config_path}: no experiment {experiment!r}; allowed: {', '.join(the_plan.experiments)}")
    spec = the_plan.chunk_spec(the_plan.chunk(experiment, chunk_id))
    if expected_hash is not None and spec_hash(spec) != expected_hash:
        raise ConfigError(f"{config_path}: chunk {experiment}/{chunk_id} plans differently from when the workflow "
                          f"started (the config changed meanwhile?); rerun snakemake")
    return spec


def _integer(value, where: str, what: str = "an integer"):
    """``value`` as an int: integers written as floats (``2.0``, ``1e10``, as YAML reads them) are
    converted; anything else is a :class:`ConfigError` naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value != int(value):
        raise ConfigError(f"{where}: expected {what}, got {value!r}")
    return int(value)


def _values(spec, where: str, parameter: P.Parameter | None = None) -> list:
    """A list, or ``{linspace|logspace: [a, b], num: k}`` (logspace: 10^a .. 10^b)."""
    if isinstance(spec, list):
        values = spec
    else:
        (kind,) = (key for key in spec if key != "num")
        lo, hi = spec[kind]
        num = _integer(spec["num"], f"{where}.num", "a positive integer")
        if num == 1:
            values = [lo if kind == "linspace" else 10.0**lo]
        else:
            steps = [lo + (hi - lo) * i / (num - 1) for i in range(num)]
            values = steps if kind == "linspace" else [10.0**x for x in steps]
        values = [float(f"{v:.12g}") for v in values]  # 0.35, not 0.35000000000000003
    if parameter is not None:
        values = [parameter.check(v, where) for v in values]
    if len(set(values)) != len(values):
        duplicates = sorted({v for v in values if values.count(v) > 1})
        raise ConfigError(f"{where}: duplicate values {duplicates}; every value must be distinct")
    return values


def expand_widths(spec, where: str) -> tuple[int, ...]:
    """Hidden widths from a list or ``{logspace: [lo, hi], num: k}`` (rounded to integers)."""
    if isinstance(spec, dict):
        raw = _values(spec, where)
        widths = [int(round(w)) for w in raw]
        if len(set(widths)) != len(widths):
            duplicates = sorted({w for w in widths if widths.count(w) > 1})
            raise ConfigError(f"{where}: widths {duplicates} appear twice after rounding to integers; "
                              f"use fewer points or a wider range")
    else:
        widths = [_integer(w, f"{where}[{i}]", "a positive integer width") for i, w in enumerate(spec)]
        widths = _values(widths, where)
    if any(w < 1 for w in widths):
        raise ConfigError(f"{where}: widths must be positive integers, got {widths}")
    return tuple(sorted(widths))


def expand_seeds(spec, where: str) -> tuple[int, ...]:
    """Seed values from a count (``0 .. count - 1``) or a list of distinct non-negative integers."""
    if isinstance(spec, list):
        seeds = _values([_integer(s, f"{where}[{i}]", "a non-negative integer seed") for i, s in enumerate(spec)],
                        where)
    else:
        seeds = list(range(_integer(spec, where, "a positive count of seeds or a list of seed values")))
    if not seeds or any(s < 0 for s in seeds):
        raise ConfigError(f"{where}: seeds must be a positive count or a list of non-negative integers")
    return tuple(sorted(seeds))


def _format(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def expand_cases(cases: dict, where: str) -> dict[str, dict]:
    """Case families with ``sweep: {parameter: values}`` become one case per value."""
    expanded: dict[str, dict] = {}
    for name, spec in cases.items():
        spec = dict(spec)
        sweep = spec.pop("sweep", None)
        if sweep is None:
            expanded[name] = spec
            continue
        (key, values_spec), = sweep.items()
        here = f"{where}.{name}.sweep.{key}"
        if key in spec:
            raise ConfigError(f"{here}: {key!r} is both swept and set in the case; set it in one place")
        if key not in P.PARAMETERS or P.PARAMETERS[key].type not in ("integer", "number"):
            raise ConfigError(f"{here}: only numeric run parameters can be swept")
        for value in _values(values_spec, here, P.PARAMETERS[key]):
            label = f"{name}{_format(value)}"
            if label in expanded or label in cases:
                raise ConfigError(f"{here}: the case name {label!r} is taken")
            expanded[label] = {**spec, key: value}
    return expanded


def _refuse_case_insensitive_clashes(names, where: str) -> None:
    """Names become file and folder names: two that differ only in letter case would be one
    file on a case-insensitive file system (macOS, Windows), so one run would overwrite another."""
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(name.casefold(), name)
        if other != name:
            raise ConfigError(f"{where}: {other!r} and {name!r} differ only in letter case; they would be the "
                              f"same file on a case-insensitive file system: rename one")


def plan_experiment(name: str, spec: dict, datasets: dict, dims: dict) -> Experiment:
    where = f"experiments.{name}"
    if spec["dataset"] not in datasets:
        raise ConfigError(f"{where}.dataset: {spec['dataset']!r} is not a dataset; "
                          f"allowed: {', '.join(datasets)}")
    simulation = dict(spec["simulation"])
    experiment_level = {"output_scale": spec.get("output_scale", P.default("output_scale"))}
    inherited = frozenset(simulation) | frozenset(experiment_level)
    cases = {}
    applied = set()
    expanded = expand_cases(spec["cases"], f"{where}.cases")
    _refuse_case_insensitive_clashes(expanded, f"{where}.cases")
    for case, case_spec in expanded.items():
        if "method" in case_spec:
            raise ConfigError(f"{where}.cases.{case}: method is set per experiment (simulation.method)")
        given = {**experiment_level, **simulation, **case_spec}
        cases[case] = P.resolve(given, where=f"{where}.cases.{case}", inherited=inherited)
        applied.update(cases[case])
    for key in simulation:
        if key not in applied:
            raise ConfigError(f"{where}.simulation.{key} is not used by any case "
                              f"({P.PARAMETERS[key].name} applies when "
                              + " and ".join(f"{k} is one of {', '.join(v)}" for k, v in P.PARAMETERS[key].when.items())
                              + ")")
    chunk_size = P.check("chunk_size", spec.get("chunk_size", P.default("chunk_size")), f"{where}.chunk_size")
    widths = expand_widths(spec["widths"], f"{where}.widths")
    _refuse_impossible_runs(where, cases, widths, dims[spec["dataset"]])
    return Experiment(
        name=name,
        dataset=spec["dataset"],
        cases=cases,
        widths=widths,
        seeds=expand_seeds(spec["seeds"], f"{where}.seeds"),
        chunk_size=chunk_size,
        resources=dict(spec.get("resources", {})),
    )


def dataset_dims(params: dict) -> tuple[int, int, int]:
    """``(N, n, m)`` of a dataset before it is made: from its parameters, or for real data from
    the file's array shapes (:func:`linflow.realdata.dims`; imported only then: it needs NumPy)."""
    if params["kind"] in P.REAL_DATA_KINDS:
        from . import realdata

        return realdata.dims(params)
    return params.get("N", params["n"]), params["n"], params["m"]  # factorization data: X = I_n


def _refuse_impossible_runs(where: str, cases: dict, widths: tuple, dims: tuple[int, int, int]) -> None:
    """Refuse, naming the key, a case whose every run would fail: mini-batches larger than the
    data, an explicit-weights method on Wishart-sampled (weightless) initializations, and
    Wishart sampling below width m + r."""
    N, n, m = dims
    k = m + min(N, n)  # m + rank: an upper bound (synthetic data have full rank)
    for case, params in cases.items():
        here = f"{where}.cases.{case}"
        if params.get("batch_size", 0) > N:
            raise ConfigError(f"{here}.batch_size: {params['batch_size']} rows per batch, but the dataset has "
                              f"N = {N} rows; expected an integer in [1, {N}]")
        for width in widths:
            try:
                wishart = resources.uses_wishart(params["sampling"], width,
                                                 params.get("wishart_min_width", P.default("wishart_min_width")), k)
            except ValueError:
                raise ConfigError(f"{here}.sampling: 'wishart' needs width >= m + r = {k}, but widths has {width}; "
                                  f"use explicit or auto, or widths >= {k}") from None
            if wishart and params["method"] in P.EXPLICIT_METHODS:
                raise ConfigError(f"{here}.sampling: method {params['method']!r} updates explicit weights, which "
                                  f"{params['sampling']!r} sampling does not draw at width {width}; use explicit")


def plan(config: dict) -> Plan:
    """Resolve a workflow config (validated against the schema) into its plan."""
    datasets = {name: P.resolve(spec, P.DATASET_PARAMETERS, where=f"datasets.{name}")
                for name, spec in config["datasets"].items()}
    for block in ("datasets", "experiments", "figures"):
        _refuse_case_insensitive_clashes(config.get(block, {}), block)
    dims = {}
    for name, params in datasets.items():
        try:
            dims[name] = dataset_dims(params)
        except (ValueError, FileNotFoundError) as exc:  # bad data stops the plan, before any job
            raise ConfigError(f"datasets.{name}: {exc}") from None
    experiments = {name: plan_experiment(name, spec, datasets, dims) for name, spec in config["experiments"].items()}
    figures = dict(config.get("figures", {}))
    for name, figure in figures.items():
        for experiment in figure["experiments"]:
            if experiment not in experiments:
                raise ConfigError(f"figures.{name}.experiments names {experiment!r}, which is not an experiment; "
                                  f"allowed: {', '.join(experiments)}")
    return Plan(entropy=int(config["seed_entropy"]), datasets=datasets, experiments=experiments, figures=figures,
                dims=dims)
