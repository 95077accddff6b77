# Report: what `snakemake --report report.html` shows besides the figures: the datasheet,
# the training curves, snapshot grids and data of the run, and the metrics table. Each is a
# small local job; the filter's contact sheets and the sample grid are reported by their
# own rules.


rule datasheet_page:
    input:
        rules.dataset_card.output.datasheet,
    output:
        page=report(f"{RESULTS}/report/datasheet.html", caption="../report/datasheet.rst", category="Dataset",
                    subcategory="Datasheet"),
    log:
        f"{LOGS}/datasheet_page.log",
    conda:
        "../../envs/torch.yaml"
    localrule: True
    message:
        "Rendering the datasheet for the report"
    shell:
        "python -m stylegan.cli report datasheet --datasheet {input} --out {output} > {log} 2>&1"


# The run directory is not an output of train (it must survive a failed job), so
# these two read it once the trained generator exists.
rule training_curves:
    input:
        rules.train.output.generator,
    output:
        plot=report(f"{RESULTS}/report/training_curves.png", caption="../report/training_curves.rst",
                    category="Training", subcategory="Curves"),
    log:
        f"{LOGS}/training_curves.log",
    conda:
        "../../envs/torch.yaml"
    params:
        log=f"{rules.train.params.run}/{LOG_FILE}",
    localrule: True
    message:
        "Plotting the training curves"
    shell:
        "python -m stylegan.cli report curves --log {params.log} --out {output} > {log} 2>&1"


rule snapshot_sheet:
    input:
        rules.train.output.generator,
    output:
        sheet=report(f"{RESULTS}/report/snapshots.png", caption="../report/snapshots.rst", category="Training",
                     subcategory="Snapshots"),
    log:
        f"{LOGS}/snapshot_sheet.log",
    conda:
        "../../envs/torch.yaml"
    params:
        run=rules.train.params.run,
        settings=lambda wc: settings("metrics.report"),
    localrule: True
    message:
        "Collecting training snapshot grids"
    shell:
        "python -m stylegan.cli report snapshots --run-dir {params.run} --settings {params.settings:q} "
        "--out {output} > {log} 2>&1"


rule training_data:
    input:
        generator=rules.train.output.generator,
        manifest=rules.pack.output.manifest,
    output:
        page=report(f"{RESULTS}/report/training_data.html", caption="../report/training_data.rst",
                    category="Training", subcategory="About the data"),
    log:
        f"{LOGS}/training_data.log",
    conda:
        "../../envs/torch.yaml"
    localrule: True
    message:
        "Recording which dataset the generator trained on, and what of it has since been removed"
    shell:
        "python -m stylegan.cli report training-data --generator {input.generator} --manifest {input.manifest} "
        "--out {output} > {log} 2>&1"


# The manifest is an input so that a takedown re-renders the table with its warning.
rule metrics_table:
    input:
        results=metric_result_files(),
        manifest=rules.pack.output.manifest,
    output:
        table=report(f"{RESULTS}/report/metrics.html", caption="../report/metrics.rst", category="Metrics",
                     subcategory="Table"),
    log:
        f"{LOGS}/metrics_table.log",
    conda:
        "../../envs/torch.yaml"
    localrule: True
    message:
        "Tabulating the metrics"
    shell:
        "python -m stylegan.cli report metrics --results {input.results} --manifest {input.manifest} "
        "--out {output} > {log} 2>&1"
