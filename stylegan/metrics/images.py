"""Image operations that several metrics share, so each metric sees images brought to size the same way."""

from __future__ import annotations

from torch import Tensor


def box_downsample(images: Tensor, size: int) -> Tensor:
    """Average non-overlapping f x f boxes, f = H // size, when H > size (SG1's reshape-and-mean,
    NVlabs/stylegan `metrics/linear_separability.py` and `perceptual_path_length.py`)."""
    n, ch, h, w = images.shape
    if h <= size:
        return images
    f = h // size
    return images.reshape(n, ch, h // f, f, w // f, f).mean(dim=(3, 5))
