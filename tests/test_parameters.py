"""One definition per parameter: the registry, and everything derived from it or checked against it
(the config schema, the command line, the Python API's defaults, the jobs' parameters)."""

from __future__ import annotations

import copy
import re
import inspect
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from linflow import data, grid, init, schema, simulate
from linflow import parameters as P

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())


def test_committed_schema_is_generated_from_the_registry():
    assert SCHEMA.read_text() == schema.render(), (
        "workflow/schemas/config.schema.yaml is stale: run `linflow schema --output "
        "workflow/schemas/config.schema.yaml --overwrite`")


@pytest.mark.parametrize("function", [simulate, init.initialize, data.make_dataset],
                         ids=lambda f: f.__qualname__)
def test_python_defaults_equal_the_registry(function):
    checked = 0
    for name, argument in inspect.signature(function).parameters.items():
        if name in P.PARAMETERS and P.PARAMETERS[name].default is not None:
            assert argument.default == P.default(name), f"{function.__qualname__}({name}=...)"
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("command,group", [("simulate", P.RUN_PARAMETERS), ("dataset", P.DATASET_PARAMETERS)])
def test_every_parameter_has_a_flag_with_its_allowed_values(command, group):
    text = subprocess.run([sys.executable, "-m", "linflow", command, "--help"], capture_output=True, text=True,
                          check=True, env={"COLUMNS": "400", "PATH": ""}).stdout
    for p in group:
        assert p.flag in text, p.flag
        assert p.allowed() in text, (p.flag, p.allowed())


def test_resolve_keeps_exactly_what_a_run_uses():
    flow = P.resolve({"init": "gaussian", "alpha": 0.5, "sampling": "wishart", "method": "flow"})
    assert "max_steps" not in flow and "divergence_factor" not in flow and "wishart_min_width" not in flow
    assert flow["rtol"] == P.default("rtol") and flow["delta"] == P.default("delta")
    gd = P.resolve({"init": "scaled", "a": 1, "b": 2, "method": "gd", "step": 0.1})
    assert "max_time" not in gd and "rtol" not in gd and "delta" not in gd and "alpha" not in gd
    assert gd["wishart_min_width"] == P.default("wishart_min_width")  # sampling defaults to auto
    factorization = P.resolve({"kind": "factorization", "n": 4, "m": 2}, P.DATASET_PARAMETERS)
    assert factorization == {"kind": "factorization", "m": 2, "n": 4, "target_variance": P.default("target_variance")}


@pytest.mark.parametrize("given,words", [
    ({"init": "scaled", "a": 1, "b": 1, "alpha": 0.4, "method": "flow"}, ["alpha is not used when init is 'scaled'"]),
    ({"init": "gaussian", "alpha": 0.5, "a": 1, "method": "flow"}, ["a is not used when init is 'gaussian'"]),
    ({"init": "gaussian", "alpha": 0.5, "method": "flow", "max_steps": 10}, ["max_steps", "method is 'flow'"]),
    ({"init": "gaussian", "alpha": 0.5, "sampling": "explicit", "wishart_min_width": 5, "method": "flow"},
     ["wishart_min_width", "sampling is 'explicit'"]),
    ({"init": "gaussian", "alpha": 2.5, "method": "flow"}, ["alpha", "(0, 2]"]),
    ({"init": "gaussian", "alpha": 0.5, "method": "gd"}, ["step is required"]),
    ({"init": "gaussian", "alpha": 0.5, "method": "flow", "colour": 1}, ["unknown key 'colour'"]),
])
def test_resolve_refuses_with_the_key_and_the_allowed_values(given, words):
    with pytest.raises(P.ParameterError) as error:
        P.resolve(given, where="experiments.x.cases.c")
    for word in words:
        assert word in str(error.value)
    assert "experiments.x.cases.c" in str(error.value)


def validate(config):
    from snakemake.utils import validate as snakemake_validate

    snakemake_validate(copy.deepcopy(config), str(SCHEMA), set_default=False)


def changed(change):
    config = copy.deepcopy(CONFIG)
    change(config)
    return config


def test_default_config_is_valid_and_plans():
    validate(CONFIG)
    plan = grid.plan(CONFIG)
    assert set(plan.experiments) == set(CONFIG["experiments"])


SCHEMA_ERRORS = [
    ("alpha on a scaled case", lambda c: c["experiments"]["imbalanced_init"]["cases"]["a0.1_b0.1"].update(alpha=0.4),
     ["'alpha' is not one of", "'a', 'b'"]),
    ("a on a gaussian case", lambda c: c["experiments"]["implicit_bias"]["cases"]["alpha0.50"].update(a=1.0),
     ["'a' is not one of", "'alpha'"]),
    ("max_steps for flow", lambda c: c["experiments"]["implicit_bias_wide"]["simulation"].update(max_steps=10),
     ["'max_steps' is not one of", "'max_time'"]),
    ("max_steps override on a flow case",
     lambda c: c["experiments"]["implicit_bias_wide"]["cases"]["alpha0.50"].update(max_steps=10),
     ["'max_steps' is not one of"]),
    ("wishart_min_width with explicit sampling",
     lambda c: c["experiments"]["implicit_bias"]["cases"]["alpha0.50"].update(wishart_min_width=10),
     ["'wishart_min_width' is not one of"]),
    ("noise on factorization data", lambda c: c["datasets"]["factorization"].update(noise=0.1),
     ["'noise' is not one of", "'target_variance'"]),
    ("N missing", lambda c: c["datasets"]["gaussian"].pop("N"), ["'N' is a required property"]),
    ("name with a trailing newline", lambda c: c["datasets"].update({"bad\n": {"kind": "factorization", "n": 2, "m": 1}}),
     ["does not match"]),
    ("negative width", lambda c: c["experiments"]["implicit_bias"].update(widths=[-5, 10]), ["-5", "minimum of 1"]),
    ("logspace without num", lambda c: c["experiments"]["alpha_sweep"].update(widths={"logspace": [2, 3]}),
     ["'num' is a required property"]),
    ("seed list with a negative seed", lambda c: c["experiments"]["implicit_bias"].update(seeds=[0, -1]),
     ["-1", "minimum of 0"]),
    ("sweep of a string parameter",
     lambda c: c["experiments"]["alpha_sweep"]["cases"]["alpha"].update(sweep={"init": ["scaled"]}),
     ["'init' is not one of"]),
    ("alpha swept out of range",
     lambda c: c["experiments"]["alpha_sweep"]["cases"]["alpha"].update(sweep={"alpha": [0, 0.3]}),
     ["alpha", "0"]),
]


@pytest.mark.parametrize("label,change,words", SCHEMA_ERRORS, ids=[e[0] for e in SCHEMA_ERRORS])
def test_schema_refuses_with_the_key_and_the_allowed_values(label, change, words):
    with pytest.raises(Exception) as error:
        validate(changed(change))
    for word in words:
        assert word in str(error.value), f"{label}: {word!r} not in {error.value}"


def test_schema_accepts_the_range_forms():
    def ranges(config):
        e = config["experiments"]["implicit_bias_wide"]
        e["widths"] = {"logspace": [2.5, 6], "num": 8}
        e["seeds"] = [0, 3, 7]
        e["cases"]["alpha0.50"].pop("alpha")
        e["cases"]["alpha0.50"]["sweep"] = {"alpha": {"linspace": [0.3, 0.5], "num": 5}}
    config = changed(ranges)
    validate(config)
    experiment = grid.plan(config).experiments["implicit_bias_wide"]
    assert experiment.widths == (316, 1000, 3162, 10000, 31623, 100000, 316228, 1000000)
    assert experiment.seeds == (0, 3, 7)
    assert list(experiment.cases) == ["alpha0.500.3", "alpha0.500.35", "alpha0.500.4", "alpha0.500.45", "alpha0.500.5"]
    assert [c["alpha"] for c in experiment.cases.values()] == [0.3, 0.35, 0.4, 0.45, 0.5]


PLAN_ERRORS = [
    ("widths equal after rounding", lambda c: c["experiments"]["alpha_sweep"].update(
        widths={"logspace": [1, 1.01], "num": 5}), ["experiments.alpha_sweep.widths", "after rounding"]),
    ("unknown dataset", lambda c: c["experiments"]["implicit_bias"].update(dataset="nope"),
     ["experiments.implicit_bias.dataset", "'nope'", "allowed: factorization"]),
    ("gd without step", lambda c: c["experiments"]["factorization"]["simulation"].pop("step"),
     ["experiments.factorization.cases.standard", "step is required"]),
    ("delta where no case has alpha", lambda c: c["experiments"]["imbalanced_init"]["simulation"].update(delta=0.2),
     ["experiments.imbalanced_init.simulation.delta is not used by any case"]),
    ("swept and set", lambda c: c["experiments"]["alpha_sweep"]["cases"]["alpha"].update(alpha=0.3),
     ["both swept and set"]),
]


@pytest.mark.parametrize("label,change,words", PLAN_ERRORS, ids=[e[0] for e in PLAN_ERRORS])
def test_planning_refuses_what_the_schema_cannot_see(label, change, words):
    config = changed(change)
    with pytest.raises(ValueError) as error:
        grid.plan(config)
    for word in words:
        assert word in str(error.value), f"{label}: {word!r} not in {error.value}"


def test_job_parameters_hold_exactly_what_the_job_uses():
    """Changing a parameter that a job does not use leaves its parameters (and so Snakemake's
    rerun decision) unchanged; changing one it uses changes them."""
    def spec(config, experiment):
        plan = grid.plan(config)
        return [grid.canonical(plan.chunk_spec(c)) for c in plan.experiments[experiment].chunks]

    base = spec(CONFIG, "implicit_bias_wide")
    unused = changed(lambda c: c["experiments"]["implicit_bias_wide"]["simulation"].update(max_time=1e4))
    assert spec(unused, "implicit_bias_wide") == base  # the default, written out: same job
    used = changed(lambda c: c["experiments"]["implicit_bias_wide"]["simulation"].update(rtol=1e-9))
    assert spec(used, "implicit_bias_wide") != base
    plan = grid.plan(CONFIG)
    factorization = plan.datasets["factorization"]
    assert "noise" not in factorization and "N" not in factorization
    flow_case = plan.experiments["implicit_bias_wide"].cases["alpha0.50"]
    assert "max_steps" not in flow_case and "step" not in flow_case
    explicit_case = plan.experiments["implicit_bias"].cases["alpha0.50"]
    assert "wishart_min_width" not in explicit_case


INTEGER_PLAN = {"seed_entropy": 1, "datasets": {"d": {"kind": "gaussian", "n": 10, "N": 5, "m": 1}},
                "experiments": {"e": {"dataset": "d", "cases": {"c": {"init": "gaussian", "alpha": 0.5}},
                                      "widths": [30, 100], "seeds": 2, "simulation": {"method": "flow"}}}}


@pytest.mark.parametrize("change,same_as", [
    (dict(seeds=2.0), dict(seeds=2)),
    (dict(seeds=[0, 1.0]), dict(seeds=[0, 1])),
    (dict(widths=[30.0, 100]), dict(widths=[30, 100])),
    (dict(widths=[1e10]), dict(widths=[10**10])),
    (dict(widths={"logspace": [1, 2], "num": 3.0}), dict(widths={"logspace": [1, 2], "num": 3})),
])
def test_integers_written_as_floats_plan_like_integers(change, same_as):
    """YAML reads 2.0 and 1e10 as floats: they used to crash planning (TypeError) or name a chunk
    h30.0_b0 that no rule matches."""
    def chunks(update):
        config = copy.deepcopy(INTEGER_PLAN)
        config["experiments"]["e"].update(update)
        plan = grid.plan(config)
        return [(c.id, grid.canonical(plan.chunk_spec(c))) for c in plan.experiments["e"].chunks]

    assert chunks(change) == chunks(same_as)


@pytest.mark.parametrize("change,words", [
    (dict(seeds=2.5), "experiments.e.seeds: expected a positive count"),
    (dict(seeds=[0, 1.5]), "experiments.e.seeds[1]: expected a non-negative integer seed"),
    (dict(widths=[30.5, 100]), "experiments.e.widths[0]: expected a positive integer width"),
    (dict(widths={"logspace": [1, 2], "num": 2.5}), "experiments.e.widths.num: expected a positive integer"),
])
def test_non_integer_counts_widths_and_seeds_are_refused_by_key(change, words):
    config = copy.deepcopy(INTEGER_PLAN)
    config["experiments"]["e"].update(change)
    with pytest.raises(grid.ConfigError, match=re.escape(words)):
        grid.plan(config)


@pytest.mark.parametrize("cases,simulation,widths,words", [
    ({"c": {"init": "gaussian", "alpha": 0.5}}, {"method": "sgd", "step": 0.1, "batch_size": 50}, [30],
     "experiments.e.cases.c.batch_size: 50 rows per batch, but the dataset has N = 5 rows"),
    ({"c": {"init": "gaussian", "alpha": 0.5, "sampling": "wishart"}}, {"method": "gd_explicit", "step": 0.1}, [30],
     "experiments.e.cases.c.sampling: method 'gd_explicit' updates explicit weights"),
    ({"c": {"init": "gaussian", "alpha": 0.5, "wishart_min_width": 50}}, {"method": "sgd_explicit", "step": 0.1,
                                                                          "batch_size": 2}, [30, 100],
     "'auto' sampling does not draw at width 100"),
    ({"c": {"init": "gaussian", "alpha": 0.5, "sampling": "wishart"}}, {"method": "flow"}, [3, 30],
     "experiments.e.cases.c.sampling: 'wishart' needs width >= m + r = 6, but widths has 3"),
])
def test_experiments_whose_runs_must_all_fail_are_refused_at_planning(cases, simulation, widths, words):
    config = copy.deepcopy(INTEGER_PLAN)
    config["experiments"]["e"].update(cases=cases, simulation=simulation, widths=widths)
    with pytest.raises(grid.ConfigError, match=re.escape(words)):
        grid.plan(config)
    config["experiments"]["e"]["cases"]["c"]["sampling"] = "explicit"  # the same runs from explicit weights plan
    config["experiments"]["e"]["cases"]["c"].pop("wishart_min_width", None)
    if simulation.get("batch_size", 0) <= 5:
        grid.plan(config)


def test_every_shipped_config_still_plans():
    """Every config the repository ships: config.yaml, the overlays of config/ merged onto it (as
    --configfile does), and the tests' own configs (each replaces config.yaml in its test)."""
    def merged(base, overlay):
        out = dict(base)
        for key, value in overlay.items():
            out[key] = merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
        return out

    for path in sorted((REPO / "config").glob("*.yaml")):
        grid.plan(merged(CONFIG, yaml.safe_load(path.read_text())))
    for path in sorted((REPO / "tests" / "config").glob("*.yaml")):
        grid.plan(yaml.safe_load(path.read_text()))
    grid.plan(CONFIG)


@pytest.mark.parametrize("block,change", [
    ("cases", lambda c: c["experiments"]["e"]["cases"].update(C={"init": "gaussian", "alpha": 0.4})),
    ("experiments", lambda c: c["experiments"].update(E=copy.deepcopy(c["experiments"]["e"]))),
    ("datasets", lambda c: c["datasets"].update(D=dict(c["datasets"]["d"]))),
])
def test_names_differing_only_in_letter_case_are_refused(block, change):
    config = copy.deepcopy(INTEGER_PLAN)
    change(config)
    with pytest.raises(grid.ConfigError, match="differ only in letter case"):
        grid.plan(config)


def test_a_plan_builds_each_experiments_chunks_once_and_finds_a_chunk_by_its_id():
    """Snakemake asks for a chunk once per job: a scan of the chunk list each time made planning
    quadratic in the number of jobs."""
    config = copy.deepcopy(INTEGER_PLAN)
    config["experiments"]["e"].update(widths=list(range(10, 60)), seeds=40, chunk_size=4)
    plan = grid.plan(config)
    experiment = plan.experiments["e"]
    assert experiment.chunks is experiment.chunks and len(experiment.chunks) == 500
    for chunk in experiment.chunks[::37]:
        assert plan.chunk("e", chunk.id) is chunk
    with pytest.raises(KeyError, match="no chunk 'h7_b0'"):
        plan.chunk("e", "h7_b0")


def test_a_job_plans_from_the_written_config_exactly_the_chunk_the_workflow_planned(tmp_path):
    """Cases in config order (not sorted): the job's own plan must give the same spec, runs in the
    same order, or it refuses to run."""
    config = copy.deepcopy(INTEGER_PLAN)
    config["experiments"]["e"]["cases"] = {"zeta": {"init": "gaussian", "alpha": 0.5},
                                           "alpha": {"init": "gaussian", "alpha": 0.4}}
    plan = grid.plan(config)
    path = grid.write_plan_config(config, tmp_path / "config.json")
    for chunk in plan.experiments["e"].chunks:
        spec = plan.chunk_spec(chunk)
        assert grid.planned_spec(path, "e", chunk.id, grid.spec_hash(spec)) == spec
    with pytest.raises(grid.ConfigError, match="plans differently"):
        grid.planned_spec(path, "e", chunk.id, "0" * 64)
