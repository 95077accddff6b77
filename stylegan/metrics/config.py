"""`MetricsSettings`: the `metrics` config section, typed and validated once.

The dataclass tree mirrors the YAML tree one to one, so a key's dotted name in an
error message is the key to fix in the config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from stylegan.errors import StageError

Band = Literal["coarse", "middle", "fine"]


@dataclass(frozen=True)
class MetricResources:
    """What each metric and figure job asks SLURM for; read by the rules, not by the library."""

    gpu: int = 0
    cpus_per_gpu: int = 8
    mem_mb: int = 16000
    runtime: int | str = 60


@dataclass(frozen=True)
class FigureSettings:
    """The paper's figures (`metrics.figures`): how many images each shows, and the style bands.

    Latents are seeds `seed`, `seed + 1`, ... (one normal draw per seed, as `stylegan
    generate`); random noise is drawn from `seed` too, so a figure is the same on a rerun.
    """

    seed: int = 0
    cell: int = 256  # pixels per image in every figure (larger images are area-downscaled)
    uncurated: tuple[int, int] = (6, 3)  # Fig. 2: columns, rows
    mixing_columns: int = 5  # Fig. 3: source B images (top row)
    mixing_rows: tuple[Band, ...] = ("coarse", "coarse", "coarse", "middle", "middle", "fine")  # Fig. 3 rows
    coarse_max: int = 8  # Fig. 3: coarse styles are 4² to this (paper §3.1: 4²-8²)
    middle_max: int = 32  # Fig. 3: middle styles up to this (paper: 16²-32²); fine styles above it
    stochastic_latents: int = 2  # Fig. 4: rows
    stochastic_shown: int = 4  # Fig. 4: noise realisations shown per row
    stochastic_draws: int = 100  # Fig. 4: realisations behind the per-pixel standard deviation
    noise_latents: int = 2  # Fig. 5: rows
    noise_coarse_max: int = 32  # Fig. 5: coarse noise is 4² to this (paper: 4²-32²), fine noise above
    truncation_psis: tuple[float, ...] = (1.0, 0.7, 0.5, 0.0, -0.5, -1.0)  # Fig. 8 columns
    truncation_latents: int = 2  # Fig. 8: rows

    def __post_init__(self) -> None:
        counts = {"cell": self.cell, "mixing_columns": self.mixing_columns,
                  "stochastic_latents": self.stochastic_latents, "stochastic_shown": self.stochastic_shown,
                  "noise_latents": self.noise_latents, "truncation_latents": self.truncation_latents,
                  "uncurated[0]": self.uncurated[0], "uncurated[1]": self.uncurated[1]}
        for key, value in counts.items():
            if value < 1:
                raise StageError(f"metrics.figures.{key}: {value}, expected at least 1")
        if self.stochastic_draws < 2:
            raise StageError(f"metrics.figures.stochastic_draws: {self.stochastic_draws}, a deviation needs >= 2")
        if self.stochastic_shown > self.stochastic_draws:
            raise StageError(f"metrics.figures.stochastic_shown: {self.stochastic_shown} realisations shown of "
                             f"stochastic_draws {self.stochastic_draws}; show at most as many as are drawn")
        if not self.mixing_rows or not self.truncation_psis:
            raise StageError("metrics.figures.mixing_rows and truncation_psis: give at least one entry each")
        for key in ("coarse_max", "middle_max", "noise_coarse_max"):
            value = getattr(self, key)
            if value < 4 or math.log2(value) != int(math.log2(value)):
                raise StageError(f"metrics.figures.{key}: {value} is not a resolution (a power of two >= 4)")
        if self.middle_max <= self.coarse_max:
            raise StageError(f"metrics.figures.middle_max: {self.middle_max} must be above coarse_max "
                             f"{self.coarse_max}")


@dataclass(frozen=True)
class ReportSettings:
    """What the report shows beyond the figures (`metrics.report`)."""

    snapshots: int = 4  # training snapshot grids shown, evenly spaced from the first to the last

    def __post_init__(self) -> None:
        if self.snapshots < 1:
            raise StageError(f"metrics.report.snapshots: {self.snapshots}, expected at least 1")


@dataclass(frozen=True)
class MetricsSettings:
    """The `metrics` config section."""

    resources: MetricResources = field(default_factory=MetricResources)
    figures: FigureSettings = field(default_factory=FigureSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
