"""Run the real Snakemake workflow from a scratch copy of the repository.

Workflow tests must not write into the checkout (results/, logs/ and .snakemake/
belong to the user's own runs) and must run from a directory that holds `slurm/`,
because `--profile slurm` is looked up in the current directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# What a run makes or a developer keeps locally; never part of the workflow itself.
_LOCAL = (".git", ".venv", ".snakemake", ".pytest_cache", "__pycache__", "*.egg-info", "results", "resources", "logs")


def copy_workflow(dest: Path) -> Path:
    """Copy the repository's workflow and library (not its outputs) to `dest`."""
    shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(*_LOCAL))
    return dest


def snakemake(workdir: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    """Run this environment's snakemake in `workdir`, with its bin/ first on PATH (rules call python)."""
    full_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    return subprocess.run([str(BIN / "snakemake"), *args], cwd=workdir, env=full_env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
