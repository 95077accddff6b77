"""Typed settings: build a stage's dataclass from its config section, once.

The workflow validates `config.yaml` against `workflow/schemas/config.schema.yaml`
before any job runs; the library checks again when it is called directly, so a
bad value always fails early with the key's dotted name in the message.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class SettingsError(ValueError):
    """A config value is missing, unknown or of the wrong type; the key is named."""


def load(cls: type[T], source: str | Mapping[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from a mapping, a JSON string, or '@path' to a JSON/YAML file."""
    if isinstance(source, str):
        source = _parse(source)
    return _build(cls, source, where)


def _parse(text: str) -> Mapping[str, Any]:
    if text.startswith("@"):
        path = Path(text[1:])
        raw = path.read_text()
        if path.suffix in {".yaml", ".yml"}:
            import yaml

            return yaml.safe_load(raw) or {}
        return json.loads(raw)
    return json.loads(text)


def _build(cls: type[T], data: Mapping[str, Any], where: str) -> T:
    if not isinstance(data, Mapping):
        raise SettingsError(f"{where or 'settings'}: expected a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SettingsError(
            f"{_key(where, unknown[0])}: unknown key (allowed: {', '.join(sorted(fields))})"
        )
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        values[name] = _coerce(hints[name], value, _key(where, name))
    try:
        return cls(**values)
    except TypeError as err:  # a required key is missing
        raise SettingsError(f"{where or 'settings'}: {err}") from None


def _key(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _coerce(hint: Any, value: Any, key: str) -> Any:
    """Check `value` against type `hint`, converting JSON shapes (list→tuple, dict→dataclass)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _coerce(option, value, key)
            except SettingsError:
                continue
        raise SettingsError(f"{key}: {value!r} matches none of {hint}")
    if hint is type(None):
        if value is None:
            return None
        raise _bad(key, value, "null")
    if origin is typing.Literal:
        if value in args:
            return value
        raise _bad(key, value, "one of " + ", ".join(map(repr, args)))
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _bad(key, value, "a list")
        item = args[0] if args else Any
        return tuple(_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise _bad(key, value, "a mapping")
        ktype, vtype = args if args else (Any, Any)
        return {
            _coerce(ktype, _json_key(ktype, k), f"{key}.{k}"): _coerce(vtype, v, f"{key}.{k}") for k, v in value.items()
        }
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _bad(key, value, "true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _bad(key, value, "an integer")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _bad(key, value, "a number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise _bad(key, value, "a string")
    raise SettingsError(f"{key}: unsupported setting type {hint}")


def _json_key(ktype: Any, k: Any) -> Any:
    """An integer mapping key as JSON wrote it: JSON object keys are always strings.

    The workflow hands each rule its config section through `json.dumps`, which turns
    YAML's `{4: 128}` into `{"4": 128}`; only keys get this leniency, never values.
    """
    if ktype is int and isinstance(k, str) and k.lstrip("-").isdigit():
        return int(k)
    return k


def _bad(key: str, value: Any, allowed: str) -> SettingsError:
    return SettingsError(f"{key}: got {value!r}, expected {allowed}")


def as_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as plain JSON-ready data (tuples become lists), for checkpoints and manifests."""
    return json.loads(json.dumps(dataclasses.asdict(obj)))
