"""Multi-GPU and multi-node training through a real SLURM: `snakemake --profile slurm`, the train rule only.

The cluster is the `gpu` partition that `scripts/slurm.sh start` runs: nodes gpu1 and gpu2,
both this host (one slurmd each), each with 2 GPUs that are SLURM generic resources and
nothing more. The ranks train with gloo on the CPU; SLURM books, places and signals them as
it would GPU jobs. Each test packs a small real dataset, writes a config whose train section
is a tiny model, and asks for `results/train/generator.pt` with only the train rule allowed,
so the one job that runs is the train job, through sbatch. Without the partition the tests
skip or fail as slurm_cluster says.
"""

from __future__ import annotations

import math
import re
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml
from slurm_cluster import nodes, unavailable, usable
from workflow_copy import REPO, copy_workflow, snakemake, start_snakemake

from stylegan.train import checkpoint
from tests.faces import packed_lzf_manifest
from tests.training import assert_same_networks, dense, final_state, train

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PARTITION, GPUS_PER_NODE = "gpu", 2  # scripts/slurm.sh
# 12 steps of 16 images (8², the fade, the start of 16²): 16 = 4 ranks x mbstd groups of 4.
EQUAL = dense(
    minibatch_base=16, lod_training_kimg=0.096, lod_transition_kimg=0.096, total_kimg=0.192, tick_kimg_base=0.08
)
# 1500 steps at 8² and a checkpoint only at the end: long enough (about a minute on two idle
# cores, several on a busy machine) that SLURM's signal, sent up to 30 s after it is due,
# finds the ranks training.
LONG = dense(minibatch_base=16, total_kimg=24.0, tick_kimg_base=1000.0)
LONG["network"]["resolution"] = 8
JOB_TIMEOUT_S = 1800  # CPU time is shared with other work; the job itself takes a minute or two
RESULTS = "results"
TARGET = f"{RESULTS}/train/generator.pt"
# A 4-way all-reduce rounds differently from one process's sums: 2e-5 measured after 12
# steps. A wrong split of the batch or of the gradient average moves weights by about lr (2e-3).
WORLD4_ATOL = 1e-4


@pytest.fixture(scope="module")
def gpu_nodes() -> list[str]:
    """The partition's usable nodes with their GPUs; skips (or fails in CI) unless two are there."""
    rows = nodes("-p", PARTITION, fields="%N %G")
    ready = [name for state, name, gres in rows if usable(state) and gres == f"gpu:{GPUS_PER_NODE}"]
    if len(ready) < 2:
        unavailable(
            f"the local SLURM has no partition '{PARTITION}' of two nodes with gpu:{GPUS_PER_NODE} "
            f"(sinfo: {rows}); `bash scripts/slurm.sh start` runs one (root on Debian)"
        )
    return ready


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """EQUAL trained by one plain process: its last checkpoint and its generator."""
    tmp = tmp_path_factory.mktemp("one")
    assert train(EQUAL, packed_lzf_manifest(tmp, seed=4), tmp / "run") == 0
    return {"state": final_state(tmp / "run"), "generator": torch.load(tmp / "run/generator.pt", weights_only=True)}


def workflow(tmp: Path, settings: dict, gpu: int, nodes_: int) -> Path:
    """A scratch copy of the workflow whose config trains `settings` on a packed dataset."""
    workdir = copy_workflow(tmp / "repo")
    packed_lzf_manifest(workdir / RESULTS, seed=4)  # results/dataset/manifest.json, what train reads
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["train"] = {
        **settings,
        "resources": {"gpu": gpu, "cpus_per_gpu": 1, "mem_mb": 1500, "runtime": 30, "nodes": nodes_},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return workdir


def snakemake_args() -> list[str]:
    """The train target through the cluster profile, on the GPU partition, the profile's train resources kept."""
    profile = yaml.safe_load((REPO / "slurm/config.yaml").read_text())
    kept = [f"train:{key}={value}" for key, value in profile["set-resources"]["train"].items()]
    return [
        TARGET,
        "--allowed-rules",
        "train",
        "--profile",
        "slurm",
        "--set-resources",
        f"train:slurm_partition={PARTITION}",
        *kept,
    ]


def job_ids(output: str) -> list[str]:
    return re.findall(r"submitted with SLURM jobid (\d+)", output)


def job_record(job_id: str) -> dict[str, str]:
    """`scontrol show job` as a dict: what SLURM allocated (kept MinJobAge seconds after the end)."""
    text = subprocess.run(
        ["scontrol", "show", "job", "-d", "-o", job_id], capture_output=True, text=True, timeout=30
    ).stdout
    return dict(field.split("=", 1) for field in text.split() if "=" in field)


def launches(log: str) -> list[str]:
    """The nodes that launch_torchrun.sh started a torchrun on, one entry per start."""
    return re.findall(r"^launch_torchrun: node ([\w.-]+)", log, re.M)


def ranks_starting(log: str, world: int, nimg: int = 0) -> int:
    """How many ranks logged the start (or resume) of a `world`-process run at `nimg` images."""
    return len(re.findall(rf"(?:starting|resuming) at {nimg} of \d+ images, {world} process\(es\)", log))


def assert_same_generator(run: Path, expected: dict, atol: float) -> None:
    """The generator file of `run` holds the G_ema of `expected` (a loaded generator file)."""
    got = torch.load(run / "generator.pt", weights_only=True)
    assert got.keys() == expected.keys() and got["nimg"] == expected["nimg"]
    for key, value in expected["G_ema"].items():
        torch.testing.assert_close(got["G_ema"][key], value, rtol=0, atol=atol, msg=f"G_ema.{key}")


def train_equal(tmp: Path, nodes_: int, reference: dict, atol: float) -> tuple[dict, str]:
    """EQUAL through SLURM on `nodes_` nodes of 2 GPUs, checked against one process's run.

    Returns the job's SLURM record and the train log.
    """
    workdir = workflow(tmp, EQUAL, gpu=GPUS_PER_NODE, nodes_=nodes_)
    run = snakemake(workdir, *snakemake_args(), timeout=JOB_TIMEOUT_S)
    assert run.returncode == 0, run.stdout[-6000:]
    (job,) = job_ids(run.stdout)  # one sbatch
    world = GPUS_PER_NODE * nodes_
    log = (workdir / "logs/train.log").read_text()
    assert ranks_starting(log, world=world) == world, log[-3000:]  # each rank started once
    state = final_state(workdir / RESULTS / "train/run")
    assert state["world_size"] == world and state["progress"] == reference["state"]["progress"]
    assert_same_networks(reference["state"], state, atol=atol)
    assert_same_generator(workdir / RESULTS / "train", reference["generator"], atol=atol)
    return job_record(job), log


@pytest.mark.timeout(JOB_TIMEOUT_S + 300)
def test_two_gpus_on_one_node_run_one_torchrun_of_two_ranks(
    gpu_nodes: list[str], reference: dict, tmp_path: Path
) -> None:
    record, log = train_equal(tmp_path, 1, reference, atol=1e-5)  # test_train's two-rank tolerance
    assert record["Partition"] == PARTITION and record["NumNodes"] == "1", record
    assert record["JOB_GRES"] == "gpu:2", record
    assert launches(log) == [record["NodeList"]], log[-3000:]  # exactly one torchrun


@pytest.mark.timeout(JOB_TIMEOUT_S + 300)
def test_two_nodes_of_two_gpus_run_one_torchrun_per_node(gpu_nodes: list[str], reference: dict, tmp_path: Path) -> None:
    record, log = train_equal(tmp_path, 2, reference, atol=WORLD4_ATOL)
    assert (record["NumNodes"], record["NumTasks"]) == ("2", "2"), record  # one task per node
    assert record["JOB_GRES"] == "gpu:4" and record["NodeList"] == "gpu[1-2]", record
    assert sorted(launches(log)) == sorted(gpu_nodes[:2]), log[-3000:]  # one torchrun on each node


def wait_for(what: str, check, proc: subprocess.Popen, output: Path, timeout: float = JOB_TIMEOUT_S):
    """Poll `check()` until it returns something true; fail if Snakemake ends first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"snakemake ended (rc {proc.returncode}) before {what}:\n{output.read_text()[-6000:]}")
        time.sleep(1)
    pytest.fail(f"no {what} after {timeout} s")


def running_job() -> str | None:
    """The running job of the GPU partition (the tests run one at a time)."""
    done = subprocess.run(
        ["squeue", "-h", "-p", PARTITION, "-t", "R", "-o", "%i"], capture_output=True, text=True, timeout=30
    )
    return done.stdout.split()[0] if done.stdout.split() else None


def elapsed_s(job: str) -> int:
    """A running job's elapsed time from squeue ([[D-]H:]M:S)."""
    text = subprocess.run(
        ["squeue", "-h", "-j", job, "-o", "%M"], capture_output=True, text=True, timeout=30
    ).stdout.strip()
    days, _, clock = text.rpartition("-")
    seconds = 0
    for part in clock.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds + 86400 * int(days or 0)


def signal_window_s() -> int:
    """The profile's `--signal=USR1@<s>`: SLURM signals the job when fewer seconds than that remain."""
    extra = yaml.safe_load((REPO / "slurm/config.yaml").read_text())["set-resources"]["train"]["slurm_extra"]
    return int(re.search(r"--signal=USR1@(\d+)", extra).group(1))


@pytest.mark.timeout(3 * JOB_TIMEOUT_S)
def test_usr1_from_slurm_checkpoints_every_node_and_the_retry_resumes(gpu_nodes: list[str], tmp_path: Path) -> None:
    """The profile's --signal=USR1@300 comes due, SLURM signals both nodes, the retry resumes.

    The job asks for 30 min; once all four ranks train, its time limit is lowered so
    that less than the signal window remains, as if the 30 min were nearly over: SLURM
    sends USR1 at its next time-limit check (every 30 s). The second attempt gets the
    full time again and finishes.
    """
    straight = tmp_path / "straight"  # the same run, uninterrupted: 4 ranks of one torchrun
    assert train(LONG, packed_lzf_manifest(straight, seed=4), straight / "run", nproc=4, timeout=JOB_TIMEOUT_S) == 0

    workdir = workflow(tmp_path, LONG, gpu=2, nodes_=2)
    log_path, output = workdir / "logs/train.log", tmp_path / "snakemake.out"

    def log() -> str:
        return log_path.read_text() if log_path.exists() else ""

    proc = start_snakemake(workdir, *snakemake_args(), output=output)
    try:
        wait_for("four training ranks", lambda: ranks_starting(log(), world=4) == 4, proc, output)
        job = wait_for("a running train job", running_job, proc, output, timeout=60)
        # Minutes such that the time left is under the window (and above 4 min, so no time-out).
        limit_min = math.ceil((elapsed_s(job) + signal_window_s() - 60) / 60)
        subprocess.run(["scontrol", "update", f"JobId={job}", f"TimeLimit={limit_min}"], check=True, timeout=30)
        # The first attempt's log, read once its job is over and before the retry's job rewrites it.
        wait_for("the end of the signalled job", lambda: running_job() != job, proc, output, timeout=300)
        first = log()
        proc.wait(timeout=JOB_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = output.read_text()
    assert proc.returncode == 0, out[-6000:]

    assert "received SIGUSR1" in first and ranks_starting(first, world=4) == 4, first[-3000:]
    assert sorted(launches(first)) == sorted(gpu_nodes[:2]), first[-3000:]
    stops = re.findall(r"preempted at (\d+) images", first)
    assert stops, f"training ended before SLURM's signal came: lengthen LONG\n{first[-3000:]}"
    assert len(stops) == 4 and len(set(stops)) == 1, first[-3000:]  # every rank stopped after the same step
    stopped, total = int(stops[0]), int(LONG["schedule"]["total_kimg"] * 1000)
    assert 0 < stopped < total
    assert re.search(r"exitcode\s*:\s*75", first), first[-3000:]  # torchrun's report of the ranks' 75

    assert len(job_ids(out)) == 2, out[-6000:]  # the first job, then the profile's retry
    second = log()
    assert ranks_starting(second, world=4, nimg=stopped) == 4, second[-3000:]  # all four resumed there
    run = workdir / RESULTS / "train/run"
    assert [p.name for p in checkpoint.all_checkpoints(run)] == [
        checkpoint.path_for(run, n).name for n in (stopped, total)
    ]
    assert_same_networks(final_state(straight / "run"), final_state(run), atol=1e-6)
    assert_same_generator(
        workdir / RESULTS / "train", torch.load(straight / "run/generator.pt", weights_only=True), atol=1e-6
    )
