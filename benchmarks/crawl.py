"""Crawl speed against the local Flickr-compatible server (tests/flickr_server.py).

Prints a table: catalogue records per second (search paging and bisection, no
rate limit), downloads per second with N workers, and the time to resume a
finished crawl (the journal says everything is done, so it should be ~0).
The server runs in this process on 127.0.0.1, so the numbers measure the
crawler's own overhead, not Flickr's latency.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/crawl.py --photos 3000 --workers 8
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from flickr_server import FlickrServer, Photo  # noqa: E402

from stylegan import settings  # noqa: E402
from stylegan.data.crawl import catalogue, download  # noqa: E402
from stylegan.data.crawl.config import CrawlSettings  # noqa: E402

KEY = "benchmark-key"


def population(count: int, side: int) -> list[Photo]:
    """Eligible photos spread over time, every one with an original of about side x side."""
    return [
        Photo(id=str(10_000 + n), license=4, dateupload=1_300_000_000 + 60 * n, width=side, height=side - n % 8)
        for n in range(count)
    ]


def timed(action) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--side", type=int, default=256, help="image side in pixels")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ["FLICKR_API_KEY"] = KEY
    with FlickrServer(population(args.photos, args.side), KEY) as server, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        crawl = settings.load(
            CrawlSettings,
            {
                "source": "flickr", "chunks": 1, "workers": args.workers,
                "flickr": {"endpoint": server.endpoint, "min_upload_date": 1_299_000_000,
                           "max_upload_date": 1_400_000_000, "calls_per_hour": 1e9},
            },
        )  # fmt: skip
        for photo in server.photos.values():  # encode images before timing
            server.image(f"{photo.id}_abc_o.jpg")
        list_s = timed(lambda: catalogue.build(crawl, work / "catalogue.jsonl"))
        fetch = lambda: download.download_chunk(crawl, work / "catalogue.jsonl", 0, work / "store", work / "0.jsonl")  # noqa: E731
        fetch_s = timed(fetch)
        fetched = sum(server.downloads.values())
        resume_s = timed(fetch)
        assert sum(server.downloads.values()) == fetched == args.photos, "resume fetched again"
        calls = sum(server.api_calls.values())
    rows = [
        (
            "catalogue",
            f"{args.photos} records, {calls} API calls",
            f"{list_s:.2f} s",
            f"{args.photos / list_s:,.0f} records/s",
        ),
        (
            "download",
            f"{args.photos} files ~{args.side}px, {args.workers} workers",
            f"{fetch_s:.2f} s",
            f"{args.photos / fetch_s:,.0f} files/s",
        ),
        ("resume", "finished crawl, 0 fetched", f"{resume_s:.2f} s", "-"),
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in rows + [("step", "work", "time", "rate")]) for i in range(4)]
    for row in [("step", "work", "time", "rate")] + rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))


if __name__ == "__main__":
    main()
