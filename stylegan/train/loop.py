"""The training loop: set-up, data, step, log, checkpoint, top to bottom (after NVlabs/stylegan `training/training_loop.py`).

One process per GPU under torchrun (WORLD_SIZE > 1: NCCL on GPUs, gloo on CPU),
or one plain process. Data parallelism is done by hand rather than with the
DistributedDataParallel wrapper, as SG did: after each backward the gradients of
the active parameters are flattened, summed over ranks and divided by the rank
count. That survives R1's double backward and progressive growing's idle blocks
(which DDP would need `find_unused_parameters` for), and it puts the non-finite
check after the reduction, so every rank skips the same updates.

Every random draw the loop makes (z, x-flips, data order) comes from streams
shared by all ranks, drawn for the GLOBAL batch and sliced [rank::world]; each
rank's own RNG (seed + rank) only feeds what G draws inside itself (per-layer
noise, the mixing decision and its second latent). The global batch is the
schedule's minibatch whatever the process count.

Preemption: SIGTERM or SIGUSR1 sets a flag; at the end of the current step all
ranks agree, write a checkpoint and exit with EXIT_PREEMPTED (75, EX_TEMPFAIL),
so SLURM/Snakemake can requeue and the next start resumes from it.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import resource
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from stylegan import fileio
from stylegan.data.dataset import ShardDataset, to_float
from stylegan.distributed import (Dist, agree, average_over_ranks, barrier, init_distributed, shutdown,
                                 sum_over_ranks)
from stylegan.errors import StageError
from stylegan.settings import as_dict
from stylegan.model import files
from stylegan.train import checkpoint
from stylegan.train.config import TrainSettings
from stylegan.train.data import reals_loader
from stylegan.train.loss import StyleGANLoss, process_reals, r1_gamma
from stylegan.model.networks import Discriminator, Generator
from stylegan.model.files import generator_file, state_dict
from stylegan.model.grids import grid_png
from stylegan.model.sampling import render
from stylegan.model.schedule import Level, ema_beta, level_at, resolutions

log = logging.getLogger(__name__)

EXIT_PREEMPTED = 75  # EX_TEMPFAIL: checkpoint written after SIGTERM/SIGUSR1; run again to resume
LOG_FILE = "log.jsonl"  # in the run directory: one record per tick, which `stylegan report curves` plots


@dataclass
class Progress:
    """The loop's counters: with the networks, optimizers and RNGs, all a resume needs."""

    nimg: int = 0  # images seen (global)
    step: int = 0  # optimizer steps taken
    sched_nimg: int = 0  # images seen when the schedule was last evaluated
    tick: int = 0
    tick_start_nimg: int = 0
    skipped: int = 0  # updates dropped for non-finite gradients


class StopFlag:
    """Set by SIGTERM/SIGUSR1; checked at the end of each step so no step is left half done."""

    def __init__(self) -> None:
        self.raised = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        log.warning("received %s: checkpointing at the end of this step", signal.Signals(signum).name)
        self.raised = True


def train(s: TrainSettings, manifest: Path, run_dir: Path, out: Path) -> int:
    """Train (or resume) the run in `run_dir`; write G_ema to `out` at the end. Returns the exit status."""
    d = init_distributed()
    try:
        # One tick record per line, written by rank 0 only; a resumed run appends to it.
        run_log = fileio.Journal(run_dir / LOG_FILE, key=lambda r: r["tick"]) if d.main else None
        with StopFlag() as stop, run_log or contextlib.nullcontext():
            return _train(s, manifest, run_dir, out, d, stop, run_log)
    finally:
        shutdown(d)


def check_settings(s: TrainSettings, manifest: Path, world: int) -> None:
    """Fail before any work on a data set or batch layout the schedule cannot use."""
    data = ShardDataset(manifest, split="train")
    if len(data) == 0:
        raise StageError(f"{manifest}: the train split is empty")
    R = s.network.resolution
    base, table = s.schedule.minibatches()
    for res in resolutions(s.schedule, R):
        if res not in data.resolutions:
            raise StageError(f"train.network.resolution {R}: the shards have no {res}² level "
                             f"(levels {list(data.resolutions)}); lower it or raise align.output_size")
        mb = table.get(res, base)
        per_rank = mb // world
        if mb % world or per_rank % min(s.network.mbstd_group_size, per_rank):
            raise StageError(f"train.schedule: the {res}² minibatch {mb} must split into {world} equal per-rank "
                             f"batches, each a multiple of mbstd_group_size {s.network.mbstd_group_size}")


def _train(s: TrainSettings, manifest: Path, run_dir: Path, out: Path, d: Dist, stop: StopFlag,
           run_log: fileio.Journal | None) -> int:
    # --- set-up -------------------------------------------------------------
    check_settings(s, manifest, d.world)
    R, total_nimg = s.network.resolution, int(s.schedule.total_kimg * 1000)
    if d.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = s.speed.tf32
    G, D = build_networks(s, d.device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_G, opt_D = new_optimizer(G, s), new_optimizer(D, s)
    z_stream = torch.Generator().manual_seed(s.seed + 1)  # shared by all ranks: z and x-flips
    torch.manual_seed(s.seed * 7919 + d.rank)  # per-rank: G's noise and mixing draws
    p = Progress()
    resumed = checkpoint.latest(run_dir)
    if resumed is not None:
        p = restore(resumed, G, D, G_ema, opt_G, opt_D, z_stream, d)
    autocast = (lambda: torch.autocast(d.device.type, dtype=torch.bfloat16)) if s.speed.bf16 else None
    loss = StyleGANLoss(torch.compile(G) if s.speed.compile else G, D, mixing_prob=s.loss.mixing_prob,
                        autocast=autocast)
    grid_z = torch.randn(s.checkpoint.grid[0] * s.checkpoint.grid[1], s.network.latent_size,
                         generator=torch.Generator().manual_seed(s.seed + 2))
    level = level_at(s.schedule, R, p.sched_nimg / 1000)
    batches = None
    bar = tqdm(total=total_nimg, initial=p.nimg, unit="img", unit_scale=True, dynamic_ncols=True,
               disable=not d.main, file=sys.stderr, desc="train",
               mininterval=0.1 if sys.stderr.isatty() else 30)  # a log file gets a line per 30 s, not per step
    tick_time, sums = time.time(), torch.zeros(6, dtype=torch.float64)
    log.info("%s at %d of %d images, %d process(es) on %s", "resuming" if resumed else "starting",
             p.nimg, total_nimg, d.world, d.device)

    while p.nimg < total_nimg:
        # --- schedule: re-evaluated every minibatch_repeats steps (SG training_loop.py) ---------
        if p.step % s.schedule.minibatch_repeats == 0:
            new = level_at(s.schedule, R, p.nimg / 1000)
            if s.optimizer.reset_on_level_change and new.lod_bounds != level.lod_bounds:
                opt_G, opt_D = new_optimizer(G, s), new_optimizer(D, s)
            if (new.resolution, new.minibatch) != (level.resolution, level.minibatch):
                batches = None
            level, p.sched_nimg = new, p.nimg
        for opt in (opt_G, opt_D):
            for group in opt.param_groups:
                group["lr"] = level.lrate

        # --- data: this rank's share of the global batch -----------------------------------
        if batches is None:
            batches = reals_loader(manifest, level.resolution, level.minibatch, p.nimg, s.seed, d.rank, d.world,
                                   s.speed.workers, s.speed.pin_memory and d.device.type == "cuda")
        mb, res, alpha = level.minibatch, level.resolution, level.alpha
        reals = to_float(next(batches).to(d.device, non_blocking=True))
        z_d, z_g = (torch.randn(mb, s.network.latent_size, generator=z_stream)[d.rank::d.world].to(d.device)
                    for _ in range(2))
        flip = (torch.rand(mb, generator=z_stream) < 0.5)[d.rank::d.world].to(d.device) if s.xflip else None
        reals = process_reals(reals, alpha, flip)
        if s.speed.channels_last:
            reals = reals.contiguous(memory_format=torch.channels_last)

        # --- step: D main + R1, then G main; EMA of G ------------------------------------
        gamma = r1_gamma(s.loss.r1_gamma, s.loss.r1_match_reference, res, R)
        G.requires_grad_(False), D.requires_grad_(True)
        opt_D.zero_grad(set_to_none=True)
        loss_d, stats = loss.d_main_and_r1(reals, z_d, res, alpha, gamma)
        loss_d.backward()
        p.skipped += not apply_gradients(D, opt_D, d.world)
        p.nimg += mb
        G.requires_grad_(True), D.requires_grad_(False)
        opt_G.zero_grad(set_to_none=True)
        loss_g = loss.g_main(z_g, res, alpha)
        loss_g.backward()
        p.skipped += not apply_gradients(G, opt_G, d.world)
        average_over_ranks(G.w_avg, d)
        update_ema(G_ema, G, ema_beta(mb, s.G_smoothing_kimg))
        p.step += 1
        sums += torch.tensor([loss_g.item(), stats["loss_d"].item(), stats["r1"].item(),
                              stats["real_score"].item(), stats["fake_score"].item(), 1.0], dtype=torch.float64)
        bar.update(mb)

        # --- log, snapshots, preemption -------------------------------------------------------
        done = p.nimg >= total_nimg
        preempted = agree(stop.raised, d)
        if done or p.nimg >= p.tick_start_nimg + level.tick_kimg * 1000:
            p.tick += 1
            record = tick_record(p, level, sums, time.time() - tick_time, d)
            tick_time, sums, p.tick_start_nimg = time.time(), torch.zeros_like(sums), p.nimg
            if run_log is not None:
                run_log.record(record)
                bar.write(console_line(record), file=sys.stderr)
            if d.main and (done or p.tick % s.schedule.image_snapshot_ticks == 0):
                write_grid(run_dir / "snapshots" / f"fakes{p.nimg // 1000:06d}.png", G_ema, grid_z, level, s)
            if done or p.tick == 1 or p.tick % s.schedule.network_snapshot_ticks == 0:
                save_checkpoint(run_dir, s, p, G, D, G_ema, opt_G, opt_D, z_stream, d)
                if d.main:
                    save_snapshot(run_dir, s, p, G_ema)
        if preempted and not done:
            save_checkpoint(run_dir, s, p, G, D, G_ema, opt_G, opt_D, z_stream, d)
            # No rank leaves before rank 0 has written it: when one of its ranks exits, torchrun
            # stops the node's others, and after its shutdown timeout it kills them.
            barrier(d)
            log.warning("preempted at %d images: checkpoint written, exiting with %d", p.nimg, EXIT_PREEMPTED)
            bar.close()
            return EXIT_PREEMPTED
    bar.close()

    # --- final: G_ema and its settings, loadable safely ---------------------------------------
    if d.main:
        final = level_at(s.schedule, R, p.nimg / 1000)
        files.save(out, generator_file(G_ema, s.network, p.nimg, final.resolution, final.alpha))
        log.info("wrote %s (%d² generator after %.1f kimg)", out, final.resolution, p.nimg / 1000)
    return 0


def build_networks(s: TrainSettings, device: torch.device) -> tuple[Generator, Discriminator]:
    """G and D as at step 0: seeded from train.seed, so every rank starts from the same weights."""
    torch.manual_seed(s.seed)
    G, D = Generator(s.network).to(device), Discriminator(s.network).to(device)
    if s.speed.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    return G, D


def new_optimizer(model: torch.nn.Module, s: TrainSettings) -> torch.optim.Adam:
    """Adam as the reference: beta1 0, beta2 0.99, eps 1e-8 (NVlabs/stylegan `train.py`); lr set each step."""
    o = s.optimizer
    return torch.optim.Adam(model.parameters(), lr=s.schedule.lrate_base, betas=(o.beta1, o.beta2), eps=o.eps)


def apply_gradients(model: torch.nn.Module, opt: torch.optim.Optimizer, world: int) -> bool:
    """Average gradients over ranks, then step unless any is non-finite (all ranks decide alike).

    Only parameters that received a gradient take part: at a given level every
    rank runs the same blocks, so the set is the same everywhere.
    """
    params = [q for q in model.parameters() if q.grad is not None]
    flat = torch.cat([q.grad.reshape(-1) for q in params])
    if world > 1:
        dist.all_reduce(flat)
        flat /= world
    if not bool(torch.isfinite(flat).all()):
        log.warning("non-finite gradient: update skipped")
        return False
    offset = 0
    for q in params:
        q.grad.copy_(flat[offset:offset + q.numel()].view_as(q.grad))
        offset += q.numel()
    opt.step()
    return True


@torch.no_grad()
def update_ema(ema: Generator, G: Generator, beta: float) -> None:
    """G_ema = lerp(G, G_ema, beta); buffers (w_avg, stored noise) copied (SG training_loop.py Gs_beta; SG dnnlib/tflib/network.py setup_as_moving_average_of)."""
    for q_ema, q in zip(ema.parameters(), G.parameters()):
        q_ema.lerp_(q, 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def tick_record(p: Progress, level: Level, sums: torch.Tensor, seconds: float, d: Dist) -> dict[str, Any]:
    """The tick's log record; losses are means over the tick's steps and all ranks."""
    sums = sum_over_ranks(sums, d)
    n = max(sums[5].item(), 1.0)
    tick_kimg = (p.nimg - p.tick_start_nimg) / 1000
    if d.device.type == "cuda":
        memory = torch.cuda.max_memory_allocated(d.device) / 2**20
    else:
        memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {
        "tick": p.tick, "kimg": p.nimg / 1000, "step": p.step, "resolution": level.resolution,
        "lod": level.lod, "alpha": level.alpha, "minibatch": level.minibatch, "lrate": level.lrate,
        "loss_g": sums[0].item() / n, "loss_d": sums[1].item() / n, "r1": sums[2].item() / n,
        "real_score": sums[3].item() / n, "fake_score": sums[4].item() / n, "skipped": p.skipped,
        "sec_per_tick": seconds, "sec_per_kimg": seconds / max(tick_kimg, 1e-9), "memory_mb": memory,
        "time": time.time(),
    }


def console_line(r: dict[str, Any]) -> str:
    return (f"tick {r['tick']:<4d} kimg {r['kimg']:<8.1f} res {r['resolution']:<4d} alpha {r['alpha']:.3f} "
            f"mb {r['minibatch']:<4d} lr {r['lrate']:.4g} G {r['loss_g']:.3f} D {r['loss_d']:.3f} "
            f"R1 {r['r1']:.3g} sec/kimg {r['sec_per_kimg']:.2f} mem {r['memory_mb']:.0f} MB")


def save_checkpoint(run_dir: Path, s: TrainSettings, p: Progress, G: Generator, D: Discriminator,
                    G_ema: Generator, opt_G: torch.optim.Optimizer, opt_D: torch.optim.Optimizer,
                    z_stream: torch.Generator, d: Dist) -> None:
    """Everything a resume needs (networks, optimizers, counters, every rank's RNG), written by rank 0."""
    rngs = [checkpoint.rng_state()]
    if d.world > 1:
        rngs = [None] * d.world
        dist.all_gather_object(rngs, checkpoint.rng_state())
    if not d.main:
        return
    state = {
        "format": files.TRAINING_FORMAT, "settings": as_dict(s), "world_size": d.world,
        "G": state_dict(G), "D": state_dict(D), "G_ema": state_dict(G_ema),
        "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(),
        "progress": {"nimg": p.nimg, "step": p.step, "sched_nimg": p.sched_nimg, "tick": p.tick,
                     "tick_start_nimg": p.tick_start_nimg, "skipped": p.skipped},
        "rng": {"ranks": rngs, "z_stream": z_stream.get_state()},
    }
    path = checkpoint.path_for(run_dir, p.nimg)
    files.save(path, state)
    checkpoint.prune(run_dir, s.checkpoint.keep)
    log.info("checkpoint %s", path)


def save_snapshot(run_dir: Path, s: TrainSettings, p: Progress, G_ema: Generator) -> None:
    """A generator file kept for good beside the pruned checkpoints: the FID curve evaluates each."""
    level = level_at(s.schedule, s.network.resolution, p.nimg / 1000)
    files.save(files.snapshot_path(run_dir, p.nimg),
                    generator_file(G_ema, s.network, p.nimg, level.resolution, level.alpha))


def restore(path: Path, G: Generator, D: Discriminator, G_ema: Generator, opt_G: torch.optim.Optimizer,
            opt_D: torch.optim.Optimizer, z_stream: torch.Generator, d: Dist) -> Progress:
    """Load a checkpoint into the fresh objects; the random streams continue where they stopped."""
    state = files.load(path)
    if state["format"] != files.TRAINING_FORMAT:
        raise StageError(f"{path}: a generator file, not a training checkpoint")
    try:
        for module, key in ((G, "G"), (D, "D"), (G_ema, "G_ema")):
            module.load_state_dict(state[key])
    except RuntimeError as err:
        raise StageError(f"{path}: the checkpoint does not fit train.network (a different model?): {err}") from None
    opt_G.load_state_dict(state["opt_G"])
    opt_D.load_state_dict(state["opt_D"])
    z_stream.set_state(state["rng"]["z_stream"])
    ranks = state["rng"]["ranks"]
    if len(ranks) == d.world:
        checkpoint.set_rng_state(ranks[d.rank])
    else:
        log.warning("checkpoint from %d process(es), now %d: per-rank noise streams are reseeded", len(ranks), d.world)
        torch.manual_seed(state["progress"]["nimg"] * 7919 + d.rank)
    progress = Progress(**state["progress"])
    log.info("resumed from %s", path)
    return progress


def write_grid(path: Path, G_ema: Generator, z: torch.Tensor, level: Level, s: TrainSettings) -> None:
    """Image snapshot: the fixed latents through G_ema, untruncated as SG's validation (SG training_loop.py and training/misc.py, is_validation=True)."""
    images = render(G_ema, z, level.resolution, level.alpha)
    fileio.write_bytes(path, grid_png(images, s.checkpoint.grid[0], s.network.resolution))
