# Stage 1: one synthetic dataset per config entry (X, Y, min-norm solution, SVD quantities).


rule dataset:
    output:
        "data/{dataset}/dataset.nc",
    log:
        "logs/dataset/{dataset}.log",
    conda:
        ENV
    params:
        flags=dataset_flags,
        entropy=PLAN.entropy,
        code=code("dataset"),
    shell:
        "python -m linflow dataset --name {wildcards.dataset} --entropy {params.entropy} "
        "{params.flags} --output {output} > {log} 2>&1"
