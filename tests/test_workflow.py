"""The workflow shell: config validation, lint, and a dry run that explains itself.

Every test runs the real `snakemake` on a scratch copy of the repository.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from workflow_copy import REPO, copy_workflow, snakemake

from stylegan import configcheck

DEFAULTS = yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("wf") / "repo")


def _with(section: str, **values: object) -> dict:
    """The default config with keys of one section replaced."""
    config = copy.deepcopy(DEFAULTS)
    config[section].update(values)
    return config


def test_default_config_is_valid_and_defaults_are_filled() -> None:
    config = copy.deepcopy(DEFAULTS)
    del config["crawl"]["download"]
    del config["train"]["loss"]["r1_gamma"]
    configcheck.apply(config)
    assert config["crawl"]["download"] == {"retries": 3, "backoff_s": 1.0, "timeout_s": 60.0}
    assert config["train"]["loss"]["r1_gamma"] == 10.0


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (_with("crawl", sourse="folder"), r"crawl\.sourse is not allowed \(did you mean crawl\.source\?\)"),
        (_with("crawl", source="flikr"), r'crawl\.source = "flikr": must be one of "flickr", "folder"'),
        (_with("crawl", chunks=0), r"crawl\.chunks = 0: must be a number >= 1"),
        (_with("align", output_size="64"), r'align\.output_size = "64": must be an integer'),
        ({k: v for k, v in DEFAULTS.items() if k != "seed"}, r"config key seed is missing"),
    ],
    ids=["unknown-key", "bad-enum", "below-minimum", "wrong-type", "missing"],
)
def test_library_names_key_value_and_rule(config: dict, expected: str) -> None:
    with pytest.raises(configcheck.ConfigError, match=expected):
        configcheck.apply(config)


@pytest.mark.parametrize(
    ("section", "values", "expected"),
    [
        ("crawl", {"sourse": "folder"}, "config key crawl.sourse is not allowed (did you mean crawl.source?)"),
        ("crawl", {"source": "flikr"}, 'config key crawl.source = "flikr": must be one of "flickr", "folder"'),
        ("crawl", {"chunks": 0}, "config key crawl.chunks = 0: must be a number >= 1"),
    ],
    ids=["unknown-key", "bad-enum", "below-minimum"],
)
def test_bad_config_fails_before_any_job(
    workdir: Path, tmp_path: Path, section: str, values: dict, expected: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({section: values}))
    run = snakemake(workdir, "--cores", "1", "--configfile", str(bad))
    assert run.returncode != 0
    assert expected in run.stdout, run.stdout
    assert not (workdir / "results").exists() and not (workdir / "resources").exists()


def test_lint_is_clean(workdir: Path) -> None:
    run = snakemake(workdir, "--lint")
    assert run.returncode == 0, run.stdout


def test_lint_is_clean_for_the_flickr_source(workdir: Path, tmp_path: Path) -> None:
    flickr = tmp_path / "flickr.yaml"
    flickr.write_text(yaml.safe_dump({"crawl": {"source": "flickr"}}))
    run = snakemake(workdir, "--lint", "--configfile", str(flickr), env={"FLICKR_API_KEY": "lint-only"})
    assert run.returncode == 0, run.stdout


def test_dry_run_plans_every_rule_and_explains_it(workdir: Path) -> None:
    rules = snakemake(workdir, "--list-rules")
    assert rules.returncode == 0, rules.stdout
    names = set(rules.stdout.split())
    run = snakemake(workdir, "--dry-run")
    assert run.returncode == 0, run.stdout
    planned = set(re.findall(r"^\s*(\w+)\s+\d+\s*$", run.stdout.split("Job stats:")[-1], re.M)) - {"total"}
    online = {"metrics_vgg16", "metrics_ppl_shard"}  # offline without the VGG16 file, PPL is "not computed"
    assert planned == names - online - {"metrics_ls_import"}  # NVIDIA's classifiers: tests/test_evaluate_workflow.py
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["metrics"]["ppl"]["download"] = True
    (workdir / "online.yaml").write_text(yaml.safe_dump(config))
    with_vgg = snakemake(workdir, "--dry-run", "--configfile", "online.yaml")
    assert with_vgg.returncode == 0 and online <= set(with_vgg.stdout.split()), with_vgg.stdout[-3000:]
    for message in (
        "Making the demo's synthetic in-the-wild photos",
        "Listing eligible photos from the folder source",
        "Downloading photo chunk 000",
        "Downloading photo chunk 001",
        "Aligning faces in chunk 001",
        "Training StyleGAN (1 process(es))",
    ):
        assert message in run.stdout
    assert not (workdir / "results").exists()


def test_several_train_nodes_outside_slurm_stop_with_the_fix(tmp_path: Path) -> None:
    """nodes > 1 is one SLURM job of several nodes; run locally, the job says so and trains nothing."""
    workdir = copy_workflow(tmp_path / "repo")
    (workdir / "results/dataset").mkdir(parents=True)
    (workdir / "results/dataset/manifest.json").write_text("{}")  # never read: the job stops first
    two = tmp_path / "two.yaml"
    two.write_text(yaml.safe_dump({"train": {"resources": {"nodes": 2, "gpu": 2}}}))
    run = snakemake(
        workdir,
        "results/train/generator.pt",
        "--cores",
        "1",
        "--allowed-rules",
        "train",
        "--configfile",
        str(two),
        env={"SLURM_JOB_ID": ""},
    )
    assert run.returncode != 0
    fix = "train.resources.nodes is 2: run the train job through SLURM (--profile slurm), or set nodes: 1"
    assert fix in run.stdout, run.stdout[-3000:]
    assert not (workdir / "results/train/run").exists()
