# Stage 1: one dataset per config entry (X, Y, min-norm solution, SVD quantities): synthetic,
# or real data read from a file (its input) or from scikit-learn, preprocessed.


rule dataset:
    input:
        dataset_inputs,
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
