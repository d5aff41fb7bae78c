# linflow: gradient flow on single-hidden-layer linear networks, from synthetic data to figures.
# Run `snakemake --cores 8`; see README.md. Rules are thin: every step calls the linflow CLI.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"


rule all:
    input:
        all_summaries(),
        all_figures(),
    default_target: True
