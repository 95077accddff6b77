"""Where a process sits in a torchrun job, and the few collectives that training and metrics share.

One process per GPU under torchrun (WORLD_SIZE > 1: NCCL on GPUs, gloo for CPU tensors),
or one plain process. Nothing here is specific to training: the metric jobs use the
same set-up to spread their samples over GPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    """Where this process sits in the job."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Dist:
    """Read torchrun's environment; one device per rank (LOCAL_RANK), CPU when no GPU."""
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1:  # CPU tensors go over gloo on GPUs too, so `agree` never waits for the device
        dist.init_process_group("cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, device)


def shutdown(d: Dist) -> None:
    """Leave the process group (a no-op in a single process)."""
    if d.world > 1:
        dist.destroy_process_group()


def barrier(d: Dist) -> None:
    """Wait until every rank gets here (a no-op in a single process)."""
    if d.world > 1:
        dist.barrier()


def average_over_ranks(buffer: torch.Tensor, d: Dist) -> None:
    """Average a buffer over ranks in place (a no-op in a single process)."""
    if d.world > 1:
        dist.all_reduce(buffer)
        buffer /= d.world


def sum_over_ranks(t: torch.Tensor, d: Dist) -> torch.Tensor:
    """The sum of `t` over ranks, back on `t`'s device (gloo and NCCL both reduce on the rank's device)."""
    if d.world == 1:
        return t
    moved = t.to(d.device)
    dist.all_reduce(moved)
    return moved.to(t.device)


def agree(flag: bool, d: Dist) -> bool:
    """True on every rank when any rank has the flag: a signal may reach only some of them."""
    if d.world == 1:
        return flag
    t = torch.tensor([float(flag)])  # on the CPU: asked every step, it must not wait for the device's queue
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
