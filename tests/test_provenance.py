"""Provenance from photo to model and back, on a real (tiny) run and a real takedown repack.

A small dataset is packed and a 16² model trained on it; a metric result and a
figure are written from the generator; then one photo is taken down and the
dataset repacked. Every artefact names the dataset it came from, `stylegan
dataset provenance` traces the photo and the generator, the report marks them
stale, and a resume on the repacked data stops unless told to continue.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

from stylegan import fileio, report, settings
from stylegan.cli import main
from stylegan.data.manifest import Manifest
from stylegan.data.versions import all_versions
from stylegan.distributed import Dist
from stylegan.errors import StageError
from stylegan.metrics import figures
from stylegan.metrics import result as mr
from stylegan.metrics.config import FigureSettings
from stylegan.model import files
from stylegan.model.provenance import png_provenance
from stylegan.train import checkpoint, lineage
from stylegan.train.config import TrainSettings
from stylegan.train.data import Reals
from stylegan.train.loop import new_state
from tests import training
from tests.faces import make_faces, run_pack


@dataclass(frozen=True)
class TakenDown:
    results: Path  # the workflow's results/ layout: dataset/, train/, metrics/, figures/
    before: str  # the dataset fingerprint the model trained on
    after: str  # the fingerprint after the takedown
    victim: str  # the photo taken down
    faces: int  # training faces before the takedown
    removed: list[str]  # its faces in the train split
    pages_before: tuple[str, str]  # training data page and metrics table before the takedown

    @property
    def manifest(self) -> Path:
        return self.results / "dataset" / "manifest.json"

    @property
    def generator(self) -> Path:
        return self.results / "train" / "run" / "generator.pt"


def report_pages(t: Path, generator: Path, manifest: Path, metric: Path) -> tuple[str, str]:
    report.training_data(generator, manifest, t / "training.html")
    report.metrics_table([metric], t / "metrics.html", manifest)
    return (t / "training.html").read_text(), (t / "metrics.html").read_text()


@pytest.fixture(scope="module")
def taken_down(tmp_path_factory: pytest.TempPathFactory) -> TakenDown:
    tmp = tmp_path_factory.mktemp("provenance")
    results = tmp / "results"
    kept = make_faces(tmp / "faces", photos=8, seed=4)
    fileio.write_jsonl(tmp / "kept.jsonl", kept)
    assert run_pack(results, tmp / "kept.jsonl") == 0
    manifest = results / "dataset" / "manifest.json"
    before = Manifest.read(manifest).fingerprint
    generator = results / "train" / "run" / "generator.pt"
    assert training.train(training.tiny(schedule={"total_kimg": 0.1}), manifest, generator.parent) == 0
    metric = results / "metrics" / "fid.json"
    mr.write(metric, mr.MetricResult(metric="fid", status=mr.COMPUTED, value=1.0, snapshot=str(generator), kimg=0.1))
    figures.write(
        "uncurated", generator, FigureSettings(uncurated=(2, 1), cell=16), results / "figures" / "fig2_uncurated.png"
    )
    pages_before = report_pages(tmp, generator, manifest, metric)

    (version,) = all_versions(manifest)
    trained = [f for f in version.faces if f["split"] == "train"]
    victim = trained[0]["photo_id"]
    fileio.write_jsonl(tmp / "kept.jsonl", [r for r in kept if r["photo_id"] != victim])  # what filter.optout does
    assert run_pack(results, tmp / "kept.jsonl") == 0
    return TakenDown(
        results,
        before,
        Manifest.read(manifest).fingerprint,
        victim,
        len(trained),
        sorted(f["face_id"] for f in trained if f["photo_id"] == victim),
        pages_before,
    )


def test_generator_checkpoints_and_snapshots_record_the_dataset(taken_down: TakenDown) -> None:
    run = taken_down.generator.parent
    expected = {"fingerprint": taken_down.before, "faces": taken_down.faces, "changes": []}
    assert files.load(taken_down.generator)["dataset"] == expected
    assert files.load_generator(taken_down.generator)[1]["dataset"] == expected
    for path in [*checkpoint.all_checkpoints(run), *files.all_snapshots(run)]:
        assert files.load(path)["dataset"] == expected, path
    assert taken_down.after != taken_down.before


def test_files_from_before_the_record_still_load(taken_down: TakenDown, tmp_path: Path) -> None:
    old = {k: v for k, v in files.load(taken_down.generator).items() if k != "dataset"}
    files.save(tmp_path / "old.pt", old)
    _, meta = files.load_generator(tmp_path / "old.pt")
    assert meta["dataset"] is None
    # a checkpoint without the record resumes; the switch is recorded with an unknown origin
    record = lineage.follow(None, taken_down.manifest, 100, allow_new=False)
    assert record["fingerprint"] == taken_down.after
    assert record["changes"] == [{"kimg": 0.1, "from": None, "to": taken_down.after, "faces": record["faces"]}]


def test_metric_results_and_figures_record_the_generator_and_its_dataset(taken_down: TakenDown) -> None:
    expected = {
        "generator": str(taken_down.generator),
        "generator_sha256": fileio.sha256_file(taken_down.generator),
        "dataset": files.load(taken_down.generator)["dataset"],
    }
    assert mr.read(taken_down.results / "metrics" / "fid.json").provenance == expected
    assert png_provenance(taken_down.results / "figures" / "fig2_uncurated.png") == [expected]


def provenance(*args: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["dataset", "provenance", *args]) in (0, None)
    return capsys.readouterr().out


def test_provenance_of_a_photo_names_shards_versions_generators_results_and_figures(
    taken_down: TakenDown, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--manifest", str(taken_down.manifest), "--results", str(taken_down.results)]
    gone = provenance("--id", taken_down.victim, *where, capsys=capsys)
    assert f"{taken_down.victim}: 0 face(s) in the current dataset {taken_down.after}" in gone
    assert f"dataset versions that include it: 1\n  {taken_down.before}" in gone
    assert f"  {taken_down.generator}\n" in gone and "checkpoints/ckpt-" in gone and "generators/generator-" in gone
    assert f"metric results of those generators: 1\n  {taken_down.results / 'metrics' / 'fid.json'}" in gone
    assert f"figures drawn from them: 1\n  {taken_down.results / 'figures' / 'fig2_uncurated.png'}" in gone

    (version,) = [v for v in all_versions(taken_down.manifest) if v.fingerprint == taken_down.after]
    staying = version.faces[0]
    kept = provenance("--id", staying["owner_id"], *where, capsys=capsys)
    owned = [f for f in version.faces if f["owner_id"] == staying["owner_id"]]
    assert f"{staying['owner_id']}: {len(owned)} face(s) in the current dataset" in kept
    assert f"  shard {staying['shard']}" in kept and "dataset versions that include it: 2" in kept


def test_provenance_of_a_generator_counts_faces_since_removed_and_lists_them_only_in_a_file(
    taken_down: TakenDown, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    asked = ["--generator", str(taken_down.generator), "--manifest", str(taken_down.manifest)]
    out = provenance(*asked, capsys=capsys)
    n = len(taken_down.removed)
    assert f"trained on dataset {taken_down.before} ({taken_down.faces} training faces)" in out
    assert f"current dataset {taken_down.after}: {n} of its faces since removed (removed on " in out
    assert "--removed-out" in out and not any(face in out for face in taken_down.removed)
    out = provenance(*asked, "--removed-out", str(tmp_path / "removed.txt"), capsys=capsys)
    assert (tmp_path / "removed.txt").read_text().split() == taken_down.removed
    assert not any(face in out for face in taken_down.removed)


def test_the_report_marks_training_and_metrics_stale_after_the_takedown(taken_down: TakenDown, tmp_path: Path) -> None:
    day = next(v for v in all_versions(taken_down.manifest) if v.fingerprint == taken_down.after).date[:10]
    note = (
        f"Trained on a dataset version that includes {len(taken_down.removed)} face(s) since removed (removed on {day})"
    )
    assert all("since removed" not in page for page in taken_down.pages_before)
    training_page, metrics_page = report_pages(
        tmp_path, taken_down.generator, taken_down.manifest, taken_down.results / "metrics" / "fid.json"
    )
    assert note in training_page and f"Trained on dataset {taken_down.before}" in training_page
    assert note in metrics_page.split("<table>")[0]  # on top of the table


def train_again(run: Path, manifest: Path, *flags: str, **train: object) -> subprocess.CompletedProcess[str]:
    s = training.tiny(schedule={"total_kimg": 0.2}, **train)
    command = [*training.command(s, manifest, run), *flags]
    return subprocess.run(
        command,
        cwd=training.REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(training.REPO)},
    )


def test_a_resume_on_a_repacked_dataset_stops_naming_both_fingerprints_unless_told(
    taken_down: TakenDown, tmp_path: Path
) -> None:
    run = shutil.copytree(taken_down.generator.parent, tmp_path / "run")
    last = checkpoint.latest(run)
    stopped = train_again(run, taken_down.manifest)
    assert stopped.returncode == 2, stopped.stdout + stopped.stderr  # a StageError
    message = stopped.stdout + stopped.stderr
    assert taken_down.before in message and taken_down.after in message and "--continue-on-new-data" in message
    assert checkpoint.latest(run) == last  # nothing trained on the new data

    went_on = train_again(run, taken_down.manifest, "--continue-on-new-data")
    assert went_on.returncode == 0, went_on.stdout + went_on.stderr
    record = files.load(run / "generator.pt")["dataset"]
    assert record["fingerprint"] == taken_down.after and record["faces"] == taken_down.faces - len(taken_down.removed)
    kimg = files.load(last)["progress"]["nimg"] / 1000
    assert record["changes"] == [
        {"kimg": kimg, "from": taken_down.before, "to": taken_down.after, "faces": record["faces"]}
    ]
    assert lineage.fingerprints(record) == [taken_down.before, taken_down.after]


def test_a_level_change_that_meets_a_repacked_dataset_stops_or_records_the_switch(tmp_path: Path) -> None:
    """The loop re-opens the shards at each level change; a repack in between is caught there too."""
    kept = make_faces(tmp_path / "faces", photos=8, seed=5)
    fileio.write_jsonl(tmp_path / "kept.jsonl", kept)
    assert run_pack(tmp_path, tmp_path / "kept.jsonl") == 0
    manifest = tmp_path / "dataset" / "manifest.json"
    before = Manifest.read(manifest).fingerprint
    streams = {}
    for allow in (False, True):
        s = settings.load(TrainSettings, {**training.tiny(), "continue_on_new_data": allow}, "train")
        streams[allow] = Reals(manifest, s, new_state(s, Dist(0, 1, torch.device("cpu"))))
        streams[allow].next(8, 8, 0)  # the 8² level opens the shards
        assert streams[allow].st.dataset["fingerprint"] == before
    fileio.write_jsonl(tmp_path / "kept.jsonl", [r for r in kept if r["photo_id"] != kept[0]["photo_id"]])
    assert run_pack(tmp_path, tmp_path / "kept.jsonl") == 0
    after = Manifest.read(manifest).fingerprint
    with pytest.raises(StageError, match=f"at 0.048 kimg: it trained on dataset {before} .* now describes {after}"):
        streams[False].next(16, 8, 48)
    streams[True].next(16, 8, 48)
    assert streams[True].st.dataset["changes"] == [
        {"kimg": 0.048, "from": before, "to": after, "faces": streams[True].st.dataset["faces"]}
    ]


def test_retrain_on_takedown_starts_the_run_over_on_the_new_data(taken_down: TakenDown, tmp_path: Path) -> None:
    run = shutil.copytree(taken_down.generator.parent, tmp_path / "run")
    fresh = train_again(run, taken_down.manifest, retrain_on_takedown=True)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert files.load(run / "generator.pt")["dataset"]["changes"] == []
    assert all(
        files.load(p)["dataset"]["fingerprint"] == taken_down.after
        for p in [*checkpoint.all_checkpoints(run), *files.all_snapshots(run)]
    )
    assert json.loads((run / "log.jsonl").read_text().splitlines()[0])["tick"] == 1  # the log starts over too


def test_a_version_record_is_needed_to_judge_staleness(taken_down: TakenDown, tmp_path: Path) -> None:
    shutil.copytree(taken_down.results / "dataset", tmp_path / "dataset", ignore=shutil.ignore_patterns("versions"))
    with pytest.raises(StageError, match="re-run `stylegan dataset pack`"):
        report.training_data(taken_down.generator, tmp_path / "dataset" / "manifest.json", tmp_path / "t.html")


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_takedown_after_training_marks_the_generator_stale_and_the_switch_plans_a_retrain(tmp_path: Path) -> None:
    """Through the real rules on the shortened demo: train, take a photo down, re-run."""
    from tests.test_pack_workflow import run_directory

    config, optout = run_directory(tmp_path)
    tiny = training.tiny(schedule={"total_kimg": 0.1})
    for section in ("network", "schedule", "speed", "checkpoint"):
        config["train"][section].update(tiny[section])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    page = tmp_path / "results/report/training_data.html"
    run = snakemake_in(tmp_path, str(page.relative_to(tmp_path)))
    assert "(Rule: train)" in run or "rule train:" in run
    assert "since removed" not in page.read_text()

    manifest = tmp_path / "results/dataset/manifest.json"
    (version,) = all_versions(manifest)
    victim = next(f["photo_id"] for f in version.faces if f["split"] == "train")
    removed = [f for f in version.faces if f["photo_id"] == victim and f["split"] == "train"]
    optout.write_text(optout.read_text() + f"{victim}\n")
    generator = tmp_path / "results/train/generator.pt"
    stamp = generator.stat().st_mtime_ns
    rerun = snakemake_in(tmp_path, str(page.relative_to(tmp_path)))
    assert "(Rule: pack)" in rerun or "rule pack:" in rerun
    assert generator.stat().st_mtime_ns == stamp  # not retrained by default
    assert f"includes {len(removed)} face(s) since removed (removed on " in page.read_text()

    asked = subprocess.run(
        [sys.executable, "-m", "stylegan.cli", "dataset", "provenance", "--generator", "results/train/generator.pt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(training.REPO)},
    )
    assert f"{len(removed)} of its faces since removed" in asked.stdout, asked.stderr

    # mtime only: the switch is a param too, and a changed param alone would re-run train
    plan = snakemake_in(tmp_path, str(page.relative_to(tmp_path)), "-n", "--rerun-triggers", "mtime")
    assert not re.search(r"^train\s+1$", plan, re.MULTILINE), plan[-3000:]
    config["train"]["retrain_on_takedown"] = True
    (tmp_path / "retrain.yaml").write_text(yaml.safe_dump(config))
    plan = snakemake_in(
        tmp_path, str(page.relative_to(tmp_path)), "-n", "--rerun-triggers", "mtime", "--configfile", "retrain.yaml"
    )  # last: --configfile takes every argument after it
    assert re.search(r"^train\s+1$", plan, re.MULTILINE), plan[-3000:]


def snakemake_in(workdir: Path, *args: str) -> str:
    """The workflow run in `workdir` with its config.yaml; its log (Snakemake writes to stderr)."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(training.REPO / "Snakefile"), "--cores", "2", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done.stdout + done.stderr
