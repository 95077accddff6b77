# The embedded demo: in-the-wild photos made offline from public-domain imagery.

DEMO_SIDECAR = f"{RESOURCES}/demo/photos/licenses.json"  # the photos' licences; the library puts their labels beside it


rule demo_photos:
    output:
        sidecar=DEMO_SIDECAR,
        attributes=str(stylegan_demo.attributes_file(DEMO_SIDECAR)),
    log:
        f"{LOGS}/demo_photos.log",
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda wc: settings("demo"),
        seed=config["seed"],
    message:
        "Making the demo's synthetic in-the-wild photos"
    shell:
        "python -m stylegan.cli demo photos --settings {params.settings:q} --seed {params.seed} "
        "--sidecar {output.sidecar} > {log} 2>&1"
