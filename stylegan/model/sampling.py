"""Drawing images from a generator: latents by seed, rendering in chunks, noise control, the device.

Training's image snapshots, `stylegan generate`, the metrics and the figures all
render through these functions. z for seed n is torch's normal draw from a generator seeded n, so a seed names
the same face in every tool.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch

from stylegan.model.layers import NoiseInjection
from stylegan.model.networks import Generator


def latents(seeds: list[int], size: int) -> torch.Tensor:
    """z [len(seeds), size], one fixed normal draw per seed."""
    return torch.stack([torch.randn(size, generator=torch.Generator().manual_seed(n)) for n in seeds])


def inference_device() -> torch.device:
    """The job's device, the first GPU when there is one, with TF32 off: images and features in full
    float32, as NVlabs/stylegan2-ada-pytorch `calc_metrics.py` sets it."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    return torch.device("cuda")


@contextlib.contextmanager
def full_float32() -> Iterator[None]:
    """TF32 off for CUDA matmuls and convolutions inside, whatever the caller set, restored after.

    A metric's images and distances need full float32 (PPL divides by ε² = 1e-8), as
    NVlabs/stylegan2-ada-pytorch `calc_metrics.py` computes them; training may leave TF32
    on (train.speed.tf32). Usable as a decorator: each metric's computation wears it.
    """
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def _in_chunks(
    G: Generator, batch: torch.Tensor, chunk: int, draw: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """draw(part) over `batch` in parts of `chunk` on G's device, joined as float32 on the CPU."""
    device = next(G.parameters()).device
    return torch.cat([draw(batch[i : i + chunk].to(device)).float().cpu() for i in range(0, len(batch), chunk)])


@torch.no_grad()
def render(
    G: Generator,
    z: torch.Tensor,
    res: int,
    alpha: float,
    *,
    psi: float = 1.0,
    cutoff: int | None = None,
    noise: str | Sequence[str] = "const",
    chunk: int = 16,
) -> torch.Tensor:
    """Images [N,3,res,res] in [-1,1] on the CPU, from latents in chunks of `chunk`.

    noise "const" uses the stored noise maps, so snapshots over training are comparable;
    "random" draws fresh maps from torch's global generator; a sequence gives one mode
    per synthesis layer.
    """
    return _in_chunks(G, z, chunk, lambda part: G(part, res=res, alpha=alpha, psi=psi, cutoff=cutoff, noise=noise))


@torch.no_grad()
def synthesize(
    G: Generator, ws: torch.Tensor, res: int, alpha: float, noise: str | Sequence[str] = "const", chunk: int = 16
) -> torch.Tensor:
    """Images [N,3,res,res] in [-1,1] on the CPU from per-layer ws [N, num_layers, dlatent], in chunks."""
    return _in_chunks(G, ws, chunk, lambda part: G.synthesize(part, res=res, alpha=alpha, noise=noise))


def mapped(G: Generator, z: torch.Tensor) -> torch.Tensor:
    """Per-layer ws [N, num_layers, dlatent] of latents z, on G's device."""
    device = next(G.parameters()).device
    return G.map(z.to(device)).unsqueeze(1).repeat(1, G.num_layers, 1)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1,1] float images to uint8 by round-and-clamp, as SG's convert_images_to_uint8
    (NVlabs/stylegan `dnnlib/tflib/tfutil.py`: x*127.5 + 127.5, rounded, saturated)."""
    return (images * 127.5 + 127.5).round().clamp(0, 255).to(torch.uint8)


def noise_layers(G: Generator) -> list[NoiseInjection]:
    """G's noise inputs, from 4² up."""
    return [m for m in G.modules() if isinstance(m, NoiseInjection)]


def draw_noise(G: Generator, count: int, gen: torch.Generator) -> list[torch.Tensor]:
    """One noise map per noise input and sample, [count,1,r,r], on `gen`'s device."""
    return [
        torch.randn(count, 1, m.resolution, m.resolution, generator=gen, device=gen.device) for m in noise_layers(G)
    ]


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
