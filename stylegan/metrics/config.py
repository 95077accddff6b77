"""`MetricsSettings`: the `metrics` config section, typed and validated once.

The dataclass tree mirrors the YAML tree one to one, so a key's dotted name in an
error message is the key to fix in the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stylegan.settings import SettingsError

LABEL_SOURCES = ("celeba", "demo")


@dataclass(frozen=True)
class MetricResources:
    """What each metric and figure job asks SLURM for; read by the rules, not by the library."""

    gpu: int = 0
    cpus_per_gpu: int = 8
    mem_mb: int = 16000
    runtime: int | str = 60


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


@dataclass(frozen=True)
class MetricsSettings:
    """The `metrics` config section."""

    ppl: PplSettings = field(default_factory=PplSettings)
    ls: LsSettings = field(default_factory=LsSettings)
    resources: MetricResources = field(default_factory=MetricResources)
