"""Find faces and their 68 landmarks with dlib, the tools FFHQ was aligned with.

FFHQ's README says only "aligned and cropped using dlib"; the widely used
re-implementation (Puzer's, dataset.md §1) runs the HOG frontal detector with one
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

Kind = Literal["hog", "cnn"]
LANDMARKS = 68  # iBUG 300-W points (dataset.md §1)


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
        raise RuntimeError("face-recognition-models is not installed (see envs/data.yaml)")
    path = Path(spec.submodule_search_locations[0]) / "models" / name
    if not path.is_file():
        raise RuntimeError(f"face-recognition-models has no {name} at {path}")
    return path


class FaceFinder:
    """A detector and the 68-point shape predictor, loaded together."""

    def __init__(self, kind: Kind, upsample: int):
        import dlib

        self.kind = kind
        self.upsample = upsample
        self._rect = dlib.rectangle
        self._predictor = dlib.shape_predictor(str(model_path("shape_predictor_68_face_landmarks.dat")))
        if kind == "hog":
            self._hog = dlib.get_frontal_face_detector()
        else:
            self._cnn = dlib.cnn_face_detection_model_v1(str(model_path("mmod_human_face_detector.dat")))

    def detect(self, pixels: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        """Face boxes and scores, in dlib's order (best first for HOG)."""
        if self.kind == "hog":
            # run() is detector(img, upsample) with the scores kept; threshold 0 is dlib's default.
            rects, scores, _ = self._hog.run(pixels, self.upsample, 0.0)
            return [(_box(r), float(s)) for r, s in zip(rects, scores)]
        return [(_box(d.rect), float(d.confidence)) for d in self._cnn(pixels, self.upsample)]

    def landmarks(self, pixels: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
        """The 68 landmarks of the face in `rect`, as a 68x2 float array of pixel positions."""
        shape = self._predictor(pixels, self._rect(*rect))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def find(self, pixels: np.ndarray) -> list[Detection]:
        """Every face in the photo with its landmarks; each becomes its own face record."""
        return [Detection(rect, score, self.landmarks(pixels, rect)) for rect, score in self.detect(pixels)]


def _box(rect) -> tuple[int, int, int, int]:
    return (int(rect.left()), int(rect.top()), int(rect.right()), int(rect.bottom()))


@functools.lru_cache(maxsize=None)
def finder(kind: Kind, upsample: int) -> FaceFinder:
    """The process's FaceFinder for these settings, loaded on first use."""
    return FaceFinder(kind, upsample)
