"""FFHQ's face alignment: from 68 landmarks in a photo to a square, levelled crop.

Every step and constant follows `recreate_aligned_images` of NVlabs/ffhq-dataset
(`download_ffhq.py` lines 259-381): the oriented quad from the eye and mouth
averages, the shrink for large faces, the crop with a border, reflect padding
blended with a Gaussian blur and the median colour, the bilinear quad transform at
`transform_size` and the Lanczos resize to `output_size`. The one addition is
bookkeeping: the result says where the quad lies in the source photo and whether
the padding path ran, so a crop can be verified or recreated from its record.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import scipy.ndimage
from PIL import Image

from stylegan.data.landmarks import EYE_LEFT, EYE_RIGHT, LANDMARKS, MOUTH_LEFT, MOUTH_RIGHT
from stylegan.settings import SettingsError, setting

# NVlabs/ffhq-dataset download_ffhq.py: every constant of the algorithm.
EYE_SCALE = 2.0  # quad half-side >= 2.0 x eye-to-eye
MOUTH_SCALE = 1.8  # quad half-side >= 1.8 x eye-to-mouth
CENTRE_SHIFT = 0.1  # quad centre moves from the eyes toward the mouth by this fraction
BORDER = 0.1  # crop border, fraction of qsize (at least MIN_BORDER pixels)
MIN_BORDER = 3
PAD = 0.3  # padding when padding is needed, fraction of qsize
BLUR = 0.02  # Gaussian sigma of the padding blend, fraction of qsize


@dataclasses.dataclass(frozen=True)
class AlignSettings:
    """The `align` config section."""

    workers: int = setting(2, "processes aligning within one job", ge=1)
    output_size: int = setting(
        1024, "aligned image side in pixels (download_ffhq.py output_size)", pow2=True, ge=8, le=1024
    )
    transform_size: int = setting(
        4096,
        "side the quad is sampled at (bilinear) before the Lanczos resize to "
        "output_size; must be >= output_size (download_ffhq.py: 4096)",
        ge=8,
        le=8192,
    )
    rotate: bool = setting(True, "level the eyes as FFHQ does; false keeps the photo's axes (FFHQ-U)")
    padding: bool = setting(
        True,
        "reflect-pad with blur and median-colour blend where the quad leaves the photo; false leaves black (FFHQ-U)",
    )
    detector: Literal["hog", "cnn"] = setting(
        "hog", "dlib HOG frontal detector, or dlib's MMOD CNN detector from face-recognition-models"
    )
    upsample: int = setting(
        1, "times the detector upsamples the photo 2x to find small faces (Puzer's detector(img, 1))", ge=0, le=4
    )
    detect_max_side: int | None = setting(
        None,
        "run the detector on a copy scaled to at most this long side (landmarks still use the full photo); "
        "detection is most of the time on large photos; null: full size, as FFHQ",
        ge=64,
    )
    max_image_pixels: int = setting(
        100_000_000,
        "photos with more pixels are refused as decompression bombs (Pillow refuses above 178,956,970 on its own)",
        ge=1,
        le=178956970,
    )

    def __post_init__(self) -> None:
        if self.transform_size < self.output_size:
            raise SettingsError(
                f"align.transform_size: got {self.transform_size}, expected >= align.output_size ({self.output_size})"
            )


class AlignError(ValueError):
    """This face cannot be aligned (degenerate landmarks); the message is the record's reason."""


@dataclasses.dataclass(frozen=True)
class Aligned:
    """One aligned face and how it was made."""

    image: np.ndarray  # output_size x output_size x 3 uint8
    quad: np.ndarray  # 4x2, UL, LL, LR, UR, in source-photo pixels
    qsize: float  # quad side in source-photo pixels
    shrink: int  # the photo was downscaled by this factor first (1: not)
    padded: bool  # the reflect-padding blend ran


def face_quad(landmarks: np.ndarray, rotate: bool = True) -> tuple[np.ndarray, float]:
    """The oriented square (UL, LL, LR, UR) FFHQ crops around a face, and its side.

    The side is max(4 x eye-to-eye, 3.6 x eye-to-mouth); with `rotate` its x axis is
    the average of the eye line and the eye-mouth line turned by 90 degrees, so the
    face comes out level.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (LANDMARKS, 2) or not np.isfinite(lm).all():
        raise AlignError(f"expected {LANDMARKS} finite landmarks, got shape {lm.shape}")
    eye_left, eye_right = lm[EYE_LEFT].mean(axis=0), lm[EYE_RIGHT].mean(axis=0)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (lm[MOUTH_LEFT] + lm[MOUTH_RIGHT]) * 0.5 - eye_avg
    if rotate:
        x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
        norm = np.hypot(*x)
        if not norm > 0:
            raise AlignError("degenerate landmarks: the eye and mouth lines give no orientation")
        x = x / norm
    else:
        x = np.array([1.0, 0.0])
    x = x * max(np.hypot(*eye_to_eye) * EYE_SCALE, np.hypot(*eye_to_mouth) * MOUTH_SCALE)
    if not np.hypot(*x) > 0:
        raise AlignError("degenerate landmarks: eyes and mouth coincide")
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * CENTRE_SHIFT
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    return quad, float(np.hypot(*x) * 2)


def align(
    pixels: np.ndarray,
    landmarks: np.ndarray,
    output_size: int = 1024,
    transform_size: int = 4096,
    rotate: bool = True,
    padding: bool = True,
) -> Aligned:
    """Align one face of an RGB photo exactly as FFHQ did (NVlabs/ffhq-dataset `download_ffhq.py`)."""
    quad, qsize = face_quad(landmarks, rotate)
    source_quad, source_qsize = quad.copy(), qsize
    img = Image.fromarray(pixels)

    shrink = int(np.floor(qsize / output_size * 0.5))
    if shrink > 1:  # a face much larger than the output: downscale the photo first
        size = (int(np.rint(float(img.size[0]) / shrink)), int(np.rint(float(img.size[1]) / shrink)))
        img = img.resize(size, Image.LANCZOS)
        quad, qsize = quad / shrink, qsize / shrink

    border = max(int(np.rint(qsize * BORDER)), MIN_BORDER)
    img, quad = _crop(img, quad, border)
    padded = False
    if padding:
        img, quad, padded = _pad(img, quad, qsize, border)

    img = img.transform((transform_size, transform_size), Image.QUAD, (quad + 0.5).flatten(), Image.BILINEAR)
    if output_size < transform_size:
        img = img.resize((output_size, output_size), Image.LANCZOS)
    return Aligned(np.asarray(img, dtype=np.uint8), source_quad, source_qsize, max(shrink, 1), padded)


def _bounds(quad: np.ndarray) -> tuple[int, int, int, int]:
    """The integer bounding box (floor of the minimum, ceil of the maximum) of the quad."""
    return (
        int(np.floor(quad[:, 0].min())),
        int(np.floor(quad[:, 1].min())),
        int(np.ceil(quad[:, 0].max())),
        int(np.ceil(quad[:, 1].max())),
    )


def _crop(img: Image.Image, quad: np.ndarray, border: int) -> tuple[Image.Image, np.ndarray]:
    """Cut the photo to the quad's box plus the border, so padding and blur see only the face."""
    left, top, right, bottom = _bounds(quad)
    crop = (
        max(left - border, 0),
        max(top - border, 0),
        min(right + border, img.size[0]),
        min(bottom + border, img.size[1]),
    )
    if crop[2] - crop[0] < img.size[0] or crop[3] - crop[1] < img.size[1]:
        img = img.crop(crop)
        quad = quad - crop[0:2]
    return img, quad


def _pad(img: Image.Image, quad: np.ndarray, qsize: float, border: int) -> tuple[Image.Image, np.ndarray, bool]:
    """Extend a photo the quad overhangs: reflect, blur toward the edge, fade to the median colour.

    The reflection alone would show mirrored features (a second ear, a doubled
    chin); the blur weight is 1 in the padded band and fades to 0 at a depth of
    pad/3 inside the photo, and the median-colour blend rises from 0 at the photo's
    edge to 1 at the outer edge, so the padding reads as out-of-focus background.
    """
    left, top, right, bottom = _bounds(quad)
    pad = (
        max(-left + border, 0),
        max(-top + border, 0),
        max(right - img.size[0] + border, 0),
        max(bottom - img.size[1] + border, 0),
    )
    if max(pad) <= border - 4:
        return img, quad, False
    pad = np.maximum(pad, int(np.rint(qsize * PAD)))
    array = np.pad(np.float32(img), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), "reflect")
    h, w, _ = array.shape
    y, x, _ = np.ogrid[:h, :w, :1]
    mask = np.maximum(
        1.0 - np.minimum(np.float32(x) / pad[0], np.float32(w - 1 - x) / pad[2]),
        1.0 - np.minimum(np.float32(y) / pad[1], np.float32(h - 1 - y) / pad[3]),
    )
    blur = qsize * BLUR
    array += (scipy.ndimage.gaussian_filter(array, [blur, blur, 0]) - array) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    array += (np.median(array, axis=(0, 1)) - array) * np.clip(mask, 0.0, 1.0)
    img = Image.fromarray(np.uint8(np.clip(np.rint(array), 0, 255)))
    return img, quad + pad[:2], True
