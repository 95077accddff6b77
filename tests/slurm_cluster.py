"""What the SLURM tests share: the local cluster's nodes, and skipping (or failing in CI) without one.

`scripts/slurm.sh start` (run by `scripts/test.sh` as root on Debian) starts the cluster.
Where it is missing the tests skip and say why, unless STYLEGAN_REQUIRE_SLURM=1 (set by
.ci/run): there that is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import NoReturn

import pytest

USABLE = ("idle", "mixed")


def unavailable(why: str) -> NoReturn:
    """Skip with the reason, or fail where CI requires the cluster."""
    if os.environ.get("STYLEGAN_REQUIRE_SLURM") == "1":
        pytest.fail(f"STYLEGAN_REQUIRE_SLURM=1 but {why}")
    pytest.skip(why)


def nodes(*sinfo_args: str, fields: str) -> list[list[str]]:
    """One row per node from `sinfo -N -o <fields>`, state first; fails over to unavailable()."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        unavailable("no SLURM client (sinfo/sbatch) on PATH: run `bash scripts/slurm.sh start` as root")
    done = subprocess.run(
        ["sinfo", "-h", "-N", *sinfo_args, "-o", f"%T {fields}"], capture_output=True, text=True, timeout=30
    )
    if done.returncode:
        unavailable(f"sinfo fails ({(done.stdout + done.stderr).strip()!r}); run `bash scripts/slurm.sh start`")
    return [line.split() for line in done.stdout.splitlines() if line.strip()]


def usable(state: str) -> bool:
    return state.rstrip("*") in USABLE
