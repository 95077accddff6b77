"""The paper's reproduction path, offline and small, through the real Snakemake rules in one run.

README's "Reproduce the paper's numbers" on test vectors: an FFHQ-laid-out folder of
aligned faces with its `ffhq-dataset-v2.json` (crawl.source aligned, filter.automatic
false) is packed at the demo's size, and NVIDIA's 32² test snapshot
(tests/data/nvidia/stylegan-32.pkl, imported by a rule) is evaluated through
`evaluate.generator` instead of training, with NVIDIA's test classifier
(classifier-32.pkl) for linear separability: FID, KID, Table 2, PPL (not computed
offline), LS, the figures and `snakemake --report`. No training and no dlib job runs.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml
from faces import ffhq_folder
from workflow_copy import copy_workflow, snakemake

from stylegan import fileio
from stylegan.errors import StageError
from stylegan.metrics import classifier as stylegan_classifier
from stylegan.metrics import result as mr

NVIDIA = Path("tests/data/nvidia")  # relative to the workflow copy


def planned_jobs(stdout: str) -> set[str]:
    """The rules in Snakemake's first "Job stats" table: every job the run planned."""
    table = stdout.split("Job stats:", 1)[1].split("total", 1)[0]
    return {line.split()[0] for line in table.splitlines()[3:] if line.strip()}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_published_network_is_evaluated_on_aligned_images_without_training(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "repo")
    ffhq_folder(workdir / "ffhq", images=12)
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["crawl"].update(
        source="aligned", chunks=2, aligned={"path": "ffhq/images1024x1024", "metadata": "ffhq/ffhq-dataset-v2.json"}
    )
    config["filter"].update(automatic=False)
    config["pack"].update(val_fraction=0.0)  # the paper scored against all of FFHQ
    config["evaluate"] = {"generator": str(NVIDIA / "stylegan-32.pkl")}
    config["metrics"]["figures"].update(stochastic_draws=20, middle_max=8)  # the snapshot runs at 16² (lod 1.5)
    config["metrics"].update(fid={"num_fakes": 16}, mixing={"latents": [2], "num_fakes": 8}, batch=8, shards=2)
    config["metrics"]["ls"].update(num_samples=32, classifiers=[str(NVIDIA / "classifier-32.pkl")])
    (workdir / "evaluate.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(workdir, "--cores", "2", "--configfile", "evaluate.yaml", timeout=800, env={"OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stdout[-6000:]
    jobs = planned_jobs(run.stdout)
    assert {"import_generator", "metrics_ls_import", "crawl_download", "align", "pack", "figure"} <= jobs
    assert not jobs & {
        "train",
        "demo_photos",
        "metrics_ls_classifier",
        "metrics_fid_curve",
        "training_curves",
        "snapshot_sheet",
    }

    results = workdir / "results"
    imported = json.loads((results / "evaluate/nvidia.json").read_text())
    assert imported["kind"] == "snapshot"
    assert imported["source"]["sha256"] == fileio.sha256_file(workdir / NVIDIA / "stylegan-32.pkl")
    generator = str(results / "evaluate/generator.pt").removeprefix(f"{workdir}/")
    fid, kid, mix = (mr.read(results / f"metrics/{name}.json") for name in ("fid", "kid", "fid_mix2"))
    for record in (fid, kid, mix):
        assert record.status == mr.COMPUTED and record.value > 0 and record.snapshot == generator
    assert fid.num_reals == 12 and fid.settings["generated_resolution"] == 16  # the pickle's lod 1.5
    reals = json.loads((results / "metrics/reals.json").read_text())
    assert reals["settings"]["resolution"] == 32  # the network's final resolution, not train.network's

    ls, ppl = mr.read(results / "metrics/ls.json"), mr.read(results / "metrics/ppl.json")
    assert ls.status == mr.COMPUTED and set(ls.value) == {"z", "w"} and ls.settings["attributes"] == ["classifier-32"]
    assert ls.settings["classifiers"] == {
        "classifier-32": fileio.sha256_file(results / "metrics/ls/nvidia/classifier-32/classifier.pt")
    }
    assert ppl.status == mr.NOT_COMPUTED and "vgg16-397923af.pth" in ppl.reason

    report = snakemake(workdir, "--cores", "1", "--configfile", "evaluate.yaml", "--report", "report.html", timeout=300)
    assert report.returncode == 0, report.stdout[-3000:]
    page = (workdir / "report.html").read_text()
    assert "stylegan-32.pkl" in page and "no training in this run" in page  # the description names the network
    figures = sorted((results / "figures").glob("*.png"))
    assert {p.name for p in figures} == {
        "fig2_uncurated.png",
        "fig3_style_mixing.png",
        "fig4_stochastic_variation.png",
        "fig5_noise_layers.png",
        "fig8_truncation.png",
    }
    for path in (
        *figures,
        results / "report/metrics.html",
        results / "report/datasheet.html",
        results / "train/grid.png",
    ):
        assert base64.b64encode(path.read_bytes()).decode() in page, f"{path} is not in the report"
    datasheet = (results / "report/datasheet.html").read_text()
    assert "Author 3" in datasheet and "https://www.flickr.com/photos/owner3@N03/1003/" in datasheet
    assert "<td>ls</td>" in (results / "report/metrics.html").read_text()


def test_lint_is_clean_when_evaluating_a_published_network(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "repo")
    (workdir / "evaluate.yaml").write_text(
        yaml.safe_dump(
            {
                "evaluate": {"generator": str(NVIDIA / "stylegan-32.pkl")},
                "metrics": {"ls": {"classifiers": [str(NVIDIA / "classifier-32.pkl")]}},
            }
        )
    )
    run = snakemake(workdir, "--lint", "--configfile", "evaluate.yaml")
    assert run.returncode == 0, run.stdout


def test_nvidia_classifiers_are_found_by_attribute_in_files_and_folders(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    for name in ("celebahq-classifier-01-smiling.pkl", "celebahq-classifier-00-male.pkl", "notes.pkl"):
        (folder / name).touch()
    (tmp_path / "mine.pkl").touch()
    found = stylegan_classifier.nvidia_pickles((str(folder), str(tmp_path / "mine.pkl")))
    assert list(found) == ["male", "smiling", "mine"]  # NVIDIA's order; a folder's other pickles are not classifiers
    assert found["mine"] == tmp_path / "mine.pkl"
    with pytest.raises(StageError, match="both classify 'male'"):
        stylegan_classifier.nvidia_pickles((str(folder), str(folder / "celebahq-classifier-00-male.pkl")))
    with pytest.raises(StageError, match="metrics.ls.classifiers: .*absent does not exist"):
        stylegan_classifier.nvidia_pickles((str(tmp_path / "absent"),))
