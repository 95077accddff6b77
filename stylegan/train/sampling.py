"""Sampling a trained generator: the generator file, loading any snapshot, rendering, grids.

Training writes snapshots and the final generator with these functions, and
everything that reads a generator (`stylegan generate`, the metrics, the figures)
loads it with `load_generator`, so none of them imports the training loop.
z for seed n is torch's normal draw from a generator seeded n, so a seed names
the same face in every tool.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from stylegan import settings
from stylegan.errors import StageError
from stylegan.settings import as_dict
from stylegan.train import checkpoint
from stylegan.train.config import ScheduleSettings
from stylegan.train.layers import NoiseInjection
from stylegan.train.networks import Generator, NetworkSettings
from stylegan.train.schedule import level_at


def state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's state on the CPU, so checkpoints load on any machine."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def generator_file(G_ema: Generator, network: NetworkSettings, nimg: int, resolution: int,
                   alpha: float) -> dict[str, Any]:
    """The trained model alone: G_ema's weights, its settings and the level it was trained to."""
    return {"format": checkpoint.GENERATOR_FORMAT, "network": as_dict(network), "G_ema": state_dict(G_ema),
            "nimg": nimg, "resolution": resolution, "alpha": alpha}


def load_generator(path, device: str | torch.device = "cpu") -> tuple[Generator, dict[str, Any]]:
    """G_ema from a generator file or a training checkpoint, with the level it was trained to.

    `meta` holds `resolution` and `alpha` (the level the images come out at) and
    `nimg` (images shown when it was saved). A file that is neither, or whose
    weights do not fit its own settings, is a StageError naming the file.
    """
    state = checkpoint.load(path)
    try:
        if state["format"] == checkpoint.TRAINING_FORMAT:
            network = state["settings"]["network"]
            schedule = settings.load(ScheduleSettings, state["settings"]["schedule"], "train.schedule")
            level = level_at(schedule, network["resolution"], state["progress"]["nimg"] / 1000)
            meta = {"resolution": level.resolution, "alpha": level.alpha, "nimg": state["progress"]["nimg"]}
        else:
            network = state["network"]
            meta = {k: state[k] for k in ("resolution", "alpha", "nimg")}
        G = Generator(settings.load(NetworkSettings, network, "network"))
        G.load_state_dict(state["G_ema"])
    except (KeyError, TypeError, RuntimeError) as err:
        raise StageError(f"{path}: not a generator this version can load ({type(err).__name__}: {err})") from None
    return G.to(device).eval().requires_grad_(False), meta


def latents(seeds: list[int], size: int) -> torch.Tensor:
    """z [len(seeds), size], one fixed normal draw per seed."""
    return torch.stack([torch.randn(size, generator=torch.Generator().manual_seed(n)) for n in seeds])


@torch.no_grad()
def render(G: Generator, z: torch.Tensor, res: int, alpha: float, *, psi: float = 1.0, cutoff: int | None = None,
           noise: str | Sequence[str] = "const", chunk: int = 16) -> torch.Tensor:
    """Images [N,3,res,res] in [-1,1] on the CPU, from latents in chunks of `chunk`.

    noise "const" uses the stored noise maps, so snapshots over training are comparable;
    "random" draws fresh maps from torch's global generator; a sequence gives one mode
    per synthesis layer.
    """
    device = next(G.parameters()).device
    return torch.cat([G(z[i:i + chunk].to(device), res=res, alpha=alpha, psi=psi, cutoff=cutoff,
                        noise=noise).float().cpu() for i in range(0, len(z), chunk)])


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1,1] float images to uint8 by round-and-clamp, as SG's convert_images_to_uint8
    (NVlabs/stylegan `dnnlib/tflib/tfutil.py`: x*127.5 + 127.5, rounded, saturated)."""
    return (images * 127.5 + 127.5).round().clamp(0, 255).to(torch.uint8)


def grid_png(images: torch.Tensor, columns: int, size: int) -> bytes:
    """Tile [N,3,h,w] images in [-1,1] into a PNG, each nearest-upscaled to `size`."""
    from PIL import Image

    if columns < 1:
        raise StageError(f"a grid needs at least one column, got {columns}")
    if images.shape[-1] < size:
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="nearest")
    n, c, h, w = images.shape
    rows = math.ceil(n / columns)
    canvas = torch.full((rows * h, columns * w, c), -1.0)
    for i, img in enumerate(images):
        r, k = divmod(i, columns)
        canvas[r * h:(r + 1) * h, k * w:(k + 1) * w] = img.permute(1, 2, 0)
    pixels = to_uint8(canvas).numpy()
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    return buffer.getvalue()


def noise_layers(G: Generator) -> list[NoiseInjection]:
    """G's noise inputs, from 4² up."""
    return [m for m in G.modules() if isinstance(m, NoiseInjection)]


def draw_noise(G: Generator, count: int, gen: torch.Generator) -> list[torch.Tensor]:
    """One noise map per noise input and sample, [count,1,r,r], on `gen`'s device."""
    return [torch.randn(count, 1, m.resolution, m.resolution, generator=gen, device=gen.device)
            for m in noise_layers(G)]


@contextlib.contextmanager
def fixed_noise(G: Generator, maps: list[torch.Tensor]) -> Iterator[None]:
    """Within the block, noise "const" adds `maps` (per sample, from `draw_noise`) instead of the stored maps.

    This is how two images get the same noise, as SG1's path length renders both ends
    of a segment with `randomize_noise=False` after re-drawing the noise variables
    (NVlabs/stylegan `metrics/perceptual_path_length.py`); the stored maps are restored after.
    """
    layers = noise_layers(G)
    if len(maps) != len(layers):
        raise ValueError(f"{len(maps)} noise maps for {len(layers)} noise inputs")
    stored = [m.const_noise for m in layers]
    try:
        for layer, noise in zip(layers, maps):
            layer.const_noise = noise.to(stored[0].device)
        yield
    finally:
        for layer, noise in zip(layers, stored):
            layer.const_noise = noise


def at_final_resolution(images: torch.Tensor, G: Generator) -> torch.Tensor:
    """Images of a snapshot saved below the final level, nearest-upscaled to the final resolution,
    as SG1's generator outputs a lower level of detail at full size."""
    factor = G.settings.resolution // images.shape[-1]
    return images.repeat_interleave(factor, 2).repeat_interleave(factor, 3) if factor > 1 else images
