"""The aligned source: a folder of faces aligned already, such as FFHQ's published images.

FFHQ's 1024² images are the pixels the paper's FID was measured on; detecting and
aligning them again would resample them. So this source lists the images, checks
that they are square and of one power-of-two size (the shard levels halve down to
4²), and the align stage takes each as its own face, unchanged. Attribution comes
from FFHQ's metadata file, `ffhq-dataset-v2.json` (NVlabs/ffhq-dataset README,
"Metadata"): per image its Flickr page, title, author, licence name and deed, keyed
here by the image's file name (`00000.png` ... `69999.png`, unique in FFHQ).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path, PurePosixPath
from typing import Any

from stylegan.data.crawl.config import AlignedSettings
from stylegan.data.crawl.flickr import FLICKR_LICENSES
from stylegan.data.crawl.folder import photo_files, pixel_size, read_json_object
from stylegan.data.pack import levels
from stylegan.data.records import CatalogueRecord, photo_record
from stylegan.errors import StageError

log = logging.getLogger(__name__)

SOURCE = "aligned"
# FFHQ's metadata names licences with Flickr's own strings; the records carry Flickr's ids,
# which pack.licenses allows.
LICENSE_IDS = {name: str(number) for number, (name, _) in FLICKR_LICENSES.items()}
FLICKR_PAGE = re.compile(r"^https?://(?:www\.)?flickr\.com/photos/([^/]+)/(\d+)")


def load_metadata(path: str | None) -> dict[str, dict[str, Any]]:
    """FFHQ's per-image `metadata` by the file name of its image and of its thumbnail; {} without a file."""
    if not path:
        return {}
    data = read_json_object(path, "crawl.aligned.metadata", "image index -> entry, as ffhq-dataset-v2.json")
    by_name: dict[str, dict[str, Any]] = {}
    for index, entry in data.items():
        try:
            names = {PurePosixPath(entry[part]["file_path"]).name for part in ("image", "thumbnail") if part in entry}
            metadata = entry["metadata"]
        except (KeyError, TypeError):
            raise StageError(
                f"crawl.aligned.metadata: {path}: entry {index!r} lacks metadata or "
                "image.file_path (ffhq-dataset-v2.json's fields)"
            ) from None
        by_name.update((name, metadata) for name in names)
    return by_name


def attribution(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The catalogue's attribution keys from one FFHQ metadata entry; licence 'unknown' without one."""
    if metadata is None:
        return {"license_id": "unknown"}
    page = metadata.get("photo_url") or None
    owner = FLICKR_PAGE.match(page) if page else None
    licence = metadata.get("license") or None
    return {
        "owner_id": owner and owner.group(1),
        "owner_name": metadata.get("author") or None,
        "license_id": LICENSE_IDS.get(licence, "unknown"),
        "license_name": licence,
        "license_url": metadata.get("license_url") or None,
        "page_url": page,
        "title": metadata.get("photo_title") or None,
        "date_uploaded": metadata.get("date_uploaded") or None,
    }


def check_size(name: str, size: tuple[int | None, int | None], first: tuple[str, int] | None) -> int:
    """The side of a square image; StageError naming the file when it is not square, not a shard size, or
    not the size of the first image."""
    width, height = size
    if width is None:
        raise StageError(f"crawl.aligned.path: {name} cannot be read as an image")
    if width != height:
        raise StageError(f"crawl.aligned.path: {name} is {width}x{height}; aligned images must be square")
    try:
        levels(width)
    except StageError as err:
        raise StageError(f"crawl.aligned.path: {name}: {err}") from None
    if first is not None and width != first[1]:
        raise StageError(
            f"crawl.aligned.path: {name} is {width}², but {first[0]} is {first[1]}²; aligned images "
            "must all have one size"
        )
    return width


def catalogue(settings: AlignedSettings) -> list[CatalogueRecord]:
    """One record per aligned image, sizes checked from the headers, attribution from the metadata."""
    if not settings.path or not Path(settings.path).is_dir():
        raise StageError(f"crawl.aligned.path: {settings.path} is not a directory")
    root = Path(settings.path)
    metadata = load_metadata(settings.metadata)
    records: list[CatalogueRecord] = []
    first: tuple[str, int] | None = None
    for path in photo_files(root):
        name = path.relative_to(root).as_posix()
        side = check_size(name, pixel_size(path), first)
        first = first or (name, side)
        records.append(
            photo_record(
                **attribution(metadata.get(path.name)),
                photo_id=f"{SOURCE}:{name}",
                source=SOURCE,
                source_id=name,
                width=side,
                height=side,
            )
        )
    if not records:
        raise StageError(f"crawl.aligned.path: no images in {root}")
    unlicensed = sum(r["license_id"] == "unknown" for r in records)
    if unlicensed:
        log.warning(
            "%d of %d aligned images have no licence in crawl.aligned.metadata: license_id 'unknown'",
            unlicensed,
            len(records),
        )
    return records
