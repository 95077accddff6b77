"""Image grids as PNG bytes: plain tiles of samples, and the paper's style-mixing layout (Fig. 3).

Training's image snapshots, `stylegan generate` and the figures draw their grids here.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import torch

from stylegan.errors import StageError
from stylegan.model.networks import Generator
from stylegan.model.sampling import mapped, synthesize, to_uint8


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
        canvas[r * h : (r + 1) * h, k * w : (k + 1) * w] = img.permute(1, 2, 0)
    pixels = to_uint8(canvas).numpy()
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    return buffer.getvalue()


def tile(images: torch.Tensor, columns: int, cell: int) -> bytes:
    """A PNG grid with each image at `cell` pixels: area-downscaled when larger, nearest-upscaled when smaller."""
    if images.shape[-1] > cell:
        images = torch.nn.functional.interpolate(images, size=(cell, cell), mode="area")
    return grid_png(images, columns, cell)


def layers_of(low: int, high: int) -> range:
    """Synthesis layers of resolutions low² to high²: two per resolution, 4² being layers 0 and 1."""
    return range(2 * int(math.log2(low)) - 4, 2 * int(math.log2(high)) - 2)


@torch.no_grad()
def style_mixing_grid(
    G: Generator,
    columns_z: torch.Tensor,
    rows_z: torch.Tensor,
    row_layers: Sequence[range],
    res: int,
    alpha: float,
    psi: float,
    cutoff: int | None,
    cell: int,
) -> bytes:
    """Fig. 3's layout: the top row shows sources B (columns), the left column sources A (rows);
    cell (i, j) takes A_i's styles except on layers `row_layers[i]`, which come from B_j."""
    b = G.truncate(mapped(G, columns_z), psi, cutoff)
    a = G.truncate(mapped(G, rows_z), psi, cutoff)
    plain_b, plain_a = synthesize(G, b, res, alpha), synthesize(G, a, res, alpha)
    cells = [torch.full_like(plain_b[0], -1.0), *plain_b]
    for i, layers in enumerate(row_layers):
        mixed = a[i : i + 1].repeat(len(b), 1, 1)
        mixed[:, layers] = b[:, layers]
        cells += [plain_a[i], *synthesize(G, mixed, res, alpha)]
    return tile(torch.stack(cells), len(b) + 1, cell)
