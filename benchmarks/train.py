"""Training speed: our step against the reference step on CPU; sec/kimg and peak memory per speed flag on CUDA.

A step is what the loop does per iteration (`stylegan.train.loop.step`): D main +
R1 backward and Adam update, then G main backward and update, then w_avg and the
EMA of G, at a stable level (alpha 1) with style mixing and noise on. Reals are
random tensors, so data loading is excluded.

--compare (the default on CPU): in one process, our step and the REFERENCE step,
interleaved rep by rep and thread count by thread count, medians; ratio = ours /
reference. The reference is the step as it was before the speed work, restated here from
the same layers with its old formulations (`OLD_FORMS`, held to the same function by
tests/test_benchmark_train.py): the blur as a grouped convolution (autograd's double
backward runs one small conv per channel); D's down-convolutions as SG's fused_scale='auto'
(below 128² a full-size conv then a box average, above it a 4x4 kernel rebuilt per call);
each dense bias multiplied by its lrmul even when 1; instance norm, noise and styles as element-wise ops;
contiguous (NCHW) tensors; the for-loop Adam; `apply_gradients` flattening every gradient,
reading a Python bool (a host-device sync) and copying them back; and the EMA one
parameter at a time.

Sweep (the default on CUDA): one row per flag, batch and level, in one process;
on CUDA the allocator's peak per row. Without --batch, CUDA runs the per-GPU minibatch of the reference's
8-GPU table (NVlabs/stylegan `train.py`, here `MINIBATCH_PRESETS[8]` / 8) and 2x
and 4x it. Compare sec/kimg with the references (NVlabs/stylegan README.md,
6 days 14 hours for 25,000 kimg on 8 V100s at 1024², derived: 568,800 s / 25,000
kimg ~ 23 s/kimg; NVlabs/stylegan2-ada-pytorch README.md, its PyTorch successor:
154-162 s/kimg on one V100 at 1024²).

    .venv/bin/python benchmarks/train.py                    # CPU: ours vs reference, config F, 8²-32², batch 4 16
    .venv/bin/python benchmarks/train.py --widths demo --resolutions 8 16 32 64
    .venv/bin/python benchmarks/train.py --device cuda      # every level 8²-1024², every flag, 1x 2x 4x the 8-GPU batch
    .venv/bin/python benchmarks/train.py --no-compare --resolutions 8 --batch 4 --iters 1   # the sweep's path on CPU
    .venv/bin/python benchmarks/train.py --profile --widths demo --resolutions 32 --batch 4 --threads 1
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from stylegan import settings  # noqa: E402
from stylegan.distributed import Dist  # noqa: E402
from stylegan.model.layers import (  # noqa: E402
    Blur,
    DownConv2d,
    EqualizedLinear,
    InstanceNorm,
    NoiseInjection,
    StyleMod,
    _pairwise_sum_4x4,
    at_least_fp32,
    downscale2d,
)
from stylegan.model.networks import FUSED_MIN_RESOLUTION, NetworkSettings  # noqa: E402
from stylegan.model.schedule import MINIBATCH_PRESETS, Level, ema_beta  # noqa: E402
from stylegan.train.config import SpeedSettings, TrainSettings  # noqa: E402
from stylegan.train.loop import Batch, build_networks, new_loss, new_state, step  # noqa: E402
from stylegan.train.loss import StyleGANLoss, r1_gamma  # noqa: E402

FLAGS = ("default", "reference", "bf16", "channels_last", "compile")  # the order of the sweep: the most needed first
CUDA_RESOLUTIONS = [8, 16, 32, 64, 128, 256, 512, 1024]
COMPARE_BATCHES = [4, 16]  # --compare and --profile without --batch


class GroupedConvBlur(Blur):
    """The reference's blur: a grouped conv, left to autograd's double backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        return F.conv2d(x, self.kernel.to(x.dtype).expand(channels, 1, 3, 3), padding=1, groups=channels)


class SGDownConv2d(DownConv2d):
    """The reference's down-conv, SG's two forms: below 128² a full-size conv then the box average;
    from 128² a stride-2 4x4 conv of the kernel rebuilt on every call (`sg_fused`, set by `restate`)."""

    sg_fused = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sg_fused:
            kernel = _pairwise_sum_4x4(self.effective_weight()) * 0.25
            return F.conv2d(x, kernel, self.bias, stride=2, padding=1)
        return downscale2d(F.conv2d(x, self.effective_weight(), self.bias, padding=1))


class WeightScaledLinear(EqualizedLinear):
    """The reference's dense layer: the bias multiplied by lrmul on every call, x1 included."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lrmul
        return F.linear(x, self.effective_weight(), bias)


class ElementwiseInstanceNorm(InstanceNorm):
    """The reference's instance norm: seven element-wise ops and their backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = at_least_fp32(x)
        y = y - y.mean(dim=(2, 3), keepdim=True)
        return (y * torch.rsqrt(y.square().mean(dim=(2, 3), keepdim=True) + self.eps)).to(x.dtype)


class MulAddNoise(NoiseInjection):
    """The reference's noise: a multiply then an add."""

    def forward(self, x: torch.Tensor, mode: str) -> torch.Tensor:
        if mode != "random":
            return super().forward(x, mode)
        noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        return x + noise * self.weight.to(x.dtype).reshape(1, -1, 1, 1)


class MulAddStyle(StyleMod):
    """The reference's style: a multiply then an add."""

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.affine(w).reshape(w.shape[0], 2, -1, 1, 1).to(x.dtype)
        return x * (style[:, 0] + 1) + style[:, 1]


OLD_FORMS = {  # each layer's class in our networks -> its formulation in the reference step
    Blur: GroupedConvBlur,
    DownConv2d: SGDownConv2d,
    EqualizedLinear: WeightScaledLinear,
    InstanceNorm: ElementwiseInstanceNorm,
    NoiseInjection: MulAddNoise,
    StyleMod: MulAddStyle,
}


def restate(network: torch.nn.Module) -> None:
    """Give every layer of `network` its reference formulation, in place: the same parameters, the old forward."""
    for parent in network.modules():
        for child in parent.children():
            if type(child) in OLD_FORMS:
                child.__class__ = OLD_FORMS[type(child)]
            if isinstance(child, SGDownConv2d):
                child.sg_fused = parent.resolution >= FUSED_MIN_RESOLUTION


def reference_apply_gradients(model: torch.nn.Module, opt: torch.optim.Optimizer) -> bool:
    """The reference's update in one process: flatten, check with a host sync, copy back, step."""
    params = [q for q in model.parameters() if q.grad is not None]
    flat = torch.cat([q.grad.reshape(-1) for q in params])
    if not bool(torch.isfinite(flat).all()):
        return False
    offset = 0
    for q in params:
        q.grad.copy_(flat[offset : offset + q.numel()].view_as(q.grad))
        offset += q.numel()
    opt.step()
    return True


def widths(name: str, res: int) -> NetworkSettings:
    """Config F's widths (the defaults), or the demo's (config.yaml train.network), for a model of final `res`."""
    if name == "F":
        return NetworkSettings(resolution=res)
    demo = yaml.safe_load((ROOT / "config.yaml").read_text())["train"]["network"]
    return settings.load(NetworkSettings, {**demo, "resolution": res})


def level(res: int, batch: int) -> Level:
    """A stable level at the model's final resolution."""
    return Level(kimg=0.0, lod=0.0, resolution=res, alpha=1.0, minibatch=batch, lrate=0.002, tick_kimg=1.0)


def reals(res: int, batch: int, device: torch.device, layout: torch.memory_format) -> torch.Tensor:
    return (torch.rand(batch, 3, res, res, device=device) * 2 - 1).contiguous(memory_format=layout)


def ours(net: NetworkSettings, batch: int, flag: str, device: torch.device) -> Callable[[], None]:
    """The loop's own step (`stylegan.train.loop.step`) with one speed flag on."""
    speed = SpeedSettings(channels_last=flag == "channels_last" or None, bf16=flag == "bf16", compile=flag == "compile")
    s = TrainSettings(network=net, speed=speed)
    st = new_state(s, Dist(0, 1, device))
    loss = new_loss(st, s)
    x, lv = reals(net.resolution, batch, device, speed.memory_format(device)), level(net.resolution, batch)

    def run() -> None:
        z = torch.randn(2, batch, net.latent_size, device=device)
        step(st, s, loss, Batch(lv, x, z[0], z[1]))

    return run


def reference(net: NetworkSettings, batch: int, device: torch.device) -> Callable[[], None]:
    """The reference step, restated (see the module docstring); the same weights as ours at step 0."""
    s = TrainSettings(network=net, speed=SpeedSettings(channels_last=False))
    G, D = build_networks(s, device)
    restate(G), restate(D)
    G_ema = build_networks(s, device)[0].eval().requires_grad_(False)
    o = s.optimizer
    opt_G, opt_D = (torch.optim.Adam(m.parameters(), lr=0.002, betas=(o.beta1, o.beta2), eps=o.eps) for m in (G, D))
    loss = StyleGANLoss(G, D, mixing_prob=s.loss.mixing_prob)
    res = net.resolution
    x, gamma, beta = (
        reals(res, batch, device, torch.contiguous_format),
        r1_gamma(10.0, True, res, res),
        ema_beta(batch, 10.0),
    )

    def run() -> None:
        z = torch.randn(2, batch, net.latent_size, device=device)
        G.requires_grad_(False), D.requires_grad_(True)
        opt_D.zero_grad(set_to_none=True)
        loss.d_main_and_r1(x, z[0], res, 1.0, gamma)[0].backward()
        reference_apply_gradients(D, opt_D)
        G.requires_grad_(True), D.requires_grad_(False)
        opt_G.zero_grad(set_to_none=True)
        loss.g_main(z[1], res, 1.0).backward()
        reference_apply_gradients(G, opt_G)
        with torch.no_grad():
            for q_ema, q in zip(G_ema.parameters(), G.parameters()):
                q_ema.lerp_(q, 1.0 - beta)
            for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                b_ema.copy_(b)

    return run


def trainer(net: NetworkSettings, batch: int, flag: str, device: torch.device) -> Callable[[], None]:
    return reference(net, batch, device) if flag == "reference" else ours(net, batch, flag, device)


def timed(run: Callable[[], None], device: torch.device) -> float:
    """Seconds of one step, the device's queue drained before and after."""
    sync(device)
    start = time.perf_counter()
    run()
    sync(device)
    return time.perf_counter() - start


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compare(net: NetworkSettings, batch: int, threads: list[int], reps: int) -> dict[int, tuple[float, float]]:
    """{threads: (reference s/step, ours s/step)}: medians of `reps` steps, interleaved per rep and thread count."""
    device = torch.device("cpu")
    runs = {"reference": reference(net, batch, device), "ours": ours(net, batch, "default", device)}
    times: dict[tuple[int, str], list[float]] = {(t, k): [] for t in threads for k in runs}
    for rep in range(reps + 1):  # the first round warms up (allocator, oneDNN primitives)
        for t in threads:
            torch.set_num_threads(t)
            for k, run in runs.items():
                seconds = timed(run, device)
                if rep:
                    times[t, k].append(seconds)
    return {t: (statistics.median(times[t, "reference"]), statistics.median(times[t, "ours"])) for t in threads}


def measure(net: NetworkSettings, batch: int, flag: str, device: torch.device, iters: int, warmup: int) -> dict:
    """`warmup` + `iters` steps of one flag: seconds per step (median), sec/kimg and peak memory (MiB)."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # train.speed.tf32's default
    run = trainer(net, batch, flag, device)
    for _ in range(warmup):
        run()
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
    seconds = statistics.median(timed(run, device) for _ in range(iters))
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"sec_per_step": seconds, "sec_per_kimg": seconds * 1000 / batch, "peak_mb": peak}


def batches(res: int, given: list[int] | None, scales: list[int]) -> list[int]:
    """The batches to run at `res`: as given, else `scales` times the reference's per-GPU batch on 8 GPUs."""
    if given:
        return given
    base, table = MINIBATCH_PRESETS[8]
    return [table.get(res, base) // 8 * k for k in scales]


def sweep(args: argparse.Namespace) -> None:
    """One row per (flag, batch, resolution), flags outermost, so a run cut short has the first flags whole.

    In one process: on CUDA the allocator's peak is reset per row; on CPU the
    column is the process's peak RSS so far.
    """
    device = torch.device(args.device)
    print(f"{'flag':<14} {'res':>5} {'batch':>5} {'s/step':>9} {'sec/kimg':>10} {'peak MB':>9}", flush=True)
    for flag in args.flags:
        for scale in range(len(args.batch or args.scales)):
            for res in args.resolutions:
                batch = batches(res, args.batch, args.scales)[scale]
                row = f"{flag:<14} {res:>5} {batch:>5}"
                try:
                    r = measure(widths(args.widths[0], res), batch, flag, device, args.iters, args.warmup)
                    print(
                        f"{row} {r['sec_per_step']:>9.3f} {r['sec_per_kimg']:>10.1f} {r['peak_mb']:>9.0f}", flush=True
                    )
                except Exception as err:  # noqa: BLE001 - out of memory or a compile failure: the row says which
                    print(f"{row} failed: {type(err).__name__}: {str(err).strip().splitlines()[-1:]}", flush=True)
                if device.type == "cuda":
                    torch.cuda.empty_cache()


def comparison(args: argparse.Namespace) -> None:
    """Ours against the reference, one row per (widths, resolution, batch, threads)."""
    print(f"{'widths':<7} {'res':>4} {'batch':>5} {'threads':>7} {'reference s':>12} {'ours s':>9} {'ratio':>6}")
    for name in args.widths:
        for res in args.resolutions:
            for batch in args.batch or COMPARE_BATCHES:
                for t, (ref, new) in compare(widths(name, res), batch, args.threads, args.iters).items():
                    print(
                        f"{name:<7} {res:>4} {batch:>5} {t:>7} {ref:>12.3f} {new:>9.3f} {new / ref:>6.2f}", flush=True
                    )


def profile(args: argparse.Namespace) -> None:
    """torch.profiler's table of one step, ours and the reference's, by self time, per (widths, resolution, batch)."""
    device = torch.device(args.device)
    torch.set_num_threads(args.threads[0])
    for name in args.widths:
        for res in args.resolutions:
            for batch in args.batch or COMPARE_BATCHES:
                for flag in ("default", "reference"):
                    run = trainer(widths(name, res), batch, flag, device)
                    run(), run()  # warm-up: allocator, oneDNN primitives
                    with torch.profiler.profile() as prof:
                        timed(run, device)
                    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows)
                    print(f"\n## {flag}: widths {name}, {res}², batch {batch}, {args.threads[0]} thread(s)\n{table}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--compare",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="ours vs the reference step, interleaved (default: on CPU only)",
    )
    parser.add_argument("--resolutions", type=int, nargs="+", help="default: 8 16 32 (CPU), 8-1024 (CUDA)")
    parser.add_argument("--batch", type=int, nargs="+", help="default: 4 16 (compare), else see --scales")
    parser.add_argument(
        "--scales",
        type=int,
        nargs="+",
        default=[1, 2, 4],
        help="sweep without --batch: multiples of the 8-GPU table's per-GPU minibatch",
    )
    parser.add_argument(
        "--widths",
        nargs="+",
        default=["F"],
        choices=["F", "demo"],
        help="F: config F (fmap_base 8192); demo: config.yaml train.network",
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="compare: CPU thread counts")
    parser.add_argument("--flags", nargs="+", default=list(FLAGS), choices=FLAGS, help="sweep: speed flags")
    parser.add_argument("--iters", type=int, default=3, help="timed steps (medians)")
    parser.add_argument("--warmup", type=int, default=1, help="sweep: untimed steps first")
    parser.add_argument(
        "--profile", action="store_true", help="torch.profiler's table of one step (ours, then the reference)"
    )
    parser.add_argument("--rows", type=int, default=12, help="profile: rows per table, by self time")
    args = parser.parse_args()
    device = torch.device(args.device)
    args.resolutions = args.resolutions or (CUDA_RESOLUTIONS if device.type == "cuda" else [8, 16, 32])
    print(
        f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
        f"torch {torch.__version__}, widths {' '.join(args.widths)}, medians of {args.iters}"
    )
    if args.profile:
        profile(args)
    elif args.compare if args.compare is not None else device.type == "cpu":
        comparison(args)
    else:
        sweep(args)


if __name__ == "__main__":
    main()
