"""Make tests/data/nvidia: StyleGAN pickles and their outputs from NVIDIA's own TensorFlow code.

Not part of the project and never run by its tests: it needs TensorFlow and
NVIDIA's checkout, which the project never depends on. Run it in a scratch
environment outside the repository:

    python -m venv /tmp/nv/venv && /tmp/nv/venv/bin/pip install tensorflow-cpu==2.21.0 requests
    git clone https://github.com/NVlabs/stylegan /tmp/nv/stylegan
    /tmp/nv/venv/bin/python scripts/nvidia_test_vectors.py /tmp/nv/stylegan tests/data/nvidia

It copies `dnnlib/` and `training/networks_stylegan.py` to a temporary folder and
makes the three edits that let them run under TensorFlow 2 (see `EDITS`), builds
G, D and Gs as NVlabs/stylegan `training/training_loop.py` does (Gs = G.clone),
gives every variable a seeded random value, pickles the (G, D, Gs) tuple with
dnnlib's own `Network.__getstate__` (only `build_module_src` blanked: NVIDIA's code
is not redistributed), and records Gs's and G's images and D's scores at several
levels of detail (lod) and truncations; and a D_basic alone, shaped as NVIDIA's
attribute classifiers, with its scores. Images are stored at their level's native
resolution: NVIDIA's outputs are always R², nearest-upscaled by 2^floor(lod), and
the script checks that subsampling them loses nothing.
"""

from __future__ import annotations

import argparse
import importlib
import pickle
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

TF_IMPORT = "import tensorflow as tf\n"
TF_COMPAT = "import tensorflow.compat.v1 as tf\ntf.disable_v2_behavior()\n"

# (file, old text, new text): each must occur in NVIDIA's file.
EDITS = [
    # 1. TensorFlow 1's graph API, from TensorFlow 2.
    ("training/networks_stylegan.py", TF_IMPORT, TF_COMPAT),
    ("dnnlib/tflib/network.py", TF_IMPORT, TF_COMPAT),
    ("dnnlib/tflib/tfutil.py", TF_IMPORT, TF_COMPAT),
    # 2. TF2's shapes refuse a bool dimension (use_noise=True stands for 1 channel).
    (
        "training/networks_stylegan.py",
        "shape = [1, use_noise, 2**res, 2**res]",
        "shape = [1, int(use_noise), 2**res, 2**res]",
    ),
    # 3. dnnlib without its job-submission and autosummary code (TF1-only, unused here).
    ("dnnlib/__init__.py", "from . import submission\n", ""),
    ("dnnlib/__init__.py", "from .submission.run_context import RunContext\n", ""),
    ("dnnlib/__init__.py", "from .submission.submit import SubmitTarget\n", ""),
    ("dnnlib/__init__.py", "from .submission.submit import PathType\n", ""),
    ("dnnlib/__init__.py", "from .submission.submit import SubmitConfig\n", ""),
    ("dnnlib/__init__.py", "from .submission.submit import get_path_from_template\n", ""),
    ("dnnlib/__init__.py", "from .submission.submit import submit_run\n", ""),
    ("dnnlib/__init__.py", "submit_config: SubmitConfig = None", "submit_config = None"),
    ("dnnlib/tflib/__init__.py", "from . import autosummary\n", ""),
    ("dnnlib/tflib/__init__.py", "from . import optimizer\n", ""),
    ("dnnlib/tflib/__init__.py", "from .optimizer import Optimizer\n", ""),
]

# The snapshots: a 32² one (separate up/down-sampling), a 128² one (fused at 128², fused_scale='auto')
# and a traditional 16² one, with small, non-default sizes so that the importer must read them.
CASES = {
    "stylegan-32": {
        "resolution": 32,
        "batch": 4,
        "G": {
            "fmap_base": 128,
            "fmap_max": 32,
            "latent_size": 24,
            "dlatent_size": 20,
            "mapping_layers": 3,
            "mapping_fmaps": 28,
            "truncation_psi": 0.6,
            "truncation_cutoff": 6,
        },
        "D": {"fmap_base": 128, "fmap_max": 32},
        "pickled_lod": 1.5,
        "gs": [(0.0, 1.0, 8), (0.0, 0.7, 4), (0.4, 0.5, 8), (1.0, 0.7, 4), (1.75, 1.0, 8), (3.0, 0.7, 2)],
        "g": [0.0, 1.5],
        "d": [0.0, 0.6, 1.0, 2.25, 3.0],
    },
    "stylegan-128": {
        "resolution": 128,
        "batch": 2,
        "G": {
            "fmap_base": 256,
            "fmap_max": 16,
            "latent_size": 16,
            "dlatent_size": 16,
            "mapping_layers": 2,
            "mapping_fmaps": 16,
        },
        "D": {"fmap_base": 256, "fmap_max": 16, "mbstd_group_size": 2},
        "pickled_lod": 0.0,
        "gs": [(0.0, 1.0, 12), (0.0, 0.7, 8), (0.25, 0.6, 4), (1.0, 0.7, 8), (2.75, 1.0, 12), (5.0, 0.7, 8)],
        "g": [0.0],
        "d": [0.0, 0.75, 1.0, 3.25],
    },
    # Table 1 row B's "traditional" generator: w (= the normalised z) through a dense layer, pixel
    # norm instead of styles, no noise.
    "stylegan-16-traditional": {
        "resolution": 16,
        "batch": 4,
        "G": {
            "fmap_base": 64,
            "fmap_max": 16,
            "latent_size": 16,
            "dlatent_size": 16,
            "mapping_layers": 0,
            "const_input_layer": False,
            "use_styles": False,
            "use_noise": False,
            "use_pixel_norm": True,
            "use_instance_norm": False,
        },
        "D": {"fmap_base": 64, "fmap_max": 16},
        "pickled_lod": 0.0,
        "gs": [(0.0, 1.0, 8), (0.0, 0.5, 8), (0.3, 0.7, 1), (1.0, 1.0, 8)],
        "g": [0.0],
        "d": [0.0, 0.3],
    },
}


def patched_copy(checkout: Path, scratch: Path) -> None:
    """NVIDIA's network code, edited as `EDITS` says, under `scratch`."""
    shutil.copytree(checkout / "dnnlib", scratch / "dnnlib")
    (scratch / "training").mkdir()
    (scratch / "training" / "__init__.py").write_text("")
    shutil.copy(checkout / "training" / "networks_stylegan.py", scratch / "training")
    for name, old, new in EDITS:
        path = scratch / name
        text = path.read_text(encoding="utf-8-sig")
        if old not in text:
            raise SystemExit(f"{name}: {old!r} not found; is this NVlabs/stylegan?")
        path.write_text(text.replace(old, new, 1), encoding="utf-8")


def randomise(net, rng: np.random.Generator, pickled_lod: float) -> None:
    """Seeded values for every variable; mapping weights and biases at 1/lrmul, as their initialiser."""
    from dnnlib import tflib

    values = {}
    for name, var in net.vars.items():
        shape = var.shape.as_list()
        if name.endswith("lod"):
            values[var] = np.float32(pickled_lod)
            continue
        scale = 1.0
        if name.startswith("G_mapping/"):
            scale = 100.0  # mapping_lrmul 0.01: stored values are scaled by it at run time
        elif name.endswith(("bias", "Noise/weight")):
            scale = 0.3
        elif name == "dlatent_avg":
            scale = 0.5
        values[var] = (rng.standard_normal(shape) * scale).astype(np.float32)
    tflib.set_vars(values)


def native(images: np.ndarray, lod: float) -> np.ndarray:
    """NVIDIA's R² output at `lod` at its level's resolution, checked to be a nearest upscale of it.

    Not always bit for bit: at a whole lod k > 0, NVIDIA's recursive structure still
    computes the level above as lerp(a, b, 1) = a + (b - a), which rounds.
    """
    step = 2 ** int(np.floor(lod))
    small = images[:, :, ::step, ::step]
    error = np.abs(np.repeat(np.repeat(small, step, axis=2), step, axis=3) - images).max()
    if error > 1e-6 * np.abs(images).max():
        raise SystemExit(f"lod {lod}: the output is not a nearest upscale by {step} (off by {error})")
    return small


def run_case(name: str, case: dict, out: Path, seed: int) -> None:
    import tensorflow.compat.v1 as tf
    from dnnlib import tflib

    rng = np.random.default_rng(seed)
    R, N = case["resolution"], case["batch"]
    common = {"num_channels": 3, "resolution": R, "label_size": 0}
    G = tflib.Network("G", func_name="training.networks_stylegan.G_style", **common, **case["G"])
    D = tflib.Network("D", func_name="training.networks_stylegan.D_basic", **common, **case["D"])
    Gs = G.clone("Gs")
    for net in (G, D, Gs):
        randomise(net, rng, case["pickled_lod"])

    latents = rng.standard_normal([N, G.input_shape[1]]).astype(np.float32)
    z = tf.placeholder(tf.float32, [None, G.input_shape[1]])
    record: dict[str, np.ndarray] = {"latents": latents, "pickled_lod": np.float32(case["pickled_lod"])}

    def images(net, lod: float, **kwargs) -> np.ndarray:
        tflib.set_vars({net.find_var("lod"): np.float32(lod)})
        return native(tflib.run(net.get_output_for(z, None, randomize_noise=False, **kwargs), {z: latents}), lod)

    for i, (lod, psi, cutoff) in enumerate(case["gs"]):
        record[f"gs_images_{i}"] = images(Gs, lod, truncation_psi=psi, truncation_cutoff=cutoff)
    record.update(
        gs_lod=np.array([c[0] for c in case["gs"]], np.float32),
        gs_psi=np.array([c[1] for c in case["gs"]], np.float32),
        gs_cutoff=np.array([c[2] for c in case["gs"]], np.int64),
    )
    for i, lod in enumerate(case["g"]):
        record[f"g_images_{i}"] = images(G, lod, truncation_psi=None)
    record["g_lod"] = np.array(case["g"], np.float32)

    # D judges Gs's first images (lod 0, R²): white noise would be averaged away by its blurs and
    # downscales, leaving scores that hardly depend on the image.
    reals = record["gs_images_0"]
    x = tf.placeholder(tf.float32, [None, 3, R, R])
    scores = D.get_output_for(x, None)
    for i, lod in enumerate(case["d"]):
        tflib.set_vars({D.find_var("lod"): np.float32(lod)})
        record[f"d_scores_{i}"] = tflib.run(scores, {x: reals})[:, 0]
    record["d_lod"] = np.array(case["d"], np.float32)

    for net in (G, D, Gs):
        tflib.set_vars({net.find_var("lod"): np.float32(case["pickled_lod"])})
        for sub in [net, *net.components.values()]:
            sub._build_module_src = ""  # NVIDIA's code is not redistributed; the importer never reads it
    with open(out / f"{name}.pkl", "wb") as f:
        pickle.dump((G, D, Gs), f, protocol=4)  # the protocol of NVIDIA's published pickles (Python 3.6)
    np.savez_compressed(out / f"{name}.npz", **record)
    print(f"{name}: {len(G.vars)} G, {len(D.vars)} D variables; wrote {out / name}.pkl/.npz")


def run_classifier(out: Path, seed: int) -> None:
    """A D_basic alone, as NVIDIA's attribute classifiers (minibatch stddev off): its scores at lod 0."""
    import tensorflow.compat.v1 as tf
    from dnnlib import tflib

    rng = np.random.default_rng(seed)
    D = tflib.Network(
        "D",
        func_name="training.networks_stylegan.D_basic",
        num_channels=3,
        resolution=32,
        label_size=0,
        fmap_base=64,
        fmap_max=16,
        mbstd_group_size=0,
    )
    randomise(D, rng, 0.0)
    reals = np.repeat(np.repeat(rng.standard_normal([4, 3, 8, 8]), 4, axis=2), 4, axis=3).astype(
        np.float32
    )  # not white
    x = tf.placeholder(tf.float32, [None, 3, 32, 32])
    scores = tflib.run(D.get_output_for(x, None), {x: reals})[:, 0]
    D._build_module_src = ""
    with open(out / "classifier-32.pkl", "wb") as f:
        pickle.dump(D, f, protocol=4)
    np.savez_compressed(out / "classifier-32.npz", d_images=reals, d_lod=np.zeros(1, np.float32), d_scores_0=scores)
    print(f"classifier-32: {len(D.vars)} variables; wrote {out / 'classifier-32'}.pkl/.npz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="NVlabs/stylegan checkout")
    parser.add_argument("out", type=Path, help="folder to write (tests/data/nvidia)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        patched_copy(args.checkout, Path(scratch))
        sys.path.insert(0, scratch)
        importlib.import_module("dnnlib.tflib").init_tf({"rnd.np_random_seed": 0, "rnd.tf_random_seed": 0})
        for seed, (name, case) in enumerate(CASES.items()):
            run_case(name, case, args.out, seed)  # one graph: each network gets its own scope (G, G_1, ...)
        run_classifier(args.out, len(CASES))


if __name__ == "__main__":
    main()
