# Perceptual path length and linear separability (the paper's Tables 3-4).
# PPL: four variants (z/w, full/end), each split into metrics.shards jobs, merged by
# a local rule; without the VGG16 file (and metrics.ppl.download false) only the
# merge runs and records "not computed" with the reason. LS: one classifier job per
# attribute trained from labelled faces (CelebA-HQ, or the demo's labelled aligned
# faces), shards that generate and classify, and a merge that fits the SVMs on its
# CPUs; without labelled faces only the merge runs, recording why.

wildcard_constraints:
    variant="|".join(PPL_VARIANTS),


rule metrics_vgg16:
    output:
        VGG16,
    log:
        f"{LOGS}/metrics_vgg16.log",
    conda:
        "../../envs/torch.yaml"
    localrule: True
    message:
        "Downloading torchvision's VGG16 weights for the perceptual path length"
    shell:
        "python -m stylegan.cli metrics vgg16 --out {output} > {log} 2>&1"


rule metrics_ppl_shard:
    input:
        generator=generator(),
        vgg16=VGG16,
    output:
        partial=f"{METRICS}/partial/ppl_{{variant}}-{{shard}}.npz",
    log:
        f"{LOGS}/metrics_ppl_shard/{{variant}}-{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/metrics_ppl_shard/{{variant}}-{{shard}}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        settings=lambda wc: settings("metrics"),
        shard=lambda wc: int(wc.shard),
    resources:
        **METRIC_RESOURCES,
    message:
        "Perceptual path length {wildcards.variant}, shard {wildcards.shard}"
    shell:
        "OMP_NUM_THREADS={resources.cpus_per_gpu} python -m stylegan.cli metrics ppl-shard "
        "--settings {params.settings:q} --generator {input.generator} --vgg16 {input.vgg16} "
        "--variant {wildcards.variant} --shard {params.shard} --out {output} > {log} 2>&1"


rule metrics_ppl:
    input:
        generator=generator(),
        partials=ppl_partials,
    output:
        result=f"{METRICS}/ppl.json",
    log:
        f"{LOGS}/metrics_ppl.log",
    conda:
        "../../envs/torch.yaml"
    params:
        settings=lambda wc: settings("metrics"),
        vgg16=VGG16,
    localrule: True
    message:
        "Perceptual path length of the trained generator (Tables 3-4)"
    shell:
        "python -m stylegan.cli metrics ppl --settings {params.settings:q} --generator {input.generator} "
        "--vgg16 {params.vgg16} --partials {input.partials} --out {output} > {log} 2>&1"


rule metrics_ls_demo_labels:
    input:
        photos=rules.demo_photos.output.attributes,
        faces=expand(rules.align.output.faces, chunk=CHUNKS),
    output:
        attributes=f"{METRICS}/ls/demo_attributes.txt",
    log:
        f"{LOGS}/metrics_ls_demo_labels.log",
    conda:
        "../../envs/data.yaml"
    params:
        images=rules.align.params.images,
    localrule: True
    message:
        "Carrying the demo photos' attribute labels to their aligned faces"
    shell:
        "python -m stylegan.cli demo face-labels --photo-labels {input.photos} --faces {input.faces} "
        "--images {params.images} --out {output} > {log} 2>&1"


rule metrics_ls_classifier:
    input:
        attributes=ls_labels()[1] or [],
        mapping=LS["mapping_file"] or [],
    output:
        classifier=f"{METRICS}/ls/classifiers/{{attribute}}.pt",
    log:
        f"{LOGS}/metrics_ls_classifier/{{attribute}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/metrics_ls_classifier/{{attribute}}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        settings=lambda wc: settings("metrics"),
        faces=ls_labels()[0],
        mapping=f"--mapping-file {LS['mapping_file']}" if LS["mapping_file"] else "",
        seed=config["seed"],
        workers=config["metrics"]["workers"],
    resources:
        **METRIC_RESOURCES,
    message:
        "Training the attribute classifier {wildcards.attribute}"
    shell:
        "OMP_NUM_THREADS={resources.cpus_per_gpu} python -m stylegan.cli metrics classifier "
        "--settings {params.settings:q} --attribute {wildcards.attribute} --faces {params.faces} "
        "--attributes-file {input.attributes} {params.mapping} --seed {params.seed} --workers {params.workers} "
        "--out {output} > {log} 2>&1"


rule metrics_ls_shard:
    input:
        generator=generator(),
        classifiers=ls_classifiers,
    output:
        partial=f"{METRICS}/partial/ls-{{shard}}.npz",
    log:
        f"{LOGS}/metrics_ls_shard/{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/metrics_ls_shard/{{shard}}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        settings=lambda wc: settings("metrics"),
        shard=lambda wc: int(wc.shard),
    resources:
        **METRIC_RESOURCES,
    message:
        "Linear separability: generating and classifying shard {wildcards.shard}"
    shell:
        "OMP_NUM_THREADS={resources.cpus_per_gpu} python -m stylegan.cli metrics ls-shard "
        "--settings {params.settings:q} --generator {input.generator} --classifiers {input.classifiers} "
        "--shard {params.shard} --out {output} > {log} 2>&1"


rule metrics_ls:
    input:
        generator=generator(),
        partials=ls_partials,
    output:
        result=f"{METRICS}/ls.json",
    log:
        f"{LOGS}/metrics_ls.log",
    benchmark:
        f"{RESULTS}/benchmarks/metrics_ls.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        settings=lambda wc: settings("metrics"),
    threads: SVM_WORKERS
    resources:
        cpus_per_task=SVM_WORKERS,
        mem_mb=config["metrics"]["resources"]["mem_mb"],
        runtime=config["metrics"]["resources"]["runtime"],
    message:
        "Linear separability of the trained generator: SVM fits on {threads} CPUs (Tables 3-4)"
    shell:
        "python -m stylegan.cli metrics ls --settings {params.settings:q} --generator {input.generator} "
        "--partials {input.partials} --workers {threads} --out {output} > {log} 2>&1"
