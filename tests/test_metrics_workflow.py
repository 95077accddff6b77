"""The demo DAG, crawl to report, through the real Snakemake rules, in one run.

A shortened demo (8 photos, 3 kimg of training that reaches 32² at 2 kimg with a
network snapshot every tick, a few generated images per metric, two shards, 20
noise draws for Fig. 4) runs offline on the CPU. Then:
- the metrics: FID, KID, Table 2, the Fig. 7 curve, PPL (stated as not computed
  without the VGG16 file) and LS; a second run of the curve reuses every snapshot's result;
- `snakemake --report` holds the datasheet, the filter contact sheets, the training
  curves, snapshot and sample grids, the paper's figures and the metrics table, each
  embedded byte for byte.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml
from workflow_copy import copy_workflow, snakemake

from stylegan.metrics import result as mr


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_demo_dag_computes_the_metrics_and_the_report_shows_everything(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "repo")
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["demo"]["photos"] = 8
    config["align"].update(transform_size=256, workers=1)
    config["train"]["schedule"].update(
        lod_training_kimg=0.5, lod_transition_kimg=0.5, total_kimg=3, network_snapshot_ticks=1
    )  # 32² at 2 kimg: every figure's band exists
    config["metrics"]["figures"]["stochastic_draws"] = 20
    config["metrics"].update(
        fid={"num_fakes": 16},
        mixing={"latents": [2, 4], "num_fakes": 8},
        curve={"num_fakes": 8, "every": 2},
        batch=8,
        shards=2,
    )
    config["metrics"]["ls"].update(num_samples=32, classifier={**config["metrics"]["ls"]["classifier"], "images": 400})
    (workdir / "short.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(workdir, "--cores", "2", "--configfile", "short.yaml", timeout=2100, env={"OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stdout[-6000:]

    metrics = workdir / "results/metrics"
    records = {name: mr.read(metrics / f"{name}.json") for name in ("fid", "kid", "fid_mix2", "fid_mix4", "fid_lowest")}
    for name, record in records.items():
        assert record.status == mr.COMPUTED and record.value is not None, name
        assert record.detector["sha256"] == config["metrics"]["inception"]["sha256"]
    assert records["fid"].num_fakes == 16 and records["fid"].settings["shards"] == 2
    assert records["fid"].num_reals == records["fid"].settings["reals_available"]  # fewer than 50,000: all
    assert records["fid"].kimg == pytest.approx(3.0, abs=0.05) and records["fid"].value > 0
    assert len(list((metrics / "partial").glob("fid-*.npz"))) == 2

    ppl, ls = mr.read(metrics / "ppl.json"), mr.read(metrics / "ls.json")  # no VGG16 file offline: PPL says why
    assert ppl.status == mr.NOT_COMPUTED and "vgg16-397923af.pth" in ppl.reason and "metrics.ppl.vgg16" in ppl.reason
    assert ls.status == mr.COMPUTED and set(ls.value) == {"z", "w"} and ls.num_fakes == 32
    assert ls.settings["shards"] == 2 and ls.settings["attributes"] == ["Mirrored", "Light_Background"]

    curve = json.loads((metrics / "fid_curve.json").read_text())
    snapshots = sorted((workdir / "results/train/run/generators").glob("generator-*.pt"))
    assert len(snapshots) >= 3 and curve["points"][-1]["snapshot"].endswith(snapshots[-1].name)
    assert len(curve["points"]) == len(snapshots[::2]) + (len(snapshots) % 2 == 0)
    assert records["fid_lowest"].value == min(p["fid"] for p in curve["points"])
    assert (workdir / "results/figures/fig7_fid_curve.png").read_bytes().startswith(b"\x89PNG")

    stamps = {p: p.stat().st_mtime_ns for p in (metrics / "curve").glob("*.json")}
    again = snakemake(
        workdir,
        "--cores",
        "2",
        "--configfile",
        "short.yaml",
        "--forcerun",
        "metrics_fid_curve",
        timeout=600,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert again.returncode == 0, again.stdout[-3000:]
    assert {p: p.stat().st_mtime_ns for p in (metrics / "curve").glob("*.json")} == stamps  # resumed, not redone

    report = snakemake(workdir, "--cores", "1", "--configfile", "short.yaml", "--report", "report.html", timeout=600)
    assert report.returncode == 0, report.stdout[-3000:]
    page = (workdir / "report.html").read_text()
    results = workdir / "results"
    sheets = sorted((results / "filter/contact_sheets").glob("*.png"))
    assert sheets, "the demo's filters rejected nothing, so there is no contact sheet to show"
    figures = sorted((results / "figures").glob("*.png"))  # Figs. 2-5 and 8, and Fig. 7 of the metrics
    assert {p.name for p in figures} >= {
        "fig2_uncurated.png",
        "fig3_style_mixing.png",
        "fig4_stochastic_variation.png",
        "fig5_noise_layers.png",
        "fig8_truncation.png",
        "fig7_fid_curve.png",
    }
    shown = [
        results / "report/datasheet.html",
        results / "report/training_curves.png",
        results / "report/snapshots.png",
        results / "report/metrics.html",
        results / "train/grid.png",
        *sheets,
        *figures,
    ]
    for path in shown:
        assert base64.b64encode(path.read_bytes()).decode() in page, f"{path} is not in the report"
    for text in (
        "Figures",
        "Dataset",
        "Training",
        "Metrics",
        "Fig. 3 of the CVPR 2019 paper, style mixing",
        "Filter contact sheets",
    ):
        assert text in page
    datasheet = (results / "report/datasheet.html").read_text()
    assert "<h2>Attribution</h2>" in datasheet and "<table>" in datasheet
    table = (results / "report/metrics.html").read_text()
    assert "<th>metric</th>" in table and "<td>fid</td>" in table and "<td>computed</td>" in table
    for name in ("ppl", "ls"):  # PPL's reason and LS's value reach the report's table
        assert f"<td>{name}</td>" in table
    assert "not computed" in table and "vgg16-397923af.pth" in table
