"""The shard reader: same bytes as packed, any level, float range, x-flip, DataLoader workers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from stylegan import fileio
from stylegan.data.dataset import ShardDataset
from stylegan.errors import StageError
from tests.faces import packed_lzf_manifest


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return packed_lzf_manifest(tmp_path_factory.mktemp("reader"), seed=2)


def packed_rows(manifest: Path, split: str, r: int) -> list[np.ndarray]:
    """Every image of a split at level r, read straight from the shards in manifest order."""
    rows = []
    for entry in json.loads(manifest.read_text())["shards"]:
        if entry["split"] == split:
            with h5py.File(manifest.parent / entry["path"], "r") as h5:
                rows += list(h5[f"data{r}x{r}"][:])
    return rows


@pytest.mark.parametrize("split", ["train", "validation"])
@pytest.mark.parametrize("r", [64, 16, 4])
def test_reader_yields_the_packed_bytes(manifest: Path, split: str, r: int) -> None:
    data = ShardDataset(manifest, resolution=r, split=split, dtype="uint8")
    expected = packed_rows(manifest, split, r)
    assert len(data) == len(expected) > 0
    for i, image in enumerate(expected):
        item = data[i]
        assert item.dtype == torch.uint8 and tuple(item.shape) == (3, r, r)
        np.testing.assert_array_equal(item.numpy(), image)


def test_levels_and_index_mapping(manifest: Path) -> None:
    data = ShardDataset(manifest, split="train")
    doc = json.loads(manifest.read_text())
    assert data.resolutions == (4, 8, 16, 32, 64) and data.max_resolution == 64 == data.resolution
    assert len(data) == doc["counts"]["train"]
    first = [e for e in doc["shards"] if e["split"] == "train"][0]["count"]
    assert data.locate(first - 1) == (0, first - 1) and data.locate(first) == (1, 0)
    with pytest.raises(IndexError):
        data[len(data)]
    assert data.metadata(0)["face_id"] < data.metadata(1)["face_id"]  # in-shard order
    with pytest.raises(StageError, match="resolution 128"):
        ShardDataset(manifest, resolution=128)


def test_float_is_uint8_scaled_to_minus_one_one(manifest: Path) -> None:
    as_bytes = ShardDataset(manifest, resolution=32, dtype="uint8")
    as_float = ShardDataset(manifest, resolution=32, dtype="float")
    for i in range(len(as_float)):
        x = as_float[i]
        assert x.dtype == torch.float32 and -1.0 <= x.min() and x.max() <= 1.0
        torch.testing.assert_close(x, as_bytes[i].float() / 127.5 - 1.0)


def test_xflip_mirrors_about_half_and_changes_with_the_seed(manifest: Path) -> None:
    plain = ShardDataset(manifest, resolution=16, dtype="uint8")

    def flipped(seed: int) -> list[bool]:
        flip = ShardDataset(manifest, resolution=16, dtype="uint8", xflip=True, seed=seed)
        out = []
        for i in range(len(plain)):
            a, b = plain[i], flip[i]
            assert torch.equal(b, a) or torch.equal(b, a.flip(-1))
            out.append(not torch.equal(b, a))
        return out

    seed0 = flipped(7)
    assert flipped(7) == seed0  # reproducible
    seed1 = flipped(8)
    assert seed1 != seed0
    # The rate: n draws of a fair coin give n/2 +- 5 sqrt(n)/2 but for a chance of 6e-7;
    # with n >= 400 that interval excludes a 5% or a 95% rate by more than 10 sigma.
    draws = seed0 + seed1
    for seed in range(9, 9 + -(-400 // len(plain))):
        draws += flipped(seed)
    n = len(draws)
    assert n >= 400 and abs(sum(draws) - n / 2) < 5 * n**0.5 / 2, (sum(draws), n)


def test_unknown_or_empty_split_fails_clearly(manifest: Path, tmp_path: Path) -> None:
    with pytest.raises(StageError, match="split 'val': expected one of train, validation"):
        ShardDataset(manifest, split="val")
    doc = json.loads(manifest.read_text())
    doc["shards"] = [{**e, "path": str(manifest.parent / e["path"])} for e in doc["shards"] if e["split"] == "train"]
    fileio.write_json(tmp_path / "manifest.json", doc)
    assert len(ShardDataset(tmp_path / "manifest.json", split="train")) == doc["counts"]["train"]
    with pytest.raises(StageError, match="no validation images"):
        ShardDataset(tmp_path / "manifest.json", split="validation")


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_workers_read_the_same_as_the_main_process(manifest: Path, context: str) -> None:
    data = ShardDataset(manifest, resolution=32, dtype="float", xflip=True, seed=3)
    data[0]  # a handle opened in the parent must not be used by the workers
    serial = torch.stack([data[i] for i in range(len(data))])
    loader = DataLoader(data, batch_size=3, num_workers=2, multiprocessing_context=context)
    torch.testing.assert_close(torch.cat(list(loader)), serial, rtol=0, atol=0)


def copied_dataset(manifest: Path, dest: Path) -> tuple[Path, list[dict]]:
    """A copy of the packed dataset and its train shard entries, fewest images first."""
    shutil.copytree(manifest.parent, dest)
    entries = [e for e in json.loads(manifest.read_text())["shards"] if e["split"] == "train"]
    return dest / manifest.name, sorted(entries, key=lambda e: e["count"])


@pytest.mark.parametrize("direction", ["larger over smaller", "smaller over larger"])
def test_a_shard_swapped_for_another_is_refused_at_open(manifest: Path, tmp_path: Path, direction: str) -> None:
    """Before the check, the first served 2 of 11 images from the wrong shard, the second an h5py IndexError."""
    copy, entries = copied_dataset(manifest, tmp_path / "dataset")
    small, large = entries[0], entries[-1]
    assert small["count"] < large["count"]
    source, victim = (large, small) if direction == "larger over smaller" else (small, large)
    shutil.copyfile(copy.parent / source["path"], copy.parent / victim["path"])
    with pytest.raises(StageError, match=rf"{victim['path']}: \d+ bytes, manifest says {victim['bytes']}") as err:
        ShardDataset(copy)
    assert "stylegan dataset verify" in str(err.value) and "re-pack" in str(err.value)


def test_a_same_sized_stranger_is_refused_by_its_fingerprint(manifest: Path, tmp_path: Path) -> None:
    copy, entries = copied_dataset(manifest, tmp_path / "dataset")
    small, large = entries[0], entries[-1]
    shutil.copyfile(copy.parent / large["path"], copy.parent / small["path"])
    doc = json.loads(copy.read_text())
    for entry in doc["shards"]:  # as if the two files had the same size and count
        if entry["path"] == small["path"]:
            entry.update(bytes=large["bytes"], count=large["count"])
    fileio.write_json(copy, doc)
    with pytest.raises(StageError, match="content fingerprint differs"):
        ShardDataset(copy)
    for entry in doc["shards"]:  # and a manifest whose fingerprints match but whose count is wrong
        if entry["path"] == small["path"]:
            entry.update(fingerprint=large["fingerprint"], count=large["count"] - 1)
    fileio.write_json(copy, doc)
    with pytest.raises(StageError, match=rf"data4x4 has shape \({large['count']}, 3, 4, 4\), manifest says"):
        ShardDataset(copy)


def test_a_missing_shard_or_an_entry_without_a_fingerprint_fails_clearly(manifest: Path, tmp_path: Path) -> None:
    copy, entries = copied_dataset(manifest, tmp_path / "dataset")
    doc = json.loads(copy.read_text())
    del doc["shards"][0]["fingerprint"]
    fileio.write_json(copy, doc)
    with pytest.raises(StageError, match="lacks 'fingerprint'.*re-pack"):
        ShardDataset(copy, split=doc["shards"][0]["split"])
    shutil.copyfile(manifest, copy)
    (copy.parent / entries[0]["path"]).unlink()
    with pytest.raises(StageError, match=f"{entries[0]['path']}: the file is missing"):
        ShardDataset(copy, split="train")
