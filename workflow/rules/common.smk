# Config validation and the helpers every rule file uses. No rules here.
import json
import os
from pathlib import Path

from stylegan import configcheck
from stylegan.data import attributes as stylegan_attributes
from stylegan.data import demo as stylegan_demo
from stylegan.metrics import classifier as stylegan_classifier
from stylegan.metrics import figures as stylegan_figures
from stylegan.metrics.config import MIXING_LATENTS, PPL_VARIANTS, mixing_stream
from stylegan.metrics.lpips_vgg import VGG16_FILE
from stylegan.model import nvidia as stylegan_nvidia
from stylegan.train.ticks import LOG_FILE


# Checks the whole config through the library's settings and fills their defaults, before
# any job runs; one line per bad key (dotted name, value, what is allowed).
CONFIG = configcheck.apply(config)

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
METRICS = f"{RESULTS}/metrics"
METRIC_SHARDS = [f"{i:03d}" for i in range(config["metrics"]["shards"])]
# What every metric and figure job asks SLURM for (stylegan/resources.py).
METRIC_RESOURCES = CONFIG.metrics.resources.slurm()
# PPL and LS: where the VGG16 file and the labelled faces are, and whether they are there.
PPL = config["metrics"]["ppl"]
VGG16 = PPL["vgg16"] or f"{RESOURCES}/metrics/{VGG16_FILE}"
LS = config["metrics"]["ls"]
LS_MISSING = CONFIG.metrics.ls.missing_labels()
# NVIDIA's attribute classifiers by attribute (metrics.ls.classifiers), imported instead of trained.
LS_PICKLES = stylegan_classifier.nvidia_pickles(LS["classifiers"])
# evaluate.generator: a network made elsewhere replaces training; a .pkl is imported first (evaluate.smk).
EVALUATE = config["evaluate"]["generator"]
TRAINING = EVALUATE is None
EVALUATE_PICKLE = not TRAINING and EVALUATE.endswith(".pkl")
SVM_WORKERS = config["metrics"]["resources"]["cpus_per_gpu"]


wildcard_constraints:
    chunk=r"\d{3}",


def settings(section):
    """A config section (dotted when nested, e.g. "metrics.figures") as JSON for a rule's `--settings {params.settings:q}`."""
    node = config
    for key in section.split("."):
        node = node[key]
    return json.dumps(node, sort_keys=True)


def crawl_source_inputs(wildcards):
    """The folder source's sidecar (so the demo rule makes it when needed) or the aligned source's metadata."""
    crawl = config["crawl"]
    attribution = {"folder": crawl["folder"].get("sidecar"), "aligned": crawl["aligned"].get("metadata")}
    return [attribution[crawl["source"]]] if attribution.get(crawl["source"]) else []


def filter_list_inputs(wildcards):
    """The exclusion and opt-out lists: editing one re-runs filter and pack."""
    return [p for p in (config["filter"].get("exclude"), config["filter"].get("optout")) if p]


# The helpers below name other rules' outputs (rules.<name>.output), so they are called
# only once those rules exist: from input functions, or from rules in later files.


def generator():
    """The one generator that the metrics, figures and report read. It is the trained one, or
    evaluate.generator as given (.pt) or imported from NVIDIA's pickle (.pkl)."""
    if TRAINING:
        return rules.train.output.generator
    return rules.import_generator.output.generator if EVALUATE_PICKLE else EVALUATE


def metric_result_files():
    """Every final metric result (one MetricResult JSON each): what the report's metrics table shows."""
    return [
        rules.metrics_fid.output.fid,
        rules.metrics_fid.output.kid,
        *expand(rules.metrics_mixing.output.result, latents=config["metrics"]["mixing"]["latents"]),
        *([rules.metrics_fid_curve.output.lowest] if TRAINING else []),  # Fig. 7 needs the training snapshots
        rules.metrics_ppl.output.result,
        rules.metrics_ls.output.result,
    ]


def metric_partials(stream):
    """The shard partials of one sample stream, as the merge rules' input."""
    return expand(rules.metrics_shard.output.partial, stream=stream, shard=METRIC_SHARDS)


# figures.smk: output stem -> `stylegan figures` command
FIGURES = {stem: command for command, stem in stylegan_figures.STEMS.items()}


def ppl_backbone(wildcards=None):
    """The VGG16 file as an input when it is there or will be downloaded; nothing otherwise (PPL "not computed")."""
    return [VGG16] if PPL["download"] or Path(VGG16).is_file() else []


def ppl_partials(wildcards):
    """Every variant's shards when the VGG16 file is there or will be downloaded; none otherwise."""
    if not ppl_backbone():
        return []
    return expand(rules.metrics_ppl_shard.output.partial, variant=PPL_VARIANTS, shard=METRIC_SHARDS)


def ls_labels():
    """The labelled faces and their attribute file: the demo's aligned faces with the labels
    metrics_ls_demo_labels carries over, or metrics.ls.faces and .attributes_file."""
    if LS["labels"] == "demo":
        return rules.align.params.images, rules.metrics_ls_demo_labels.output.attributes
    return LS["faces"], LS["attributes_file"]


def ls_attributes():
    """The attributes to classify: metrics.ls.attributes, the demo's, or every one in the file's header."""
    if LS["attributes"]:
        return list(LS["attributes"])
    if LS["labels"] == "demo":
        return list(stylegan_demo.ATTRIBUTES)
    if LS_MISSING:
        return []
    return list(stylegan_attributes.attribute_names(LS["attributes_file"]))


def ls_classifiers(wildcards=None):
    """NVIDIA's imported classifiers when metrics.ls.classifiers names them, else ours, trained per attribute."""
    if LS_PICKLES:
        return expand(rules.metrics_ls_import.output.classifier, attribute=LS_PICKLES)
    return expand(rules.metrics_ls_classifier.output.classifier, attribute=ls_attributes())


def ls_partials(wildcards):
    """The separability shards when there are labelled faces; none otherwise."""
    return [] if LS_MISSING else expand(rules.metrics_ls_shard.output.partial, shard=METRIC_SHARDS)


def final_targets():
    """The default target's inputs: every stage's end products; with evaluate.generator, none of training's."""
    training = [
        rules.training_curves.output.plot,
        rules.snapshot_sheet.output.sheet,
        rules.training_data.output.page,
        rules.metrics_fid_curve.output.data,
        rules.metrics_fid_curve.output.plot,
    ]
    return [
        rules.crawl_report.output.report,
        rules.filter.output.summary,
        rules.pack.output.manifest,
        rules.dataset_verify.output.verify,
        rules.dataset_card.output.datasheet,
        generator(),
        rules.sample_grid.output.grid,
        *expand(rules.figure.output.png, figure=FIGURES),
        rules.datasheet_page.output.page,
        rules.metrics_table.output.table,
        *metric_result_files(),
        *(training if TRAINING else []),
    ]


def train_launcher():
    """The command that starts torchrun for the train rule: once, or once per node via srun.

    srun gets the CPUs and GPUs per task again: since SLURM 22.05 a step does not
    inherit --cpus-per-task from the job. Outside a SLURM job srun would make a new
    allocation behind Snakemake's back, so that stops with the fix instead.
    """
    r = CONFIG.train.resources
    script = Path(workflow.basedir, "workflow/scripts/launch_torchrun.sh")
    env = f"NPROC_PER_NODE={r.processes_per_node} OMP_NUM_THREADS={r.cpus_per_gpu}"
    if r.nodes == 1:
        return f"{env} bash {script}"
    job = r.slurm()
    gres = f" --gres={job['gres']}" if "gres" in job else ""
    outside = (f"train.resources.nodes is {r.nodes}: run the train job through SLURM (--profile slurm),"
               " or set nodes: 1")
    return (f"if [ -z \"${{SLURM_JOB_ID:-}}\" ]; then echo '{outside}' >&2; exit 2; fi; "
            f"{env} {job['mpi']} --nodes={r.nodes} --ntasks-per-node=1 --cpus-per-task={job['cpus_per_task']}{gres}"
            f" bash {script}")
