"""The faces the review page shows: the filter's records, and each face's thumbnail and scores.

Kept faces carry no scores (the filter stage writes them unchanged), so the page
measures them again with the filter's own functions and thresholds, from the same
config; a rejected face also shows the filter that turned it away, with what it
measured and the bound it broke, as the filter recorded them.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from stylegan import fileio, settings
from stylegan.data import filter as face_filter
from stylegan.data.records import FaceRecord
from stylegan.errors import StageError

THUMBNAIL = 160  # pixels per side of a face on the page


@dataclasses.dataclass(frozen=True)
class Score:
    """One measure of a face next to the filter's threshold for it."""

    name: str
    value: str
    threshold: str


@dataclasses.dataclass(frozen=True)
class Preview:
    """What the page shows of one face besides its record: the thumbnail (None: image gone) and scores."""

    thumbnail: bytes | None
    scores: tuple[Score, ...]


@dataclasses.dataclass
class Faces:
    """The current filter output, and the one folder the page may read images from."""

    kept: list[FaceRecord]
    rejected: list[dict[str, Any]]
    images: Path  # absolute; a record naming an image outside it is refused
    settings: face_filter.FilterSettings
    by_id: dict[str, dict[str, Any]] = dataclasses.field(init=False, repr=False)  # kept and rejected

    def __post_init__(self) -> None:
        self.by_id = {r["face_id"]: r for r in [*self.kept, *self.rejected]}

    def image_file(self, record: dict[str, Any]) -> Path | None:
        """The face's aligned PNG, or None when it is gone (a withdrawn face's image may be deleted).

        Raises PermissionError for a path outside the dataset's image folder: a
        record is data, and the page serves no file that data merely names.
        """
        if not record.get("image"):
            return None
        path = Path(record["image"]).resolve()
        if not path.is_relative_to(self.images):
            raise PermissionError(f"{record['image']}: outside {self.images}")
        return path if path.is_file() else None


def from_config(config: Path) -> tuple[Faces, Path]:
    """The filter output of the workflow configured by `config`, and its exclusion list (`filter.exclude`).

    Paths are those of workflow/rules/filter.smk and align.smk under `paths.results`,
    relative to the working directory, as Snakemake reads them.
    """
    values = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    filter_settings = settings.load(face_filter.FilterSettings, values.get("filter") or {}, "filter")
    if filter_settings.exclude is None:
        raise StageError(
            f"{config}: filter.exclude is null; set it to the list file the review writes "
            "(e.g. exclude.txt), so that the filter reads the marks"
        )
    results = Path(values.get("paths", {}).get("results", "results"))
    kept = results / "filter" / "kept.jsonl"
    if not kept.is_file():
        raise StageError(f"{kept}: no filter output yet; run the workflow's filter rule first")
    faces = Faces(
        kept=fileio.read_jsonl(kept),  # type: ignore[arg-type]
        rejected=fileio.read_jsonl(results / "filter" / "rejected.jsonl"),
        images=(results / "align" / "faces").resolve(),
        settings=filter_settings,
    )
    return faces, Path(filter_settings.exclude)


def preview(faces: Faces, face_id: str) -> Preview:
    """The thumbnail (JPEG) and scores of one face, from one decode of its aligned image."""
    record = faces.by_id[face_id]
    path = faces.image_file(record)
    if path is None:
        return Preview(None, ())
    pixels = face_filter.load_face({**record, "image": str(path)})
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((THUMBNAIL, THUMBNAIL), Image.BILINEAR).save(buffer, format="JPEG", quality=88)
    return Preview(buffer.getvalue(), scores(record, pixels, faces.settings))


def scores(record: dict[str, Any], pixels: np.ndarray, filters: face_filter.FilterSettings) -> tuple[Score, ...]:
    """What each automatic filter measures of this face (filter.judge's measures), with its threshold."""
    eyes, roll = face_filter.eye_geometry(record["landmarks"])
    return (
        Score("qsize", f"{record['qsize']:.0f}", f"≥ {record['output_size'] / filters.max_upscale:.0f}"),
        Score("eye ratio", f"{eyes / record['qsize']:.3f}", f"≥ {filters.min_eye_ratio:g}"),
        Score("roll", f"{roll:.1f}°", f"≤ {filters.max_roll:g}°"),
        Score(
            "sharpness", f"{face_filter.sharpness(pixels, filters.sharpness_size):.0f}", f"≥ {filters.min_sharpness:g}"
        ),
        Score("chroma", f"{face_filter.chroma(pixels):.3f}", f"≥ {filters.min_chroma:g}"),
    )
