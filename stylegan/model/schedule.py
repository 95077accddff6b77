"""The progressive-growing schedule: the level of detail, minibatch and learning rate at a given number of images seen.

Training follows it; reading a generator out of a training checkpoint asks it the level
the networks had reached.

A port of SG's `training_schedule` (NVlabs/stylegan `training/training_loop.py`). `lod` counts levels below
the final one; during a fade lod is fractional and the data resolution,
minibatch and learning rate are already those of the new, higher level, while
alpha = 1 - frac(lod) is the weight of that new level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stylegan.settings import setting

# NVlabs/stylegan train.py: minibatch_base and minibatch_dict per GPU count; the
# reference sized the global batch to the GPUs it had, so a preset picks the row.
MINIBATCH_PRESETS: dict[int, tuple[int, dict[int, int]]] = {
    1: (4, {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4}),
    2: (8, {4: 256, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8}),
    4: (16, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16}),
    8: (32, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}),
}


@dataclass(frozen=True)
class ScheduleSettings:
    """Progressive growing: phase lengths, minibatch and learning rate per level (SG `training_schedule`)."""

    lod_initial_resolution: int = setting(
        8, "resolution training starts at (NVlabs/stylegan `train.py` lod_initial_resolution)", pow2=True, ge=4, le=1024
    )
    lod_training_kimg: float = setting(600.0, "kimg per stable phase", ge=0)
    lod_transition_kimg: float = setting(600.0, "kimg per fade to the next level", ge=0)
    total_kimg: float = setting(25000.0, "training length", gt=0)
    minibatch_preset: int | None = setting(
        8,
        "the reference's minibatch table for 1/2/4/8 GPUs; null uses minibatch_base/minibatch_dict",
        choices=tuple(MINIBATCH_PRESETS),
    )
    minibatch_base: int = setting(
        32, "GLOBAL minibatch where minibatch_dict has no entry (split over the processes)", ge=1
    )
    minibatch_dict: dict[int, int] = setting(
        factory=lambda: dict(MINIBATCH_PRESETS[8][1]), doc="GLOBAL minibatch per resolution (keys: resolutions)", ge=1
    )
    lrate_base: float = setting(0.001, "learning rate where lrate_dict has no entry", gt=0)
    lrate_dict: dict[int, float] = setting(
        factory=lambda: {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003},
        doc="learning rate per resolution (G and D)",
        gt=0,
    )
    minibatch_repeats: int = setting(4, "steps between schedule evaluations", ge=1)
    tick_kimg_base: float = setting(160.0, "kimg per tick where tick_kimg_dict has no entry", gt=0)
    tick_kimg_dict: dict[int, float] = setting(
        factory=lambda: {4: 160, 8: 140, 16: 120, 32: 100, 64: 80, 128: 60, 256: 40, 512: 30, 1024: 20},
        doc="kimg per tick (log line) per resolution",
        gt=0,
    )
    image_snapshot_ticks: int = setting(1, "an image grid every n ticks", ge=1)
    network_snapshot_ticks: int = setting(10, "a checkpoint every n ticks, plus tick 1, preemption and the end", ge=1)

    def minibatches(self) -> tuple[int, dict[int, int]]:
        """(base, per-resolution dict) after applying the preset."""
        if self.minibatch_preset is None:
            return self.minibatch_base, dict(self.minibatch_dict)
        base, table = MINIBATCH_PRESETS[self.minibatch_preset]
        return base, dict(table)


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
    """G_ema decay per step: half the weight after `half_life_kimg` thousand images
    (SG training_loop.py: Gs_beta = 0.5**(minibatch/(G_smoothing_kimg*1000)))."""
    return 0.5 ** (minibatch / (half_life_kimg * 1000.0)) if half_life_kimg > 0 else 0.0
