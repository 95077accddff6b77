"""Checkpoints as plain dicts of tensors and primitives, written atomically, loaded safely.

No pickled classes: everything loads with `torch.load(weights_only=True)`, so a
checkpoint from anywhere cannot run code. Random states are stored as tensors
and lists so a resumed run continues the very same random streams.
"""

from __future__ import annotations

import logging
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stylegan import fileio
from stylegan.errors import StageError

log = logging.getLogger(__name__)

TRAINING_FORMAT = "stylegan-train-checkpoint/1"
GENERATOR_FORMAT = "stylegan-generator/1"
_NAME = re.compile(r"^ckpt-(\d{9})\.pt$")
_SNAPSHOT = re.compile(r"^generator-(\d{9})\.pt$")


def save(path: Path, state: dict[str, Any]) -> None:
    """Write `state` to `path` atomically (temp file + rename): a kill leaves the old file intact."""
    with fileio.atomic_path(path) as tmp:
        torch.save(state, tmp)


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint or generator file safely; a foreign or damaged file is a StageError."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as err:
        raise StageError(f"{path}: cannot load the checkpoint: {err}") from None
    if not isinstance(state, dict) or state.get("format") not in (TRAINING_FORMAT, GENERATOR_FORMAT):
        raise StageError(f"{path}: not a StyleGAN checkpoint of this project (no known 'format' key)")
    return state


def path_for(run_dir: Path, nimg: int) -> Path:
    """Checkpoints are named by images seen, so names sort in training order."""
    return run_dir / "checkpoints" / f"ckpt-{nimg:09d}.pt"


def all_checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    folder = run_dir / "checkpoints"
    return sorted(p for p in folder.glob("ckpt-*.pt") if _NAME.match(p.name)) if folder.is_dir() else []


def latest(run_dir: Path) -> Path | None:
    """The newest checkpoint of the run, or None for a fresh run."""
    found = all_checkpoints(run_dir)
    return found[-1] if found else None


def prune(run_dir: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints."""
    for old in all_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
        log.debug("removed old checkpoint %s", old)


def snapshot_path(run_dir: Path, nimg: int) -> Path:
    """A kept generator snapshot (G_ema only), named by images seen; never pruned (FID over training)."""
    return run_dir / "generators" / f"generator-{nimg:09d}.pt"


def all_snapshots(run_dir: Path) -> list[Path]:
    """The run's generator snapshots, oldest first."""
    folder = run_dir / "generators"
    return sorted(p for p in folder.glob("generator-*.pt") if _SNAPSHOT.match(p.name)) if folder.is_dir() else []


def rng_state() -> dict[str, Any]:
    """This process's random states (torch CPU, CUDA, numpy, python) as tensors and lists."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` saved (CUDA only where the same devices exist)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
