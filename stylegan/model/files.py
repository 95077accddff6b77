"""The files a model lives in: plain dicts of tensors and primitives, written atomically, loaded safely.

No pickled classes: everything loads with `torch.load(weights_only=True)`, so a
file from anywhere cannot run code. Two formats share the loader: the generator
file (G_ema, its settings and the level it was trained to) and the training
checkpoint (both networks, optimizers, progress and random states), from which a
generator can be read too. Both record the dataset they trained on (`dataset`;
absent in older files, which still load). Kept snapshots of the generator are
named by images seen. A third, the discriminator file, holds a D alone (one imported
from NVIDIA's pickles).
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from stylegan import fileio, settings
from stylegan.errors import StageError
from stylegan.model.networks import Discriminator, Generator, NetworkSettings
from stylegan.model.schedule import ScheduleSettings, level_at
from stylegan.settings import as_dict

TRAINING_FORMAT = "stylegan-train-checkpoint/1"
GENERATOR_FORMAT = "stylegan-generator/1"
DISCRIMINATOR_FORMAT = "stylegan-discriminator/1"
_SNAPSHOT = re.compile(r"^generator-(\d{9})\.pt$")


def save(path: Path, state: dict[str, Any]) -> None:
    """Write `state` to `path` atomically (temp file + rename): a kill leaves the old file intact."""
    with fileio.atomic_path(path) as tmp:
        torch.save(state, tmp)


def load(
    path: Path, map_location: str | torch.device = "cpu", formats: tuple[str, ...] = (TRAINING_FORMAT, GENERATOR_FORMAT)
) -> dict[str, Any]:
    """Load a file of one of `formats` safely; a foreign or damaged file is a StageError."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as err:
        raise StageError(f"{path}: cannot load the checkpoint: {err}") from None
    if not isinstance(state, dict) or state.get("format") not in formats:
        raise StageError(f"{path}: not a StyleGAN checkpoint of this project (no known 'format' key)")
    return state


def state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's state on the CPU, so files load on any machine."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def generator_file(
    G_ema: Generator,
    network: NetworkSettings,
    nimg: int,
    resolution: int,
    alpha: float,
    dataset: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The trained model alone: G_ema's weights, its settings, the level it was trained to and the data.

    `dataset` is the run's record of what it trained on (`stylegan.train.lineage`):
    the manifest's fingerprint, the face count and each switch to other data.
    """
    return {
        "format": GENERATOR_FORMAT,
        "network": as_dict(network),
        "G_ema": state_dict(G_ema),
        "nimg": nimg,
        "resolution": resolution,
        "alpha": alpha,
        "dataset": dataset,
    }


def load_generator(path, device: str | torch.device = "cpu") -> tuple[Generator, dict[str, Any]]:
    """G_ema from a generator file or a training checkpoint, with the level it was trained to.

    `meta` holds `resolution` and `alpha` (the level the images come out at),
    `nimg` (images shown when it was saved) and `dataset` (what it trained on,
    None in files older than that record). A file that is neither, or whose
    weights do not fit its own settings, is a StageError naming the file.
    """
    state = load(path)
    try:
        if state["format"] == TRAINING_FORMAT:
            network = state["settings"]["network"]
            schedule = settings.load(ScheduleSettings, state["settings"]["schedule"], "train.schedule")
            level = level_at(schedule, network["resolution"], state["progress"]["nimg"] / 1000)
            meta = {"resolution": level.resolution, "alpha": level.alpha, "nimg": state["progress"]["nimg"]}
        else:
            network = state["network"]
            meta = {k: state[k] for k in ("resolution", "alpha", "nimg")}
        meta["dataset"] = state.get("dataset")
        G = Generator(settings.load(NetworkSettings, network, "network"))
        G.load_state_dict(state["G_ema"])
    except (KeyError, TypeError, RuntimeError) as err:
        raise StageError(f"{path}: not a generator this version can load ({type(err).__name__}: {err})") from None
    return G.to(device).eval().requires_grad_(False), meta


def discriminator_file(D: Discriminator, network: NetworkSettings, resolution: int, alpha: float) -> dict[str, Any]:
    """A discriminator alone, with its settings and the level it runs at."""
    return {
        "format": DISCRIMINATOR_FORMAT,
        "network": as_dict(network),
        "D": state_dict(D),
        "resolution": resolution,
        "alpha": alpha,
    }


def load_discriminator(path, device: str | torch.device = "cpu") -> tuple[Discriminator, dict[str, Any]]:
    """D from a discriminator file, with `meta` holding its `resolution` and `alpha`."""
    state = load(path, formats=(DISCRIMINATOR_FORMAT,))
    try:
        D = Discriminator(settings.load(NetworkSettings, state["network"], "network"))
        D.load_state_dict(state["D"])
        meta = {k: state[k] for k in ("resolution", "alpha")}
    except (KeyError, TypeError, RuntimeError) as err:
        raise StageError(f"{path}: not a discriminator this version can load ({type(err).__name__}: {err})") from None
    return D.to(device).eval().requires_grad_(False), meta


def snapshot_path(run_dir: Path, nimg: int) -> Path:
    """A kept generator snapshot (G_ema only), named by images seen; never pruned (FID over training)."""
    return run_dir / "generators" / f"generator-{nimg:09d}.pt"


def all_snapshots(run_dir: Path) -> list[Path]:
    """The run's generator snapshots, oldest first."""
    folder = run_dir / "generators"
    return sorted(p for p in folder.glob("generator-*.pt") if _SNAPSHOT.match(p.name)) if folder.is_dir() else []
