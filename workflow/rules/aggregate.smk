# Stage 3: per experiment, the summary cube (case, width, seed), statistics over seeds,
# log-log slopes, rates against their bounds; read from the chunk tables.


rule aggregate:
    input:
        tables=lambda wildcards: chunk_tables(wildcards.experiment),
    output:
        nc="results/{experiment}/summary.nc",
        csv="results/{experiment}/summary.csv",
        runs_csv="results/{experiment}/runs.csv",
        fits_csv="results/{experiment}/fits.csv",
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
        "--fits-csv {output.fits_csv} > {log} 2>&1"
