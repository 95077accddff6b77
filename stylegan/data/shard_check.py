"""Whether a shard file is the one its manifest entry lists, as the list of what differs.

A shard can go wrong after pack wrote it: a copy cut short, a disk error, an edit
by hand, a shard of another pack copied over it. Two depths share these checks:
the cheap one each time a dataset opens its shards (the file's size, the content
fingerprint pack wrote into it, every level's shape and dtype: no pixel is read)
and the full one of `stylegan dataset verify`, which adds the sha256 of the bytes,
the metadata columns, and every image's md5 and box pyramid.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from stylegan import fileio
from stylegan.data.manifest import CHANNELS, METADATA, ShardEntry, level_name
from stylegan.data.pack import pyramid


def shard_problems(entry: ShardEntry, path: Path, levels: Sequence[int], *, full: bool = False) -> list[str]:
    """Every mismatch between one shard file and its manifest entry (empty if none); `full` reads every image."""
    if not path.is_file():
        return ["the file is missing"]
    size = path.stat().st_size
    if size != entry.bytes:
        return [f"{size} bytes, manifest says {entry.bytes} (truncated or replaced)"]
    if full and fileio.sha256_file(path) != entry.sha256:
        return ["its sha256 differs from the manifest's"]
    try:
        with h5py.File(path, "r") as h5:
            problems = _layout_problems(h5, entry, levels, full)
            return problems or (_pixel_problems(h5, entry.count, levels) if full else [])
    except OSError as err:
        return [f"cannot open as HDF5 ({err})"]


def _layout_problems(h5: h5py.File, entry: ShardEntry, levels: Sequence[int], full: bool) -> list[str]:
    """The fingerprint, then every level's shape and dtype, and in `full` the metadata columns' lengths."""
    if h5.attrs.get("fingerprint") != entry.fingerprint:
        return ["its content fingerprint differs from the manifest's"]
    names = [level_name(r) for r in levels]
    columns = [m for m, _ in METADATA] if full else []
    missing = [n for n in names + columns if n not in h5]
    if missing:
        return [f"missing datasets {missing}"]
    problems = [
        f"{n} has shape {h5[n].shape}, manifest says {(entry.count, CHANNELS, r, r)}"
        for n, r in zip(names, levels)
        if h5[n].shape != (entry.count, CHANNELS, r, r)
    ]
    problems += [f"{n} has dtype {h5[n].dtype}, expected uint8" for n in names if h5[n].dtype != np.uint8]
    problems += [
        f"{m} holds {h5[m].shape[0]} rows, manifest says {entry.count}"
        for m in columns
        if h5[m].shape[0] != entry.count
    ]
    return problems


def _pixel_problems(h5: h5py.File, count: int, levels: Sequence[int]) -> list[str]:
    """Each image against its stored md5, and each lower level against pack's box pyramid of the top one."""
    names = [level_name(r) for r in sorted(levels, reverse=True)]
    md5s = h5["md5"].asstr()[:]
    problems = []
    for row in range(count):
        top = h5[names[0]][row]
        if md5s[row] and hashlib.md5(np.ascontiguousarray(top.transpose(1, 2, 0)).tobytes()).hexdigest() != md5s[row]:
            problems.append(f"row {row}: pixels do not match the stored md5")
        for name, expected in zip(names[1:], pyramid(top)[1:]):
            if not np.array_equal(h5[name][row], expected):
                problems.append(f"row {row}: {name} is not the box pyramid of {names[0]}")
    return problems
