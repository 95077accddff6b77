"""Check every shard against its manifest before anyone trains on it or ships it.

A shard can go wrong after pack wrote it: a copy cut short, a disk error, an
edit by hand. Each check names the shard and what differs: the file is missing,
its size or sha256 differs, it cannot be opened, a level is missing or holds a
different number of images, a lower level is not the box pyramid of the top
one, or a stored pixel md5 does not match its image.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import logging
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm import tqdm

from stylegan import fileio
from stylegan.data.manifest import CHANNELS, METADATA, Manifest, ShardEntry, level_name
from stylegan.data.pack import pyramid
from stylegan.errors import StageError

log = logging.getLogger(__name__)


def verify(manifest: Path, out: Path, workers: int = 1) -> dict[str, Any]:
    """Check all shards with `workers` processes; write the report to `out` and return it.

    The report's `ok` is False on any problem. Shards are checked in parallel
    because a full check decodes every level of every image (about 28 images/s
    per core at 1024², benchmarks/dataset.py: 40 minutes for FFHQ's 70,000),
    and it runs after every re-pack.
    """
    document = Manifest.read(manifest)
    entries = [(entry, document.path_of(entry)) for entry in document.shards]
    if workers < 1:
        raise StageError(f"--workers {workers}: expected at least 1")
    problems: list[dict[str, str]] = []
    check = functools.partial(check_shard, levels=list(document.levels))
    with concurrent.futures.ProcessPoolExecutor(max(1, min(workers, len(entries)))) as pool:
        found = pool.map(check, [e for e, _ in entries], [p for _, p in entries])
        for (entry, _), shard_problems in tqdm(zip(entries, found), total=len(entries), desc="verify", unit="shard",
                                               disable=None):
            problems += [{"shard": entry.path, "problem": p} for p in shard_problems]
    report = {"ok": not problems, "manifest": str(manifest), "shards": len(entries),
              "images": sum(e.count for e, _ in entries), "problems": problems}
    fileio.write_json(out, report)
    for problem in problems:
        log.error("%s: %s", problem["shard"], problem["problem"])
    return report


def check_shard(entry: ShardEntry, path: Path, levels: list[int]) -> list[str]:
    """Every mismatch between one shard file and its manifest entry (empty if none)."""
    if not path.is_file():
        return [f"missing file {path}"]
    size = path.stat().st_size
    if size != entry.bytes:
        return [f"size {size} bytes, manifest says {entry.bytes} (truncated or replaced)"]
    if fileio.sha256_file(path) != entry.sha256:
        return ["sha256 differs from the manifest"]
    try:
        with h5py.File(path, "r") as h5:
            return _check_contents(h5, entry.count, levels)
    except OSError as err:
        return [f"cannot open as HDF5: {err}"]


def _check_contents(h5: h5py.File, count: int, levels: list[int]) -> list[str]:
    names = [level_name(r) for r in levels]
    missing = [n for n in names + [m for m, _ in METADATA] if n not in h5]
    if missing:
        return [f"missing datasets {missing}"]
    problems = [f"{n} holds {h5[n].shape[0]} images, manifest says {count}"
                for n in names + [m for m, _ in METADATA] if h5[n].shape[0] != count]
    problems += [f"{n} has shape {h5[n].shape[1:]} dtype {h5[n].dtype}, expected ({CHANNELS}, {r}, {r}) uint8"
                 for n, r in zip(names, levels) if h5[n].shape[1:] != (CHANNELS, r, r) or h5[n].dtype != np.uint8]
    if problems:
        return problems
    md5s = h5["md5"].asstr()[:]
    for row in range(count):
        top = h5[names[0]][row]
        if md5s[row] and hashlib.md5(np.ascontiguousarray(top.transpose(1, 2, 0)).tobytes()).hexdigest() != md5s[row]:
            problems.append(f"row {row}: pixels do not match the stored md5")
        for name, expected in zip(names[1:], pyramid(top)[1:]):
            if not np.array_equal(h5[name][row], expected):
                problems.append(f"row {row}: {name} is not the box pyramid of {names[0]}")
    return problems
