# Stage 2: one simulation per (experiment, case, width, seed), one run record each.


rule simulate:
    input:
        dataset=lambda wildcards: dataset_path(config["experiments"][wildcards.experiment]["dataset"]),
    output:
        "results/{experiment}/runs/{case}/h{width}_s{seed}.nc",
    log:
        "logs/simulate/{experiment}/{case}/h{width}_s{seed}.log",
    benchmark:
        "results/benchmarks/simulate/{experiment}/{case}/h{width}_s{seed}.tsv"
    params:
        flags=simulation_flags,
        code=code_hash("simulate", "theory", "init", "seeding", "record"),
    threads: 1
    resources:
        mem_mb=simulation_mem_mb,
        runtime=simulation_runtime,
    conda:
        ENV
    shell:
        "python -m linflow simulate --dataset {input.dataset} --experiment {wildcards.experiment} "
        "--case {wildcards.case} --width {wildcards.width} --seed {wildcards.seed} "
        "{params.flags} --output {output} > {log} 2>&1"
