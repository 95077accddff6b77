# Pack: multi-resolution HDF5 shards, their manifest, a verification, a datasheet.
# The shards are not declared outputs: pack rewrites only the shards whose
# faces changed, which Snakemake's delete-outputs-first would defeat.


rule pack:
    input:
        rules.filter.output.kept,
    output:
        manifest=f"{RESULTS}/dataset/manifest.json",
    log:
        f"{LOGS}/pack.log",
    benchmark:
        f"{RESULTS}/benchmarks/pack.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda wc: settings("pack"),
        shards=f"{RESULTS}/dataset/shards",
    threads: config["pack"]["workers"]
    resources:
        cpus_per_task=config["pack"]["workers"],
    message:
        "Packing kept faces into HDF5 shards"
    shell:
        "python -m stylegan.cli dataset pack --settings {params.settings:q} --faces {input} "
        "--shards {params.shards} --manifest {output} > {log} 2>&1"


rule dataset_verify:
    input:
        rules.pack.output.manifest,
    output:
        verify=f"{RESULTS}/dataset/verify.json",
    log:
        f"{LOGS}/dataset_verify.log",
    benchmark:
        f"{RESULTS}/benchmarks/dataset_verify.tsv"
    conda:
        "../../envs/data.yaml"
    threads: config["pack"]["workers"]
    resources:
        cpus_per_task=config["pack"]["workers"],
    message:
        "Checking every shard against the manifest"
    shell:
        "python -m stylegan.cli dataset verify --manifest {input} --out {output} --workers {threads} > {log} 2>&1"


rule dataset_card:
    input:
        manifest=rules.pack.output.manifest,
        rejected=rules.filter.output.rejected,
    output:
        datasheet=f"{RESULTS}/dataset/datasheet.md",
    log:
        f"{LOGS}/dataset_card.log",
    conda:
        "../../envs/data.yaml"
    localrule: True
    message:
        "Writing the datasheet and attribution list"
    shell:
        "python -m stylegan.cli dataset card --manifest {input.manifest} --rejected {input.rejected} "
        "--out {output} > {log} 2>&1"
