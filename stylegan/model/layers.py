"""StyleGAN's primitive layers, each small, with its constants visible when printed.

Every constant comes from NVlabs/stylegan (SG) `training/networks_stylegan.py`;
the deviations of other ports that these layers deliberately avoid are those of
rosinality/style-based-gan-pytorch (ROS) `model.py`. Weights keep SG's raw-parameter convention
(N(0, 1/lrmul) at init, scaled at run time) so that the optimiser sees the same
parameter space as the reference and Adam behaves the same.

All ops work with `torch.channels_last` inputs: only conv, pooling, interpolate,
element-wise ops and `reshape` (never `view`) are used.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SQRT2 = math.sqrt(2.0)  # SG networks_stylegan.py (gain): every layer followed by lrelu
LRELU_SLOPE = 0.2  # SG networks_stylegan.py leaky_relu alpha
NORM_EPS = 1e-8  # SG networks_stylegan.py pixel_norm, instance_norm; not torch's 1e-5 (ROS's InstanceNorm2d)


def at_least_fp32(x: Tensor) -> Tensor:
    """Upcast half precision for statistics (SG computes norms and mbstd in fp32); keep fp64 as is."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class EqualizedLinear(nn.Module):
    """Dense layer with equalized learning rate.

    The parameter is stored as N(0, 1/lrmul) and multiplied at run time by
    gain/sqrt(fan_in)*lrmul (SG networks_stylegan.py `get_weight`): every weight then gets
    the same effective Adam step size, and lrmul slows the mapping network down.
    """

    def __init__(
        self, in_features: int, out_features: int, *, gain: float = SQRT2, lrmul: float = 1.0, bias: bool = True
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.gain, self.lrmul = gain, lrmul
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lrmul)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.weight_scale = gain / math.sqrt(in_features) * lrmul

    def effective_weight(self) -> Tensor:
        return self.weight * self.weight_scale

    def effective_bias(self) -> Tensor | None:
        if self.bias is None or self.lrmul == 1:
            return self.bias  # x1 is exact: no op
        return self.bias * self.lrmul

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.effective_weight(), self.effective_bias())

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}->{self.out_features}, gain={self.gain:.4g}, "
            f"lrmul={self.lrmul:g}, bias={self.bias is not None}"
        )


class EqualizedConv2d(nn.Module):
    """Stride-1 'same' convolution with equalized learning rate (see EqualizedLinear)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, *, gain: float = SQRT2, bias: bool = True
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.gain, self.lrmul = gain, 1.0
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)

    def effective_weight(self) -> Tensor:
        return self.weight * self.weight_scale

    def effective_bias(self) -> Tensor | None:
        return self.bias  # lrmul is 1 for every conv in StyleGAN

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.effective_weight(), self.effective_bias(), padding=self.kernel_size // 2)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}->{self.out_channels}, kernel={self.kernel_size}, "
            f"gain={self.gain:.4g}, bias={self.bias is not None}"
        )


def _pairwise_sum_4x4(w: Tensor) -> Tensor:
    """Pad a 3x3 kernel to 5x5 and sum its 4 shifted 4x4 windows (SG networks_stylegan.py, fused resampling)."""
    w = F.pad(w, (1, 1, 1, 1))
    return w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]


class UpConv2d(EqualizedConv2d):
    """Nearest 2x upscale followed by a 3x3 conv, optionally fused into one transposed conv.

    Fused, the padded 4-way SUM of the kernel (no x0.25, SG networks_stylegan.py `upscale2d_conv2d`;
    ROS's FusedUpsample divides by 4)
    feeds a stride-2 `conv_transpose2d`: 16 multiply-adds per input pixel and channel pair instead of 36.
    [derived] A transposed conv applies its kernel rotated by 180 degrees, so the
    kernel is flipped before summing: fused and unfused compute the same function
    of the same weights, and `fused` is a pure speed switch. (SG does not flip, so
    SG's fused layers equal up+conv with the kernel rotated; importing SG weights
    for a fused layer needs `weight.flip(2, 3)`.) No bias: SG adds it after the blur.
    """

    def __init__(self, in_channels: int, out_channels: int, *, fused: bool, gain: float = SQRT2) -> None:
        super().__init__(in_channels, out_channels, 3, gain=gain, bias=False)
        self.fused = fused

    def forward(self, x: Tensor) -> Tensor:
        if not self.fused:
            return super().forward(upscale2d(x))
        kernel = _pairwise_sum_4x4(self.effective_weight().flip(2, 3))
        return F.conv_transpose2d(x, kernel.transpose(0, 1), stride=2, padding=1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, up=2, fused={self.fused}"


class DownConv2d(EqualizedConv2d):
    """A 3x3 conv then a 2x2 box downscale (SG networks_stylegan.py `conv2d_downscale2d`), at a quarter of the FLOPs.

    [derived] Both steps are linear and shift-invariant, so they commute: the box
    average of the conv's outputs equals a stride-2 conv over the 2x2 box average
    (stride 1) of the zero-padded input. One `avg_pool2d` (zero padding counted, so
    always /4) then a stride-2 3x3 conv: 9/4 multiply-adds per input pixel and channel
    pair, where conv-then-pool (SG below 128²) costs 9 and SG's fused 4x4 stride-2
    conv (from 128²) costs 4 plus a kernel rebuilt from the weights on every call.
    The same function of the same weights at every resolution; only rounding
    differs. Measured in `benchmarks/train.py`.
    """

    def __init__(self, in_channels: int, out_channels: int, *, gain: float = SQRT2) -> None:
        super().__init__(in_channels, out_channels, 3, gain=gain, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        boxed = F.avg_pool2d(x, 2, stride=1, padding=1)
        return F.conv2d(boxed, self.effective_weight(), self.effective_bias(), stride=2)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, down=2 (box, then stride-2 conv)"


def upscale2d(x: Tensor) -> Tensor:
    """Nearest-neighbour 2x upscale (SG networks_stylegan.py `upscale2d`: tile)."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def downscale2d(x: Tensor) -> Tensor:
    """2x2 box average (SG networks_stylegan.py `downscale2d`)."""
    return F.avg_pool2d(x, 2)


class _DepthwiseFilter(torch.autograd.Function):
    """A depthwise 'same' filter whose gradient is the same filter flipped, and so on to any order.

    SG networks_stylegan.py `blur2d` gives its blur this custom gradient so that R1's
    double backward is one more blur. Autograd's own double backward of a grouped
    conv runs one small convolution per channel group plus a weight-gradient
    convolution nobody needs; here every order is one depthwise conv.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor, kernel: Tensor, flipped: Tensor) -> Tensor:
        ctx.save_for_backward(kernel, flipped)
        return F.conv2d(x, kernel, padding=kernel.shape[-1] // 2, groups=x.shape[1])

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor, None, None]:
        kernel, flipped = (k.to(grad.dtype) for k in ctx.saved_tensors)  # bf16 autocast: grads may be bf16
        return _DepthwiseFilter.apply(grad, flipped, kernel), None, None


class Blur(nn.Module):
    """Depthwise [1,2,1]x[1,2,1]/16 binomial filter, 'same' padding (SG networks_stylegan.py `blur2d`)."""

    def __init__(self) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(taps, taps)
        self.register_buffer("kernel", (kernel / kernel.sum())[None, None], persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        kernel = self.kernel.to(x.dtype).expand(x.shape[1], 1, 3, 3)
        return _DepthwiseFilter.apply(x, kernel, kernel.flip(2, 3))

    def extra_repr(self) -> str:
        return "taps=[1,2,1]"


class PixelNorm(nn.Module):
    """Normalise each feature vector to unit RMS over channels (SG networks_stylegan.py `pixel_norm`)."""

    def __init__(self, eps: float = NORM_EPS) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}"


class InstanceNorm(nn.Module):
    """Per-sample, per-channel zero mean and unit RMS over H,W, computed in fp32.

    eps 1e-8, not nn.InstanceNorm2d's 1e-5 (SG networks_stylegan.py `instance_norm`; ROS used the torch default):
    (x - mean) / sqrt(mean((x - mean)²) + eps) is torch's instance norm without running statistics
    or affine, one kernel forward and backward instead of seven element-wise ops. fp32 so
    that bf16 autocast cannot lose the small variances of early layers.
    """

    def __init__(self, eps: float = NORM_EPS) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        y = F.instance_norm(at_least_fp32(x), eps=self.eps)
        return y.to(x.dtype).contiguous(memory_format=memory_layout(x))

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}, fp32"


def memory_layout(x: Tensor) -> torch.memory_format:
    """The memory format of `x`: ops that return NCHW must not switch a channels-last network's layout."""
    channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if channels_last else torch.contiguous_format


NOISE_MODES = ("random", "const", "none")


class NoiseInjection(nn.Module):
    """Add one single-channel N(0,1) image, scaled per channel (SG networks_stylegan.py `layer_epilogue`, step 1).

    The per-channel weight starts at 0 and has no wscale (§5.1: not ROS's equal_lr).
    Mode "random" draws fresh noise per call, "const" uses the stored buffer (SG's
    non-trainable `noise{i}`, used when `randomize_noise=False`), "none" adds nothing.
    """

    def __init__(self, channels: int, resolution: int) -> None:
        super().__init__()
        self.channels, self.resolution = channels, resolution
        self.weight = nn.Parameter(torch.zeros(channels))
        self.register_buffer("const_noise", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: Tensor, mode: str) -> Tensor:
        if mode == "none":
            return x
        if mode == "const":
            noise = self.const_noise.to(x.dtype)
        elif mode == "random":
            n, _, h, w = x.shape
            noise = torch.randn(n, 1, h, w, device=x.device, dtype=x.dtype)
        else:
            raise ValueError(f"noise mode {mode!r}: expected one of {NOISE_MODES}")
        return torch.addcmul(x, noise, self.weight.to(x.dtype).reshape(1, -1, 1, 1))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, resolution={self.resolution}"


class StyleMod(nn.Module):
    """AdaIN's modulation: x*(ys+1) + yb from a learned affine of w (SG networks_stylegan.py `style_mod`, gain 1)."""

    def __init__(self, dlatent_size: int, channels: int) -> None:
        super().__init__()
        self.affine = EqualizedLinear(dlatent_size, 2 * channels, gain=1.0)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        style = self.affine(w).reshape(w.shape[0], 2, -1, 1, 1).to(x.dtype)
        return torch.addcmul(style[:, 1], x, style[:, 0] + 1)


class MinibatchStddev(nn.Module):
    """Append the mean over C,H,W of the per-group stddev as one feature map
    (SG networks_stylegan.py `minibatch_stddev_layer`).

    Groups are strided (sample i is in group i mod N/G), G = min(group_size, N),
    and the statistics run in fp32 as in SG; ROS's whole-batch variant (§5.9) is
    a different regulariser.
    """

    def __init__(self, group_size: int = 4, num_new_features: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_new_features = group_size, num_new_features

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        group = min(self.group_size, n)
        if n % group:
            raise ValueError(f"minibatch stddev: batch {n} is not a multiple of the group size {group}")
        f = self.num_new_features
        y = at_least_fp32(x).reshape(group, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = torch.sqrt(y.square().mean(dim=0) + 1e-8)  # SG minibatch_stddev_layer: sqrt(var + 1e-8)
        y = y.mean(dim=(2, 3, 4)).reshape(-1, f, 1, 1)
        y = y.repeat(group, 1, h, w).to(x.dtype)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_new_features={self.num_new_features}"
