"""The FFHQ-scale preset is a valid config, plans the whole DAG, and builds config F."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from stylegan import configcheck, settings
from stylegan.train.config import TrainSettings
from stylegan.model.networks import Discriminator, Generator
from workflow_copy import REPO, copy_workflow, snakemake

PRESET = yaml.safe_load((REPO / "configs/ffhq.yaml").read_text())


def test_preset_passes_the_schema_and_mirrors_the_demo_config() -> None:
    config = yaml.safe_load((REPO / "configs/ffhq.yaml").read_text())
    configcheck.apply(config, configcheck.load_schema(REPO / "workflow/schemas/config.schema.yaml"))
    demo = yaml.safe_load((REPO / "config.yaml").read_text())
    assert set(PRESET) == set(demo)
    assert PRESET["crawl"]["source"] == "flickr" and PRESET["align"]["output_size"] == 1024


def test_preset_trains_config_f_at_1024() -> None:
    train = settings.load(TrainSettings, PRESET["train"], where="train")
    assert train.network.resolution == 1024 and train.schedule.total_kimg == 25000
    with torch.device("meta"):  # counts only: no memory, no init time
        g, d = Generator(train.network), Discriminator(train.network)
    # config F's parameter counts: G as NVlabs/stylegan README.md "Total 26219627"; D derived from networks_stylegan.py D_basic
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
