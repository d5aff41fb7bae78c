# Stage 3: per experiment, the summary cube (case, width, seed), statistics over seeds,
# log-log slopes, rates against their bounds; read from the chunk tables. The fits and
# summary tables are also written as HTML pages, the report's tables (Snakemake's report
# offers CSV files only as downloads).


rule aggregate:
    input:
        tables=lambda wildcards: chunk_tables(wildcards.experiment),
    output:
        nc="results/{experiment}/summary.nc",
        csv="results/{experiment}/summary.csv",
        runs_csv="results/{experiment}/runs.csv",
        fits_csv="results/{experiment}/fits.csv",
        fits_html=report(
            "results/{experiment}/fits.html",
            caption="../report/fits.rst",
            category="{experiment}",
            subcategory="Tables",
            labels={"table": "fitted exponents (fits.csv)"},
        ),
        summary_html=report(
            "results/{experiment}/summary.html",
            caption="../report/summary.rst",
            category="{experiment}",
            subcategory="Tables",
            labels={"table": "statistics per width (summary.csv)"},
        ),
    log:
        "logs/aggregate/{experiment}.log",
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        code=code("aggregate"),
    shell:
        "python -m linflow aggregate {input.tables} --experiment {wildcards.experiment} "
        "--summary-nc {output.nc} --summary-csv {output.csv} --runs-csv {output.runs_csv} "
        "--fits-csv {output.fits_csv} --fits-html {output.fits_html} "
        "--summary-html {output.summary_html} > {log} 2>&1"
