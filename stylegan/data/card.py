"""The datasheet: what is in the dataset, what was left out, and who to credit.

CC BY requires crediting each work with its title, author, licence and a link
(CC BY 2.0 legal code §4(b); yukimasano/PASS#4). The attribution list is read from the shards
themselves, not from the filter's records, so it describes exactly the pixels
that ship.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import h5py

from stylegan import fileio
from stylegan.data.filter import FILTERS
from stylegan.data.manifest import METADATA, Manifest
from stylegan.errors import StageError


def shard_rows(document: Manifest) -> list[dict[str, str]]:
    """Every packed image's metadata, with its split, in manifest order."""
    rows = []
    for entry in document.shards:
        path = document.path_of(entry)
        try:
            with h5py.File(path, "r") as h5:
                columns = {name: h5[name].asstr()[:] for name, _ in METADATA}
        except (OSError, KeyError) as err:
            raise StageError(f"{path}: cannot read shard metadata ({err}); run `stylegan dataset verify`") from None
        rows += [{"split": entry.split, **{k: str(v[i]) for k, v in columns.items()}} for i in range(entry.count)]
    return rows


def datasheet(manifest: Path, rejected: Path) -> str:
    """The datasheet as markdown."""
    document = Manifest.read(manifest)
    rows = shard_rows(document)
    filters = Counter(r["filter"] for r in fileio.read_jsonl(rejected))
    licences = Counter((r["license_id"], r["license_name"]) for r in rows)
    lines = [
        "# Datasheet", "",
        f"{len(rows)} aligned faces at {document.resolution}x{document.resolution} "
        f"(levels {', '.join(map(str, sorted(document.levels)))}), from "
        f"{len({r['photo_id'] for r in rows})} photos, in {len(document.shards)} HDF5 shards.", "",
        "| split | images |", "|---|---:|",
        *[f"| {split} | {n} |" for split, n in document.counts.items()], "",
        "## Licences", "", "| licence id | licence | images |", "|---|---|---:|",
        *[f"| {_cell(i)} | {_cell(name)} | {n} |" for (i, name), n in sorted(licences.items())], "",
        "## Filtered out", "", "| filter | faces |", "|---|---:|",
        *[f"| {name} | {filters[name]} |" for name in FILTERS], "",
        f"Dropped at pack for a licence outside the allow-list: {len(document.dropped)}.", "",
        "## Attribution", "",
        "Each image is a crop of the photo below, aligned, resized and possibly mirrored.", "",
        "| face | title | author | licence | link |", "|---|---|---|---|---|",
        *[_attribution(r) for r in sorted(rows, key=lambda r: r["face_id"])],
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def _attribution(row: dict[str, Any]) -> str:
    licence = (
        f"[{_cell(row['license_name'])}]({row['license_url']})" if row["license_url"] else _cell(row["license_name"])
    )
    link = row["page_url"] or row["source_url"]
    return (
        f"| {_cell(row['face_id'])} | {_cell(row['title']) or '(untitled)'} | {_cell(row['author']) or '(unknown)'} "
        f"| {licence} | {link} |"
    )


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_card(manifest: Path, rejected: Path, out: Path) -> None:
    fileio.write_text(out, datasheet(manifest, rejected))
