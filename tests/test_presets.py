"""The FFHQ-scale preset is a valid config, plans the whole DAG, and builds config F."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml
from workflow_copy import REPO, copy_workflow, snakemake

from stylegan import configcheck, settings
from stylegan.model.networks import Discriminator, Generator
from stylegan.train.config import TrainSettings

# What Snakemake runs with `--configfile configs/ffhq.yaml`: the preset merged over config.yaml.
PRESET = configcheck.load_files(REPO / "config.yaml", REPO / "configs/ffhq.yaml")


def test_preset_passes_the_schema_and_mirrors_the_demo_config() -> None:
    config = configcheck.load_files(REPO / "config.yaml", REPO / "configs/ffhq.yaml")
    configcheck.apply(config)
    demo = yaml.safe_load((REPO / "config.yaml").read_text())
    assert set(PRESET) == set(demo)
    assert PRESET["crawl"]["source"] == "flickr" and PRESET["align"]["output_size"] == 1024


def test_the_minimal_preset_merged_over_the_demo_gives_the_full_preset() -> None:
    """configs/ffhq.yaml lists only the FFHQ run's changes; merged as Snakemake merges, it is the old full preset.

    Snakemake merged the old full preset over config.yaml too, so the run is the one it
    always was. The file itself differed in one key: its `train.schedule.minibatch_dict: {}`
    never emptied the demo's mapping (a merge cannot), and `minibatch_preset: 8` leaves it
    unused, so every level's minibatch is the same.
    """
    from snakemake.utils import update_config

    def snakemake_merge(preset: str) -> dict:
        config = yaml.safe_load((REPO / "config.yaml").read_text())
        update_config(config, yaml.safe_load((REPO / preset).read_text()))
        configcheck.apply(config)
        return config

    assert snakemake_merge("configs/ffhq.yaml") == PRESET == snakemake_merge("tests/data/ffhq_full_preset.yaml")
    full = yaml.safe_load((REPO / "tests/data/ffhq_full_preset.yaml").read_text())
    configcheck.apply(full)
    merged = copy.deepcopy(PRESET)
    ours, theirs = (settings.load(TrainSettings, c["train"], "train").schedule for c in (merged, full))
    assert ours.minibatches() == theirs.minibatches()
    assert merged["train"]["schedule"].pop("minibatch_dict") == {8: 32, 16: 16, 32: 16}
    assert full["train"]["schedule"].pop("minibatch_dict") == {}
    assert merged == full


def test_preset_trains_config_f_at_1024() -> None:
    train = settings.load(TrainSettings, PRESET["train"], where="train")
    assert train.network.resolution == 1024 and train.schedule.total_kimg == 25000
    with torch.device("meta"):  # counts only: no memory, no init time
        g, d = Generator(train.network), Discriminator(train.network)
    # config F's parameter counts: G as NVlabs/stylegan README.md "Total 26219627";
    # D derived from networks_stylegan.py D_basic
    assert sum(p.numel() for p in g.parameters()) == 26_219_627
    assert sum(p.numel() for p in d.parameters()) == 23_087_249


@pytest.mark.slow
def test_preset_dry_run_plans_every_stage(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "repo")
    result = snakemake(workdir, "--dry-run", "--configfile", "configs/ffhq.yaml", env={"FLICKR_API_KEY": "x"})
    assert result.returncode == 0, result.stdout
    for rule in ("crawl_catalogue", "crawl_download", "align", "filter", "pack", "train", "sample_grid"):
        assert rule in result.stdout
    assert "results/ffhq/train/generator.pt" in result.stdout


def test_the_published_network_preset_plans_imports_and_metrics_without_training(tmp_path: Path) -> None:
    """configs/ffhq-published.yaml over the FFHQ preset: NVIDIA's network and 40 classifiers are imported by
    rules, FFHQ's images go through the aligned source, and no job trains (the files are empty stand-ins:
    a dry run reads none)."""
    workdir = copy_workflow(tmp_path / "repo")
    config = configcheck.load_files(
        REPO / "config.yaml", REPO / "configs/ffhq.yaml", REPO / "configs/ffhq-published.yaml"
    )
    stand_ins = [
        config["evaluate"]["generator"],
        config["crawl"]["aligned"]["metadata"],
        *(
            f"{config['metrics']['ls']['classifiers'][0]}/celebahq-classifier-{i:02d}-attribute{i}.pkl"
            for i in range(40)
        ),
    ]
    for path in stand_ins:
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).touch()
    result = snakemake(
        workdir, "--dry-run", "--printshellcmds", "--configfile", "configs/ffhq.yaml", "configs/ffhq-published.yaml"
    )
    assert result.returncode == 0, result.stdout
    jobs = dict(
        line.split()
        for line in result.stdout.split("Job stats:", 1)[1].split("total", 1)[0].splitlines()[3:]
        if line.strip()
    )
    assert jobs["import_generator"] == "1" and jobs["metrics_ls_import"] == "40" and jobs["crawl_download"] == "16"
    assert not set(jobs) & {"train", "metrics_ls_classifier", "metrics_fid_curve", "training_curves"}
    assert "--generator results/ffhq-published/evaluate/generator.pt" in result.stdout  # reals at the network's level
