"""A training run's checkpoints: what they hold, where they go, which is newest, pruning, and the random states.

The file format and its safe loader are `stylegan.model.files`. Random states are
stored as tensors and lists so a resumed run continues the very same random streams.
"""

from __future__ import annotations

import logging
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from stylegan.data.manifest import Manifest
from stylegan.distributed import Dist, barrier
from stylegan.errors import StageError
from stylegan.model import files
from stylegan.model.files import state_dict
from stylegan.settings import as_dict
from stylegan.train.config import TrainSettings
from stylegan.train.state import Progress, TrainState
from stylegan.train.ticks import LOG_FILE

log = logging.getLogger(__name__)

_NAME = re.compile(r"^ckpt-(\d{9})\.pt$")


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


def start_over_on_new_data(run_dir: Path, manifest: Path, d: Dist) -> None:
    """Retraining after a takedown (`train.retrain_on_takedown`): a run whose newest checkpoint trained on
    another dataset (or does not say which) starts from scratch. Its checkpoints, generator snapshots, grids
    and log are removed: every one of them may have learnt from faces the new data no longer holds."""
    newest = latest(run_dir)
    record = files.load(newest).get("dataset") if newest is not None else None
    if newest is None or (record or {}).get("fingerprint") == Manifest.read(manifest).fingerprint:
        return
    barrier(d)  # every rank has read the checkpoint before rank 0 removes it
    if d.main:
        log.warning(
            "%s trained on dataset %s, the manifest now describes another: starting over",
            run_dir,
            (record or {}).get("fingerprint", "unknown"),
        )
        for folder in ("checkpoints", "generators", "snapshots"):
            shutil.rmtree(run_dir / folder, ignore_errors=True)
        (run_dir / LOG_FILE).unlink(missing_ok=True)
    barrier(d)


def prune(run_dir: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints."""
    for old in all_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
        log.debug("removed old checkpoint %s", old)


def rng_state() -> dict[str, Any]:
    """This process's random states (torch CPU, CUDA, numpy, python) as tensors and lists."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
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


def save(run_dir: Path, s: TrainSettings, st: TrainState) -> None:
    """Everything a resume needs (networks, optimizers, counters, every rank's RNG), written by rank 0."""
    d, p = st.d, st.progress
    rngs = [rng_state()]
    if d.world > 1:
        rngs = [None] * d.world
        dist.all_gather_object(rngs, rng_state())
    if not d.main:
        return
    state = {
        "format": files.TRAINING_FORMAT,
        "settings": as_dict(s),
        "world_size": d.world,
        "G": state_dict(st.G),
        "D": state_dict(st.D),
        "G_ema": state_dict(st.G_ema),
        "opt_G": st.opt_G.state_dict(),
        "opt_D": st.opt_D.state_dict(),
        "progress": {
            "nimg": p.nimg,
            "step": p.step,
            "sched_nimg": p.sched_nimg,
            "tick": p.tick,
            "tick_start_nimg": p.tick_start_nimg,
            "skipped": p.skipped,
        },
        "rng": {"ranks": rngs, "z_stream": st.z_stream.get_state()},
        "dataset": st.dataset,
    }
    path = path_for(run_dir, p.nimg)
    files.save(path, state)
    prune(run_dir, s.checkpoint.keep)
    log.info("checkpoint %s", path)


def restore(path: Path, st: TrainState) -> None:
    """Load a checkpoint into a fresh state; the random streams continue where they stopped."""
    d = st.d
    state = files.load(path)
    if state["format"] != files.TRAINING_FORMAT:
        raise StageError(f"{path}: a generator file, not a training checkpoint")
    try:
        for module, key in ((st.G, "G"), (st.D, "D"), (st.G_ema, "G_ema")):
            module.load_state_dict(state[key])
    except RuntimeError as err:
        raise StageError(f"{path}: the checkpoint does not fit train.network (a different model?): {err}") from None
    st.opt_G.load_state_dict(state["opt_G"])
    st.opt_D.load_state_dict(state["opt_D"])
    st.z_stream.set_state(state["rng"]["z_stream"])
    ranks = state["rng"]["ranks"]
    if len(ranks) == d.world:
        set_rng_state(ranks[d.rank])
    else:
        log.warning("checkpoint from %d process(es), now %d: per-rank noise streams are reseeded", len(ranks), d.world)
        torch.manual_seed(state["progress"]["nimg"] * 7919 + d.rank)
    st.progress = Progress(**state["progress"])
    st.dataset = state.get("dataset")  # None in checkpoints older than the record
    log.info("resumed from %s", path)
