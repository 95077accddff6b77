"""The reals stream: a pure function of images seen, sliced by rank.

Global sample k (k = images seen so far) is image `perm(epoch)[pos]` with
(epoch, pos) = divmod(k, len), the permutation seeded by (seed, epoch). Each
step takes the next `minibatch` samples and rank r reads the strided share
[r::world]. So the union over ranks is exactly the single-process batch, a
resumed run continues the same stream from its checkpoint's image count, and
strided shares keep SG's strided minibatch-stddev groups intact (rank r's group
m is global group r + world*m).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from stylegan.data.dataset import ShardDataset, to_float
from stylegan.train import lineage
from stylegan.train.config import TrainSettings
from stylegan.train.state import TrainState


class RankBatches:
    """Batch sampler: this rank's indices of each global minibatch, from image `start` on, forever."""

    def __init__(self, size: int, minibatch: int, start: int, seed: int, rank: int, world: int) -> None:
        self.size, self.minibatch, self.start = size, minibatch, start
        self.seed, self.rank, self.world = seed, rank, world
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def index(self, k: int) -> int:
        """Dataset index of global sample k."""
        epoch, pos = divmod(k, self.size)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.size, generator=gen)
        return int(self._perm[pos])

    def __iter__(self) -> Iterator[list[int]]:
        k = self.start
        while True:
            yield [self.index(k + i) for i in range(self.rank, self.minibatch, self.world)]
            k += self.minibatch


def reals_loader(
    manifest: Path,
    resolution: int,
    minibatch: int,
    start: int,
    seed: int,
    rank: int,
    world: int,
    workers: int,
    pin_memory: bool,
) -> Iterator[torch.Tensor]:
    """An endless iterator of this rank's reals at `resolution`, uint8 CHW, starting at image `start`.

    Bytes, not floats: a quarter of the traffic between loader workers and to the
    GPU; the loop converts them on its device (`stylegan.data.dataset.to_float`).

    The loader gets its own generator: DataLoader otherwise draws its worker seed
    from the global RNG, which would shift G's noise between a run and its resume.
    """
    dataset = ShardDataset(manifest, resolution=resolution, split="train", dtype="uint8")
    sampler = RankBatches(len(dataset), minibatch, start, seed, rank, world)
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=False,
    )
    return iter(loader)


class Reals:
    """This rank's reals at the schedule's level: a new stream whenever the resolution or minibatch changes.

    Each new stream opens the manifest again, so it first checks that the data is
    still what the run trained on (`lineage.follow`, which updates `st.dataset`).
    """

    def __init__(self, manifest: Path, s: TrainSettings, st: TrainState) -> None:
        self.manifest, self.s, self.d, self.st = manifest, s, st.d, st
        self._level: tuple[int, int] | None = None
        self._batches: Iterator[torch.Tensor] | None = None

    def next(self, resolution: int, minibatch: int, nimg: int) -> torch.Tensor:
        """The next batch as floats on this rank's device; a new stream starts at image `nimg`."""
        if (resolution, minibatch) != self._level:
            self._batches = None  # the old loader's workers go before the new one's start
            s, d = self.s, self.d
            self.st.dataset = lineage.follow(self.st.dataset, self.manifest, nimg, s.continue_on_new_data)
            self._batches = reals_loader(
                self.manifest,
                resolution,
                minibatch,
                nimg,
                s.seed,
                d.rank,
                d.world,
                s.speed.workers,
                s.speed.pin_memory and d.device.type == "cuda",
            )
            self._level = (resolution, minibatch)
        return to_float(next(self._batches).to(self.d.device, non_blocking=True))
