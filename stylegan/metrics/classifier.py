"""The attribute classifiers of linear separability, trained from a labelled face set.

The paper's appendix on them: "the same architecture as our discriminator except
that minibatch standard deviation is disabled", learning rate 1e-3, minibatch 8,
Adam, 150,000 training images, one network per attribute, trained independently of
any generator. The one logit is positive for label +1; the loss is the logistic
loss softplus(-y * logit). Adam's other constants are the networks' own
(β1 = 0, β2 = 0.99, ε = 1e-8, as the training of G and D).

Faces are brought to the classifier resolution in one way for training and for
evaluating generated images: [-1, 1] floats, box-downsampled (`box_downsample`).
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from stylegan import fileio
from stylegan.data import attributes
from stylegan.errors import StageError
from stylegan.metrics.config import LsSettings
from stylegan.metrics.images import box_downsample
from stylegan.model.networks import Discriminator, NetworkSettings
from stylegan.model.nvidia import Imported
from stylegan.settings import as_dict

log = logging.getLogger(__name__)

FORMAT = "stylegan-attribute-classifier/1"
ADAM_BETAS, ADAM_EPS = (0.0, 0.99), 1e-8
NVIDIA_CLASSIFIERS = "celebahq-classifier-*.pkl"  # NVlabs/stylegan metrics/linear_separability.py's file names


def to_classifier(images: Tensor, resolution: int, source: str) -> Tensor:
    """[-1, 1] images [N,3,S,S] at the classifier resolution; S must be `resolution` times a power of two."""
    side = images.shape[-1]
    if (
        images.shape[-2] != side
        or side < resolution
        or side % resolution
        or (side // resolution) & (side // resolution - 1)
    ):
        raise StageError(
            f"{source}: images of {images.shape[-2]}x{side} cannot be box-downsampled to "
            f"{resolution}² (metrics.ls.resolution); they must be square and {resolution}·2^k"
        )
    return box_downsample(images, resolution)


def load_face(path: Path, resolution: int) -> Tensor:
    """One labelled face as [3, resolution, resolution] in [-1, 1]."""
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    except OSError as err:
        raise StageError(f"{path}: not a readable image ({err})") from None
    x = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0) / 127.5 - 1
    return to_classifier(x, resolution, str(path))[0]


def network_settings(s: LsSettings) -> NetworkSettings:
    """The discriminator at the classifier resolution, without minibatch stddev (group size 1)."""
    return NetworkSettings(
        resolution=s.resolution, fmap_base=s.classifier.fmap_base, fmap_max=s.classifier.fmap_max, mbstd_group_size=1
    )


def held_out(name: str, fraction: float) -> bool:
    """Whether a labelled face is in the validation part: a hash of its file name, stable across runs."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 16**8 < fraction


@dataclass
class Classifier:
    """A trained attribute classifier: logits [N] for [-1, 1] images at its resolution."""

    attribute: str
    net: Discriminator
    resolution: int
    path: Path

    @torch.no_grad()
    def __call__(self, images: Tensor) -> Tensor:
        return self.net(images, res=self.resolution)


@dataclass(frozen=True)
class LabelledFaces:
    """The labelled face set: image paths and one attribute's ±1 labels."""

    paths: list[Path]
    labels: np.ndarray
    source: str


def labelled_faces(faces: Path, table_path: Path, mapping: Path | None, attribute: str) -> LabelledFaces:
    """The faces and their labels for `attribute`, checked against each other."""
    table = attributes.read(table_path)
    column = table.column(attribute, table_path)
    names = attributes.read_mapping(mapping) if mapping else None
    paths, rows = attributes.labelled_images(
        faces, attributes.AttributeTable(table.names, (attribute,), column[:, None]), table_path, names
    )
    return LabelledFaces(paths, rows[:, 0], str(table_path))


def _check_classes(labels: np.ndarray, what: str, attribute: str, source: str) -> None:
    if len(np.unique(labels)) < 2:
        raise StageError(
            f"{source}: attribute {attribute!r} has a single class ({int(labels[0]):+d}) in the "
            f"{what}; a classifier cannot learn it: remove it from metrics.ls.attributes"
        )


class FaceImages(torch.utils.data.Dataset):
    """Labelled faces read on demand (memory stays bounded for 30,000 CelebA-HQ images)."""

    def __init__(self, faces: LabelledFaces, indices: np.ndarray, resolution: int) -> None:
        self.faces, self.indices, self.resolution = faces, indices, resolution

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Tensor, float]:
        k = int(self.indices[i])
        return load_face(self.faces.paths[k], self.resolution), float(self.faces.labels[k])


def train(
    s: LsSettings,
    faces: LabelledFaces,
    attribute: str,
    seed: int,
    out: Path,
    device: torch.device | str = "cpu",
    workers: int = 0,
) -> dict[str, Any]:
    """Train one classifier and save it; returns its record (held-out accuracy included)."""
    start, c = time.time(), s.classifier
    val = np.array([held_out(p.name, c.val_fraction) for p in faces.paths], dtype=bool)
    train_idx = np.flatnonzero(~val)
    if len(train_idx) == 0:
        raise StageError(f"{faces.source}: no labelled faces left for training (metrics.ls.classifier.val_fraction)")
    _check_classes(faces.labels[train_idx], "training faces", attribute, faces.source)
    torch.manual_seed(seed)
    net = Discriminator(network_settings(s)).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=c.lrate, betas=ADAM_BETAS, eps=ADAM_EPS)
    sampler = torch.utils.data.RandomSampler(
        range(len(train_idx)), replacement=False, num_samples=c.images, generator=torch.Generator().manual_seed(seed)
    )
    loader = torch.utils.data.DataLoader(
        FaceImages(faces, train_idx, s.resolution), batch_size=c.minibatch, sampler=sampler, num_workers=workers
    )
    for images, targets in loader:
        logits = net(images.to(device), res=s.resolution)
        loss = F.softplus(-targets.to(device, torch.float32) * logits).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    accuracy = evaluate(net, faces, np.flatnonzero(val), s.resolution, device)
    record = {
        "format": FORMAT,
        "attribute": attribute,
        "network": as_dict(network_settings(s)),
        "state": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "resolution": s.resolution,
        "settings": as_dict(c),
        "train_faces": int(len(train_idx)),
        "val_faces": int(val.sum()),
        "val_accuracy": accuracy,
        "labels": {"file": faces.source, "sha256": fileio.sha256_file(faces.source)},
        "seconds": time.time() - start,
    }
    with fileio.atomic_path(out) as tmp:
        torch.save(record, tmp)
    log.info(
        "classifier %s: %d images in %.0f s, held-out accuracy %s on %d faces",
        attribute,
        c.images,
        record["seconds"],
        accuracy,
        record["val_faces"],
    )
    return record


@torch.no_grad()
def evaluate(
    net: Discriminator, faces: LabelledFaces, indices: np.ndarray, resolution: int, device: torch.device | str
) -> float | None:
    """Share of `indices` whose logit sign matches the label; None for no faces."""
    if len(indices) == 0:
        return None
    loader = torch.utils.data.DataLoader(FaceImages(faces, indices, resolution), batch_size=64)
    right = sum(int(((net(x.to(device), res=resolution).cpu() > 0) == (y > 0)).sum()) for x, y in loader)
    return right / len(indices)


def nvidia_attribute(source: Path) -> str:
    """The attribute of NVIDIA's `celebahq-classifier-NN-name.pkl` (NVlabs/stylegan
    `metrics/linear_separability.py`), else the file's stem."""
    match = re.fullmatch(r"celebahq-classifier-\d+-(.+)\.pkl", source.name)
    return match.group(1) if match else source.stem


def nvidia_pickles(entries: tuple[str, ...]) -> dict[str, Path]:
    """NVIDIA's classifier pickles by attribute, from files and folders (their `NVIDIA_CLASSIFIERS` files), in
    file name order, which is NVIDIA's attribute order (celebahq-classifier-00-male.pkl ... -39-...)."""
    files = []
    for entry in map(Path, entries):
        if not entry.exists():
            raise StageError(f"metrics.ls.classifiers: {entry} does not exist")
        files += sorted(entry.glob(NVIDIA_CLASSIFIERS)) if entry.is_dir() else [entry]
    if entries and not files:
        raise StageError(f"metrics.ls.classifiers: no {NVIDIA_CLASSIFIERS} file in {', '.join(entries)}")
    pickles: dict[str, Path] = {}
    for path in sorted(files, key=lambda p: p.name):
        if nvidia_attribute(path) in pickles:
            raise StageError(
                f"metrics.ls.classifiers: {path} and {pickles[nvidia_attribute(path)]} both classify "
                f"{nvidia_attribute(path)!r}"
            )
        pickles[nvidia_attribute(path)] = path
    return pickles


def save_nvidia(imported: Imported, source: Path, out: Path) -> Path:
    """An imported D_basic attribute classifier as our classifier file (no training record: NVIDIA's)."""
    if imported.resolution != imported.settings.resolution or imported.alpha != 1.0:
        raise StageError(
            f"{source}: a classifier pickled below its top level ({imported.resolution}², alpha "
            f"{imported.alpha}); linear separability runs classifiers at their full resolution"
        )
    record = {
        "format": FORMAT,
        "attribute": nvidia_attribute(source),
        "network": as_dict(imported.settings),
        "state": {k: v.detach().cpu() for k, v in imported.module.state_dict().items()},
        "resolution": imported.settings.resolution,
        "source": {"file": source.name, "sha256": fileio.sha256_file(source)},
    }
    with fileio.atomic_path(out) as tmp:
        torch.save(record, tmp)
    log.info("classifier %s: imported from %s", record["attribute"], source)
    return out


def load(path: Path, device: torch.device | str = "cpu") -> Classifier:
    """A trained classifier; a file that is not one is a StageError naming it and the fix."""
    fix = "delete it and rerun its ls_classifier job"
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"format {state.get('format')!r}, expected {FORMAT!r}")
        net = Discriminator(NetworkSettings(**state["network"]))
        net.load_state_dict(state["state"])
    except (
        OSError,
        EOFError,
        KeyError,
        TypeError,
        ValueError,
        RuntimeError,
        AttributeError,
        pickle.UnpicklingError,
    ) as err:
        why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StageError(f"{path}: not an attribute classifier this version can load ({why}); {fix}") from None
    return Classifier(
        state["attribute"], net.to(device).eval().requires_grad_(False), int(state["resolution"]), Path(path)
    )
