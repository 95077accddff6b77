"""Check every shard against its manifest before anyone trains on it or ships it.

Each problem names the shard and what differs (`shard_check.shard_problems` in
full: size, sha256, fingerprint, levels, metadata, every image's md5 and pyramid);
the report lists them all.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
from pathlib import Path
from typing import Any

from tqdm import tqdm

from stylegan import fileio
from stylegan.data.manifest import Manifest
from stylegan.data.shard_check import shard_problems
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
    check = functools.partial(shard_problems, levels=document.levels, full=True)
    with concurrent.futures.ProcessPoolExecutor(max(1, min(workers, len(entries)))) as pool:
        found = pool.map(check, [e for e, _ in entries], [p for _, p in entries])
        for (entry, _), listed in tqdm(
            zip(entries, found), total=len(entries), desc="verify", unit="shard", disable=None
        ):
            problems += [{"shard": entry.path, "problem": p} for p in listed]
    report = {
        "ok": not problems,
        "manifest": str(manifest),
        "shards": len(entries),
        "images": sum(e.count for e, _ in entries),
        "problems": problems,
    }
    fileio.write_json(out, report)
    for problem in problems:
        log.error("%s: %s", problem["shard"], problem["problem"])
    return report
