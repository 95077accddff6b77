"""The paper's figures from a trained generator, each a PNG grid of images.

Figures are numbered as in the CVPR 2019 paper (the TPAMI text renumbers the
truncation figure). Layouts follow the paper and NVlabs/stylegan
`generate_figures.py`: Fig. 2 an uncurated grid; Fig. 3 style mixing by bands of
resolutions (paper §3.1); Fig. 4 noise realisations of one latent and the
per-pixel standard deviation over many (§3.2); Fig. 5 noise in all, no, fine only
and coarse only layers; Fig. 8 truncation in W over a sweep of ψ (Appendix B).
Only Fig. 2 is truncated as the generator was configured (`truncation_psi` on the
layers below `truncation_cutoff`), as the upstream code runs Gs with its default ψ;
Figs. 3, 4 and 5 are not (the upstream code maps w without truncation or passes
ψ=1), and Fig. 8 scales every layer by its own ψ. Figs. 3, 5 and 8 use the stored
noise maps; Figs. 2 and 4 draw fresh noise, seeded from `seed`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch

from stylegan import fileio
from stylegan.errors import StageError
from stylegan.metrics.config import Band, FigureSettings
from stylegan.model.files import load_generator
from stylegan.model.grids import layers_of, style_mixing_grid, tile
from stylegan.model.networks import Generator
from stylegan.model.provenance import tagged_png
from stylegan.model.sampling import full_float32, inference_device, latents, mapped, render, synthesize, to_uint8

log = logging.getLogger(__name__)


def style_bands(s: FigureSettings, res: int) -> dict[Band, range]:
    """Fig. 3's coarse, middle and fine layers at output resolution `res` (empty where `res` stops short)."""

    def band(low: int, high: int) -> range:
        return layers_of(low, min(high, res)) if low <= res else range(0)

    return {
        "coarse": band(4, s.coarse_max),
        "middle": band(2 * s.coarse_max, s.middle_max),
        "fine": band(2 * s.middle_max, res),
    }


def uncurated(G: Generator, s: FigureSettings, res: int, alpha: float) -> bytes:
    """Fig. 2: columns x rows samples, truncated with the generator's own ψ and layer cutoff, random noise."""
    columns, rows = s.uncurated
    torch.manual_seed(s.seed)
    z = latents(list(range(s.seed, s.seed + columns * rows)), G.settings.latent_size)
    images = render(
        G, z, res, alpha, psi=G.settings.truncation_psi, cutoff=G.settings.truncation_cutoff, noise="random"
    )
    return tile(images, columns, s.cell)


def style_mixing(G: Generator, s: FigureSettings, res: int, alpha: float) -> bytes:
    """Fig. 3 with the configured rows: each copies the coarse, middle or fine styles from the column source.
    Untruncated, as NVlabs/stylegan `generate_figures.py` draws it (the mapping's w straight to synthesis)."""
    bands = style_bands(s, res)
    for band in dict.fromkeys(s.mixing_rows):
        if not bands[band]:
            raise StageError(
                f"metrics.figures.mixing_rows: a {res}² generator has no {band} layers with "
                f"coarse_max {s.coarse_max} and middle_max {s.middle_max}; lower those or drop the row"
            )
    n, size = s.mixing_columns, G.settings.latent_size
    columns_z = latents(list(range(s.seed, s.seed + n)), size)
    rows_z = latents(list(range(s.seed + n, s.seed + n + len(s.mixing_rows))), size)
    return style_mixing_grid(
        G, columns_z, rows_z, [bands[band] for band in s.mixing_rows], res, alpha, 1.0, None, s.cell
    )


@torch.no_grad()
def noise_deviation(
    G: Generator, z: torch.Tensor, shown: int, draws: int, res: int, alpha: float, chunk: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `shown` realisations of one latent under random noise, and the per-pixel standard deviation
    over `draws` realisations of the grey (channel-mean) uint8 image, scaled x4 and clipped to 0-255
    for display as NVlabs/stylegan `generate_figures.py` draws it. Running float64 sums keep memory flat."""
    total = torch.zeros(res, res, dtype=torch.float64)
    squares = torch.zeros_like(total)
    kept: list[torch.Tensor] = []
    for start in range(0, draws, chunk):
        images = render(G, z.expand(min(chunk, draws - start), -1), res, alpha, noise="random")
        grey = to_uint8(images).double().mean(dim=1)
        total += grey.sum(0)
        squares += (grey**2).sum(0)
        kept += list(images[: max(0, shown - len(kept))])
    mean = total / draws
    std = (squares / draws - mean**2).clamp(min=0).sqrt()
    return torch.stack(kept), (std * 4).clamp(0, 255)


def stochastic(G: Generator, s: FigureSettings, res: int, alpha: float) -> bytes:
    """Fig. 4: per row, noise realisations of one latent, then the deviation map in grey."""
    torch.manual_seed(s.seed)
    cells = []
    for z in latents(list(range(s.seed, s.seed + s.stochastic_latents)), G.settings.latent_size):
        shown, std = noise_deviation(G, z[None], s.stochastic_shown, s.stochastic_draws, res, alpha)
        grey = (std / 127.5 - 1).float().expand(3, -1, -1)  # uint8 value v shows as grey v
        cells += [*shown, grey]
    return tile(torch.stack(cells), s.stochastic_shown + 1, s.cell)


NOISE_COLUMNS = ("all", "none", "fine", "coarse")  # the paper's Fig. 5 (a)-(d)


def noise_layer_modes(num_layers: int, s: FigureSettings, res: int) -> dict[str, tuple[str, ...]]:
    """Per-layer noise modes for Fig. 5's columns: stored noise maps where on, none where off."""
    if s.noise_coarse_max >= res:
        raise StageError(
            f"metrics.figures.noise_coarse_max: {s.noise_coarse_max} leaves no fine layers in a "
            f"{res}² generator; set it below {res}"
        )
    every = set(range(num_layers))
    coarse = set(layers_of(4, s.noise_coarse_max))
    on = {"all": every, "none": set(), "fine": every - coarse, "coarse": coarse}
    return {name: tuple("const" if i in on[name] else "none" for i in range(num_layers)) for name in NOISE_COLUMNS}


def noise_layers(G: Generator, s: FigureSettings, res: int, alpha: float) -> bytes:
    """Fig. 5: per row one latent with noise in all, no, fine only and coarse only layers."""
    modes = noise_layer_modes(G.num_layers, s, res)
    ws = mapped(G, latents(list(range(s.seed, s.seed + s.noise_latents)), G.settings.latent_size))
    columns = [synthesize(G, ws, res, alpha, noise=modes[name]) for name in NOISE_COLUMNS]
    return tile(torch.stack(columns, dim=1).flatten(0, 1), len(NOISE_COLUMNS), s.cell)


def truncation(G: Generator, s: FigureSettings, res: int, alpha: float) -> bytes:
    """Fig. 8: per row one latent at each ψ of the sweep, w' = w_avg + ψ (w - w_avg) on every layer."""
    ws = mapped(G, latents(list(range(s.seed, s.seed + s.truncation_latents)), G.settings.latent_size))
    columns = [synthesize(G, G.truncate(ws, psi, None), res, alpha) for psi in s.truncation_psis]
    return tile(torch.stack(columns, dim=1).flatten(0, 1), len(s.truncation_psis), s.cell)


FIGURES: dict[str, Callable[[Generator, FigureSettings, int, float], bytes]] = {
    "uncurated": uncurated,
    "style-mixing": style_mixing,
    "stochastic": stochastic,
    "noise": noise_layers,
    "truncation": truncation,
}
STEMS = {
    "uncurated": "fig2_uncurated",
    "style-mixing": "fig3_style_mixing",
    "stochastic": "fig4_stochastic_variation",
    "noise": "fig5_noise_layers",
    "truncation": "fig8_truncation",
}  # file names: the paper's figure, its subject


@full_float32()
def write(name: str, generator: Path, s: FigureSettings, out: Path) -> None:
    """Draw figure `name` from a generator file (or training checkpoint) at the level it was trained to;
    the PNG records the generator's sha256 and dataset (`tagged_png`)."""
    if name not in FIGURES:
        raise StageError(f"figure {name!r}: expected one of {', '.join(FIGURES)}")
    G, meta = load_generator(generator, inference_device())
    fileio.write_bytes(out, tagged_png(FIGURES[name](G, s, meta["resolution"], meta["alpha"]), [generator]))
    log.info("wrote %s (%s, %d² generator at %.1f kimg)", out, name, meta["resolution"], meta["nimg"] / 1000)
