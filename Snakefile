# linflow: gradient flow on single-hidden-layer linear networks, from synthetic data to figures.
# Run `snakemake --cores 8`; see README.md. Rules are thin: every step calls the linflow CLI.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


# A config error is one line per problem (key path, what is wrong, the allowed keys, the closest
# one); LINFLOW_FULL_SCHEMA_ERRORS=1 shows Snakemake's full schema error instead.
include: "workflow/rules/config_check.smk"


# Defaults are not filled in here: each job's params hold exactly the parameters it uses,
# resolved by linflow.parameters (workflow/rules/common.smk).
validate(config, "workflow/schemas/config.schema.yaml", set_default=False)


include: "workflow/rules/common.smk"


wildcard_constraints:
    dataset=NAME,
    experiment=NAME,
    figure=NAME,
    chunk=r"h\d+_b\d+",


include: "workflow/rules/dataset.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        all_summaries(),
        all_tables(),
        all_figures(),
