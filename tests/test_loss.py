"""The loss phases: R1 against finite differences, gamma scaling, processed reals, the logistic terms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stylegan.model.layers import at_least_fp32
from stylegan.model.networks import Discriminator, Generator, NetworkSettings
from stylegan.train.loss import StyleGANLoss, process_reals, r1_gamma, r1_penalty

TINY = NetworkSettings(
    resolution=8,
    fmap_base=32,
    fmap_max=8,
    latent_size=8,
    dlatent_size=8,
    mapping_layers=2,
    mapping_fmaps=8,
    mbstd_group_size=2,
)


@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_r1_equals_finite_differences(alpha: float) -> None:
    """R1_i = |d sum_batch D(x) / d x_i|², the gradient estimated by central differences in float64."""
    torch.manual_seed(0)
    D = Discriminator(TINY).double()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    reals = x.clone().requires_grad_(True)
    r1 = r1_penalty(D(reals, res=8, alpha=alpha), reals)

    def total(v: torch.Tensor) -> float:
        with torch.no_grad():
            return D(v, res=8, alpha=alpha).sum().item()

    h, grad = 1e-6, torch.zeros_like(x).reshape(-1)
    for i in range(grad.numel()):
        step = torch.zeros_like(grad)
        step[i] = h
        grad[i] = (total(x + step.view_as(x)) - total(x - step.view_as(x))) / (2 * h)
    expected = grad.view_as(x).square().sum(dim=(1, 2, 3))
    torch.testing.assert_close(r1, expected, rtol=1e-5, atol=1e-9)
    assert (r1 > 0).all()


def test_r1_weight_gradients_are_channels_last_and_unchanged() -> None:
    """In a channels-last D, R1's conv weight gradients arrive channels-last (not aten's transposed layout),
    and the D loss's weight gradients are bit-for-bit those without the layout fix."""
    torch.manual_seed(0)
    D = Discriminator(TINY).to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    weights = [p for name, p in D.named_parameters() if p.dim() == 4 and not name.startswith("fromrgb.4")]

    def weight_grads(fixed: bool) -> tuple[torch.Tensor, ...]:
        reals = x.clone().requires_grad_(True)
        logits = D(reals, res=8, alpha=1.0)
        if fixed:
            r1 = r1_penalty(logits, reals)
        else:  # r1_penalty without the layout fix
            (grad,) = torch.autograd.grad(logits.sum(), reals, create_graph=True)
            r1 = at_least_fp32(grad).square().sum(dim=(1, 2, 3))
        return torch.autograd.grad((F.softplus(-logits) + 5.0 * r1).mean(), weights)

    fixed, plain = weight_grads(True), weight_grads(False)
    assert len(weights) == 4  # fromrgb at 8², the 8² block's two convs, the head's conv
    for p, a, b in zip(weights, fixed, plain, strict=True):
        assert a.is_contiguous(memory_format=torch.channels_last), p.shape
        assert not b.is_contiguous(memory_format=torch.channels_last), p.shape  # what the fix is for
        assert torch.equal(a, b)


def test_gamma_follows_the_reference_scaling() -> None:
    assert r1_gamma(10, True, 8, 1024) == pytest.approx(10 / 16384)  # derived: f = 1024/8 = 128, f² = 16384
    assert r1_gamma(10, True, 1024, 1024) == 10
    assert r1_gamma(10, False, 8, 1024) == 10


def test_processed_reals_flip_and_crossfade() -> None:
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    assert torch.equal(process_reals(x, 1.0, None), x)
    flipped = process_reals(x, 1.0, torch.tensor([True, False]))
    assert torch.equal(flipped[0], x[0].flip(2)) and torch.equal(flipped[1], x[1])
    coarse = process_reals(x, 0.0, None)  # alpha 0: the lower level, box-averaged and nearest-upscaled
    torch.testing.assert_close(coarse[0, 0, :2, :2], x[0, 0, :2, :2].mean().expand(2, 2))
    torch.testing.assert_close(process_reals(x, 0.25, None), 0.75 * coarse + 0.25 * x)


def test_d_and_g_losses_are_the_logistic_terms() -> None:
    torch.manual_seed(1)
    G, D = Generator(TINY), Discriminator(TINY)
    loss = StyleGANLoss(G, D, mixing_prob=0.0)
    reals, z = torch.rand(4, 3, 8, 8) * 2 - 1, torch.randn(4, 8)
    torch.manual_seed(5)
    total, stats = loss.d_main_and_r1(reals, z, 8, 1.0, gamma=0.0)
    torch.manual_seed(5)
    with torch.no_grad():
        fake = G(z, res=8, update_w_avg=True)
    expected = (F.softplus(D(fake, res=8)) + F.softplus(-D(reals, res=8))).mean()
    torch.testing.assert_close(total, expected)
    assert stats["r1"].item() == 0
    with_r1, stats = loss.d_main_and_r1(reals, z, 8, 1.0, gamma=2.0)
    assert stats["r1"].item() > 0
    torch.manual_seed(6)
    g = loss.g_main(z, 8, 1.0)
    torch.manual_seed(6)
    with torch.no_grad():
        assert g.item() == pytest.approx(F.softplus(-D(G(z, res=8), res=8)).mean().item(), rel=1e-6)
