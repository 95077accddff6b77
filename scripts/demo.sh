#!/usr/bin/env bash
# One command: install, then run the whole demo DAG locally on CPU (offline).
# Extra arguments go to snakemake, e.g. `bash scripts/demo.sh --dry-run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/snakemake --cores all "$@"
