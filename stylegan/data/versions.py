"""Every dataset version pack has published: when, and which faces (by id) each shard held.

A takedown rewrites the shards that held the photo, so the shards alone cannot say
whether a generator trained before it saw that photo. Pack therefore keeps one
small file per version, `versions/<fingerprint>.json` beside the manifest (the
fingerprint is `Manifest.fingerprint`, the one generators record): the date it was
first packed and each face's face, photo and owner id with its split and shard. Ids only,
no pixels or names: what an opt-out list holds anyway. `stylegan dataset
provenance` and the report's staleness notes read them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stylegan import fileio
from stylegan.data.manifest import Manifest
from stylegan.errors import StageError

FOLDER = "versions"
FORMAT = "stylegan-dataset-version/1"
ID_KEYS = ("face_id", "photo_id", "owner_id")  # what a face is looked up by


@dataclass(frozen=True)
class Version:
    """One published dataset: its fingerprint, when pack first wrote it, and its faces' ids and shards."""

    fingerprint: str
    date: str  # UTC, ISO 8601 to the microsecond: versions sort by it
    faces: tuple[dict[str, str], ...]  # {"face_id", "photo_id", "owner_id", "split", "shard"}

    def face_ids(self, split: str | None = None) -> set[str]:
        """The version's face ids, of one split or all."""
        return {f["face_id"] for f in self.faces if split in (None, f["split"])}

    def matching(self, any_id: str) -> list[dict[str, str]]:
        """The faces whose face, photo or owner id is `any_id`."""
        return [f for f in self.faces if any_id in (f[k] for k in ID_KEYS)]


def folder_of(manifest: Path) -> Path:
    return Path(manifest).parent / FOLDER


def face_row(record: dict[str, Any], split: str, shard: str) -> dict[str, str]:
    """A face's ids as a version lists them (missing ids as empty strings)."""
    return {**{k: str(record.get(k) or "") for k in ID_KEYS}, "split": split, "shard": shard}


def publish(manifest_path: Path, manifest: Manifest, faces: list[dict[str, str]]) -> Version:
    """Record the version `manifest` describes, unless it is already known (then its first date stands)."""
    path = folder_of(manifest_path) / f"{manifest.fingerprint}.json"
    if path.is_file():
        return read(path)
    version = Version(
        manifest.fingerprint,
        datetime.now(UTC).isoformat(timespec="microseconds"),
        tuple(sorted(faces, key=lambda f: f["face_id"])),
    )
    fileio.write_json(
        path, {"format": FORMAT, "fingerprint": version.fingerprint, "date": version.date, "faces": list(version.faces)}
    )
    return version


def read(path: Path) -> Version:
    """One version file; a damaged one is a StageError naming it."""
    try:
        data = json.loads(Path(path).read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT!r}")
        return Version(data["fingerprint"], data["date"], tuple(data["faces"]))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise StageError(f"{path}: not a dataset version record ({type(err).__name__}: {err})") from None


def all_versions(manifest_path: Path) -> list[Version]:
    """Every version recorded beside the manifest, oldest first."""
    folder = folder_of(manifest_path)
    found = [read(p) for p in folder.glob("*.json")] if folder.is_dir() else []
    return sorted(found, key=lambda v: (v.date, v.fingerprint))
