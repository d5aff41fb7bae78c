# linflow: gradient flow on single-hidden-layer linear networks, from synthetic data to figures.
# Run `snakemake --cores 8`; see README.md. Rules are thin: every step calls the linflow CLI.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"


wildcard_constraints:
    dataset=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    experiment=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    case=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    figure=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    width=r"\d+",
    seed=r"\d+",


include: "workflow/rules/dataset.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"


rule all:
    input:
        all_summaries(),
        all_figures(),
    default_target: True
