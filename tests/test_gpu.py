"""The GPU suite (`pytest -m gpu`): CUDA against the CPU, training, resume, torchrun, the speed flags, PPL.

Skipped without CUDA. On a GPU machine, `bash benchmarks/gpu_check.sh` runs it with
the GPU benchmarks. TF32 is off wherever CUDA is held to the CPU: its 10-bit
mantissa (about 1e-3 relative) is a speed switch for training, not float32.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from stylegan import settings
from stylegan.distributed import Dist
from stylegan.model.networks import Discriminator, Generator, NetworkSettings
from stylegan.model.schedule import Level
from stylegan.train.config import TrainSettings
from stylegan.train.loop import Batch, new_loss, new_state, step
from stylegan.train.loss import r1_penalty
from tests.training import (
    REPO,
    assert_same_networks,
    command,
    dense,
    final_state,
    train,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="no CUDA device: the GPU suite needs one (bash benchmarks/gpu_check.sh on a GPU machine)",
    ),
]

SMALL = {
    "resolution": 32,
    "fmap_base": 512,
    "fmap_max": 64,
    "latent_size": 64,
    "dlatent_size": 64,
    "mapping_fmaps": 64,
    "use_noise": False,
}  # the demo's widths; no noise, so both devices draw nothing


@pytest.fixture
def no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def close(cuda: torch.Tensor, ref: torch.Tensor, scale: float = 1e-4) -> bool:
    """|cuda - ref| <= scale * max|ref|, elementwise: an error relative to the tensor's own size.

    float32 rounds at 6e-8; a value here sums up to 64*9 products per layer over about
    ten layers and two normalisations, which keeps errors near 1e-6 of the largest
    value; 1e-4 leaves room for cuDNN's other summation orders, and TF32 (1e-3) fails it.
    """
    return bool(((cuda.double().cpu() - ref).abs() <= scale * ref.abs().max()).all())


def test_networks_forward_and_backward_on_cuda_fp32_equal_cpu_float64(no_tf32: None) -> None:
    net = settings.load(NetworkSettings, SMALL)
    torch.manual_seed(0)
    G, D = Generator(net).double(), Discriminator(net).double()
    z, weights = torch.randn(4, 64, dtype=torch.float64), torch.randn(4, 3, 32, 32, dtype=torch.float64)
    results = {}
    for device, dtype in (("cpu", torch.float64), ("cuda", torch.float32)):
        g, d = copy.deepcopy(G).to(device, dtype), copy.deepcopy(D).to(device, dtype)
        images = g(z.to(device, dtype), res=32, alpha=0.7)
        (images * weights.to(device, dtype)).sum().backward()
        reals = images.detach().requires_grad_(True)
        logits = d(reals, res=32, alpha=0.7)
        (logits.sum() + r1_penalty(logits, reals).sum()).backward()  # R1: the blur's double backward
        results[device] = [images, logits] + [q.grad for m in (g, d) for q in m.parameters()]
    for cuda, ref in zip(results["cuda"], results["cpu"], strict=True):
        assert close(cuda, ref)


def test_training_on_cuda_checkpoints_and_resumes_identically(small_manifest: Path, tmp_path: Path) -> None:
    """Finite losses, a checkpoint, and a run split at 48 images that ends where the straight one does.

    1e-4, not the CPU's 1e-5: cuDNN may sum weight gradients in another order from run to run.
    """
    assert train(dense(), small_manifest, tmp_path / "straight") == 0
    ticks = [json.loads(line) for line in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    assert ticks and all(torch.isfinite(torch.tensor([t["loss_g"], t["loss_d"]])).all() for t in ticks)
    assert all(t["skipped"] == 0 for t in ticks)
    assert train(dense(total_kimg=0.048), small_manifest, tmp_path / "split") == 0
    assert train(dense(), small_manifest, tmp_path / "split") == 0
    assert_same_networks(final_state(tmp_path / "straight"), final_state(tmp_path / "split"), atol=1e-4)


def test_torchrun_one_process_on_cuda_trains_like_the_plain_process(small_manifest: Path, tmp_path: Path) -> None:
    """torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE 1) picks the GPU and trains as one plain process."""
    s = dense()
    assert train(s, small_manifest, tmp_path / "plain") == 0
    cmd = [
        a.replace("--nproc-per-node=2", "--nproc-per-node=1") for a in command(s, small_manifest, tmp_path / "tr", 2)
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same_networks(final_state(tmp_path / "plain"), final_state(tmp_path / "tr"), atol=1e-4)


def _nccl_rank(rank: int, init_file: str) -> None:
    import torch.distributed as dist

    from stylegan.distributed import agree, sum_over_ranks

    dist.init_process_group("cpu:gloo,cuda:nccl", init_method=f"file://{init_file}", rank=0, world_size=1)
    d = Dist(0, 2, torch.device("cuda", 0))  # world 2 so the collectives run; the group has one rank
    assert agree(True, d) and not agree(False, d)  # over gloo, on the CPU
    assert sum_over_ranks(torch.ones(3, dtype=torch.float64), d).tolist() == [1.0, 1.0, 1.0]  # over NCCL
    dist.destroy_process_group()


def test_the_mixed_backend_reduces_cpu_flags_over_gloo_and_cuda_tensors_over_nccl(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    mp.spawn(_nccl_rank, args=(str(tmp_path / "init"),), nprocs=1, join=True)


@pytest.mark.parametrize("flag, tolerance", [("bf16", 0.05), ("compile", 1e-4)])
def test_speed_flags_run_and_stay_close_to_fp32(flag: str, tolerance: float, no_tf32: None) -> None:
    """The D and G losses of one batch under the flag against fp32 eager, then three steps with finite losses.

    bf16 keeps 8 bits of mantissa (about 4e-3 relative per op): 0.05 on losses near 0.7.
    torch.compile reorders float32 sums only: 1e-4.
    """
    losses = {}
    for name in ("fp32", flag):
        s = settings.load(
            TrainSettings,
            {
                "network": SMALL,
                "loss": {"mixing_prob": 0.0},
                "speed": {"bf16": name == "bf16", "compile": name == "compile"},
            },
        )
        st = new_state(s, Dist(0, 1, torch.device("cuda")))
        loss = new_loss(st, s)
        gen = torch.Generator().manual_seed(1)
        z, reals = torch.randn(2, 8, 64, generator=gen).cuda(), (torch.rand(8, 3, 32, 32, generator=gen) * 2 - 1).cuda()
        loss_d, _ = loss.d_main_and_r1(reals, z[0], 32, 1.0, 10.0)
        losses[name] = (loss_d.item(), loss.g_main(z[1], 32, 1.0).item())
        level = Level(kimg=0.0, lod=0.0, resolution=32, alpha=1.0, minibatch=8, lrate=0.002, tick_kimg=1.0)
        for _ in range(3):
            stats, skipped = step(st, s, loss, Batch(level, reals, z[0], z[1]))
            assert all(torch.isfinite(v).all() for v in stats.values()) and skipped.item() == 0
    for ours, ref in zip(losses[flag], losses["fp32"], strict=True):
        assert abs(ours - ref) <= tolerance, (flag, losses)


def test_ppl_distances_on_cuda_run_without_tf32_and_match_the_cpu() -> None:
    """inference_device turns TF32 off; the distances (d/eps², eps 1e-4) then agree with the CPU's within 1%.

    Differences of images 1e-4 apart amplify rounding by 1e8 (eps²): float32 keeps
    them to about 1e-3 relative, TF32 would not.
    """
    from stylegan.metrics import lpips_vgg, ppl
    from stylegan.metrics.shards import shard_blocks
    from stylegan.model.sampling import inference_device

    device = inference_device()
    assert device.type == "cuda" and not torch.backends.cuda.matmul.allow_tf32
    assert not torch.backends.cudnn.allow_tf32
    torch.manual_seed(0)
    G, distance = Generator(settings.load(NetworkSettings, SMALL)).eval(), lpips_vgg.LpipsVgg16().eval()
    block = shard_blocks(8, 8, 0, 1, 0, "ppl")[0]
    meta = {"resolution": 32, "alpha": 1.0}
    cpu = ppl.block_distances(G, meta, distance, "w_full", block, 1e-4)
    cuda = ppl.block_distances(G.to(device), meta, distance.to(device), "w_full", block, 1e-4)
    assert cpu.shape == cuda.shape == (8,)
    assert abs(cuda - cpu).max() <= 0.01 * abs(cpu).max(), (cuda, cpu)
