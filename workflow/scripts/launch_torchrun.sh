#!/usr/bin/env bash
# One torchrun per node (c10d rendezvous: docs.pytorch.org/docs/stable/elastic/run.html):
# `torchrun ... -m stylegan.cli "$@"` with NPROC_PER_NODE processes
# (default: the GPUs SLURM gave this node, else 1). The train rule runs it directly on one
# node, and once per node (one srun task each) on several; so does a plain sbatch job:
#   srun --ntasks-per-node=1 --cpus-per-task=64 --gpus-per-node=8 \
#     bash workflow/scripts/launch_torchrun.sh train --settings @train.json --manifest ... --run-dir ... --out ...
# One node (or no SLURM): `torchrun --standalone`, a private rendezvous on a free port.
# Several: the c10d rendezvous is hosted by the step's first node, whose address comes from
# SLURM's node table (NodeAddr), as does each node's own address for the process group;
# nothing relies on host names resolving. SLURM_* are the step's own here, so all of this is
# computed inside the task, not by the caller.
# USR1 is ignored by this shell and torchrun (which would otherwise die of it); the training
# processes install their own handler, checkpoint at the end of the step and exit 75.
set -euo pipefail
trap '' USR1
nproc=${NPROC_PER_NODE:-${SLURM_GPUS_ON_NODE:-1}}
nnodes=${SLURM_STEP_NUM_NODES:-1}
node=${SLURMD_NODENAME:-$(hostname -s)}
cpus=${SLURM_CPUS_PER_TASK:-$nproc}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( cpus > nproc ? cpus / nproc : 1 ))}  # this node's CPUs, shared

if [ "$nnodes" = 1 ]; then
    echo "launch_torchrun: node $node: $nproc process(es), standalone" >&2
    exec torchrun --standalone --nnodes=1 --nproc-per-node="$nproc" -m stylegan.cli "$@"
fi

node_addr() {  # a node's NodeAddr in SLURM's node table
    scontrol show node "$1" | tr ' ' '\n' | sed -n 's/^NodeAddr=//p'
}
head=$(scontrol show hostnames "$SLURM_STEP_NODELIST" | head -n1)
head_addr=$(node_addr "$head")
# One port per job, so two jobs that share a first node do not meet in one rendezvous.
port=$(( 29500 + SLURM_JOB_ID % 2000 ))
is_host=$([ "$node" = "$head" ] && echo 1 || echo 0)
echo "launch_torchrun: node $node ($SLURM_NODEID of $nnodes): $nproc process(es), rendezvous $head_addr:$port" >&2
exec torchrun --nnodes="$nnodes" --nproc-per-node="$nproc" --local-addr="$(node_addr "$node")" \
    --rdzv-backend=c10d --rdzv-endpoint="$head_addr:$port" --rdzv-id="$SLURM_JOB_ID" --rdzv-conf="is_host=$is_host" \
    -m stylegan.cli "$@"
