# Stage 1: one synthetic dataset per config entry (X, Y, min-norm solution, SVD quantities).


rule dataset:
    output:
        "data/{dataset}/dataset.nc",
    log:
        "logs/dataset/{dataset}.log",
    params:
        flags=dataset_flags,
        entropy=config["seed_entropy"],
        code=code_hash("data", "record", "theory", "seeding"),
    conda:
        ENV
    shell:
        "python -m linflow dataset --experiment {wildcards.dataset} --entropy {params.entropy} "
        "{params.flags} --output {output} > {log} 2>&1"
