"""The pack stage: kept faces into multi-resolution HDF5 shards and a manifest.

Layout (tkarras/progressive_growing_of_gans `h5tool.py` HDF5Exporter): one dataset `data{r}x{r}` per level
from the output size down to 4², uint8 NxCxrxr, chunks of ceil(128 / (C r²))
images (one image at r >= 8), uncompressed by default (gzip, lzf and Blosc2 on request). Each lower level is the
2x2 box mean of the previous *unquantized* float level, rounded once per level.
Attribution travels with the pixels: every shard holds each image's ids,
licence, author and URLs (as NVlabs/ffhq-dataset's README "Metadata" section).

Faces go to a shard and a split by a hash of their face id, so the assignment
never depends on which other faces exist: removing one photo changes only the
shards that held its faces. Each shard carries a fingerprint of what it holds
(face ids, pixel md5s, metadata, the settings that shape its bytes); a shard
whose fingerprint is unchanged is not rewritten, which also resumes a killed run.
Each new dataset version is recorded by its faces' ids (`stylegan.data.versions`), so
a generator trained on it can still be traced after a takedown.

Licences outside `pack.licenses` are dropped, never packed, and listed in the
manifest's `dropped` with a warning: the allow-list is the last gate, and one
stray record must not stop a takedown re-pack from shipping. With no face left
at all, pack fails, after removing the old shards and manifest: a takedown of
the last faces must not leave them published.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import math
import re
from pathlib import Path
from typing import Any, Literal

import h5py
import hdf5plugin
import numpy as np
from PIL import Image
from tqdm import tqdm

from stylegan import fileio
from stylegan import settings as settings_mod
from stylegan.data import versions
from stylegan.data.manifest import CHANNELS, FORMAT, METADATA, Manifest, ShardEntry, level_name
from stylegan.errors import StageError
from stylegan.settings import setting

log = logging.getLogger(__name__)

MIN_LEVEL = 4  # levels from 4² (G's 4x4 const block, SG's smallest TFRecord r02) up to the output size
CHUNK_BYTES = 128  # PGGAN h5tool.py: chunk = ceil(128 / (C r²)) images
BATCH_BYTES = 256 << 20  # images per write batch: about this much top-level pixel data
Compression = Literal["none", "lzf", "gzip", "blosc2-lz4", "blosc2-zstd"]
BLOSC2_LEVEL = 5  # hdf5plugin.Blosc2's default clevel
SHARD_NAME = re.compile(r"^(train|validation)-\d{5}\.h5$")


@dataclasses.dataclass(frozen=True)
class PackSettings:
    """The `pack` config section."""

    shards: int = setting(64, "shard files per split; faces go to one by a hash of their id", ge=1, le=99999)
    workers: int = setting(
        2,
        "processes writing shards at once, and checking them in dataset_verify (both jobs' threads and cpus_per_task)",
        ge=1,
    )
    val_fraction: float = setting(
        1 / 7,
        "share of faces in the validation split, by hash of face id (1/7, as "
        "FFHQ's 10,000 validation images of 70,000)",
        ge=0,
        lt=1,
    )
    # Uncompressed, as SG's FFHQ TFRecords (273 GB): benchmarks/dataset.py measured the
    # training reader 65x (256²) and 103x (1024²) faster than a zip of PNGs, every codec 2-9x.
    compression: Compression = setting(
        "none",
        "HDF5 compression of the image levels: `none` (fastest reader, raw size: 4/3 of the top level, "
        "about 294 GB for FFHQ at 1024²), `lzf`, `gzip` (PGGAN's, about 0.7 of raw), `blosc2-lz4`, "
        "`blosc2-zstd`",
    )
    gzip_level: int = setting(4, "gzip level when compression is gzip (PGGAN h5tool.py: 4)", ge=0, le=9)
    licenses: tuple[str, ...] = setting(
        ("2", "4", "8", "9", "10", "public-domain"),
        "licence ids allowed in shards (FFHQ's Flickr ids, NVlabs/ffhq-dataset README, and the demo's public "
        "domain); faces with others are dropped and listed in the manifest",
        length=(1, None),
        unique=True,
    )


def levels(resolution: int) -> list[int]:
    """Every level of a shard, largest first: resolution, resolution/2, ..., 4."""
    if resolution < MIN_LEVEL or resolution & (resolution - 1):
        raise StageError(f"output size {resolution}: expected a power of two >= {MIN_LEVEL}")
    return [resolution >> k for k in range(int(math.log2(resolution // MIN_LEVEL)) + 1)]


def pyramid(image: np.ndarray) -> list[np.ndarray]:
    """CHW uint8 image -> every level as CHW uint8, largest first (PGGAN h5tool.py chained float 2x2 box).

    The chain runs in float32 on unquantized levels; only the stored copy of
    each level is rounded, as PGGAN's `h5tool.py` and StyleGAN's TFRecords do.
    """
    current = image.astype(np.float32)
    out = [image]
    while current.shape[-1] > MIN_LEVEL:
        current = (
            current[:, 0::2, 0::2] + current[:, 0::2, 1::2] + current[:, 1::2, 0::2] + current[:, 1::2, 1::2]
        ) * 0.25
        out.append(np.clip(np.rint(current), 0, 255).astype(np.uint8))
    return out


def assign(face_id: str, shards: int, val_fraction: float) -> tuple[str, int]:
    """(split, shard index) of a face, from its id alone: stable across runs and removals.

    From the SHA-256 of the UTF-8 face id: its first 8 bytes, big-endian, over 2**64
    give a number in [0, 1), validation below `val_fraction`; its next 8 bytes,
    big-endian, modulo `shards` give the shard.
    """
    digest = hashlib.sha256(face_id.encode("utf-8")).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64
    split = "validation" if unit < val_fraction else "train"
    return split, int.from_bytes(digest[8:16], "big") % shards


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.h5"


def metadata_row(record: dict[str, Any]) -> dict[str, str]:
    """The strings stored beside one image; missing values are empty strings."""
    return {name: "" if record.get(key) is None else str(record[key]) for name, key in METADATA}


def fingerprint(rows: list[dict[str, str]], resolution: int, settings: PackSettings) -> str:
    """What a shard's bytes depend on: its images (by md5), their metadata and the layout."""
    layout = {
        "format": FORMAT,
        "resolution": resolution,
        "compression": settings.compression,
        "gzip_level": settings.gzip_level if settings.compression == "gzip" else None,
    }
    text = json.dumps({"layout": layout, "rows": rows}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_image(record: dict[str, Any], resolution: int) -> np.ndarray:
    """The aligned face as CHW uint8, checked against its recorded size and pixel md5."""
    try:
        with Image.open(record["image"]) as img:
            pixels = np.ascontiguousarray(np.asarray(img.convert("RGB")))
    except OSError as err:
        raise StageError(f"face {record['face_id']}: cannot read {record['image']!r}: {err}") from None
    if pixels.shape != (resolution, resolution, CHANNELS):
        raise StageError(f"face {record['face_id']}: image is {pixels.shape}, expected {resolution}x{resolution}x3")
    if record.get("md5") and hashlib.md5(pixels.tobytes()).hexdigest() != record["md5"]:
        raise StageError(f"face {record['face_id']}: {record['image']} does not match its md5; re-run align")
    return pixels.transpose(2, 0, 1)


def compression_filter(settings: PackSettings) -> dict[str, Any]:
    """h5py `create_dataset` arguments for the configured codec.

    Blosc2 runs byte shuffle before LZ4 or Zstd; a shard written with it needs
    hdf5plugin to read, which this module imports. gzip and lzf are HDF5's own.
    """
    if settings.compression.startswith("blosc2-"):
        cname = settings.compression.removeprefix("blosc2-")
        return dict(hdf5plugin.Blosc2(cname=cname, clevel=BLOSC2_LEVEL, filters=hdf5plugin.Blosc2.SHUFFLE))
    return {
        "none": {},
        "lzf": {"compression": "lzf"},
        "gzip": {"compression": "gzip", "compression_opts": settings.gzip_level},
    }[settings.compression]


def write_shard(
    path: Path, records: list[dict[str, Any]], resolution: int, split: str, settings: PackSettings, print_: str
) -> None:
    """Write one shard atomically: every level, the metadata, and the fingerprint attrs."""
    count = len(records)
    compression = compression_filter(settings)
    batch = max(1, BATCH_BYTES // (CHANNELS * resolution * resolution))  # PGGAN h5tool.py: RAM-buffered flushes
    with fileio.atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        datasets = []
        for r in levels(resolution):
            chunk = min(count, math.ceil(CHUNK_BYTES / (CHANNELS * r * r)))  # PGGAN h5tool.py
            datasets.append(
                h5.create_dataset(
                    level_name(r),
                    shape=(count, CHANNELS, r, r),
                    maxshape=(None, CHANNELS, r, r),
                    dtype=np.uint8,
                    chunks=(chunk, CHANNELS, r, r),
                    **compression,
                )
            )
        for start in range(0, count, batch):
            images = [pyramid(load_image(rec, resolution)) for rec in records[start : start + batch]]
            for level, dataset in enumerate(datasets):
                dataset[start : start + len(images)] = np.stack([image[level] for image in images])
        text = h5py.string_dtype("utf-8")
        rows = [metadata_row(rec) for rec in records]
        for name, _ in METADATA:
            h5.create_dataset(name, data=[row[name] for row in rows], dtype=text)
        h5.attrs.update(
            {"fingerprint": print_, "split": split, "count": count, "resolution": resolution, "format": FORMAT}
        )


def shard_fingerprint(path: Path) -> str | None:
    """The fingerprint a shard on disk says it holds, or None if it is absent or unreadable."""
    try:
        with h5py.File(path, "r") as h5:
            return str(h5.attrs["fingerprint"])
    except (OSError, KeyError):
        return None


def group(records: list[dict[str, Any]], settings: PackSettings) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Records per (split, shard), each shard ordered by face id."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for record in sorted(records, key=lambda r: r["face_id"]):
        groups.setdefault(assign(record["face_id"], settings.shards, settings.val_fraction), []).append(record)
    return dict(sorted(groups.items()))


def allowed(
    records: list[dict[str, Any]], licenses: tuple[str, ...]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split records into those whose licence is allowed and a report of the dropped."""
    keep, dropped = [], []
    for record in records:
        if str(record.get("license_id")) in licenses:
            keep.append(record)
        else:
            dropped.append(
                {
                    "face_id": record["face_id"],
                    "photo_id": record.get("photo_id"),
                    "license_id": record.get("license_id"),
                    "reason": "licence not in pack.licenses",
                }
            )
    for entry in dropped:
        log.warning("dropped %s: licence %r is not in pack.licenses", entry["face_id"], entry["license_id"])
    return keep, dropped


def resolution_of(records: list[dict[str, Any]]) -> int:
    """The one output size every face shares; mixed sizes cannot share a shard layout."""
    sizes = {record.get("output_size") for record in records}
    if len(sizes) != 1:
        raise StageError(f"faces have different output sizes {sorted(map(str, sizes))}; re-run align with one size")
    return int(sizes.pop())


def pack(settings: PackSettings, faces: Path, shards: Path, manifest: Path) -> Manifest:
    """Pack the kept faces; rewrite only shards whose contents changed. Returns the manifest."""
    records = [r for r in fileio.read_jsonl(faces) if r.get("status") == "ok"]
    records, dropped = allowed(records, settings.licenses)
    if not records:  # nothing may ship: a takedown of the last faces must still take the old shards down
        _remove_obsolete(shards, set(), manifest.parent)
        manifest.unlink(missing_ok=True)
        raise StageError(f"{faces}: no face with an allowed licence to pack; previous shards and manifest removed")
    ids = [r["face_id"] for r in records]
    if len(set(ids)) != len(ids):
        raise StageError(f"{faces}: face ids repeat; each face must appear once")
    resolution = resolution_of(records)
    previous = _previous_entries(manifest)
    groups = {
        _relative(shards / shard_name(split, index), manifest.parent): (split, index, members)
        for (split, index), members in group(records, settings).items()
    }
    jobs = [
        (shards, manifest.parent, split, index, members, resolution, settings, previous.get(rel))
        for rel, (split, index, members) in groups.items()
    ]
    with concurrent.futures.ProcessPoolExecutor(min(settings.workers, len(jobs))) as pool:
        results = list(
            tqdm(pool.map(_pack_shard, *zip(*jobs)), total=len(jobs), desc="pack", unit="shard", disable=None)
        )
    entries = tuple(entry for entry, _ in results)
    written = sum(rewrote for _, rewrote in results)
    document = Manifest(
        resolution=resolution,
        levels=tuple(levels(resolution)),
        settings=settings_mod.as_dict(settings),
        shards=entries,
        dropped=tuple(dropped),
    )
    document.write(manifest)
    versions.publish(
        manifest,
        document,
        [versions.face_row(r, split, rel) for rel, (split, _, members) in groups.items() for r in members],
    )
    _remove_obsolete(shards, {e.path for e in entries}, manifest.parent)
    log.info(
        "pack: %s images in %d shards, %d rewritten, %d dropped", document.counts, len(entries), written, len(dropped)
    )
    return document


def _pack_shard(
    shards: Path,
    base: Path,
    split: str,
    index: int,
    members: list[dict[str, Any]],
    resolution: int,
    settings: PackSettings,
    old: ShardEntry | None,
) -> tuple[ShardEntry, bool]:
    """One manifest entry, and whether the shard file had to be (re)written.

    A shard is rewritten only if the fingerprint in its attrs differs from what
    it should now hold; `old` is its entry in the previous manifest, if any.
    Runs in a worker process: shards are independent, and HDF5 compression is
    single-threaded, so a pack scales with processes.
    """
    path = shards / shard_name(split, index)
    rel = _relative(path, base)
    print_ = fingerprint([metadata_row(r) for r in members], resolution, settings)
    rewrite = shard_fingerprint(path) != print_
    if rewrite:
        write_shard(path, members, resolution, split, settings, print_)
        digest = fileio.sha256_file(path)
    elif old and old.fingerprint == print_ and old.bytes == path.stat().st_size:
        digest = old.sha256  # unchanged since the last manifest: no need to read it again
    else:
        digest = fileio.sha256_file(path)  # written by a run killed before its manifest
    entry = ShardEntry(
        path=rel,
        split=split,
        index=index,
        count=len(members),
        sha256=digest,
        bytes=path.stat().st_size,
        fingerprint=print_,
    )
    return entry, rewrite


def _relative(path: Path, base: Path) -> str:
    """A shard's path relative to the manifest's folder, so a dataset can move as a whole."""
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def _previous_entries(manifest: Path) -> dict[str, ShardEntry]:
    """The last manifest's shard entries by path; none if it is missing or unreadable."""
    try:
        return {e.path: e for e in Manifest.read(manifest).shards}
    except StageError:
        return {}


def _remove_obsolete(shards: Path, current: set[str], base: Path) -> None:
    """Delete shard files this pack no longer lists (their faces were all removed)."""
    for path in shards.glob("*.h5"):
        if SHARD_NAME.match(path.name) and _relative(path, base) not in current:
            log.info("removing obsolete shard %s", path)
            path.unlink()
