# Crawl: list eligible photos (catalogue), download them in chunks, merge.
# Photos live in the resources store, outside any rule's outputs, so a failed
# or killed download job loses nothing and a rerun re-downloads nothing.

# The Flickr API key travels to cluster jobs through the environment only; it is
# required (and checked by Snakemake) only when the flickr source is selected.
if config["crawl"]["source"] == "flickr":

    envvars:
        config["crawl"]["flickr"]["api_key_env"],


rule crawl_catalogue:
    input:
        crawl_source_inputs,
    output:
        catalogue=f"{RESULTS}/crawl/catalogue.jsonl",
    log:
        f"{LOGS}/crawl_catalogue.log",
    benchmark:
        f"{RESULTS}/benchmarks/crawl_catalogue.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda wc: settings("crawl"),
    message:
        "Listing eligible photos from the {config[crawl][source]} source"
    shell:
        "python -m stylegan.cli crawl catalogue --settings {params.settings:q} --out {output} > {log} 2>&1"


rule crawl_download:
    input:
        rules.crawl_catalogue.output.catalogue,
    output:
        photos=f"{RESULTS}/crawl/chunks/{{chunk}}.jsonl",
    log:
        f"{LOGS}/crawl_download/{{chunk}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/crawl_download/{{chunk}}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda wc: settings("crawl"),
        store=f"{RESOURCES}/photos",
    threads: config["crawl"]["workers"]
    resources:
        cpus_per_task=config["crawl"]["workers"],
    message:
        "Downloading photo chunk {wildcards.chunk}"
    shell:
        "python -m stylegan.cli crawl download --settings {params.settings:q} --catalogue {input} "
        "--chunk {wildcards.chunk} --store {params.store} --out {output} > {log} 2>&1"


rule crawl_report:
    input:
        expand(rules.crawl_download.output.photos, chunk=CHUNKS),
    output:
        photos=f"{RESULTS}/crawl/photos.jsonl",
        report=f"{RESULTS}/crawl/report.json",
    log:
        f"{LOGS}/crawl_report.log",
    conda:
        "../../envs/data.yaml"
    localrule: True
    message:
        "Merging the downloaded chunks and reporting failures"
    shell:
        "python -m stylegan.cli crawl report --chunks {input} --photos {output.photos} "
        "--report {output.report} > {log} 2>&1"
