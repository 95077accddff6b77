"""The training state: what the loop changes step by step and a checkpoint holds.

Settings stay apart: they are fixed for the run, while everything here moves on
with each step, and a resume rebuilds it from the newest checkpoint
(`stylegan.train.checkpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from stylegan.distributed import Dist
from stylegan.model.networks import Discriminator, Generator


@dataclass
class Progress:
    """The loop's counters: with the networks, optimizers and RNGs, all a resume needs."""

    nimg: int = 0  # images seen (global)
    step: int = 0  # optimizer steps taken
    sched_nimg: int = 0  # images seen when the schedule was last evaluated
    tick: int = 0
    tick_start_nimg: int = 0
    skipped: int = 0  # updates dropped for non-finite gradients


@dataclass
class TrainState:
    """The networks, their optimizers, the counters and the shared random stream of one process."""

    G: Generator
    D: Discriminator
    G_ema: Generator  # the moving average of G's weights: the model that is kept
    opt_G: torch.optim.Adam
    opt_D: torch.optim.Adam
    z_stream: torch.Generator  # shared by all ranks: z and x-flips, drawn for the global batch
    d: Dist  # this process's rank, the rank count and its device
    progress: Progress = field(default_factory=Progress)
    dataset: dict[str, Any] | None = None  # what it trained on (stylegan.train.lineage); set when the shards open
