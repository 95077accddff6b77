"""Pack, verify and card on real HDF5 shards made from synthetic aligned faces."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from stylegan import cli, fileio
from stylegan.data import pack
from tests import faces
from tests.faces import PACK, SIZE, make_faces, run_pack

LEVELS = [64, 32, 16, 8, 4]


def box_pyramid(top: np.ndarray) -> list[np.ndarray]:
    """The reference chain (PGGAN `h5tool.py`), written independently: float64 reshape-means."""
    out, current = [], top.astype(np.float64)
    while current.shape[-1] > 4:
        c, h, w = current.shape
        current = current.reshape(c, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
        out.append(np.clip(np.rint(current), 0, 255).astype(np.uint8))
    return out


def documented_place(face_id: str, shards: int, val_fraction: float) -> tuple[str, int]:
    """The documented rule, from the hex digest: split by the first 16 hex digits over 16**16, shard by the next 16."""
    digest = hashlib.sha256(face_id.encode("utf-8")).hexdigest()
    split = "validation" if int(digest[:16], 16) / 16**16 < val_fraction else "train"
    return split, int(digest[16:32], 16) % shards


# Worked out by hand: (first 16 hex digits / 16**16, next 16 hex digits mod 3 and mod 64) of sha256(face id).
HAND_PLACES = {
    "flickr:100#0": (0.163508, 1, 40),  # sha256 29dbaad3bbfc30f9 1aa7c582d1817768...
    "flickr:100#1": (0.660070, 0, 18),  # a8fa5db509372cff ebebdb748237b7d2...
    "folder:demo_0003.jpg#0": (0.616363, 0, 7),  # 9dc9f18f0bc9e1cb 3276e5de84261047...
    "flickr:52345678901#2": (0.895728, 1, 30),  # e54e714c93b5f4a3 a3016c8a24d48e9e...
}


@pytest.mark.parametrize("face_id", sorted(HAND_PLACES))
def test_shard_placement_matches_the_documented_rule_by_hand(face_id: str) -> None:
    unit, mod3, mod64 = HAND_PLACES[face_id]
    assert pack.assign(face_id, 3, 0.25) == ("validation" if unit < 0.25 else "train", mod3)
    assert pack.assign(face_id, 64, 1 / 7) == ("validation" if unit < 1 / 7 else "train", mod64)
    assert pack.assign(face_id, 64, 0.0) == ("train", mod64)
    assert documented_place(face_id, 64, 0.25) == pack.assign(face_id, 64, 0.25)


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("pack")
    records = make_faces(tmp / "faces", photos=10)
    fileio.write_jsonl(tmp / "kept.jsonl", records)
    assert run_pack(tmp, tmp / "kept.jsonl") == 0
    manifest = tmp / "dataset" / "manifest.json"
    return {"tmp": tmp, "records": records, "manifest": manifest, "doc": json.loads(manifest.read_text())}


def shard_files(doc: dict, manifest: Path):
    for entry in doc["shards"]:
        with h5py.File(manifest.parent / entry["path"], "r") as h5:
            yield entry, h5


def test_layout_levels_chunks_compression(packed: dict) -> None:
    doc = packed["doc"]
    assert doc["levels"] == LEVELS and doc["resolution"] == SIZE
    for entry, h5 in shard_files(doc, packed["manifest"]):
        for r in LEVELS:
            data = h5[f"data{r}x{r}"]
            assert data.shape == (entry["count"], 3, r, r) and data.dtype == np.uint8
            assert data.chunks == (min(entry["count"], -(-128 // (3 * r * r))), 3, r, r)  # PGGAN h5tool.py
            assert data.compression == "gzip" and data.compression_opts == 4


def test_every_level_is_the_box_pyramid_of_the_top(packed: dict) -> None:
    for _, h5 in shard_files(packed["doc"], packed["manifest"]):
        for row in range(h5["data64x64"].shape[0]):
            expected = box_pyramid(h5["data64x64"][row])
            for r, level in zip(LEVELS[1:], expected):
                np.testing.assert_array_equal(h5[f"data{r}x{r}"][row], level)


def test_top_level_holds_the_aligned_pixels_and_attribution(packed: dict) -> None:
    by_id = {r["face_id"]: r for r in packed["records"]}
    seen = []
    for entry, h5 in shard_files(packed["doc"], packed["manifest"]):
        ids = list(h5["face_id"].asstr()[:])
        assert ids == sorted(ids)  # within a shard, by face id
        for row, face_id in enumerate(ids):
            record = by_id[face_id]
            assert documented_place(face_id, PACK["shards"], PACK["val_fraction"]) == (entry["split"], entry["index"])
            top = h5["data64x64"][row].transpose(1, 2, 0)
            assert hashlib.md5(np.ascontiguousarray(top).tobytes()).hexdigest() == record["md5"]
            assert h5["author"].asstr()[row] == record["owner_name"]
            assert h5["license_url"].asstr()[row] == record["license_url"]
            assert h5["page_url"].asstr()[row] == record["page_url"]
            assert h5["photo_id"].asstr()[row] == record["photo_id"]
        seen += ids
    assert len(seen) == len(set(seen)) == 18  # 20 faces less the 2 of the off-list photo


def test_no_licence_outside_the_allow_list_is_in_a_shard(packed: dict) -> None:
    for _, h5 in shard_files(packed["doc"], packed["manifest"]):
        assert set(h5["license_id"].asstr()[:]) <= set(PACK["licenses"])
    assert sorted(d["face_id"] for d in packed["doc"]["dropped"]) == ["flickr:103#0", "flickr:103#1"]


def test_manifest_sha256_counts_and_splits(packed: dict) -> None:
    doc = packed["doc"]
    for entry in doc["shards"]:
        path = packed["manifest"].parent / entry["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        assert path.stat().st_size == entry["bytes"]
    assert doc["counts"]["train"] + doc["counts"]["validation"] == 18
    assert doc["counts"]["validation"] >= 1 and {e["split"] for e in doc["shards"]} == {"train", "validation"}
    assert doc["settings"] == PACK


def test_verify_passes_then_reports_a_truncated_shard(packed: dict, tmp_path: Path) -> None:
    out = tmp_path / "verify.json"
    assert cli.main(["dataset", "verify", "--manifest", str(packed["manifest"]), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["ok"] is True
    copy = tmp_path / "dataset"
    os.system(f"cp -r {packed['manifest'].parent} {copy}")
    victim = copy / packed["doc"]["shards"][0]["path"]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    assert (
        cli.main(["dataset", "verify", "--manifest", str(copy / "manifest.json"), "--out", str(out), "--workers", "2"])
        == 1
    )
    report = json.loads(out.read_text())
    assert report["ok"] is False and report["problems"][0]["shard"] == packed["doc"]["shards"][0]["path"]
    assert "truncated" in report["problems"][0]["problem"]


def test_verify_reports_a_level_that_is_not_the_pyramid(packed: dict, tmp_path: Path) -> None:
    copy = tmp_path / "dataset"
    os.system(f"cp -r {packed['manifest'].parent} {copy}")
    doc = json.loads((copy / "manifest.json").read_text())
    entry = doc["shards"][0]
    with h5py.File(copy / entry["path"], "r+") as h5:
        h5["data8x8"][0] = 255 - h5["data8x8"][0]
    entry["bytes"] = (copy / entry["path"]).stat().st_size  # as if pack itself had written it so
    entry["sha256"] = hashlib.sha256((copy / entry["path"]).read_bytes()).hexdigest()
    fileio.write_json(copy / "manifest.json", doc)
    out = tmp_path / "verify.json"
    assert cli.main(["dataset", "verify", "--manifest", str(copy / "manifest.json"), "--out", str(out)]) == 1
    assert [p["problem"] for p in json.loads(out.read_text())["problems"]] == [
        "row 0: data8x8 is not the box pyramid of data64x64"
    ]


def test_rerun_rewrites_nothing_and_resumes_without_manifest(packed: dict) -> None:
    tmp, manifest = packed["tmp"], packed["manifest"]
    stats = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (tmp / "dataset" / "shards").glob("*.h5")}
    manifest.unlink()  # a run killed after its shards but before its manifest
    assert run_pack(tmp, tmp / "kept.jsonl") == 0
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (tmp / "dataset" / "shards").glob("*.h5")} == stats
    assert json.loads(manifest.read_text()) == packed["doc"]


def test_mixed_output_sizes_fail_clearly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    records = [
        faces.face_record(tmp_path / "f", "flickr:1", faces.picture("cup", 64)),
        faces.face_record(tmp_path / "f", "flickr:2", faces.picture("cup", 32)),
    ]
    fileio.write_jsonl(tmp_path / "kept.jsonl", records)
    assert run_pack(tmp_path, tmp_path / "kept.jsonl") == 2
    assert "different output sizes" in caplog.text and not (tmp_path / "dataset" / "manifest.json").exists()


def test_optout_removes_a_photo_and_rewrites_only_its_shards(tmp_path: Path) -> None:
    """Filter -> pack -> card; opt a photo out; again: its faces go, other shards stay byte-identical."""
    records = [r for r in make_faces(tmp_path / "faces", photos=8, seed=1) if r["license_id"] != "1"]
    fileio.write_jsonl(tmp_path / "000.jsonl", records)
    optout = tmp_path / "optout.txt"
    optout.write_text("# takedown requests\n")
    settings = {"sharpness_size": 64, "min_sharpness": 10.0, "max_hamming": 0, "optout": str(optout)}
    paths = {
        k: tmp_path / v
        for k, v in {
            "kept": "kept.jsonl",
            "rejected": "rejected.jsonl",
            "summary": "summary.tsv",
            "sheets": "sheets",
        }.items()
    }
    manifest, sheet = tmp_path / "dataset" / "manifest.json", tmp_path / "dataset" / "datasheet.md"

    def workflow() -> None:
        assert (
            cli.main(
                [
                    "filter",
                    "--settings",
                    json.dumps(settings),
                    "--faces",
                    str(tmp_path / "000.jsonl"),
                    *[a for k, v in paths.items() for a in (f"--{k}", str(v))],
                ]
            )
            == 0
        )
        assert run_pack(tmp_path, paths["kept"], {**PACK, "shards": 4}) == 0
        assert (
            cli.main(
                [
                    "dataset",
                    "card",
                    "--manifest",
                    str(manifest),
                    "--rejected",
                    str(paths["rejected"]),
                    "--out",
                    str(sheet),
                ]
            )
            == 0
        )

    workflow()
    before = {e["path"]: e for e in json.loads(manifest.read_text())["shards"]}
    stats = {p: os.stat(manifest.parent / p) for p in before}
    kept_photos = [r["photo_id"] for r in fileio.read_jsonl(paths["kept"])]
    victim = next(p for p in kept_photos if kept_photos.count(p) == 2)  # both of its faces packed
    holding = {
        e["path"]
        for e, h5 in shard_files(json.loads(manifest.read_text()), manifest)
        if victim in set(h5["photo_id"].asstr()[:])
    }
    assert holding and len(holding) < len(before) and f"{victim}#0" in sheet.read_text()

    optout.write_text(f"# takedown requests\n{victim}  # owner asked on 2026-01-02\n")
    workflow()
    after = {e["path"]: e for e in json.loads(manifest.read_text())["shards"]}
    for path, entry in after.items():
        h5_path = manifest.parent / path
        with h5py.File(h5_path, "r") as h5:
            assert victim not in set(h5["photo_id"].asstr()[:])
        unchanged = path not in holding
        assert (os.stat(h5_path).st_ino == stats[path].st_ino) == unchanged
        assert (os.stat(h5_path).st_mtime_ns == stats[path].st_mtime_ns) == unchanged
        assert (entry["sha256"] == before[path]["sha256"]) == unchanged
    assert sum(e["count"] for e in after.values()) == sum(e["count"] for e in before.values()) - 2
    assert victim not in sheet.read_text().split("## Attribution")[1]
    assert "| optout | 2 |" in sheet.read_text()


def test_a_shard_left_empty_is_removed(tmp_path: Path) -> None:
    records = make_faces(tmp_path / "faces", photos=3)[:4]  # photos 100 and 101, both allowed
    lone = next(
        r
        for r in records
        if sum(pack.assign(o["face_id"], 8, 0.0) == pack.assign(r["face_id"], 8, 0.0) for o in records) == 1
    )
    fileio.write_jsonl(tmp_path / "kept.jsonl", records)
    settings = {**PACK, "shards": 8, "val_fraction": 0.0}
    assert run_pack(tmp_path, tmp_path / "kept.jsonl", settings) == 0
    path = tmp_path / "dataset" / "shards" / pack.shard_name(*pack.assign(lone["face_id"], 8, 0.0))
    assert path.exists()
    fileio.write_jsonl(tmp_path / "kept.jsonl", [r for r in records if r is not lone])
    assert run_pack(tmp_path, tmp_path / "kept.jsonl", settings) == 0
    assert not path.exists()
    assert path.name not in (tmp_path / "dataset" / "manifest.json").read_text()


def test_no_face_left_fails_and_takes_the_old_shards_down(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Opting out the last faces must not leave them published in the previous shards."""
    fileio.write_jsonl(tmp_path / "kept.jsonl", make_faces(tmp_path / "faces", photos=2))
    assert run_pack(tmp_path, tmp_path / "kept.jsonl") == 0
    assert list((tmp_path / "dataset" / "shards").glob("*.h5"))
    fileio.write_jsonl(tmp_path / "kept.jsonl", [])
    assert run_pack(tmp_path, tmp_path / "kept.jsonl") == 2
    assert "no face with an allowed licence" in caplog.text
    assert not list((tmp_path / "dataset" / "shards").glob("*.h5"))
    assert not (tmp_path / "dataset" / "manifest.json").exists()


def test_an_image_changed_since_align_fails_and_leaves_no_bad_shard(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = make_faces(tmp_path / "faces", photos=3)
    faces.Image.fromarray(faces.picture("cup", SIZE)).save(records[1]["image"])  # not the pixels align hashed
    fileio.write_jsonl(tmp_path / "kept.jsonl", records)
    assert run_pack(tmp_path, tmp_path / "kept.jsonl") == 2
    assert "does not match its md5" in caplog.text
    bad = tmp_path / "dataset" / "shards" / pack.shard_name(*pack.assign(records[1]["face_id"], 3, 0.25))
    assert not bad.exists() and not list((tmp_path / "dataset").rglob("*.tmp"))  # other shards may be done: valid
    assert not (tmp_path / "dataset" / "manifest.json").exists()
