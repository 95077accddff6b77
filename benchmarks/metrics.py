"""FID throughput: real statistics and generated images through Inception, per resolution.

Prints one table row per resolution:
- reals img/s: `real_stats` end to end on gzip shards of synthetic faces (HDF5
  reader, TF-style resize to 299², Inception, float64 sums), no cache;
- gen img/s: the generator alone (config F widths by default, untrained weights,
  which cost the same), z ~ N(0, I), random noise, uint8;
- gen+feat img/s: generation plus Inception features and float64 sums, what each
  FID shard does; FID50k minutes = 50,000 / that rate / 60, once reals are cached.
The issue's target on one H100-class GPU is FID50k at 1024² in 3 minutes (280 img/s).

    .venv/bin/python benchmarks/metrics.py                                    # CPU: 32² and 128², 32 images
    .venv/bin/python benchmarks/metrics.py --device cuda --resolutions 256 1024 --num 2048 --batch 64
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from dataset import synthetic, write_speed  # noqa: E402  (benchmarks/dataset.py)

from stylegan.metrics.config import InceptionSettings  # noqa: E402
from stylegan.metrics.features import Inception, metric_device, real_stats, shard_blocks  # noqa: E402
from stylegan.metrics.fid import fake_images, fake_stats  # noqa: E402
from stylegan.train.networks import Generator, NetworkSettings  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reals_rate(res: int, num: int, batch: int, workers: int, detector: Inception, tmp: Path) -> float:
    """Images/s of the real statistics over `num` packed images at `res`."""
    folder = tmp / f"reals{res}"
    _, _, _, manifest = write_speed(synthetic(folder / "faces", num, res), res, "gzip", folder)
    began = time.perf_counter()
    stats, _ = real_stats(manifest, res, detector, num, True, 0, batch, 0, folder / "cache", workers)
    sync(detector.device)
    return stats.count / (time.perf_counter() - began)


def generator_rates(res: int, num: int, batch: int, fmap_base: int, detector: Inception) -> tuple[float, float]:
    """(generation img/s, generation + features img/s) at `res`."""
    G = Generator(NetworkSettings(resolution=res, fmap_base=fmap_base)).to(detector.device).eval()
    meta = {"resolution": res, "alpha": 1.0}
    blocks = shard_blocks(num, batch, 0, 1, 0, "fid")
    fake_images(G, meta, blocks[0], 1)  # warm-up (cuDNN autotuning, allocator)
    sync(detector.device)
    began = time.perf_counter()
    for block in blocks:
        fake_images(G, meta, block, 1)
    sync(detector.device)
    gen = num / (time.perf_counter() - began)
    began = time.perf_counter()
    fake_stats(G, meta, detector, blocks, 1, 0)
    sync(detector.device)
    return gen, num / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--num", type=int, default=32, help="images per measurement")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader processes reading reals")
    parser.add_argument("--fmap-base", type=int, default=8192, help="8192: config F widths")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = metric_device() if args.device == "cuda" else torch.device(args.device)  # TF32 off, as the jobs
    detector = Inception(InceptionSettings(), device)
    with torch.no_grad():
        detector(torch.zeros(args.batch, 3, 64, 64, dtype=torch.uint8))  # warm-up
    print(f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch}, {args.num} images, "
          f"fmap_base {args.fmap_base}, reader workers {args.workers}")
    print(f"{'res':>5} {'reals img/s':>12} {'gen img/s':>10} {'gen+feat img/s':>15} {'FID50k min':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for res in args.resolutions:
            reals = reals_rate(res, args.num, args.batch, args.workers, detector, Path(tmp))
            gen, both = generator_rates(res, args.num, args.batch, args.fmap_base, detector)
            print(f"{res:>5} {reals:>12.1f} {gen:>10.1f} {both:>15.1f} {50000 / both / 60:>11.1f}", flush=True)


if __name__ == "__main__":
    main()
