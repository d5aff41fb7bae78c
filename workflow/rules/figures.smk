# Stage 4: the figures, from the summary cubes (and the run records they list), marked for
# `snakemake --report`.


rule figure:
    input:
        figure_summaries,
    output:
        png=report(
            "results/figures/{figure}.png",
            caption="../report/figure.rst",
            category=figure_category,
            subcategory="Figures",
            labels={"figure": "{figure}"},
        ),
        pdf="results/figures/{figure}.pdf",
    log:
        "logs/figures/{figure}.log",
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        kind=lambda wildcards: PLAN.figures[wildcards.figure]["kind"],
        code=code("figure"),
    shell:
        "MPLBACKEND=Agg python -m linflow figure {params.kind} {input} "
        "--png {output.png} --pdf {output.pdf} > {log} 2>&1"
