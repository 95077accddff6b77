"""The run's record of the data it trains on, checked whenever the loop (re)opens the shards.

Generator files, checkpoints and snapshots carry this record (`dataset`): the
manifest's fingerprint (`Manifest.fingerprint`, over the shard sha256s), the
train split's face count, and every switch to other data with the kimg at which
it happened. The shards are (re)opened at the start or resume of a run and at
each level change; if the manifest then describes another dataset (a repack,
e.g. after a takedown), the run stops rather than continue silently on data its
checkpoint never saw, unless `train.continue_on_new_data` allows it, and then the
switch is recorded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from stylegan.data.manifest import Manifest
from stylegan.errors import StageError

log = logging.getLogger(__name__)


def dataset_record(manifest: Manifest) -> dict[str, Any]:
    """The record of a run that has trained on `manifest` alone."""
    return {"fingerprint": manifest.fingerprint, "faces": manifest.counts["train"], "changes": []}


def follow(record: dict[str, Any] | None, manifest: Path, nimg: int, allow_new: bool) -> dict[str, Any]:
    """The record after (re)opening `manifest` at `nimg` images: unchanged, switched (allowed) or a StageError.

    A checkpoint from before runs kept this record (`record` None after images
    were shown) continues, its switch recorded with an unknown origin.
    """
    current = dataset_record(Manifest.read(manifest))
    if record is None and nimg == 0:
        return current
    if record is not None and record["fingerprint"] == current["fingerprint"]:
        return record
    kimg = nimg / 1000
    if record is not None and not allow_new:
        raise StageError(
            f"{manifest}: the dataset changed under this run at {kimg:g} kimg: it trained on dataset "
            f"{record['fingerprint']} ({record['faces']} faces), the manifest now describes {current['fingerprint']} "
            f"({current['faces']} faces), e.g. a repack after a takedown. Start a new run directory to train on the "
            f"new data alone, or continue this run on it with `stylegan train --continue-on-new-data` "
            f"(config: train.continue_on_new_data: true), which records the switch in the generator"
        )
    before = None if record is None else record["fingerprint"]
    log.warning(
        "the run continues on dataset %s (%d faces) at %g kimg; before: %s",
        current["fingerprint"],
        current["faces"],
        kimg,
        before or "unknown (a checkpoint without a dataset record)",
    )
    changes = [] if record is None else record["changes"]
    return {
        **current,
        "changes": [*changes, {"kimg": kimg, "from": before, "to": current["fingerprint"], "faces": current["faces"]}],
    }


def fingerprints(record: dict[str, Any] | None) -> list[str]:
    """Every dataset version a record says the run trained on, first to last (unknown origins left out)."""
    if record is None:
        return []
    before = [c["from"] for c in record["changes"] if c["from"]]
    return list(dict.fromkeys([*before, record["fingerprint"]]))
