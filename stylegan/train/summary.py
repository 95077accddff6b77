"""Per-block parameter tables of G and D, laid out by SG's scopes (NVlabs/stylegan `training/networks_stylegan.py`).

Printed by `stylegan summary`, so a user can check a config (an ablation, a demo
model) against the reference counts before spending GPU hours on it.
"""

from __future__ import annotations

import torch
from torch import nn

from stylegan.model.networks import Discriminator, Generator, NetworkSettings

Row = tuple[str, int, str]  # block, trainable parameters, output shape


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _shape(channels: int, res: int) -> str:
    return f"{channels}x{res}x{res}"


def generator_rows(G: Generator) -> list[Row]:
    """Mapping, the 4x4 input block, one row per doubling block, all ToRGBs."""
    s = G.settings
    rows: list[Row] = [(f"mapping ({s.mapping_layers} dense)", _params(G.mapping), str(s.dlatent_size))]
    rows.append(("4x4", _params(G.synthesis.input), _shape(s.nf(1), 4)))
    for key, block in G.synthesis.blocks.items():
        res = int(key)
        rows.append((f"{res}x{res}", _params(block), _shape(block.conv1.out_channels, res)))
    rows.append((f"ToRGB x{len(G.synthesis.torgb)}", _params(G.synthesis.torgb), _shape(3, s.resolution)))
    return rows


def discriminator_rows(D: Discriminator) -> list[Row]:
    """All FromRGBs, one row per halving block from the top, the 4x4 head."""
    s = D.settings
    rows: list[Row] = [
        (f"FromRGB x{len(D.fromrgb)}", _params(D.fromrgb), _shape(s.nf(s.log2_resolution - 1), s.resolution))
    ]
    for key, block in D.blocks.items():
        res = int(key)
        rows.append((f"{res}x{res}", _params(block), _shape(block.conv1_down.out_channels, res // 2)))
    rows.append(("4x4 (mbstd, conv, dense0, dense1)", _params(D.head), "1"))
    return rows


def _table(title: str, rows: list[Row]) -> list[str]:
    width = max(len(name) for name, _, _ in rows) + 2
    lines = [title, f"  {'block':<{width}}{'params':>12}  output", "  " + "-" * (width + 22)]
    lines += [f"  {name:<{width}}{count:>12,}  {shape}" for name, count, shape in rows]
    lines += ["  " + "-" * (width + 22), f"  {'Total':<{width}}{sum(c for _, c, _ in rows):>12,}"]
    return lines


def summary(s: NetworkSettings) -> str:
    """The G and D tables for settings `s`; the models are built on the meta device (no memory, no init time)."""
    with torch.device("meta"):
        G, D = Generator(s), Discriminator(s)
    header = f"StyleGAN at {s.resolution}x{s.resolution} ({G.num_layers} synthesis layers)"
    return "\n".join(
        [header, "", *_table("Generator", generator_rows(G)), "", *_table("Discriminator", discriminator_rows(D))]
    )
