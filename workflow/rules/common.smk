# Config validation and the helpers every rule file uses. No rules here.
import json
import os
from pathlib import Path

from stylegan import configcheck


# Fills the schema's defaults and fails before any job runs, one line per bad key
# (dotted name, value, what is allowed); Snakemake's validate only dumps jsonschema.
configcheck.apply(config, configcheck.load_schema(workflow.source_path("../schemas/config.schema.yaml")))

# Rules run `python -m stylegan.cli`; with --sdm conda the rule envs hold the
# dependencies and this puts the checkout's library on their path.
# It is set here, not read, so `envvars:` (which asserts a user-supplied variable) does not apply.
os.environ.update(
    PYTHONPATH=os.pathsep.join(filter(None, [str(Path(workflow.basedir)), os.environ.get("PYTHONPATH")]))
)

RESULTS = config["paths"]["results"]
RESOURCES = config["paths"]["resources"]
LOGS = config["paths"]["logs"]
CHUNKS = [f"{i:03d}" for i in range(config["crawl"]["chunks"])]


wildcard_constraints:
    chunk=r"\d{3}",


def settings(section):
    """A config section as JSON for a rule's `--settings {params.settings:q}`."""
    return json.dumps(config[section], sort_keys=True)


def crawl_source_inputs(wildcards):
    """The folder source's sidecar is an input, so the demo rule makes it when needed."""
    crawl = config["crawl"]
    sidecar = crawl["folder"].get("sidecar")
    return [sidecar] if crawl["source"] == "folder" and sidecar else []


def filter_list_inputs(wildcards):
    """The exclusion and opt-out lists: editing one re-runs filter and pack."""
    return [p for p in (config["filter"].get("exclude"), config["filter"].get("optout")) if p]


def final_targets():
    """The default target's inputs: every stage's end products."""
    return [
        f"{RESULTS}/crawl/report.json",
        f"{RESULTS}/filter/summary.tsv",
        f"{RESULTS}/dataset/manifest.json",
        f"{RESULTS}/dataset/verify.json",
        f"{RESULTS}/dataset/datasheet.md",
        f"{RESULTS}/train/generator.pt",
        f"{RESULTS}/train/grid.png",
        *metric_result_files(),
        f"{RESULTS}/metrics/fid_curve.json",
        f"{RESULTS}/figures/fig7_fid_curve.png",
    ]
