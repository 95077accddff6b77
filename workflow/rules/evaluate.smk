# Evaluate: a network made elsewhere instead of a trained one. NVIDIA's StyleGAN (v1)
# pickles are read as data (stylegan/model/nvidia.py, none of their code runs) and
# written as our files: the generator of evaluate.generator, and the attribute
# classifiers of metrics.ls.classifiers, which linear separability then uses instead
# of training its own (SG1's 40 CelebA-HQ classifiers). `generator()` (common.smk)
# makes the imported generator the one every metric, figure and report rule reads.

if EVALUATE_PICKLE:

    rule import_generator:
        input:
            EVALUATE,
        output:
            generator=f"{RESULTS}/evaluate/{stylegan_nvidia.FILES['Gs']}",
            record=f"{RESULTS}/evaluate/{stylegan_nvidia.RECORD}",
        log:
            f"{LOGS}/import_generator.log",
        conda:
            "../../envs/torch.yaml"
        params:
            folder=lambda wc, output: Path(output.generator).parent,
        message:
            "Importing NVIDIA's network {input}"
        shell:
            "python -m stylegan.cli import nvidia {input:q} --out {params.folder} > {log} 2>&1"


rule metrics_ls_import:
    input:
        lambda wc: LS_PICKLES[wc.attribute],
    output:
        classifier=f"{METRICS}/ls/nvidia/{{attribute}}/{stylegan_nvidia.FILES['classifier']}",
        record=f"{METRICS}/ls/nvidia/{{attribute}}/{stylegan_nvidia.RECORD}",
    log:
        f"{LOGS}/metrics_ls_import/{{attribute}}.log",
    conda:
        "../../envs/torch.yaml"
    params:
        folder=lambda wc, output: Path(output.classifier).parent,
    localrule: True
    message:
        "Importing NVIDIA's attribute classifier {wildcards.attribute}"
    shell:
        "python -m stylegan.cli import nvidia {input:q} --out {params.folder} > {log} 2>&1"
