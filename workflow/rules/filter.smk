# Filter: automatic quality filters, the exclusion list and the opt-out list.


rule filter:
    input:
        faces=expand(rules.align.output.faces, chunk=CHUNKS),
        lists=filter_list_inputs,
    output:
        kept=f"{RESULTS}/filter/kept.jsonl",
        rejected=f"{RESULTS}/filter/rejected.jsonl",
        summary=f"{RESULTS}/filter/summary.tsv",
        sheets=report(directory(f"{RESULTS}/filter/contact_sheets"), patterns=["{name}.png"],
                      caption="../report/contact_sheets.rst", category="Dataset", subcategory="Filter contact sheets"),
    log:
        f"{LOGS}/filter.log",
    benchmark:
        f"{RESULTS}/benchmarks/filter.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda wc: settings("filter"),
    threads: config["filter"]["workers"]
    resources:
        cpus_per_task=config["filter"]["workers"],
    message:
        "Filtering aligned faces"
    shell:
        "python -m stylegan.cli filter --settings {params.settings:q} --faces {input.faces} "
        "--kept {output.kept} --rejected {output.rejected} --summary {output.summary} "
        "--sheets {output.sheets} > {log} 2>&1"
