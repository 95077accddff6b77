"""The metrics stage through the real Snakemake rules: crawl to FID, KID, Table 2, the Fig. 7 curve, PPL and LS.

A shortened demo (8 photos, 3 kimg of training with a network snapshot every tick,
a few generated images per metric, two shards) runs offline on the CPU. A second
run of the curve reuses every snapshot's result.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stylegan.metrics import result as mr
from workflow_copy import copy_workflow, snakemake


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_demo_dag_computes_fid_kid_mixing_the_curve_and_ls(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "repo")
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["demo"]["photos"] = 8
    config["align"].update(transform_size=256, workers=1)
    config["train"]["schedule"].update(total_kimg=3, network_snapshot_ticks=1)
    config["metrics"].update(fid={"num_fakes": 16}, mixing={"latents": [2, 4], "num_fakes": 8},
                             curve={"num_fakes": 8, "every": 2}, batch=8, shards=2)
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
    again = snakemake(workdir, "--cores", "2", "--configfile", "short.yaml", "--forcerun", "metrics_fid_curve",
                      timeout=600, env={"OMP_NUM_THREADS": "1"})
    assert again.returncode == 0, again.stdout[-3000:]
    assert {p: p.stat().st_mtime_ns for p in (metrics / "curve").glob("*.json")} == stamps  # resumed, not redone
