"""Small real models the tests share: generator files, and training runs through the real CLI.

`tiny()` is a 16² model that trains 8² -> fade -> 16² in 0.2 kimg; `train()` runs it
as the train rule does (`python -m stylegan.cli train`, or under torchrun with
several gloo processes) and returns the exit status.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from stylegan import settings
from stylegan.model import files
from stylegan.model.files import generator_file
from stylegan.model.networks import Generator, NetworkSettings
from stylegan.train import checkpoint
from stylegan.train.preemption import EXIT_PREEMPTED

REPO = Path(__file__).resolve().parents[1]
NETWORK = {
    "resolution": 16,
    "fmap_base": 64,
    "fmap_max": 16,
    "latent_size": 16,
    "dlatent_size": 16,
    "mapping_layers": 2,
    "mapping_fmaps": 16,
}


def make_generator(
    path: Path,
    seed: int = 0,
    nimg: int = 1000,
    resolution: int = 16,
    level: int | None = None,
    noise_strength: float | None = None,
) -> Path:
    """An initialised generator file of the `NETWORK` model at `resolution`, as training writes them.

    `level`: the resolution it was saved at (a snapshot taken while growing); `noise_strength`
    sets every noise input's weight (None: as initialised, zero).
    """
    network = settings.load(NetworkSettings, {**NETWORK, "resolution": resolution})
    torch.manual_seed(seed)
    G = Generator(network)
    if noise_strength is not None:
        with torch.no_grad():
            for name, p in G.named_parameters():
                if name.endswith("noise.weight"):
                    p.fill_(noise_strength)
    files.save(path, generator_file(G, network, nimg, level or resolution, 1.0))
    return path


def tiny(**changes: dict) -> dict:
    """A 16² model trained 8² -> fade -> 16² in 0.2 kimg; `changes` update its sub-sections."""
    s = {
        "network": {**NETWORK, "mbstd_group_size": 4},
        "schedule": {
            "lod_initial_resolution": 8,
            "lod_training_kimg": 0.048,
            "lod_transition_kimg": 0.048,
            "total_kimg": 0.2,
            "minibatch_preset": None,
            "minibatch_base": 8,
            "minibatch_dict": {},
            "lrate_base": 0.002,
            "lrate_dict": {},
            "tick_kimg_base": 0.04,
            "tick_kimg_dict": {},
            "network_snapshot_ticks": 1,
        },
        "loss": {},
        "speed": {"workers": 0},
        "checkpoint": {"keep": 100, "grid": [2, 2]},
        "seed": 3,
    }
    for section, values in changes.items():
        s[section] = {**s[section], **values} if isinstance(values, dict) else values
    return s


def dense(**schedule: float) -> dict:
    """The tiny model without G's per-rank draws (noise, mixing), so 2 ranks can match 1 process exactly.

    Without noise the learned constant input is degenerate (a spatially constant map
    into instance norm: its bias has a zero gradient, which Adam with beta1 0 turns
    into +-lr steps on rounding noise), so this model uses the dense input of Table 1 C.
    12 steps (0.096 kimg): 8², the fade (two Adam resets), the start of 16².
    """
    return tiny(
        network={"use_noise": False, "const_input": False},
        loss={"mixing_prob": 0.0},
        schedule={"total_kimg": 0.096, **schedule},
    )


def command(s: dict, manifest: Path, run: Path, nproc: int = 1) -> list[str]:
    launcher = (
        [sys.executable, "-m", "stylegan.cli"]
        if nproc == 1
        else [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nnodes=1",
            f"--nproc-per-node={nproc}",
            "-m",
            "stylegan.cli",
        ]
    )  # what the train rule runs, as `torchrun ... -m stylegan.cli`
    return launcher + train_args(s, manifest, run, run / "generator.pt")


def train_args(s: dict, manifest: Path, run: Path, out: Path) -> list[str]:
    """The `train` command's arguments, for the launcher above or for `cli.main` in this process."""
    return ["train", "--settings", json.dumps(s), "--manifest", str(manifest), "--run-dir", str(run), "--out", str(out)]


def start(s: dict, manifest: Path, run: Path, nproc: int = 1) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        command(s, manifest, run, nproc), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def train(s: dict, manifest: Path, run: Path, nproc: int = 1, timeout: float = 180) -> int:
    proc = start(s, manifest, run, nproc)
    output, _ = proc.communicate(timeout=timeout)
    if proc.returncode not in (0, EXIT_PREEMPTED):
        print(output)
    return proc.returncode


def final_state(run: Path) -> dict:
    path = checkpoint.latest(run)
    assert path is not None
    state = torch.load(path, weights_only=True)  # safe loading is part of the contract
    return state


def assert_same_networks(a: dict, b: dict, atol: float) -> None:
    for net in ("G", "D", "G_ema"):
        assert a[net].keys() == b[net].keys()
        for key in a[net]:
            torch.testing.assert_close(a[net][key], b[net][key], rtol=0, atol=atol, msg=f"{net}.{key}")
