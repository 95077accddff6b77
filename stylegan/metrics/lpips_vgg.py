"""LPIPS with VGG16 (Zhang et al. 2018, v0.1): the image distance of perceptual path length.

The paper's Section 4.1 measures path length with "a perceptually-based pairwise
image distance ... a weighted difference between two VGG16 embeddings": LPIPS.
This is the network of richzhang/PerceptualSimilarity `lpips/lpips.py` and
`lpips/pretrained_networks.py`, written here so no torchvision is needed at run time:

- inputs are float pixels in [0, 255], as the path length feeds NVIDIA's
  `vgg16_zhang_perceptual` network; they go to [-1, 1] (lpips's input range)
  and are shifted and scaled per channel by LPIPS's ScalingLayer;
- VGG16's features cut after relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3
  (torchvision `features[0:4], [4:9], [9:16], [16:23], [23:30]`);
- each feature map divided by its per-pixel channel norm (+1e-10), the squared
  difference weighted by the v0.1 linear head (a 1x1 conv to one channel, no bias),
  averaged over the image, and summed over the five layers.

Two weight files: the linear heads ship inside the `lpips` package
(`lpips/weights/v0.1/vgg.pth`, read as a file, the package is never imported);
the VGG16 ImageNet backbone is torchvision's `vgg16-397923af.pth`, which the user
supplies (or a download rule fetches) and which is checked against its sha256.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import torch
from torch import Tensor, nn

from stylegan import fileio
from stylegan.errors import StageError

# torchvision's VGG16 ImageNet weights (torchvision `models/vgg.py`, VGG16_Weights.IMAGENET1K_V1).
VGG16_FILE = "vgg16-397923af.pth"
VGG16_URL = f"https://download.pytorch.org/models/{VGG16_FILE}"
VGG16_SHA256 = "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0"
# The v0.1 linear heads inside the lpips 0.1.4 wheel.
HEADS_PATH = "weights/v0.1/vgg.pth"
HEADS_SHA256 = "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"

# VGG16 configuration "D" up to relu5_3: conv widths, "M" a 2x2 max-pool (torchvision `cfgs["D"]`).
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
CUTS = (4, 9, 16, 23, 30)  # torchvision feature indices after relu1_2 ... relu5_3 (lpips `vgg16` slices)
CHANNELS = (64, 128, 256, 512, 512)
SHIFT = (-0.030, -0.088, -0.188)  # lpips `ScalingLayer`
SCALE = (0.458, 0.448, 0.450)
NORM_EPS = 1e-10  # lpips `normalize_tensor`


def heads_file() -> Path:
    """The v0.1 VGG linear heads inside the installed `lpips` package, found without importing it."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        raise StageError(
            "the lpips package is not installed; it ships LPIPS's linear heads "
            "(pip install lpips==0.1.4, or bash scripts/setup.sh)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / HEADS_PATH


def check_sha256(path: Path, expected: str, what: str) -> None:
    """A weight file that is missing or is not the expected one is a StageError naming it and the fix."""
    if not Path(path).is_file():
        raise StageError(f"{path}: {what} not found")
    actual = fileio.sha256_file(path)
    if actual != expected:
        raise StageError(
            f"{path}: sha256 {actual} is not {what}'s {expected}; replace the file with the original download"
        )


class Vgg16Features(nn.Module):
    """torchvision's VGG16 `features` up to relu5_3, with the same indices, so its state dict loads as is."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 3
        for spec in VGG16_LAYERS:
            if spec == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(width, int(spec), kernel_size=3, padding=1), nn.ReLU()]
                width = int(spec)
        self.features = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        """The five LPIPS feature maps."""
        outs, start = [], 0
        for cut in CUTS:
            x = self.features[start:cut](x)
            outs.append(x)
            start = cut
        return outs


class LpipsVgg16(nn.Module):
    """d(a, b) for float images in [0, 255] [N,3,H,W] -> [N]; LPIPS v0.1 with VGG16."""

    def __init__(self) -> None:
        super().__init__()
        self.vgg = Vgg16Features()
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).reshape(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).reshape(1, 3, 1, 1))

    def load_weights(self, backbone: dict[str, Tensor], heads: dict[str, Tensor]) -> None:
        """torchvision's VGG16 state dict (classifier keys ignored) and lpips's v0.1 `vgg.pth`."""
        self.vgg.load_state_dict(
            {k: v for k, v in backbone.items() if k.startswith("features.") and int(k.split(".")[1]) < CUTS[-1]}
        )
        # lpips `NetLinLayer`: model = Sequential(Dropout, Conv2d); the conv is model.1
        for i, head in enumerate(self.heads):
            head.weight.data.copy_(heads[f"lin{i}.model.1.weight"])

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        fa = self.vgg((a / 127.5 - 1 - self.shift) / self.scale)
        fb = self.vgg((b / 127.5 - 1 - self.shift) / self.scale)
        total = torch.zeros(a.shape[0], device=a.device, dtype=a.dtype)
        for head, xa, xb in zip(self.heads, fa, fb):
            diff = (_unit(xa) - _unit(xb)).square()
            total = total + head(diff).mean(dim=(1, 2, 3))
        return total


def _unit(x: Tensor) -> Tensor:
    """Each pixel's feature vector divided by its norm (lpips `normalize_tensor`)."""
    return x / (x.square().sum(dim=1, keepdim=True).sqrt() + NORM_EPS)


def load(backbone: Path, device: str | torch.device = "cpu") -> LpipsVgg16:
    """The distance network from the user's VGG16 file and the lpips package's heads, both sha256-checked."""
    heads = heads_file()
    check_sha256(heads, HEADS_SHA256, "LPIPS v0.1 VGG heads (lpips 0.1.4)")
    check_sha256(backbone, VGG16_SHA256, f"torchvision's {VGG16_FILE}")
    net = LpipsVgg16()
    try:
        net.load_weights(
            torch.load(backbone, map_location="cpu", weights_only=True),
            torch.load(heads, map_location="cpu", weights_only=True),
        )
    except (RuntimeError, KeyError) as err:
        raise StageError(f"{backbone}: not a VGG16 state dict ({err})") from None
    return net.to(device).eval().requires_grad_(False)


def download(out: Path, url: str = VGG16_URL, timeout_s: float = 60.0) -> None:
    """Fetch the VGG16 file to `out`, atomically; one with another sha256 is refused and not kept."""
    import requests

    digest = hashlib.sha256()
    try:
        with requests.get(url, stream=True, timeout=timeout_s) as response, fileio.atomic_path(out) as tmp:
            response.raise_for_status()
            with open(tmp, "wb") as handle:
                for block in response.iter_content(1 << 20):
                    digest.update(block)
                    handle.write(block)
            if digest.hexdigest() != VGG16_SHA256:
                raise StageError(f"{url}: sha256 {digest.hexdigest()}, expected {VGG16_SHA256}; not saved")
    except requests.RequestException as err:
        raise StageError(f"{url}: download failed ({err}); without a network, copy {VGG16_FILE} to {out}") from None
