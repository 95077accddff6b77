"""Running float64 statistics of detector features, their file, and the merge of a metric's shards.

Every FID-like metric follows one path: images as uint8 -> the detector's
features -> running float64 sums. Merging the sums of the shards of a sample
range gives the unsplit statistics to float64 rounding.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stylegan import fileio
from stylegan.errors import StageError
from stylegan.metrics.inception import FEATURES
from stylegan.metrics.shards import check_tiling

STATS_FORMAT = "stylegan-feature-stats/1"


@dataclasses.dataclass
class FeatureStats:
    """Float64 sums of features and of their outer products, plus up to `keep` features for KID.

    Memory is FEATURES² doubles plus the kept features, whatever the sample count;
    the kept ones are those of the lowest sample indices, so shards merge exactly.
    Kept batches are joined once, when first read, not copied at every batch.
    """

    keep: int
    count: int = 0
    total: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(FEATURES))
    outer: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((FEATURES, FEATURES)))
    chunks: list[np.ndarray] = dataclasses.field(default_factory=list)

    @property
    def kept(self) -> np.ndarray:
        """The kept features [min(count, keep), FEATURES] float32, in sample order."""
        if len(self.chunks) != 1:
            self.chunks = [np.concatenate(self.chunks) if self.chunks else np.zeros((0, FEATURES), np.float32)]
        return self.chunks[0]

    def _room(self) -> int:
        return self.keep - sum(len(c) for c in self.chunks)

    def add(self, features: torch.Tensor) -> None:
        """Accumulate one batch (in sample order) in float64, on the batch's device."""
        f = features.to(torch.float64)
        self.total += f.sum(0).cpu().numpy()
        self.outer += (f.T @ f).cpu().numpy()
        if self._room() > 0:
            self.chunks.append(features[: self._room()].float().cpu().numpy())
        self.count += len(features)

    def mean(self) -> np.ndarray:
        return self.total / self.count

    def cov(self) -> np.ndarray:
        """Unbiased covariance (divides by N-1), as SG1's np.cov(rowvar=False)
        (NVlabs/stylegan `metrics/frechet_inception_distance.py`)."""
        if self.count < 2:
            raise StageError(f"a covariance needs at least 2 samples, got {self.count}")
        mu = self.mean()
        return (self.outer - self.count * np.outer(mu, mu)) / (self.count - 1)

    @staticmethod
    def merge(parts: list[FeatureStats]) -> FeatureStats:
        """The statistics of the parts' samples together; parts in sample order."""
        out = FeatureStats(keep=parts[0].keep)
        for p in parts:
            out.count += p.count
            out.total += p.total
            out.outer += p.outer
            if out._room() > 0:
                out.chunks.append(p.kept[: out._room()])
        return out

    def save(self, path: Path, meta: dict[str, Any]) -> None:
        """Write the sums and `meta` (what they were computed from) atomically as .npz."""
        with fileio.atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(
                handle,
                count=self.count,
                keep=self.keep,
                total=self.total,
                outer=self.outer,
                kept=self.kept,
                meta=json.dumps({"format": STATS_FORMAT, **meta}, sort_keys=True),
            )

    @staticmethod
    def load(path: Path) -> tuple[FeatureStats, dict[str, Any]]:
        """Read what `save` wrote; anything else is a StageError naming the file."""
        try:
            with np.load(path) as z:
                meta = json.loads(str(z["meta"]))
                if meta.get("format") != STATS_FORMAT:
                    raise ValueError(f"format {meta.get('format')!r}")
                stats = FeatureStats(
                    keep=int(z["keep"]), count=int(z["count"]), total=z["total"], outer=z["outer"], chunks=[z["kept"]]
                )
        except (OSError, ValueError, KeyError) as err:
            raise StageError(
                f"{path}: not feature statistics of this version ({err}); delete it to recompute"
            ) from None
        return stats, meta


def merge_partials(paths: list[Path]) -> tuple[FeatureStats, dict[str, Any]]:
    """Merge the feature statistics of a metric's shards (see `check_tiling`)."""
    loaded = [(FeatureStats.load(p), p) for p in paths]
    meta = check_tiling([(m, p) for (_, m), p in loaded])
    ordered = sorted(loaded, key=lambda t: t[0][1]["range"][0])
    return FeatureStats.merge([stats for (stats, _), _ in ordered]), meta
