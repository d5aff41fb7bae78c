"""The Snakemake workflow end to end on the smoke config, in a temporary copy of the repository."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
import xarray as xr
import yaml

from conftest import REPO, copy_repository
import linflow
from linflow import grid, record
from workflow_helpers import scheduled_jobs, snakemake

pytestmark = pytest.mark.workflow
SMOKE = REPO / "tests" / "config" / "smoke.yaml"


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory):
    repo = copy_repository(tmp_path_factory.mktemp("smoke") / "repo", SMOKE)
    snakemake(repo, "--cores", "2")
    return repo


def smoke_config():
    return yaml.safe_load(SMOKE.read_text())


def expected_runs(config):
    plan = grid.plan(config)
    for name, experiment in plan.experiments.items():
        for chunk in experiment.chunks:
            for case, width, seed in chunk.runs:
                yield name, chunk.id, case, width, seed


def n_chunks(config=None):
    plan = grid.plan(config or smoke_config())
    return sum(len(e.chunks) for e in plan.experiments.values())


def test_all_outputs_exist_with_the_schema(smoke_repo):
    config = smoke_config()
    for name in config["datasets"]:
        ds = record.open_netcdf(smoke_repo / "data" / name / "dataset.nc", ("X", "Y", "theta_hat"))
        assert ds.attrs["parameters_hash"]
    for name, chunk, case, width, seed in expected_runs(config):
        path = smoke_repo / "results" / name / "runs" / chunk / case / f"h{width}_s{seed}.nc"
        ds = record.open_run(path)  # raises if any schema variable is missing
        assert ds.attrs["width"] == width and ds.attrs["case"] == case and ds.attrs["seed"] == seed
        assert ds["status"].item() == "converged", path
        assert ds["time"].attrs["units"] and ds["loss"].attrs["long_name"]
        for key in ("linflow_version", "git_commit", "parameters", "parameters_hash", "history"):
            assert key in ds.attrs
    for name in config["experiments"]:
        for suffix in ("summary.nc", "summary.csv", "runs.csv", "fits.csv"):
            assert (smoke_repo / "results" / name / suffix).stat().st_size > 0
    summary = linflow.open_sweep(smoke_repo / "results" / "implicit_bias")
    assert np.all(np.isfinite(summary["slope_fro"].values))
    assert np.all(np.isfinite(summary["slope_fro_ci_low"].values))
    assert (summary["status"] == "converged").all()


def test_rates_beat_their_bounds(smoke_repo):
    """The measured late-phase rate is at least the Corollary 4 and Theorem 3 rates (flow runs)."""
    for name in ("alpha_sweep", "conditioning_1", "conditioning_10"):
        summary = linflow.open_sweep(smoke_repo / "results" / name)
        assert np.all(summary["ratio_rate_cor4"].values >= 1 - 1e-6)
        assert np.all(summary["ratio_rate_thm3"].values >= 1 - 1e-6)


def test_figures_are_images(smoke_repo):
    for name in smoke_config()["figures"]:
        png = smoke_repo / "results" / "figures" / f"{name}.png"
        image = mpimg.imread(png)
        assert image.shape[0] > 200 and image.shape[1] > 200
        assert image[..., :3].std() > 0.01  # not blank
        assert (smoke_repo / "results" / "figures" / f"{name}.pdf").read_bytes()[:4] == b"%PDF"


def test_second_run_has_nothing_to_do(smoke_repo):
    assert scheduled_jobs(smoke_repo) == Counter()


def test_report_is_self_contained(smoke_repo):
    snakemake(smoke_repo, "--report", "report.html", timeout=300)
    html = (smoke_repo / "report.html").read_text(errors="replace")
    assert len(html) > 100_000
    for name in smoke_config()["figures"]:
        assert name in html


class EditedFile:
    """Change a file of the smoke copy for the duration of a ``with`` block."""

    def __init__(self, path: Path, edit):
        self.path, self.edit = path, edit

    def __enter__(self):
        self.original = self.path.read_text()
        self.path.write_text(self.edit(self.original))

    def __exit__(self, *exc):
        self.path.write_text(self.original)


def edit_config(repo, change):
    def edit(text):
        config = yaml.safe_load(text)
        change(config)
        return yaml.safe_dump(config, sort_keys=False)

    return EditedFile(repo / "config.yaml", edit)


def _set(*path_and_value):
    *path, key, value = path_and_value

    def change(config):
        node = config
        for part in path:
            node = node[part]
        node[key] = value

    return change


CONFIG_CHANGES = [
    # factorization: its 2 chunks (one per width), its summary, the two figures that read it.
    ("experiment parameter", _set("experiments", "factorization", "simulation", "step", 0.04),
     Counter(simulate=2, aggregate=1, figure=2, all=1)),
    # A third seed joins seed block 0 of each of the 3 widths; implicit_bias feeds 2 figures.
    ("added seed", _set("experiments", "implicit_bias", "seeds", 3), Counter(simulate=3, aggregate=1, figure=2, all=1)),
    ("added width", _set("experiments", "implicit_bias", "widths", [50, 200, 800, 1600]),
     Counter(simulate=1, aggregate=1, figure=2, all=1)),
    # kappa_10 feeds conditioning_10 (2 chunks) and the conditioning figure.
    ("dataset parameter", _set("datasets", "kappa_10", "noise", 0.02),
     Counter(dataset=1, simulate=2, aggregate=1, figure=1, all=1)),
    # Bug 5: a default written out, a parameter of another method: the jobs do not change.
    ("default written out", _set("experiments", "alpha_sweep", "simulation", "rtol", 1e-10), Counter()),
    ("keys reordered", lambda config: config.update(datasets=dict(reversed(list(config["datasets"].items())))),
     Counter()),
]


@pytest.mark.parametrize("label,change,expected", CONFIG_CHANGES, ids=[c[0] for c in CONFIG_CHANGES])
def test_config_change_reruns_exactly_what_depends_on_it(smoke_repo, label, change, expected):
    with edit_config(smoke_repo, change):
        assert scheduled_jobs(smoke_repo) == expected


CODE_CHANGES = [  # module edited -> jobs rerun (computed from what each command imports)
    ("plots.py", lambda config: Counter(figure=len(config["figures"]), all=1)),
    ("aggregate.py", lambda config: Counter(aggregate=len(config["experiments"]), figure=len(config["figures"]),
                                            all=1)),
    ("batch.py", lambda config: Counter(simulate=n_chunks(config), aggregate=len(config["experiments"]),
                                        figure=len(config["figures"]), all=1)),
    ("cli.py", lambda config: Counter(dataset=len(config["datasets"]), simulate=n_chunks(config),
                                      aggregate=len(config["experiments"]), figure=len(config["figures"]), all=1)),
]


@pytest.mark.parametrize("module,expected", CODE_CHANGES, ids=[c[0] for c in CODE_CHANGES])
def test_code_change_reruns_the_stages_that_import_it(smoke_repo, module, expected):
    with EditedFile(smoke_repo / "src" / "linflow" / module, lambda t: t + "\n# edited\n"):
        jobs = scheduled_jobs(smoke_repo)
    assert jobs == expected(smoke_config())


def test_lint_is_clean(smoke_repo):
    proc = snakemake(smoke_repo, "--lint", timeout=300, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Congratulations, your workflow is in a good condition!" in output, output


def test_snakemake_files_are_formatted():
    """snakefmt (the snakemake-workflows convention) finds nothing to change."""
    files = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "--diff", *map(str, files)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


INVALID = [  # more cases, without Snakemake, in tests/test_parameters.py
    ("unknown method", lambda c: c["experiments"]["alpha_sweep"]["simulation"].update(method="euler"),
     ["'euler' is not one of ['flow', 'gd', 'gd_explicit', 'sgd', 'sgd_explicit']", "method"]),
    ("alpha on a scaled case", lambda c: c["experiments"]["imbalanced_init"]["cases"]["balanced"].update(alpha=0.4),
     ["'alpha' is not one of", "balanced"]),
    ("unknown dataset", lambda c: c["experiments"]["implicit_bias"].update(dataset="nope"),
     ["experiments.implicit_bias.dataset", "allowed"]),
]


@pytest.mark.parametrize("label,change,words", INVALID, ids=[i[0] for i in INVALID])
def test_invalid_config_fails_before_any_job(tmp_path, label, change, words):
    repo = copy_repository(tmp_path / "repo", SMOKE)
    config = yaml.safe_load((repo / "config.yaml").read_text())
    change(config)
    (repo / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(repo, "--cores", "1", timeout=300, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for word in words:
        assert word in output, f"{label}: {word!r} not in:\n{output[-3000:]}"
    assert not (repo / "data").exists() and not (repo / "results").exists()


def test_readme_notebook_example_runs_on_the_smoke_sweep(smoke_repo, monkeypatch):
    text = (REPO / "README.md").read_text()
    example = text.split("<!-- notebook example: tested by tests/test_workflow.py -->", 1)[1]
    code = example.split("```python\n", 1)[1].split("```", 1)[0]
    assert "open_sweep" in code and "assert" in code
    monkeypatch.chdir(smoke_repo)
    exec(compile(code, "README.md", "exec"), {})
