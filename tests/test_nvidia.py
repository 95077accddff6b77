"""NVIDIA's StyleGAN pickles: imported networks reproduce NVIDIA's own outputs, and nothing in a pickle runs.

The pickles and outputs in tests/data/nvidia were made by NVIDIA's TensorFlow code
(`scripts/nvidia_test_vectors.py`, see the folder's README): a 32² snapshot, a 128²
one (fused up/down convolutions at 128²), a 16² one with Table 1's traditional
generator, and a lone D_basic shaped as NVIDIA's attribute classifiers. TF's own rounding is
about 1e-5 of the output's range, so 1e-4 relative separates rounding from any mapping error (those measured below are
all above 1e-3).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import sys
import types
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan import cli
from stylegan.errors import StageError
from stylegan.metrics import classifier
from stylegan.model import files, nvidia

DATA = Path(__file__).parent / "data" / "nvidia"
SNAPSHOTS = ("stylegan-32", "stylegan-128", "stylegan-16-traditional")
TOLERANCE = 1e-4


@cache
def records(name: str) -> dict[str, np.ndarray]:
    """NVIDIA's recorded inputs and outputs."""
    return dict(np.load(DATA / f"{name}.npz"))


def import_pickle(name: str) -> dict[str, nvidia.Imported]:
    """The pickle's networks as ours, by role; uncached, for the tests that change the mapping."""
    return {i.key: i for i in nvidia.import_networks(nvidia.read(DATA / f"{name}.pkl"))}


@cache
def imported(name: str) -> dict[str, nvidia.Imported]:
    return import_pickle(name)


def relative_error(ours: torch.Tensor, theirs: np.ndarray) -> float:
    return float(np.abs(ours.numpy() - theirs).max() / np.abs(theirs).max())


@torch.no_grad()
def gs_errors(name: str, Gs: nvidia.Imported) -> list[float]:
    """Gs's relative error at every recorded (lod, psi, cutoff), with the stored noise as NVIDIA's run."""
    rec = records(name)
    z = torch.from_numpy(rec["latents"])
    errors = []
    for i, (lod, psi, cutoff) in enumerate(zip(rec["gs_lod"], rec["gs_psi"], rec["gs_cutoff"])):
        res, alpha = nvidia.level(float(lod), Gs.settings.resolution)
        out = Gs.module(z, res=res, alpha=alpha, psi=float(psi), cutoff=int(cutoff), noise="const")
        errors.append(relative_error(out, rec[f"gs_images_{i}"]))
    return errors


@torch.no_grad()
def d_errors(name: str, D: nvidia.Imported) -> list[float]:
    """D's relative error at every recorded lod, on Gs's first images (a classifier's own inputs);
    NVIDIA's D box-downscales its R² input to the level."""
    rec = records(name)
    reals = torch.from_numpy(rec["gs_images_0"] if name in SNAPSHOTS else rec["d_images"])
    errors = []
    for i, lod in enumerate(rec["d_lod"]):
        res, alpha = nvidia.level(float(lod), D.settings.resolution)
        x = F.avg_pool2d(reals, reals.shape[-1] // res) if res < reals.shape[-1] else reals
        errors.append(relative_error(D.module(x, res=res, alpha=alpha), rec[f"d_scores_{i}"]))
    return errors


@pytest.mark.parametrize("name", SNAPSHOTS)
def test_gs_renders_nvidias_images_at_every_lod_and_truncation(name):
    assert max(gs_errors(name, imported(name)["Gs"])) < TOLERANCE


@pytest.mark.parametrize("name", SNAPSHOTS)
def test_training_copy_g_renders_nvidias_images(name):
    rec, G = records(name), imported(name)["G"]
    z = torch.from_numpy(rec["latents"])
    for i, lod in enumerate(rec["g_lod"]):
        res, alpha = nvidia.level(float(lod), G.settings.resolution)
        with torch.no_grad():
            out = G.module(z, res=res, alpha=alpha, noise="const")
        assert relative_error(out, rec[f"g_images_{i}"]) < TOLERANCE


@pytest.mark.parametrize("name", SNAPSHOTS)
def test_d_gives_nvidias_scores_at_every_lod(name):
    assert max(d_errors(name, imported(name)["D"])) < TOLERANCE


def test_settings_and_level_come_from_the_pickle():
    Gs = imported("stylegan-32")["Gs"]
    s = Gs.settings
    assert (
        s.resolution,
        s.fmap_base,
        s.fmap_max,
        s.latent_size,
        s.dlatent_size,
        s.mapping_layers,
        s.mapping_fmaps,
    ) == (32, 128, 32, 24, 20, 3, 28)
    assert (s.truncation_psi, s.truncation_cutoff, s.fused_scale) == (0.6, 6, None)
    assert float(records("stylegan-32")["pickled_lod"]) == 1.5 and (Gs.resolution, Gs.alpha) == (16, 0.5)
    assert imported("stylegan-128")["D"].settings.mbstd_group_size == 2


# --- a mapping error fails the comparison --------------------------------------


def test_unflipped_fused_up_kernel_fails(monkeypatch):
    monkeypatch.setattr(nvidia, "_fused_up_conv", nvidia._conv)
    errors = gs_errors("stylegan-128", import_pickle("stylegan-128")["Gs"])
    assert min(errors[:3]) > 1e-2  # lod 0 and 0.5 run the fused 128² layer
    assert max(errors[3:]) < TOLERANCE  # lod >= 1 does not


def test_flipping_the_fused_down_kernel_fails(monkeypatch):
    flipped = nvidia.discriminator_table

    def table(s):
        return [
            (k, n, (lambda w: w.transpose(3, 2, 0, 1)[:, :, ::-1, ::-1]) if "128.conv1_down.weight" in k else c)
            for k, n, c in flipped(s)
        ]

    monkeypatch.setattr(nvidia, "discriminator_table", table)
    errors = d_errors("stylegan-128", import_pickle("stylegan-128")["D"])
    assert min(errors[:2]) > 1e-3 and max(errors[2:]) < TOLERANCE  # only lod < 1 reads 128² images


@pytest.mark.parametrize("name", SNAPSHOTS)
def test_swapped_blend_factor_fails(name, monkeypatch):
    """alpha = f instead of 1 - f for lod = k + f; no recorded lod has f = 0.5, where the two agree."""
    level = nvidia.level

    def swapped(lod: float, resolution: int) -> tuple[int, float]:
        res, alpha = level(lod, resolution)
        return res, alpha if alpha == 1.0 else 1.0 - alpha

    networks, rec = imported(name), records(name)
    monkeypatch.setattr(nvidia, "level", swapped)
    for errors, lods in (
        (gs_errors(name, networks["Gs"]), rec["gs_lod"]),
        (d_errors(name, networks["D"]), rec["d_lod"]),
    ):
        assert all((e > 1e-2) == bool(lod % 1) for e, lod in zip(errors, lods))


def test_missing_noise_fails():
    rec = records("stylegan-32")
    with torch.no_grad():
        out = imported("stylegan-32")["Gs"].module(
            torch.from_numpy(rec["latents"]), res=32, alpha=1.0, psi=1.0, noise="none"
        )
    assert relative_error(out, rec["gs_images_0"]) > 1e-2


def test_a_variable_left_over_on_either_side_is_an_error():
    Gs = nvidia.read(DATA / "stylegan-32.pkl")[2]
    synthesis = Gs.components["synthesis"].state
    synthesis["variables"] = [*synthesis["variables"], ("extra", np.zeros(1, np.float32))]
    with pytest.raises(StageError, match="variables not used: G_synthesis/extra"):
        nvidia.import_generator(Gs, "Gs")
    synthesis["variables"] = [v for v in synthesis["variables"] if v[0] not in ("extra", "noise3")]
    with pytest.raises(StageError, match="variables missing: G_synthesis/noise3"):
        nvidia.import_generator(Gs, "Gs")


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("label_size", 10, "label_size=10 cannot be represented"),
        ("use_wscale", False, "use_wscale=False cannot be represented"),
        ("use_instance_norm", False, "use_instance_norm=False"),
        ("blur_filter", [1, 3, 3, 1], "blur_filter=.* cannot be represented"),
        ("mystery", 1, "static argument mystery=1 is not one"),
        ("mapping_layers", 9, "cannot represent it.*mapping_layers"),
    ],
)
def test_arguments_our_networks_cannot_represent_are_refused_by_name(key, value, message):
    Gs = nvidia.read(DATA / "stylegan-32.pkl")[2]
    Gs.state["static_kwargs"][key] = value
    with pytest.raises(StageError, match=message):
        nvidia.import_generator(Gs, "Gs")


def test_a_size_argument_that_disagrees_with_the_weights_is_an_error():
    Gs = nvidia.read(DATA / "stylegan-32.pkl")[2]
    Gs.state["static_kwargs"]["fmap_max"] = 64
    with pytest.raises(StageError, match="does not fit .* a static argument disagrees"):
        nvidia.import_generator(Gs, "Gs")


# --- nothing in a pickle runs ------------------------------------------------


class RunsACommand:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_a_pickle_that_would_run_a_command_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(RunsACommand(f"touch {marker}"), protocol=4))
    with pytest.raises(StageError, match=r"this pickle asks for (posix|nt)\.system; only StyleGAN network"):
        nvidia.read(path)
    assert not marker.exists()


class Network:
    """Pickles as NVIDIA's pickles name their networks (with `nvidia_pickle`), with the state it is given."""

    __module__ = "dnnlib.tflib.network"

    def __init__(self, state: dict) -> None:
        self.state = state

    def __getstate__(self) -> dict:
        return self.state


def nvidia_pickle(net: Network, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """`net` pickled, with a stand-in `dnnlib.tflib.network` module for pickle's by-name lookup."""
    module = types.ModuleType("dnnlib.tflib.network")
    module.Network = Network
    for name in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network"):
        monkeypatch.setitem(sys.modules, name, module)
    return pickle.dumps(net, protocol=4)


def test_a_command_hidden_in_a_network_state_is_refused(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    net = Network(
        {
            "version": 3,
            "name": "Gs",
            "build_func_name": "G_style",
            "static_kwargs": {"resolution": RunsACommand(f"touch {marker}")},
            "variables": [],
        }
    )
    (tmp_path / "net.pkl").write_bytes(nvidia_pickle(net, monkeypatch))
    with pytest.raises(StageError, match="asks for (posix|nt).system"):
        nvidia.read(tmp_path / "net.pkl")
    assert not marker.exists()


def test_the_numpy_1_names_of_published_pickles_are_allowed():
    unpickler = nvidia._Unpickler(io.BytesIO())
    for name in ("_reconstruct", "scalar"):
        assert unpickler.find_class("numpy.core.multiarray", name) is unpickler.find_class(
            "numpy._core.multiarray", name
        )


def test_a_pickle_of_something_else_is_refused(tmp_path):
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(StageError, match="holds list, not StyleGAN networks"):
        nvidia.read(tmp_path / "list.pkl")
    (tmp_path / "text.pkl").write_text("not a pickle")
    with pytest.raises(StageError, match="not a readable pickle"):
        nvidia.read(tmp_path / "text.pkl")


# --- the command and its files -------------------------------------------------


def generate(checkpoint: Path, latents: Path, npy: Path, *options: str) -> int:
    """`generate` from saved latents into an .npy of images, as a user would run it; the exit status."""
    return cli.main(
        ["generate", "--checkpoint", str(checkpoint), "--latents", str(latents), *options, "--npy", str(npy)]
    )


def test_import_writes_our_files_and_generate_reproduces_nvidia(tmp_path):
    out = tmp_path / "net"
    assert cli.main(["import", "nvidia", str(DATA / "stylegan-128.pkl"), "--out", str(out)]) == 0
    record = json.loads((out / "nvidia.json").read_text())
    assert record["kind"] == "snapshot" and len(record["source"]["sha256"]) == 64
    assert record["networks"]["Gs"]["static_kwargs"]["fmap_base"] == 256
    assert {v["file"] for v in record["networks"].values()} == {
        "generator.pt",
        "generator-training.pt",
        "discriminator.pt",
    }
    rec = records("stylegan-128")
    np.save(tmp_path / "z.npy", rec["latents"])
    assert (
        generate(out / "generator.pt", tmp_path / "z.npy", tmp_path / "images.npy", "--noise", "const", "--psi", "1")
        == 0
    )
    images = np.load(tmp_path / "images.npy")
    assert images.dtype == np.float32 and relative_error(torch.from_numpy(images), rec["gs_images_0"]) < TOLERANCE
    D, meta = files.load_discriminator(out / "discriminator.pt")
    assert meta == {"resolution": 128, "alpha": 1.0}
    with torch.no_grad():
        scores = D(torch.from_numpy(rec["gs_images_0"]), res=128)
    assert relative_error(scores, rec["d_scores_0"]) < TOLERANCE


def test_generate_refuses_latents_of_the_wrong_size(tmp_path, caplog):
    out = tmp_path / "net"
    assert cli.main(["import", "nvidia", str(DATA / "stylegan-32.pkl"), "--out", str(out)]) == 0
    np.save(tmp_path / "z.npy", np.zeros((2, 7), np.float32))
    assert generate(out / "generator.pt", tmp_path / "z.npy", tmp_path / "x.npy") == 2
    assert "shape [N, 24]" in caplog.text


def test_classifier_pickle_becomes_a_linear_separability_classifier(tmp_path):
    source = tmp_path / "celebahq-classifier-07-bags-under-eyes.pkl"
    source.write_bytes((DATA / "classifier-32.pkl").read_bytes())
    assert cli.main(["import", "nvidia", str(source), "--out", str(tmp_path / "out")]) == 0
    loaded = classifier.load(tmp_path / "out" / "classifier.pt")
    assert (loaded.attribute, loaded.resolution, loaded.net.settings.mbstd_group_size) == ("bags-under-eyes", 32, 1)
    rec = records("classifier-32")
    assert relative_error(loaded(torch.from_numpy(rec["d_images"])), rec["d_scores_0"]) < TOLERANCE
    assert json.loads((tmp_path / "out" / "nvidia.json").read_text())["kind"] == "classifier"


def test_a_discriminator_without_num_channels_is_d_basics_default_one_channel():
    D = nvidia.read(DATA / "stylegan-32.pkl")[1]
    del D.state["static_kwargs"]["num_channels"]
    with pytest.raises(StageError, match="num_channels=1 cannot be represented"):
        nvidia.import_discriminator(D, "D")


def as_network(net: nvidia.PickledNetwork) -> Network:
    return Network({**net.state, "components": {k: as_network(sub) for k, sub in net.components.items()}})


def test_a_single_generator_pickle_gives_generator_pt(tmp_path, monkeypatch):
    Gs = nvidia.read(DATA / "stylegan-32.pkl")[2]
    (tmp_path / "gs.pkl").write_bytes(nvidia_pickle(as_network(Gs), monkeypatch))
    assert cli.main(["import", "nvidia", str(tmp_path / "gs.pkl"), "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["generator.pt", "nvidia.json"]
    G, meta = files.load_generator(tmp_path / "out" / "generator.pt")
    assert (meta["resolution"], meta["alpha"]) == (16, 0.5)  # pickled at lod 1.5
    rec = records("stylegan-32")
    with torch.no_grad():
        out = G(torch.from_numpy(rec["latents"]), res=32, psi=1.0, noise="const")
    assert relative_error(out, rec["gs_images_0"]) < TOLERANCE
