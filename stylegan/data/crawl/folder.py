"""The folder source: a user's own directory of photos, with an optional licence sidecar.

The sidecar is a JSON object mapping each photo's path (relative to the folder,
with '/') to its attribution. A photo without an entry is still catalogued, with
`license_id: "unknown"`, so its lack of a licence is on record; the licence
allow-list (`crawl.licenses`) holds Flickr ids and does not filter this source:
the user vouches for their own folder, and the crawl report counts photos by licence.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from PIL import Image

from stylegan.data.crawl.config import FolderSettings
from stylegan.data.photo import IMAGE_SUFFIXES
from stylegan.data.records import CATALOGUE_KEYS, photo_record
from stylegan.errors import StageError

log = logging.getLogger(__name__)

# What a sidecar entry may say about a photo; identity keys come from the file itself.
SIDECAR_KEYS = set(CATALOGUE_KEYS) - {"photo_id", "source", "source_id", "width", "height"}


def read_json_object(path: str, key: str, holds: str) -> dict[str, Any]:
    """A configured JSON file that must hold an object; each failure names the config `key` that points at it."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise StageError(f"{key}: {path} does not exist") from None
    except json.JSONDecodeError as err:
        raise StageError(f"{key}: {path} is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise StageError(f"{key}: {path} must hold a JSON object of {holds}")
    return data


def load_sidecar(path: str | None) -> dict[str, dict[str, Any]]:
    """The sidecar mapping, checked; {} when none is configured."""
    if not path:
        return {}
    data = read_json_object(path, "crawl.folder.sidecar", "file name -> entry")
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise StageError(f"crawl.folder.sidecar: {path}: entry {name!r} must be an object")
        unknown = sorted(set(entry) - SIDECAR_KEYS)
        if unknown:
            raise StageError(
                f"crawl.folder.sidecar: {path}: entry {name!r} has unknown key {unknown[0]!r} "
                f"(allowed: {', '.join(sorted(SIDECAR_KEYS))})"
            )
    return data


def photo_files(root: Path) -> list[Path]:
    """Image files under `root` by suffix, hidden files and folders skipped, sorted."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and path.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


def pixel_size(path: Path) -> tuple[int | None, int | None]:
    """Width and height from the header; unknown (None) when the file does not open."""
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError) as err:
        log.warning("%s: cannot read its size (%s); the download step will quarantine it", path, err)
        return None, None


def catalogue(settings: FolderSettings) -> list[dict[str, Any]]:
    """One record per photo in the folder, attribution taken from the sidecar."""
    root = Path(settings.path)
    if not root.is_dir():
        raise StageError(f"crawl.folder.path: {root} is not a directory")
    sidecar = load_sidecar(settings.sidecar)
    records = []
    for path in photo_files(root):
        name = path.relative_to(root).as_posix()
        entry = sidecar.get(name, {})
        width, height = pixel_size(path)
        fields = {key: entry.get(key) for key in SIDECAR_KEYS}
        fields["license_id"] = str(entry["license_id"]) if entry.get("license_id") is not None else "unknown"
        records.append(
            photo_record(
                **fields, photo_id=f"folder:{name}", source="folder", source_id=name, width=width, height=height
            )
        )
    missing = sorted(set(sidecar) - {r["source_id"] for r in records})
    if missing:
        log.warning("sidecar names %d files that are not in %s, e.g. %s", len(missing), root, missing[0])
    unlicensed = sum(r["license_id"] == "unknown" for r in records)
    if unlicensed:
        log.warning(
            "%d of %d photos have no sidecar entry: recorded with license_id 'unknown'", unlicensed, len(records)
        )
    return records
