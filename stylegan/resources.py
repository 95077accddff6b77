"""What a job asks SLURM for: the `train.resources` and `metrics.resources` sections.

Only the workflow's rules read these sections; `slurm()` turns one into the rule's
`resources:` (the Snakemake SLURM executor plugin's names), so the rules say it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stylegan.settings import setting


@dataclass(frozen=True)
class JobResources:
    """One node's GPUs, CPUs, memory and time limit."""

    gpu: int = setting(0, "GPUs per node (0: a CPU job)", ge=0)
    cpus_per_gpu: int = setting(8, "CPUs per GPU (or of the CPU job when gpu is 0)", ge=1)
    mem_mb: int = setting(8000, "memory, MB per node", ge=1000)
    runtime: int | str = setting(60, "minutes, or a SLURM duration such as '2d'")

    def slurm(self) -> dict[str, Any]:
        """`gpu` and `cpus_per_gpu`; gpu 0 is a plain CPU job of cpus_per_gpu CPUs.

        With GPUs cpus_per_task stays 0 (unset), since the SLURM plugin lets it win
        over cpus_per_gpu.
        """
        return {
            "gpu": self.gpu,
            "cpus_per_gpu": self.cpus_per_gpu,
            "cpus_per_task": 0 if self.gpu else self.cpus_per_gpu,
            "mem_mb": self.mem_mb,
            "runtime": self.runtime,
        }


@dataclass(frozen=True)
class TrainResources(JobResources):
    """The train job's, which may span nodes."""

    nodes: int = setting(
        1,
        "nodes of the one train job; above 1 the job runs one `torchrun` per node through "
        "`srun` (SLURM only, `--profile slurm`)",
        ge=1,
    )

    @property
    def processes_per_node(self) -> int:
        """Training processes (torchrun ranks) per node: one per GPU, or one CPU process."""
        return max(1, self.gpu)

    @property
    def processes(self) -> int:
        """Ranks over all nodes: the run's world size."""
        return self.processes_per_node * self.nodes

    def slurm(self) -> dict[str, Any]:
        """One node: as any job; the executor runs the rule inside an `srun -n1` step of its own.

        Several nodes: the executor's MPI form (`mpi`, `tasks`, `nodes`): the rule runs
        in the batch step and starts one srun task per node itself (workflow/rules/common.smk
        train_launcher). GPUs per node go in `gres` (`gpu` counts GPUs per job, with no
        placement), and `tasks_per_gpu: 0` stops the plugin from turning `tasks` into
        --ntasks-per-gpu. Memory is per node either way.
        """
        if self.nodes == 1:
            return super().slurm()
        job = {
            "mem_mb": self.mem_mb,
            "runtime": self.runtime,
            "nodes": self.nodes,
            "tasks": self.nodes,
            "mpi": "srun",
            "cpus_per_task": self.processes_per_node * self.cpus_per_gpu,
        }
        if self.gpu:
            job.update(gres=f"gpu:{self.gpu}", tasks_per_gpu=0)
        return job
