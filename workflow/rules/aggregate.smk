# Stage 3: per experiment, distances over seeds, log-log slopes, rates against their bounds.


rule aggregate:
    input:
        runs=lambda wildcards: run_paths(wildcards.experiment),
    output:
        nc="results/{experiment}/summary.nc",
        csv="results/{experiment}/summary.csv",
        runs_csv="results/{experiment}/runs.csv",
        fits_csv="results/{experiment}/fits.csv",
    log:
        "logs/aggregate/{experiment}.log",
    params:
        code=code_hash("aggregate", "theory"),
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        ENV
    shell:
        "python -m linflow aggregate {input.runs} --experiment {wildcards.experiment} "
        "--summary-nc {output.nc} --summary-csv {output.csv} --runs-csv {output.runs_csv} "
        "--fits-csv {output.fits_csv} > {log} 2>&1"
