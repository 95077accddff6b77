"""Training speed: sec/kimg and peak memory per resolution and batch, for each speed flag.

A step is what the loop does per iteration (stylegan/train/loop.py): D main + R1
backward and Adam update, then G main backward and update, then the EMA of G,
at a stable level (alpha 1) with style mixing and noise on. Reals are random
tensors, so data loading is excluded. Each configuration runs in a fresh
subprocess, so on CPU the process's peak RSS is that configuration's alone;
on CUDA the allocator peak is reported. Compare sec/kimg with the references
(NVlabs/stylegan README.md, 6 days 14 hours for 25,000 kimg on 8 V100s at 1024²,
derived: 568,800 s / 25,000 kimg ~ 23 s/kimg; NVlabs/stylegan2-ada-pytorch
README.md, its PyTorch successor: 154-162 s/kimg on one V100 at 1024²).

    .venv/bin/python benchmarks/train.py                           # CPU: config F widths, 8²-32², batch 4
    .venv/bin/python benchmarks/train.py --device cuda --resolutions 8 16 32 64 128 256 512 1024 --batch 32
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from stylegan.train.config import TrainSettings
from stylegan.train.loop import apply_gradients, build_networks, new_optimizer, update_ema
from stylegan.train.loss import StyleGANLoss, r1_gamma
from stylegan.model.networks import NetworkSettings
from stylegan.model.schedule import ema_beta

FLAGS = ("default", "channels_last", "bf16", "compile")


def measure(res: int, batch: int, flag: str, device: str, iters: int, warmup: int, fmap_base: int) -> dict:
    """Run `warmup` + `iters` training steps of a model whose final resolution is `res`."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    s = TrainSettings(network=NetworkSettings(resolution=res, fmap_base=fmap_base))
    G, D = build_networks(s, torch.device(device))
    if flag == "channels_last":
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    G_ema = build_networks(s, torch.device(device))[0].eval().requires_grad_(False)
    opt_G, opt_D = new_optimizer(G, s), new_optimizer(D, s)
    autocast = (lambda: torch.autocast(device, dtype=torch.bfloat16)) if flag == "bf16" else None
    loss = StyleGANLoss(torch.compile(G) if flag == "compile" else G, D, mixing_prob=0.9, autocast=autocast)
    reals = torch.rand(batch, 3, res, res, device=device) * 2 - 1
    if flag == "channels_last":
        reals = reals.contiguous(memory_format=torch.channels_last)
    gamma = r1_gamma(10.0, True, res, res)

    def step() -> None:
        G.requires_grad_(False), D.requires_grad_(True)
        opt_D.zero_grad(set_to_none=True)
        loss.d_main_and_r1(reals, torch.randn(batch, 512, device=device), res, 1.0, gamma)[0].backward()
        apply_gradients(D, opt_D, 1)
        G.requires_grad_(True), D.requires_grad_(False)
        opt_G.zero_grad(set_to_none=True)
        loss.g_main(torch.randn(batch, 512, device=device), res, 1.0).backward()
        apply_gradients(G, opt_G, 1)
        update_ema(G_ema, G, ema_beta(batch, 10.0))

    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = (time.perf_counter() - start) / iters
    return {"res": res, "batch": batch, "flag": flag, "sec_per_step": seconds,
            "sec_per_kimg": seconds * 1000 / batch, "peak_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--batch", type=int, nargs="+", default=[4])
    parser.add_argument("--flags", nargs="+", default=list(FLAGS), choices=FLAGS)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--fmap-base", type=int, default=8192, help="8192: config F widths")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per configuration")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one configuration, print JSON
    args = parser.parse_args()
    if args.one:
        res, batch, flag = args.one.split(",")
        print(json.dumps(measure(int(res), int(batch), flag, args.device, args.iters, args.warmup, args.fmap_base)))
        return
    print(f"device: {args.device} ({torch.cuda.get_device_name() if args.device == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, fmap_base {args.fmap_base}")
    print(f"{'res':>5} {'batch':>5} {'flag':<14} {'s/step':>9} {'sec/kimg':>10} {'peak MB':>9}")
    for res in args.resolutions:
        for batch in args.batch:
            for flag in args.flags:
                cmd = [sys.executable, __file__, "--one", f"{res},{batch},{flag}", "--device", args.device,
                       "--iters", str(args.iters), "--warmup", str(args.warmup), "--fmap-base", str(args.fmap_base)]
                try:
                    done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                    r = json.loads(done.stdout.strip().splitlines()[-1])
                    print(f"{res:>5} {batch:>5} {flag:<14} {r['sec_per_step']:>9.3f} {r['sec_per_kimg']:>10.1f} "
                          f"{r['peak_mb']:>9.0f}", flush=True)
                except (subprocess.TimeoutExpired, IndexError, json.JSONDecodeError) as err:
                    reason = "timeout" if isinstance(err, subprocess.TimeoutExpired) else done.stderr.strip()[-200:]
                    print(f"{res:>5} {batch:>5} {flag:<14} failed: {reason}", flush=True)


if __name__ == "__main__":
    main()
