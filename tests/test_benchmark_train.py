"""The training benchmark's reference step computes what ours computes: every speed change kept the maths.

`benchmarks/train.py` restates each layer's old formulation (grouped-conv blur,
conv-then-pool down-convs, the x1 bias multiply, element-wise instance norm,
multiply-then-add noise and styles). In float64 the two networks must agree to
rounding in G's images, D's logits and the gradients of D's loss with R1, so a ratio
in its table compares two ways of doing the same sums.
"""

from __future__ import annotations

import copy
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stylegan.model.networks import Discriminator, Generator, NetworkSettings
from stylegan.train.loss import StyleGANLoss

REPO = Path(__file__).resolve().parents[1]


def benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_train", REPO / "benchmarks" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("res", [16, 128])  # 128: SG's fused down-conv, the kernel rebuilt per call
def test_the_reference_step_is_the_same_function(res: int) -> None:
    bench = benchmark()
    s = NetworkSettings(resolution=res, fmap_base=64, fmap_max=16, latent_size=16, dlatent_size=16, mapping_fmaps=16)
    torch.manual_seed(0)
    G, D = Generator(s).double(), Discriminator(s).double()
    G_ref, D_ref = copy.deepcopy(G), copy.deepcopy(D)
    bench.restate(G_ref), bench.restate(D_ref)
    restated = {type(m).__name__ for m in [*G_ref.modules(), *D_ref.modules()]}
    assert {"GroupedConvBlur", "SGDownConv2d", "ElementwiseInstanceNorm", "MulAddNoise", "MulAddStyle"} <= restated
    z, reals = torch.randn(4, 16, dtype=torch.float64), torch.rand(4, 3, res, res, dtype=torch.float64)

    def d_loss(G: Generator, D: Discriminator) -> tuple[torch.Tensor, list[torch.Tensor]]:
        torch.manual_seed(1)  # the same noise and mixing draws for both
        images = G(z, res=res, mixing_prob=0.9)
        loss, _ = StyleGANLoss(G, D, mixing_prob=0.9).d_main_and_r1(reals, z, res, 1.0, 10.0)
        D.zero_grad(set_to_none=True)
        loss.backward()
        return images, [q.grad for q in D.parameters()]

    (ours, grads), (theirs, ref_grads) = d_loss(G, D), d_loss(G_ref, D_ref)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    for g, g_ref in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, g_ref, rtol=1e-10, atol=1e-12)


def test_the_benchmark_prints_a_ratio_row() -> None:
    args = ["--widths", "demo", "--resolutions", "8", "--batch", "4", "--threads", "1", "--iters", "1"]
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "train.py"), *args], capture_output=True, text=True, check=True
    ).stdout
    row = out.strip().splitlines()[-1].split()
    assert row[:4] == ["demo", "8", "4", "1"] and float(row[-1]) > 0
