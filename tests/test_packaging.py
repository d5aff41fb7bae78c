"""pyproject.toml, environment.yml and the rules' conda env declare the same dependencies."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import yaml

from conftest import REPO

CONDA_NAMES = {"matplotlib": "matplotlib-base", "seaborn": "seaborn-base", "netcdf4": "netcdf4"}


def pip_requirements(items):
    out = {}
    for item in items:
        match = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(>=\s*[\d.]+)?", item)
        name = match.group(1).lower()
        if name != "linflow":
            out[CONDA_NAMES.get(name, name)] = (match.group(2) or "").replace(" ", "")
    return out


def conda_requirements(path):
    out = {}
    for item in yaml.safe_load(path.read_text())["dependencies"]:
        if isinstance(item, str):
            name, _, bound = item.partition(" ")
            out[name.lower()] = bound.replace(" ", "")
    return out


def test_environment_files_match_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = pip_requirements(project["dependencies"])
    extras = {}
    for group in project["optional-dependencies"].values():
        extras.update(pip_requirements(group))
    development = conda_requirements(REPO / "environment.yml")
    rules_env = conda_requirements(REPO / "workflow" / "envs" / "linflow.yaml")
    for name, bound in {**runtime, **extras}.items():
        assert development.get(name) == bound, f"environment.yml: {name} {development.get(name)} != {bound}"
    for name, bound in runtime.items():
        assert rules_env.get(name) == bound, f"workflow/envs/linflow.yaml: {name} {rules_env.get(name)} != {bound}"
    assert development["python"] == rules_env["python"] == project["requires-python"]


def test_the_repository_stands_alone_and_cites_no_tracker_numbers():
    """Docs and code point to docs/theory.md, never outside the checkout; comments say what code
    does, not which tracker entry asked for it."""
    import re
    import subprocess

    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    outside = re.compile(r"\.\./shared|THEORY\.md")
    tracker = re.compile(r"\bissue\s+#?\d+|\bthe \w+ issue\b", re.IGNORECASE)
    found = []
    for name in files:
        path = REPO / name
        if path.suffix not in (".py", ".md", ".smk", ".yaml", ".yml", ".rst", ".toml", ".cff") and name != "Snakefile":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if outside.search(line) or tracker.search(line):
                found.append(f"{name}:{number}: {line.strip()[:80]}")
    assert not found, found


def test_ruff_finds_nothing():
    """ruff with the rule set stated in pyproject.toml ([tool.ruff.lint]) on every Python file."""
    rules = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]["select"]
    assert {"F", "E9"} <= set(rules), rules  # an emptied rule set would pass vacuously
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
