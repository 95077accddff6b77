"""One helper turns a resources section into the SLURM executor's resources, for the train and metric jobs."""

from __future__ import annotations

from stylegan import settings
from stylegan.resources import JobResources, TrainResources


def test_a_cpu_job_asks_for_cpus_per_task() -> None:
    job = settings.load(JobResources, {"cpus_per_gpu": 2, "mem_mb": 8000}, "metrics.resources").slurm()
    assert job == {"gpu": 0, "cpus_per_gpu": 2, "cpus_per_task": 2, "mem_mb": 8000, "runtime": 60}


def test_a_gpu_job_leaves_cpus_per_task_unset() -> None:
    """The SLURM plugin lets cpus_per_task win over cpus_per_gpu, so with GPUs it stays 0."""
    assert JobResources(gpu=1, cpus_per_gpu=8).slurm()["cpus_per_task"] == 0
    one_node = TrainResources(gpu=8, cpus_per_gpu=8, mem_mb=480000, runtime="7d").slurm()
    assert one_node == {"gpu": 8, "cpus_per_gpu": 8, "cpus_per_task": 0, "mem_mb": 480000, "runtime": "7d"}


def test_several_nodes_use_the_mpi_form_with_gres() -> None:
    """README: two nodes of 8 GPUs are `--nodes=2 --ntasks=2 --cpus-per-task=64 --gres=gpu:8`."""
    job = TrainResources(gpu=8, cpus_per_gpu=8, mem_mb=480000, runtime="7d", nodes=2).slurm()
    assert job == {
        "mem_mb": 480000,
        "runtime": "7d",
        "nodes": 2,
        "tasks": 2,
        "mpi": "srun",
        "cpus_per_task": 64,
        "gres": "gpu:8",
        "tasks_per_gpu": 0,
    }
    assert "gres" not in TrainResources(nodes=2, cpus_per_gpu=4).slurm()


def test_the_world_size_counts_one_process_per_gpu_or_one_cpu_process_per_node() -> None:
    assert TrainResources(gpu=0, nodes=1).processes == 1
    assert TrainResources(gpu=8, nodes=2).processes_per_node == 8
    assert TrainResources(gpu=8, nodes=2).processes == 16
    assert TrainResources(gpu=0, nodes=3).processes == 3


def test_a_job_given_omp_threads_gives_torch_as_many(monkeypatch) -> None:
    """Snakemake sets MKL_NUM_THREADS to the rule's threads (1); the command lets OMP_NUM_THREADS win."""
    import os

    from stylegan import cli

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    cli._threads_from_omp()
    assert os.environ["MKL_NUM_THREADS"] == "3"
