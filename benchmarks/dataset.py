"""Shard write and read speed on synthetic faces (stylegan/data/pack.py, dataset.py).

Prints these tables:
- codecs side by side, the numbers that choose `pack.compression`: for each
  codec, shard write images/s and MB/s of raw level data (the whole pack path per
  image: PNG decode, md5 check, pyramid, compression, HDF5 write), file size, and
  reader images/s on the training path (`ShardDataset`, uint8 out, one process),
  next to stylegan2-ada-pytorch's format (uncompressed PNGs in a stored zip,
  decoded with Pillow) in the same run, with the ratio to it;
- reader: images/s through a DataLoader with 0, 2 and 4 workers on the default codec;
- verify: images/s of `stylegan dataset verify`'s full check (sha256, every
  level decoded, pyramid and md5 recomputed) on one process, the same shards.
Images are crops of scikit-image pictures plus noise, so they compress about
like photos rather than like flat colour.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dataset.py --n256 200 --n1024 64

The zip's raw MB column is its top level alone (ADA stores one resolution).
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path
from typing import get_args

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import faces  # noqa: E402

from stylegan import fileio  # noqa: E402
from stylegan.data import pack, verify  # noqa: E402
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


def zip_of_pngs(records: list[dict], path: Path) -> Path:
    """stylegan2-ada-pytorch's dataset format: one PNG per image in a zip, stored uncompressed."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for n, record in enumerate(records):
            archive.write(record["image"], f"{n:08d}.png")
    return path


def zip_read_speed(path: Path, passes: int = 1) -> float:
    """Images per second decoding every PNG of the zip to a CHW uint8 tensor, as ADA's ImageFolderDataset."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        began = time.perf_counter()
        for _ in range(passes):
            for name in names:
                with archive.open(name) as f:
                    torch.from_numpy(np.asarray(Image.open(io.BytesIO(f.read()))).transpose(2, 0, 1).copy())
    return passes * len(names) / (time.perf_counter() - began)


def shard_read_speed(manifest: Path, size: int, passes: int = 1) -> float:
    """Images per second of the training path in one process: ShardDataset, uint8 out, shuffled order."""
    data = ShardDataset(manifest, resolution=size, split="train", dtype="uint8")
    data[0]  # open the file
    order = np.random.default_rng(0).permutation(len(data))
    began = time.perf_counter()
    for _ in range(passes):
        for index in order:
            data[int(index)]
    return passes * len(data) / (time.perf_counter() - began)


def read_speed(manifest: Path, size: int, workers: int, batch: int) -> float:
    """Images per second for one pass after a warm-up batch (worker start-up excluded)."""
    data = ShardDataset(manifest, resolution=size, split="train", dtype="uint8")
    loader = DataLoader(
        data, batch_size=batch, shuffle=True, num_workers=workers, persistent_workers=workers > 0, drop_last=False
    )
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
    parser.add_argument("--passes", type=int, default=2, help="read passes over each set (more: steadier numbers)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", message="This DataLoader will create")  # more workers than cores: on purpose
    torch.set_num_threads(1)
    print(f"torch threads 1, CPUs {torch.multiprocessing.cpu_count()}")
    default = pack.PackSettings().compression
    with tempfile.TemporaryDirectory() as tmp:
        codecs, reads, checks = [], [], []
        for size, count in ((256, args.n256), (1024, args.n1024)):
            folder = Path(tmp) / str(size)
            records = synthetic(folder / "faces", count, size)
            archive = zip_of_pngs(records, folder / "dataset.zip")
            baseline = zip_read_speed(archive, args.passes)
            top_mb = count * 3 * size * size / 1e6
            codecs.append((size, count, "zip of PNGs", None, None, archive.stat().st_size / 1e6, top_mb, baseline, 1.0))
            manifests = {}
            for compression in get_args(pack.Compression):
                seconds, raw, file_mb, manifests[compression] = write_speed(records, size, compression, folder)
                ips = shard_read_speed(manifests[compression], size, args.passes)
                codecs.append(
                    (size, count, compression, count / seconds, raw / seconds, file_mb, raw, ips, ips / baseline)
                )
            for workers in args.workers:
                reads.append((size, count, workers, read_speed(manifests[default], size, workers, 16)))
            checks.append((size, count, verify_speed(manifests[default], count)))
    print("\ncodecs (write: whole pack path; read: training path, uint8, 1 process; raw MB: all levels)")
    print("  size      N  format        write img/s  write MB/s   file MB    raw MB   read img/s  vs zip")
    for size, count, name, wips, wmbs, file_mb, raw, rips, ratio in codecs:
        write = f"{wips:>11.1f} {wmbs:>11.1f}" if wips is not None else f"{'-':>11} {'-':>11}"
        print(f"  {size:>4}² {count:>6}  {name:<12} {write} {file_mb:>9.1f} {raw:>9.1f} {rips:>12.1f} {ratio:>7.1f}x")
    print(f"\nreader ({default} shards, uint8, batch 16)\n  size      N  workers   images/s")
    for size, count, workers, ips in reads:
        print(f"  {size:>4}² {count:>6}  {workers:>7} {ips:>10.1f}")
    print(f"\nverify ({default} shards, full check, 1 process)\n  size      N   images/s")
    for size, count, ips in checks:
        print(f"  {size:>4}² {count:>6} {ips:>10.1f}")


if __name__ == "__main__":
    main()
