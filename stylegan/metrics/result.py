"""The result file every metric job writes: one JSON object, written atomically.

A metric either was computed (`status` "computed", `value` a number or a mapping of
named numbers, e.g. {"z": ..., "w": ...}) or was not (`status` "not computed", `value`
null, `reason` saying why and how to fix it). The report's metrics table reads
these files and nothing else, so a new metric appears there by writing one.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylegan import fileio
from stylegan.errors import StageError

COMPUTED = "computed"
NOT_COMPUTED = "not computed"
FORMAT = "stylegan-metric/1"


@dataclass(frozen=True)
class MetricResult:
    """One metric of one snapshot. `value` is null exactly when `status` is "not computed"."""

    metric: str  # e.g. "fid", "kid", "fid_mix2"
    status: str  # COMPUTED | NOT_COMPUTED
    value: float | dict[str, float] | None
    snapshot: str  # the generator file evaluated
    kimg: float | None  # its training progress (thousands of real images shown)
    num_reals: int | None = None  # real images used (reported when fewer were available than asked)
    num_fakes: int | None = None  # generated images or samples used
    detector: dict[str, str] | None = None  # {"path": ..., "sha256": ...} of the feature network
    settings: dict[str, Any] = field(default_factory=dict)  # what the value depends on
    seconds: float | None = None
    device: str | None = None
    reason: str | None = None  # why not computed, and how to supply what is missing
    provenance: dict[str, Any] | None = (
        None  # the generator's sha256 and dataset (stylegan.model.provenance.of_generator)
    )
    format: str = FORMAT

    def __post_init__(self) -> None:
        if self.status not in (COMPUTED, NOT_COMPUTED):
            raise ValueError(f"metric status {self.status!r}: expected {COMPUTED!r} or {NOT_COMPUTED!r}")
        if (self.value is None) != (self.status == NOT_COMPUTED):
            raise ValueError(f"metric {self.metric}: value must be null exactly when it is not computed")


def not_computed(metric: str, snapshot: Path, kimg: float | None, reason: str, **rest: Any) -> MetricResult:
    """A "not computed" record (value null, `reason` saying why): one constructor, so every metric says it alike."""
    return MetricResult(
        metric=metric, status=NOT_COMPUTED, value=None, snapshot=str(snapshot), kimg=kimg, reason=reason, **rest
    )


def device_name(device: Any) -> str:
    """A readable device label for the record: the GPU's name, or the CPU's."""
    import torch

    d = torch.device(device)
    if d.type == "cuda":
        return f"cuda:{d.index or 0} ({torch.cuda.get_device_name(d)})"
    return f"cpu ({platform.processor() or platform.machine()})"


def write(path: Path, result: MetricResult) -> None:
    """Write the record atomically: a killed job leaves no partial JSON behind.

    The generator's sha256 and dataset are added here, once for every metric, so a
    takedown can tell which results came from data it removed.
    """
    # Imported here: readers of results (the report) need no torch.
    from stylegan.model import provenance

    if result.provenance is None and Path(result.snapshot).is_file():
        result = dataclasses.replace(result, provenance=provenance.of_generator(Path(result.snapshot)))
    fileio.write_text(path, json.dumps(dataclasses.asdict(result), indent=2, sort_keys=True) + "\n")


def read(path: Path) -> MetricResult:
    """Read a record back; a file of another format is a StageError naming it."""
    try:
        data = json.loads(Path(path).read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT!r}")
        return MetricResult(**data)
    except (OSError, ValueError, TypeError) as err:
        raise StageError(f"{path}: not a metric result ({err})") from None
