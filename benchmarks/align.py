"""Align speed: aligned faces per second per core, and where the time goes.

Synthetic in-the-wild photos (the demo's astronaut scenes at FFHQ's example size,
2016x1512, one face each) go through the stage's steps one at a time in this
process (one core; OMP_NUM_THREADS=1): decode, detection, landmarks, the FFHQ
transform (crop, padding and blur included) and the PNG write. Rows compare the
faithful 4096 transform with smaller ones, full-size detection with detection on
a copy scaled to 1024 (`align.detect_max_side`), and HOG with MMOD (--cnn).
A chunk job with `align.workers` processes scales this by the cores it is given.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/align.py --photos 6
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stylegan import fileio  # noqa: E402
from stylegan.data import demo, landmarks  # noqa: E402
from stylegan.data.align import align  # noqa: E402
from stylegan.data.align_chunk import png_bytes  # noqa: E402
from stylegan.data.photo import decode  # noqa: E402

STEPS = ("decode", "detect", "landmarks", "transform", "png")


def make_photos(folder: Path, count: int, width: int, height: int, face_px: float) -> list[Path]:
    """Demo scenes with one face of about `face_px` pixels, saved as JPEG."""
    head, face_side = demo.astronaut_head()
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        where = demo.Placement(width, height, face_px, float(rng.uniform(-10, 10)), bool(index % 2),
                               (float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 0.8))))  # fmt: skip
        scene = demo.compose(head, face_side, demo.background(rng, width, height), where)
        paths.append(folder / f"photo_{index}.jpg")
        fileio.write_bytes(paths[-1], demo.encode(scene, as_png=False, quality=92))
    return paths


def run(
    paths: list[Path], out: Path, kind: str, max_side: int | None, output_size: int, transform_size: int
) -> tuple[dict[str, float], int]:
    """Seconds per step summed over the photos, and the number of faces aligned."""
    finder = landmarks.finder(kind, 1, max_side)
    spent = dict.fromkeys(STEPS, 0.0)
    faces = 0
    for path in paths:
        clock = time.perf_counter()
        pixels = decode(path, 100_000_000)
        clock = _lap(spent, "decode", clock)
        boxes = finder.detect(pixels)
        clock = _lap(spent, "detect", clock)
        for rect, _ in boxes:
            points = finder.landmarks(pixels, rect)
            clock = _lap(spent, "landmarks", clock)
            image = align(pixels, points, output_size, transform_size).image
            clock = _lap(spent, "transform", clock)
            fileio.write_bytes(out / f"{path.stem}_{faces}.png", png_bytes(image))
            clock = _lap(spent, "png", clock)
            faces += 1
    return spent, faces


def _lap(spent: dict[str, float], step: str, since: float) -> float:
    now = time.perf_counter()
    spent[step] += now - since
    return now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=6)
    parser.add_argument("--width", type=int, default=2016)
    parser.add_argument("--height", type=int, default=1512)
    parser.add_argument("--face", type=float, default=350.0, help="face box side in the photo, pixels")
    parser.add_argument("--cnn", action="store_true", help="add a row for dlib's MMOD CNN detector (slow on CPU)")
    args = parser.parse_args()
    configs = [("hog", None, 1024, 4096), ("hog", None, 1024, 2048), ("hog", 1024, 1024, 4096),
               ("hog", None, 64, 4096), ("hog", None, 64, 256)]  # fmt: skip
    if args.cnn:
        configs.append(("cnn", 1024, 1024, 4096))
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_photos(Path(tmp), args.photos, args.width, args.height, args.face)
        landmarks.finder("hog", 1)  # model loading is per process, not per face: keep it out
        print(f"{args.photos} photos {args.width}x{args.height}, face ~{args.face:.0f} px, one process\n")
        print(f"{'detector':>8} {'det.side':>8} {'output':>6} {'transform':>9} {'faces':>5} {'faces/s/core':>12} "
              + " ".join(f"{s:>9}" for s in STEPS))  # fmt: skip
        for kind, max_side, output_size, transform_size in configs:
            spent, faces = run(paths, Path(tmp), kind, max_side, output_size, transform_size)
            total = sum(spent.values())
            shares = " ".join(f"{100 * spent[s] / total:8.1f}%" for s in STEPS)
            print(
                f"{kind:>8} {str(max_side or 'full'):>8} {output_size:>6} {transform_size:>9} {faces:>5} "
                f"{faces / total:>12.2f} {shares}"
            )


if __name__ == "__main__":
    main()
