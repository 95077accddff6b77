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


def _env(env: dict[str, str] | None) -> dict[str, str]:
    """The caller's environment with this venv's bin/ first on PATH (rules call python and torchrun)."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}


def snakemake(
    workdir: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run this environment's snakemake in `workdir` to the end."""
    return subprocess.run(
        [str(BIN / "snakemake"), *args],
        cwd=workdir,
        env=_env(env),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
    )


def start_snakemake(
    workdir: Path, *args: str, output: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start the same command in the background, for a test that acts while it runs; its output goes
    to the file `output` (a pipe nobody reads while the test waits would fill up and stall it)."""
    with output.open("wb") as sink:
        return subprocess.Popen(
            [str(BIN / "snakemake"), *args], cwd=workdir, env=_env(env), stdout=sink, stderr=subprocess.STDOUT
        )
