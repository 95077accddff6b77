"""The training stage for real: subprocesses, torchrun with gloo, SIGTERM, shards packed by the dataset stage.

Networks are tiny (16², 16 feature maps) and runs a few hundred images long, so
every test trains for seconds on one CPU thread per process.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import torch

from stylegan import fileio, settings
from stylegan.data.dataset import ShardDataset
from stylegan.model import files
from stylegan.model.files import load_generator
from stylegan.model.provenance import png_provenance
from stylegan.train import checkpoint
from stylegan.train.config import TrainSettings
from stylegan.train.loop import build_networks
from stylegan.train.preemption import EXIT_PREEMPTED
from tests.training import assert_same_networks, dense, final_state, start, tiny, train, train_args


@pytest.fixture(scope="module")
def manifest(small_manifest: Path) -> Path:
    return small_manifest


@pytest.fixture(scope="module")
def dense_one(manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One process trained on `dense()`: the run the multi-process ones are held to."""
    run = tmp_path_factory.mktemp("dense_one")
    assert train(dense(), manifest, run) == 0
    return run


def test_two_gloo_ranks_match_one_process(manifest: Path, dense_one: Path, tmp_path: Path) -> None:
    """Half the global batch on each of 2 ranks gives the parameters of one process with the whole batch.

    G's own draws (noise maps, the mixing decision and second latent) are per-rank
    by design, so they are switched off here (`dense`); everything the loop draws
    (z, flips, data order), the fade, R1, Adam resets, w_avg and EMA are on.
    The run stops at the start of 16²: at the next Adam reset the first step moves
    every weight by about +-lr whatever its gradient's size, so rounding-level
    differences in near-zero gradients become lr-sized. One process run with 1 vs
    2 OpenMP threads diverges there by the same amount; that is not DDP's doing.
    """
    s = dense()
    assert train(s, manifest, tmp_path / "two", nproc=2) == 0
    one, two = final_state(dense_one), final_state(tmp_path / "two")
    assert one["progress"] == two["progress"] and one["progress"]["nimg"] == 96
    assert two["world_size"] == 2 and len(two["rng"]["ranks"]) == 2
    assert_same_networks(one, two, atol=1e-5)
    before = {
        k: v for k, v in build_networks(settings.load(TrainSettings, s), torch.device("cpu"))[0].state_dict().items()
    }
    assert any(not torch.equal(before[k], one["G"][k]) for k in before)  # training did move G


def ticks(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_two_gloo_ranks_with_noise_and_mixing_train_like_one_process(manifest: Path, tmp_path: Path) -> None:
    """With G's per-rank draws on, 2 ranks are compared with 1 process in distribution, not weight by weight.

    Each rank draws its own noise maps and mixing (from seed + rank), so the runs see
    different noise; everything else is shared. Adam with beta1 0 turns those
    differences into lr-sized steps, so weights differ by as much as they moved
    (measured: G 1.05, D 0.43 of the distance moved), but the tick means of the
    losses agree: measured within 0.04 (G) and 0.03 (D) over 3 ticks; tolerance 0.1.
    """
    s = tiny(schedule={"total_kimg": 0.096})  # noise and mixing (0.9) at their defaults
    assert train(s, manifest, tmp_path / "one") == 0
    assert train(s, manifest, tmp_path / "two", nproc=2) == 0
    one, two = final_state(tmp_path / "one"), final_state(tmp_path / "two")
    assert one["progress"] == two["progress"]
    assert torch.equal(one["rng"]["z_stream"], two["rng"]["z_stream"])  # the shared draws were global
    first, second = two["rng"]["ranks"]
    assert not torch.equal(first["torch"], second["torch"])  # each rank its own noise
    for a, b in zip(ticks(tmp_path / "one"), ticks(tmp_path / "two"), strict=True):
        assert (a["kimg"], a["resolution"]) == (b["kimg"], b["resolution"])
        assert abs(a["loss_g"] - b["loss_g"]) < 0.1 and abs(a["loss_d"] - b["loss_d"]) < 0.1, (a, b)
    initial = build_networks(settings.load(TrainSettings, s), torch.device("cpu"))[0].state_dict()
    noise = [k for k in initial if k.endswith("noise.weight")]
    assert noise and all(not torch.equal(state["G"][k], initial[k]) for state in (one, two) for k in noise)


def test_sigterm_checkpoints_and_resume_matches_uninterrupted(manifest: Path, tmp_path: Path) -> None:
    s = tiny(schedule={"total_kimg": 0.4})
    assert train(s, manifest, tmp_path / "straight") == 0
    proc = start(s, manifest, tmp_path / "killed")
    deadline = time.time() + 120
    while checkpoint.latest(tmp_path / "killed") is None and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_PREEMPTED, output
    stopped = final_state(tmp_path / "killed")["progress"]["nimg"]
    assert 0 < stopped < 400 and not (tmp_path / "killed" / "generator.pt").exists()
    assert "preempted" in output
    assert train(s, manifest, tmp_path / "killed") == 0
    assert_same_networks(final_state(tmp_path / "straight"), final_state(tmp_path / "killed"), atol=1e-6)
    assert (tmp_path / "killed" / "generator.pt").exists()


def pixel_stats(images: torch.Tensor) -> torch.Tensor:
    """Per-channel mean and standard deviation over images and pixels."""
    return torch.cat([images.mean(dim=(0, 2, 3)), images.std(dim=(0, 2, 3))])


def test_training_moves_generator_statistics_towards_the_data(manifest: Path, tmp_path: Path) -> None:
    s = tiny(schedule={"total_kimg": 0.6, "lrate_base": 0.003}, G_smoothing_kimg=0.05)  # G_ema follows G
    assert train(s, manifest, tmp_path / "run") == 0
    data = ShardDataset(manifest, resolution=16)
    target = pixel_stats(torch.stack([data[i] for i in range(len(data))]))
    trained, meta = load_generator(tmp_path / "run" / "generator.pt")
    assert (meta["resolution"], meta["alpha"]) == (16, 1.0)
    initial = build_networks(settings.load(TrainSettings, s), torch.device("cpu"))[0].eval()
    z = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        start_gap = (pixel_stats(initial(z, res=16)) - target).abs().sum().item()
        end_gap = (pixel_stats(trained(z, res=16)) - target).abs().sum().item()
    print(f"stats gap: start {start_gap:.3f}, end {end_gap:.3f}")
    assert end_gap < 0.6 * start_gap


def test_generate_and_export_write_images_and_weights(manifest: Path, tmp_path: Path) -> None:
    from stylegan import cli

    s = tiny(schedule={"total_kimg": 0.05}, checkpoint={"keep": 1, "grid": [2, 2]})
    assert train(s, manifest, tmp_path / "run") == 0
    ckpt = checkpoint.latest(tmp_path / "run")
    # checkpoints are pruned, generator snapshots (one per network snapshot tick: 40 and 56 images) never
    assert len(checkpoint.all_checkpoints(tmp_path / "run")) == 1
    snapshots = files.all_snapshots(tmp_path / "run")
    assert [p.name for p in snapshots] == ["generator-000000040.pt", "generator-000000056.pt"]
    assert [load_generator(p)[1]["nimg"] for p in snapshots] == [40, 56]
    assert cli.main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "g.pt")]) == 0
    exported = torch.load(tmp_path / "g.pt", weights_only=True)
    assert set(exported) == {"format", "network", "G_ema", "nimg", "resolution", "alpha", "dataset"}
    assert exported["dataset"] == files.load(ckpt)["dataset"] is not None  # the export keeps what it trained on
    out = tmp_path / "gen"
    args = [
        "generate",
        "--checkpoint",
        str(tmp_path / "g.pt"),
        "--seeds",
        "0-2,5",
        "--outdir",
        str(out / "img"),
        "--grid",
        str(out / "grid.png"),
        "--mixing-grid",
        str(out / "mix.png"),
        "--seed",
        "1",
    ]
    assert cli.main(args) == 0
    assert sorted(p.name for p in (out / "img").iterdir()) == [
        "seed0000.png",
        "seed0001.png",
        "seed0002.png",
        "seed0005.png",
    ]
    first = (out / "grid.png").read_bytes()
    assert cli.main(args) == 0 and (out / "grid.png").read_bytes() == first  # same seeds, same noise seed
    (tagged,) = png_provenance(out / "grid.png")  # the sample grid names the file it was drawn from
    assert (
        tagged["generator_sha256"] == fileio.sha256_file(tmp_path / "g.pt") and tagged["dataset"] == exported["dataset"]
    )
    from PIL import Image

    assert Image.open(out / "mix.png").size == (5 * 16, 5 * 16)
    assert cli.main(["generate", "--checkpoint", str(tmp_path / "g.pt"), "--seeds", "x", "--grid", "a.png"]) == 2
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert cli.main(["export", "--checkpoint", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "o.pt")]) == 2


def test_bad_batch_layout_is_refused_before_training(manifest: Path, tmp_path: Path) -> None:
    from stylegan import cli

    s = tiny(schedule={"minibatch_base": 6})
    assert (
        cli.main(train_args(s, manifest, tmp_path, tmp_path / "g.pt")) == 2
    )  # 6 is not a multiple of the mbstd group 4
    s = tiny(network={"resolution": 128})
    assert cli.main(train_args(s, manifest, tmp_path, tmp_path / "g.pt")) == 2  # the shards stop at 64²
    assert not (tmp_path / "checkpoints").exists()


def test_non_finite_gradients_are_never_applied() -> None:
    """A non-finite gradient leaves the weights and Adam's moments and step count as they were, decided on the
    device."""
    from stylegan.train.loop import apply_gradients

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1, fused=True)

    def state() -> list[torch.Tensor]:
        return [t.clone() for q in model.parameters() for t in (q.detach(), *opt.state[q].values())]

    model(torch.ones(1, 3)).sum().backward()
    model.bias.grad[0] = float("nan")
    assert apply_gradients(model, opt, world=1).item() == 1.0
    before = state()
    assert [t.abs().sum().item() for t in before[1:4]] == [0.0, 0.0, 0.0]  # Adam as fresh: step 0, zero moments
    for value in (float("inf"), float("nan")):
        opt.zero_grad()
        model(torch.ones(1, 3)).sum().backward()
        model.weight.grad[1, 2] = value
        assert apply_gradients(model, opt, world=1).item() == 1.0
        assert all(torch.equal(a, b) for a, b in zip(before, state()))
    opt.zero_grad()
    model(torch.ones(1, 3)).sum().backward()
    assert apply_gradients(model, opt, world=1).item() == 0.0
    assert not torch.equal(before[0], model.weight) and opt.state[model.weight]["step"].item() == 1


def test_only_the_newest_checkpoints_are_kept(tmp_path: Path) -> None:
    for nimg in (500, 40, 1200, 9000):
        files.save(checkpoint.path_for(tmp_path, nimg), {"format": files.TRAINING_FORMAT, "n": nimg})
    (tmp_path / "checkpoints" / "notes.pt").write_bytes(b"")  # not a checkpoint name: ignored
    checkpoint.prune(tmp_path, keep=2)
    assert [p.name for p in checkpoint.all_checkpoints(tmp_path)] == ["ckpt-000001200.pt", "ckpt-000009000.pt"]
    assert files.load(checkpoint.latest(tmp_path))["n"] == 9000
    assert checkpoint.latest(tmp_path / "fresh") is None


def _reduce_on_rank(rank: int, world: int, init_file: str, results: str) -> None:
    """One gloo rank: gradients that differ per rank by construction, then apply_gradients."""
    import torch.distributed as dist

    from stylegan.train.loop import apply_gradients

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.manual_seed(0)  # the same weights on every rank
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    for q in model.parameters():  # rank r's gradient: (r + 1) * base, base filled with tiny and large values
        q.grad = (rank + 1) * torch.linspace(-1e-6, 3.0, q.numel()).reshape(q.shape)
    opt = torch.optim.SGD(model.parameters(), lr=0.0, fused=True)
    applied = apply_gradients(model, opt, world).item() == 0.0
    torch.save({"applied": applied, "grads": [q.grad.clone() for q in model.parameters()]}, f"{results}/{rank}.pt")
    dist.destroy_process_group()


def test_apply_gradients_averages_over_two_gloo_ranks(tmp_path: Path) -> None:
    """After the reduction every rank holds the mean of the ranks' gradients: (1 + 2) / 2 = 1.5 x base."""
    import torch.multiprocessing as mp

    mp.spawn(_reduce_on_rank, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        result = torch.load(tmp_path / f"{rank}.pt", weights_only=True)
        assert result["applied"] is True
        for grad in result["grads"]:
            expected = 1.5 * torch.linspace(-1e-6, 3.0, grad.numel()).reshape(grad.shape)
            torch.testing.assert_close(grad, expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("first, then", [(2, 1), (1, 2)])
def test_resume_under_another_process_count_continues_the_stream(
    manifest: Path, dense_one: Path, tmp_path: Path, first: int, then: int
) -> None:
    """A checkpoint from `first` processes resumed with `then` ends where one uninterrupted process does.

    The data order, z and flips are global streams restored from the checkpoint's
    image count and z-stream state, so with G's per-rank draws off (`dense`) the
    resumed run reproduces the straight run's weights; G's per-rank noise streams
    cannot carry over to another rank count and are reseeded, with a warning. The
    split falls at 48 images, the end of the 8² phase.
    """
    assert train(dense(total_kimg=0.048), manifest, tmp_path / "split", nproc=first) == 0
    assert final_state(tmp_path / "split")["world_size"] == first
    proc = start(dense(), manifest, tmp_path / "split", nproc=then)
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, output
    assert f"checkpoint from {first} process(es), now {then}" in output
    straight, split = final_state(dense_one), final_state(tmp_path / "split")
    assert straight["world_size"] == 1 and split["world_size"] == then
    for key in ("nimg", "step", "sched_nimg", "skipped"):
        assert straight["progress"][key] == split["progress"][key], key
    assert torch.equal(straight["rng"]["z_stream"], split["rng"]["z_stream"])
    assert_same_networks(straight, split, atol=1e-5)
