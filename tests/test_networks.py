"""StyleGAN networks: reference parameter counts, shapes, fades, truncation, noise,
equalized LR, style mixing, minibatch stddev and the fused resampling convs.

Counts: G from NVlabs/stylegan README.md ("Total 26219627"), D derived from
`training/networks_stylegan.py` D_basic; everything else is checked against a direct
computation, never against the module's own attributes.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from stylegan.cli import main
from stylegan.errors import StageError
from stylegan.model.layers import (
    DownConv2d,
    EqualizedConv2d,
    EqualizedLinear,
    InstanceNorm,
    MinibatchStddev,
    UpConv2d,
    downscale2d,
    upscale2d,
)
from stylegan.model.networks import Discriminator, Generator, NetworkSettings, layers_at
from stylegan.settings import load
from tests.training import NETWORK

torch.set_num_threads(1)

# A reduced model for forward tests: same structure as config F, the shared small widths, at 32².
SMALL = NetworkSettings(**{**NETWORK, "resolution": 32, "mapping_layers": 3, "mbstd_group_size": 4})


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def small(**changes) -> NetworkSettings:
    return dataclasses.replace(SMALL, **changes)


def seeded(cls, s: NetworkSettings, seed: int = 0):
    torch.manual_seed(seed)
    return cls(s).double()


def with_noise_weights(G: Generator) -> Generator:
    """Noise weights start at 0 (SG networks_stylegan.py layer_epilogue); give them a value so noise is visible."""
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise.weight"):
                p.fill_(0.5)
    return G


# --- parameter counts (NVlabs/stylegan) ---------------------------------------


@pytest.mark.parametrize(
    "resolution, g_params, d_params",
    [
        (1024, 26_219_627, 23_087_249),
        (512, 26_179_768, 23_080_225),
        (256, 26_086_229, 23_052_353),
        (128, 25_843_858, None),
    ],
)
def test_parameter_counts_match_reference(resolution, g_params, d_params):
    s = NetworkSettings(resolution=resolution)
    assert count(Generator(s)) == g_params
    if d_params is not None:
        assert count(Discriminator(s)) == d_params


def test_traditional_generator_has_papers_23_1m_parameters():
    # Paper §2: "26.2M trainable parameters, compared to 23.1M in the traditional generator"
    s = NetworkSettings(const_input=False, mapping_layers=0, use_styles=False, use_noise=False)
    assert round(count(Generator(s)) / 1e5) == 231


def test_summary_cli_prints_reference_per_block_counts(capsys):
    assert main(["summary", "--resolution", "1024"]) == 0
    out = capsys.readouterr().out
    # derived per-block counts of SG networks_stylegan.py
    for fragment in [
        "2,101,248",
        "3,420,160",
        "5,771,264",
        "2,295,808",
        "705,536",
        "242,176",
        "93,440",
        "39,808",
        "7,659",
        "26,219,627",
        "10,176",
        "6,960",
        "27,744",
        "110,784",
        "442,752",
        "1,770,240",
        "4,719,616",
        "6,559,745",
        "23,087,249",
    ]:
        assert fragment in out, fragment


def test_summary_cli_rejects_bad_settings(caplog):
    assert main(["summary", "--resolution", "96"]) == 2
    assert main(["summary", "--settings", '{"fmap_bsae": 1}']) == 2
    assert "power of two" in caplog.text and "train.network.fmap_bsae: unknown key" in caplog.text


def test_settings_load_and_validate():
    s = load(NetworkSettings, '{"resolution": 32, "fused_scale": null, "use_noise": false}', where="train.network")
    assert (s.resolution, s.fused_scale, s.use_noise) == (32, None, False)
    assert [s.fused(r) for r in (64, 128)] == [False, True]  # SG networks_stylegan.py fused_scale='auto'
    with pytest.raises(StageError, match="const_input"):
        NetworkSettings(use_styles=False)
    with pytest.raises(StageError, match="resolution"):
        NetworkSettings(resolution=4)


# --- shapes and the progressive fade -------------------------------------------


@pytest.mark.parametrize("fused", [False, True])
def test_output_shapes_at_every_level_and_alpha(fused):
    s = small(fused_scale=fused)
    G, D = seeded(Generator, s), seeded(Discriminator, s)
    z = torch.randn(4, s.latent_size, dtype=torch.float64)
    for log2_res in range(2, 6):
        res = 2**log2_res
        for alpha in (0.0, 0.3, 1.0):
            img = G(z, res=res, alpha=alpha, mixing_prob=0.9)
            assert img.shape == (4, 3, res, res)
            assert torch.isfinite(img).all()
            assert D(img, res=res, alpha=alpha).shape == (4,)


def test_fade_endpoints_are_the_lower_level():
    """alpha=0 must reproduce the level below exactly (upscaled for G, downscaled input for D)."""
    G, D = seeded(Generator, SMALL), seeded(Discriminator, SMALL)
    z = torch.randn(4, SMALL.latent_size, dtype=torch.float64)
    img = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    lower = G(z, res=8, noise="const")
    torch.testing.assert_close(G(z, res=16, alpha=0.0, noise="const"), upscale2d(lower))
    torch.testing.assert_close(D(img, res=16, alpha=0.0), D(downscale2d(img), res=8))
    mid = G(z, res=16, alpha=0.25, noise="const")
    full = G(z, res=16, noise="const")
    torch.testing.assert_close(mid, 0.75 * upscale2d(lower) + 0.25 * full)


def test_bad_level_is_rejected():
    G = seeded(Generator, SMALL)
    with pytest.raises(ValueError, match="level"):
        G(torch.randn(2, SMALL.latent_size, dtype=torch.float64), res=64)
    with pytest.raises(ValueError, match="alpha"):
        G(torch.randn(2, SMALL.latent_size, dtype=torch.float64), res=8, alpha=1.5)


# --- truncation, w average, noise, mixing --------------------------------------


def test_truncation_psi0_gives_w_avg_and_psi1_is_identity():
    G = with_noise_weights(seeded(Generator, SMALL))
    with torch.no_grad():
        G.w_avg.normal_()
    z = torch.randn(4, SMALL.latent_size, dtype=torch.float64)
    ws = G.map(z).unsqueeze(1).repeat(1, G.num_layers, 1)
    cut = G.truncate(ws, 0.0, 3)
    torch.testing.assert_close(cut[:, :3], G.w_avg.expand(4, 3, -1))
    torch.testing.assert_close(cut[:, 3:], ws[:, 3:])
    torch.testing.assert_close(G.truncate(ws, 0.0, None), G.w_avg.expand_as(ws))
    # psi=0 everywhere: every z gives the image of w_avg; psi=1: the untruncated image
    images = G(z, res=32, psi=0.0, noise="const")
    torch.testing.assert_close(images, images[:1].expand_as(images))
    avg_image = G.synthesize(G.w_avg.expand(1, G.num_layers, -1), res=32, noise="const")
    torch.testing.assert_close(images[:1], avg_image)
    torch.testing.assert_close(G(z, res=32, psi=1.0, cutoff=4, noise="const"), G.synthesize(ws, res=32, noise="const"))


def test_w_avg_tracks_batch_mean_with_beta():
    G = seeded(Generator, SMALL)
    z = torch.randn(8, SMALL.latent_size, dtype=torch.float64)
    before = G.w_avg.clone()
    G(z, res=8, update_w_avg=True)
    expected = G.map(z).mean(0) * (1 - 0.995) + before * 0.995  # SG networks_stylegan.py dlatent_avg_beta
    torch.testing.assert_close(G.w_avg, expected.detach())
    G(z, res=8)
    torch.testing.assert_close(G.w_avg, expected.detach())


@pytest.mark.parametrize("mode, deterministic", [("none", True), ("const", True), ("random", False)])
def test_noise_modes(mode, deterministic):
    G = with_noise_weights(seeded(Generator, SMALL))
    z = torch.randn(2, SMALL.latent_size, dtype=torch.float64)
    same = torch.equal(G(z, res=32, noise=mode), G(z, res=32, noise=mode))
    assert same is deterministic


def test_per_layer_noise_modes_match_zeroed_noise_weights():
    """Noise in some layers only (the paper's Fig. 5) equals a copy whose other layers' noise weights are 0."""
    G = with_noise_weights(seeded(Generator, SMALL))
    z = torch.randn(2, SMALL.latent_size, dtype=torch.float64)
    coarse = ["const"] * 4 + ["none"] * (G.num_layers - 4)
    zeroed = copy.deepcopy(G)
    with torch.no_grad():  # layers 4.. are the 16² and 32² blocks' two epilogues each
        for name, p in zeroed.named_parameters():
            if name.endswith("noise.weight") and name.startswith(("synthesis.blocks.16.", "synthesis.blocks.32.")):
                p.zero_()
    torch.testing.assert_close(G(z, res=32, noise=coarse), zeroed(z, res=32, noise="const"), rtol=0, atol=0)
    assert not torch.equal(G(z, res=32, noise=coarse), G(z, res=32, noise="const"))
    assert torch.equal(G(z, res=32, noise=["const"] * G.num_layers), G(z, res=32, noise="const"))
    with pytest.raises(ValueError, match="3 per-layer modes"):
        G(z, res=32, noise=["const"] * 3)
    with pytest.raises(ValueError, match="noise mode 'loud'"):
        G(z, res=32, noise=["loud"] * G.num_layers)


def test_noise_off_switch_removes_noise():
    G = seeded(Generator, small(use_noise=False))
    assert not any("noise" in name for name, _ in G.named_parameters())
    z = torch.randn(2, SMALL.latent_size, dtype=torch.float64)
    assert torch.equal(G(z, res=32, noise="random"), G(z, res=32, noise="random"))


def test_mixing_gives_w2_from_one_crossover_on():
    G = seeded(Generator, SMALL)
    z = torch.randn(4, SMALL.latent_size, dtype=torch.float64)
    ws = G.map(z).unsqueeze(1).repeat(1, G.num_layers, 1)
    res = 16
    active = layers_at(res)
    crossovers = set()
    for _ in range(60):
        mixed = G.mix(ws, z, res, 1.0)
        differs = (mixed != ws).any(dim=2).all(dim=0)  # per layer, all samples differ
        crossover = int(differs.float().argmax())
        assert 1 <= crossover < active
        assert not (mixed[:, :crossover] != ws[:, :crossover]).any()
        assert differs[crossover:].all()
        torch.testing.assert_close(
            mixed[:, crossover:], mixed[:, crossover : crossover + 1].expand_as(mixed[:, crossover:])
        )
        crossovers.add(crossover)
    assert crossovers == set(range(1, active))  # randint[1, active)
    assert torch.equal(G.mix(ws, z, res, 0.0), ws)


def test_ablation_switches_build_and_use_z():
    G = seeded(Generator, small(const_input=False, mapping_layers=0, use_styles=False, use_noise=False))
    assert G.synthesis.input.const is None
    z = torch.randn(2, SMALL.latent_size, dtype=torch.float64)
    torch.testing.assert_close(G.map(z), z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8))
    img = G(z, res=32)
    assert not torch.allclose(img[0], img[1])


# --- equalized learning rate -----------------------------------------------------


def expected_gain_and_lrmul(name: str) -> tuple[float, float]:
    """SG networks_stylegan.py gains: sqrt(2) before lrelu, 1 for style affines, ToRGB and D's last dense."""
    if name.startswith("mapping."):
        return math.sqrt(2), 0.01
    if name.endswith("style.affine") or name.startswith("synthesis.torgb.") or name == "head.dense1":
        return 1.0, 1.0
    if name == "synthesis.input.dense":
        return math.sqrt(2) / 4, 1.0  # SG: Progressive GAN's input dense
    return math.sqrt(2), 1.0


@pytest.mark.parametrize("changes", [{}, {"const_input": False, "fused_scale": True}])
def test_equalized_lr_scale_of_every_layer(changes):
    s = small(**changes)
    for model in (Generator(s), Discriminator(s)):
        modules = dict(model.named_modules())
        equalized = {name for name, m in modules.items() if isinstance(m, (EqualizedLinear, EqualizedConv2d))}
        for name in equalized:
            module = modules[name]
            gain, lrmul = expected_gain_and_lrmul(name)
            scale = gain / math.sqrt(module.weight[0].numel()) * lrmul  # fan_in = in * k * k
            torch.testing.assert_close(module.effective_weight(), module.weight * scale)
            if module.bias is not None:
                torch.testing.assert_close(module.effective_bias(), module.bias * lrmul)
        # no plain dense or conv weight hides anywhere: every matrix or kernel is equalized
        for name, p in model.named_parameters():
            if p.dim() >= 2 and name != "synthesis.input.const":
                assert name.rsplit(".", 1)[0] in equalized, name
        assert len(equalized) > 10


def test_equalized_layers_apply_the_scale_at_run_time():
    torch.manual_seed(0)
    dense = EqualizedLinear(64, 32, gain=1.0, lrmul=0.01).double()
    with torch.no_grad():
        dense.bias.normal_()
    x = torch.randn(5, 64, dtype=torch.float64)
    torch.testing.assert_close(dense(x), F.linear(x, dense.weight / 8 * 0.01, dense.bias * 0.01))
    assert dense.weight.std().item() == pytest.approx(100, rel=0.1)  # N(0, 1/lrmul) init
    conv = EqualizedConv2d(8, 4, 3).double()
    img = torch.randn(2, 8, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(
        conv(img), F.conv2d(img, conv.weight * math.sqrt(2) / math.sqrt(72), conv.bias, padding=1)
    )


# --- resampling convs and minibatch stddev -----------------------------------------


def test_fused_up_and_down_convs_match_plain_resample_then_conv():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, 6, dtype=torch.float64)
    up = UpConv2d(5, 7, fused=True).double()
    scaled = up.weight * math.sqrt(2) / math.sqrt(45)
    torch.testing.assert_close(up(x), F.conv2d(upscale2d(x), scaled, padding=1), rtol=0, atol=1e-12)
    down = DownConv2d(5, 7).double()
    with torch.no_grad():
        down.bias.normal_()
    scaled = down.weight * math.sqrt(2) / math.sqrt(45)
    torch.testing.assert_close(down(x), downscale2d(F.conv2d(x, scaled, down.bias, padding=1)), rtol=0, atol=1e-12)


def test_fused_and_unfused_networks_are_the_same_function():
    fused, plain = small(fused_scale=True), small(fused_scale=False)
    G1, D1 = seeded(Generator, fused), seeded(Discriminator, fused)
    G2, D2 = Generator(plain).double(), Discriminator(plain).double()
    G2.load_state_dict(G1.state_dict())
    D2.load_state_dict(D1.state_dict())
    z = torch.randn(4, SMALL.latent_size, dtype=torch.float64)
    img = G1(z, res=32, noise="const")
    torch.testing.assert_close(img, G2(z, res=32, noise="const"))
    torch.testing.assert_close(D1(img, res=32, alpha=0.5), D2(img, res=32, alpha=0.5))


@pytest.mark.parametrize("batch", [8, 2])
def test_minibatch_stddev_matches_direct_computation(batch):
    x = torch.randn(batch, 3, 4, 4, dtype=torch.float64)
    out = MinibatchStddev(group_size=4)(x)
    torch.testing.assert_close(out[:, :3], x)
    group = min(4, batch)
    groups = batch // group
    for i in range(batch):
        members = x[[j for j in range(batch) if j % groups == i % groups]]  # strided groups
        std = torch.sqrt(members.var(dim=0, unbiased=False) + 1e-8).mean()
        torch.testing.assert_close(out[i, 3], std.expand(4, 4))


def test_instance_norm_uses_eps_1e8():
    # a channel with RMS 1e-3: eps 1e-8 keeps it at unit RMS, torch's 1e-5 would shrink it ~5x (§5.4)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64) * 1e-3 + 5.0
    centred = x - x.mean(dim=(2, 3), keepdim=True)
    expected = centred / torch.sqrt(centred.square().mean(dim=(2, 3), keepdim=True) + 1e-8)
    torch.testing.assert_close(InstanceNorm()(x), expected)
    y = InstanceNorm()(x.bfloat16())
    assert y.dtype == torch.bfloat16 and torch.isfinite(y).all()


def test_minibatch_stddev_rejects_ragged_batch():
    with pytest.raises(ValueError, match="multiple"):
        MinibatchStddev(4)(torch.randn(6, 3, 4, 4))


def test_channels_last_gives_the_same_result():
    G, D = seeded(Generator, small(fused_scale=True)), seeded(Discriminator, small(fused_scale=True))
    z = torch.randn(4, SMALL.latent_size, dtype=torch.float64)
    img = G(z, res=32, alpha=0.5, noise="const")
    G.to(memory_format=torch.channels_last)
    D_logits = D(img, res=32, alpha=0.5)
    D.to(memory_format=torch.channels_last)
    torch.testing.assert_close(G(z, res=32, alpha=0.5, noise="const"), img)
    torch.testing.assert_close(D(img.contiguous(memory_format=torch.channels_last), res=32, alpha=0.5), D_logits)
