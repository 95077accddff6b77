"""A PyTorch `Dataset` over the HDF5 shards a manifest lists (stylegan/data/manifest.py).

h5py file handles must never cross a fork: a handle opened in the parent and
used in DataLoader workers reads garbage or deadlocks. So `__init__` keeps no
handle (it opens each shard only to check it against the manifest, and closes
it); each process opens the shards it touches on first use and notices a fork by
its process id. The optional x-flip (the metrics' mirrored reals; training draws
its own flips) comes from a generator seeded by (seed, index), so it does not
depend on which worker reads an item and is reproducible.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from stylegan.data.manifest import Manifest, ShardEntry, level_name
from stylegan.data.shard_check import shard_problems
from stylegan.errors import StageError


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to float32 in [-1, 1]. Training reads uint8 and calls this on its device,
    so only bytes cross process and PCIe boundaries."""
    return images.to(torch.float32) / 127.5 - 1.0


class ShardDataset(Dataset):
    """Images of one split at one level, as CHW tensors: uint8, or float in [-1, 1]."""

    def __init__(
        self,
        manifest_path: str | os.PathLike[str],
        resolution: int | None = None,
        split: Literal["train", "validation"] = "train",
        dtype: Literal["float", "uint8"] = "float",
        xflip: bool = False,
        seed: int = 0,
    ) -> None:
        manifest = Path(manifest_path)
        document = Manifest.read(manifest)
        self.resolutions: tuple[int, ...] = tuple(sorted(document.levels))
        self.max_resolution: int = document.resolution
        self.resolution = self.max_resolution if resolution is None else int(resolution)
        if self.resolution not in self.resolutions:
            raise StageError(f"resolution {self.resolution}: not in the shards (levels {list(self.resolutions)})")
        if dtype not in ("float", "uint8"):
            raise StageError(f"dtype {dtype!r}: expected 'float' or 'uint8'")
        shards = document.split(split)
        if not shards:  # an empty loader would only fail later, somewhere less clear
            raise StageError(f"{manifest}: no {split} images (pack.val_fraction {document.settings['val_fraction']})")
        self.split, self.dtype, self.xflip, self.seed = split, dtype, xflip, seed
        self.paths = [str(document.path_of(e)) for e in shards]
        for entry, path in zip(shards, self.paths):
            check_shard(manifest, entry, Path(path), self.resolutions)
        self.offsets = np.cumsum([0] + [e.count for e in shards])  # global index -> shard by bisection
        self._files: dict[int, h5py.File] = {}
        self._levels: dict[int, h5py.Dataset] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """Global index -> (shard number, row in that shard)."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        shard = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return shard, index - int(self.offsets[shard])

    def __getitem__(self, index: int) -> torch.Tensor:
        shard, row = self.locate(index)
        image = self._level(shard)[row]  # CHW uint8
        if self.xflip and np.random.default_rng([self.seed, index]).random() < 0.5:
            image = image[:, :, ::-1]
        tensor = torch.from_numpy(np.ascontiguousarray(image))
        if self.dtype == "uint8":
            return tensor
        return to_float(tensor)

    def metadata(self, index: int) -> dict[str, str]:
        """The attribution strings stored with one image (face id, licence, author, URLs)."""
        shard, row = self.locate(index)
        h5 = self._file(shard)
        return {name: h5[name].asstr()[row] for name in h5 if not name.startswith("data")}

    def _file(self, shard: int) -> h5py.File:
        """This process's handle on a shard, opened on first use."""
        if os.getpid() != self._pid:  # forked: the parent's handles are not ours to use
            self._files, self._levels, self._pid = {}, {}, os.getpid()
        if shard not in self._files:
            self._files[shard] = h5py.File(self.paths[shard], "r")
        return self._files[shard]

    def _level(self, shard: int) -> h5py.Dataset:
        """The shard's dataset at this resolution; looked up once, as a name lookup costs more than a row read."""
        if os.getpid() != self._pid or shard not in self._levels:
            h5 = self._file(shard)
            self._levels[shard] = h5[level_name(self.resolution)]
        return self._levels[shard]

    def __getstate__(self) -> dict[str, Any]:
        """Pickle (spawned workers) without open handles."""
        state = self.__dict__.copy()
        state["_files"], state["_levels"] = {}, {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()


def check_shard(manifest: Path, entry: ShardEntry, path: Path, levels: tuple[int, ...]) -> None:
    """Fail unless the shard on disk is the one the manifest lists, checked cheaply.

    `shard_problems` without reading pixels: a shard copied over another, cut
    short or from another pack is refused before it serves a wrong image. The
    full check (sha256, pixels, pyramid) is `stylegan dataset verify`.
    """
    problems = shard_problems(entry, path, levels)
    if problems:
        raise StageError(
            f"{path}: {problems[0]}, so it is not the shard {manifest} lists; "
            f"run `stylegan dataset verify --manifest {manifest}` or re-pack"
        )
