"""Images from a trained generator: per-seed PNGs, a grid, a style-mixing grid, raw arrays; and export.

z for seed n is torch's normal draw from a generator seeded n, so a seed names
the same face in every tool. Truncation defaults to the generator's configured ψ
and layer cutoff (the reference's 0.7 on 4²-32², NVlabs/stylegan
`training/networks_stylegan.py`) and can be changed per call.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from stylegan import fileio
from stylegan.errors import StageError
from stylegan.model import files
from stylegan.model.files import generator_file, load_generator
from stylegan.model.grids import grid_png, style_mixing_grid
from stylegan.model.networks import Generator
from stylegan.model.provenance import tagged_png
from stylegan.model.sampling import latents, render

log = logging.getLogger(__name__)


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


def read_latents(path: Path, size: int) -> torch.Tensor:
    """z [N, size] from a .npy file (no pickles), e.g. the inputs another implementation was given."""
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise StageError(f"--latents {path}: not a readable .npy file ({err})") from None
    if z.ndim != 2 or z.shape[1] != size or not np.issubdtype(z.dtype, np.floating):
        raise StageError(
            f"--latents {path}: {z.dtype} array of shape {list(z.shape)}; "
            f"this generator needs float z of shape [N, {size}]"
        )
    return torch.from_numpy(z.astype(np.float32))


def generate(
    checkpoint_path: Path,
    seeds: list[int] | None,
    psi: float | None,
    cutoff: int | None,
    seed: int,
    outdir: Path | None,
    grid: Path | None,
    mixing_grid: Path | None,
    mix_layers: tuple[int, int],
    *,
    latents_file: Path | None = None,
    noise: str = "random",
    npy: Path | None = None,
) -> None:
    """Write what was asked for; noise maps are drawn from `seed`, so reruns are identical.

    z comes from `seeds` or, for comparisons with other implementations, from
    `latents_file`; noise "const" uses the stored maps instead of drawn ones. psi and
    cutoff default to the generator's own `train.network.truncation_psi` and
    `truncation_cutoff`, the values it was configured with. `npy` gets the raw float32
    NCHW images at the generator's level.
    """
    G, meta = load_generator(checkpoint_path)
    res, alpha = meta["resolution"], meta["alpha"]
    psi = G.settings.truncation_psi if psi is None else psi
    cutoff = G.settings.truncation_cutoff if cutoff is None else cutoff
    torch.manual_seed(seed)
    if latents_file is None:
        z, names = latents(seeds, G.settings.latent_size), [f"seed{n:04d}" for n in seeds]
    else:
        z = read_latents(latents_file, G.settings.latent_size)
        names = [f"latent{n:04d}" for n in range(len(z))]
    images = render(G, z, res, alpha, psi=psi, cutoff=cutoff, noise=noise)
    if npy is not None:
        with fileio.atomic_path(npy) as tmp, open(tmp, "wb") as handle:
            np.save(handle, images.numpy())
        log.info("wrote %s (%d images, %d², float32 NCHW)", npy, len(images), res)
    if outdir is not None:
        for name, image in zip(names, images):
            fileio.write_bytes(outdir / f"{name}.png", grid_png(image[None], 1, res))
        log.info("wrote %d images to %s", len(images), outdir)
    if grid is not None:
        fileio.write_bytes(grid, tagged_png(grid_png(images, min(len(images), 8), res), [checkpoint_path]))
        log.info("wrote %s (%d² images, %.1f kimg)", grid, res, meta["nimg"] / 1000)
    if mixing_grid is not None:
        rows = [mixing_layers(G, mix_layers)] * len(z)  # the paper's Fig. 3 layout, one layer range for every row
        fileio.write_bytes(mixing_grid, style_mixing_grid(G, z, z, rows, res, alpha, psi, cutoff, res))
        log.info("wrote %s", mixing_grid)


def mixing_layers(G: Generator, layers: tuple[int, int]) -> range:
    """The `--mix-layers a-b` range, checked against the generator's layers."""
    first, last = layers
    if not 0 <= first <= last < G.num_layers:
        raise StageError(f"--mix-layers {first}-{last}: layers run from 0 to {G.num_layers - 1}")
    return range(first, last + 1)


def export(checkpoint_path: Path, out: Path) -> None:
    """Write G_ema's weights and settings alone (no D, no optimizer state) from any checkpoint."""
    G, meta = load_generator(checkpoint_path)
    files.save(out, generator_file(G, G.settings, meta["nimg"], meta["resolution"], meta["alpha"], meta["dataset"]))
    log.info("exported G_ema (%d² level) to %s", meta["resolution"], out)
