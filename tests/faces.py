"""Synthetic align output for the filter and pack tests: face records and aligned PNGs, and a small packed dataset.

Images are crops of scikit-image's bundled colour pictures, so each "face" has
real texture and colour; variants (blurred, greyscale, near-duplicate) are made
from them. Records carry every field of the shared face-record format.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import skimage.data
from PIL import Image, ImageFilter

from stylegan import cli, fileio
from stylegan.data import records

# Distinct textured crops: (picture, top, left, side) in the source picture's pixels.
CROPS = {
    "astronaut": ("astronaut", 30, 150, 220), "chelsea": ("chelsea", 20, 120, 240),
    "coffee": ("coffee", 60, 120, 300), "rocket": ("rocket", 0, 200, 400),
    "suit": ("astronaut", 250, 30, 250), "flag": ("astronaut", 0, 0, 160),
    "cup": ("coffee", 100, 300, 280), "cat_ear": ("chelsea", 0, 300, 150),
}  # fmt: skip


def picture(name: str, size: int) -> np.ndarray:
    """One of `CROPS` as size x size x 3 uint8."""
    source, top, left, side = CROPS[name]
    pixels = getattr(skimage.data, source)()[top : top + side, left : left + side]
    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.LANCZOS))


def blurred(pixels: np.ndarray, radius: float = 2.5) -> np.ndarray:
    return np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(radius)))


def greyscale(pixels: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(Image.fromarray(pixels).convert("L"))[..., None], 3, axis=2)


def near_copy(pixels: np.ndarray) -> np.ndarray:
    """The same picture, re-saved slightly brighter: a different md5, the same pHash neighbourhood."""
    return np.clip(pixels.astype(np.int16) + 6, 0, 255).astype(np.uint8)


def landmarks(
    eye_distance: float, roll_deg: float = 0.0, centre: tuple[float, float] = (500.0, 400.0)
) -> list[list[float]]:
    """68 points whose eye centres are `eye_distance` apart, tilted by `roll_deg`."""
    points = np.tile(np.asarray(centre), (68, 1))
    angle = np.radians(roll_deg)
    half = 0.5 * eye_distance * np.array([np.cos(angle), np.sin(angle)])
    points[36:42] = np.asarray(centre) - half + np.random.default_rng(0).normal(0, 0.5, (6, 2))
    points[42:48] = np.asarray(centre) + half
    points[48:68] = np.asarray(centre) + [0.0, eye_distance]
    return points.round(2).tolist()


def face_record(
    folder: Path,
    photo_id: str,
    pixels: np.ndarray,
    k: int = 0,
    qsize: float = 400.0,
    eye_ratio: float = 0.24,
    roll: float = 0.0,
    license_id: str = "4",
    owner_id: str = "owner-1",
) -> dict[str, Any]:
    """Write an aligned PNG and return its face record (status ok)."""
    face_id = f"{photo_id}#{k}"
    path = folder / f"{hashlib.md5(face_id.encode()).hexdigest()[:12]}.png"
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return records.face_record(
        photo_record(photo_id, license_id, owner_id),
        face_id=face_id, face_index=k, image=str(path),
        md5=hashlib.md5(np.ascontiguousarray(pixels).tobytes()).hexdigest(),
        landmarks=landmarks(eye_ratio * qsize, roll), rect=[400, 300, 600, 500],
        quad=[[300, 200], [300, 600], [700, 600], [700, 200]], qsize=qsize, score=1.0,
        output_size=pixels.shape[0], status="ok", reason=None,
    )  # fmt: skip


def failed_record(photo_id: str, status: str = "no_face") -> dict[str, Any]:
    """A photo in which align found no usable face."""
    return records.face_record(
        photo_record(photo_id, "4", "owner-1"), output_size=64, status=status, reason="no face detected"
    )


def photo_record(photo_id: str, license_id: str, owner_id: str) -> dict[str, Any]:
    names = {
        "2": "Attribution-NonCommercial License",
        "4": "Attribution License",
        "1": "Attribution-NonCommercial-ShareAlike License",
    }
    catalogue = records.photo_record(
        photo_id=photo_id, source="flickr", source_id=photo_id.split(":")[-1], owner_id=owner_id,
        owner_name=f"Author of {photo_id}", license_id=license_id, license_name=names.get(license_id, license_id),
        license_url=f"https://creativecommons.org/licenses/{license_id}/", page_url=f"https://www.flickr.com/photos/x/{photo_id}",
        title=f"Title | {photo_id}", date_uploaded="2010-01-01", date_taken=None, width=1000, height=800,
        source_url=f"https://live.staticflickr.com/{photo_id}.jpg",
    )  # fmt: skip
    return records.downloaded(
        catalogue,
        crawled_at="2026-01-01T00:00:00Z",
        path=f"photos/{photo_id}.jpg",
        sha256=hashlib.sha256(photo_id.encode()).hexdigest(),
        reason=None,
    )


# --- a small packed dataset, for the pack, reader, training and metrics tests ---

SIZE = 64
PACK = {
    "shards": 3,
    "workers": 2,
    "val_fraction": 0.25,
    "compression": "gzip",
    "gzip_level": 4,
    "licenses": ["2", "4", "public-domain"],
}


def make_faces(folder: Path, photos: int, seed: int = 0) -> list[dict]:
    """`photos` photos with two faces each: distinct noisy pictures, mostly allowed licences."""
    rng = np.random.default_rng(seed)
    names = list(CROPS)
    records = []
    for p in range(photos):
        for k in range(2):
            base = picture(names[(2 * p + k) % len(names)], SIZE).astype(np.int16)
            pixels = np.clip(base + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)
            licence = "1" if p == 3 else ("2", "4")[p % 2]  # photo 3: BY-NC-SA, not allowed
            records.append(face_record(folder, f"flickr:{100 + p}", pixels, k=k, license_id=licence))
    return records


def run_pack(tmp: Path, kept: Path, settings: dict = PACK) -> int:
    return cli.main(
        [
            "dataset",
            "pack",
            "--settings",
            json.dumps(settings),
            "--faces",
            str(kept),
            "--shards",
            str(tmp / "dataset" / "shards"),
            "--manifest",
            str(tmp / "dataset" / "manifest.json"),
        ]
    )


def packed_lzf_manifest(tmp: Path, seed: int) -> Path:
    """A small real dataset (8 photos' faces, lzf shards) for reader and training tests."""
    fileio.write_jsonl(tmp / "kept.jsonl", make_faces(tmp / "faces", photos=8, seed=seed))
    assert run_pack(tmp, tmp / "kept.jsonl", {**PACK, "compression": "lzf"}) == 0
    return tmp / "dataset" / "manifest.json"


# --- an FFHQ-style aligned folder, for the aligned source ---

FFHQ_LICENCES = [
    ("Attribution-NonCommercial License", "https://creativecommons.org/licenses/by-nc/2.0/"),
    ("Attribution License", "https://creativecommons.org/licenses/by/2.0/"),
    ("Public Domain Mark", "https://creativecommons.org/publicdomain/mark/1.0/"),
]


def ffhq_folder(
    root: Path, images: int, size: int = SIZE, described: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """`images` aligned faces laid out as FFHQ's `images1024x1024/00000/00000.png ...` under `root`, and
    `ffhq-dataset-v2.json` beside them describing the first `described` (all by default) with NVIDIA's fields.

    Every fifth image is greyscale and every fifth (offset 2) blurred: the automatic filters would drop them.
    Returns the metadata written.
    """
    rng = np.random.default_rng(seed)
    names = list(CROPS)
    metadata = {}
    for i in range(images):
        pixels = np.clip(
            picture(names[i % len(names)], size).astype(np.int16) + rng.integers(-12, 13, (size, size, 3)), 0, 255
        ).astype(np.uint8)
        pixels = greyscale(pixels) if i % 5 == 0 else blurred(pixels) if i % 5 == 2 else pixels
        file_path = f"images1024x1024/{i // 1000 * 1000:05d}/{i:05d}.png"
        (root / file_path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / file_path)
        licence, deed = FFHQ_LICENCES[i % len(FFHQ_LICENCES)]
        metadata[str(i)] = {
            "category": "training",
            "metadata": {
                "photo_url": f"https://www.flickr.com/photos/owner{i % 4}@N0{i % 4}/{1000 + i}/",
                "photo_title": f"Photo {i}",
                "author": f"Author {i % 4}",
                "country": "",
                "license": licence,
                "license_url": deed,
                "date_uploaded": "2012-03-04",
                "date_crawled": "2018-10-10",
            },
            "image": {
                "file_path": file_path,
                "pixel_size": [size, size],
                "pixel_md5": hashlib.md5(pixels.tobytes()).hexdigest(),
            },
            "thumbnail": {"file_path": f"thumbnails128x128/{i // 1000 * 1000:05d}/{i:05d}.png"},
        }
    described = images if described is None else described
    fileio.write_json(root / "ffhq-dataset-v2.json", {k: v for k, v in metadata.items() if int(k) < described})
    return metadata
