"""NVIDIA's StyleGAN (v1) pickles read into our networks, without TensorFlow and without running their code.

A pickle of NVlabs/stylegan holds `dnnlib.tflib.network.Network` objects, each the
state of `Network.__getstate__` (`dnnlib/tflib/network.py`): its name, the name of
its build function, its static keyword arguments, its sub-networks and its
variables as numpy arrays, plus the Python source of the module that builds it
(`build_module_src`), which NVIDIA's loader executes. `read` never does: its
unpickler resolves `Network` to a plain holder of that state and otherwise only
numpy's array reconstruction, so a pickle that names anything else is refused.

The networks are those of `training/networks_stylegan.py` (`G_style` with its
`G_mapping` and `G_synthesis`, and `D_basic`), which our `networks.py` follows
layer for layer. Settings come from the static arguments, with that file's
defaults; an argument our networks cannot represent is refused by name. Every
variable is used exactly once and every parameter and buffer of ours is set.
"""

from __future__ import annotations

import io
import math
import pickle
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy._core.multiarray import _reconstruct, scalar  # what pickled arrays and scalars call
from torch import nn

from stylegan import fileio, settings
from stylegan.errors import StageError
from stylegan.model import files
from stylegan.model.networks import Discriminator, Generator, NetworkSettings
from stylegan.settings import SettingsError, as_dict

FORMAT = "stylegan-nvidia-import/1"
# What `stylegan import nvidia PICKLE --out DIR` writes in DIR: Gs as the generator every command
# reads, G (the training copy) and D as in the snapshot, and this record; a classifier pickle
# gives `classifier.pt` (stylegan/metrics/classifier.py) and the record.
FILES = {"Gs": "generator.pt", "G": "generator-training.pt", "D": "discriminator.pt", "classifier": "classifier.pt"}
RECORD = "nvidia.json"
NETWORK_VERSIONS = (2, 3)  # dnnlib/tflib/network.py __setstate__ accepts these


class PickledNetwork:
    """What `dnnlib.tflib.network.Network` pickles as: its `__getstate__` dict, kept as data."""

    state: dict[str, Any]

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise StageError(f"a pickled Network's state is a {type(state).__name__}, not a dict")
        self.state = state

    @property
    def name(self) -> str:
        return self.state["name"]

    @property
    def build_func(self) -> str:
        return self.state["build_func_name"]

    @property
    def static_kwargs(self) -> dict[str, Any]:
        return dict(self.state["static_kwargs"])

    @property
    def components(self) -> dict[str, PickledNetwork]:
        return dict(self.state.get("components", {}))

    def variables(self) -> dict[str, np.ndarray]:
        """Every variable by its name in `Network.vars`: own ones, then `component/name` for sub-networks."""
        out = {name: np.asarray(value) for name, value in self.state["variables"]}
        for sub in self.components.values():
            out.update((f"{sub.name}/{name}", value) for name, value in sub.variables().items())
        return out


# The only globals a StyleGAN pickle needs: numpy 1 wrote `numpy.core`, numpy 2 writes `numpy._core`.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("dnnlib.tflib.network", "Network"): PickledNetwork,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{
        (f"numpy.{core}.multiarray", name): fn
        for core in ("core", "_core")
        for name, fn in (("_reconstruct", _reconstruct), ("scalar", scalar))
    },
}


class _Unpickler(pickle.Unpickler):
    """Resolves only `_ALLOWED`: nothing a pickle names can run (Python's `pickle` docs, "Restricting Globals")."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[module, name]
        except KeyError:
            raise StageError(f"this pickle asks for {module}.{name}; only StyleGAN network pickles are read") from None

    def persistent_load(self, pid: Any) -> Any:
        raise StageError("this pickle asks for a persistent object; only StyleGAN network pickles are read")


def read(path: Path) -> tuple[PickledNetwork, ...]:
    """The networks of a pickle: (G, D, Gs) for a training snapshot, one for a single network."""
    try:
        obj = _Unpickler(io.BytesIO(Path(path).read_bytes())).load()
    except StageError as err:
        raise StageError(f"{path}: {err}") from None
    except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError, pickle.UnpicklingError) as err:
        raise StageError(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from None
    nets = obj if isinstance(obj, tuple) else (obj,)
    if not nets or not all(isinstance(n, PickledNetwork) for n in nets):
        raise StageError(f"{path}: holds {type(obj).__name__}, not StyleGAN networks or a (G, D, Gs) tuple")
    for net in nets:
        _check_state(net, path)
    return nets


def _check_state(net: PickledNetwork, path: Path) -> None:
    """The fields of `Network.__getstate__`, of the types it writes."""
    s = net.state
    if s.get("version") not in NETWORK_VERSIONS:
        raise StageError(
            f"{path}: Network state version {s.get('version')!r}; StyleGAN (v1) pickles have "
            f"{' or '.join(map(str, NETWORK_VERSIONS))}"
        )
    fields = ("name", "build_func_name", "static_kwargs", "variables")
    if not all(k in s for k in fields) or not isinstance(s["static_kwargs"], dict):
        raise StageError(f"{path}: a Network state without {', '.join(fields)}")
    for name, value in s["variables"]:
        if not isinstance(name, str) or np.asarray(value).dtype != np.float32:
            raise StageError(f"{path}: variable {name!r} of network {s['name']!r} is not a float32 array")
    for sub in net.components.values():
        if not isinstance(sub, PickledNetwork):
            raise StageError(f"{path}: network {s['name']!r} has a component that is not a Network")
        _check_state(sub, path)


# --- settings from static arguments ---------------------------------------------
# Defaults: NVlabs/stylegan `training/networks_stylegan.py`, the signatures of G_style,
# G_mapping, G_synthesis and D_basic. `_FIXED`: arguments our networks have no switch for,
# readable only at these values. `_IRRELEVANT`: arguments that change how or when NVIDIA's
# graph is built or what training does, never what a trained network computes.

_COMMON_DEFAULTS = {
    "label_size": 0,
    "fmap_base": 8192,
    "fmap_decay": 1.0,
    "fmap_max": 512,
    "nonlinearity": "lrelu",
    "use_wscale": True,
    "dtype": "float32",
    "fused_scale": "auto",
    "blur_filter": [1, 2, 1],
}
_G_DEFAULTS = {
    **_COMMON_DEFAULTS,
    "num_channels": 3,
    "resolution": 1024,
    "latent_size": 512,
    "dlatent_size": 512,
    "mapping_layers": 8,
    "mapping_fmaps": 512,
    "mapping_lrmul": 0.01,
    "mapping_nonlinearity": "lrelu",
    "normalize_latents": True,
    "use_styles": True,
    "const_input_layer": True,
    "use_noise": True,
    "use_pixel_norm": False,
    "use_instance_norm": True,
    "truncation_psi": 0.7,
    "truncation_cutoff": 8,
    "dlatent_avg_beta": 0.995,
}
_D_DEFAULTS = {**_COMMON_DEFAULTS, "num_channels": 1, "resolution": 32, "mbstd_group_size": 4, "mbstd_num_features": 1}
_COMMON_FIXED = {
    "num_channels": 3,
    "label_size": 0,
    "nonlinearity": "lrelu",
    "use_wscale": True,
    "dtype": "float32",
    "blur_filter": [1, 2, 1],
}
_G_FIXED = {**_COMMON_FIXED, "mapping_nonlinearity": "lrelu", "normalize_latents": True}
_D_FIXED = {**_COMMON_FIXED, "mbstd_num_features": 1}
_IRRELEVANT = {
    "structure",
    "randomize_noise",
    "force_clean_graph",
    "truncation_psi_val",
    "truncation_cutoff_val",
    "style_mixing_prob",
    "dlatent_broadcast",
}


def _arguments(net: PickledNetwork, defaults: dict[str, Any], fixed: dict[str, Any]) -> dict[str, Any]:
    """The network's static arguments over the defaults; refused by name if ours cannot represent one.

    G_style hands its own arguments to its components at every run (networks_stylegan.py
    `get_output_for(..., **kwargs)`), so they win over the components'; every copy is checked.
    """
    copies = [{k: _plain(v) for k, v in sub.static_kwargs.items()} for sub in [*net.components.values(), net]]
    for key, value in ((k, v) for kwargs in copies for k, v in kwargs.items()):
        if key not in defaults and key not in _IRRELEVANT:
            raise StageError(
                f"network {net.name!r}: static argument {key}={value!r} is not one of "
                f"networks_stylegan.py's {net.build_func} that this importer knows"
            )
    merged = {**defaults, **{k: v for kwargs in copies for k, v in kwargs.items() if k in defaults}}
    for key, needed in fixed.items():
        for value in [merged[key], *(kwargs[key] for kwargs in copies if key in kwargs)]:
            if value != needed:
                raise StageError(
                    f"network {net.name!r}: {key}={value!r} cannot be represented; "
                    f"our networks have only {key}={needed!r}"
                )
    return merged


def _plain(value: Any) -> Any:
    """numpy scalars and tuples as Python values, for comparison and JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _fused(value: Any) -> bool | None:
    if value not in ("auto", True, False):
        raise StageError(f"fused_scale={value!r}: networks_stylegan.py takes True, False or 'auto'")
    return None if value == "auto" else bool(value)


def generator_settings(net: PickledNetwork) -> NetworkSettings:
    """Our settings for a G_style network; AdaIN is instance norm + styles, Progressive GAN's is pixel norm."""
    _expect(net, "G_style", {"synthesis": "G_synthesis", "mapping": "G_mapping"})
    a = _arguments(net, _G_DEFAULTS, _G_FIXED)
    if (a["use_instance_norm"], a["use_pixel_norm"]) != (a["use_styles"], not a["use_styles"]):
        raise StageError(
            f"network {net.name!r}: use_instance_norm={a['use_instance_norm']}, use_pixel_norm="
            f"{a['use_pixel_norm']} with use_styles={a['use_styles']} cannot be represented; our "
            "networks use instance norm with styles and pixel norm without"
        )
    psi, cutoff = a["truncation_psi"], a["truncation_cutoff"]
    off = psi is None or cutoff is None or cutoff <= 0  # G_style: either None disables truncation
    return _settings(
        net,
        {
            **_same_names(
                a,
                *_SHARED,
                *("latent_size", "dlatent_size", "mapping_layers", "mapping_lrmul", "mapping_fmaps", "use_styles"),
            ),
            "const_input": a["const_input_layer"],
            "use_noise": bool(a["use_noise"]),
            "truncation_psi": 1.0 if off else psi,
            "truncation_cutoff": _G_DEFAULTS["truncation_cutoff"] if off else cutoff,
            "w_avg_beta": 1.0 if a["dlatent_avg_beta"] is None else a["dlatent_avg_beta"],
            "fused_scale": _fused(a["fused_scale"]),
        },
    )


def discriminator_settings(net: PickledNetwork) -> NetworkSettings:
    """Our settings for a D_basic network; a group size of 0 or 1 both mean no minibatch stddev layer."""
    _expect(net, "D_basic", {})
    a = _arguments(net, _D_DEFAULTS, _D_FIXED)
    return _settings(
        net,
        {
            **_same_names(a, *_SHARED),
            "mbstd_group_size": max(1, a["mbstd_group_size"]),
            "fused_scale": _fused(a["fused_scale"]),
        },
    )


# G_style's and D_basic's arguments that are our settings under the same name.
_SHARED = ("resolution", "fmap_base", "fmap_decay", "fmap_max")


def _same_names(arguments: dict[str, Any], *names: str) -> dict[str, Any]:
    """The arguments our settings take as they are, under the reference's own names."""
    return {name: arguments[name] for name in names}


def _settings(net: PickledNetwork, fields: dict[str, Any]) -> NetworkSettings:
    """Our settings, checked as a config's are (bounds included), so a file we write is one we can load."""
    try:
        return settings.load(NetworkSettings, fields, "network")
    except (SettingsError, StageError) as err:
        raise StageError(f"network {net.name!r}: our networks cannot represent it: {err}") from None


def _expect(net: PickledNetwork, build_func: str, components: dict[str, str]) -> None:
    found = {key: sub.build_func for key, sub in net.components.items()}
    if net.build_func != build_func or found != components:
        raise StageError(
            f"network {net.name!r} is built by {net.build_func} with components {found}; "
            f"expected networks_stylegan.py's {build_func} with {components}"
        )


# --- variables to parameters -----------------------------------------------------
# NVIDIA's layouts (networks_stylegan.py get_weight): conv [kh, kw, in, out], dense [in, out].

Convert = Callable[[np.ndarray], np.ndarray]


def _conv(w: np.ndarray) -> np.ndarray:
    return w.transpose(3, 2, 0, 1)


def _fused_up_conv(w: np.ndarray) -> np.ndarray:
    """`upscale2d_conv2d` fused is a transposed conv of the raw kernel, i.e. up+conv with it rotated 180°.

    Our fused UpConv2d flips before its transposed conv so that fused and separate agree
    (layers.py); NVIDIA's kernel, rotated here, then gives NVIDIA's output either way.
    """
    return _conv(w)[:, :, ::-1, ::-1]


def _dense(w: np.ndarray) -> np.ndarray:
    return w.T


def _same(w: np.ndarray) -> np.ndarray:
    return w


def _epilogue(ours: str, theirs: str, layer: int, s: NetworkSettings) -> list[tuple[str, str, Convert]]:
    """A layer's noise strength and stored map, bias and style (networks_stylegan.py layer_epilogue)."""
    rows = [(f"{ours}.bias", f"G_synthesis/{theirs}/bias", _same)]
    if s.use_noise:
        rows += [
            (f"{ours}.noise.weight", f"G_synthesis/{theirs}/Noise/weight", _same),
            (f"{ours}.noise.const_noise", f"G_synthesis/noise{layer}", _same),
        ]
    if s.use_styles:
        rows += [
            (f"{ours}.style.affine.weight", f"G_synthesis/{theirs}/StyleMod/weight", _dense),
            (f"{ours}.style.affine.bias", f"G_synthesis/{theirs}/StyleMod/bias", _same),
        ]
    return rows


def generator_table(s: NetworkSettings) -> list[tuple[str, str, Convert]]:
    """(our state key, NVIDIA's variable, conversion) for every parameter and buffer of a Generator."""
    rows = [("w_avg", "dlatent_avg", _same)]
    for i in range(s.mapping_layers):
        rows += [
            (f"mapping.net.{2 * i}.weight", f"G_mapping/Dense{i}/weight", _dense),
            (f"mapping.net.{2 * i}.bias", f"G_mapping/Dense{i}/bias", _same),
        ]
    first = "4x4/Const" if s.const_input else "4x4/Dense"
    rows.append(
        ("synthesis.input.const", "G_synthesis/4x4/Const/const", _same)
        if s.const_input
        else ("synthesis.input.dense.weight", "G_synthesis/4x4/Dense/weight", _dense)
    )
    rows += _epilogue("synthesis.input.epilogue0", first, 0, s)
    rows.append(("synthesis.input.conv.weight", "G_synthesis/4x4/Conv/weight", _conv))
    rows += _epilogue("synthesis.input.epilogue1", "4x4/Conv", 1, s)
    for r in range(3, s.log2_resolution + 1):
        ours, theirs = f"synthesis.blocks.{2**r}", f"{2**r}x{2**r}"
        up = _fused_up_conv if s.fused(2**r) else _conv
        rows.append((f"{ours}.conv0_up.weight", f"G_synthesis/{theirs}/Conv0_up/weight", up))
        rows += _epilogue(f"{ours}.epilogue0", f"{theirs}/Conv0_up", 2 * r - 4, s)
        rows.append((f"{ours}.conv1.weight", f"G_synthesis/{theirs}/Conv1/weight", _conv))
        rows += _epilogue(f"{ours}.epilogue1", f"{theirs}/Conv1", 2 * r - 3, s)
    for r in range(2, s.log2_resolution + 1):
        lod = s.log2_resolution - r
        rows += [
            (f"synthesis.torgb.{2**r}.weight", f"G_synthesis/ToRGB_lod{lod}/weight", _conv),
            (f"synthesis.torgb.{2**r}.bias", f"G_synthesis/ToRGB_lod{lod}/bias", _same),
        ]
    return rows


def discriminator_table(s: NetworkSettings) -> list[tuple[str, str, Convert]]:
    """(our state key, NVIDIA's variable, conversion) for a Discriminator; its fused down-conv needs no flip."""
    rows = []
    for r in range(2, s.log2_resolution + 1):
        lod = s.log2_resolution - r
        rows += [
            (f"fromrgb.{2**r}.conv.weight", f"FromRGB_lod{lod}/weight", _conv),
            (f"fromrgb.{2**r}.conv.bias", f"FromRGB_lod{lod}/bias", _same),
        ]
    for r in range(3, s.log2_resolution + 1):
        for ours, theirs in (("conv0", "Conv0"), ("conv1_down", "Conv1_down")):
            rows += [
                (f"blocks.{2**r}.{ours}.weight", f"{2**r}x{2**r}/{theirs}/weight", _conv),
                (f"blocks.{2**r}.{ours}.bias", f"{2**r}x{2**r}/{theirs}/bias", _same),
            ]
    for ours, theirs, convert in (("conv", "Conv", _conv), ("dense0", "Dense0", _dense), ("dense1", "Dense1", _dense)):
        rows += [
            (f"head.{ours}.weight", f"4x4/{theirs}/weight", convert),
            (f"head.{ours}.bias", f"4x4/{theirs}/bias", _same),
        ]
    return rows


def load_variables(
    module: nn.Module, table: Iterable[tuple[str, str, Convert]], variables: dict[str, np.ndarray], what: str
) -> None:
    """Set every entry of `module.state_dict()` from `table`; a leftover on either side or a shape is an error."""
    table = list(table)
    ours = module.state_dict()
    unset = sorted(set(ours) - {key for key, _, _ in table})
    unused = sorted(set(variables) - {name for _, name, _ in table})
    missing = [name for _, name, _ in table if name not in variables]
    for problem, names in (
        ("variables missing", missing),
        ("variables not used", unused),
        ("parameters not set", unset),
    ):
        if names:
            raise StageError(f"{what}: {problem}: {', '.join(names)}")
    state = {}
    for key, name, convert in table:
        value = convert(variables[name])
        if value.shape != tuple(ours[key].shape):
            raise StageError(
                f"{what}: variable {name} of shape {list(variables[name].shape)} does not fit "
                f"{key} {list(ours[key].shape)}: a static argument disagrees with the weights"
            )
        state[key] = torch.from_numpy(np.ascontiguousarray(value))
    module.load_state_dict(state)


# --- networks and their level --------------------------------------------------


@dataclass(frozen=True)
class Imported:
    """One network of a pickle as ours, with the level its `lod` variable says it runs at."""

    key: str  # "Gs", "G", "D" (a snapshot's roles), or "classifier" (a single D_basic)
    module: Generator | Discriminator
    settings: NetworkSettings
    resolution: int
    alpha: float
    source: PickledNetwork


def level(lod: float, resolution: int) -> tuple[int, float]:
    """`lod = k + f` means resolution R / 2^k with blend factor 1 - f (networks_stylegan.py's lod_in)."""
    top = int(math.log2(resolution)) - 2
    if not 0.0 <= lod <= top:
        raise StageError(f"lod {lod} is outside [0, {top}] for a {resolution}² network")
    k = math.floor(lod)
    return resolution >> k, 1.0 - (lod - k)


def import_generator(net: PickledNetwork, key: str) -> Imported:
    """A G_style network as our Generator; G_synthesis's own `lod` is a copy G_style assigns before every run."""
    s = generator_settings(net)
    G = Generator(s)
    variables = net.variables()
    lod = float(variables.pop("lod"))
    variables.pop("G_synthesis/lod")
    load_variables(G, generator_table(s), variables, f"network {net.name!r}")
    return Imported(key, G.eval().requires_grad_(False), s, *level(lod, s.resolution), net)


def import_discriminator(net: PickledNetwork, key: str) -> Imported:
    """A D_basic network as our Discriminator."""
    s = discriminator_settings(net)
    D = Discriminator(s)
    variables = net.variables()
    lod = float(variables.pop("lod"))
    load_variables(D, discriminator_table(s), variables, f"network {net.name!r}")
    return Imported(key, D.eval().requires_grad_(False), s, *level(lod, s.resolution), net)


def import_networks(nets: tuple[PickledNetwork, ...]) -> list[Imported]:
    """A snapshot's (G, D, Gs), or a single G_style or D_basic network, as ours."""
    if len(nets) == 3:
        G, D, Gs = nets  # NVlabs/stylegan training/training_loop.py: misc.save_pkl((G, D, Gs), ...)
        return [import_generator(Gs, "Gs"), import_generator(G, "G"), import_discriminator(D, "D")]
    if len(nets) == 1 and nets[0].build_func == "D_basic":  # NVIDIA publishes D alone only as attribute classifiers
        return [import_discriminator(nets[0], "classifier")]
    if len(nets) == 1:
        return [import_generator(nets[0], "Gs")]
    raise StageError(f"{len(nets)} networks in one pickle: expected a (G, D, Gs) snapshot or one network")


def write_networks(imported: list[Imported], out: Path) -> dict[str, Path]:
    """Gs, G and D as our files under `out` (`FILES`); nimg is 0, as a pickle does not say how long it trained."""
    written = {}
    for i in imported:
        written[i.key] = Path(out) / FILES[i.key]
        if isinstance(i.module, Generator):
            files.save(written[i.key], files.generator_file(i.module, i.settings, 0, i.resolution, i.alpha))
        else:
            files.save(written[i.key], files.discriminator_file(i.module, i.settings, i.resolution, i.alpha))
    return written


def kind(imported: list[Imported]) -> str:
    """ "snapshot" (G, D, Gs), "generator" or "classifier"."""
    keys = [i.key for i in imported]
    return "snapshot" if len(keys) == 3 else "generator" if keys == ["Gs"] else "classifier"


def record(path: Path, imported: list[Imported], written: dict[str, Path]) -> dict[str, Any]:
    """The JSON written beside the files (`RECORD`): the source, its kind, each network's arguments and level."""

    def describe(net: PickledNetwork) -> dict[str, Any]:
        return {
            "name": net.name,
            "build_func_name": net.build_func,
            "static_kwargs": {k: _plain(v) for k, v in net.static_kwargs.items()},
            "components": {k: describe(sub) for k, sub in net.components.items()},
        }

    return {
        "format": FORMAT,
        "source": {"file": Path(path).name, "sha256": fileio.sha256_file(path)},
        "kind": kind(imported),
        "networks": {
            i.key: {
                **describe(i.source),
                "settings": as_dict(i.settings),
                "resolution": i.resolution,
                "alpha": i.alpha,
                "file": written[i.key].name,
            }
            for i in imported
        },
    }
