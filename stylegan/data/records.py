"""The records the dataset stages pass on, one JSON object per line: their keys and how each is made.

    crawl   -> photo records: the catalogue keys, then the download keys
    align   -> face records: a downloaded photo record plus the face keys
    filter  -> kept face records, and rejected faces: a face record plus why
    pack    -> reads kept face records (manifest.METADATA names what goes into the shards)

Every stage builds its records with the functions here and the tests import the
same key lists, so a renamed or added key changes in one place. Every key is
present in every record; unknown values are null.
"""

from __future__ import annotations

from typing import Any, TypedDict


class CatalogueRecord(TypedDict):
    """One eligible photo of a source, with its attribution (the catalogue's lines)."""

    photo_id: str  # "<source>:<source_id>", unique across sources
    source: str  # flickr | folder | aligned
    source_id: str
    owner_id: str | None
    owner_name: str | None
    license_id: str | None
    license_name: str | None
    license_url: str | None
    page_url: str | None
    title: str | None
    date_uploaded: str | None  # ISO 8601 UTC
    date_taken: str | None
    width: int | None
    height: int | None
    source_url: str | None


class PhotoRecord(CatalogueRecord):
    """A catalogue record after its download: where the file is, or why there is none."""

    crawled_at: str
    sha256: str | None
    path: str | None
    status: str  # ok | failed
    reason: str | None


class FaceRecord(PhotoRecord):
    """One face of a downloaded photo (or one photo without a usable face): attribution travels with it."""

    face_id: str | None  # "<photo_id>#<face_index>"
    face_index: int | None
    image: str | None  # the aligned PNG
    md5: str | None  # of the aligned pixels (HWC uint8)
    landmarks: list[list[float]] | None  # 68 points in photo pixels
    rect: list[int] | None  # the detector's box
    quad: list[list[float]] | None  # the FFHQ crop quad in photo pixels
    qsize: float | None
    score: float | None
    output_size: int
    # status: ok | unreadable | no_face | align_failed (the photo's own status is replaced)


class RejectedFace(FaceRecord):
    """A face a filter turned away, with what it measured and the bound it broke."""

    filter: str
    value: Any
    threshold: Any


def _own_keys(cls: type, parent: type | None) -> tuple[str, ...]:
    inherited = set(parent.__annotations__) if parent else set()
    return tuple(k for k in cls.__annotations__ if k not in inherited)


CATALOGUE_KEYS = _own_keys(CatalogueRecord, None)
DOWNLOAD_KEYS = _own_keys(PhotoRecord, CatalogueRecord)
FACE_KEYS = _own_keys(FaceRecord, PhotoRecord) + ("status", "reason")  # a face's own outcome
REJECTION_KEYS = _own_keys(RejectedFace, FaceRecord)


def photo_record(**fields: Any) -> CatalogueRecord:
    """A catalogue record with every catalogue key present (null when unknown)."""
    unknown = set(fields) - set(CATALOGUE_KEYS)
    if unknown:
        raise KeyError(f"not photo-record keys: {sorted(unknown)}")
    return {key: fields.get(key) for key in CATALOGUE_KEYS}  # type: ignore[return-value]


def downloaded(
    record: CatalogueRecord, *, crawled_at: str, sha256: str | None, path: str | None, reason: str | None
) -> PhotoRecord:
    """The catalogue record with its download's outcome: ok when there is no `reason`."""
    return {
        **record,
        "crawled_at": crawled_at,
        "sha256": sha256,
        "path": path,  # type: ignore[typeddict-item]
        "status": "failed" if reason else "ok",
        "reason": reason,
    }


def face_record(photo: PhotoRecord, **fields: Any) -> FaceRecord:
    """A face record: the photo record (attribution travels) plus every face key."""
    unknown = set(fields) - set(FACE_KEYS)
    if unknown:
        raise KeyError(f"not face-record keys: {sorted(unknown)}")
    return {**photo, **{key: fields.get(key) for key in FACE_KEYS}}  # type: ignore[typeddict-item]


def rejected_face(face: FaceRecord, filter: str, value: Any, threshold: Any) -> RejectedFace:
    """The face record with the filter that rejected it, its measured value and the threshold."""
    return {**face, "filter": filter, "value": value, "threshold": threshold}  # type: ignore[typeddict-item]
