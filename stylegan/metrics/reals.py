"""The real images' feature statistics, computed once per dataset, detector and settings, and cached."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stylegan.data.manifest import Manifest
from stylegan.metrics.inception import Inception
from stylegan.metrics.shards import block_seed
from stylegan.metrics.stats import STATS_FORMAT, FeatureStats
from stylegan.model.sampling import full_float32

log = logging.getLogger(__name__)


def real_choice(size: int, num: int, seed: int) -> np.ndarray:
    """Which training images: min(num, size) of them drawn at random, in index order."""
    rng = np.random.default_rng(block_seed(seed, "reals", 0))
    return np.sort(rng.permutation(size)[:num])


def reals_key(manifest: Path, detector: Inception, settings: dict[str, Any]) -> str:
    """The cache key: the training shards' sha256s (from the manifest), the detector's file, kind and
    preprocessing (resize, normalisation, their version), and the settings."""
    shards = sorted((e.path, e.sha256, e.count) for e in Manifest.read(manifest).split("train"))
    blob = json.dumps(
        {
            "format": STATS_FORMAT,
            "shards": shards,
            "detector": detector.sha256,
            "kind": detector.kind,
            "preprocessing": detector.preprocessing,
            "settings": settings,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def real_batches(
    manifest: Path, resolution: int, chosen: np.ndarray, xflip: bool, seed: int, batch: int, workers: int
) -> Iterator[torch.Tensor]:
    """The chosen training images at `resolution` as uint8 batches, in the chosen order.

    With `xflip` each is mirrored with probability 0.5, as SG1's fid50k does for a
    mirror-augmented dataset such as FFHQ (NVlabs/stylegan `training/misc.py`
    apply_mirror_augment); the reader draws the flips from (seed, index).
    """
    from torch.utils.data import DataLoader, Subset

    from stylegan.data.dataset import ShardDataset

    dataset = ShardDataset(
        manifest, resolution=resolution, split="train", dtype="uint8", xflip=xflip, seed=block_seed(seed, "reals", 1)
    )
    loader = DataLoader(Subset(dataset, chosen.tolist()), batch_size=batch, num_workers=workers, shuffle=False)
    yield from loader


@full_float32()
def real_stats(
    manifest: Path,
    resolution: int,
    detector: Inception,
    num: int,
    xflip: bool,
    keep: int,
    batch: int,
    seed: int,
    cache: Path,
    workers: int = 0,
) -> tuple[FeatureStats, dict[str, Any]]:
    """Statistics of up to `num` training images, computed once per dataset and detector.

    The cache file is named by `reals_key`, so a repacked shard, another detector
    or other settings never reuse old statistics; it is written atomically.
    """
    from stylegan.data.dataset import ShardDataset

    size = len(ShardDataset(manifest, resolution=resolution, split="train", dtype="uint8"))
    settings = {"resolution": resolution, "num": num, "xflip": xflip, "keep": keep, "seed": seed}
    key = reals_key(manifest, detector, settings)
    path = cache / f"reals-{key[:24]}.npz"
    if path.is_file():
        stats, meta = FeatureStats.load(path)
        if meta.get("key") == key:
            log.info("real statistics: cache hit %s (%d images)", path, stats.count)
            return stats, meta
    chosen = real_choice(size, num, seed)
    if len(chosen) < num:
        log.warning(
            "the train split has %d images at %d², fewer than the %d asked for: using all of them",
            size,
            resolution,
            num,
        )
    stats = FeatureStats(keep=keep)
    for images in real_batches(manifest, resolution, chosen, xflip, seed, batch, workers):
        stats.add(detector(images))
    meta = {"key": key, "settings": settings, "available": size, "detector": detector.record, "path": str(path)}
    stats.save(path, meta)
    log.info("real statistics: %d of %d training images at %d² -> %s", stats.count, size, resolution, path)
    return stats, {"format": STATS_FORMAT, **meta}
