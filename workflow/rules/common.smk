# Helpers shared by all stages: the sweep plan, paths, job parameters and code hashes.
# Planning is linflow's own code (linflow.grid, linflow.parameters), imported from this
# checkout's src/, the code the jobs run.
import os
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

SOURCE = Path(workflow.basedir) / "src"
sys.path.insert(0, str(SOURCE))
from linflow import codehash, grid, parameters  # noqa: E402

# Environment of every job (inherited, also inside Slurm jobs, which re-read this file):
# - PYTHONPATH: run this checkout's linflow (the code whose hash the params track), installed
#   or not; the rules' conda env only provides the dependencies. Relative to the working
#   directory, so moving the checkout reruns nothing.
# - single-threaded BLAS: runs are small, and bit-for-bit results must not depend on --cores,
#   on the machine's load or on the CPUs a Slurm job is bound to.
os.environ.update(
    OMP_NUM_THREADS="1",
    OPENBLAS_NUM_THREADS="1",
    MKL_NUM_THREADS="1",
    PYTHONPATH=os.pathsep.join(
        filter(None, [os.path.relpath(SOURCE), os.environ.get("PYTHONPATH")])
    ),
)
ENV = "../envs/linflow.yaml"
NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"

try:
    PLAN = grid.plan(config)
except ValueError as error:  # a config the schema accepts but that cannot be planned
    raise WorkflowError(f"Invalid config: {error}") from None

# The config as planned, for the simulation jobs: a job plans its own chunk from it (a chunk's
# spec holds every case and can exceed the 128 KiB a command-line argument may have). One file
# per working directory, which Snakemake locks; written only when it changes.
PLAN_CONFIG = grid.write_plan_config(config, Path(".linflow") / "config.json")


def code(command):
    """Hash of the linflow modules `linflow <command>` runs (found from its imports): a param,
    so Snakemake reruns the stage when that code changes."""
    return codehash.stage_hash(f"linflow.commands.{command}")


def dataset_path(name):
    return f"data/{name}/dataset.nc"


def summary_path(experiment):
    return f"results/{experiment}/summary.nc"


def chunk_tables(experiment):
    return [
        f"results/{experiment}/chunks/{chunk.id}.nc"
        for chunk in PLAN.experiments[experiment].chunks
    ]


def all_summaries():
    return [summary_path(e) for e in PLAN.experiments]


def all_tables():
    """The HTML pages of the fits and summary tables (the report's tables)."""
    return [
        f"results/{e}/{table}.html"
        for e in PLAN.experiments
        for table in ("fits", "summary")
    ]


def all_figures():
    return [
        f"results/figures/{name}.{ext}"
        for name in PLAN.figures
        for ext in ("png", "pdf")
    ]


def dataset_flags(wildcards):
    """`--kind gaussian --n 500 ...`: exactly the parameters this dataset uses, sorted."""
    params = PLAN.datasets[wildcards.dataset]
    return " ".join(
        f"{parameters.PARAMETERS[key].flag} {shlex.quote(str(value))}"
        for key, value in params.items()
    )


def dataset_inputs(wildcards):
    """The data file of a `kind: file` dataset: an input, so editing it reruns the dataset
    (and, through it, the simulations that use it)."""
    params = PLAN.datasets[wildcards.dataset]
    return [params["path"]] if params["kind"] == "file" else []


def _chunk(wildcards):
    try:
        return PLAN.chunk(wildcards.experiment, wildcards.chunk)
    except KeyError as error:
        raise WorkflowError(str(error)) from None


def chunk_spec(wildcards):
    """The chunk's runs and their resolved parameters (canonical JSON): what the job uses. A
    param, so a change reruns the chunk; the job checks it plans the same (its hash)."""
    return grid.canonical(PLAN.chunk_spec(_chunk(wildcards)))


def chunk_spec_hash(wildcards):
    return grid.spec_hash(PLAN.chunk_spec(_chunk(wildcards)))


def chunk_dataset(wildcards):
    return dataset_path(PLAN.experiments[wildcards.experiment].dataset)


def chunk_mem_mb(wildcards, attempt):
    return PLAN.chunk_resources(_chunk(wildcards), attempt)["mem_mb"]


def chunk_runtime(wildcards, attempt):
    return PLAN.chunk_resources(_chunk(wildcards), attempt)["runtime"]


def figure_category(wildcards):
    """Report category of a figure: its experiment, or "across experiments" if it reads several."""
    experiments = PLAN.figures[wildcards.figure]["experiments"]
    return experiments[0] if len(experiments) == 1 else "across experiments"


def figure_summaries(wildcards):
    return [summary_path(e) for e in PLAN.figures[wildcards.figure]["experiments"]]
