# Stage 4: the figures, from NetCDF outputs only, marked for `snakemake --report`.


rule figure:
    input:
        figure_inputs,
    output:
        png=report(
            "results/figures/{figure}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
        pdf="results/figures/{figure}.pdf",
    log:
        "logs/figures/{figure}.log",
    params:
        kind=lambda wildcards: config["figures"][wildcards.figure]["kind"],
        code=code_hash("plots"),
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        ENV
    shell:
        "MPLBACKEND=Agg python -m linflow figure {params.kind} {input} --title {wildcards.figure} "
        "--png {output.png} --pdf {output.pdf} > {log} 2>&1"
