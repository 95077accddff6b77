"""The progressive-growing schedule: what to train at a given number of images seen.

A port of SG's `training_schedule` (NVlabs/stylegan `training/training_loop.py`). `lod` counts levels below
the final one; during a fade lod is fractional and the data resolution,
minibatch and learning rate are already those of the new, higher level, while
alpha = 1 - frac(lod) is the weight of that new level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stylegan.train.config import ScheduleSettings


@dataclass(frozen=True)
class Level:
    """The schedule's answer at one moment of training."""

    kimg: float
    lod: float
    resolution: int  # the data / network resolution (the higher level during a fade)
    alpha: float  # weight of the newest level: 1 outside fades
    minibatch: int  # GLOBAL minibatch, over all processes
    lrate: float
    tick_kimg: float

    @property
    def lod_bounds(self) -> tuple[int, int]:
        """(floor, ceil) of lod: Adam is reset whenever either changes (SG training_loop.py reset_opt_for_new_lod)."""
        return math.floor(self.lod), math.ceil(self.lod)


def level_at(s: ScheduleSettings, resolution: int, kimg: float) -> Level:
    """The schedule at `kimg` thousand images for a model of final `resolution` (SG training_schedule)."""
    log2_res = int(math.log2(resolution))
    phase_dur = s.lod_training_kimg + s.lod_transition_kimg
    phase_idx = int(math.floor(kimg / phase_dur)) if phase_dur > 0 else 0
    phase_kimg = kimg - phase_idx * phase_dur
    lod = log2_res - math.floor(math.log2(s.lod_initial_resolution)) - phase_idx
    if s.lod_transition_kimg > 0:
        lod -= max(phase_kimg - s.lod_training_kimg, 0.0) / s.lod_transition_kimg
    lod = max(lod, 0.0)
    res = 2 ** (log2_res - int(math.floor(lod)))
    base, table = s.minibatches()
    return Level(
        kimg=kimg,
        lod=lod,
        resolution=res,
        alpha=1.0 - (lod - math.floor(lod)),
        minibatch=table.get(res, base),
        lrate=s.lrate_dict.get(res, s.lrate_base),
        tick_kimg=s.tick_kimg_dict.get(res, s.tick_kimg_base),
    )


def resolutions(s: ScheduleSettings, resolution: int) -> list[int]:
    """Every data resolution the schedule visits, from the initial level to the final one."""
    start = min(s.lod_initial_resolution, resolution)
    return [2**r for r in range(int(math.log2(start)), int(math.log2(resolution)) + 1)]


def ema_beta(minibatch: int, half_life_kimg: float) -> float:
    """G_ema decay per step: half the weight after `half_life_kimg` thousand images (SG training_loop.py: Gs_beta = 0.5**(minibatch/(G_smoothing_kimg*1000)))."""
    return 0.5 ** (minibatch / (half_life_kimg * 1000.0)) if half_life_kimg > 0 else 0.0
