# Figures: the paper's Figs. 2, 3, 4, 5 and 8 from the trained generator, one job each
# with metrics.resources (a GPU when the profile gives one); captions in workflow/report/.


rule figure:
    input:
        generator(),
    output:
        png=report(f"{RESULTS}/figures/{{figure}}.png", caption="../report/figure.rst", category="Figures",
                   subcategory="{figure}"),
    log:
        f"{LOGS}/figure/{{figure}}.log",
    wildcard_constraints:
        figure="|".join(FIGURES),
    conda:
        "../../envs/torch.yaml"
    params:
        command=lambda wc: FIGURES[wc.figure],
        settings=lambda wc: settings("metrics.figures"),
    resources:
        **METRIC_RESOURCES,
    message:
        "Drawing {wildcards.figure} from the trained generator"
    shell:
        "OMP_NUM_THREADS={resources.cpus_per_gpu} python -m stylegan.cli figures {params.command} "
        "--settings {params.settings:q} --generator {input} --out {output} > {log} 2>&1"
