"""The demo DAG through a real SLURM: `snakemake --cores all --profile slurm`, every job via sbatch.

Needs the default partition (one node, this host) of the local SLURM that
`scripts/slurm.sh start` runs; without it the test skips or fails as slurm_cluster says.
STYLEGAN_SLURM_TARGETS (space-separated) narrows the run to some targets, e.g.
`results/crawl/report.json`; by default the whole demo DAG runs.
"""

from __future__ import annotations

import collections
import os
import re
from pathlib import Path

import pytest
from slurm_cluster import nodes, unavailable, usable
from workflow_copy import REPO, copy_workflow, snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# The demo DAG takes ~15 min on 2 CPUs; SLURM's polling adds a little per job.
DAG_TIMEOUT_S = 3600
DEFAULT_MEM_MB = 1000  # the profile's 4000 is for a real cluster; a CI node may have little memory
TRAIN_MEM_MB = 8000  # config.yaml's train.resources.mem_mb, capped at the node's memory below


def _idle_node_memory_mb() -> int:
    """The default partition's node memory; skips (or fails in CI) when no node is usable."""
    rows = nodes(fields="%m %P")
    usable_mb = [int(mem) for state, mem, partition in rows if usable(state) and partition.endswith("*")]
    if not usable_mb:
        unavailable(f"no idle SLURM node in the default partition (sinfo: {rows}); run `bash scripts/slurm.sh start`")
    return max(usable_mb)


def _local_rules() -> set[str]:
    """Rules that run on the submitting host (`localrule: True`) plus the target rule `all`."""
    local = {"all"}
    for path in (REPO / "workflow/rules").glob("*.smk"):
        for name, body in re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", path.read_text(), re.M):
            if re.search(r"^\s+localrule:\s*True", body, re.M):
                local.add(name)
    return local


def _job_counts(output: str) -> collections.Counter[str]:
    """Rule -> number of jobs, from Snakemake's first "Job stats" table."""
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return collections.Counter(
        {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)\s*$", table, re.M) if rule != "total"}
    )


@pytest.mark.timeout(DAG_TIMEOUT_S + 300)
def test_demo_dag_runs_through_sbatch(tmp_path: Path) -> None:
    node_mem = _idle_node_memory_mb()
    workdir = copy_workflow(tmp_path / "repo")
    targets = os.environ.get("STYLEGAN_SLURM_TARGETS", "").split()
    run = snakemake(
        workdir,
        *targets,
        "--cores",
        "all",
        "--profile",
        "slurm",  # targets first: the options below take lists
        "--default-resources",
        f"mem_mb={DEFAULT_MEM_MB}",
        "runtime=60",
        "--set-resources",
        f"train:mem_mb={min(TRAIN_MEM_MB, node_mem)}",
        timeout=DAG_TIMEOUT_S,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, run.stdout[-6000:]

    jobs = _job_counts(run.stdout)
    remote = {rule: n for rule, n in jobs.items() if rule not in _local_rules()}
    assert remote, f"no job went to SLURM:\n{run.stdout[-3000:]}"
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: (\S+?)\)", run.stdout)
    assert len(submitted) == sum(remote.values()), run.stdout[-6000:]
    for job_id, log in submitted:
        assert Path(workdir, log).is_file() and Path(log).stem == job_id, log
    logdir = workdir / "logs/slurm"  # slurm/config.yaml: slurm-logdir, slurm-keep-successful-logs
    for rule, n in remote.items():
        assert len(list((logdir / f"rule_{rule}").rglob("*.log"))) == n, rule

    # Afterwards nothing is left to do: every output of the run exists and is up to date.
    again = snakemake(workdir, "--dry-run", *targets)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout, again.stdout[-3000:]
