# Config validation and the helpers every rule file uses. No rules here.
import json
import os
from pathlib import Path

from stylegan import configcheck
from stylegan import settings as stylegan_settings
from stylegan.data import demo as stylegan_demo
from stylegan.metrics.config import PPL_VARIANTS, LsSettings


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
MIXING = [f"mix{n}" for n in config["metrics"]["mixing"]["latents"]]
# What every metric and figure job asks SLURM for (stylegan/resources.py).
METRIC_RESOURCES = CONFIG.metrics.resources.slurm()
# PPL and LS: where the VGG16 file and the labelled faces are, and whether they are there.
PPL = config["metrics"]["ppl"]
VGG16 = PPL["vgg16"] or f"{RESOURCES}/metrics/vgg16-397923af.pth"
LS = config["metrics"]["ls"]
LS_MISSING = stylegan_settings.load(LsSettings, LS, "metrics.ls").missing_labels()
LS_FACES = f"{RESULTS}/align/faces" if LS["labels"] == "demo" else LS["faces"]
LS_ATTRIBUTES_FILE = f"{METRICS}/ls/demo_attributes.txt" if LS["labels"] == "demo" else LS["attributes_file"]
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
    """The folder source's sidecar is an input, so the demo rule makes it when needed."""
    crawl = config["crawl"]
    sidecar = crawl["folder"].get("sidecar")
    return [sidecar] if crawl["source"] == "folder" and sidecar else []


def filter_list_inputs(wildcards):
    """The exclusion and opt-out lists: editing one re-runs filter and pack."""
    return [p for p in (config["filter"].get("exclude"), config["filter"].get("optout")) if p]


def metric_result_files():
    """Every final metric result (one MetricResult JSON each): what the report's metrics table shows."""
    return [
        f"{METRICS}/fid.json",
        f"{METRICS}/kid.json",
        *[f"{METRICS}/fid_{stream}.json" for stream in MIXING],
        f"{METRICS}/fid_lowest.json",
        f"{METRICS}/ppl.json",
        f"{METRICS}/ls.json",
    ]


def metric_partials(stream):
    """The shard partials of one sample stream, as the merge rules' input."""
    return expand(f"{METRICS}/partial/{stream}-{{shard}}.npz", shard=METRIC_SHARDS)


FIGURES = {  # figures.smk: output stem -> `stylegan figures` command
    "fig2_uncurated": "uncurated",
    "fig3_style_mixing": "style-mixing",
    "fig4_stochastic_variation": "stochastic",
    "fig5_noise_layers": "noise",
    "fig8_truncation": "truncation",
}


def figure_files():
    """Every figure's PNG."""
    return expand(f"{RESULTS}/figures/{{figure}}.png", figure=FIGURES)


def report_files():
    """The report's own pages and plots."""
    return [f"{RESULTS}/report/{name}" for name in ("datasheet.html", "training_curves.png", "snapshots.png",
                                                     "metrics.html")]


def ppl_partials(wildcards):
    """Every variant's shards when the VGG16 file is there or will be downloaded; none otherwise."""
    if not (PPL["download"] or Path(VGG16).is_file()):
        return []
    return expand(f"{METRICS}/partial/ppl_{{variant}}-{{shard}}.npz", variant=PPL_VARIANTS, shard=METRIC_SHARDS)


def ls_attributes():
    """The attributes to classify: metrics.ls.attributes, the demo's, or every one in the file's header."""
    if LS["attributes"]:
        return list(LS["attributes"])
    if LS["labels"] == "demo":
        return list(stylegan_demo.ATTRIBUTES)
    if LS_MISSING:
        return []
    return Path(LS_ATTRIBUTES_FILE).read_text().splitlines()[1].split()


def ls_classifiers(wildcards=None):
    return expand(f"{METRICS}/ls/classifiers/{{attribute}}.pt", attribute=ls_attributes())


def ls_partials(wildcards):
    """The separability shards when there are labelled faces; none otherwise."""
    return [] if LS_MISSING else expand(f"{METRICS}/partial/ls-{{shard}}.npz", shard=METRIC_SHARDS)


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
        *figure_files(),
        *report_files(),
        *metric_result_files(),
        f"{METRICS}/fid_curve.json",
        f"{RESULTS}/figures/fig7_fid_curve.png",
    ]


def train_launcher():
    """The command that starts torchrun for the train rule: once, or once per node via srun.

    srun gets the CPUs and GPUs per task again: since SLURM 22.05 a step does not
    inherit --cpus-per-task from the job. Outside a SLURM job srun would make a new
    allocation behind Snakemake's back, so that stops with the fix instead.
    """
    r = config["train"]["resources"]
    script = Path(workflow.basedir, "workflow/scripts/launch_torchrun.sh")
    env = f"NPROC_PER_NODE={max(1, r['gpu'])} OMP_NUM_THREADS={r['cpus_per_gpu']}"
    if r["nodes"] == 1:
        return f"{env} bash {script}"
    job = CONFIG.train.resources.slurm()
    gres = f" --gres={job['gres']}" if "gres" in job else ""
    outside = (f"train.resources.nodes is {r['nodes']}: run the train job through SLURM (--profile slurm),"
               " or set nodes: 1")
    return (f"if [ -z \"${{SLURM_JOB_ID:-}}\" ]; then echo '{outside}' >&2; exit 2; fi; "
            f"{env} {job['mpi']} --nodes={r['nodes']} --ntasks-per-node=1 --cpus-per-task={job['cpus_per_task']}{gres}"
            f" bash {script}")
