"""The resumable journal's cost per append as it grows (stylegan/fileio.py Journal).

Prints a table: for journals of 1,000 to 100,000 records (photo records of about
the download stage's size), the time to open an existing journal (one read, one
torn-tail check) and the mean time per fsynced append at that length. A flat
append column means a chunk of any size journals at the same cost per photo.

    .venv/bin/python benchmarks/journal.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stylegan import fileio  # noqa: E402


def record(n: int) -> dict:
    """A download journal entry's shape and size."""
    return {
        "photo_id": f"flickr:{10_000_000 + n}",
        "status": "ok",
        "path": f"resources/photos/flickr-{n}.jpg",
        "sha256": f"{n:064x}",
        "bytes": 2_345_678,
        "reason": None,
    }


def measure(length: int, appends: int, folder: Path) -> tuple[float, float]:
    """(seconds to open a journal of `length` records, mean seconds per append after it)."""
    path = folder / f"{length}.jsonl"
    fileio.write_jsonl(path, (record(n) for n in range(length)))
    start = time.perf_counter()
    journal = fileio.Journal(path, key=lambda e: e["photo_id"])
    opened = time.perf_counter() - start
    start = time.perf_counter()
    for n in range(length, length + appends):
        journal.record(record(n))
    per_append = (time.perf_counter() - start) / appends
    journal.close()
    return opened, per_append


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="1000,10000,100000", help="journal lengths to measure")
    parser.add_argument("--appends", type=int, default=500, help="appends timed at each length")
    args = parser.parse_args()
    print(f"{'records':>9} {'open ms':>9} {'append ms':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for length in map(int, args.lengths.split(",")):
            opened, per_append = measure(length, args.appends, Path(tmp))
            print(f"{length:>9,} {opened * 1e3:>9.1f} {per_append * 1e3:>10.3f}")


if __name__ == "__main__":
    main()
