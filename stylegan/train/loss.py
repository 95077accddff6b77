"""The StyleGAN loss (NVlabs/stylegan `training/loss.py`) as explicit phases: real processing, G main, D main + R1.

- G: non-saturating logistic, softplus(-D(G(z))), mean over the batch.
- D: softplus(D(G(z))) + softplus(-D(x)) + gamma/2 * R1, R1 = sum over C,H,W of
  (d sum_batch D(x) / dx)², on the processed reals (x-flipped, crossfaded).
Fakes always use fresh z and style mixing; both phases update G's average w, as
SG's G_style does whenever is_training. Every loss is a per-rank batch MEAN, so
averaging gradients over ranks gives the gradient of the global-batch mean.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor

from stylegan.model.layers import at_least_fp32, downscale2d, memory_layout, upscale2d
from stylegan.model.networks import Discriminator, Generator


def process_reals(x: Tensor, alpha: float, flip: Tensor | None) -> Tensor:
    """SG process_reals at native resolution (NVlabs/stylegan `training/training_loop.py` process_reals):
    mirror, then FadeLOD.

    During a fade the reals are blended with their own lower level exactly like G's
    output, so D cannot tell real from fake by sharpness alone.
    """
    if flip is not None:
        x = torch.where(flip.reshape(-1, 1, 1, 1), x.flip(3), x)
    if alpha < 1.0:
        x = torch.lerp(upscale2d(downscale2d(x)), x, alpha)
    return x


def r1_gamma(gamma: float, match_reference: bool, resolution: int, final_resolution: int) -> float:
    """gamma at this level: x (res/R)² when matching SG, whose R1 is taken on reals upscaled to R (§3)."""
    return gamma * (resolution / final_resolution) ** 2 if match_reference else gamma


def r1_penalty(logits: Tensor, reals: Tensor) -> Tensor:
    """Per-sample R1: squared norm of d(sum of D's logits)/d(reals); reals must require grad."""
    (grad,) = torch.autograd.grad(logits.sum(), reals, create_graph=True)
    if memory_layout(reals) == torch.channels_last:
        channels_last_weight_grads(grad)
    return at_least_fp32(grad).square().sum(dim=(1, 2, 3))


CONV_DOUBLE_BACKWARD = "ConvolutionBackwardBackward0"  # autograd's node for the backward of a conv's backward
CONV_DOUBLE_BACKWARD_WEIGHT = 2  # its outputs: gradients for (grad_output, input, weight)


def channels_last_weight_grads(grad: Tensor) -> None:
    """Make every conv weight gradient of R1's double backward channels-last before autograd sums it.

    aten's convolution double backward returns the weight gradient as a transposed
    contiguous tensor (it computes it as conv(ggIᵀ, gOᵀ)ᵀ), while the first-order
    gradient of a channels-last weight is channels-last. Autograd adds the two, and an
    add of two tensors with no common inner dimension runs a strided loop: 19 ms for
    one 512x512x3x3 weight on 1 CPU thread, where the copy to channels-last costs
    about 3 (benchmarks/train.py --profile, config F, 8²). A copy changes no value,
    so the step is bit-for-bit the same. The walk visits R1's graph once per step
    (about 0.1 ms).
    """
    stack, seen = [grad.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if node.name() == CONV_DOUBLE_BACKWARD:
            node.register_hook(_weight_grad_channels_last)
        stack.extend(child for child, _ in node.next_functions)


def _weight_grad_channels_last(grad_inputs: tuple[Tensor | None, ...], _: tuple) -> tuple[Tensor | None, ...] | None:
    """Post hook of a conv double-backward node: its weight gradient, copied to channels-last where it is not."""
    i = CONV_DOUBLE_BACKWARD_WEIGHT
    weight_grad = grad_inputs[i]
    if weight_grad is None or weight_grad.is_contiguous(memory_format=torch.channels_last):
        return None
    return (*grad_inputs[:i], weight_grad.contiguous(memory_format=torch.channels_last), *grad_inputs[i + 1 :])


class StyleGANLoss:
    """Holds G, D and the loss constants; the loop calls one phase at a time and backpropagates."""

    def __init__(
        self,
        G: Generator,
        D: Discriminator,
        *,
        mixing_prob: float,
        autocast: contextlib.AbstractContextManager | None = None,
    ) -> None:
        self.G, self.D, self.mixing_prob = G, D, mixing_prob
        self.autocast = autocast or contextlib.nullcontext

    def fakes(self, z: Tensor, res: int, alpha: float) -> Tensor:
        """G(z) at the level, with mixing and the w-average update (SG `training/networks_stylegan.py` G_style)."""
        return self.G(z, res=res, alpha=alpha, mixing_prob=self.mixing_prob, update_w_avg=True)

    def g_main(self, z: Tensor, res: int, alpha: float) -> Tensor:
        """G phase: mean softplus(-D(G(z)))."""
        with self.autocast():
            logits = self.D(self.fakes(z, res, alpha), res=res, alpha=alpha)
        return F.softplus(-logits.float()).mean()

    def d_main_and_r1(
        self, reals: Tensor, z: Tensor, res: int, alpha: float, gamma: float
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """D phase, one graph as SG: softplus(D(fake)) + softplus(-D(real)) + gamma/2 * R1.

        R1 reuses the logits of the real pass, so reals go through D once. With
        gamma 0 the double backward is skipped entirely.
        """
        with torch.no_grad(), self.autocast():
            fake = self.fakes(z, res, alpha)
        reals = reals.detach().requires_grad_(gamma > 0)
        with self.autocast():
            fake_logits = self.D(fake, res=res, alpha=alpha)
            real_logits = self.D(reals, res=res, alpha=alpha)
        loss = F.softplus(fake_logits.float()) + F.softplus(-real_logits.float())
        r1 = r1_penalty(real_logits, reals) if gamma > 0 else torch.zeros_like(loss)
        loss = (loss + gamma * 0.5 * r1).mean()
        stats = {
            "loss_d": loss.detach(),
            "r1": r1.detach().mean(),
            "real_score": real_logits.detach().float().mean(),
            "fake_score": fake_logits.detach().float().mean(),
        }
        return loss, stats
