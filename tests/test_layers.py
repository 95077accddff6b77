"""The package's layers hold: `lint-imports` passes on the tree and fails on a back-edge."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter on the `stylegan` package under `root`, with the contracts of its pyproject.toml."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_tree_keeps_its_layers() -> None:
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_a_model_module_importing_training_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(REPO / "stylegan", tmp_path / "stylegan", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    networks = tmp_path / "stylegan/model/networks.py"
    networks.write_text(networks.read_text() + "\nfrom stylegan.train import loop  # noqa: E402\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    assert "BROKEN" in done.stdout and "stylegan.model.networks -> stylegan.train.loop" in done.stdout
