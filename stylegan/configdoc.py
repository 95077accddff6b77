"""The config's JSON schema file and README's config table, written from the settings dataclasses.

Both used to be hand-kept copies of the dataclasses; now `stylegan config schema` and
`stylegan config table` write them, and a test fails when the committed copies are
stale. The schema is for readers and editors (Snakemake users, YAML language servers);
stylegan/configcheck.py, not the schema, decides what is valid.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from stylegan import settings
from stylegan.configcheck import WorkflowConfig, plain

SCHEMA_HEADER = (
    "# Written by `stylegan config schema` from the settings dataclasses (stylegan/**/config.py and\n"
    "# the other *Settings classes); edit those, then rerun it. stylegan/configcheck.py validates.\n"
)
TABLE_BEGIN = "<!-- config table: written by `stylegan config table` from the settings dataclasses -->"
TABLE_END = "<!-- end of config table -->"
LONG_TEXT = 40  # longer strings (a sha256) are shown as their first and last 8 characters


def schema_text() -> str:
    """The JSON schema of the whole config, as the YAML file `workflow/schemas/config.schema.yaml` holds it."""
    tree = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "description": " ".join(WorkflowConfig.__doc__.split()),
        **_section(WorkflowConfig, None),
    }
    return SCHEMA_HEADER + yaml.dump(tree, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


class _Dumper(yaml.SafeDumper):
    """Block mappings, one key a line; lists on one line, as a person writes `enum: [hog, cnn]`."""


_Dumper.add_representer(
    list, lambda dumper, items: dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=True)
)


def _section(cls: type, base: Any) -> dict[str, Any]:
    """A closed object of the class's fields; `base` (the parent's default instance) gives the defaults."""
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    node: dict[str, Any] = {"type": "object", "additionalProperties": False}
    required = [f.name for f in fields if base is None and settings.field_default(f) is dataclasses.MISSING]
    if required:
        node["required"] = required
    node["properties"] = {f.name: _property(f, hints[f.name], base) for f in fields}
    return node


def _property(field: dataclasses.Field, hint: Any, base: Any) -> dict[str, Any]:
    value = getattr(base, field.name) if base is not None else settings.field_default(field)
    if dataclasses.is_dataclass(hint):
        node = _section(hint, None if value is dataclasses.MISSING else value)
        if value is not dataclasses.MISSING:
            node["default"] = {}
    else:
        node = _type(hint)
        _add_bounds(node, settings.field_bounds(field), hint)
        if value is not dataclasses.MISSING:
            node["default"] = plain(value)
    return {"description": settings.field_doc(field), **node} if settings.field_doc(field) else node


_JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean", type(None): "null"}


def _type(hint: Any) -> dict[str, Any]:
    """The JSON-schema type of a settings type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [_type(a) for a in args]
        if all(set(o) == {"enum"} for o in options):
            return {"enum": [v for o in options for v in o["enum"]]}
        merged: dict[str, Any] = {"type": []}
        for option in options:
            merged["type"].append(option.pop("type"))
            merged.update(option)
        return merged
    if origin is Literal:
        return {"enum": list(args)}
    if origin is tuple or origin is list:
        return {"type": "array", "items": _type(args[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type(args[1])}
    return {"type": _JSON_TYPES[hint]}


def _add_bounds(node: dict[str, Any], b: settings.Bounds, hint: Any) -> None:
    """The field's bounds as JSON-schema keywords: on items or mapping values where the value holds several."""
    target = node.get("items") or node.get("additionalProperties") or node
    nullable = type(None) in typing.get_args(hint)
    if b.choices is not None:
        target.pop("type", None)
        target["enum"] = list(b.choices) + ([None] if nullable and target is node else [])
    if b.pow2 and b.ge is not None and b.le is not None:
        target["enum"] = [2**k for k in range(math.ceil(math.log2(b.ge)), int(math.log2(b.le)) + 1)]
    else:
        for keyword, limit in (
            ("minimum", b.ge),
            ("exclusiveMinimum", b.gt),
            ("maximum", b.le),
            ("exclusiveMaximum", b.lt),
        ):
            if limit is not None:
                target[keyword] = limit
    if b.pattern:
        target["pattern"] = b.pattern
    if b.length:
        node["minItems"] = b.length[0]
        if b.length[1] is not None:
            node["maxItems"] = b.length[1]
    if b.unique:
        node["uniqueItems"] = True


def table_text(values: dict[str, Any]) -> str:
    """README's config table: every key, its value in `values` (config.yaml's), its default and its meaning."""
    rows = ["| key | demo value | default | meaning |", "|---|---|---|---|"]
    for key, field, value, default in _leaves(WorkflowConfig, values, None, ""):
        rows.append(
            f"| `{key}` | `{_cell(value)}` | {_default_cell(default)} | "
            f"{settings.field_doc(field).replace('|', chr(92) + '|')} |"
        )
    return "\n".join(rows)


def _leaves(cls: type, values: dict[str, Any], base: Any, where: str):
    """(dotted key, field, config value, default) of every key that is not a section, in the classes' order."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        key = f"{where}.{field.name}" if where else field.name
        default = getattr(base, field.name) if base is not None else settings.field_default(field)
        if dataclasses.is_dataclass(hints[field.name]):
            section = None if default is dataclasses.MISSING else default
            yield from _leaves(hints[field.name], values.get(field.name, {}), section, key)
        else:
            yield key, field, values.get(field.name, default), default


def _cell(value: Any) -> str:
    """A value as YAML reads it back: JSON scalars, flow lists and mappings, `1.0e-8` for small floats."""
    value = plain(value)
    if isinstance(value, list):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_cell(k)}: {_cell(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float) and "e" in repr(value) and "." not in repr(value).split("e")[0]:
        mantissa, exponent = repr(value).split("e")
        return f"{mantissa}.0e{exponent}"  # YAML 1.1 (PyYAML) reads 1e-08 as text
    if isinstance(value, str) and len(value) > LONG_TEXT:
        return f"{value[:8]}…{value[-8:]}"
    return json.dumps(value, ensure_ascii=False)


def _default_cell(default: Any) -> str:
    return "(required)" if default is dataclasses.MISSING else f"`{_cell(default)}`"


def write_schema(path: Path) -> None:
    """Write the schema file."""
    path.write_text(schema_text())


def write_table(readme: Path, config: Path) -> None:
    """Replace the table between README's markers with one made from the dataclasses and `config`'s values."""
    text = readme.read_text()
    begin, end = text.index(TABLE_BEGIN) + len(TABLE_BEGIN), text.index(TABLE_END)
    values = yaml.safe_load(config.read_text())
    readme.write_text(text[:begin] + "\n" + table_text(values) + "\n" + text[end:])
