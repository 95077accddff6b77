"""Decode one in-the-wild photo into the RGB pixels the detector and the aligner see.

Photos from Flickr come in every shape a camera or an editor can write: rotated
by an EXIF tag, greyscale, palette, CMYK, 16-bit, with transparency, truncated by
a broken upload, or crafted to exhaust memory. FFHQ's script saw only PNGs that
NVIDIA had already converted (NVlabs/ffhq-dataset `download_ffhq.py`: no RGB conversion, no
EXIF transpose), so it does none of this; here
every photo is normalised the same way, or refused with a reason a person can read:

- the EXIF orientation is applied, so landmarks and quads are in the pixels a
  viewer sees (the face record's coordinates are "after EXIF transpose");
- greyscale, palette, CMYK and 16-bit images are converted to 8-bit RGB;
- transparency is composited onto white, the background a viewer shows it on;
  a cut-out face then gets a plain white surround instead of undefined colours;
- a photo larger than the configured pixel count is refused from its header,
  before any pixel is decoded (a decompression bomb costs nothing);
- a truncated or corrupt file is refused (FFHQ's script loaded truncated images
  with a grey tail; such a crop would be silently damaged).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# The suffixes of image files wherever the pipeline lists or names them (a crawl's
# folder source, the store's file names, the labelled faces): formats PIL decodes.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
# Modes holding more than 8 bits per sample: scaled to 8 bits before RGB conversion.
_WIDE_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
WHITE = (255, 255, 255)


class PhotoError(ValueError):
    """The photo cannot be used; the message says why (it becomes the record's reason)."""


def decode(path: str | Path, max_pixels: int) -> np.ndarray:
    """The photo at `path` as uint8 H×W×3 RGB, upright, or PhotoError with the reason."""
    try:
        with warnings.catch_warnings():
            # Our own limit (checked below from the header) replaces PIL's warning;
            # PIL's hard DecompressionBombError (2x its limit) still applies on open.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                _check_size(image.size, max_pixels)
                image.load()
                upright = ImageOps.exif_transpose(image)
                return np.ascontiguousarray(to_rgb(upright), dtype=np.uint8)
    except PhotoError:
        raise
    except Image.DecompressionBombError as err:
        raise PhotoError(f"decompression bomb refused: {err}") from None
    except UnidentifiedImageError:
        raise PhotoError("not an image file Pillow can identify (corrupt or unsupported format)") from None
    except FileNotFoundError:
        raise PhotoError(f"file not found: {path}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        # Truncated JPEG/PNG data, broken chunks, bad EXIF: Pillow's own words are the best reason.
        raise PhotoError(f"corrupt or truncated image: {err}") from None


def _check_size(size: tuple[int, int], max_pixels: int) -> None:
    """Refuse a photo whose header promises more pixels than the configured limit."""
    width, height = size
    if width < 1 or height < 1:
        raise PhotoError(f"empty image ({width}x{height})")
    if width * height > max_pixels:
        raise PhotoError(
            f"decompression bomb refused: {width}x{height} = {width * height} pixels "
            f"exceeds align.max_image_pixels ({max_pixels})"
        )


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow image as 8-bit RGB: alpha composited on white, wide samples scaled."""
    if image.mode in _WIDE_MODES:
        wide = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or wide.max() > 255 else 255.0
        image = Image.fromarray(np.clip(np.rint(wide * (255.0 / top)), 0, 255).astype(np.uint8))
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # a palette entry may be transparent
    if image.mode in {"RGBA", "LA", "PA", "La", "RGBa"}:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV, RGBX
