#!/usr/bin/env bash
# One torchrun per node for multi-node training (torchrun c10d rendezvous: docs.pytorch.org/docs/stable/elastic/run.html).
# Run it as one srun task per node; the rendezvous is on the job's first node. SLURM_* are the
# step's own here, so the endpoint is computed inside the task, not by the caller.
#   srun --ntasks-per-node=1 --cpus-per-task=64 --gpus-per-node=8 \
#     bash workflow/scripts/launch_torchrun.sh train --settings @train.json --manifest ... --run-dir ... --out ...
# USR1 is ignored by this shell and torchrun (which would otherwise die of it); the training
# processes install their own handler, checkpoint at the end of the step and exit 75.
set -euo pipefail
trap '' USR1
head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(( ${SLURM_CPUS_PER_TASK:-8} / ${GPUS_PER_NODE:-8} ))}"
exec torchrun --nnodes="$SLURM_NNODES" --nproc-per-node="${GPUS_PER_NODE:-8}" \
  --rdzv-backend=c10d --rdzv-endpoint="$head:29500" --rdzv-id="$SLURM_JOB_ID" \
  -m stylegan.cli "$@"
