# StyleGAN on an FFHQ-style dataset: crawl -> align -> filter -> pack -> train -> metrics.
# This file only loads and validates the config, includes one rule file per
# stage, and names the final targets. The library (`stylegan/`) does the work.


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/crawl.smk"
include: "workflow/rules/align.smk"
include: "workflow/rules/filter.smk"
include: "workflow/rules/pack.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/ppl_ls.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        final_targets(),
    default_target: True
