"""The dataset manifest and the shard layout it describes: one module, imported by every reader and writer.

`stylegan dataset pack` writes `manifest.json` beside a folder of HDF5 shards; the
reader, `dataset verify`, the datasheet, training and the metrics read it through
`Manifest.read`. Each shard holds one dataset per level, `level_name(r)`, uint8
N x CHANNELS x r x r (tkarras/progressive_growing_of_gans `h5tool.py`), plus one
string dataset per `METADATA` field. Shard paths are relative to the manifest's
folder, so a dataset can move as a whole.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hdf5plugin  # noqa: F401 - registers the Blosc2 filter with HDF5 for every shard reader

from stylegan import fileio
from stylegan.errors import StageError

FORMAT = 1  # bump when the shard layout changes: every shard fingerprint changes with it
SPLITS = ("train", "validation")
CHANNELS = 3
# Per-image metadata: (dataset name in the shard, face record key).
METADATA = (
    ("face_id", "face_id"), ("photo_id", "photo_id"), ("md5", "md5"),
    ("license_id", "license_id"), ("license_name", "license_name"), ("license_url", "license_url"),
    ("author", "owner_name"), ("title", "title"), ("page_url", "page_url"), ("source_url", "source_url"),
)  # fmt: skip


def level_name(r: int) -> str:
    """The HDF5 dataset that holds level r (PGGAN's `data{r}x{r}`)."""
    return f"data{r}x{r}"


@dataclass(frozen=True)
class ShardEntry:
    """One shard file as pack left it."""

    path: str  # relative to the manifest's folder
    split: str  # one of SPLITS
    index: int
    count: int  # images
    sha256: str
    bytes: int  # file size
    fingerprint: str  # of its contents, also stored in the shard's attrs


@dataclass(frozen=True)
class Manifest:
    """What a dataset is made of: its levels, its shards, and the pack settings that made them."""

    resolution: int  # the top level
    levels: tuple[int, ...]  # largest first
    settings: dict[str, Any]  # the `pack` section
    shards: tuple[ShardEntry, ...]
    dropped: tuple[dict[str, Any], ...] = ()  # faces refused for their licence
    format: int = FORMAT
    folder: Path = dataclasses.field(default=Path("."), compare=False)  # where shard paths start

    @property
    def counts(self) -> dict[str, int]:
        """Images per split."""
        return {split: sum(e.count for e in self.shards if e.split == split) for split in SPLITS}

    @property
    def fingerprint(self) -> str:
        """The dataset version: sha256 over every shard's path and sha256.

        Generators, checkpoints and metric results record it, so a takedown (which
        rewrites the shards that held the photo) makes every older artefact identifiable.
        """
        shards = sorted((e.path, e.sha256) for e in self.shards)
        return hashlib.sha256(json.dumps(shards).encode()).hexdigest()

    def split(self, name: str) -> list[ShardEntry]:
        """The split's shards that hold images, in manifest order."""
        if name not in SPLITS:
            raise StageError(f"split {name!r}: expected one of {', '.join(SPLITS)}")
        return [e for e in self.shards if e.split == name and e.count > 0]

    def path_of(self, entry: ShardEntry) -> Path:
        return self.folder / entry.path

    @classmethod
    def read(cls, path: str | Path) -> Manifest:
        """The manifest at `path`; unreadable, or not written by pack, is a StageError naming it."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            shards = tuple(_entry(path, entry) for entry in data["shards"])
            return cls(
                resolution=int(data["resolution"]),
                levels=tuple(data["levels"]),
                settings=data["settings"],
                shards=shards,
                dropped=tuple(data.get("dropped", ())),
                format=data["format"],
                folder=path.parent,
            )
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise StageError(
                f"{path}: not a dataset manifest written by `stylegan dataset pack` "
                f"({type(err).__name__}: {err}); re-run pack"
            ) from None

    def write(self, path: str | Path) -> None:
        """Write atomically, with the per-split counts spelled out for people reading the file."""
        document = {
            "format": self.format, "resolution": self.resolution, "levels": list(self.levels),
            "settings": self.settings, "shards": [dataclasses.asdict(e) for e in self.shards],
            "dropped": list(self.dropped), "counts": self.counts,
        }  # fmt: skip
        fileio.write_json(path, document)


def _entry(manifest: Path, entry: dict[str, Any]) -> ShardEntry:
    """One shard entry; a missing field names itself (older or hand-made manifests)."""
    missing = [f.name for f in dataclasses.fields(ShardEntry) if f.name not in entry]
    if missing:
        raise StageError(
            f"{manifest}: shard entry {entry.get('path')!r} lacks {', '.join(map(repr, missing))}; "
            "not a manifest written by `stylegan dataset pack`: re-pack"
        )
    return ShardEntry(**{f.name: entry[f.name] for f in dataclasses.fields(ShardEntry)})
