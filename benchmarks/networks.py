"""Speed of one G+D forward/backward at each level, per layout and resampling variant.

Prints a table: resolution, batch, variant, milliseconds per step, images per
second and peak memory. A "step" is what one training iteration costs the
networks: G(z) -> D -> non-saturating loss -> backward through both. It tells
whether G's fused up-convs (`fused_scale`) and channels-last pay on the
machine it runs on; the training benchmark measures whole sec/kimg.

    .venv/bin/python benchmarks/networks.py                    # config F widths, 8..64, CPU
    .venv/bin/python benchmarks/networks.py --device cuda --resolutions 128 256 512 1024 --batch 32
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import time

import torch
import torch.nn.functional as F

from stylegan.model.networks import Discriminator, Generator, NetworkSettings

VARIANTS = {  # name: (fused_scale, channels_last)
    "auto (ref)": (None, False),
    "unfused": (False, False),
    "fused": (True, False),
    "auto+cl": (None, True),
}


def step(G: Generator, D: Discriminator, z: torch.Tensor, res: int) -> None:
    img = G(z, res=res, mixing_prob=0.9)
    F.softplus(-D(img, res=res)).mean().backward()


def time_variant(
    s: NetworkSettings, res: int, batch: int, device: str, channels_last: bool, repeats: int
) -> tuple[float, float]:
    """Median seconds per step and peak memory in MiB (CUDA: allocator peak; CPU: process max RSS)."""
    G, D = Generator(s).to(device), Discriminator(s).to(device)
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    z = torch.randn(batch, s.latent_size, device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step(G, D, z, res)  # warm-up: allocator, kernels' autotuning
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step(G, D, z, res)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return sorted(times)[len(times) // 2], peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--final", type=int, default=1024, help="model's final resolution (widths follow it)")
    args = parser.parse_args()
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# G+D forward/backward per step, config F widths, final {args.final}², on {name}")
    peak = "CUDA allocator peak" if args.device == "cuda" else "process max RSS so far (monotonic)"
    print(f"# peak MiB = {peak}; cl = channels-last; auto = fused at >= 128 as the reference")
    print(f"{'res':>5} {'batch':>5} {'variant':<11} {'ms/step':>9} {'img/s':>8} {'peak MiB':>9}")
    base = NetworkSettings(resolution=args.final)
    for res in args.resolutions:
        for variant, (fused, channels_last) in VARIANTS.items():
            s = dataclasses.replace(base, fused_scale=fused)
            seconds, peak = time_variant(s, res, args.batch, args.device, channels_last, args.repeats)
            print(
                f"{res:>5} {args.batch:>5} {variant:<11} {seconds * 1e3:>9.1f} {args.batch / seconds:>8.1f} "
                f"{peak:>9.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
