"""The training log: a progress bar, and at each tick's end one record of the tick's means.

A tick is SG's unit of reporting (NVlabs/stylegan `training/training_loop.py`,
tick_kimg per level): its record goes to the run's `log.jsonl` and the console,
from rank 0 only; a resumed run appends to the same file.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from stylegan import fileio
from stylegan.distributed import Dist, sum_over_ranks
from stylegan.model.schedule import Level
from stylegan.train.state import Progress

log = logging.getLogger(__name__)

LOSSES = ("loss_g", "loss_d", "r1", "real_score", "fake_score")  # averaged over each tick's steps and all ranks
SKIPPED, STEPS = len(LOSSES), len(LOSSES) + 1  # the sums' last two columns: updates skipped, steps

LOG_FILE = "log.jsonl"  # in the run directory: one record per tick, which `stylegan report curves` plots


class TickLog:
    """The bar, the tick's running sums and clock, and the run's log file; a context manager that closes them.

    The sums stay on the device until the tick ends: reading a loss every step
    would make each step wait for the device (at most one sync per tick).
    """

    def __init__(self, run_dir: Path, d: Dist, total_nimg: int, nimg: int) -> None:
        self.d = d
        self.journal = fileio.Journal(run_dir / LOG_FILE, key=lambda r: r["tick"]) if d.main else None
        self.bar = tqdm(
            total=total_nimg,
            initial=nimg,
            unit="img",
            unit_scale=True,
            dynamic_ncols=True,
            disable=not d.main,
            file=sys.stderr,
            desc="train",
            mininterval=0.1 if sys.stderr.isatty() else 30,
        )  # a log file gets a line per 30 s, not per step
        self.started, self.sums = time.time(), torch.zeros(STEPS + 1, dtype=torch.float64, device=d.device)

    def __enter__(self) -> TickLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
        if self.journal is not None:
            self.journal.close()

    def add(self, losses: dict[str, torch.Tensor], skipped: torch.Tensor, images: int) -> None:
        """One step's losses and skipped updates into the tick's sums, on the device; the bar moves on."""
        step = [losses[k].detach().reshape(1) for k in LOSSES] + [skipped.reshape(1), self.sums.new_ones(1)]
        self.sums += torch.cat(step).to(torch.float64)
        self.bar.update(images)

    def settle(self, p: Progress) -> None:
        """Move the skipped updates counted so far into the progress a checkpoint saves (one sync)."""
        skipped = round(self.sums[SKIPPED].item())
        if skipped:
            log.warning("%d update(s) skipped for non-finite gradients since the last count", skipped)
        p.skipped += skipped
        self.sums[SKIPPED] = 0.0

    def end(self, p: Progress, level: Level) -> None:
        """Close the tick: count it, write its record, and start the next one's sums and clock."""
        self.settle(p)
        p.tick += 1
        record = tick_record(p, level, self.sums, time.time() - self.started, self.d)
        self.started, self.sums, p.tick_start_nimg = time.time(), torch.zeros_like(self.sums), p.nimg
        if self.journal is not None:
            self.journal.record(record)
            self.bar.write(console_line(record), file=sys.stderr)


def tick_record(p: Progress, level: Level, sums: torch.Tensor, seconds: float, d: Dist) -> dict[str, Any]:
    """The tick's log record; losses are means over the tick's steps and all ranks."""
    sums = sum_over_ranks(sums, d).tolist()
    n = max(sums[STEPS], 1.0)
    tick_kimg = (p.nimg - p.tick_start_nimg) / 1000
    if d.device.type == "cuda":
        memory = torch.cuda.max_memory_allocated(d.device) / 2**20
    else:
        memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {
        "tick": p.tick,
        "kimg": p.nimg / 1000,
        "step": p.step,
        "resolution": level.resolution,
        "lod": level.lod,
        "alpha": level.alpha,
        "minibatch": level.minibatch,
        "lrate": level.lrate,
        **{key: sums[i] / n for i, key in enumerate(LOSSES)},
        "skipped": p.skipped,
        "sec_per_tick": seconds,
        "sec_per_kimg": seconds / max(tick_kimg, 1e-9),
        "memory_mb": memory,
        "time": time.time(),
    }


def console_line(r: dict[str, Any]) -> str:
    """The record as one line under the bar."""
    return (
        f"tick {r['tick']:<4d} kimg {r['kimg']:<8.1f} res {r['resolution']:<4d} alpha {r['alpha']:.3f} "
        f"mb {r['minibatch']:<4d} lr {r['lrate']:.4g} G {r['loss_g']:.3f} D {r['loss_d']:.3f} "
        f"R1 {r['r1']:.3g} sec/kimg {r['sec_per_kimg']:.2f} mem {r['memory_mb']:.0f} MB"
    )
