"""Merge the downloaded chunks into one photo list and summarise what failed and why."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

from stylegan import fileio
from stylegan.data.crawl.download import QUARANTINED


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts by status, source and licence, and every failed photo with its reason.

    `quarantined` names the photos whose bytes arrived but never verified (kept
    under the store's `.quarantine/` for inspection); other failures were refused
    (licence) or never arrived (HTTP errors, timeouts).
    """
    failed = [r for r in records if r["status"] != "ok"]
    return {
        "photos": len(records),
        "ok": len(records) - len(failed),
        "failed": len(failed),
        "quarantined": sorted(r["photo_id"] for r in failed if str(r["reason"]).startswith(QUARANTINED)),
        "by_source": dict(collections.Counter(r["source"] for r in records)),
        "by_license": dict(collections.Counter(str(r["license_id"]) for r in records if r["status"] == "ok")),
        "failures": [{"photo_id": r["photo_id"], "reason": r["reason"], "source_url": r["source_url"]} for r in failed],
    }


def merge(chunks: list[Path], photos: Path, report: Path) -> dict[str, Any]:
    """Write every chunk's records, sorted by photo id, to `photos`, and the summary to `report`."""
    records = sorted((r for chunk in chunks for r in fileio.read_jsonl(chunk)), key=lambda r: r["photo_id"])
    fileio.write_jsonl(photos, records)
    summary = summarise(records)
    fileio.write_json(report, summary)
    return summary
