"""Perceptual path length (the paper's Section 4.1, Tables 3-4), as SG1 measures it.

NVlabs/stylegan `metrics/perceptual_path_length.py`, for each of four variants
(z or w space, full paths or end points):

- pairs of z ~ N(0, I) (even and odd rows), t ~ U[0, 1) for full paths and t = 0
  for end points; in Z, slerp(z0, z1, t) and slerp(z0, z1, t + ε) (unit-norm output)
  then the mapping; in W, lerp of the mapped w0, w1 on every layer; no truncation;
- both images of a pair rendered with the same noise maps;
- the face crop rows 3c:7c, columns 2c:6c with c = H // 8, then a box downsample
  to 256² by the factor the *cropped* size needs (SG1; ADA's port takes the factor
  from the full size and lands at 128² for 1024² models);
- float pixels in [0, 255], never quantised, LPIPS-VGG16 distance times 1/ε²;
- the mean of the distances between the 1st percentile (lower) and the 99th (higher).

Shards compute the distances of a sample range and keep one float per pair; the
merge filters and averages. Sample i's latents, t and noise come from its block's
seed, so split-and-merged equals unsplit.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from stylegan import fileio
from stylegan.errors import StageError
from stylegan.metrics import lpips_vgg
from stylegan.metrics import result as mr
from stylegan.metrics.arrays import load_arrays, save_arrays
from stylegan.metrics.config import PPL_VARIANTS as VARIANTS
from stylegan.metrics.config import MetricsSettings
from stylegan.metrics.images import box_downsample
from stylegan.metrics.shards import Block, check_tiling, partial_meta, shard_blocks
from stylegan.model.files import load_generator
from stylegan.model.networks import Generator
from stylegan.model.sampling import (
    at_final_resolution,
    draw_noise,
    fixed_noise,
    full_float32,
)
from stylegan.settings import as_dict

log = logging.getLogger(__name__)

CURVE_VARIANTS = ("w_full", "w_end")  # Fig. 7's path lengths: W, full paths and end points, as the paper plots
CROP_TARGET = 256  # SG1 box-downsamples the crop while it is larger than this
PARTIAL_FORMAT = "stylegan-ppl-partial/1"
MIN_RESOLUTION = 32


# --- the maths -----------------------------------------------------------------


def _unit(x: Tensor) -> Tensor:
    return x / x.norm(dim=-1, keepdim=True)


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of the directions of a and b; the result is unit-norm, as SG1's."""
    a, b = _unit(a), _unit(b)
    d = (a * b).sum(dim=-1, keepdim=True).clamp(-1.0, 1.0)
    p = t * torch.acos(d)
    c = _unit(b - d * a)
    return _unit(a * torch.cos(p) + c * torch.sin(p))


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    return a + (b - a) * t


def crop_face(images: Tensor) -> Tensor:
    """SG1's face crop: rows 3c:7c and columns 2c:6c, c = H // 8 (a 4c x 4c square)."""
    c = images.shape[2] // 8
    return images[:, :, 3 * c : 7 * c, 2 * c : 6 * c]


def filtered_mean(distances: np.ndarray) -> tuple[float, int]:
    """Mean of the distances within [1st percentile (lower), 99th (higher)], and how many that kept."""
    lo = np.percentile(distances, 1, method="lower")
    hi = np.percentile(distances, 99, method="higher")
    kept = distances[(distances >= lo) & (distances <= hi)]
    return float(kept.mean()), int(kept.size)


# --- generation ------------------------------------------------------------------


def segment_ws(G: Generator, variant: str, z0: Tensor, z1: Tensor, t: Tensor, epsilon: float) -> Tensor:
    """Per-layer w [2N, layers, dlatent]: rows 2i and 2i+1 are the ends of pair i's segment."""
    if variant.startswith("z"):
        ends = torch.stack([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)], dim=1)
        w = G.map(ends.flatten(0, 1))
    else:
        w0, w1 = G.map(z0), G.map(z1)
        w = torch.stack([lerp(w0, w1, t), lerp(w0, w1, t + epsilon)], dim=1).flatten(0, 1)
    return w.unsqueeze(1).repeat(1, G.num_layers, 1)


@torch.no_grad()
@full_float32()
def block_distances(
    G: Generator, meta: dict[str, Any], distance: lpips_vgg.LpipsVgg16, variant: str, block: Block, epsilon: float
) -> np.ndarray:
    """d(segment ends) / ε² for the block's pairs, float64 [count], in full float32 (TF32 off)."""
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(block.seed)
    z = torch.randn(2 * block.count, G.settings.latent_size, generator=gen).to(device)
    t = torch.rand(block.count, 1, generator=gen).to(device)
    if variant.endswith("end"):
        t = torch.zeros_like(t)
    noise_gen = torch.Generator(device=device).manual_seed(block.seed)
    maps = [m.repeat_interleave(2, dim=0) for m in draw_noise(G, block.count, noise_gen)]
    ws = segment_ws(G, variant, z[0::2], z[1::2], t, epsilon)
    with fixed_noise(G, maps):
        images = G.synthesize(ws, res=meta["resolution"], alpha=meta["alpha"], noise="const").float()
    images = at_final_resolution(images, G)
    images = (box_downsample(crop_face(images), CROP_TARGET) + 1) * (255 / 2)
    d = distance(images[0::2], images[1::2]) * (1 / epsilon**2)
    return d.double().cpu().numpy()


# --- jobs --------------------------------------------------------------------------


def backbone_path(s: MetricsSettings, resources: Path) -> Path:
    """Where the VGG16 file is: metrics.ppl.vgg16, or the default place under paths.resources."""
    return Path(s.ppl.vgg16) if s.ppl.vgg16 else Path(resources) / "metrics" / lpips_vgg.VGG16_FILE


def variant_settings(s: MetricsSettings, variant: str, generator: Path) -> dict[str, Any]:
    """What a variant's distances depend on; partials and the result record it."""
    return {
        "variant": variant,
        "num_samples": s.ppl.num_samples,
        "epsilon": s.ppl.epsilon,
        "batch": s.batch,
        "seed": s.seed,
        "generator_sha256": fileio.sha256_file(generator),
        "truncation": None,
        "crop": True,
        "crop_target": CROP_TARGET,
        "distance": "lpips-vgg16-v0.1",
    }


def shard_distances(
    s: MetricsSettings, G: Generator, meta: dict[str, Any], distance: lpips_vgg.LpipsVgg16, variant: str, index: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """The distances of shard `index` of `metrics.shards` of one variant, and the range they cover."""
    if variant not in VARIANTS:
        raise StageError(f"ppl variant {variant!r}: expected one of {', '.join(VARIANTS)}")
    if G.settings.resolution < MIN_RESOLUTION:
        raise StageError(
            f"perceptual path length needs a generator of at least {MIN_RESOLUTION}² (its face crop "
            f"is half the side and VGG16 pools it four times); this one is {G.settings.resolution}²"
        )
    blocks = shard_blocks(s.ppl.num_samples, s.batch, index, s.shards, s.seed, f"ppl_{variant}")
    d = [block_distances(G, meta, distance, variant, b, s.ppl.epsilon) for b in blocks]
    return (np.concatenate(d) if d else np.zeros(0)), partial_meta(s.ppl.num_samples, s.batch, index, s.shards, {})


def save_partial(out: Path, distances: np.ndarray, info: dict[str, Any]) -> None:
    save_arrays(out, {"distances": distances}, info, PARTIAL_FORMAT)


def shard(
    s: MetricsSettings, generator: Path, backbone: Path, variant: str, index: int, out: Path, device: torch.device
) -> None:
    """One shard of one variant, from the generator and VGG16 files, written as .npz."""
    start = time.time()
    G, meta = load_generator(generator, device)
    distance = lpips_vgg.load(backbone, device)
    d, info = shard_distances(s, G, meta, distance, variant, index)
    save_partial(
        out,
        d,
        {
            **info,
            "settings": variant_settings(s, variant, generator),
            "seconds": time.time() - start,
            "device": mr.device_name(device),
            "backbone": {"path": str(backbone), "sha256": lpips_vgg.VGG16_SHA256},
        },
    )
    log.info("ppl %s shard %d/%d: %d pairs in %.0f s", variant, index, s.shards, len(d), time.time() - start)


def load_partial(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """A shard's distances and record."""
    arrays, meta = load_arrays(path, PARTIAL_FORMAT, ("distances",), "path-length")
    return arrays["distances"], meta


def merged_variant(paths: list[Path]) -> tuple[np.ndarray, dict[str, Any]]:
    """One variant's distances in sample order, after checking the shards tile its samples."""
    loaded = sorted((load_partial(p) + (p,) for p in paths), key=lambda t: t[1]["range"][0])
    info = check_tiling([(meta, path) for _, meta, path in loaded])
    return np.concatenate([d for d, _, _ in loaded]), info


def missing_backbone(backbone: Path) -> str:
    """Why PPL is not computed without the VGG16 file, and how to supply it."""
    return (
        f"the VGG16 ImageNet weights ({lpips_vgg.VGG16_FILE}, sha256 {lpips_vgg.VGG16_SHA256}) are not at "
        f"{backbone}: download {lpips_vgg.VGG16_URL} to that path, or set metrics.ppl.vgg16 to the "
        "file, or set metrics.ppl.download true on a machine with a network, then rerun"
    )


def curve_settings(s: MetricsSettings, snapshot: Path) -> dict[str, Any]:
    """What a snapshot's Fig. 7 path lengths depend on."""
    return {
        **variant_settings(s, "curve", snapshot),
        "variant": list(CURVE_VARIANTS),
        "num_samples": s.curve.ppl_samples,
    }


def curve_point(
    s: MetricsSettings, snapshot: Path, distance: lpips_vgg.LpipsVgg16, device: torch.device
) -> mr.MetricResult:
    """Fig. 7's path lengths of one training snapshot: W full and end, `metrics.curve.ppl_samples` pairs
    each, the protocol of `result`, all in this job."""
    start = time.time()
    G, meta = load_generator(snapshot, device)
    one = dataclasses.replace(s, shards=1, ppl=dataclasses.replace(s.ppl, num_samples=s.curve.ppl_samples))
    values = {v: filtered_mean(shard_distances(one, G, meta, distance, v, 0)[0])[0] for v in CURVE_VARIANTS}
    log.info("%s (%.1f kimg): PPL %s", snapshot.name, meta["nimg"] / 1000, values)
    return mr.MetricResult(
        metric="ppl_curve",
        status=mr.COMPUTED,
        value=values,
        snapshot=str(snapshot),
        kimg=meta["nimg"] / 1000,
        num_fakes=s.curve.ppl_samples,
        settings=curve_settings(s, snapshot),
        seconds=time.time() - start,
        device=mr.device_name(device),
    )


def result(s: MetricsSettings, generator: Path, backbone: Path, partials: list[Path], out: Path) -> None:
    """The PPL record: four filtered means, or "not computed" when the VGG16 file is absent."""
    start = time.time()
    _, meta = load_generator(generator)
    common = {"snapshot": str(generator), "kimg": meta["nimg"] / 1000}
    if not partials:
        reason = missing_backbone(backbone)
        mr.write(
            out,
            mr.not_computed("ppl", generator, meta["nimg"] / 1000, reason, settings={"num_samples": s.ppl.num_samples}),
        )
        return
    by_variant: dict[str, list[Path]] = {}
    for path in partials:
        by_variant.setdefault(load_partial(path)[1]["settings"]["variant"], []).append(path)
    if sorted(by_variant) != sorted(VARIANTS):
        raise StageError(f"ppl shards cover variants {sorted(by_variant)}, expected {list(VARIANTS)}")
    values, kept, seconds, info = {}, {}, 0.0, {}
    for variant in VARIANTS:
        d, info = merged_variant(by_variant[variant])
        if info["settings"]["generator_sha256"] != fileio.sha256_file(generator):
            raise StageError(f"{by_variant[variant][0]}: computed from another {generator}; rerun the ppl shards")
        values[variant], kept[variant] = filtered_mean(d)
        seconds += info["seconds"]
    settings = {k: v for k, v in info["settings"].items() if k != "variant"}
    mr.write(
        out,
        mr.MetricResult(
            metric="ppl",
            status=mr.COMPUTED,
            value=values,
            num_fakes=int(info["num"]),
            detector=info["backbone"],
            settings={
                **settings,
                "kept_after_filter": kept,
                "shards": info["shards"],
                "generated_resolution": meta["resolution"],
                "ppl": as_dict(s.ppl),
            },
            seconds=seconds + time.time() - start,
            device=info["device"],
            **common,
        ),
    )
