"""Rerun tracking of code: each workflow stage's hash covers exactly the modules its command imports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from linflow import cli, codehash, grid

SOURCE = REPO / "src" / "linflow"
STAGES = {name: module for name, (module, _) in cli.COMMANDS.items()}


def all_modules() -> list[str]:
    names = []
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_module_is_found():
    modules = all_modules()
    assert "linflow.cli" in modules and "linflow.commands.chunk" in modules
    for module in modules:
        assert codehash.module_file(module) is not None, module


@pytest.mark.parametrize("module", all_modules())
def test_editing_a_module_changes_exactly_the_hashes_of_the_stages_that_import_it(module, tmp_path):
    copy = tmp_path / "linflow"
    shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = {stage: codehash.stage_hash(entry, copy) for stage, entry in STAGES.items()}
    path = codehash.module_file(module, copy)
    path.write_text(path.read_text() + "\n_EDITED = 1\n")
    after = {stage: codehash.stage_hash(entry, copy) for stage, entry in STAGES.items()}
    changed = {stage for stage in STAGES if before[stage] != after[stage]}
    importers = {stage for stage, entry in STAGES.items() if module in codehash.stage_modules(entry, copy)}
    assert changed == importers
    if module in ("linflow", "linflow.cli", "linflow.commands", "linflow.__main__", "linflow.parameters"):
        assert changed == set(STAGES)  # every command goes through these


def test_plotting_and_aggregation_do_not_rerun_simulations():
    chunk = set(codehash.stage_modules(STAGES["chunk"]))
    assert "linflow.plots" not in chunk and "linflow.aggregate" not in chunk and "linflow.sweep" not in chunk
    assert {"linflow.kernels", "linflow.simulate", "linflow.init", "linflow.batch"} <= chunk
    assert "linflow.plots" not in codehash.stage_modules(STAGES["aggregate"])


def test_package_code_never_goes_through_the_lazy_public_attributes():
    """linflow.open_sweep is loaded by name (not an import the hash sees): the package's own
    code must import its modules explicitly."""
    for path in SOURCE.rglob("*.py"):
        text = path.read_text()
        for needle in ("import linflow\n", "from linflow import", "linflow.open_sweep("):
            assert needle not in text.split('"""', 2)[-1], f"{path.name}: {needle.strip()}"


LAZY_PROBE = """
import sys, types
import linflow
print(sorted(m for m in ("linflow.simulate", "linflow.kernels", "scipy.integrate") if m in sys.modules))
import linflow.batch  # imports the submodule linflow.simulate, which rebinds the package attribute
import linflow.simulate as imported
print(type(linflow.simulate).__name__, type(imported).__name__, linflow.simulate is sys.modules["linflow.simulate"].simulate)
"""


def test_the_package_loads_the_simulator_on_first_use_and_simulate_stays_the_function():
    """``import linflow`` loads neither the simulator nor SciPy's integrators (so datasets,
    aggregation and figures neither load nor hash them), and ``linflow.simulate`` is the
    function even after its submodule was imported, without an ImportWarning."""
    # -W error::ImportWarning: the import system warns when it cannot bind the submodule
    proc = subprocess.run([sys.executable, "-W", "error::ImportWarning", "-c", LAZY_PROBE], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[]", "function function True"]
    for stage in ("linflow.commands.dataset", "linflow.commands.aggregate", "linflow.commands.figure"):
        assert not {"linflow.simulate", "linflow.kernels"} & set(codehash.stage_modules(stage)), stage


PROBE = """
import atexit, runpy, sys
def report():
    with open({out!r}, "w") as handle:
        handle.write("\\n".join(sorted(m for m in sys.modules if m == "linflow" or m.startswith("linflow."))))
atexit.register(report)
sys.argv = ["linflow", *{args!r}]
runpy.run_module("linflow", run_name="__main__", alter_sys=True)
"""


def run_and_list_modules(tmp_path: Path, name: str, *args: str) -> set[str]:
    out = tmp_path / f"{name}.modules"
    proc = subprocess.run([sys.executable, "-c", PROBE.format(out=str(out), args=[str(a) for a in args])],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return set(out.read_text().split())


def test_what_each_command_imports_at_run_time_is_inside_its_hash(tmp_path):
    """Run every command for real (both simulators, a failing run, every figure kind) and
    compare the linflow modules it loaded with the modules its stage hash covers."""
    config = {
        "seed_entropy": 1,
        "datasets": {"d": {"kind": "gaussian", "n": 12, "N": 4, "m": 1}},
        "experiments": {
            "e": {"dataset": "d", "widths": [8, 30], "seeds": 2, "simulation": {"method": "gd", "step": 0.05},
                  "cases": {"g": {"init": "gaussian", "alpha": 0.5}, "b": {"init": "balanced", "a": 0.1, "b": 0.1},
                            "w": {"init": "gaussian", "alpha": 0.5, "sampling": "wishart"}}},
        },
        "figures": {},
    }
    plan = grid.plan(config)
    loaded = {}
    loaded["dataset"] = run_and_list_modules(tmp_path, "dataset", "dataset", "--name", "d", "--kind", "gaussian",
                                             "--n", "12", "--N", "4", "--m", "1", "--output", "d.nc")
    tables = []
    for chunk in plan.experiments["e"].chunks:
        tables.append(f"{chunk.id}.nc")
        loaded.setdefault("chunk", set()).update(run_and_list_modules(
            tmp_path, "chunk", "chunk", "--dataset", "d.nc", "--spec", json.dumps(plan.chunk_spec(chunk)),
            "--records", f"runs/{chunk.id}.nc", "--table", tables[-1]))
    loaded["simulate"] = run_and_list_modules(tmp_path, "simulate", "simulate", "--dataset", "d.nc", "--experiment",
                                              "e", "--width", "40", "--seed", "0", "--init", "scaled", "--a", "1",
                                              "--b", "1", "--method", "flow", "--output", "one.nc")
    loaded["aggregate"] = run_and_list_modules(tmp_path, "aggregate", "aggregate", *tables, "--verify-runs",
                                               "--experiment", "e", "--summary-nc", "s.nc", "--summary-csv", "s.csv",
                                               "--runs-csv", "r.csv", "--fits-csv", "f.csv")
    from linflow.plots import FIGURES

    loaded["figure"] = set()
    for kind in FIGURES:
        loaded["figure"] |= run_and_list_modules(tmp_path, "figure", "figure", kind, "s.nc", "--png", f"{kind}.png",
                                                 "--pdf", f"{kind}.pdf")
    loaded["schema"] = run_and_list_modules(tmp_path, "schema", "schema", "--output", "schema.yaml")
    assert set(loaded) == set(STAGES)
    for stage, modules in loaded.items():
        hashed = set(codehash.stage_modules(STAGES[stage]))
        assert STAGES[stage] in modules
        assert modules <= hashed, f"{stage} imported {sorted(modules - hashed)} outside its hash"


@pytest.mark.parametrize("edit", [
    lambda t: t + "\n# a comment\n",
    lambda t: t.replace('"""', '"""Edited. ', 1),
    lambda t: t.replace("def ", "def  ", 1).replace("\n\n\n", "\n\n\n\n", 1),
], ids=["comment", "docstring", "layout"])
def test_comments_docstrings_and_layout_change_no_hash(edit, tmp_path):
    copy = tmp_path / "linflow"
    shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = {stage: codehash.stage_hash(entry, copy) for stage, entry in STAGES.items()}
    for module in all_modules():
        path = codehash.module_file(module, copy)
        path.write_text(edit(path.read_text()))
    assert {stage: codehash.stage_hash(entry, copy) for stage, entry in STAGES.items()} == before


def test_help_texts_and_parameter_docs_change_no_hash_but_their_values_do(tmp_path):
    copy = tmp_path / "linflow"
    shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = {stage: codehash.stage_hash(entry, copy) for stage, entry in STAGES.items()}
    registry, chunk = copy / "parameters.py", copy / "commands" / "chunk.py"
    registry.write_text(registry.read_text().replace('"stop when the excess loss has fallen by this factor"',
                                                     '"stop once the excess loss fell by this factor"', 1))
    chunk.write_text(chunk.read_text().replace('help="folder of the run records to write"', 'help="run records"', 1))
    assert {stage: codehash.stage_hash(entry, copy) for stage, entry in STAGES.items()} == before
    registry.write_text(registry.read_text().replace("default=1e-12, exclusive_minimum=0, exclusive_maximum=1",
                                                     "default=1e-11, exclusive_minimum=0, exclusive_maximum=1", 1))
    after = {stage: codehash.stage_hash(entry, copy) for stage, entry in STAGES.items()}
    assert all(after[stage] != before[stage] for stage in STAGES)  # a default is what code does
