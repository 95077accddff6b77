"""Check the workflow config against its JSON schema, once, before any job runs.

Snakemake's own `validate` reports a raw jsonschema dump ("On instance['crawl']...");
users need one line per problem that names the dotted key, the value given and
what is allowed, so a typo is fixed in one edit. Defaults from the schema are
filled in first, so rules and the library always see every key.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from stylegan.errors import StageError

# What a failed keyword requires, phrased for a person; the value is the schema's.
_RULES = {
    "minimum": "a number >= {}",
    "maximum": "a number <= {}",
    "exclusiveMinimum": "a number > {}",
    "exclusiveMaximum": "a number < {}",
    "minItems": "a list of at least {} item(s)",
    "maxItems": "a list of at most {} item(s)",
    "minLength": "a text of at least {} character(s)",
    "pattern": "a text matching {!r}",
}
_TYPES = {"integer": "an integer", "number": "a number", "string": "a text", "boolean": "true or false",
          "array": "a list", "object": "a mapping", "null": "null"}


class ConfigError(StageError):
    """The config breaks the schema; the message lists every offending key."""


def load_schema(path: str | Path) -> dict[str, Any]:
    """Read the YAML (or JSON) schema file."""
    return yaml.safe_load(Path(path).read_text())


def apply(config: MutableMapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Fill the schema's defaults into `config` in place, then raise ConfigError if it is invalid."""
    fill_defaults(config, schema)
    problems = [describe(error) for error in _errors(config, schema)]
    if problems:
        raise ConfigError("invalid config (see config.yaml and workflow/schemas/config.schema.yaml):\n  "
                          + "\n  ".join(problems))


def fill_defaults(instance: MutableMapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Add each missing key that has a `default`, recursing into mappings that are present."""
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if isinstance(instance.get(key), MutableMapping):
            fill_defaults(instance[key], sub)


def _errors(config: Mapping[str, Any], schema: Mapping[str, Any]) -> Iterable[jsonschema.ValidationError]:
    """Every violation, sorted by key so related problems read together."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    return sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])


def describe(error: jsonschema.ValidationError) -> str:
    """One line: the dotted key, the value given, and what the schema allows there."""
    where = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties" and error.validator_value is False:
        return _unknown_keys(where, error.instance, error.schema)
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return "; ".join(f"config key {_join(where, k)} is missing" for k in missing)
    allowed = _allowed(error)
    text = f"config key {where or '(top level)'} = {json.dumps(error.instance)}: must be {allowed}"
    description = error.schema.get("description")
    if description:
        text += f" ({' '.join(description.split())})"
    if error.validator == "type" and isinstance(error.instance, str):
        text += "; note: snakemake --config passes values nested in a mapping as text, use --configfile for them"
    return text


def _unknown_keys(where: str, instance: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    """Name each unknown key, the nearest known spelling, and the keys the section takes."""
    known = sorted(schema.get("properties", {}))
    lines = []
    for key in sorted(set(instance) - set(known)):
        guess = difflib.get_close_matches(str(key), known, n=1)
        hint = f" (did you mean {_join(where, guess[0])}?)" if guess else ""
        lines.append(f"config key {_join(where, key)} is not allowed{hint}; "
                     f"{where or 'the top level'} takes: {', '.join(known)}")
    return "; ".join(lines)


def _allowed(error: jsonschema.ValidationError) -> str:
    """The failed keyword as a requirement a person can read."""
    value = error.validator_value
    if error.validator == "enum":
        return "one of " + ", ".join(json.dumps(v) for v in value)
    if error.validator == "type":
        names = [value] if isinstance(value, str) else value
        return " or ".join(_TYPES.get(n, n) for n in names)
    if error.validator == "uniqueItems":
        return "a list without repeated items"
    if error.validator in _RULES:
        return _RULES[error.validator].format(value)
    return f"valid: {error.message}"


def _join(where: str, key: object) -> str:
    return f"{where}.{key}" if where else str(key)
