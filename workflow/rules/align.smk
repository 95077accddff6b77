# Align: detect faces and landmarks with dlib, align and crop as FFHQ did.
# One job per crawl chunk; work in progress is journalled in a hidden file beside
# the outputs (not an output, so Snakemake keeps it after a failure) and a killed
# job resumes. The report lists every photo or face that failed, with its reason.


rule align:
    input:
        rules.crawl_download.output.photos,
    output:
        faces=f"{RESULTS}/align/chunks/{{chunk}}.jsonl",
        report=f"{RESULTS}/align/reports/{{chunk}}.json",
    log:
        f"{LOGS}/align/{{chunk}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/align/{{chunk}}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda wc: settings("align"),
        images=f"{RESULTS}/align/faces",
    threads: config["align"]["workers"]
    resources:
        cpus_per_task=config["align"]["workers"],
    message:
        "Aligning faces in chunk {wildcards.chunk}"
    shell:
        "python -m stylegan.cli align --settings {params.settings:q} --photos {input} "
        "--images {params.images} --out {output.faces} --report {output.report} > {log} 2>&1"
