# Helpers shared by all stages: config cross-checks, paths, CLI flags, code hashes.
import hashlib
import os
from pathlib import Path

SOURCE = Path(workflow.basedir) / "src" / "linflow"
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
    PYTHONPATH=os.pathsep.join(filter(None, [os.path.relpath(SOURCE.parent), os.environ.get("PYTHONPATH")])),
)
ENV = "../envs/linflow.yaml"


def _check_references(config):
    """Cross-references the JSON schema cannot express; fail before any job runs."""
    for name, experiment in config["experiments"].items():
        if experiment["dataset"] not in config["datasets"]:
            raise ValueError(
                f"config: experiments.{name}.dataset = {experiment['dataset']!r} is not a dataset; "
                f"allowed: {', '.join(config['datasets'])}"
            )
    for name, figure in config["figures"].items():
        for experiment in figure["experiments"]:
            if experiment not in config["experiments"]:
                raise ValueError(
                    f"config: figures.{name}.experiments names {experiment!r}, which is not an experiment; "
                    f"allowed: {', '.join(config['experiments'])}"
                )


_check_references(config)


def code_hash(*modules):
    """Hash of the linflow modules a stage depends on: passed as a param, so Snakemake reruns
    the stage when that code changes (it does not track modules imported by commands)."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update((SOURCE / f"{module}.py").read_bytes())
    return digest.hexdigest()[:16]


def dataset_path(name):
    return f"data/{name}/dataset.nc"


def run_paths(experiment):
    spec = config["experiments"][experiment]
    return [
        f"results/{experiment}/runs/{case}/h{width}_s{seed}.nc"
        for case in spec["cases"]
        for width in spec["widths"]
        for seed in range(spec["seeds"])
    ]


def summary_path(experiment):
    return f"results/{experiment}/summary.nc"


def all_summaries():
    return [summary_path(e) for e in config["experiments"]]


def all_figures():
    return [f"results/figures/{name}.{ext}" for name in config["figures"] for ext in ("png", "pdf")]


def _flags(options):
    """``{"max_time": 1e4}`` -> ``--max-time 10000.0``; None values are left out. Sorted, so
    reordering keys in config.yaml does not change the params and trigger reruns."""
    return " ".join(
        f"--{key.replace('_', '-')} {value}" for key, value in sorted(options.items()) if value is not None
    )


def dataset_flags(wildcards):
    spec = dict(config["datasets"][wildcards.dataset])
    return _flags(spec)


def simulation_flags(wildcards):
    spec = config["experiments"][wildcards.experiment]
    case = dict(spec["cases"][wildcards.case])
    options = dict(case)
    options.update(spec["simulation"])
    options["output_scale"] = spec.get("output_scale", "none")
    options["entropy"] = config["seed_entropy"]
    return _flags(options)


def simulation_mem_mb(wildcards):
    spec = config["experiments"][wildcards.experiment]
    if "mem_mb" in spec.get("resources", {}):
        return spec["resources"]["mem_mb"]
    data = config["datasets"][spec["dataset"]]
    sampling = spec["cases"][wildcards.case].get("sampling", "auto")
    min_wishart = spec["cases"][wildcards.case].get("wishart_min_width", 20000)
    width = int(wildcards.width)
    explicit = sampling == "explicit" or (sampling == "auto" and width < min_wishart)
    # Explicit weights: U, V and a few temporaries of their size.
    weights_mb = 8 * 6 * (data["n"] + data["m"]) * width / 1e6 if explicit else 0
    return int(600 + weights_mb)


def simulation_runtime(wildcards):
    spec = config["experiments"][wildcards.experiment]
    default = 10 if spec["simulation"]["method"] == "flow" else 60
    return spec.get("resources", {}).get("runtime", default)


def figure_inputs(wildcards):
    figure = config["figures"][wildcards.figure]
    if figure["kind"] in ("spectrum", "convergence", "imbalanced"):
        return [path for e in figure["experiments"] for path in run_paths(e)]
    return [summary_path(e) for e in figure["experiments"]]
