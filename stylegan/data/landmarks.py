"""Find faces and their 68 landmarks with dlib, the tools FFHQ was aligned with.

FFHQ's README says only "aligned and cropped using dlib"; the widely used
re-implementation (Puzer/stylegan-encoder `ffhq_dataset/landmarks_detector.py`) runs the HOG frontal detector with one
2x upsample and the iBUG 68-point shape predictor, and that is the default here.
dlib's MMOD CNN detector (from `face-recognition-models`) is the option for
harder poses: slower on a CPU, more robust to rotation and small faces.

Models take about a second to load, so each process loads them once and keeps
them (`finder()`); a pool worker pays that once, not once per photo.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from stylegan.errors import StageError

Kind = Literal["hog", "cnn"]
# The iBUG 300-W 68-point layout that dlib's predictor returns (FFHQ's
# NVlabs/ffhq-dataset `download_ffhq.py` indexes these same points).
LANDMARKS = 68
EYE_LEFT, EYE_RIGHT = slice(36, 42), slice(42, 48)  # 6-point eye contours
MOUTH_LEFT, MOUTH_RIGHT = 48, 54  # mouth_outer[0], mouth_outer[6]


@dataclasses.dataclass(frozen=True)
class Detection:
    """One face: its box (left, top, right, bottom), the detector's confidence, its landmarks."""

    rect: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray  # 68x2 float64, x then y, photo pixels


def model_path(name: str) -> Path:
    """A model file of `face-recognition-models`, found without importing the package.

    Its `__init__` imports `pkg_resources`, which modern setuptools no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise StageError("face-recognition-models is not installed (see envs/data.yaml)")
    path = Path(spec.submodule_search_locations[0]) / "models" / name
    if not path.is_file():
        raise StageError(f"face-recognition-models has no {name} at {path}")
    return path


class FaceFinder:
    """A detector and the 68-point shape predictor, loaded together."""

    def __init__(self, kind: Kind, upsample: int, max_side: int | None = None):
        import dlib

        self.kind = kind
        self.upsample = upsample
        self.max_side = max_side
        self._rect = dlib.rectangle
        self._predictor = dlib.shape_predictor(str(model_path("shape_predictor_68_face_landmarks.dat")))
        if kind == "hog":
            self._hog = dlib.get_frontal_face_detector()
        else:
            self._cnn = dlib.cnn_face_detection_model_v1(str(model_path("mmod_human_face_detector.dat")))

    def detect(self, pixels: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        """Face boxes (in `pixels`' coordinates) and scores, in dlib's order (best first for HOG).

        With `max_side`, detection runs on a copy whose long side is at most that:
        on a large photo detection is most of the stage's time, and faces too small
        to find there are too small for the dataset anyway. Landmarks still come
        from the full-resolution photo.
        """
        height, width = pixels.shape[:2]
        small = _fit(pixels, self.max_side)
        sx, sy = width / small.shape[1], height / small.shape[0]
        if self.kind == "hog":
            # run() is detector(img, upsample) with the scores kept; threshold 0 is dlib's default.
            rects, scores, _ = self._hog.run(small, self.upsample, 0.0)
            found = [(r, float(s)) for r, s in zip(rects, scores)]
        else:
            found = [(d.rect, float(d.confidence)) for d in self._cnn(small, self.upsample)]
        return [(_box(r, sx, sy), score) for r, score in found]

    def landmarks(self, pixels: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
        """The 68 landmarks of the face in `rect`, as a 68x2 float array of pixel positions."""
        shape = self._predictor(pixels, self._rect(*rect))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def find(self, pixels: np.ndarray) -> list[Detection]:
        """Every face in the photo with its landmarks; each becomes its own face record."""
        return [Detection(rect, score, self.landmarks(pixels, rect)) for rect, score in self.detect(pixels)]


def _fit(pixels: np.ndarray, max_side: int | None) -> np.ndarray:
    """The photo scaled down (antialiased) so its long side is at most `max_side`."""
    height, width = pixels.shape[:2]
    if max_side is None or max(height, width) <= max_side:
        return pixels
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.BILINEAR))


def _box(rect, sx: float = 1.0, sy: float = 1.0) -> tuple[int, int, int, int]:
    """A dlib rectangle as (left, top, right, bottom), scaled back to the full photo."""
    return (round(rect.left() * sx), round(rect.top() * sy), round(rect.right() * sx), round(rect.bottom() * sy))


@functools.cache
def finder(kind: Kind, upsample: int, max_side: int | None = None) -> FaceFinder:
    """The process's FaceFinder for these settings, loaded on first use."""
    return FaceFinder(kind, upsample, max_side)
