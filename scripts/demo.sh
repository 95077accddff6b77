#!/usr/bin/env bash
# One command: install, then run the whole demo DAG locally on CPU (offline).
# Extra arguments go to snakemake, e.g. `bash scripts/demo.sh --dry-run` or
# `bash scripts/demo.sh --configfile configs/ffhq.yaml`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"   # rules run `python -m stylegan.cli` and `torchrun`
exec snakemake --cores all "$@"
