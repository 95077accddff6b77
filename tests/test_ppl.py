"""Perceptual path length: its maths against hand computations, LPIPS against the lpips package, shards.

The lpips package (0.1.4) is the reference for the distance. It builds its VGG16
with torchvision, whose compiled operators need the torch build they were made
for; where they do not load (PyPI's torchvision beside a CPU-only torch), its
pure-Python model code is imported on its own, which is all lpips uses. Both
networks get the same VGG16 weights: torchvision's own random initialisation,
as the ImageNet file is not available offline.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from stylegan import fileio, settings
from stylegan.errors import StageError
from stylegan.metrics import lpips_vgg, ppl
from stylegan.metrics import result as mr
from stylegan.metrics.config import MetricsSettings
from stylegan.metrics.images import box_downsample
from stylegan.metrics.shards import Block
from stylegan.model.files import load_generator
from stylegan.model.sampling import draw_noise, fixed_noise
from tests.training import make_generator


def lpips_package():
    """`lpips`, importing torchvision's model code without its compiled operators where those fail to load."""
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError, OSError):
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        spec = importlib.util.find_spec("torchvision")
        package = types.ModuleType("torchvision")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["torchvision"] = package
        package.models = importlib.import_module("torchvision.models")
    import lpips

    return lpips


@pytest.fixture(scope="module")
def random_lpips() -> lpips_vgg.LpipsVgg16:
    """Our LPIPS with randomly initialised VGG16 weights and the real v0.1 heads."""
    torch.manual_seed(5)
    net = lpips_vgg.LpipsVgg16()
    heads = torch.load(lpips_vgg.heads_file(), map_location="cpu", weights_only=True)
    for i, head in enumerate(net.heads):
        head.weight.data.copy_(heads[f"lin{i}.model.1.weight"])
    return net.eval()


# --- the maths ----------------------------------------------------------------------------


def test_slerp_is_unit_norm_and_matches_hand_computed_points() -> None:
    a, b = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 3.0]])  # lengths do not matter, directions do
    half = ppl.slerp(a, b, torch.tensor([[0.5]]))
    third = ppl.slerp(a, b, torch.tensor([[1 / 3]]))
    assert torch.allclose(half, torch.tensor([[math.sqrt(0.5), math.sqrt(0.5)]]), atol=1e-6)
    assert torch.allclose(third, torch.tensor([[math.cos(math.pi / 6), math.sin(math.pi / 6)]]), atol=1e-6)
    z = torch.randn(64, 512, generator=torch.Generator().manual_seed(0)) * 3
    out = ppl.slerp(z[:32], z[32:], torch.rand(32, 1, generator=torch.Generator().manual_seed(1)))
    assert torch.allclose(out.norm(dim=1), torch.ones(32), atol=1e-5)
    assert torch.allclose(ppl.lerp(torch.tensor([1.0]), torch.tensor([3.0]), torch.tensor([0.25])), torch.tensor([1.5]))


@pytest.mark.parametrize(
    ("size", "rows", "cols", "out"),
    [(64, (24, 56), (16, 48), 32), (256, (96, 224), (64, 192), 128), (1024, (384, 896), (256, 768), 256)],
)
def test_face_crop_takes_sg1_rows_and_columns(size: int, rows: tuple, cols: tuple, out: int) -> None:
    r, c = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    image = torch.stack([r, c, r]).unsqueeze(0)
    crop = ppl.crop_face(image)
    assert crop[0, 0, :, 0].tolist() == list(range(*rows))
    assert crop[0, 1, 0, :].tolist() == list(range(*cols))
    # SG1 downsamples the crop by cropped // 256: 1024² models end at 256², not ADA's 128²
    assert box_downsample(crop, ppl.CROP_TARGET).shape[-1] == out


def test_box_downsample_averages_each_box() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float64).reshape(2, 3, 8, 8)
    expected = np.zeros((2, 3, 2, 2))
    for i in range(2):
        for j in range(2):
            expected[:, :, i, j] = x[:, :, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4].numpy().mean(axis=(2, 3))
    assert np.allclose(box_downsample(x, 2).numpy(), expected)
    assert box_downsample(x, 8) is x  # at or below the target: untouched


def test_percentile_filter_keeps_the_samples_between_lower_and_higher() -> None:
    # 201 values: the 1st percentile sits exactly on x[2], the 99th on x[198]
    d = np.concatenate([np.arange(199.0), [1e6, 2e6]])
    np.random.default_rng(0).shuffle(d)
    assert ppl.filtered_mean(d) == (100.0, 197)  # 2 .. 198
    # 150 values: positions 1.49 and 147.51, so "lower" keeps from x[1] and "higher" up to x[148]
    d = np.random.default_rng(1).permutation(np.arange(150.0))
    assert ppl.filtered_mean(d) == (74.5, 148)


# --- the distance ----------------------------------------------------------------------------


def test_lpips_equals_the_lpips_package_on_the_same_weights(random_lpips: lpips_vgg.LpipsVgg16) -> None:
    lpips = lpips_package()
    torch.manual_seed(5)
    reference = lpips.LPIPS(net="vgg", version="0.1", pretrained=True, pnet_rand=True, verbose=False).eval()
    # lpips names torchvision's feature layers slice1.0 ... slice5.29 after their torchvision index
    backbone = {f"features.{k.split('.', 1)[1]}": v for k, v in reference.net.state_dict().items()}
    ours = lpips_vgg.LpipsVgg16()
    ours.load_weights(backbone, torch.load(lpips_vgg.heads_file(), map_location="cpu", weights_only=True))
    ours.eval()
    gen = torch.Generator().manual_seed(2)
    a = torch.rand(4, 3, 64, 64, generator=gen) * 255
    b = (a + 40 * torch.randn(4, 3, 64, 64, generator=gen)).clamp(0, 255)
    with torch.no_grad():
        expected = reference(a / 127.5 - 1, b / 127.5 - 1).flatten()  # lpips takes [-1, 1]
        got = ours(a, b)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-7), (got, expected)
    assert fileio.sha256_file(lpips_vgg.heads_file()) == lpips_vgg.HEADS_SHA256


def test_backbone_missing_or_with_the_wrong_sha256_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StageError, match="not found"):
        lpips_vgg.load(tmp_path / lpips_vgg.VGG16_FILE)
    (tmp_path / lpips_vgg.VGG16_FILE).write_bytes(b"not the weights")
    with pytest.raises(StageError, match=f"sha256 .* is not .*{lpips_vgg.VGG16_SHA256}"):
        lpips_vgg.load(tmp_path / lpips_vgg.VGG16_FILE)


# --- generation ----------------------------------------------------------------------------


def test_fixed_noise_is_per_sample_and_restored(tmp_path: Path) -> None:
    G, _ = load_generator(make_generator(tmp_path / "g.pt", noise_strength=1.0))
    stored = [m.clone() for m in (layer.const_noise for layer in G.modules() if hasattr(layer, "const_noise"))]
    ws = G.map(torch.randn(1, 16)).unsqueeze(1).repeat(2, G.num_layers, 1)  # one w, twice
    maps = draw_noise(G, 2, torch.Generator().manual_seed(0))
    with fixed_noise(G, maps):
        images = G.synthesize(ws, res=16, noise="const")
    with fixed_noise(G, [m[:1].repeat(2, 1, 1, 1) for m in maps]):
        same = G.synthesize(ws, res=16, noise="const")
    assert not torch.allclose(images[0], images[1])  # each sample its own noise
    assert torch.equal(same[0], same[1])
    after = [layer.const_noise for layer in G.modules() if hasattr(layer, "const_noise")]
    assert all(torch.equal(a, b) for a, b in zip(stored, after))


def test_both_ends_of_a_segment_share_their_noise(tmp_path: Path) -> None:
    """A quadratic distance over ε² stays put as ε shrinks only if the two images differ by the step
    alone; with a fresh noise draw per image it would grow 100-fold from ε = 1e-3 to 1e-4."""
    G, meta = load_generator(make_generator(tmp_path / "g.pt", noise_strength=1.0))
    mean_square = lambda a, b: (a - b).square().mean(dim=(1, 2, 3))  # noqa: E731
    block = Block(0, 0, 6, 123)
    for variant in ppl.VARIANTS:
        small = ppl.block_distances(G, meta, mean_square, variant, block, 1e-4)
        large = ppl.block_distances(G, meta, mean_square, variant, block, 1e-3)
        assert small.shape == (6,) and np.all(small > 0)
        assert np.all((small / large > 0.5) & (small / large < 2)), (variant, small / large)


def test_split_and_merge_equals_unsplit(tmp_path: Path, random_lpips: lpips_vgg.LpipsVgg16) -> None:
    generator = make_generator(tmp_path / "g.pt", noise_strength=0.3, resolution=32)  # the crop is 16², VGG's least
    G, meta = load_generator(generator)
    values = {}
    for shards in (1, 3):
        s = settings.load(MetricsSettings, {"ppl": {"num_samples": 6}, "batch": 2, "shards": shards}, "metrics")
        partials = []
        for variant in ppl.VARIANTS:
            for index in range(shards):
                d, info = ppl.shard_distances(s, G, meta, random_lpips, variant, index)
                path = tmp_path / f"{shards}" / f"{variant}-{index}.npz"
                ppl.save_partial(
                    path,
                    d,
                    {
                        **info,
                        "settings": ppl.variant_settings(s, variant, generator),
                        "seconds": 0.0,
                        "device": "cpu",
                        "backbone": {"path": "test", "sha256": "random"},
                    },
                )
                partials.append(path)
        out = tmp_path / f"{shards}" / "ppl.json"
        ppl.result(s, generator, Path("unused"), partials, out)
        record = mr.read(out)
        assert record.status == mr.COMPUTED and record.num_fakes == 6
        values[shards] = record.value
    assert values[1].keys() == set(ppl.VARIANTS)
    for variant in ppl.VARIANTS:
        assert values[3][variant] == pytest.approx(values[1][variant], rel=1e-9)
        assert values[1][variant] > 0
    with pytest.raises(StageError, match="at least 32²"):
        ppl.shard_distances(s, *load_generator(make_generator(tmp_path / "g16.pt")), random_lpips, "z_end", 0)
    with pytest.raises(StageError, match="a shard is missing"):
        ppl.result(
            s,
            generator,
            Path("unused"),
            [p for p in partials if not p.name.startswith("z_full-1")],
            tmp_path / "x.json",
        )


def test_without_the_backbone_the_result_says_not_computed_and_how_to_fix(tmp_path: Path) -> None:
    generator = make_generator(tmp_path / "g.pt")
    s = MetricsSettings()
    backbone = ppl.backbone_path(s, tmp_path / "resources")
    ppl.result(s, generator, backbone, [], tmp_path / "ppl.json")
    record = json.loads((tmp_path / "ppl.json").read_text())
    assert record["status"] == mr.NOT_COMPUTED and record["value"] is None
    assert str(backbone) in record["reason"] and lpips_vgg.VGG16_URL in record["reason"]
    assert lpips_vgg.VGG16_SHA256 in record["reason"] and "metrics.ppl.vgg16" in record["reason"]


# --- the protocol, pinned with a generator linear in w -------------------------------


class LinearInW(torch.nn.Module):
    """A 32² 'generator' with w = M z and image = A w (no noise inputs): path lengths have closed forms.
    It records the TF32 switches it sees while rendering."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.settings = types.SimpleNamespace(latent_size=4, resolution=32)
        self.num_layers = 2
        self.M = torch.nn.Parameter(torch.randn(4, 4, generator=gen), requires_grad=False)
        self.A = torch.randn(3 * 32 * 32, 4, generator=gen, dtype=torch.float64) / 4
        self.tf32: list[tuple[bool, bool]] = []

    def map(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.M.T

    def synthesize(self, ws: torch.Tensor, res: int, alpha: float, noise: str) -> torch.Tensor:
        self.tf32.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
        assert torch.equal(ws[:, 0], ws[:, 1])  # one w on every layer
        return (ws[:, 0].double() @ self.A.T).reshape(-1, 3, 32, 32)

    def face(self, direction: torch.Tensor) -> torch.Tensor:
        """The face crop (rows 12:28, columns 8:24 of 32², written out) of the image change along w."""
        return (direction.double() @ self.A.T).reshape(-1, 3, 32, 32)[:, :, 12:28, 8:24]


def square_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).square().sum(dim=(1, 2, 3))


def test_path_lengths_of_a_generator_linear_in_w_have_their_closed_forms() -> None:
    """W: lerp, so the image moves by A M (z1 - z0) per unit t whatever t: d/ε² = (127.5)² |crop A M (z1-z0)|²
    (pixels in [0, 255]). Z: slerp of the directions, so at t the point moves by θ (c cos tθ - a sin tθ),
    a = z0/|z0|, c the unit part of z1 orthogonal to a, θ their angle; end points take t = 0."""
    G = LinearInW()
    block = Block(0, 0, 5, 77)
    gen = torch.Generator().manual_seed(block.seed)  # the block's draws: 2N latents, then N values of t
    z = torch.randn(10, 4, generator=gen)
    t = torch.rand(5, 1, generator=gen).double()
    z0, z1 = z[0::2].double(), z[1::2].double()
    a = z0 / z0.norm(dim=1, keepdim=True)
    b = z1 / z1.norm(dim=1, keepdim=True)
    theta = torch.acos((a * b).sum(1, keepdim=True))
    c = b - (a * b).sum(1, keepdim=True) * a
    c = c / c.norm(dim=1, keepdim=True)
    M = G.M.double()
    scale = 127.5**2

    def length(direction: torch.Tensor) -> np.ndarray:
        return (scale * G.face(direction @ M.T).square().sum(dim=(1, 2, 3))).numpy()

    expected = {
        "w_full": length(z1 - z0),
        "w_end": length(z1 - z0),
        "z_full": length(theta * (c * torch.cos(t * theta) - a * torch.sin(t * theta))),
        "z_end": length(theta * c),
    }
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        for variant in ppl.VARIANTS:
            got = ppl.block_distances(G, {"resolution": 32, "alpha": 1.0}, square_distance, variant, block, 1e-4)
            np.testing.assert_allclose(got, expected[variant], rtol=1e-2, err_msg=variant)  # float32 at ε = 1e-4
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)  # restored
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
    assert set(G.tf32) == {(False, False)}  # TF32 off inside, although the caller had it on
    assert not np.allclose(expected["z_full"], expected["z_end"], rtol=0.05)  # t matters in Z
    assert not np.allclose(expected["z_end"], length(z1 - z0), rtol=0.05)  # slerp is not lerp
