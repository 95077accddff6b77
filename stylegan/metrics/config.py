"""`MetricsSettings`: the `metrics` config section, typed and validated once.

The dataclass tree mirrors the YAML tree one to one, so a key's dotted name in an
error message is the key to fix in the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MetricResources:
    """What each metric and figure job asks SLURM for; read by the rules, not by the library."""

    gpu: int = 0
    cpus_per_gpu: int = 8
    mem_mb: int = 16000
    runtime: int | str = 60


@dataclass(frozen=True)
class MetricsSettings:
    """The `metrics` config section."""

    resources: MetricResources = field(default_factory=MetricResources)
