"""Images from a trained generator: per-seed PNGs, a grid, a style-mixing grid; and export.

z for seed n is torch's normal draw from a generator seeded n, so a seed names
the same face in every tool. Truncation defaults to the reference's ψ=0.7 on
the first 8 layers (4²-32², training.md §1) and can be changed per call.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from stylegan import fileio, settings
from stylegan.errors import StageError
from stylegan.train import checkpoint
from stylegan.train.config import ScheduleSettings
from stylegan.train.loop import generator_file, grid_png
from stylegan.train.networks import Generator, NetworkSettings
from stylegan.train.schedule import level_at

log = logging.getLogger(__name__)


def load_generator(path: Path, device: str | torch.device = "cpu") -> tuple[Generator, dict[str, Any]]:
    """G_ema from a generator file or a training checkpoint, with the level it was trained to."""
    state = checkpoint.load(path)
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
    return G.to(device).eval().requires_grad_(False), meta


def parse_seeds(text: str) -> list[int]:
    """'0-7,10,12-13' -> [0..7, 10, 12, 13]."""
    seeds: list[int] = []
    try:
        for part in filter(None, text.split(",")):
            first, _, last = part.partition("-")
            seeds += list(range(int(first), int(last or first) + 1))
    except ValueError:
        raise StageError(f"--seeds {text!r}: expected numbers and ranges such as 0-7,10") from None
    if not seeds:
        raise StageError("--seeds: no seeds given")
    return seeds


def latents(seeds: list[int], size: int) -> torch.Tensor:
    return torch.stack([torch.randn(size, generator=torch.Generator().manual_seed(n)) for n in seeds])


def generate(checkpoint_path: Path, seeds: list[int], psi: float, cutoff: int, seed: int, outdir: Path | None,
             grid: Path | None, mixing_grid: Path | None, mix_layers: tuple[int, int]) -> None:
    """Write what was asked for; noise maps are drawn from `seed`, so reruns are identical."""
    G, meta = load_generator(checkpoint_path)
    res, alpha = meta["resolution"], meta["alpha"]
    torch.manual_seed(seed)
    z = latents(seeds, G.settings.latent_size)
    images = render_random(G, z, res, alpha, psi, cutoff)
    if outdir is not None:
        for n, image in zip(seeds, images):
            fileio.write_bytes(outdir / f"seed{n:04d}.png", grid_png(image[None], 1, res))
        log.info("wrote %d images to %s", len(seeds), outdir)
    if grid is not None:
        fileio.write_bytes(grid, grid_png(images, min(len(seeds), 8), res))
        log.info("wrote %s (%d² images, %.1f kimg)", grid, res, meta["nimg"] / 1000)
    if mixing_grid is not None:
        fileio.write_bytes(mixing_grid, style_mixing_grid(G, z, res, alpha, psi, cutoff, mix_layers))
        log.info("wrote %s", mixing_grid)


@torch.no_grad()
def render_random(G: Generator, z: torch.Tensor, res: int, alpha: float, psi: float, cutoff: int) -> torch.Tensor:
    return torch.cat([G(z[i:i + 16], res=res, alpha=alpha, psi=psi, cutoff=cutoff) for i in range(0, len(z), 16)])


@torch.no_grad()
def style_mixing_grid(G: Generator, z: torch.Tensor, res: int, alpha: float, psi: float, cutoff: int,
                      layers: tuple[int, int]) -> bytes:
    """The paper's Figure 3 layout: row i, column j takes seed i's styles except layers [a, b] from seed j.

    The top row shows the column sources, the left column the row sources.
    """
    ws = G.truncate(G.map(z).unsqueeze(1).repeat(1, G.num_layers, 1), psi, cutoff)
    first, last = layers
    if not 0 <= first <= last < G.num_layers:
        raise StageError(f"--mix-layers {first}-{last}: layers run from 0 to {G.num_layers - 1}")
    noise = "const"
    plain = G.synthesize(ws, res=res, alpha=alpha, noise=noise)
    n = len(z)
    cells = [torch.full_like(plain[0], -1.0)] + list(plain)
    for i in range(n):
        mixed = ws[i:i + 1].repeat(n, 1, 1)
        mixed[:, first:last + 1] = ws[:, first:last + 1]
        cells += [plain[i]] + list(G.synthesize(mixed, res=res, alpha=alpha, noise=noise))
    return grid_png(torch.stack(cells), n + 1, res)


def export(checkpoint_path: Path, out: Path) -> None:
    """Write G_ema's weights and settings alone (no D, no optimizer state) from any checkpoint."""
    G, meta = load_generator(checkpoint_path)
    checkpoint.save(out, generator_file(G, G.settings, meta["nimg"], meta["resolution"], meta["alpha"]))
    log.info("exported G_ema (%d² level) to %s", meta["resolution"], out)

