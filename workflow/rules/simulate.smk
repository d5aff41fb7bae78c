# Stage 2: simulations, one job per chunk (one width and a block of seeds, for every case;
# linflow.grid). The job runs them in one process and writes their records to one file plus
# the chunk table of their scalars, which the aggregation reads.


rule simulate:
    input:
        dataset=chunk_dataset,
    output:
        table="results/{experiment}/chunks/{chunk}.nc",
        records="results/{experiment}/runs/{chunk}.nc",
    log:
        "logs/simulate/{experiment}/{chunk}.log",
    benchmark:
        "results/benchmarks/simulate/{experiment}/{chunk}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=chunk_mem_mb,
        runtime=chunk_runtime,
    params:
        spec=chunk_spec,
        spec_hash=chunk_spec_hash,
        plan=str(PLAN_CONFIG),
        code=code("chunk"),
    shell:
        "python -m linflow chunk --dataset {input.dataset} --plan {params.plan:q} "
        "--experiment {wildcards.experiment} --chunk {wildcards.chunk} --spec-hash {params.spec_hash} "
        "--max-memory-mb {resources.mem_mb} --records {output.records} --table {output.table} > {log} 2>&1"
