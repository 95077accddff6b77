"""The filter stage on synthetic aligned faces: every filter, lists, dupes, sheets, summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylegan import cli, fileio
from stylegan.data import filter as face_filter
from tests import faces

SIZE = 64
SETTINGS = {
    "sharpness_size": 64,
    "min_sharpness": 100.0,
    "min_chroma": 0.04,
    "max_upscale": 1.0,
    "min_eye_ratio": 0.12,
    "max_roll": 45.0,
    "max_hamming": 6,
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One filter run over a chunk holding one face per outcome, through the CLI."""
    tmp = tmp_path_factory.mktemp("filter")
    img = tmp / "faces"
    pic = {name: faces.picture(name, SIZE) for name in faces.CROPS}
    chunk0 = [
        faces.face_record(img, "flickr:1", pic["astronaut"]),  # kept
        faces.face_record(img, "flickr:2", pic["chelsea"], qsize=250.0),  # a copy of flickr:3's face, smaller
        faces.face_record(img, "flickr:3", faces.near_copy(pic["chelsea"]), qsize=500.0),  # kept: the larger copy
        faces.face_record(img, "flickr:4", faces.blurred(pic["coffee"])),
        faces.face_record(img, "flickr:5", faces.greyscale(pic["suit"])),
        faces.failed_record("flickr:6"),
    ]
    chunk1 = [
        faces.face_record(img, "flickr:7", pic["rocket"], qsize=40.0),  # below 64 / 1.0
        faces.face_record(img, "flickr:8", pic["flag"], eye_ratio=0.05),
        faces.face_record(img, "flickr:9", pic["cup"], roll=70.0),
        faces.face_record(img, "flickr:10", pic["cat_ear"], k=1),  # excluded by face id
        faces.face_record(img, "flickr:11", pic["coffee"]),  # opted out by photo id
        faces.face_record(img, "flickr:12", pic["suit"], owner_id="owner-gone"),  # opted out by owner
        faces.failed_record("flickr:13", "unreadable"),
        faces.face_record(img, "flickr:14", faces.near_copy(pic["coffee"]), qsize=800.0),  # a copy of opted-out 11
    ]
    fileio.write_jsonl(tmp / "000.jsonl", chunk0)
    fileio.write_jsonl(tmp / "001.jsonl", chunk1)
    (tmp / "exclude.txt").write_text("# reviewed by hand\nflickr:10#1\n\n")
    (tmp / "optout.txt").write_text("flickr:11   # takedown 2026-01\nowner-gone\n")
    settings = {**SETTINGS, "exclude": str(tmp / "exclude.txt"), "optout": str(tmp / "optout.txt")}
    out = {
        "kept": tmp / "kept.jsonl",
        "rejected": tmp / "rejected.jsonl",
        "summary": tmp / "summary.tsv",
        "sheets": tmp / "sheets",
    }
    code = cli.main(
        [
            "filter",
            "--settings",
            json.dumps(settings),
            "--faces",
            str(tmp / "000.jsonl"),
            str(tmp / "001.jsonl"),
            *[a for k, v in out.items() for a in (f"--{k}", str(v))],
        ]
    )
    return {
        "code": code,
        **out,
        "kept_records": fileio.read_jsonl(out["kept"]),
        "rejected_records": {r["face_id"]: r for r in fileio.read_jsonl(out["rejected"])},
    }


def test_every_filter_rejects_its_face_with_name_value_threshold(run: dict) -> None:
    assert run["code"] == 0
    rejected = run["rejected_records"]
    assert {k: r["filter"] for k, r in rejected.items()} == {
        "flickr:2#0": "duplicate", "flickr:4#0": "blurry", "flickr:5#0": "greyscale", "flickr:7#0": "too_small",
        "flickr:8#0": "landmarks", "flickr:9#0": "landmarks", "flickr:10#1": "exclude", "flickr:11#0": "optout",
        "flickr:12#0": "optout", "flickr:14#0": "duplicate",
    }  # fmt: skip
    assert rejected["flickr:4#0"]["value"] < 100.0 == rejected["flickr:4#0"]["threshold"]
    assert rejected["flickr:5#0"]["value"] == 0.0
    assert rejected["flickr:7#0"]["value"] == 40.0 and rejected["flickr:7#0"]["threshold"] == 64.0
    assert rejected["flickr:8#0"]["value"]["eye_ratio"] == pytest.approx(0.05, abs=0.01)
    assert rejected["flickr:9#0"]["value"]["roll"] == pytest.approx(70.0, abs=1.0)
    assert rejected["flickr:10#1"]["value"] == "flickr:10#1"
    assert rejected["flickr:12#0"]["value"] == "owner-gone"
    # a rejected record is the face record, unchanged, plus the three fields
    assert rejected["flickr:4#0"]["md5"] and rejected["flickr:4#0"]["owner_name"] == "Author of flickr:4"


def test_near_duplicate_keeps_the_larger_source_copy(run: dict) -> None:
    dupe = run["rejected_records"]["flickr:2#0"]
    assert dupe["value"]["of"] == "flickr:3#0" and dupe["value"]["bits"] <= 6
    assert {r["face_id"] for r in run["kept_records"]} == {"flickr:1#0", "flickr:3#0"}


def test_a_copy_of_an_opted_out_face_goes_with_it(run: dict) -> None:
    assert run["rejected_records"]["flickr:14#0"]["value"]["of"] == "flickr:11#0"


def test_kept_records_are_unchanged_and_only_ok(run: dict) -> None:
    kept = run["kept_records"]
    assert all(r["status"] == "ok" and "filter" not in r for r in kept)
    assert kept[0]["landmarks"] == faces.landmarks(0.24 * 400.0)


def test_summary_counts_each_outcome(run: dict) -> None:
    rows = {line.split("\t")[0]: line.split("\t")[1] for line in run["summary"].read_text().splitlines()[1:]}
    assert rows["records"] == "14" and rows["kept"] == "2"
    assert rows["upstream:no_face"] == "1" and rows["upstream:unreadable"] == "1"
    assert (
        rows["optout"],
        rows["exclude"],
        rows["too_small"],
        rows["landmarks"],
        rows["blurry"],
        rows["greyscale"],
        rows["duplicate"],
    ) == ("2", "1", "1", "2", "1", "1", "2")


def test_contact_sheet_per_rejecting_filter(run: dict) -> None:
    sheets = {p.stem: Image.open(p) for p in run["sheets"].glob("*.png")}
    assert set(sheets) == {"optout", "exclude", "too_small", "landmarks", "blurry", "greyscale", "duplicate"}
    assert sheets["landmarks"].width == 2 * 96  # two faces side by side, 96 px cells
    # the sheet shows the face: its first cell is the greyscale face itself
    cell = np.asarray(sheets["greyscale"].convert("RGB"))[:96, :96].astype(int)
    assert np.abs(cell[..., 0] - cell[..., 1]).max() <= 1


def test_missing_list_fails_and_writes_nothing(tmp_path: Path) -> None:
    fileio.write_jsonl(
        tmp_path / "000.jsonl", [faces.face_record(tmp_path / "img", "flickr:1", faces.picture("cup", SIZE))]
    )
    settings = json.dumps({**SETTINGS, "optout": str(tmp_path / "typo.txt")})
    code = cli.main(
        [
            "filter",
            "--settings",
            settings,
            "--faces",
            str(tmp_path / "000.jsonl"),
            "--kept",
            str(tmp_path / "k.jsonl"),
            "--rejected",
            str(tmp_path / "r.jsonl"),
            "--summary",
            str(tmp_path / "s.tsv"),
            "--sheets",
            str(tmp_path / "sheets"),
        ]
    )
    assert code == 2 and not (tmp_path / "k.jsonl").exists()


def test_an_opted_out_face_whose_image_is_gone_is_still_rejected(tmp_path: Path) -> None:
    """A takedown may delete the files before filter re-runs: the face goes, the run does not fail."""
    records = [
        faces.face_record(tmp_path / "img", "flickr:1", faces.picture("cup", SIZE)),
        faces.face_record(tmp_path / "img", "flickr:2", faces.picture("rocket", SIZE)),
    ]
    Path(records[1]["image"]).unlink()
    fileio.write_jsonl(tmp_path / "000.jsonl", records)
    (tmp_path / "optout.txt").write_text("flickr:2\n")
    out = {
        "kept": tmp_path / "k.jsonl",
        "rejected": tmp_path / "r.jsonl",
        "summary": tmp_path / "s.tsv",
        "sheets": tmp_path / "sheets",
    }
    settings = json.dumps({**SETTINGS, "optout": str(tmp_path / "optout.txt")})
    args = ["filter", "--settings", settings, "--faces", str(tmp_path / "000.jsonl")]
    args += [a for k, v in out.items() for a in (f"--{k}", str(v))]
    assert cli.main(args) == 0
    assert [r["face_id"] for r in fileio.read_jsonl(out["kept"])] == ["flickr:1#0"]
    assert [(r["face_id"], r["filter"]) for r in fileio.read_jsonl(out["rejected"])] == [("flickr:2#0", "optout")]
    assert (out["sheets"] / "optout.png").is_file()
    records[1]["image"] = str(tmp_path / "also-gone.png")  # a face that is not withdrawn must still fail loudly
    fileio.write_jsonl(tmp_path / "000.jsonl", records)
    (tmp_path / "optout.txt").write_text("")
    assert cli.main(args) == 2


def test_unknown_setting_is_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    code = cli.main(
        [
            "filter",
            "--settings",
            '{"min_sharpnes": 3}',
            "--faces",
            "x",
            "--kept",
            "k",
            "--rejected",
            "r",
            "--summary",
            "s",
            "--sheets",
            "d",
        ]
    )
    assert code == 2 and "filter.min_sharpnes" in caplog.text


def test_measures_respond_to_what_they_measure() -> None:
    pic = faces.picture("coffee", SIZE)
    assert face_filter.sharpness(faces.blurred(pic, 1.0), 64) < face_filter.sharpness(pic, 64)
    assert face_filter.chroma(faces.greyscale(pic)) == 0.0 < face_filter.chroma(pic)
    near = bin(face_filter.phash(pic) ^ face_filter.phash(faces.near_copy(pic))).count("1")
    other = bin(face_filter.phash(pic) ^ face_filter.phash(faces.picture("rocket", SIZE))).count("1")
    assert near <= 2 < 20 <= other
