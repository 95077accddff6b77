"""README stays true: every config key, rule and CLI command it must document is there."""

import re
from pathlib import Path

import yaml

from stylegan.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _leaf_keys(node: dict, path: tuple[str, ...] = ()) -> list[str]:
    props = node.get("properties")
    if node.get("type") == "object" and props:
        return [k for name, sub in props.items() for k in _leaf_keys(sub, path + (name,))]
    return [".".join(path)]


def test_every_config_key_is_documented() -> None:
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    missing = [k for k in _leaf_keys(schema) if f"`{k}`" not in README]
    assert not missing, f"config keys missing from README: {missing}"


def test_the_config_table_shows_config_yaml_s_values() -> None:
    """README's config table is a copy of config.yaml's values: it must not drift from them.

    A cell is read as YAML; a long hash may be abbreviated as `start…end`.
    """
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    rows = re.findall(r"^\| `([a-z_0-9.]+)` \| `([^`]*)` \|", README, flags=re.M)
    checked, wrong = 0, []
    for key, cell in rows:
        value = config
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if key.count(".") == 0 or isinstance(value, dict) and not key.endswith("_dict"):
            continue  # a section or a rule's row, not a config value
        checked += 1
        start, dots, end = cell.partition("…")
        if dots and isinstance(value, str) and value.startswith(start) and value.endswith(end):
            continue
        if yaml.safe_load(cell) != value:
            wrong.append(f"{key}: README {cell}, config.yaml {value!r}")
    assert checked >= 150 and not wrong, wrong


def test_every_rule_is_documented() -> None:
    rules = [
        line.split()[1].rstrip(":")
        for smk in sorted((ROOT / "workflow/rules").glob("*.smk"))
        for line in smk.read_text().splitlines()
        if line.startswith(("rule ", "checkpoint "))
    ]
    assert len(rules) >= 10
    missing = [r for r in rules if f"`{r}`" not in README]
    assert not missing, f"rules missing from README: {missing}"


def test_every_command_is_documented() -> None:
    groups = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    missing = [name for name in groups if f"stylegan {name}" not in README]
    assert not missing, f"stylegan commands missing from README: {missing}"


def test_the_two_commands_are_the_ci_ones() -> None:
    assert "bash scripts/demo.sh" in README and "bash scripts/test.sh" in README
    assert "scripts/test.sh" in (ROOT / ".ci/run").read_text()
