# Metrics: the trained generator evaluated downstream of train (FID, KID, the paper's
# figures), each a job that asks for GPUs through metrics.resources and runs on the
# CPU when there are none. A metric over generated images is split into
# metrics.shards jobs over sample ranges (metrics_shard) and merged by a local rule;
# the real statistics are cached by content under metrics/cache, and the FID curve
# keeps one result per training snapshot under metrics/curve, so reruns resume.

wildcard_constraints:
    stream="|".join(["fid", *map(mixing_stream, MIXING_LATENTS)]),
    latents="|".join(map(str, MIXING_LATENTS)),
    shard=r"\d{3}",


rule metrics_reals:
    input:
        manifest=rules.pack.output.manifest,
        generator=[] if TRAINING else generator(),  # the level to compare at is the evaluated network's
    output:
        reals=f"{METRICS}/reals.json",
        kid=f"{METRICS}/kid_reals.json",
    log:
        f"{LOGS}/metrics_reals.log",
    benchmark:
        f"{RESULTS}/benchmarks/metrics_reals.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        settings=lambda wc: settings("metrics"),
        level=f"--resolution {config['train']['network']['resolution']}" if TRAINING else f"--generator {generator()}",
        cache=f"{METRICS}/cache",
        train_xflip=str(config["train"]["xflip"]).lower(),
    resources:
        **METRIC_RESOURCES,
    message:
        "Inception statistics of the training images for FID and for KID (cached by content)"
    shell:
        "OMP_NUM_THREADS={resources.cpus_per_gpu} python -m stylegan.cli metrics reals --settings {params.settings:q} "
        "--manifest {input.manifest} {params.level} --cache {params.cache} --out {output.reals} "
        "--kid-out {output.kid} --train-xflip {params.train_xflip} > {log} 2>&1"


rule metrics_shard:
    input:
        generator(),
    output:
        partial=f"{METRICS}/partial/{{stream}}-{{shard}}.npz",
    log:
        f"{LOGS}/metrics_shard/{{stream}}-{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/metrics_shard/{{stream}}-{{shard}}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        settings=lambda wc: settings("metrics"),
        shard=lambda wc: int(wc.shard),
    resources:
        **METRIC_RESOURCES,
    message:
        "Inception features of generated images: {wildcards.stream}, shard {wildcards.shard}"
    shell:
        "OMP_NUM_THREADS={resources.cpus_per_gpu} python -m stylegan.cli metrics shard --settings {params.settings:q} "
        "--generator {input} --stream {wildcards.stream} --shard {params.shard} --out {output} > {log} 2>&1"


rule metrics_fid:
    input:
        generator=generator(),
        reals=rules.metrics_reals.output.reals,
        kid_reals=rules.metrics_reals.output.kid,
        partials=metric_partials("fid"),
    output:
        fid=f"{METRICS}/fid.json",
        kid=f"{METRICS}/kid.json",
    log:
        f"{LOGS}/metrics_fid.log",
    conda:
        "../../envs/torch.yaml"
    params:
        settings=lambda wc: settings("metrics"),
    localrule: True
    message:
        "FID and KID of the trained generator (Table 1)"
    shell:
        "python -m stylegan.cli metrics fid --settings {params.settings:q} --generator {input.generator} "
        "--reals {input.reals} --partials {input.partials} --out {output.fid} --kid-reals {input.kid_reals} "
        "--kid-out {output.kid} > {log} 2>&1"


rule metrics_mixing:
    input:
        generator=generator(),
        reals=rules.metrics_reals.output.reals,
        partials=lambda wc: metric_partials(mixing_stream(int(wc.latents))),
    output:
        result=f"{METRICS}/fid_mix{{latents}}.json",
    log:
        f"{LOGS}/metrics_mixing/{{latents}}.log",
    conda:
        "../../envs/torch.yaml"
    params:
        settings=lambda wc: settings("metrics"),
    localrule: True
    message:
        "FID with {wildcards.latents} latents mixed at test time (Table 2)"
    shell:
        "python -m stylegan.cli metrics fid --settings {params.settings:q} --generator {input.generator} "
        "--reals {input.reals} --partials {input.partials} --out {output} > {log} 2>&1"


rule metrics_fid_curve:
    input:
        generator=rules.train.output.generator,
        reals=rules.metrics_reals.output.reals,
        vgg16=ppl_backbone,
    output:
        data=f"{METRICS}/fid_curve.json",
        lowest=f"{METRICS}/fid_lowest.json",
        plot=report(
            f"{RESULTS}/figures/fig7_fid_curve.png",
            category="Figures",
            caption="../report/fig7_fid_curve.rst",
        ),
    log:
        f"{LOGS}/metrics_fid_curve.log",
    benchmark:
        f"{RESULTS}/benchmarks/metrics_fid_curve.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        settings=lambda wc: settings("metrics"),
        run=rules.train.params.run,
        folder=f"{METRICS}/curve",
        vgg16=VGG16,
    resources:
        **METRIC_RESOURCES,
    message:
        "FID and perceptual path length of every kept training snapshot (Fig. 7)"
    shell:
        "OMP_NUM_THREADS={resources.cpus_per_gpu} python -m stylegan.cli metrics curve --settings {params.settings:q} "
        "--reals {input.reals} --run-dir {params.run} --folder {params.folder} --out {output.data} "
        "--plot {output.plot} --lowest {output.lowest} --vgg16 {params.vgg16} > {log} 2>&1"
