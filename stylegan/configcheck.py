"""Check the whole workflow config through the settings dataclasses, once, before any job runs.

The dataclasses are the one statement of every key (stylegan/settings.py `setting`);
this module roots them in `WorkflowConfig`, loads the config through the same loader
the library uses, and reports every problem as one line that names the dotted key,
the value given and what is allowed, so a typo is fixed in one edit. Defaults are
filled into the config, so rules and the library always see every key.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stylegan import settings
from stylegan.data.align import AlignSettings
from stylegan.data.crawl.config import CrawlSettings
from stylegan.data.demo import DemoSettings
from stylegan.data.filter import FilterSettings
from stylegan.data.pack import PackSettings
from stylegan.errors import StageError
from stylegan.metrics.config import MetricsSettings
from stylegan.settings import Problem, SettingsError, setting
from stylegan.train.config import TrainSettings


@dataclass(frozen=True)
class PathSettings:
    """The `paths` config section: where the workflow reads and writes."""

    results: str = setting("results", "where computed results go")
    resources: str = setting("resources", "downloaded and generated inputs")
    logs: str = setting("logs", "one log file per rule and wildcard")


@dataclass(frozen=True)
class EvaluateSettings:
    """The `evaluate` section: score a network made elsewhere instead of training one."""

    generator: str | None = setting(
        None,
        "a generator to evaluate instead of training: NVIDIA's StyleGAN (v1) "
        "pickle (.pkl, imported by the import_generator rule) or our generator "
        "file (.pt); null: train one",
        pattern=r"\.(pkl|pt)$",
    )


@dataclass(frozen=True)
class WorkflowConfig:
    """The workflow's config. Every section is closed, so a misspelt key fails before any job runs, with the key
    named."""

    paths: PathSettings = setting(doc="where the workflow reads and writes")
    seed: int = setting(doc="base seed for every random choice in the workflow", ge=0)
    demo: DemoSettings = setting(doc="the embedded demo's synthetic photos")
    crawl: CrawlSettings = setting(doc="where photos come from and how they are fetched")
    align: AlignSettings = setting(doc="face detection, landmarks and FFHQ's alignment")
    filter: FilterSettings = setting(doc="the quality filters and the exclusion and opt-out lists")
    pack: PackSettings = setting(doc="the multi-resolution HDF5 shards")
    train: TrainSettings = setting(doc="StyleGAN and its training")
    evaluate: EvaluateSettings = setting(
        factory=EvaluateSettings,
        doc="a network made elsewhere, evaluated instead of training one (metrics, figures and report)",
    )
    metrics: MetricsSettings = setting(
        factory=MetricsSettings, doc="evaluation of the trained generator (stylegan/metrics)"
    )


class ConfigError(StageError):
    """The config breaks the settings' rules; the message lists every offending key."""


def apply(config: MutableMapping[str, Any]) -> WorkflowConfig:
    """Fill every missing key's default into `config` in place and return it typed; ConfigError if it is invalid."""
    try:
        typed = settings.load(WorkflowConfig, config)
    except SettingsError as err:
        raise ConfigError(
            "invalid config (see config.yaml and README's config table):\n  "
            + "\n  ".join(describe(p) for p in err.problems)
        ) from None
    _fill(config, typed)
    return typed


def load_files(*paths: str | Path) -> dict[str, Any]:
    """The config Snakemake runs with `configfile: config.yaml` and `--configfile` files, checked and filled.

    Each file is merged over the ones before it, mapping by mapping, as Snakemake's
    `snakemake.utils.update_config` does: a key a file lacks keeps its earlier value.
    """
    config: dict[str, Any] = {}
    for path in paths:
        _merge(config, yaml.safe_load(Path(path).read_text()) or {})
    apply(config)
    return config


def _merge(config: MutableMapping[str, Any], over: Mapping[str, Any]) -> None:
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(config.get(key), MutableMapping):
            _merge(config[key], value)
        else:
            config[key] = copy.deepcopy(value)


def _fill(config: MutableMapping[str, Any], typed: Any) -> None:
    """Add each key `config` lacks with its value in `typed`, recursing into sections that are present."""
    for field in dataclasses.fields(typed):
        value = getattr(typed, field.name)
        if field.name not in config:
            config[field.name] = plain(value)
        elif dataclasses.is_dataclass(value) and isinstance(config[field.name], MutableMapping):
            _fill(config[field.name], value)


def plain(value: Any) -> Any:
    """A settings value as YAML would hold it: mappings and lists, integer keys kept."""
    if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def describe(problem: Problem) -> str:
    """One line: the dotted key, the value given, and what is allowed there."""
    key = problem.key or "(top level)"
    if problem.kind == "unknown":
        section = problem.key.rpartition(".")[0]
        hint = f" (did you mean {problem.near}?)" if problem.near else ""
        return f"config key {key} is not allowed{hint}; {section or 'the top level'} takes: {problem.expected}"
    if problem.kind == "missing":
        return f"config key {key} is missing"
    if problem.kind == "check":
        return problem.expected
    text = f"config key {key} = {json.dumps(plain(problem.value))}: must be {problem.expected}"
    if problem.doc:
        text += f" ({problem.doc})"
    if problem.kind == "type" and isinstance(problem.value, str):
        text += "; note: snakemake --config passes values nested in a mapping as text, use --configfile for them"
    return text
