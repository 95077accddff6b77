"""One source per config key: the schema file and README's table are written from the settings.

Each key's default, description and bounds live in its settings dataclass; the
committed `workflow/schemas/config.schema.yaml` and README's config table are what
`stylegan config schema` and `stylegan config table` write from them, and the
workflow's check fills the same defaults the library uses.
"""

import copy
import dataclasses
import typing
from pathlib import Path

import jsonschema
import pytest
import yaml

from stylegan import configcheck, configdoc, settings
from stylegan.cli import main

ROOT = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((ROOT / "config.yaml").read_text())


def _leaf_fields(cls: type, where: str = ""):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{where}.{f.name}" if where else f.name
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _leaf_fields(hints[f.name], key)
        yield key, f


def test_the_committed_schema_is_the_written_one() -> None:
    committed = (ROOT / "workflow/schemas/config.schema.yaml").read_text()
    assert committed == configdoc.schema_text(), "stale schema: run `stylegan config schema`"


def test_the_readme_table_is_the_written_one() -> None:
    readme = (ROOT / "README.md").read_text()
    begin, end = readme.index(configdoc.TABLE_BEGIN), readme.index(configdoc.TABLE_END)
    committed = readme[begin + len(configdoc.TABLE_BEGIN) : end].strip()
    assert committed == configdoc.table_text(DEMO), "stale README config table: run `stylegan config table`"


def test_the_commands_write_both_files(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{configdoc.TABLE_BEGIN}\n| `stale.key` | `1` |\n{configdoc.TABLE_END}\nafter\n")
    assert main(["config", "schema", "--out", str(tmp_path / "s.yaml")]) == 0
    assert main(["config", "table", "--readme", str(readme), "--config", str(ROOT / "config.yaml")]) == 0
    assert (tmp_path / "s.yaml").read_text() == configdoc.schema_text()
    text = readme.read_text()
    assert "stale.key" not in text and text.endswith(f"{configdoc.TABLE_END}\nafter\n")
    assert "| `train.network.resolution` | `32` | `1024` | final resolution R" in text


@pytest.mark.parametrize("key, field", list(_leaf_fields(configcheck.WorkflowConfig)), ids=lambda v: str(v)[:60])
def test_every_key_says_what_it_means(key: str, field: dataclasses.Field) -> None:
    assert settings.field_doc(field), f"{key}: no description"


@pytest.mark.parametrize("files", [["config.yaml"], ["config.yaml", "configs/ffhq.yaml"]], ids=["demo", "ffhq"])
def test_the_written_schema_accepts_both_configs(files: list[str]) -> None:
    schema = yaml.safe_load(configdoc.schema_text())
    config = configcheck.load_files(*(ROOT / f for f in files))
    jsonschema.validators.validator_for(schema)(schema).validate(config)


def test_the_written_schema_states_the_bounds_the_check_applies() -> None:
    schema = yaml.safe_load(configdoc.schema_text())
    demo = schema["properties"]["demo"]["properties"]
    assert (demo["min_side"]["minimum"], demo["min_side"]["maximum"]) == (256, 4096)
    network = schema["properties"]["train"]["properties"]["network"]["properties"]
    assert network["resolution"]["enum"] == [8, 16, 32, 64, 128, 256, 512, 1024]
    config = copy.deepcopy(DEMO)
    config["demo"]["min_side"] = 255
    with pytest.raises(configcheck.ConfigError, match=r"demo\.min_side = 255: must be a number >= 256"):
        configcheck.apply(config)


def test_filled_defaults_are_the_dataclass_defaults() -> None:
    """A section the config leaves out gets the section default the library would use, key by key."""
    config = copy.deepcopy(DEMO)
    del config["metrics"]
    del config["train"]["resources"]["mem_mb"]
    typed = configcheck.apply(config)
    assert config["metrics"] == configcheck.plain(typed.metrics) == configcheck.plain(type(typed.metrics)())
    assert config["metrics"]["resources"]["mem_mb"] == 16000 and config["train"]["resources"]["mem_mb"] == 8000
    assert config["metrics"]["mixing"]["latents"] == [2, 3, 4]  # lists, as YAML holds them
