"""The takedown path through the real Snakemake rules: edit the opt-out list, re-run, done.

The list file is an input of `filter`, so editing it re-runs filter, pack, verify
and the datasheet, and nothing upstream; pack rewrites only the shards that held
the photo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["results/dataset/datasheet.md", "results/dataset/verify.json"]


def snakemake(workdir: Path) -> str:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "2", *TARGETS]
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def shard_photos(manifest: Path) -> dict[str, set[str]]:
    out = {}
    for entry in json.loads(manifest.read_text())["shards"]:
        with h5py.File(manifest.parent / entry["path"], "r") as h5:
            out[entry["path"]] = set(h5["photo_id"].asstr()[:])
    return out


def run_directory(workdir: Path, **folder: str) -> tuple[dict, Path]:
    """The demo config made small (8 photos, 3 shards), with an empty opt-out list: (config, list file).

    `folder` replaces `crawl.folder` (path and sidecar) to crawl the test's own photos.
    """
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["demo"]["photos"] = 8
    config["align"].update(transform_size=256, workers=1)
    config["pack"]["shards"] = 3
    config["filter"]["optout"] = "lists/optout.txt"
    config["crawl"]["folder"] = folder or config["crawl"]["folder"]
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    (workdir / "lists").mkdir()
    optout = workdir / "lists" / "optout.txt"
    optout.write_text("# takedown requests, one photo or owner id per line\n")
    return config, optout


@pytest.mark.slow
def test_optout_edit_and_rerun_removes_the_photo_everywhere(tmp_path: Path) -> None:
    _, optout = run_directory(tmp_path)
    snakemake(tmp_path)

    manifest = tmp_path / "results/dataset/manifest.json"
    before = shard_photos(manifest)
    victim = sorted(set().union(*before.values()))[0]
    stats = {p: os.stat(manifest.parent / p) for p in before}
    assert victim in (tmp_path / "results/dataset/datasheet.md").read_text()

    optout.write_text(optout.read_text() + f"{victim}\n")
    log = snakemake(tmp_path)
    assert "(Rule: align)" not in log and "(Rule: crawl" not in log
    assert "(Rule: filter)" in log and "(Rule: pack)" in log and "(Rule: dataset_card)" in log

    after = shard_photos(manifest)
    assert all(victim not in photos for photos in after.values())
    for path in after:
        held = victim in before.get(path, set())
        assert (os.stat(manifest.parent / path).st_mtime_ns == stats[path].st_mtime_ns) != held
    assert victim not in (tmp_path / "results/dataset/datasheet.md").read_text().split("## Attribution")[1]
    assert json.loads((tmp_path / "results/dataset/verify.json").read_text())["ok"] is True
    rejected = [json.loads(line) for line in (tmp_path / "results/filter/rejected.jsonl").read_text().splitlines()]
    assert {r["photo_id"] for r in rejected if r["filter"] == "optout"} == {victim}


OWNER = "31337@N05"  # holds demo photos 0, 2 and 5; the other five photos have owners of their own


@pytest.mark.slow
def test_optout_by_owner_id_removes_all_their_faces_and_rewrites_only_those_shards(tmp_path: Path) -> None:
    """A takedown by Flickr owner id, through Snakemake: every face of the owner's photos leaves every shard."""
    from stylegan.data.demo import DemoSettings, make_photos

    config, optout = run_directory(tmp_path, path="photos", sidecar="photos/licenses.json")  # the user's own folder
    sidecar = tmp_path / "photos" / "licenses.json"
    entries = make_photos(DemoSettings(photos=8), seed=config["seed"], sidecar=sidecar)
    owners = {}
    for index, name in enumerate(sorted(entries)):
        owners[f"folder:{name}"] = OWNER if index in (0, 2, 5) else f"{index}@N01"
        entries[name]["owner_id"] = owners[f"folder:{name}"]
    sidecar.write_text(json.dumps(entries))
    snakemake(tmp_path)

    manifest = tmp_path / "results/dataset/manifest.json"
    before = shard_photos(manifest)
    theirs = {photo for photo, owner in owners.items() if owner == OWNER}
    holding = {path for path, photos in before.items() if photos & theirs}
    assert theirs <= set().union(*before.values())  # every photo of the owner was packed
    assert len(holding) >= 2 and len(holding) < len(before)  # spread over shards, not in all of them
    stats = {p: os.stat(manifest.parent / p) for p in before}

    optout.write_text(optout.read_text() + f"{OWNER}  # asked on 2026-02-03\n")
    log = snakemake(tmp_path)
    assert "(Rule: align)" not in log and "(Rule: filter)" in log and "(Rule: pack)" in log

    after = shard_photos(manifest)
    assert not set().union(*after.values()) & theirs
    assert set().union(*after.values()) == set().union(*before.values()) - theirs  # nobody else's face went
    for path in before:
        if path in holding:
            assert path not in after or os.stat(manifest.parent / path).st_mtime_ns != stats[path].st_mtime_ns
        else:
            assert os.stat(manifest.parent / path).st_mtime_ns == stats[path].st_mtime_ns
            assert os.stat(manifest.parent / path).st_ino == stats[path].st_ino
    assert json.loads((tmp_path / "results/dataset/verify.json").read_text())["ok"] is True
    rejected = [json.loads(line) for line in (tmp_path / "results/filter/rejected.jsonl").read_text().splitlines()]
    assert {r["photo_id"] for r in rejected if r["filter"] == "optout"} == theirs
    assert all(r["owner_id"] == OWNER for r in rejected if r["filter"] == "optout")
