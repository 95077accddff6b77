"""Shard write and read speed on synthetic faces (stylegan/data/pack.py, dataset.py).

Prints two tables:
- shard write: images/s and MB/s of raw level data (all levels, uint8) for each
  compression, the whole pack path per image: PNG decode, md5 check, pyramid,
  compression, HDF5 write;
- reader: images/s of `ShardDataset` (float, x-flip) through a DataLoader with
  0, 2 and 4 workers, at 256² and 1024², over gzip shards (the default);
- verify: images/s of `stylegan dataset verify`'s full check (sha256, every
  level decoded, pyramid and md5 recomputed) on one process, the same shards.
Images are crops of scikit-image pictures plus noise, so they compress about
like photos rather than like flat colour.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dataset.py --n256 200 --n1024 64
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import faces  # noqa: E402

from stylegan import fileio  # noqa: E402
from stylegan.data import pack  # noqa: E402
from stylegan.data import verify  # noqa: E402
from stylegan.data.dataset import ShardDataset  # noqa: E402


def synthetic(folder: Path, count: int, size: int) -> list[dict]:
    """`count` face records with aligned PNGs of side `size`."""
    rng = np.random.default_rng(0)
    names = list(faces.CROPS)
    bases = {n: faces.picture(n, size).astype(np.int16) for n in names}
    records = []
    for i in range(count):
        pixels = np.clip(bases[names[i % len(names)]] + rng.integers(-2, 3, (size, size, 3)), 0, 255).astype(np.uint8)
        records.append(faces.face_record(folder, f"flickr:{i}", pixels))
    return records


def write_speed(records: list[dict], size: int, compression: str, folder: Path) -> tuple[float, float, float, Path]:
    """(seconds, raw MB of all levels, file MB, manifest) for packing `records` into one train shard."""
    settings = pack.PackSettings(shards=1, val_fraction=0.0, compression=compression)
    kept = folder / "kept.jsonl"
    fileio.write_jsonl(kept, records)
    manifest = folder / compression / "manifest.json"
    began = time.perf_counter()
    pack.pack(settings, kept, manifest.parent / "shards", manifest)
    seconds = time.perf_counter() - began
    raw = len(records) * 3 * sum(r * r for r in pack.levels(size)) / 1e6
    file_mb = sum(p.stat().st_size for p in (manifest.parent / "shards").glob("*.h5")) / 1e6
    return seconds, raw, file_mb, manifest


def read_speed(manifest: Path, size: int, workers: int, batch: int) -> float:
    """Images per second for one pass after a warm-up batch (worker start-up excluded)."""
    data = ShardDataset(manifest, resolution=size, split="train", dtype="float", xflip=True)
    loader = DataLoader(data, batch_size=batch, shuffle=True, num_workers=workers,
                        persistent_workers=workers > 0, drop_last=False)
    next(iter(loader))  # start workers, open files
    began = time.perf_counter()
    seen = sum(len(images) for images in loader)
    return seen / (time.perf_counter() - began)


def verify_speed(manifest: Path, count: int) -> float:
    """Images per second of the full shard check, one process."""
    began = time.perf_counter()
    report = verify.verify(manifest, manifest.parent / "verify.json", workers=1)
    assert report["ok"], report["problems"]
    return count / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n256", type=int, default=200, help="images at 256²")
    parser.add_argument("--n1024", type=int, default=64, help="images at 1024²")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4], help="DataLoader workers to try")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", message="This DataLoader will create")  # more workers than cores: on purpose
    torch.set_num_threads(1)
    print(f"torch threads 1, CPUs {torch.multiprocessing.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        writes, reads, checks = [], [], []
        for size, count in ((256, args.n256), (1024, args.n1024)):
            folder = Path(tmp) / str(size)
            records = synthetic(folder / "faces", count, size)
            manifests = {}
            for compression in ("none", "lzf", "gzip"):
                seconds, raw, file_mb, manifests[compression] = write_speed(records, size, compression, folder)
                writes.append((size, count, compression, count / seconds, raw / seconds, raw / file_mb))
            for workers in args.workers:
                reads.append((size, count, workers, read_speed(manifests["gzip"], size, workers, 16)))
            checks.append((size, count, verify_speed(manifests["gzip"], count)))
    print("\nshard write (whole pack path)\n  size      N  compression   images/s   raw MB/s   ratio")
    for size, count, compression, ips, mbs, ratio in writes:
        print(f"  {size:>4}² {count:>6}  {compression:<11} {ips:>9.1f} {mbs:>10.1f} {ratio:>7.2f}")
    print("\nreader (gzip shards, float, x-flip, batch 16)\n  size      N  workers   images/s")
    for size, count, workers, ips in reads:
        print(f"  {size:>4}² {count:>6}  {workers:>7} {ips:>10.1f}")
    print("\nverify (gzip shards, full check, 1 process)\n  size      N   images/s")
    for size, count, ips in checks:
        print(f"  {size:>4}² {count:>6} {ips:>10.1f}")


if __name__ == "__main__":
    main()
