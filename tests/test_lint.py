"""The tree is lint-clean and formatted as pyproject.toml's [tool.ruff] says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RUFF = Path(sys.executable).with_name("ruff")


@pytest.mark.parametrize("command", [["check", "--no-cache"], ["format", "--check", "--no-cache"]])
def test_ruff_is_clean(command: list[str]) -> None:
    done = subprocess.run([str(RUFF), *command, "."], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_catches_an_unused_import(tmp_path: Path) -> None:
    """The configuration is the one in force: a file breaking it under the repository's settings fails."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n")
    done = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--config", str(REPO / "pyproject.toml"), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "F401" in done.stdout
