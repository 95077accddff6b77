"""StyleGAN's generator and discriminator (the paper's configuration F), with progressive growing.

Architecture and constants: NVlabs/stylegan (SG) `training/networks_stylegan.py`;
the pitfalls of other ports that this module avoids are those of
rosinality/style-based-gan-pytorch (ROS) `model.py`. Unlike SG, both networks run
at the native resolution of the current level (SG upscales every image to the
final resolution), which is cheaper; the training loss rescales R1's gamma to
compensate (derived against SG `training/loss.py`: see `LossSettings` in
`stylegan/train/config.py`).

The paper's ablations are switches in `NetworkSettings` (plus `mixing_prob`,
passed at call time). Table 1 of the paper, FFHQ rows:

- A, Progressive GAN baseline: ``const_input=False, mapping_layers=0,
  use_styles=False, use_noise=False``, mixing 0. (A also used WGAN-GP and
  nearest filtering: that is the loss's business, and the blur is always on here.)
- B, tuned baseline: the same switches as A; B differs from A only in training
  (bilinear filtering, R1 loss, longer schedule), all of which this code does.
- C, + mapping and styles: ``const_input=False, mapping_layers=8, use_styles=True,
  use_noise=False``.
- D, + constant input: C with ``const_input=True``.
- E, + noise inputs: D with ``use_noise=True``.
- F, + mixing regularisation: E trained with ``mixing_prob=0.9`` (the defaults).

Table 4 ("traditional 0/8", "style-based 0/1/2/8"): ``mapping_layers`` set to the
depth, with the B switches (traditional) or the F switches (style-based).
With styles off each AdaIN becomes Progressive GAN's pixel norm, as in
that baseline; ``mapping_layers=0`` means w is the pixel-normalised z.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from stylegan.errors import StageError
from stylegan.model.layers import (
    LRELU_SLOPE,
    NOISE_MODES,
    SQRT2,
    Blur,
    DownConv2d,
    EqualizedConv2d,
    EqualizedLinear,
    InstanceNorm,
    MinibatchStddev,
    NoiseInjection,
    PixelNorm,
    StyleMod,
    UpConv2d,
    downscale2d,
    upscale2d,
)
from stylegan.settings import setting

FUSED_MIN_RESOLUTION = 128  # SG networks_stylegan.py: fused_scale='auto' fuses outputs (G) / inputs (D) >= 128


@dataclass(frozen=True)
class NetworkSettings:
    """Hyper-parameters of G and D (config: ``train.network``); defaults are config F at 1024²."""

    resolution: int = setting(
        1024, "final resolution R; the shards need every level from the initial one up to R", pow2=True, ge=8, le=1024
    )
    fmap_base: int = setting(
        8192,
        "feature maps at a stage: min(fmap_base / 2**(stage*fmap_decay), fmap_max) (SG networks_stylegan.py nf)",
        ge=1,
    )
    fmap_decay: float = setting(1.0, "feature maps halve per stage at 1.0", ge=0)
    fmap_max: int = setting(512, "most feature maps of any layer", ge=1)
    latent_size: int = setting(512, "size of z (SG networks_stylegan.py G_mapping)", ge=1)
    dlatent_size: int = setting(512, "size of w", ge=1)
    mapping_layers: int = setting(8, "mapping network depth (Table 4: 0, 1, 2, 8)", ge=0, le=8)
    mapping_lrmul: float = setting(0.01, "learning-rate multiplier of the mapping layers", gt=0)
    mapping_fmaps: int = setting(512, "width of the mapping network", ge=1)
    const_input: bool = setting(True, "learned 4x4 constant; false: w through a dense layer (Table 1 rows A-C)")
    use_styles: bool = setting(True, "AdaIN styles; false: pixel norm (Table 1 rows A-B)")
    use_noise: bool = setting(True, "per-layer noise inputs (Table 1 row E)")
    truncation_psi: float = setting(0.7, "generation default psi (SG networks_stylegan.py G_style)", ge=0, le=1)
    truncation_cutoff: int = setting(8, "generation: truncate layers below this", ge=0)
    w_avg_beta: float = setting(0.995, "decay of the running average of w", ge=0, le=1)
    mbstd_group_size: int = setting(
        4,
        "minibatch stddev group (SG networks_stylegan.py minibatch_stddev_layer); "
        "each process's batch must be a multiple; 1 leaves the layer out",
        ge=1,
    )
    fused_scale: bool | None = setting(
        None,
        "G's fused up-convolutions (one transposed conv); null: at >= 128 as the reference (fused_scale='auto'). "
        "D's down-convolutions are always a 2x2 box then a stride-2 conv, the same function",
    )

    def __post_init__(self) -> None:
        log2 = math.log2(self.resolution) if self.resolution > 0 else 0.0
        if self.resolution < 8 or log2 != int(log2):  # direct construction too (`stylegan summary --resolution`)
            raise StageError(f"train.network.resolution: {self.resolution} is not a power of two >= 8")
        if self.mapping_layers == 0 and self.latent_size != self.dlatent_size:
            raise StageError("train.network: mapping_layers 0 (w = normalised z) needs latent_size == dlatent_size")
        if self.const_input and not self.use_styles:
            raise StageError(
                "train.network: const_input without use_styles gives G no way to see z; "
                "set const_input false (Table 1 rows A/B) or use_styles true"
            )

    @property
    def log2_resolution(self) -> int:
        return int(math.log2(self.resolution))

    @property
    def num_layers(self) -> int:
        """Synthesis layers, two per resolution from 4² to R² (18 at 1024²)."""
        return 2 * self.log2_resolution - 2

    def nf(self, stage: int) -> int:
        """Feature maps at a stage; a layer at resolution 2^r uses nf(r-1) (SG networks_stylegan.py nf)."""
        return min(int(self.fmap_base / 2.0 ** (stage * self.fmap_decay)), self.fmap_max)

    def fused(self, resolution: int) -> bool:
        """Whether G's up-convolution to this resolution is the fused transposed conv (the same function either way)."""
        return resolution >= FUSED_MIN_RESOLUTION if self.fused_scale is None else self.fused_scale


def layers_at(res: int) -> int:
    """Synthesis layers active when the output resolution is `res`."""
    return 2 * int(math.log2(res)) - 2


def noise_modes(noise: str | Sequence[str], num_layers: int) -> tuple[str, ...]:
    """One noise mode per synthesis layer, from one mode for all or a per-layer sequence."""
    modes = (noise,) * num_layers if isinstance(noise, str) else tuple(noise)
    if len(modes) != num_layers:
        raise ValueError(f"noise: {len(modes)} per-layer modes for a generator of {num_layers} layers")
    for mode in modes:
        if mode not in NOISE_MODES:
            raise ValueError(f"noise mode {mode!r}: expected one of {NOISE_MODES}")
    return modes


def _check_level(s: NetworkSettings, res: int, alpha: float) -> int:
    """log2(res), after checking that `res` is one of the model's levels and alpha is in [0,1]."""
    if res < 4 or res > s.resolution or res & (res - 1):
        raise ValueError(f"resolution {res} is not a level of this {s.resolution}² model (4 ... {s.resolution})")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha {alpha} is outside [0, 1]")
    return int(math.log2(res))


# --- generator ---------------------------------------------------------------


class MappingNetwork(nn.Module):
    """z -> w: pixel-norm of z, then `mapping_layers` x (dense, lrelu) with lrmul 0.01
    (SG networks_stylegan.py G_mapping)."""

    def __init__(self, s: NetworkSettings) -> None:
        super().__init__()
        self.normalize = PixelNorm()
        layers: list[nn.Module] = []
        width = s.latent_size
        for i in range(s.mapping_layers):
            out = s.dlatent_size if i == s.mapping_layers - 1 else s.mapping_fmaps
            layers += [EqualizedLinear(width, out, gain=SQRT2, lrmul=s.mapping_lrmul), nn.LeakyReLU(LRELU_SLOPE)]
            width = out
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.normalize(z))


class LayerEpilogue(nn.Module):
    """After each synthesis conv, in SG's exact order: noise, bias, lrelu, norm, style
    (SG networks_stylegan.py layer_epilogue).

    The norm is instance norm with styles (AdaIN = instance norm + StyleMod) and
    Progressive GAN's pixel norm without them.
    """

    def __init__(self, s: NetworkSettings, channels: int, resolution: int) -> None:
        super().__init__()
        self.noise = NoiseInjection(channels, resolution) if s.use_noise else None
        self.bias = nn.Parameter(torch.zeros(channels))
        self.act = nn.LeakyReLU(LRELU_SLOPE)
        self.norm = InstanceNorm() if s.use_styles else PixelNorm()
        self.style = StyleMod(s.dlatent_size, channels) if s.use_styles else None

    def forward(self, x: Tensor, w: Tensor, noise: str) -> Tensor:
        if self.noise is not None:
            x = self.noise(x, noise)
        x = self.norm(self.act(x + self.bias.to(x.dtype).reshape(1, -1, 1, 1)))
        return x if self.style is None else self.style(x, w)

    def extra_repr(self) -> str:
        return f"bias={self.bias.numel()}"


class InputBlock(nn.Module):
    """4x4: the learned constant (ones) or the traditional dense of w, then epilogue, conv, epilogue."""

    def __init__(self, s: NetworkSettings) -> None:
        super().__init__()
        channels = s.nf(1)
        if s.const_input:
            self.const = nn.Parameter(
                torch.ones(1, channels, 4, 4)
            )  # SG networks_stylegan.py: ones, not randn (ROS's model.py)
            self.dense = None
        else:
            self.const = None
            # SG G_synthesis `Dense`: gain sqrt(2)/4 "to match Progressive GAN", bias in the epilogue
            self.dense = EqualizedLinear(s.dlatent_size, channels * 16, gain=SQRT2 / 4, bias=False)
        self.epilogue0 = LayerEpilogue(s, channels, 4)
        self.conv = EqualizedConv2d(channels, channels, 3, bias=False)
        self.epilogue1 = LayerEpilogue(s, channels, 4)

    def forward(self, ws: Tensor, noise: Sequence[str]) -> Tensor:
        if self.const is not None:
            x = self.const.to(ws.dtype).expand(ws.shape[0], -1, -1, -1)
        else:
            x = self.dense(ws[:, 0]).reshape(ws.shape[0], -1, 4, 4)
        x = self.epilogue0(x, ws[:, 0], noise[0])
        return self.epilogue1(self.conv(x), ws[:, 1], noise[1])

    def extra_repr(self) -> str:
        return "input=dense(w)" if self.const is None else f"const={list(self.const.shape)} (ones)"


class SynthesisBlock(nn.Module):
    """One doubling: up-conv, blur, epilogue, conv, epilogue; bias after the blur
    (SG networks_stylegan.py; ROS adds it before)."""

    def __init__(self, s: NetworkSettings, resolution: int) -> None:
        super().__init__()
        r = int(math.log2(resolution))
        self.resolution = resolution
        self.conv0_up = UpConv2d(s.nf(r - 2), s.nf(r - 1), fused=s.fused(resolution))
        self.blur = Blur()
        self.epilogue0 = LayerEpilogue(s, s.nf(r - 1), resolution)
        self.conv1 = EqualizedConv2d(s.nf(r - 1), s.nf(r - 1), 3, bias=False)
        self.epilogue1 = LayerEpilogue(s, s.nf(r - 1), resolution)

    def forward(self, x: Tensor, w0: Tensor, w1: Tensor, noise: Sequence[str]) -> Tensor:
        x = self.epilogue0(self.blur(self.conv0_up(x)), w0, noise[0])
        return self.epilogue1(self.conv1(x), w1, noise[1])

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}"


class SynthesisNetwork(nn.Module):
    """ws [N, num_layers, dlatent] -> image at a level, with ToRGB at every level for the fade."""

    def __init__(self, s: NetworkSettings) -> None:
        super().__init__()
        self.settings = s
        self.input = InputBlock(s)
        self.blocks = nn.ModuleDict({str(2**r): SynthesisBlock(s, 2**r) for r in range(3, s.log2_resolution + 1)})
        # SG networks_stylegan.py torgb: 1x1, gain 1, bias, no activation; one per level
        self.torgb = nn.ModuleDict(
            {str(2**r): EqualizedConv2d(s.nf(r - 1), 3, 1, gain=1.0) for r in range(2, s.log2_resolution + 1)}
        )

    def forward(self, ws: Tensor, *, res: int, alpha: float = 1.0, noise: str | Sequence[str] = "random") -> Tensor:
        """`noise` is one mode for every layer, or one per synthesis layer (the paper's Fig. 5)."""
        log2_res = _check_level(self.settings, res, alpha)
        modes = noise_modes(noise, self.settings.num_layers)
        x = self.input(ws, modes[0:2])
        previous = x
        for r in range(3, log2_res + 1):
            previous = x
            x = self.blocks[str(2**r)](x, ws[:, 2 * r - 4], ws[:, 2 * r - 3], modes[2 * r - 4 : 2 * r - 2])
        image = self.torgb[str(res)](x)
        if alpha < 1.0 and log2_res > 2:  # SG networks_stylegan.py progressive blend: alpha = 1 - frac(lod)
            image = torch.lerp(upscale2d(self.torgb[str(res // 2)](previous)), image, alpha)
        return image


class Generator(nn.Module):
    """G = mapping + synthesis, with the running average of w, style mixing and truncation in W.

    Style mixing follows SG's G_style (`training/networks_stylegan.py`): with probability
    `mixing_prob` the WHOLE minibatch mixes (not each image, as the paper's "a given
    percentage of images" suggests), at one crossover drawn from randint[1, L), L
    the layers active at `res`: layers before it take w1, the rest w2. Quirk kept:
    the crossover never equals L, so a mixing step always gives w2 to at least the
    last active layer. Derived from SG's arithmetic: a fading block does not always
    get w2 (during a fade to res, lod = log2(R/res) + 1 - alpha truncates to
    log2(R/res), so L counts the fading block), and neither does it here.
    """

    def __init__(self, s: NetworkSettings) -> None:
        super().__init__()
        self.settings = s
        self.num_layers = s.num_layers
        self.mapping = MappingNetwork(s)
        self.synthesis = SynthesisNetwork(s)
        self.register_buffer("w_avg", torch.zeros(s.dlatent_size))  # SG dlatent_avg starts at zeros

    def map(self, z: Tensor) -> Tensor:
        """[N, latent] -> w [N, dlatent]."""
        return self.mapping(z)

    def forward(
        self,
        z: Tensor,
        *,
        res: int,
        alpha: float = 1.0,
        mixing_prob: float = 0.0,
        psi: float = 1.0,
        cutoff: int | None = None,
        noise: str | Sequence[str] = "random",
        update_w_avg: bool = False,
    ) -> Tensor:
        """Image [N,3,res,res] from z. `cutoff` None truncates every layer; psi=1 disables truncation."""
        w = self.map(z)
        if update_w_avg:
            self.update_w_avg(w)
        ws = w.unsqueeze(1).repeat(1, self.num_layers, 1)
        if mixing_prob > 0.0:
            ws = self.mix(ws, z, res, mixing_prob)
        if psi != 1.0:
            ws = self.truncate(ws, psi, cutoff)
        return self.synthesis(ws, res=res, alpha=alpha, noise=noise)

    def synthesize(self, ws: Tensor, *, res: int, alpha: float = 1.0, noise: str | Sequence[str] = "random") -> Tensor:
        """Image from per-layer ws [N, num_layers, dlatent] (for mixing grids and path-length metrics)."""
        return self.synthesis(ws, res=res, alpha=alpha, noise=noise)

    @torch.no_grad()
    def update_w_avg(self, w: Tensor) -> None:
        """dlatent_avg = lerp(mean_batch(w), dlatent_avg, beta) (SG networks_stylegan.py G_style)."""
        self.w_avg.copy_(torch.lerp(w.detach().mean(dim=0).to(self.w_avg.dtype), self.w_avg, self.settings.w_avg_beta))

    def mix(self, ws: Tensor, z: Tensor, res: int, mixing_prob: float) -> Tensor:
        """Style mixing regularisation: one crossover for the whole minibatch (see the class docstring)."""
        active = layers_at(res)
        if active < 2 or torch.rand(()).item() >= mixing_prob:
            return ws
        crossover = int(torch.randint(1, active, ()).item())
        w2 = self.map(torch.randn_like(z))
        layer = torch.arange(self.num_layers, device=ws.device).reshape(1, -1, 1)
        return torch.where(layer < crossover, ws, w2.unsqueeze(1))

    def truncate(self, ws: Tensor, psi: float, cutoff: int | None) -> Tensor:
        """lerp(w_avg, w, psi) on layers < cutoff (all layers when None); SG networks_stylegan.py G_style truncation."""
        layers = self.num_layers if cutoff is None else cutoff
        layer = torch.arange(self.num_layers, device=ws.device).reshape(1, -1, 1)
        truncated = torch.lerp(self.w_avg.to(ws.dtype), ws, psi)
        return torch.where(layer < layers, truncated, ws)


# --- discriminator -----------------------------------------------------------


class FromRGB(nn.Module):
    """1x1 conv from RGB to nf(r-1) features, bias, lrelu
    (SG networks_stylegan.py fromrgb; rosinality/style-based-gan-pytorch#33)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = EqualizedConv2d(3, channels, 1)
        self.act = nn.LeakyReLU(LRELU_SLOPE)

    def forward(self, img: Tensor) -> Tensor:
        return self.act(self.conv(img))


class DiscriminatorBlock(nn.Module):
    """Conv0 nf(r-1)->nf(r-1), then blur and Conv1_down nf(r-1)->nf(r-2)
    (SG networks_stylegan.py D_basic, not ROS's ConvBlock(in, out))."""

    def __init__(self, s: NetworkSettings, resolution: int) -> None:
        super().__init__()
        r = int(math.log2(resolution))
        self.resolution = resolution
        self.conv0 = EqualizedConv2d(s.nf(r - 1), s.nf(r - 1), 3)
        self.blur = Blur()
        self.conv1_down = DownConv2d(s.nf(r - 1), s.nf(r - 2))
        self.act = nn.LeakyReLU(LRELU_SLOPE)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.conv0(x))
        return self.act(self.conv1_down(self.blur(x)))

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}"


class DiscriminatorHead(nn.Module):
    """4x4: minibatch stddev, conv 3x3, dense to nf(0), dense to one logit with gain 1
    (SG networks_stylegan.py D_basic).

    A group size of 1 leaves the stddev layer out, as SG's D_basic adds it only when
    mbstd_group_size > 1 (the attribute classifiers are D without it).
    """

    def __init__(self, s: NetworkSettings) -> None:
        super().__init__()
        self.mbstd = MinibatchStddev(s.mbstd_group_size) if s.mbstd_group_size > 1 else nn.Identity()
        self.conv = EqualizedConv2d(s.nf(1) + (s.mbstd_group_size > 1), s.nf(1), 3)
        self.dense0 = EqualizedLinear(s.nf(1) * 16, s.nf(0))
        self.dense1 = EqualizedLinear(s.nf(0), 1, gain=1.0)
        self.act = nn.LeakyReLU(LRELU_SLOPE)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.conv(self.mbstd(x)))
        x = self.act(self.dense0(x.flatten(1)))  # NCHW flatten order, as SG's Dense0
        return self.dense1(x).squeeze(1)


class Discriminator(nn.Module):
    """D: FromRGB at the current level, blocks down to 4x4, and the fade from the level below."""

    def __init__(self, s: NetworkSettings) -> None:
        super().__init__()
        self.settings = s
        self.fromrgb = nn.ModuleDict({str(2**r): FromRGB(s.nf(r - 1)) for r in range(2, s.log2_resolution + 1)})
        self.blocks = nn.ModuleDict({str(2**r): DiscriminatorBlock(s, 2**r) for r in range(s.log2_resolution, 2, -1)})
        self.head = DiscriminatorHead(s)

    def forward(self, img: Tensor, *, res: int, alpha: float = 1.0) -> Tensor:
        """Logits [N] for images [N,3,res,res]; alpha weights the newest level during a fade."""
        log2_res = _check_level(self.settings, res, alpha)
        if img.shape[-2:] != (res, res):
            raise ValueError(f"discriminator at {res}²: got images of shape {tuple(img.shape)}")
        x = self.fromrgb[str(res)](img)
        for r in range(log2_res, 2, -1):
            x = self.blocks[str(2**r)](x)
            if (
                r == log2_res and alpha < 1.0
            ):  # SG networks_stylegan.py D_basic blend: lerp(fromrgb(downscale), block, alpha)
                x = torch.lerp(self.fromrgb[str(res // 2)](downscale2d(img)), x, alpha)
        return self.head(x)
