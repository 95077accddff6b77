"""`TrainSettings`: every knob of the `train` config section, typed and validated once.

Defaults are the paper's FFHQ configuration F on 8 GPUs (NVlabs/stylegan `train.py`,
`training/training_loop.py`, `training/loss.py`);
`config.yaml` overrides them with the demo's reduced model. The dataclass tree
mirrors the YAML tree one to one, so a key's dotted name in an error message is
the key to fix in the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stylegan.model.networks import NetworkSettings
from stylegan.model.schedule import ScheduleSettings

@dataclass(frozen=True)
class LossSettings:
    """Non-saturating logistic loss with R1 on reals (NVlabs/stylegan `training/loss.py`)."""

    r1_gamma: float = 10.0
    # derived: SG's R1 is taken w.r.t. reals nearest-upscaled by f = 2^floor(lod) to R, and D box-
    # downscales them back, so d/dx_full = upsample(d/dx_low)/f² and SG's R1 is (native R1)/f²;
    # true scales gamma by (res/R)² so the native-resolution port regularises as SG did.
    r1_match_reference: bool = True
    mixing_prob: float = 0.9  # NVlabs/stylegan training/networks_stylegan.py G_style style_mixing_prob


@dataclass(frozen=True)
class OptimizerSettings:
    """Adam for both networks (NVlabs/stylegan `train.py`); its state is reset at each level change."""

    beta1: float = 0.0
    beta2: float = 0.99
    eps: float = 1e-8
    reset_on_level_change: bool = True


@dataclass(frozen=True)
class SpeedSettings:
    """Speed switches that leave the maths alone (tf32 changes matmul rounding only)."""

    channels_last: bool = False
    tf32: bool = True
    bf16: bool = False  # autocast forward passes to bfloat16 on CUDA
    compile: bool = False  # torch.compile G (D is not: R1 needs double backward)
    workers: int = 2  # DataLoader worker processes per rank
    pin_memory: bool = True


@dataclass(frozen=True)
class CheckpointSettings:
    """Where resumable state goes and how much of it is kept."""

    keep: int = 3  # newest checkpoints kept in the run directory
    grid: tuple[int, int] = (7, 4)  # image snapshot grid, columns x rows (SG training/misc.py: 7x4)


@dataclass(frozen=True)
class ResourceSettings:
    """What the train job asks SLURM for; read by the rule, not by the library."""

    gpu: int = 0  # per node
    cpus_per_gpu: int = 8
    mem_mb: int = 8000  # per node
    runtime: int | str = 60
    nodes: int = 1  # more than one: one torchrun per node, started by srun in one SLURM job


@dataclass(frozen=True)
class TrainSettings:
    """The `train` config section."""

    network: NetworkSettings = field(default_factory=NetworkSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    loss: LossSettings = field(default_factory=LossSettings)
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    speed: SpeedSettings = field(default_factory=SpeedSettings)
    checkpoint: CheckpointSettings = field(default_factory=CheckpointSettings)
    resources: ResourceSettings = field(default_factory=ResourceSettings)
    G_smoothing_kimg: float = 10.0  # NVlabs/stylegan training_loop.py: EMA half-life in kimg
    xflip: bool = True  # NVlabs/stylegan train.py mirror_augment
    seed: int = 1000
