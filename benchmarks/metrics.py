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

With --ppl-ls, a second table per resolution for the paper's Tables 3-4 (untrained
networks of config F widths, which cost the same as trained ones):
- PPL pairs/s: one variant's block (two images per pair with shared noise, crop,
  box downsample, LPIPS-VGG16 with random VGG weights); PPL100k minutes = the four
  variants' 400,000 pairs / that rate / 60 (target on one H100: 15);
- LS samples/s: generation, box downsample and `--attributes` classifiers (the
  discriminator at 256² without minibatch stddev); LS200k minutes = 200,000 / rate / 60;
- classifier img/s: training steps of one classifier at 256² (minibatch 8, Adam),
  faces read from PNG files as the job reads them; 150k minutes = 150,000 / rate / 60.
Then the SVM fits: seconds per LinearSVC(dual=True) fit on `--svm-samples` x 512 (the
confident half of 200,000 is 100,000; smaller sizes are extrapolated linearly, stated),
and the speed-up of `--svm-workers` parallel fits over the same fits one after another.

    .venv/bin/python benchmarks/metrics.py --ppl-ls --resolutions 32 --num 16 --svm-samples 10000
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
from stylegan.metrics.fid import fake_images, fake_stats  # noqa: E402
from stylegan.metrics.inception import Inception  # noqa: E402
from stylegan.metrics.reals import real_stats  # noqa: E402
from stylegan.metrics.shards import shard_blocks  # noqa: E402
from stylegan.model.networks import Generator, NetworkSettings  # noqa: E402
from stylegan.model.sampling import inference_device  # noqa: E402


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


def ppl_ls_rates(
    res: int, num: int, batch: int, fmap_base: int, attributes: int, device: torch.device, tmp: Path
) -> tuple[float, float, float]:
    """(PPL pairs/s, LS samples/s, classifier training img/s) at `res`."""
    import numpy as np
    from PIL import Image

    from stylegan.metrics import classifier as clf
    from stylegan.metrics import lpips_vgg, ls, ppl
    from stylegan.metrics.config import ClassifierSettings, LsSettings

    G = Generator(NetworkSettings(resolution=res, fmap_base=fmap_base)).to(device).eval()
    meta = {"resolution": res, "alpha": 1.0}
    distance = lpips_vgg.LpipsVgg16().to(device).eval()
    blocks = shard_blocks(num, batch, 0, 1, 0, "ppl")
    ppl.block_distances(G, meta, distance, "z_full", blocks[0], 1e-4)  # warm-up
    sync(device)
    began = time.perf_counter()
    for block in blocks:
        ppl.block_distances(G, meta, distance, "z_full", block, 1e-4)
    sync(device)
    rates = [num / (time.perf_counter() - began)]
    side = min(res, 256)
    s = LsSettings(resolution=side, classifier=ClassifierSettings(images=max(16 * num, 64), fmap_base=fmap_base))
    nets = [
        clf.Classifier(f"a{i}", clf.Discriminator(clf.network_settings(s)).to(device).eval(), side, tmp)
        for i in range(attributes)
    ]
    ls.block_rows(G, meta, nets, blocks[0])
    sync(device)
    began = time.perf_counter()
    for block in blocks:
        ls.block_rows(G, meta, nets, block)
    sync(device)
    rates.append(num / (time.perf_counter() - began))
    folder = tmp / f"faces{res}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for k in range(16):
        paths.append(folder / f"{k}.png")
        Image.fromarray(rng.integers(0, 256, (res, res, 3), dtype=np.uint8)).save(paths[-1])
    faces = clf.LabelledFaces(paths, np.array([1, -1] * 8, np.int8), str(paths[0]))
    began = time.perf_counter()
    clf.train(s, faces, "a", 0, tmp / "a.pt", device)
    rates.append(s.classifier.images / (time.perf_counter() - began))
    return rates[0], rates[1], rates[2]


def svm_seconds(samples: int, workers: int) -> tuple[float, float]:
    """(seconds of one LinearSVC(dual=True) fit on samples x 512, speed-up of `workers` fits in parallel)."""
    import numpy as np

    from stylegan.metrics import ls

    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, 512)).astype(np.float32)
    target = (x @ rng.normal(size=512) + rng.normal(scale=8.0, size=samples) > 0).astype(np.int64)
    logits = np.where(target[:, None] > 0, 1.0, -1.0).repeat(workers, 1) * (1 + rng.random((samples, workers)))
    doubled = np.concatenate([x, x])  # keep_confident keeps half: fit on all `samples` rows
    logits = np.concatenate([logits, np.zeros_like(logits)])
    names = [f"a{i}" for i in range(workers)]
    began = time.perf_counter()
    ls.separability(doubled, doubled, logits[:, :1], names[:1], workers=1)
    one = (time.perf_counter() - began) / 2  # z and w
    began = time.perf_counter()
    ls.separability(doubled, doubled, logits, names, workers=workers)
    parallel = time.perf_counter() - began
    return one, 2 * workers * one / parallel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--num", type=int, default=32, help="images per measurement")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader processes reading reals")
    parser.add_argument("--fmap-base", type=int, default=8192, help="8192: config F widths")
    parser.add_argument("--ppl-ls", action="store_true", help="also PPL, LS, classifier and SVM throughput")
    parser.add_argument("--fid", action=argparse.BooleanOptionalAction, default=True, help="the FID table")
    parser.add_argument("--attributes", type=int, default=40, help="LS classifiers (CelebA: 40)")
    parser.add_argument("--svm-samples", type=int, default=100000, help="rows per SVM fit (LS: 100,000)")
    parser.add_argument("--svm-workers", type=int, default=2, help="parallel SVM fits (the LS job's CPUs)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = inference_device() if args.device == "cuda" else torch.device(args.device)  # TF32 off, as the jobs
    detector = Inception(InceptionSettings(), device)
    with torch.no_grad():
        detector(torch.zeros(args.batch, 3, 64, 64, dtype=torch.uint8))  # warm-up
    print(
        f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch}, {args.num} images, "
        f"fmap_base {args.fmap_base}, reader workers {args.workers}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        if args.fid:
            print(f"{'res':>5} {'reals img/s':>12} {'gen img/s':>10} {'gen+feat img/s':>15} {'FID50k min':>11}")
            for res in args.resolutions:
                reals = reals_rate(res, args.num, args.batch, args.workers, detector, Path(tmp))
                gen, both = generator_rates(res, args.num, args.batch, args.fmap_base, detector)
                print(f"{res:>5} {reals:>12.1f} {gen:>10.1f} {both:>15.1f} {50000 / both / 60:>11.1f}", flush=True)
        if args.ppl_ls:
            print(
                f"{'res':>5} {'PPL pairs/s':>12} {'PPL100k min':>12} {'LS samples/s':>13} {'LS200k min':>11} "
                f"{'clf img/s':>10} {'clf150k min':>12}   ({args.attributes} classifiers)"
            )
            for res in args.resolutions:
                pairs, samples, train = ppl_ls_rates(
                    res, args.num, args.batch, args.fmap_base, args.attributes, device, Path(tmp)
                )
                print(
                    f"{res:>5} {pairs:>12.2f} {400000 / pairs / 60:>12.1f} {samples:>13.2f} "
                    f"{200000 / samples / 60:>11.1f} {train:>10.1f} {150000 / train / 60:>12.1f}",
                    flush=True,
                )
            one, speedup = svm_seconds(args.svm_samples, args.svm_workers)
            scale = 100000 / args.svm_samples
            print(
                f"SVM LinearSVC(dual=True) on {args.svm_samples} x 512: {one:.1f} s per fit"
                + (f" (x{scale:g} rows, linear extrapolation: ~{one * scale:.0f} s at 100,000)" if scale != 1 else "")
                + f"; {args.svm_workers} fits in parallel: {speedup:.2f}x; 80 fits (40 attributes x z, w) on "
                f"{args.svm_workers} CPUs: ~{80 * one * scale / speedup / 60:.0f} min",
                flush=True,
            )


if __name__ == "__main__":
    main()
