"""Typed settings: build a stage's dataclass from its config section, once.

Each settings field states its key's default, description and bounds in one place
(`setting`); the loader here is the one validator. The workflow runs it over the
whole config before any job (stylegan/configcheck.py), and the library runs it again
when called directly, so a bad value always fails early with the key's dotted name.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import operator
import re
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from stylegan.errors import StageError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Bounds:
    """What a value may be beyond its type: numbers, choices, text and list shape.

    Number and choice bounds apply to the value, or to each item of a list or value
    of a mapping; `length` and `unique` to the list itself; null is always in bounds.
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[Any, ...] | None = None
    pow2: bool = False  # a power of two (a resolution)
    pattern: str | None = None
    length: tuple[int, int | None] | None = None  # (fewest, most) list items
    unique: bool = False


def setting(
    default: Any = dataclasses.MISSING, doc: str = "", *, factory: Callable[[], Any] | None = None, **bounds: Any
) -> Any:
    """A settings field: its default (or `factory`), what it means and its `Bounds`; no default: required."""
    metadata = {"doc": doc, "bounds": Bounds(**bounds)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def field_doc(field: dataclasses.Field) -> str:
    """A field's description."""
    return field.metadata.get("doc", "")


def field_bounds(field: dataclasses.Field) -> Bounds:
    """A field's bounds (none for a plain dataclass field)."""
    return field.metadata.get("bounds", Bounds())


def field_default(field: dataclasses.Field) -> Any:
    """A field's default value; MISSING when the key is required."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


@dataclasses.dataclass(frozen=True)
class Problem:
    """One bad key: what was given and what is allowed, so each front end can phrase it."""

    key: str  # dotted
    kind: Literal["type", "value", "unknown", "missing", "check"]
    value: Any = None
    expected: str = ""  # what is allowed; for "unknown" the section's keys; for "check" the whole message
    doc: str = ""  # the key's description
    near: str | None = None  # for "unknown": the nearest known key

    def __str__(self) -> str:
        if self.kind == "unknown":
            hint = f", did you mean {self.near}?" if self.near else ""
            return f"{self.key}: unknown key{hint} (allowed: {self.expected})"
        if self.kind == "missing":
            return f"{self.key}: missing (a required key)"
        if self.kind == "check":
            return self.expected
        return f"{self.key}: got {self.value!r}, expected {self.expected}"


class SettingsError(ValueError):
    """A config value is missing, unknown, of the wrong type or out of bounds; every bad key is named."""

    def __init__(self, problems: str | list[Problem]) -> None:
        self.problems = [Problem("", "check", expected=problems)] if isinstance(problems, str) else problems
        super().__init__("\n".join(map(str, self.problems)))


def load(cls: type[T], source: str | Mapping[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from a mapping, a JSON string, or '@path' to a JSON/YAML file."""
    if isinstance(source, str):
        source = _parse(source)
    return _build(cls, source, where, None)


def _parse(text: str) -> Mapping[str, Any]:
    if text.startswith("@"):
        path = Path(text[1:])
        raw = path.read_text()
        if path.suffix in {".yaml", ".yml"}:
            import yaml

            return yaml.safe_load(raw) or {}
        return json.loads(raw)
    return json.loads(text)


def _build(cls: type[T], data: Any, where: str, base: T | None) -> T:
    """The section's dataclass; keys it lacks come from `base` (the parent's default for it) or the class.

    Every problem of the section and the sections below is collected before one
    SettingsError, so a config with several typos is fixed in one edit.
    """
    if not isinstance(data, Mapping):
        raise SettingsError([Problem(where or "settings", "type", data, "a mapping")])
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    problems = [_unknown(_key(where, name), sorted(fields)) for name in sorted(set(data) - set(fields), key=str)]
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in fields.items():
        key = _key(where, name)
        if name not in data:
            if base is not None:
                values[name] = getattr(base, name)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.append(Problem(key, "missing", doc=field_doc(f)))
            continue
        try:
            values[name] = _field(f, hints[name], data[name], key)
        except SettingsError as err:
            problems += err.problems
    if problems:
        raise SettingsError(problems)
    try:
        return cls(**values)
    except (SettingsError, StageError) as err:  # a check across keys in __post_init__
        raise SettingsError([Problem(where, "check", expected=str(err))]) from None


def _field(f: dataclasses.Field, hint: Any, value: Any, key: str) -> Any:
    """One key's value, coerced to its type and checked against its bounds."""
    if dataclasses.is_dataclass(hint):
        section_default = field_default(f)
        return _build(hint, value, key, None if section_default is dataclasses.MISSING else section_default)
    try:
        value = _coerce(hint, value, key)
    except SettingsError as err:
        raise SettingsError([dataclasses.replace(p, doc=p.doc or field_doc(f)) for p in err.problems]) from None
    problems = _check(field_bounds(f), value, key, field_doc(f))
    if problems:
        raise SettingsError(problems)
    return value


def _unknown(key: str, known: list[str]) -> Problem:
    name = key.rpartition(".")[2]
    near = difflib.get_close_matches(name, known, n=1)
    return Problem(
        key, "unknown", expected=", ".join(known), near=_key(key.rpartition(".")[0], near[0]) if near else None
    )


def _key(where: str, name: str) -> str:
    return f"{where}.{name}" if where else str(name)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    """Check `value` against type `hint`, converting JSON shapes (list→tuple, string keys→int keys)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # X | None: the detailed message of X
            return _coerce(options[0], value, key)
        for option in options:
            try:
                return _coerce(option, value, key)
            except SettingsError:
                continue
        raise _bad(key, value, _allowed(hint))
    if origin is Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        raise SettingsError([Problem(key, "value", value, _allowed(hint))])
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
    if _is(hint, value):
        return float(value) if hint is float else value
    raise _bad(key, value, _allowed(hint))


def _is(hint: Any, value: Any) -> bool:
    """Whether a JSON scalar has type `hint`: bool is no integer, an integer is a number."""
    if isinstance(value, bool):
        return hint is bool
    if hint is float:
        return isinstance(value, (int, float))
    if hint in (int, str, bool):
        return isinstance(value, hint)
    if hint is type(None):
        return value is None
    raise TypeError(f"unsupported setting type {hint}")


def _allowed(hint: Any) -> str:
    """A type as the values it allows, for a person."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_allowed(a) for a in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in typing.get_args(hint))
    if origin in (list, tuple) or hint in (list, tuple):
        return "a list"
    if origin is dict or hint is dict or dataclasses.is_dataclass(hint):
        return "a mapping"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null"}
    return names.get(hint, str(hint))


def _json_key(ktype: Any, k: Any) -> Any:
    """An integer mapping key as JSON wrote it: JSON object keys are always strings.

    The workflow hands each rule its config section through `json.dumps`, which turns
    YAML's `{4: 128}` into `{"4": 128}`; only keys get this leniency, never values.
    """
    if ktype is int and isinstance(k, str) and k.lstrip("-").isdigit():
        return int(k)
    return k


def _bad(key: str, value: Any, allowed: str) -> SettingsError:
    return SettingsError([Problem(key, "type", value, allowed)])


def _check(b: Bounds, value: Any, key: str, text: str) -> list[Problem]:
    """Every way `value` (already of its type) breaks bounds `b`."""
    if isinstance(value, tuple):
        problems = [Problem(key, "value", list(value), need, text) for need in _list_rules(b, value)]
        return problems + [p for i, v in enumerate(value) for p in _check(b, v, f"{key}[{i}]", text)]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _check(b, v, f"{key}.{k}", text)]
    need = _scalar_rule(b, value)
    return [Problem(key, "value", value, need, text)] if need else []


def _list_rules(b: Bounds, items: tuple[Any, ...]) -> list[str]:
    fewest, most = b.length or (0, None)
    rules = []
    if len(items) < fewest:
        rules.append(f"a list of at least {fewest} item(s)")
    if most is not None and len(items) > most:
        rules.append(f"a list of at most {most} item(s)")
    if b.unique and len(set(items)) < len(items):
        rules.append("a list without repeated items")
    return rules


def _scalar_rule(b: Bounds, value: Any) -> str | None:
    """What `value` must be, when it is outside `b`; None when it is inside."""
    if value is None:
        return None
    if b.choices is not None and value not in b.choices:
        return "one of " + ", ".join(json.dumps(c) for c in b.choices)
    if isinstance(value, str):
        return f"a string matching {b.pattern!r}" if b.pattern and not re.search(b.pattern, value) else None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    if b.pow2 and not (_power_of_two(value) and (b.ge is None or value >= b.ge) and (b.le is None or value <= b.le)):
        span = " and ".join(f"{sign} {_number(v)}" for sign, v in ((">=", b.ge), ("<=", b.le)) if v is not None)
        return f"a power of two {span}".strip()
    checks = ((">=", b.ge, operator.ge), (">", b.gt, operator.gt), ("<=", b.le, operator.le), ("<", b.lt, operator.lt))
    for sign, limit, holds in checks:
        if limit is not None and not holds(value, limit):
            return f"a number {sign} {_number(limit)}"
    return None


def _power_of_two(value: float) -> bool:
    return value >= 1 and int(value) == value and int(value) & (int(value) - 1) == 0


def _number(value: float) -> str:
    """A bound as the config would write it: 1, not 1.0; 178956970, not 1.78957e+08."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def as_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as plain JSON-ready data (tuples become lists), for checkpoints and manifests."""
    return json.loads(json.dumps(dataclasses.asdict(obj)))
