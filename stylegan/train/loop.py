"""The training loop: set-up, data, step, log, checkpoint, top to bottom
(after NVlabs/stylegan `training/training_loop.py`).

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

Preemption: SIGTERM or SIGUSR1 sets a flag (`stylegan.train.preemption`); at
the end of the current step all ranks agree, write a checkpoint and exit with
EXIT_PREEMPTED (75, EX_TEMPFAIL), so SLURM/Snakemake can requeue and the next
start resumes from it.

What changes step by step is one `TrainState` (networks, optimizers, counters,
the shared z-stream); each phase below takes it with the settings: schedule,
data, step, end of tick (log, snapshots, checkpoint), preemption, final.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.distributed as dist

from stylegan import fileio
from stylegan.data.dataset import ShardDataset
from stylegan.distributed import Dist, agree, average_over_ranks, barrier, init_distributed, shutdown
from stylegan.errors import StageError
from stylegan.model import files
from stylegan.model.files import generator_file
from stylegan.model.grids import grid_png
from stylegan.model.networks import Discriminator, Generator
from stylegan.model.sampling import render
from stylegan.model.schedule import Level, ema_beta, level_at, resolutions
from stylegan.train import checkpoint
from stylegan.train.config import TrainSettings
from stylegan.train.data import Reals
from stylegan.train.loss import StyleGANLoss, process_reals, r1_gamma
from stylegan.train.preemption import EXIT_PREEMPTED, StopFlag
from stylegan.train.state import TrainState
from stylegan.train.ticks import TickLog

log = logging.getLogger(__name__)


class Batch(NamedTuple):
    """What one step consumes: the level, this rank's reals and its slices of the global latents."""

    level: Level
    reals: torch.Tensor
    z_d: torch.Tensor  # for D's phase
    z_g: torch.Tensor  # for G's phase


def train(s: TrainSettings, manifest: Path, run_dir: Path, out: Path) -> int:
    """Train (or resume) the run in `run_dir`; write G_ema to `out` at the end. Returns the exit status."""
    d = init_distributed()
    try:
        with StopFlag() as stop:
            return _train(s, manifest, run_dir, out, d, stop)
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
            raise StageError(
                f"train.network.resolution {R}: the shards have no {res}² level "
                f"(levels {list(data.resolutions)}); lower it or raise align.output_size"
            )
        mb = table.get(res, base)
        per_rank = mb // world
        if mb % world or per_rank % min(s.network.mbstd_group_size, per_rank):
            raise StageError(
                f"train.schedule: the {res}² minibatch {mb} must split into {world} equal per-rank "
                f"batches, each a multiple of mbstd_group_size {s.network.mbstd_group_size}"
            )


def _train(s: TrainSettings, manifest: Path, run_dir: Path, out: Path, d: Dist, stop: StopFlag) -> int:
    """The loop proper, read top to bottom: set-up, then schedule, data, step, end of tick, until done."""
    # --- set-up: fresh, or from the newest checkpoint -----------------------------------------
    check_settings(s, manifest, d.world)
    if d.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = s.speed.tf32
    st = new_state(s, d)
    if s.retrain_on_takedown:
        checkpoint.start_over_on_new_data(run_dir, manifest, d)
    resumed = checkpoint.latest(run_dir)
    if resumed is not None:
        checkpoint.restore(resumed, st)
    p, total_nimg = st.progress, int(s.schedule.total_kimg * 1000)
    loss = new_loss(st, s)
    reals = Reals(manifest, s, st)
    with TickLog(run_dir, d, total_nimg, p.nimg) as ticks:
        log.info(
            "%s at %d of %d images, %d process(es) on %s",
            "resuming" if resumed else "starting",
            p.nimg,
            total_nimg,
            d.world,
            d.device,
        )
        while p.nimg < total_nimg:
            level = schedule(st, s)
            batch = next_batch(st, s, reals, level)
            ticks.add(*step(st, s, loss, batch), level.minibatch)
            done = p.nimg >= total_nimg
            preempted = agree(stop.raised, d)  # every rank, every step: a signal may reach only some
            if done or p.nimg >= p.tick_start_nimg + level.tick_kimg * 1000:
                ticks.end(p, level)
                snapshot(st, s, run_dir, level, done)
            if preempted and not done:
                ticks.settle(p)
                return preempt(st, s, run_dir)

    # --- final: G_ema and its settings, loadable safely -----------------------------------------
    if d.main:
        final = trained_generator(st, s)
        files.save(out, final)
        log.info("wrote %s (%d² generator after %.1f kimg)", out, final["resolution"], p.nimg / 1000)
    return 0


def new_state(s: TrainSettings, d: Dist) -> TrainState:
    """The state at step 0: the same weights and z-stream on every rank, per-rank noise seeds."""
    G, D = build_networks(s, d.device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_G, opt_D = new_optimizer(G, s), new_optimizer(D, s)
    z_stream = torch.Generator().manual_seed(s.seed + 1)
    torch.manual_seed(s.seed * 7919 + d.rank)  # per-rank: G's noise and mixing draws
    return TrainState(G, D, G_ema, opt_G, opt_D, z_stream, d)


def build_networks(s: TrainSettings, device: torch.device) -> tuple[Generator, Discriminator]:
    """G and D as at step 0: seeded from train.seed, so every rank starts from the same weights."""
    torch.manual_seed(s.seed)
    layout = s.speed.memory_format(device)
    G, D = Generator(s.network), Discriminator(s.network)
    return G.to(device, memory_format=layout), D.to(device, memory_format=layout)


def new_optimizer(model: torch.nn.Module, s: TrainSettings) -> torch.optim.Adam:
    """Adam as the reference: beta1 0, beta2 0.99, eps 1e-8 (NVlabs/stylegan `train.py`); lr set each step.

    Fused: one kernel for all parameters, and it can skip a non-finite update on the
    device (`apply_gradients`).
    """
    o = s.optimizer
    return torch.optim.Adam(
        model.parameters(), lr=s.schedule.lrate_base, betas=(o.beta1, o.beta2), eps=o.eps, fused=True
    )


def new_loss(st: TrainState, s: TrainSettings) -> StyleGANLoss:
    """The loss over G (compiled when speed.compile) and D, in bf16 autocast when speed.bf16."""
    autocast = (lambda: torch.autocast(st.d.device.type, dtype=torch.bfloat16)) if s.speed.bf16 else None
    return StyleGANLoss(
        torch.compile(st.G) if s.speed.compile else st.G, st.D, mixing_prob=s.loss.mixing_prob, autocast=autocast
    )


def level_of(s: TrainSettings, nimg: int) -> Level:
    """The schedule's level after `nimg` images."""
    return level_at(s.schedule, s.network.resolution, nimg / 1000)


def schedule(st: TrainState, s: TrainSettings) -> Level:
    """This step's level, re-evaluated every minibatch_repeats steps (SG training_loop.py); lr set to it.

    Adam is reset when lod enters a new integer interval (SG reset_opt_for_new_lod).
    """
    p = st.progress
    level = level_of(s, p.sched_nimg)
    if p.step % s.schedule.minibatch_repeats == 0:
        new = level_of(s, p.nimg)
        if s.optimizer.reset_on_level_change and new.lod_bounds != level.lod_bounds:
            st.opt_G, st.opt_D = new_optimizer(st.G, s), new_optimizer(st.D, s)
        level, p.sched_nimg = new, p.nimg
    for opt in (st.opt_G, st.opt_D):
        for group in opt.param_groups:
            group["lr"] = level.lrate
    return level


def next_batch(st: TrainState, s: TrainSettings, reals: Reals, level: Level) -> Batch:
    """This rank's share of the global batch; z and flips are drawn for all of it, so every rank draws alike."""
    d, mb = st.d, level.minibatch
    images = reals.next(level.resolution, mb, st.progress.nimg)
    z_d, z_g = (
        torch.randn(mb, s.network.latent_size, generator=st.z_stream)[d.rank :: d.world].to(d.device) for _ in range(2)
    )
    flip = (torch.rand(mb, generator=st.z_stream) < 0.5)[d.rank :: d.world].to(d.device) if s.xflip else None
    images = process_reals(images, level.alpha, flip).contiguous(memory_format=s.speed.memory_format(d.device))
    return Batch(level, images, z_d, z_g)


def step(
    st: TrainState, s: TrainSettings, loss: StyleGANLoss, batch: Batch
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """D main + R1, then G main, each reduced over ranks and applied; then w_avg and the EMA of G.

    Returns the losses and the number of updates skipped, as tensors on the device: nothing here waits for it.
    """
    p, (G, D), level = st.progress, (st.G, st.D), batch.level
    res, alpha = level.resolution, level.alpha
    gamma = r1_gamma(s.loss.r1_gamma, s.loss.r1_match_reference, res, s.network.resolution)
    G.requires_grad_(False), D.requires_grad_(True)
    st.opt_D.zero_grad(set_to_none=True)
    loss_d, stats = loss.d_main_and_r1(batch.reals, batch.z_d, res, alpha, gamma)
    loss_d.backward()
    skipped = apply_gradients(D, st.opt_D, st.d.world)
    p.nimg += level.minibatch
    G.requires_grad_(True), D.requires_grad_(False)
    st.opt_G.zero_grad(set_to_none=True)
    loss_g = loss.g_main(batch.z_g, res, alpha)
    loss_g.backward()
    skipped = skipped + apply_gradients(G, st.opt_G, st.d.world)
    average_over_ranks(G.w_avg, st.d)
    update_ema(st.G_ema, G, ema_beta(level.minibatch, s.G_smoothing_kimg))
    p.step += 1
    return {"loss_g": loss_g, **stats}, skipped


def apply_gradients(model: torch.nn.Module, opt: torch.optim.Optimizer, world: int) -> torch.Tensor:
    """Average gradients over ranks, then step unless any is non-finite; returns 1.0 if skipped, else 0.0.

    Only parameters that received a gradient take part: at a given level every
    rank runs the same blocks, so the set is the same everywhere. The check comes
    after the reduction, so all ranks decide alike, and it never leaves the device:
    the fused optimizer takes the flag and skips its whole update there, as it does
    for a gradient scaler (torch `amp/grad_scaler.py`, GradScaler._maybe_opt_step),
    so no step waits for the device.
    """
    grads = [q.grad for q in model.parameters() if q.grad is not None]
    if world > 1:
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= world
        parts = flat.split([g.numel() for g in grads])
        torch._foreach_copy_(grads, [part.view_as(g) for part, g in zip(parts, grads)])
    found_inf = torch.zeros((), device=grads[0].device)
    torch._amp_foreach_non_finite_check_and_unscale_(grads, found_inf, torch.ones((), device=found_inf.device))
    opt.found_inf = found_inf  # read by the fused step; only a fused optimizer accepts it
    try:
        opt.step()
    finally:
        del opt.found_inf
    return found_inf


@torch.no_grad()
def update_ema(ema: Generator, G: Generator, beta: float) -> None:
    """G_ema = lerp(G, G_ema, beta); buffers (w_avg, stored noise) copied
    (SG training_loop.py Gs_beta; SG dnnlib/tflib/network.py setup_as_moving_average_of)."""
    torch._foreach_lerp_(list(ema.parameters()), list(G.parameters()), 1.0 - beta)
    torch._foreach_copy_(list(ema.buffers()), list(G.buffers()))


def snapshot(st: TrainState, s: TrainSettings, run_dir: Path, level: Level, done: bool) -> None:
    """At a tick's end: the image grid and, after the first tick and every network_snapshot_ticks, a checkpoint.

    The grid comes every image_snapshot_ticks; each checkpoint comes with a
    generator file, kept for good beside the pruned checkpoints (the FID curve
    evaluates each). At the end, both.
    """
    p, d = st.progress, st.d
    if d.main and (done or p.tick % s.schedule.image_snapshot_ticks == 0):
        write_grid(run_dir / "snapshots" / f"fakes{p.nimg // 1000:06d}.png", st.G_ema, level, s)
    if done or p.tick == 1 or p.tick % s.schedule.network_snapshot_ticks == 0:
        checkpoint.save(run_dir, s, st)
        if d.main:
            files.save(files.snapshot_path(run_dir, p.nimg), trained_generator(st, s))


def trained_generator(st: TrainState, s: TrainSettings) -> dict[str, Any]:
    """G_ema as a generator file, at the level of the images seen."""
    level = level_of(s, st.progress.nimg)
    return generator_file(st.G_ema, s.network, st.progress.nimg, level.resolution, level.alpha, st.dataset)


def write_grid(path: Path, G_ema: Generator, level: Level, s: TrainSettings) -> None:
    """Image snapshot: the fixed latents through G_ema, untruncated as SG's validation
    (SG training_loop.py and training/misc.py, is_validation=True)."""
    z = torch.randn(
        s.checkpoint.grid[0] * s.checkpoint.grid[1],
        s.network.latent_size,
        generator=torch.Generator().manual_seed(s.seed + 2),
    )  # the same latents at every snapshot
    fileio.write_bytes(
        path, grid_png(render(G_ema, z, level.resolution, level.alpha), s.checkpoint.grid[0], s.network.resolution)
    )


def preempt(st: TrainState, s: TrainSettings, run_dir: Path) -> int:
    """Every rank agreed to stop: checkpoint, and exit so the job is requeued."""
    checkpoint.save(run_dir, s, st)
    # No rank leaves before rank 0 has written it: when one of its ranks exits, torchrun
    # stops the node's others, and after its shutdown timeout it kills them.
    barrier(st.d)
    log.warning("preempted at %d images: checkpoint written, exiting with %d", st.progress.nimg, EXIT_PREEMPTED)
    return EXIT_PREEMPTED
