"""Sample-range shards: which samples a shard of a metric computes, and the check that shards tile.

A metric over many samples is split into shards: contiguous ranges of fixed-size
blocks, each block's latents and noise seeded by (seed, stream, block index)
alone, so the images of a sample never depend on how the work was split. These
helpers serve any metric over samples (FID, PPL, LS).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path
from typing import Any

from stylegan.errors import StageError


@dataclasses.dataclass(frozen=True)
class Block:
    """`count` samples from `start`, generated from one seed."""

    index: int
    start: int
    count: int
    seed: int


def block_seed(seed: int, stream: str, index: int) -> int:
    """A 63-bit seed for block `index` of a named sample stream: independent of shards and devices."""
    digest = hashlib.sha256(f"{seed}/{stream}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def shard_blocks(num: int, block: int, shard: int, shards: int, seed: int, stream: str) -> list[Block]:
    """Shard `shard` of `shards`: a contiguous run of the blocks covering samples 0 .. num-1 (maybe none)."""
    first, last = _block_range(num, block, shard, shards)
    return [Block(b, b * block, min(block, num - b * block), block_seed(seed, stream, b)) for b in range(first, last)]


def _block_range(num: int, block: int, shard: int, shards: int) -> tuple[int, int]:
    if not 0 <= shard < shards:
        raise StageError(f"shard {shard}: expected 0 .. {shards - 1} (metrics.shards {shards})")
    if num < 1 or block < 1:
        raise StageError(f"a metric needs at least one sample and a batch of at least one (got {num}, {block})")
    blocks = math.ceil(num / block)
    return shard * blocks // shards, (shard + 1) * blocks // shards


def partial_meta(num: int, block: int, shard: int, shards: int, settings: dict[str, Any]) -> dict[str, Any]:
    """What a shard's partial statistics record, so merging can check they fit together."""
    first, last = _block_range(num, block, shard, shards)
    return {"range": [first * block, min(last * block, num)], "num": num, "shards": shards, "settings": settings}


def check_tiling(parts: list[tuple[dict[str, Any], Path]]) -> dict[str, Any]:
    """The merged record of shard partials (any metric's `partial_meta` records, with the file each
    came from): they must share settings and tile samples 0 .. num-1 without gap or overlap.

    Returns the first shard's record with `seconds` summed over the shards.
    """
    ordered = sorted(parts, key=lambda t: t[0]["range"][0])
    first, first_path = ordered[0]
    position = 0
    for meta, path in ordered:
        if meta["settings"] != first["settings"] or meta["num"] != first["num"]:
            raise StageError(f"{path}: computed with other settings than {first_path}; rerun its shard")
        if meta["range"][0] != position:
            raise StageError(f"{path}: starts at sample {meta['range'][0]}, expected {position}; a shard is missing")
        position = meta["range"][1]
    if position != first["num"]:
        raise StageError(f"shards cover samples 0 .. {position - 1} of {first['num']}; a shard is missing")
    return {**first, "seconds": sum(meta.get("seconds", 0.0) for meta, _ in ordered)}
