"""One default per key: the settings dataclasses are the source, the schema must agree.

A config key's default lives in its stage's settings dataclass; the schema states
the same default (so the workflow and a call from Python behave alike) and
describes it. This test walks both trees and fails on any key that one side has
and the other lacks, and on any default that differs.
"""

import dataclasses
import typing
from pathlib import Path

import pytest
import yaml

from stylegan.data.align import AlignSettings
from stylegan.data.crawl.config import CrawlSettings
from stylegan.data.demo import DemoSettings
from stylegan.data.filter import FilterSettings
from stylegan.data.pack import PackSettings
from stylegan.metrics.config import MetricsSettings
from stylegan.train.config import TrainSettings

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
SECTIONS = {"demo": DemoSettings, "crawl": CrawlSettings, "align": AlignSettings, "filter": FilterSettings,
            "pack": PackSettings, "train": TrainSettings, "metrics": MetricsSettings}
MISSING = object()


def _plain(value):
    """Dataclass defaults in the schema's JSON terms: tuples as lists, dict keys as YAML reads them."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _pairs(cls, schema: dict, where: str):
    """(dotted key, dataclass default, schema default) for every leaf of a section."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    props = schema.get("properties", {})
    assert set(fields) == set(props), f"{where}: dataclass keys {sorted(fields)} vs schema keys {sorted(props)}"
    hints = typing.get_type_hints(cls)
    for name, f in fields.items():
        key = f"{where}.{name}"
        if dataclasses.is_dataclass(hints[name]):
            yield from _pairs(hints[name], props[name], key)
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = MISSING
        yield key, _plain(default), props[name].get("default", MISSING)


PAIRS = [pair for section, cls in SECTIONS.items() for pair in _pairs(cls, SCHEMA["properties"][section], section)]


def test_every_section_has_its_dataclass() -> None:
    assert set(SCHEMA["properties"]) - set(SECTIONS) == {"paths", "seed"}


@pytest.mark.parametrize(("key", "dataclass_default", "schema_default"), PAIRS, ids=[p[0] for p in PAIRS])
def test_schema_default_equals_the_dataclass_default(key, dataclass_default, schema_default) -> None:
    assert schema_default == dataclass_default, f"{key}: schema says {schema_default!r}, dataclass {dataclass_default!r}"
