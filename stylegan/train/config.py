"""`TrainSettings`: every knob of the `train` config section, typed and validated once.

Defaults are the paper's FFHQ configuration F on 8 GPUs (NVlabs/stylegan `train.py`,
`training/training_loop.py`, `training/loss.py`);
`config.yaml` overrides them with the demo's reduced model. The dataclass tree
mirrors the YAML tree one to one, so a key's dotted name in an error message is
the key to fix in the config.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from stylegan.model.networks import NetworkSettings
from stylegan.model.schedule import ScheduleSettings
from stylegan.resources import TrainResources
from stylegan.settings import setting


@dataclass(frozen=True)
class LossSettings:
    """Non-saturating logistic loss with R1 on reals (NVlabs/stylegan `training/loss.py`)."""

    r1_gamma: float = setting(10.0, "R1 weight on reals", ge=0)
    # derived: SG's R1 is taken w.r.t. reals nearest-upscaled by f = 2^floor(lod) to R, and D box-
    # downscales them back, so d/dx_full = upsample(d/dx_low)/f² and SG's R1 is (native R1)/f²;
    # true scales gamma by (res/R)² so the native-resolution port regularises as SG did.
    r1_match_reference: bool = setting(
        True,
        "scale gamma by (res/R)^2 as the reference's full-resolution R1 (NVlabs/stylegan `training/loss.py`; "
        "derived: SG's R1 on reals upscaled by f is native R1 / f²)",
    )
    mixing_prob: float = setting(
        0.9,
        "style mixing probability (NVlabs/stylegan training/networks_stylegan.py G_style style_mixing_prob)",
        ge=0,
        le=1,
    )


@dataclass(frozen=True)
class OptimizerSettings:
    """Adam for both networks (NVlabs/stylegan `train.py`); its state is reset at each level change."""

    beta1: float = setting(0.0, "Adam β1", ge=0, lt=1)
    beta2: float = setting(0.99, "Adam β2", ge=0, lt=1)
    eps: float = setting(1e-8, "Adam ε", gt=0)
    reset_on_level_change: bool = setting(True, "new Adam state whenever floor or ceil of lod changes")


@dataclass(frozen=True)
class SpeedSettings:
    """Speed switches that leave the maths alone (tf32 changes matmul rounding only)."""

    channels_last: bool | None = setting(
        None,
        "channels-last memory format; null: on CPU (oneDNN's faster convolutions, benchmarks/train.py), off on CUDA",
    )
    tf32: bool = setting(True, "TF32 matmuls and convolutions on Ampere or later")
    bf16: bool = setting(False, "bfloat16 autocast of forward passes (CUDA)")
    compile: bool = setting(False, "torch.compile G (D is not compiled: R1 needs double backward)")
    workers: int = setting(2, "DataLoader worker processes per training process", ge=0)
    pin_memory: bool = setting(True, "pinned host memory (GPU only)")

    def memory_format(self, device: torch.device) -> torch.memory_format:
        """The layout of G, D and the reals on `device`: channels-last where asked, or by default on CPU."""
        on = device.type == "cpu" if self.channels_last is None else self.channels_last
        return torch.channels_last if on else torch.contiguous_format


@dataclass(frozen=True)
class CheckpointSettings:
    """Where resumable state goes and how much of it is kept."""

    keep: int = setting(3, "newest checkpoints kept in the run directory", ge=1)
    grid: tuple[int, int] = setting(
        (7, 4), "snapshot grid columns, rows (SG training/misc.py: 7x4)", ge=1, length=(2, 2)
    )


@dataclass(frozen=True)
class TrainSettings:
    """The `train` config section."""

    network: NetworkSettings = setting(
        factory=NetworkSettings, doc="G and D hyper-parameters (NVlabs/stylegan training/networks_stylegan.py)"
    )
    schedule: ScheduleSettings = setting(
        factory=ScheduleSettings,
        doc="progressive growing (NVlabs/stylegan training/training_loop.py); kimg = thousands of real images shown",
    )
    loss: LossSettings = setting(factory=LossSettings, doc="the loss and its regularisers")
    optimizer: OptimizerSettings = setting(factory=OptimizerSettings, doc="Adam for G and D")
    speed: SpeedSettings = setting(factory=SpeedSettings, doc="switches that do not change the maths")
    checkpoint: CheckpointSettings = setting(factory=CheckpointSettings, doc="checkpoints and snapshot grids")
    resources: TrainResources = setting(
        factory=TrainResources, doc="what the train job asks SLURM for (read by the rule, not the library)"
    )
    G_smoothing_kimg: float = setting(10.0, "G_ema half-life in kimg (NVlabs/stylegan training_loop.py)", ge=0)
    xflip: bool = setting(True, "mirror augmentation (NVlabs/stylegan train.py mirror_augment)")
    seed: int = setting(1000, "training seed (weights, latents, data order)", ge=0)
    continue_on_new_data: bool = setting(
        False,
        "resume (or change level) on a manifest other than the checkpoint's, "
        "recording the switch; false stops with an error naming both",
    )
    retrain_on_takedown: bool = setting(
        False,
        "the train rule depends on the manifest, so a repack (e.g. after a "
        "takedown) retrains from scratch: a run directory whose checkpoint "
        "trained on other data is cleared first",
    )
