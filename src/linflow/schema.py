"""The JSON schema of the workflow config, generated from the parameter registry.

``linflow schema --output workflow/schemas/config.schema.yaml`` writes it; a test checks that
the committed file is what :func:`render` produces, so the schema cannot drift from
:mod:`linflow.parameters`. Which keys a case or a simulation block may hold depends on its
``init`` / ``sampling`` / ``method``: the schema lists the allowed keys per value
(``propertyNames``), so a key the run would ignore (``alpha`` on a ``scaled`` case,
``max_steps`` for ``method: flow``) is an error naming the key and the allowed ones.
"""

from __future__ import annotations

import itertools

import yaml

from . import parameters as P
from .plots import FIGURES

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z"  # \Z, not $: Python's $ also matches before a final newline
NUMERIC_RUN_PARAMETERS = [p for p in P.RUN_PARAMETERS
                          if p.type in ("integer", "number") and not p.choices and p.block != P.EXPERIMENT]
OVERRIDABLE = [p for p in P.PARAMETERS.values() if p.block == P.SIMULATION and p.name != "method"]


def _applies(p: P.Parameter, **context) -> bool:
    """Whether ``p`` applies given values for some of the context keys (others: unknown, allowed)."""
    return all(context[key] in values for key, values in p.when.items() if key in context)


def _branch(key: str, value, default) -> dict:
    """``if`` matching ``key == value`` (an absent key matches its default)."""
    condition: dict = {"properties": {key: {"const": value}}}
    if value != default:
        condition["required"] = [key]
    return condition


def _range_schema(items: dict) -> dict:
    """A list of values (each valid under ``items``), or ``{linspace|logspace: [lo, hi], num: k}``."""
    items = {k: v for k, v in items.items() if k not in ("default", "description")}
    return {
        "if": {"type": "array"},
        "then": {"items": items, "minItems": 1, "uniqueItems": True},
        "else": {
            "type": "object", "additionalProperties": False, "required": ["num"],
            "minProperties": 2, "maxProperties": 2,
            "properties": {
                "linspace": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2,
                             "description": "[first, last], evenly spaced"},
                "logspace": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2,
                             "description": "[lo, hi]: num values from 10^lo to 10^hi, evenly spaced in log"},
                "num": {"type": "integer", "minimum": 1, "description": "number of values"},
            },
        },
    }


def _dataset() -> dict:
    params = P.DATASET_PARAMETERS
    branches = []
    for kind in P.DATA_KINDS:
        allowed = [p.name for p in params if _applies(p, kind=kind)]
        required = [p.name for p in params if p.required and _applies(p, kind=kind)]
        branches.append({"if": _branch("kind", kind, None),
                         "then": {"propertyNames": {"enum": allowed}, "required": required}})
    return {"type": "object", "required": [p.name for p in params if p.required and not p.when],
            "properties": {p.name: p.json_schema() for p in params}, "allOf": branches}


def _case() -> dict:
    init_params = [p for p in P.PARAMETERS.values() if p.block == P.CASE]
    properties = {p.name: p.json_schema() for p in init_params + OVERRIDABLE}
    properties["sweep"] = {
        "description": "expand this case into one case per value of one numeric parameter, named <case><value>",
        "type": "object", "minProperties": 1, "maxProperties": 1,
        "propertyNames": {"enum": [p.name for p in NUMERIC_RUN_PARAMETERS if p.name != "method"]},
        "properties": {p.name: _range_schema(p.json_schema()) for p in NUMERIC_RUN_PARAMETERS},
    }
    branches = []
    for init, sampling in itertools.product(P.INIT_KINDS, P.SAMPLING_KINDS):
        allowed = [p.name for p in init_params if _applies(p, init=init, sampling=sampling)]
        allowed += [p.name for p in OVERRIDABLE if "init" not in p.when or init in p.when["init"]]
        condition = _branch("init", init, None)
        condition["properties"].update(_branch("sampling", sampling, P.default("sampling"))["properties"])
        if sampling != P.default("sampling"):
            condition["required"] = ["init", "sampling"]
        branches.append({"if": condition, "then": {"propertyNames": {"enum": allowed + ["sweep"]}}})
    return {"type": "object", "required": ["init"], "properties": properties, "allOf": branches}


def _simulation() -> dict:
    params = [p for p in P.PARAMETERS.values() if p.block == P.SIMULATION]
    branches = []
    for method in P.METHODS:
        allowed = [p.name for p in params if _applies(p, method=method)]
        branches.append({"if": _branch("method", method, P.default("method")),
                         "then": {"propertyNames": {"enum": allowed}}})
    return {"type": "object", "properties": {p.name: p.json_schema() for p in params}, "allOf": branches}


def _experiment() -> dict:
    init_keys = [p.name for p in P.PARAMETERS.values() if p.block == P.CASE] + ["sweep"]
    branches = []
    for method in P.METHODS:
        allowed = init_keys + [p.name for p in OVERRIDABLE if _applies(p, method=method)]
        branches.append({
            "if": {"properties": {"simulation": _branch("method", method, P.default("method"))}},
            "then": {"properties": {"cases": {"additionalProperties": {"propertyNames": {"enum": allowed}}}}},
        })
    return {
        "type": "object", "additionalProperties": False,
        "required": ["dataset", "cases", "widths", "seeds", "simulation"],
        "properties": {
            "dataset": {"$ref": "#/$defs/name", "description": "name of an entry of datasets"},
            "output_scale": P.PARAMETERS["output_scale"].json_schema(),
            "chunk_size": P.PARAMETERS["chunk_size"].json_schema(),
            "cases": {"type": "object", "minProperties": 1, "propertyNames": {"$ref": "#/$defs/name"},
                      "additionalProperties": {"$ref": "#/$defs/case"},
                      "description": "named initializations; every case runs at every width and seed"},
            "widths": dict(_range_schema({"type": "integer", "minimum": 1}), description=(
                "hidden widths: a list, or {logspace: [lo, hi], num: k} (rounded to integers)")),
            "seeds": {"description": "number of seeds (seed values 0 .. n-1), or a list of seed values",
                      "if": {"type": "integer"}, "then": {"minimum": 1},
                      "else": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1,
                               "uniqueItems": True}},
            "simulation": {"$ref": "#/$defs/simulation"},
            "resources": {
                "type": "object", "additionalProperties": False,
                "description": "override the estimated resources of this experiment's simulation jobs",
                "properties": {
                    "runtime": {"type": "integer", "minimum": 1, "description": "minutes per simulation job"},
                    "mem_mb": {"type": "integer", "minimum": 100, "description": "memory (MB) per simulation job"},
                },
            },
        },
        "allOf": branches,
    }


def config_schema() -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "linflow workflow configuration",
        "description": "Datasets, experiments (simulation sweeps) and figures of the linflow workflow.",
        "type": "object",
        "additionalProperties": False,
        "required": ["seed_entropy", "datasets", "experiments", "figures"],
        "$defs": {
            "name": {"type": "string", "pattern": NAME_PATTERN},
            "dataset": _dataset(),
            "case": _case(),
            "simulation": _simulation(),
            "experiment": _experiment(),
            "figure": {
                "type": "object", "additionalProperties": False, "required": ["kind", "experiments"],
                "properties": {
                    "kind": {"enum": list(FIGURES), "description": "figure to draw"},
                    "experiments": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/name"}},
                },
            },
        },
        "properties": {
            "seed_entropy": {"type": "integer", "minimum": 0, "description": "root entropy of every random stream"},
            "datasets": {"type": "object", "minProperties": 1, "propertyNames": {"$ref": "#/$defs/name"},
                         "additionalProperties": {"$ref": "#/$defs/dataset"}},
            "experiments": {"type": "object", "minProperties": 1, "propertyNames": {"$ref": "#/$defs/name"},
                            "additionalProperties": {"$ref": "#/$defs/experiment"}},
            "figures": {"type": "object", "propertyNames": {"$ref": "#/$defs/name"},
                        "additionalProperties": {"$ref": "#/$defs/figure"}},
        },
    }


HEADER = """\
# JSON schema of config.yaml (validated by the Snakefile before any job runs).
# GENERATED from src/linflow/parameters.py by `linflow schema --output workflow/schemas/config.schema.yaml`;
# do not edit by hand (tests/test_parameters.py checks that this file is current).
"""


def render() -> str:
    return HEADER + yaml.safe_dump(config_schema(), sort_keys=False, width=110, default_flow_style=None)


def problems(config: dict) -> list[str]:
    """The config's schema errors, one line each: the key path, what is wrong, and for an unknown
    key the allowed keys and the closest one ("did you mean ...?"). Empty if the config is valid."""
    import difflib

    import jsonschema

    validator = jsonschema.Draft202012Validator(config_schema())
    lines = []
    for error in sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path]):
        for leaf in _leaves(error):
            where = ".".join(str(p) for p in leaf.absolute_path) or "config"
            if leaf.validator == "additionalProperties":
                allowed = sorted(leaf.schema.get("properties", {}))
                for key in sorted(set(leaf.instance) - set(allowed)):
                    guess = difflib.get_close_matches(str(key), allowed, n=1)
                    hint = f"; did you mean {guess[0]!r}?" if guess else ""
                    lines.append(f"{where}: unknown key {key!r}; allowed: {', '.join(allowed)}{hint}")
            elif leaf.validator == "enum" and leaf.instance in leaf.parent_instance_keys:
                p = P.PARAMETERS.get(leaf.instance)
                when = " and ".join(f"{k} is one of {', '.join(v)}" for k, v in p.when.items()) if p else ""
                applies = f" (it applies only when {when})" if when else ""
                lines.append(f"{where}: key {leaf.instance!r} is not used here{applies}; "
                             f"allowed: {', '.join(leaf.validator_value)}")
            else:
                lines.append(f"{where}: {leaf.message}")
    return list(dict.fromkeys(lines))


def _leaves(error):
    """The most specific errors under ``error`` (anyOf/oneOf branches: the closest one)."""
    import jsonschema

    if not error.context:
        error.parent_instance_keys = ()
        if error.validator == "enum" and isinstance(error.instance, str) and error.relative_schema_path and \
                "propertyNames" in error.relative_schema_path:
            error.parent_instance_keys = (error.instance,)
        return [error]
    best = jsonschema.exceptions.best_match(error.context)
    return _leaves(best)
