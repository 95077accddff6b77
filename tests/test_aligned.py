"""The aligned source: FFHQ-style aligned images go to filter and pack unchanged, with FFHQ's attribution.

Each stage runs through its real CLI command on an FFHQ-laid-out folder (`faces.ffhq_folder`):
the catalogue checks sizes and reads `ffhq-dataset-v2.json`; the download step checks the
images where they lie; align takes each image as its face without dlib; the filter, with
`automatic: false`, keeps the blurry and greyscale ones and still honours the opt-out list;
pack stores the very pixels of the files.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from faces import ffhq_folder, run_pack
from PIL import Image

from stylegan import cli, fileio
from stylegan.data import landmarks
from stylegan.data.crawl import aligned
from stylegan.data.crawl.config import AlignedSettings
from stylegan.data.manifest import Manifest, level_name
from stylegan.errors import StageError


def crawl_settings(root: Path, metadata: bool = True) -> dict:
    return {
        "source": "aligned",
        "chunks": 1,
        "workers": 2,
        "aligned": {
            "path": str(root / "images1024x1024"),
            "metadata": str(root / "ffhq-dataset-v2.json") if metadata else None,
        },
    }


def test_the_catalogue_takes_licence_and_author_from_ffhq_metadata(tmp_path: Path) -> None:
    meta = ffhq_folder(tmp_path, images=5, described=4)
    records = aligned.catalogue(
        AlignedSettings(str(tmp_path / "images1024x1024"), str(tmp_path / "ffhq-dataset-v2.json"))
    )
    assert [r["source_id"] for r in records] == [f"00000/{i:05d}.png" for i in range(5)]
    first = records[1]
    assert first == {
        **first,
        "photo_id": "aligned:00000/00001.png",
        "source": "aligned",
        "width": 64,
        "height": 64,
        "license_id": "4",
        "license_name": "Attribution License",
        "license_url": "https://creativecommons.org/licenses/by/2.0/",
        "owner_id": "owner1@N01",
        "owner_name": "Author 1",
        "page_url": meta["1"]["metadata"]["photo_url"],
        "title": "Photo 1",
        "date_uploaded": "2012-03-04",
    }
    assert [r["license_id"] for r in records] == ["2", "4", "10", "2", "unknown"]  # image 4 is not described
    assert records[4]["owner_name"] is None


@pytest.mark.parametrize(
    "odd, message",
    [
        ((64, 48), "00000/00003.png is 64x48; aligned images must be square"),
        ((32, 32), "00000/00003.png is 32², but 00000/00000.png is 64²; aligned images must all have one size"),
        ((48, 48), "00000/00003.png: output size 48: expected a power of two"),
    ],
)
def test_an_image_that_is_not_square_or_of_another_size_is_named(tmp_path: Path, odd, message) -> None:
    ffhq_folder(tmp_path, images=5)
    Image.new("RGB", odd).save(tmp_path / "images1024x1024/00000/00003.png")
    with pytest.raises(StageError, match=message.replace("(", r"\(")):
        aligned.catalogue(AlignedSettings(str(tmp_path / "images1024x1024")))


def run(*args: str) -> None:
    assert cli.main(list(args)) == 0


def test_aligned_images_reach_the_shards_unchanged_without_dlib(tmp_path: Path, monkeypatch) -> None:
    ffhq_folder(tmp_path, images=10)
    monkeypatch.setattr(
        landmarks, "finder", lambda *a: pytest.fail("the aligned source ran the face detector")
    )  # align runs in this process (workers 1)
    crawl, work = json.dumps(crawl_settings(tmp_path)), tmp_path / "work"
    run("crawl", "catalogue", "--settings", crawl, "--out", str(work / "catalogue.jsonl"))
    run(
        "crawl",
        "download",
        "--settings",
        crawl,
        "--catalogue",
        str(work / "catalogue.jsonl"),
        "--chunk",
        "0",
        "--store",
        str(work / "store"),
        "--out",
        str(work / "photos.jsonl"),
    )
    photos = fileio.read_jsonl(work / "photos.jsonl")
    assert {p["status"] for p in photos} == {"ok"} and not list((work / "store").rglob("*.png"))  # used in place
    run(
        "align",
        "--settings",
        json.dumps({"workers": 1, "output_size": 1024}),
        "--photos",
        str(work / "photos.jsonl"),
        "--images",
        str(work / "faces"),
        "--out",
        str(work / "faces.jsonl"),
        "--report",
        str(work / "report.json"),
    )
    faces = fileio.read_jsonl(work / "faces.jsonl")
    assert [(f["image"], f["output_size"], f["qsize"]) for f in faces] == [(p["path"], 64, 64.0) for p in photos]

    (work / "optout.txt").write_text("owner1@N01  # a takedown request by owner id\n")
    run(
        "filter",
        "--settings",
        json.dumps({"automatic": False, "optout": str(work / "optout.txt"), "workers": 1}),
        "--faces",
        str(work / "faces.jsonl"),
        "--kept",
        str(work / "kept.jsonl"),
        "--rejected",
        str(work / "rejected.jsonl"),
        "--summary",
        str(work / "summary.tsv"),
        "--sheets",
        str(work / "sheets"),
    )
    rejected = fileio.read_jsonl(work / "rejected.jsonl")
    assert {(r["filter"], r["owner_id"]) for r in rejected} == {("optout", "owner1@N01")} and len(rejected) == 3
    assert "greyscale\t0\toff (filter.automatic: false)" in (work / "summary.tsv").read_text()

    assert run_pack(work, work / "kept.jsonl", {"shards": 1, "val_fraction": 0.0, "licenses": ["2", "4", "10"]}) == 0
    manifest = Manifest.read(work / "dataset/manifest.json")
    assert manifest.resolution == 64 and manifest.counts == {"train": 7, "validation": 0}
    with h5py.File(manifest.path_of(manifest.shards[0]), "r") as h5:
        packed = dict(zip(h5["face_id"].asstr()[:], h5[level_name(64)][:]))
        authors = set(h5["author"].asstr()[:])
    for face in fileio.read_jsonl(work / "kept.jsonl"):
        source = np.asarray(Image.open(face["image"]).convert("RGB")).transpose(2, 0, 1)
        assert np.array_equal(packed[face["face_id"]], source), face["face_id"]
    assert authors == {"Author 0", "Author 2", "Author 3"}
