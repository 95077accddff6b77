"""The demo DAG, crawl to report, through the real Snakemake: `snakemake --report` holds the
datasheet, the filter contact sheets, the training curves, snapshot and sample grids, the
paper's figures and the metrics table, each embedded byte for byte.

The demo config is shortened (fewer and smaller photos, 3 kimg of training that reaches
32² at 2 kimg, 20 noise draws for Fig. 4) so that the whole DAG runs in a few minutes on 2 cores.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from workflow_copy import REPO, copy_workflow


def snakemake(workdir: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stderr


@pytest.mark.slow
def test_demo_report_holds_dataset_training_figures_and_metrics(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "repo")
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["demo"]["photos"] = 8
    config["align"].update(transform_size=256, workers=1)
    config["train"]["schedule"].update(lod_training_kimg=0.5, lod_transition_kimg=0.5, total_kimg=3)  # 32² at 2 kimg
    config["metrics"]["figures"]["stochastic_draws"] = 20
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir)
    snakemake(workdir, "--report", "report.html")
    page = (workdir / "report.html").read_text()

    results = workdir / "results"
    sheets = sorted((results / "filter/contact_sheets").glob("*.png"))
    assert sheets, "the demo's filters rejected nothing, so there is no contact sheet to show"
    figures = sorted((results / "figures").glob("*.png"))  # Figs. 2-5 and 8, and Fig. 7 of the metrics
    assert {p.name for p in figures} >= {"fig2_uncurated.png", "fig3_style_mixing.png",
                                         "fig4_stochastic_variation.png", "fig5_noise_layers.png",
                                         "fig8_truncation.png"}
    shown = [results / "report/datasheet.html", results / "report/training_curves.png",
             results / "report/snapshots.png", results / "report/metrics.html", results / "train/grid.png",
             *sheets, *figures]
    for path in shown:
        assert base64.b64encode(path.read_bytes()).decode() in page, f"{path} is not in the report"
    for text in ("Figures", "Dataset", "Training", "Metrics", "Paper Fig. 3, style mixing", "Filter contact sheets"):
        assert text in page
    datasheet = (results / "report/datasheet.html").read_text()
    assert "<h2>Attribution</h2>" in datasheet and "<table>" in datasheet
    table = (results / "report/metrics.html").read_text()
    assert "<th>metric</th>" in table and "<td>fid</td>" in table and "<td>computed</td>" in table
